#include "reference_stats/image_resize.h"

#include <algorithm>
#include <cmath>

#include "common/error.h"

namespace sit::io {
namespace {

constexpr int kPrecisionBits = 32 - 8 - 2;  // Pillow's PRECISION_BITS for 8-bit data

/// Pillow's box filter: 1 on (-0.5, 0.5], support 0.5.
double box_filter(double x) {
  return x > -0.5 && x <= 0.5 ? 1.0 : 0.0;
}

/// Keys' cubic convolution kernel with a = -0.5, in Pillow's evaluation order (the
/// nesting fixes the last bits, which can flip a fixed-point coefficient).
double bicubic_filter(double x) {
  constexpr double a = -0.5;
  x = std::fabs(x);
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
  if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
  return 0.0;
}

uint8_t clip8(int32_t acc) {
  const int32_t v = acc >> kPrecisionBits;  // arithmetic shift: floor division
  return static_cast<uint8_t>(v < 0 ? 0 : v > 255 ? 255 : v);
}

void check_sizes(int64_t height, int64_t width, int64_t channels, int64_t out_height,
                 int64_t out_width) {
  if (height <= 0 || width <= 0 || channels <= 0 || out_height <= 0 || out_width <= 0)
    fail("bicubic resize: sizes must be positive, got ", height, "x", width, "x", channels,
         " -> ", out_height, "x", out_width);
}

/// One pass along an axis: `lines` lines of `in` pixels with `stride` elements between
/// neighbouring pixels of a line, `line_step` between lines' first pixels; writes
/// `out` pixels per line at the same line layout of dst.
template <class T, class Acc>
void resample_axis(const T* src, T* dst, const ResampleCoefficients& c, int64_t lines,
                   int64_t channels, int64_t src_pixel_stride, int64_t src_line_stride,
                   int64_t dst_pixel_stride, int64_t dst_line_stride, Acc accumulate) {
  const int64_t out = static_cast<int64_t>(c.first.size());
  for (int64_t l = 0; l < lines; ++l)
    for (int64_t o = 0; o < out; ++o)
      for (int64_t ch = 0; ch < channels; ++ch)
        dst[l * dst_line_stride + o * dst_pixel_stride + ch] =
            accumulate(src + l * src_line_stride + c.first[o] * src_pixel_stride + ch,
                       src_pixel_stride, o);
}

template <class T, class Acc>
std::vector<T> resize_two_pass(const T* src, int64_t height, int64_t width, int64_t channels,
                               int64_t out_height, int64_t out_width, Acc make_accumulate,
                               PilFilter filter = PilFilter::kBicubic) {
  check_sizes(height, width, channels, out_height, out_width);
  std::vector<T> current(src, src + height * width * channels);
  int64_t w = width;
  if (out_width != width) {  // horizontal pass first, as Pillow
    const auto c = pil_coefficients(width, out_width, filter);
    std::vector<T> next(static_cast<size_t>(height * out_width * channels));
    resample_axis(current.data(), next.data(), c, height, channels, channels, width * channels,
                  channels, out_width * channels, make_accumulate(c));
    current.swap(next);
    w = out_width;
  }
  if (out_height != height) {
    const auto c = pil_coefficients(height, out_height, filter);
    std::vector<T> next(static_cast<size_t>(out_height * w * channels));
    // columns are the lines: a pixel step is one row, a line step one pixel
    resample_axis(current.data(), next.data(), c, w, channels, w * channels, channels,
                  w * channels, channels, make_accumulate(c));
    current.swap(next);
  }
  return current;
}

}  // namespace

ResampleCoefficients pil_bicubic_coefficients(int64_t in, int64_t out) {
  return pil_coefficients(in, out, PilFilter::kBicubic);
}

ResampleCoefficients pil_coefficients(int64_t in, int64_t out, PilFilter filter) {
  if (in <= 0 || out <= 0)
    fail("bicubic resize: axis lengths must be positive, got ", in, " -> ", out);
  const double scale = static_cast<double>(in) / static_cast<double>(out);
  const double filterscale = std::max(scale, 1.0);
  const double support = (filter == PilFilter::kBox ? 0.5 : 2.0) * filterscale;
  double (*kernel)(double) = filter == PilFilter::kBox ? box_filter : bicubic_filter;
  const double ss = 1.0 / filterscale;
  ResampleCoefficients c;
  c.taps = static_cast<int64_t>(std::ceil(support)) * 2 + 1;
  c.first.resize(static_cast<size_t>(out));
  c.count.resize(static_cast<size_t>(out));
  c.weights.assign(static_cast<size_t>(out * c.taps), 0.0);
  c.fixed.assign(static_cast<size_t>(out * c.taps), 0);
  for (int64_t o = 0; o < out; ++o) {
    const double center = (static_cast<double>(o) + 0.5) * scale;
    // C casts truncate toward zero
    const int64_t xmin = std::max<int64_t>(static_cast<int64_t>(center - support + 0.5), 0);
    const int64_t xmax = std::min<int64_t>(static_cast<int64_t>(center + support + 0.5), in);
    const int64_t n = xmax - xmin;
    double* w = c.weights.data() + o * c.taps;
    double ww = 0.0;
    for (int64_t j = 0; j < n; ++j) {
      w[j] = kernel((static_cast<double>(j + xmin) - center + 0.5) * ss);
      ww += w[j];
    }
    if (ww != 0.0)
      for (int64_t j = 0; j < n; ++j)
        w[j] /= ww;
    int32_t* q = c.fixed.data() + o * c.taps;
    for (int64_t j = 0; j < n; ++j)  // round half away from zero
      q[j] = static_cast<int32_t>(w[j] * (1 << kPrecisionBits) + (w[j] < 0 ? -0.5 : 0.5));
    c.first[o] = xmin;
    c.count[o] = n;
  }
  return c;
}

std::vector<uint8_t> pil_bicubic_resize(const uint8_t* src, int64_t height, int64_t width,
                                        int64_t channels, int64_t out_height,
                                        int64_t out_width) {
  return pil_resize(src, height, width, channels, out_height, out_width, PilFilter::kBicubic);
}

std::vector<uint8_t> pil_resize(const uint8_t* src, int64_t height, int64_t width,
                                int64_t channels, int64_t out_height, int64_t out_width,
                                PilFilter filter) {
  return resize_two_pass(src, height, width, channels, out_height, out_width,
                         [](const ResampleCoefficients& c) {
                           return [&c](const uint8_t* p, int64_t step, int64_t o) {
                             const int32_t* q = c.fixed.data() + o * c.taps;
                             int32_t acc = 1 << (kPrecisionBits - 1);
                             for (int64_t j = 0; j < c.count[o]; ++j)
                               acc += static_cast<int32_t>(p[j * step]) * q[j];
                             return clip8(acc);
                           };
                         },
                         filter);
}

std::vector<float> pil_bicubic_resize(const float* src, int64_t height, int64_t width,
                                      int64_t channels, int64_t out_height, int64_t out_width) {
  return resize_two_pass(src, height, width, channels, out_height, out_width,
                         [](const ResampleCoefficients& c) {
                           return [&c](const float* p, int64_t step, int64_t o) {
                             const double* w = c.weights.data() + o * c.taps;
                             double acc = 0.0;
                             for (int64_t j = 0; j < c.count[o]; ++j)
                               acc += static_cast<double>(p[j * step]) * w[j];
                             return static_cast<float>(acc);
                           };
                         });
}

std::vector<uint8_t> center_crop(const uint8_t* src, int64_t height, int64_t width,
                                 int64_t channels, int64_t size) {
  if (size <= 0 || height < size || width < size)
    fail("centre crop: a ", size, "x", size, " crop needs an image at least that large, got ",
         height, "x", width);
  const int64_t top = (height - size) / 2, left = (width - size) / 2;
  std::vector<uint8_t> out(static_cast<size_t>(size * size * channels));
  for (int64_t y = 0; y < size; ++y)
    std::copy_n(src + ((top + y) * width + left) * channels, size * channels,
                out.data() + y * size * channels);
  return out;
}

std::vector<uint8_t> adm_center_crop(const uint8_t* src, int64_t height, int64_t width,
                                     int64_t channels, int64_t size) {
  if (size <= 0) fail("centre crop: the size must be positive, got ", size);
  std::vector<uint8_t> image(src, src + height * width * channels);
  int64_t h = height, w = width;
  while (std::min(h, w) >= 2 * size) {  // halve with BOX while the short side allows
    image = pil_resize(image.data(), h, w, channels, h / 2, w / 2, PilFilter::kBox);
    h /= 2;
    w /= 2;
  }
  const double scale = static_cast<double>(size) / static_cast<double>(std::min(h, w));
  // Python's round: half to even (nearbyint in the default rounding mode)
  const auto oh = static_cast<int64_t>(std::nearbyint(static_cast<double>(h) * scale));
  const auto ow = static_cast<int64_t>(std::nearbyint(static_cast<double>(w) * scale));
  image = pil_bicubic_resize(image.data(), h, w, channels, oh, ow);
  return center_crop(image.data(), oh, ow, channels, size);
}

}  // namespace sit::io
