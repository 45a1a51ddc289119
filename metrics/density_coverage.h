#pragma once
/// Density and coverage (Naeem et al., ICML 2020) as coded in clovaai's prdc
/// (compute_prdc) and dgm-eval's copy (spec/metrics_modern.md section 3): Euclidean
/// distances (not squared) in float64, a real point's radius is the distance to its k-th
/// nearest other real point, and every comparison is strict (<). Only the real balls are
/// used:
///   density  = (1 / (k M)) sum_j #{ i : d(R_i, F_j) < r_i }   (can exceed 1)
///   coverage = (1 / N) #{ i : min_j d(R_i, F_j) < r_i }
/// Not part of ADM's evaluator (whose precision/recall use k = 3, squared distances, <=).

#include <cstdint>
#include <vector>

#include "metrics/features.h"

namespace sit::metrics {

struct DensityCoverageOptions {
  int k = 5;            ///< nearest neighbours (prdc's nearest_k; dgm-eval's default 5)
  int64_t block = 256;  ///< rows per distance block (memory: block x N doubles)
};

/// Which real balls hold each fake point: what density, coverage and their bootstrap
/// resamples derive from. CSR lists: the reals of fake j are
/// reals_of_fake[offsets[j] .. offsets[j + 1]).
struct RealBalls {
  int k = 5;
  int64_t reals = 0, fakes = 0;
  std::vector<double> radii;  ///< (N) k-th neighbour distance of each real point
  std::vector<int64_t> offsets;
  std::vector<int32_t> reals_of_fake;
};

/// as prdc.py: compute_nearest_neighbour_distances and the ball tests of compute_prdc.
/// Distances as sklearn's euclidean_distances: sqrt(max(|a|^2 - 2 a.b + |b|^2, 0)) in
/// float64, the self-distance exactly 0. Throws sit::Error for fewer than k + 1 real rows,
/// no fake rows, mismatched widths or non-finite features.
RealBalls real_balls(const FeatureView& real, const FeatureView& fake,
                     const DensityCoverageOptions& options = {});
/// The reference's radii alone (N^2 d work): one reference scores many sample sets.
/// Throws as real_balls.
std::vector<double> reference_radii(const FeatureView& real,
                                    const DensityCoverageOptions& options = {});
/// real_balls with the radii of reference_radii(real, options).
RealBalls real_balls(const FeatureView& real, const std::vector<double>& radii,
                     const FeatureView& fake, const DensityCoverageOptions& options = {});

struct DensityCoverage {
  double density = 0;
  double coverage = 0;
};

/// Density and coverage with fake point j counted weights[j] times (a bootstrap
/// resample's multiplicities; empty: once each). Coverage counts a real ball covered when
/// a fake point with a nonzero weight lies strictly inside it.
DensityCoverage density_coverage(const RealBalls& balls, const std::vector<int32_t>& weights = {});

}  // namespace sit::metrics
