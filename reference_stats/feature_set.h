#pragma once
/// A feature set as the metrics see it, loaded from or saved to an npz or HDF5 file.
///
/// Keys (npz members or HDF5 datasets), all optional:
///   pool [N, D] (pool_3, FID/KID/PR), spatial [N, Ds] (sFID), logits [N, C] (raw
///   unbiased logits, IS), labels [N]; stored statistics mu [D], sigma [D, D],
///   mu_s [Ds], sigma_s [Ds, Ds] (used instead of computing from rows, as ADM does);
///   arr_0 (uint8 images of an ADM batch: noted, not loaded); samples [N, D] (the output
///   of `sit-eval sample` for an analytic model: read as pool rows, data-space features).

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "metrics/feature_stats.h"
#include "metrics/features.h"
#include "reference_stats/h5_store.h"

namespace sit::io {

/// Row-major float32 [rows, cols].
struct FeatureMatrix {
  std::vector<float> data;
  int64_t rows = 0;
  int64_t cols = 0;
  metrics::FeatureView view() const { return {data.data(), rows, cols}; }
};

struct FeatureSet {
  std::string path;
  std::optional<FeatureMatrix> pool, spatial, logits;
  std::optional<std::vector<int64_t>> labels;
  std::optional<metrics::FeatureStats> stats;          ///< mu / sigma
  std::optional<metrics::FeatureStats> stats_spatial;  ///< mu_s / sigma_s
  int64_t image_count = 0;                             ///< rows of arr_0, if present
  Provenance provenance;

  /// Rows of the per-sample arrays (pool, spatial, logits, labels), else 0.
  int64_t num_rows() const;
};

enum class FileKind { kNpz, kHdf5 };
/// By magic bytes; throws for anything else, naming the file and what was found.
FileKind detect_file_kind(const std::string& path);

/// Loads every known key. Throws sit::Error naming the file and key on any
/// inconsistency (wrong rank, mismatched N or D, mu without sigma, ...).
FeatureSet load_feature_set(const std::string& path);

/// Saves to `path` (.npz: stored members; .h5 / .hdf5: the HDF5 store), atomically.
void save_feature_set(const std::string& path, const FeatureSet& set);

}  // namespace sit::io
