#include "metrics/kid.h"

#include <algorithm>
#include <cmath>
#include <random>

#include "common/error.h"
#include "metrics/linalg.h"
#include "metrics/random.h"

namespace sit::metrics {
namespace {

std::vector<float> gather_rows(const FeatureView& f, const std::vector<int64_t>& idx) {
  std::vector<float> out(idx.size() * static_cast<size_t>(f.cols));
  for (size_t i = 0; i < idx.size(); ++i)
    std::copy(f.row(idx[i]), f.row(idx[i]) + f.cols, out.data() + i * f.cols);
  return out;
}

/// Sum of k(a_i, b_j) over all pairs (exclude_diagonal: over i != j), kernel in double
/// from float32 inner products.
double kernel_sum(const float* a, const float* b, int64_t m, int64_t d, bool exclude_diagonal,
                  std::vector<float>& gram) {
  linalg::sgemm(true, false, m, m, d, 1.0f, b, d, a, d, 0.0f, gram.data(), m);
  const double inv_d = 1.0 / static_cast<double>(d);
  std::vector<double> row_sums(static_cast<size_t>(m));
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < m; ++i) {
    double s = 0;
    const float* g = gram.data() + i * m;
    for (int64_t j = 0; j < m; ++j) {
      if (exclude_diagonal && i == j) continue;
      const double k = static_cast<double>(g[j]) * inv_d + 1.0;
      s += k * k * k;
    }
    row_sums[i] = s;
  }
  double total = 0;
  for (double s : row_sums)
    total += s;
  return total;
}

}  // namespace

KidResult kernel_inception_distance(const FeatureView& reference, const FeatureView& samples,
                                    const KidOptions& o) {
  if (reference.cols != samples.cols)
    fail("kernel_inception_distance: feature dimensions must match, got ", reference.cols,
         " (reference) and ", samples.cols, " (samples)");
  if (o.subsets < 1) fail("kernel_inception_distance: subsets must be >= 1, got ", o.subsets);
  const int64_t m = std::min({o.subset_size, reference.rows, samples.rows});
  if (m < 2)
    fail("kernel_inception_distance: subset size must be >= 2, got ", m, " (", reference.rows,
         " reference rows, ", samples.rows, " sample rows)");
  const int64_t d = reference.cols;
  std::mt19937_64 rng(o.seed);
  std::vector<float> gram(static_cast<size_t>(m * m));
  KidResult r;
  r.subset_size = m;
  const double mm1 = static_cast<double>(m) * static_cast<double>(m - 1);
  for (int64_t s = 0; s < o.subsets; ++s) {
    // Sample side first, then reference, in the order of clean-fid / NVIDIA's loops.
    const auto x = gather_rows(samples, sample_without_replacement(rng, samples.rows, m));
    const auto y = gather_rows(reference, sample_without_replacement(rng, reference.rows, m));
    const double kxx = kernel_sum(x.data(), x.data(), m, d, true, gram);
    const double kyy = kernel_sum(y.data(), y.data(), m, d, true, gram);
    const double kxy = kernel_sum(x.data(), y.data(), m, d, false, gram);
    r.subset_values.push_back(kxx / mm1 + kyy / mm1 -
                              2.0 * kxy / (static_cast<double>(m) * static_cast<double>(m)));
  }
  double sum = 0;
  for (double v : r.subset_values)
    sum += v;
  r.mean = sum / static_cast<double>(o.subsets);
  double var = 0;
  for (double v : r.subset_values)
    var += (v - r.mean) * (v - r.mean);
  r.std = std::sqrt(var / static_cast<double>(o.subsets));
  return r;
}

}  // namespace sit::metrics
