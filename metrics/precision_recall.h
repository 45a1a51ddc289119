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
};

struct PrecisionRecallResult {
  double precision = 0;              ///< fraction of samples inside at least one reference ball
  double recall = 0;                 ///< fraction of references inside at least one sample ball
  int64_t fp32_fallback_blocks = 0;  ///< ADM-fp16 blocks recomputed in float32
  /// Per sample: inside at least one reference ball (precision is their mean).
  std::vector<uint8_t> sample_inside;
};

/// Radius of every point of `features` (row order): the (k+1)-th smallest squared
/// distance to the rows of the same set, itself included.
std::vector<float> manifold_radii(const FeatureView& features,
                                  const PrecisionRecallOptions& options = {},
                                  int64_t* fallback_blocks = nullptr);

/// reference: e.g. pool_3 of the 10,000 reference images; samples: all samples.
PrecisionRecallResult precision_recall(const FeatureView& reference, const FeatureView& samples,
                                       const PrecisionRecallOptions& options = {});

}  // namespace sit::metrics
