#include "metrics/features.h"

#include <cmath>
#include <limits>

#include "common/error.h"

namespace sit::metrics {

void check_finite(const FeatureView& features, const std::string& what, int64_t first_row) {
  int64_t first_bad = std::numeric_limits<int64_t>::max();
#pragma omp parallel for schedule(static) reduction(min : first_bad)
  for (int64_t i = 0; i < features.rows; ++i) {
    const float* r = features.row(i);
    // Multiplying by 0 maps every finite value to 0 and NaN/Inf to NaN: one test per row.
    float acc = 0.0f;
    for (int64_t j = 0; j < features.cols; ++j)
      acc += r[j] * 0.0f;
    if (acc != 0.0f && i < first_bad) first_bad = i;
  }
  if (first_bad != std::numeric_limits<int64_t>::max()) {
    const float* r = features.row(first_bad);
    int64_t col = 0;
    while (col < features.cols && std::isfinite(r[col]))
      ++col;
    fail(what, ": features must be finite, got ", r[col], " at row ", first_row + first_bad, ", column ", col,
         " (first bad row)");
  }
}

}  // namespace sit::metrics
