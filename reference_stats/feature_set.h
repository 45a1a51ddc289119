#pragma once
/// A feature set as the metrics see it, loaded from or saved to an npz or HDF5 file: named
/// blocks of per-sample feature rows and named statistics of blocks.
///
/// Keys (npz members or HDF5 datasets), all optional:
///   pool [N, D] (pool_3, FID/KID/PR), spatial [N, Ds] (sFID), logits [N, C] (raw
///   unbiased logits, IS): the Inception extractor's blocks, and any other 2-D array is the
///   block of its name (another extractor's: "dinov2", "clip"); labels [N] (or ADM's
///   arr_1 beside arr_0 when there is no "labels"); stored statistics
///   of a block: mu [D] / sigma [D, D] for pool and mu_s / sigma_s for spatial (ADM's
///   names), mu_BLOCK / sigma_BLOCK for others (used instead of computing from rows, as ADM
///   does); arr_0 (uint8 images of an ADM batch: noted, not loaded); samples [N, D] (the
///   output of `sit-eval sample` for an analytic model: read as pool rows, data-space
///   features); provenance (JSON text as uint8, npz; attributes in HDF5).

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
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

/// Block names of the Inception extractor, the ADM evaluator's features: pool_3 (FID,
/// precision/recall, KID), the sFID tap and the 1008-way logits (IS).
inline constexpr const char* kPool = "pool";
inline constexpr const char* kSpatial = "spatial";
inline constexpr const char* kLogits = "logits";

/// File keys of a block's statistics: ("mu", "sigma") for pool, ("mu_s", "sigma_s") for
/// spatial (ADM's names), ("mu_BLOCK", "sigma_BLOCK") for any other block.
std::pair<std::string, std::string> stats_keys(const std::string& block);

struct FeatureSet {
  std::string path;
  std::map<std::string, FeatureMatrix> blocks;         ///< per-sample rows by block
  std::map<std::string, metrics::FeatureStats> stats;  ///< stored statistics by block
  std::optional<std::vector<int64_t>> labels;
  int64_t image_count = 0;  ///< rows of arr_0, if present
  /// N of the blocks read only as statistics (LoadOptions::statistics_only), else 0.
  int64_t unloaded_rows = 0;
  Provenance provenance;

  /// The rows of `block`, or nullptr.
  const FeatureMatrix* rows(const std::string& block) const;
  FeatureMatrix* rows(const std::string& block);
  /// The stored statistics of `block`, or nullptr.
  const metrics::FeatureStats* statistics(const std::string& block) const;
  /// Rows of the per-sample arrays (blocks, labels, blocks read as statistics), else 0.
  int64_t num_rows() const;
};

/// The extractors a provenance string names, by kind. The string is one entry per
/// extractor, "KIND FILE (DETAILS, sha256 HEX)", joined by "; " (one pass of Inception,
/// DINOv2 and CLIP); what identifies an entry is its SHA-256 and resize mode (so the same
/// file at another path compares equal), or its whole text when it names no SHA-256.
std::map<std::string, std::string> extractor_signatures(const std::string& extractor);

/// Refuses to score `a` against `b` when both record an extractor of the same kind and
/// those differ (another file, or DINOv2's other resize mode), naming both. Feature sets
/// that record none (ADM reference batches) pass, as do kinds only one side has.
void check_same_extractor(const FeatureSet& a, const FeatureSet& b);

enum class FileKind { kNpz, kHdf5 };
/// By magic bytes; throws for anything else, naming the file and what was found.
FileKind detect_file_kind(const std::string& path);

/// What load_feature_set keeps of a file's blocks.
struct LoadOptions {
  /// Blocks needed only as statistics ("pool" for FID alone): their rows are streamed from
  /// the file in blocks of `stats.block_rows` through metrics::StreamingStats into
  /// FeatureSet::stats (with count = N) and never held — 2048 rows in flight instead of the
  /// whole block (400 MiB for 50,000 x 2048) — with the same result bit for bit as
  /// compute_stats over the loaded rows. A block whose statistics the file stores (mu /
  /// sigma) is not read at all: the stored ones are used, as ADM does.
  std::set<std::string> statistics_only;
  metrics::StatsOptions stats;
};

/// Loads every known key (the blocks in `options.statistics_only` as statistics). Throws
/// sit::Error naming the file and key on any inconsistency (wrong rank, mismatched N or D,
/// mu without sigma, non-finite rows of a block read as statistics, ...).
FeatureSet load_feature_set(const std::string& path, const LoadOptions& options = {});

/// Saves to `path` (.npz: stored members; .h5 / .hdf5: the HDF5 store), atomically.
void save_feature_set(const std::string& path, const FeatureSet& set);

class NpzWriter;
/// Adds `set`'s provenance (count, creation time and program version filled in) to an npz
/// being written, as the `provenance` member save_feature_set writes.
void add_provenance(NpzWriter& w, const FeatureSet& set);

}  // namespace sit::io
