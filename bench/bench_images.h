#pragma once
// Synthetic uint8 images for the extraction benchmarks.
#include <ATen/ATen.h>

#include <string>

#include "reference_stats/npy.h"

namespace sit::bench {

/// An ADM-style npz at `path`: arr_0 holds n uniform random uint8 images of side x side x 3,
/// written 50 at a time.
inline void write_random_images_npz(const std::string& path, int64_t n, int64_t side = 256) {
  io::NpzWriter w(path);
  w.begin("arr_0", io::DType::kU1, {n, side, side, 3});
  for (int64_t s = 0; s < n; s += 50) {
    const int64_t b = std::min<int64_t>(50, n - s);
    const at::Tensor img = at::randint(256, {b, side, side, 3}, at::kByte);
    w.append_rows(img.data_ptr<uint8_t>(), b);
  }
  w.end();
  w.close();
}

}  // namespace sit::bench
