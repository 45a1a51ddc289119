#include "metrics/bootstrap.h"

#include <algorithm>
#include <cmath>
#include <random>

#include "common/error.h"
#include "metrics/frechet.h"
#include "metrics/linalg.h"
#include "metrics/random.h"

namespace sit::metrics {

std::vector<int32_t> bootstrap_counts(int64_t n, uint64_t seed, int replicate) {
  // One generator per replicate: replicate r's resample does not depend on how many
  // replicates run or in which order.
  std::seed_seq seq{static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32),
                    static_cast<uint32_t>(replicate), 0x5eedu};
  std::mt19937_64 rng(seq);
  std::vector<int32_t> counts(static_cast<size_t>(n), 0);
  for (int64_t i = 0; i < n; ++i)
    ++counts[uniform_below(rng, static_cast<uint64_t>(n))];
  return counts;
}

FeatureStats weighted_stats(const FeatureView& x, const std::vector<int32_t>& counts,
                            StatsOptions options) {
  const int64_t n = x.rows, d = x.cols;
  if (static_cast<int64_t>(counts.size()) != n)
    fail("weighted_stats: ", counts.size(), " weights for ", n, " rows");
  double total = 0;
  for (int32_t c : counts)
    total += c;
  if (total - options.ddof <= 0) fail("weighted_stats: total weight ", total, " too small");
  FeatureStats s;
  s.count = static_cast<int64_t>(total);
  s.mu = Eigen::VectorXd::Zero(d);
  for (int64_t i = 0; i < n; ++i)
    if (counts[i])
      for (int64_t j = 0; j < d; ++j)
        s.mu[j] += counts[i] * static_cast<double>(x.row(i)[j]);
  s.mu /= total;
  // sum_i c_i (x_i - mu)(x_i - mu)^T = Y Y^T with columns sqrt(c_i) (x_i - mu).
  s.sigma = Eigen::MatrixXd::Zero(d, d);
  const int64_t block = 2048;
  std::vector<double> y(static_cast<size_t>(d * block));
  int64_t filled = 0;
  auto flush = [&] {
    if (filled) linalg::dsyrk_lower(d, filled, 1.0, y.data(), d, 1.0, s.sigma.data(), d);
    filled = 0;
  };
  for (int64_t i = 0; i < n; ++i) {
    if (!counts[i]) continue;
    const double w = std::sqrt(static_cast<double>(counts[i]));
    double* col = y.data() + filled * d;
    for (int64_t j = 0; j < d; ++j)
      col[j] = w * (static_cast<double>(x.row(i)[j]) - s.mu[j]);
    if (++filled == block) flush();
  }
  flush();
  s.sigma.triangularView<Eigen::StrictlyUpper>() = s.sigma.transpose();
  s.sigma /= total - options.ddof;
  return s;
}

namespace {

void check_options(const BootstrapOptions& o) {
  if (o.replicates < 2) fail("paired bootstrap: need at least 2 replicates, got ", o.replicates);
  if (!(o.level > 0 && o.level < 1))
    fail("paired bootstrap: level must be in (0, 1), got ", o.level);
}

/// Percentile interval of the replicates and significance.
void finish(PairedDifference& r, const BootstrapOptions& o) {
  std::vector<double> sorted = r.replicates;
  std::sort(sorted.begin(), sorted.end());
  // linear interpolation between order statistics (numpy's default percentile)
  auto quantile = [&](double q) {
    const double pos = q * static_cast<double>(sorted.size() - 1);
    const auto i = static_cast<size_t>(std::floor(pos));
    const double f = pos - static_cast<double>(i);
    return i + 1 < sorted.size() ? sorted[i] * (1 - f) + sorted[i + 1] * f : sorted[i];
  };
  r.lo = quantile((1 - o.level) / 2);
  r.hi = quantile(1 - (1 - o.level) / 2);
  r.significant = r.lo > 0 || r.hi < 0;
}

}  // namespace

std::vector<std::vector<int32_t>> bootstrap_weight_set(int64_t n, const BootstrapOptions& o) {
  check_options(o);
  if (n < 1) fail("paired bootstrap: no samples");
  std::vector<std::vector<int32_t>> w;
  w.reserve(static_cast<size_t>(o.replicates) + 1);
  w.emplace_back(static_cast<size_t>(n), 1);
  for (int r = 0; r < o.replicates; ++r)
    w.push_back(bootstrap_counts(n, o.seed, r));
  return w;
}

PairedDifference paired_difference(const std::vector<double>& a, const std::vector<double>& b,
                                   const BootstrapOptions& o) {
  check_options(o);
  if (a.size() != b.size() || a.size() != static_cast<size_t>(o.replicates) + 1)
    fail("paired bootstrap: expected ", o.replicates + 1, " values per side, got ", a.size(),
         " and ", b.size());
  PairedDifference r;
  r.a = a[0];
  r.b = b[0];
  r.diff = r.b - r.a;
  for (size_t k = 1; k < a.size(); ++k)
    r.replicates.push_back(b[k] - a[k]);
  finish(r, o);
  return r;
}

std::vector<double> resampled_fd(const FeatureView& x, const FrechetReference& reference,
                                 const std::vector<std::vector<int32_t>>& weights) {
  std::vector<double> out;
  out.reserve(weights.size());
  for (const auto& w : weights)
    out.push_back(reference.distance(weighted_stats(x, w)));
  return out;
}

}  // namespace sit::metrics
