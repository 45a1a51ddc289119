#pragma once
/// Paired bootstrap of Frechet distances. Two sample sets A and B drawn with the same
/// per-sample seeds are paired row by row; each replicate resamples row indices with
/// replacement — the same resample for both sides, the reference fixed — and recomputes
/// both distances from multinomially weighted statistics (no copies of the rows). The
/// percentile interval of FD(B) - FD(A) says whether the difference is significant.

#include <cstdint>
#include <vector>

#include "metrics/feature_stats.h"
#include "metrics/features.h"

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

/// Mean and covariance (divisor sum(w) - ddof) of rows weighted by integer counts, in
/// double, blocked: the weighted rows are never materialised whole.
FeatureStats weighted_stats(const FeatureView& x, const std::vector<int32_t>& counts,
                            StatsOptions options = {});

/// FD(B, ref) - FD(A, ref) with a paired bootstrap interval. A and B must have the same
/// number of rows (paired by index).
PairedDifference paired_bootstrap_fd(const FeatureView& a, const FeatureView& b,
                                     const FeatureStats& reference, const BootstrapOptions& o);

/// The same for a metric that is a mean of per-sample values (precision: the samples'
/// inside-the-reference-manifold indicators, whose reference balls do not depend on the
/// resample): mean(b) - mean(a) with the same resamples as paired_bootstrap_fd.
PairedDifference paired_bootstrap_mean(const std::vector<double>& a, const std::vector<double>& b,
                                       const BootstrapOptions& o);

}  // namespace sit::metrics
