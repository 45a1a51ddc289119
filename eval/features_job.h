#pragma once
/// Images -> feature blocks of an extractor, streamed in batches: the pipeline behind
/// `evaluate`, `features` and `ref-stats`. Memory is one batch of images plus the rows of
/// the blocks kept as rows (50,000 x (2048 + 2023 + 1008) float32 = 1 GB for all of
/// Inception's); blocks only needed as statistics are accumulated batch by batch.

#include <cstdint>
#include <functional>
#include <set>
#include <string>

#include "reference_stats/feature_set.h"

namespace sit::io {
class ImageSource;
}
namespace sit::models {
class FeatureExtractor;
}

namespace sit::eval {

struct ExtractOptions {
  int64_t batch_size = 50;
  /// Called with each batch of images (uint8 NHWC, contiguous, `n` images of h x w) before
  /// extraction, e.g. to copy them somewhere.
  std::function<void(const uint8_t* images, int64_t n, int64_t h, int64_t w)> on_batch;
  /// Progress: (images done, total).
  std::function<void(int64_t, int64_t)> progress;
  /// When set, wall seconds spent reading, preprocessing and in the network are added here.
  struct Timings {
    double read_s = 0, preprocess_s = 0, network_s = 0;
  }* timings = nullptr;
  /// Blocks to keep only as statistics (streamed: float64 mean and covariance, divisor
  /// N - 1); their rows are not stored.
  std::set<std::string> stats_only;
  /// Blocks not wanted at all (neither rows nor statistics).
  std::set<std::string> skip;
  /// > 0: each image first goes through ADM's center_crop_arr to this size (EDM2's
  /// center-crop-dhariwal; io::adm_center_crop), as the ImageNet references were made.
  int64_t center_crop = 0;
};

/// The extractor's blocks (Inception: pool, spatial when the file has the tap, logits) of
/// every image of the source, as rows or (options.stats_only) statistics, with provenance
/// naming the source and the extractor's identity and checksum.
io::FeatureSet extract_features(io::ImageSource& source, const models::FeatureExtractor& e,
                                const ExtractOptions& options = {});

/// Feature rows of `blocks` (pool for precision/recall and KID; dinov2, clip) of a
/// reference npz's `arr_0`, cached in CACHE_DIR/ref-<sha of the file>-<sha of the blocks
/// and each extractor's SHA-256 and resize mode>.h5 so the second run skips the work.
/// Returns the features and whether they came from the cache.
std::pair<io::FeatureSet, bool> cached_reference_rows(const std::string& ref_path,
                                                      const models::FeatureExtractor& e,
                                                      const std::set<std::string>& blocks,
                                                      const std::string& cache_dir,
                                                      const ExtractOptions& options = {});

/// $SIT_EVAL_CACHE, else $XDG_CACHE_HOME/sit-eval, else ~/.cache/sit-eval.
std::string default_cache_dir();

}  // namespace sit::eval
