#include "metrics/cmmd.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "common/error.h"
#include "metrics/linalg.h"

namespace sit::metrics {
namespace {

/// Rows divided by their Euclidean norms, in double; the squared norms after it.
template <class T>
std::vector<double> normalised(const T* rows, int64_t n, int64_t d, const char* side,
                               std::vector<double>& sq_norms) {
  std::vector<double> out(static_cast<size_t>(n * d));
  sq_norms.resize(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    double s = 0;
    for (int64_t j = 0; j < d; ++j) {
      const double v = static_cast<double>(rows[i * d + j]);
      if (!std::isfinite(v)) fail("CMMD: ", side, " row ", i, " has a non-finite value");
      s += v * v;
    }
    if (s == 0) fail("CMMD: ", side, " row ", i, " is all zeros and cannot be L2-normalised");
    const double inv = 1.0 / std::sqrt(s);
    double t = 0;
    for (int64_t j = 0; j < d; ++j) {
      const double v = static_cast<double>(rows[i * d + j]) * inv;
      out[i * d + j] = v;
      t += v * v;
    }
    sq_norms[i] = t;
  }
  return out;
}

/// Mean of k(a_i, b_j) over all n x m pairs, tiled; per-row sums in row order, so the
/// result does not depend on the thread count.
double kernel_mean(const std::vector<double>& a, const std::vector<double>& a_sq, int64_t n,
                   const std::vector<double>& b, const std::vector<double>& b_sq, int64_t m,
                   int64_t d, const CmmdOptions& o) {
  const double gamma = 1.0 / (2.0 * o.sigma * o.sigma);
  std::vector<double> gram, row_sums(static_cast<size_t>(n), 0.0);
  for (int64_t i0 = 0; i0 < n; i0 += o.tile) {
    const int64_t ni = std::min(o.tile, n - i0);
    for (int64_t j0 = 0; j0 < m; j0 += o.tile) {
      const int64_t nj = std::min(o.tile, m - j0);
      gram.resize(static_cast<size_t>(ni * nj));
      // gram (column-major nj x ni) = B_tile A_tile^T: row i of the tile is gram + i * nj
      linalg::dgemm(true, false, nj, ni, d, 1.0, b.data() + j0 * d, d, a.data() + i0 * d, d, 0.0,
                    gram.data(), nj);
#pragma omp parallel for schedule(static)
      for (int64_t i = 0; i < ni; ++i) {
        double s = 0;
        const double* g = gram.data() + i * nj;
        for (int64_t j = 0; j < nj; ++j)
          s += std::exp(-(a_sq[i0 + i] + b_sq[j0 + j] - 2.0 * g[j]) * gamma);
        row_sums[i0 + i] += s;
      }
    }
  }
  double total = 0;
  for (double s : row_sums)
    total += s;
  return total / (static_cast<double>(n) * static_cast<double>(m));
}

template <class T>
CmmdResult cmmd_impl(const T* x_rows, int64_t n, const T* y_rows, int64_t m, int64_t d,
                     const CmmdOptions& o) {
  if (n < 1 || m < 1)
    fail("CMMD: both sets need at least one row, got ", n, " reference and ", m, " sample rows");
  if (d < 1) fail("CMMD: embeddings need at least one column");
  if (!(o.sigma > 0)) fail("CMMD: sigma must be positive, got ", o.sigma);
  if (o.tile < 1) fail("CMMD: tile must be >= 1, got ", o.tile);
  std::vector<double> x_sq, y_sq;
  const auto x = normalised(x_rows, n, d, "reference", x_sq);
  const auto y = normalised(y_rows, m, d, "sample", y_sq);
  CmmdResult r;
  r.k_xx = kernel_mean(x, x_sq, n, x, x_sq, n, d, o);
  r.k_yy = kernel_mean(y, y_sq, m, y, y_sq, m, d, o);
  r.k_xy = kernel_mean(x, x_sq, n, y, y_sq, m, d, o);
  r.value = o.scale * (r.k_xx + r.k_yy - 2.0 * r.k_xy);
  return r;
}

}  // namespace

CmmdResult cmmd(const FeatureView& reference, const FeatureView& samples,
                const CmmdOptions& options) {
  if (reference.cols != samples.cols)
    fail("CMMD: embedding widths must match, got ", reference.cols, " (reference) and ",
         samples.cols, " (samples)");
  return cmmd_impl(reference.data, reference.rows, samples.data, samples.rows, reference.cols,
                   options);
}

CmmdResult cmmd(const double* reference, int64_t n, const double* samples, int64_t m, int64_t d,
                const CmmdOptions& options) {
  return cmmd_impl(reference, n, samples, m, d, options);
}

}  // namespace sit::metrics
