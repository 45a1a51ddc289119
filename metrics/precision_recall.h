#pragma once
/// Improved precision and recall (Kynkaanniemi et al. 2019) with the semantics of ADM's
/// ManifoldEstimator: k = 3, radius = (k+1)-th smallest squared distance within a set
/// counting the point itself, "inside" means d <= radius, blocks of 10,000.

#include <cstdint>
#include <string>
#include <vector>

#include "metrics/features.h"

namespace sit::metrics {

enum class DistanceMode {
  /// Squared distances max(|u|^2 - 2 u.v + |v|^2, 0) in float32 (sgemm).
  kFp32,
  /// ADM's GPU arithmetic: features rounded to half, the product accumulated in float32
  /// and rounded to half, each subtraction / addition rounded to half; a block with any
  /// non-finite value is recomputed in float32 (ADM's tf.cond fallback).
  kAdmFp16,
};

/// "fp32" / "adm-fp16"; parse errors list the valid names.
const char* to_string(DistanceMode mode);
DistanceMode parse_distance_mode(const std::string& name);

struct PrecisionRecallOptions {
  int k = 3;
  /// ADM's row and column batch size. Decides which block falls back to fp32.
  int64_t block_size = 10000;
  /// Rows of one distance tile (memory: tile_rows x block_size floats).
  int64_t tile_rows = 1024;
  DistanceMode mode = DistanceMode::kAdmFp16;
  /// resampled_precision_recall: nearest samples kept per sample (itself included), from
  /// which each resample's radii are read; a radius that needs more is recomputed from
  /// the sample's full distance row. At least k + 1.
  int neighbours = 16;
  /// resampled_precision_recall: most (reference, sample) candidate pairs held (12 bytes
  /// each); more is an error rather than an unbounded allocation.
  int64_t max_pairs = int64_t{1} << 27;
};

struct PrecisionRecallResult {
  double precision = 0;              ///< fraction of samples inside at least one reference ball
  double recall = 0;                 ///< fraction of references inside at least one sample ball
  int64_t fp32_fallback_blocks = 0;  ///< ADM-fp16 blocks recomputed in float32
};

/// Radius of every point of `features` (row order): the (k+1)-th smallest squared
/// distance to the rows of the same set, itself included.
std::vector<float> manifold_radii(const FeatureView& features,
                                  const PrecisionRecallOptions& options = {},
                                  int64_t* fallback_blocks = nullptr);

/// Precision and recall of resampled sample sets, one value per weight vector (a paired
/// bootstrap's resamples, see metrics/bootstrap.h): sample row i counts w[i] times, the
/// reference is fixed. Precision is the weighted mean of the samples' "inside some
/// reference ball" indicators. Recall needs each resample's own sample balls: a sample's
/// radius in a resample is the (k+1)-th smallest distance in the multiset its copies and
/// the other drawn rows make (copies are at their self distance), read from its kept
/// nearest neighbours; every (reference, sample) pair closer than the sample's farthest
/// kept neighbour is held, so a reference's coverage is decided without new distances. The
/// results are those of precision_recall() on the resampled rows (all-ones weights give
/// its values exactly). fp32 distances only. Cost: precision_recall's distance passes
/// once, then O(N x neighbours + pairs) per weight vector.
struct ResampledPrecisionRecall {
  std::vector<double> precision, recall;
  int64_t candidate_pairs = 0;  ///< (reference, sample) pairs held
  int64_t full_rows = 0;        ///< sample radii recomputed from a full distance row
};

ResampledPrecisionRecall resampled_precision_recall(
    const FeatureView& reference, const std::vector<float>& reference_radii,
    const FeatureView& samples, const std::vector<std::vector<int32_t>>& weights,
    const PrecisionRecallOptions& options);

/// reference: e.g. pool_3 of the 10,000 reference images; samples: all samples.
PrecisionRecallResult precision_recall(const FeatureView& reference, const FeatureView& samples,
                                       const PrecisionRecallOptions& options = {});

}  // namespace sit::metrics
