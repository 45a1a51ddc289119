#pragma once
/// FD-infinity (Chong & Forsyth, CVPR 2020): the Frechet distance extrapolated to an
/// infinite sample count. FD_N is computed on 15 subsets of N generated rows, FD_N =
/// a + b / N is fitted by ordinary least squares, and the intercept a is reported.
/// Deterministic form of metrics_modern.md section 4.4: dgm-eval's grid
/// (start = min(5000, max(M / 10, 2)), numpy linspace to M, truncated), each subset the
/// first N entries of a fresh permutation from one seeded SplitMix64 stream (random.h),
/// float64 statistics with divisor N - 1. The official code and dgm-eval draw unseeded
/// subsets, so their values vary from run to run; this one is reproducible.

#include <cstdint>
#include <utility>
#include <vector>

#include "metrics/feature_stats.h"
#include "metrics/features.h"
#include "metrics/frechet.h"

namespace sit::metrics {

struct FdInfinityOptions {
  uint64_t seed = 0;  ///< of the SplitMix64 stream the subsets are drawn from
  int points = 15;    ///< grid size (both references: 15)
  /// Subsets are the first N rows in stored order instead of random ones (a different,
  /// named estimator: its FD_N are correlated; the spec's "prefix variant").
  bool prefix = false;
  FrechetOptions frechet;
};

struct FdInfinityResult {
  double value = 0;           ///< the intercept a: FD at N = infinity
  double slope = 0;           ///< b
  std::vector<int64_t> n;     ///< the grid
  std::vector<double> fd;     ///< FD_N for each grid point
};

/// The grid for M generated rows: `points` values from min(5000, max(M / 10, 2)) to M as
/// numpy.linspace computes them (start + i step, the last exactly M), truncated to
/// integers. Throws sit::Error for M < 3 or points < 2.
std::vector<int64_t> fd_infinity_grid(int64_t m, int points = 15);

/// samples: (M, D) generated rows; reference: statistics of the reference (D). Throws
/// sit::Error for a width mismatch, non-finite rows or too few rows.
FdInfinityResult fd_infinity(const FeatureView& samples, const FeatureStats& reference,
                             const FdInfinityOptions& options = {});
/// The same on double rows (row-major M x D).
FdInfinityResult fd_infinity(const double* samples, int64_t m, int64_t d,
                             const FeatureStats& reference, const FdInfinityOptions& options = {});

/// Least squares y = a + b x; returns {a, b}. Throws sit::Error unless the x differ.
std::pair<double, double> least_squares_line(const std::vector<double>& x,
                                             const std::vector<double>& y);

}  // namespace sit::metrics
