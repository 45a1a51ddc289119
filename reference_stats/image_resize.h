#pragma once
/// Image resizing and cropping exactly as the modern metrics' preprocessing does it
/// (metrics_modern.md section 6): Pillow's `Image.resize(size, BICUBIC)` on uint8 images
/// (the antialiased fixed-point convolution DINOv2's dgm-eval transform and CMMD use,
/// byte-exact with Pillow 9.x), Pillow's float (`F` mode) variant of the same filter, and
/// the centre crops of CMMD and ADM / EDM2's dataset tools.
///
/// Images are row-major (height, width, channels) with interleaved channels; every
/// channel is filtered independently with the same coefficients (as Pillow's RGB path).

#include <cstdint>
#include <vector>

namespace sit::io {

/// The separable filter of one axis for Pillow's bicubic resize (Keys a = -0.5, support
/// 2, stretched by in / out when downsampling). Output o reads inputs
/// [first[o], first[o] + count[o]) with `weights` (normalised to sum 1, double) or their
/// 22-bit fixed-point form `fixed` (uint8 path; not renormalised, so sums may be 2^22 +- 2).
/// as Pillow src/libImaging/Resample.c: precompute_coeffs, normalize_coeffs_8bpc
struct ResampleCoefficients {
  int64_t taps = 0;  ///< entries per output in weights / fixed (the widest output's count)
  std::vector<int64_t> first, count;  ///< [out]
  std::vector<double> weights;        ///< [out * taps], zero beyond count
  std::vector<int32_t> fixed;         ///< [out * taps]
};

/// Pillow's filters used here: BICUBIC (Keys a = -0.5, support 2) and BOX (1 on
/// (-0.5, 0.5], support 0.5), both stretched by in / out when downsampling.
enum class PilFilter { kBicubic, kBox };

/// Coefficients for resizing an axis of `in` pixels to `out`. Throws sit::Error unless
/// both are positive.
ResampleCoefficients pil_bicubic_coefficients(int64_t in, int64_t out);
ResampleCoefficients pil_coefficients(int64_t in, int64_t out, PilFilter filter);

/// Pillow `Image.resize((out_width, out_height), Image.BICUBIC)` of a uint8 image:
/// horizontal pass then vertical pass, each rounding and clipping to uint8; a pass whose
/// size does not change is skipped (equal sizes: a copy). src: (height, width, channels);
/// returns (out_height, out_width, channels). Throws sit::Error on empty sizes.
std::vector<uint8_t> pil_bicubic_resize(const uint8_t* src, int64_t height, int64_t width,
                                        int64_t channels, int64_t out_height, int64_t out_width);

/// Pillow `Image.resize(..., filter)` of a uint8 image (BICUBIC or BOX), as above.
std::vector<uint8_t> pil_resize(const uint8_t* src, int64_t height, int64_t width,
                                int64_t channels, int64_t out_height, int64_t out_width,
                                PilFilter filter);

/// The same filter on float32 data as Pillow's mode `F` (dgm-eval's `--clean_resize`):
/// double weights, double accumulation, float32 stored after each pass; no rounding, no
/// clipping.
std::vector<float> pil_bicubic_resize(const float* src, int64_t height, int64_t width,
                                      int64_t channels, int64_t out_height, int64_t out_width);

/// The centred size x size square of an image of at least that size: rows from
/// (height - size) / 2 and columns from (width - size) / 2 (floor), as CMMD's
/// `_center_crop_and_resize` and ADM's `center_crop_arr`. Throws sit::Error if too small.
std::vector<uint8_t> center_crop(const uint8_t* src, int64_t height, int64_t width,
                                 int64_t channels, int64_t size);

/// ADM's center_crop_arr (guided_diffusion image_datasets.py), which EDM2's dataset tool
/// calls center-crop-dhariwal and which made the ImageNet references: while the short side
/// is at least 2 size, halve with BOX (floor sizes); resize with BICUBIC so the short side
/// is `size` (the other side round(side * scale), Python's round half to even); crop the
/// centred size x size square ((H - size) / 2, (W - size) / 2, floor). Any input size.
std::vector<uint8_t> adm_center_crop(const uint8_t* src, int64_t height, int64_t width,
                                     int64_t channels, int64_t size);

}  // namespace sit::io
