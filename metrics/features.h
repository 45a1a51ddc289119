#pragma once
/// Non-owning views of row-major feature matrices, and input validation.

#include <cstdint>
#include <string>

namespace sit::metrics {

/// Row-major [rows, cols] float32 matrix, e.g. pool_3 features (N, 2048).
struct FeatureView {
  const float* data = nullptr;
  int64_t rows = 0;
  int64_t cols = 0;
  const float* row(int64_t i) const { return data + i * cols; }
};

/// Throws sit::Error naming `what` and the first row holding NaN or Inf (rows numbered
/// from `first_row`: the view is a piece of a larger set).
void check_finite(const FeatureView& features, const std::string& what, int64_t first_row = 0);

}  // namespace sit::metrics
