#pragma once
/// The modern metrics' feature networks, from TorchScript files that tools/ writes:
///  - DINOv2 ViT/14 (tools/export_dinov2.py): FD_DINOv2 features, the CLS token after the
///    final LayerNorm (1024-d for ViT-L/14), block "dinov2". Input 224 x 224 in one of the
///    published resize modes (metrics_modern.md 1.1-1.2): `pil` — Pillow's bicubic on
///    uint8 (dgm-eval's default, EDM2's resize_mode='pil'), `torch` — PyTorch's
///    antialiased bicubic on float 0..255, unrounded and unclamped (EDM2's default,
///    which its published reference pickles used), or `pil-float` — Pillow's float
///    bicubic, clipped (dgm-eval --clean_resize). Then /255 and ImageNet mean/std.
///  - CLIP ViT-L/14@336px image tower (tools/export_clip.py): CMMD's embedding, the
///    projected class token (768-d; CMMD L2-normalises it), block "clip". Input: centre
///    crop to a square, Pillow bicubic to 336 x 336 on uint8, /255, CLIP's mean/std
///    (google-research cmmd io_util.py / embedding.py, section 2.2).
/// Networks run in float32 with TF32 off; preprocessing runs on the CPU (pil) or the
/// network's device (torch).

#include <memory>
#include <string>

#include "models/feature_extractor.h"

namespace sit::models {

enum class ResizeMode {
  kPil,       ///< Pillow BICUBIC on uint8, rounded and clipped (byte-exact)
  kTorch,     ///< torch interpolate(bicubic, antialias=True) on float, unrounded
  kPilFloat,  ///< Pillow BICUBIC per channel in mode F, clipped to [0, 255], not rounded
              ///< (dgm-eval's --clean_resize)
};
const char* to_string(ResizeMode m);
/// "pil" / "torch" / "pil-float"; errors list them.
ResizeMode parse_resize_mode(const std::string& name);

/// Everything that defines a ViT extractor besides its file.
struct ViTPreprocessing {
  const char* kind;   ///< "dinov2", "clip": the registry name and the block name
  int64_t size;       ///< square input side
  bool crop_square;   ///< centre crop to min(H, W) first (CMMD)
  ResizeMode resize;
  float mean[3], std[3];
};

/// DINOv2's preprocessing in `resize` mode; CLIP's (CMMD's).
ViTPreprocessing dinov2_preprocessing(ResizeMode resize);
ViTPreprocessing clip_preprocessing();

/// uint8 (N, H, W, 3) images -> float32 (N, 3, size, size) network input on `device`.
at::Tensor vit_preprocess(const at::Tensor& images, const ViTPreprocessing& p,
                          const std::string& device);

/// A TorchScript ViT whose forward maps the preprocessed (N, 3, S, S) batch to (N, D).
class ViTExtractor final : public FeatureExtractor {
 public:
  /// Loads `path` onto `device` and runs it once on a zero image to learn its width;
  /// errors name the file (not TorchScript, or a forward that does not give (1, D)).
  ViTExtractor(const std::string& path, ViTPreprocessing preprocessing,
               const std::string& device = "cpu");
  ~ViTExtractor();

  std::vector<FeatureBlockInfo> blocks() const override;  ///< one: {kind, D}
  at::Tensor preprocess(const at::Tensor& images) const override;
  std::vector<at::Tensor> extract_blocks(const at::Tensor& x) const override;
  const std::string& path() const override;
  const std::string& sha256() const override;
  /// "dinov2 FILE (resize pil, 224 px, sha256 HEX)".
  std::string identity() const override;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sit::models
