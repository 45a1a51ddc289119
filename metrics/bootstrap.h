#pragma once
/// Paired bootstrap of metric differences. Two sample sets A and B drawn with the same
/// per-sample seeds are paired row by row; each replicate resamples row indices with
/// replacement — the same resample for both sides, the reference fixed — and recomputes
/// both metrics from the multinomial counts as weights (no copies of the rows). The
/// percentile interval of metric(B) - metric(A) says whether the difference is
/// significant. Frechet distances and means live here; Inception Score, KID and
/// precision / recall have their weighted forms beside their plain ones.

#include <cstdint>
#include <vector>

#include "metrics/feature_stats.h"
#include "metrics/features.h"
#include "metrics/frechet.h"

namespace sit::metrics {

struct BootstrapOptions {
  int replicates = 100;
  uint64_t seed = 0;
  double level = 0.95;  ///< two-sided confidence level
};

struct PairedDifference {
  double a = 0, b = 0;       ///< FD of A and of B on all rows
  double diff = 0;           ///< b - a
  double lo = 0, hi = 0;     ///< percentile interval of the replicates' b - a
  bool significant = false;  ///< the interval excludes 0
  std::vector<double> replicates;
};

/// Counts of n draws with replacement from n items (a multinomial(n, 1/n) vector).
std::vector<int32_t> bootstrap_counts(int64_t n, uint64_t seed, int replicate);

/// The weight vectors one paired bootstrap evaluates each side's statistic on: element 0
/// is all ones (the statistic on all rows), element 1 + r is replicate r's counts.
/// n x (replicates + 1) int32 values: 20 MB for 50,000 rows and 100 replicates.
std::vector<std::vector<int32_t>> bootstrap_weight_set(int64_t n, const BootstrapOptions& o);

/// A paired difference from each side's statistic on bootstrap_weight_set(): values[0]
/// on all rows, values[1 + r] on replicate r's resample.
PairedDifference paired_difference(const std::vector<double>& a, const std::vector<double>& b,
                                   const BootstrapOptions& o);

/// Mean and covariance (divisor sum(w) - ddof) of rows weighted by integer counts, in
/// double, blocked: the weighted rows are never materialised whole.
FeatureStats weighted_stats(const FeatureView& x, const std::vector<int32_t>& counts,
                            StatsOptions options = {});

/// FD(x weighted by w, reference) for each weight vector.
std::vector<double> resampled_fd(const FeatureView& x, const FrechetReference& reference,
                                 const std::vector<std::vector<int32_t>>& weights);

}  // namespace sit::metrics
