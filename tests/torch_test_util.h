#pragma once
// Helpers for tests that compare LibTorch outputs with fixtures written by NumPy.
#include <ATen/ATen.h>

#include <cstdint>
#include <numeric>
#include <string>
#include <vector>

#include "reference_stats/npy.h"

namespace sit::testing {

/// An .npy fixture as a tensor: int64 -> kLong, uint8 -> kByte, anything else -> kFloat.
inline at::Tensor load_npy_tensor(const std::string& path) {
  io::NpyArray a = io::open_npy(path);
  if (a.dtype() == io::DType::kI8)
    return at::tensor(a.read_all<int64_t>(), at::kLong).view(a.shape());
  if (a.dtype() == io::DType::kU1) {
    at::Tensor t = at::empty(a.shape(), at::kByte);
    a.read_rows_u8(0, a.shape()[0], t.data_ptr<uint8_t>());
    return t;
  }
  return at::tensor(a.read_all<float>(), at::kFloat).view(a.shape());
}

/// max |a - b| / max |b|
inline double relative_error(const at::Tensor& a, const at::Tensor& b) {
  return (a - b).abs().max().item<double>() / b.abs().max().item<double>();
}

/// Sample ids 0..n-1.
inline std::vector<int64_t> iota_ids(int64_t n) {
  std::vector<int64_t> ids(static_cast<size_t>(n));
  std::iota(ids.begin(), ids.end(), 0);
  return ids;
}

/// max |t|
inline double max_abs(const at::Tensor& t) {
  return t.abs().max().item<double>();
}

}  // namespace sit::testing
