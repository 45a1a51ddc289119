#pragma once
/// Computes ADM-style metrics from two feature sets (reference, samples): the rows of
/// eval/metric_table.h chosen by the options.

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "eval/metric_table.h"

#include "metrics/feature_stats.h"
#include "metrics/frechet.h"
#include "metrics/inception_score.h"
#include "metrics/kid.h"
#include "metrics/precision_recall.h"
#include "reference_stats/feature_set.h"

namespace sit::eval {

struct MetricsJobOptions {
  /// Keys of metric_table() to compute (parse_metric_list).
  std::vector<std::string> which = {"fid", "sfid", "inception_score", "precision", "recall",
                                    "kid"};  ///< ADM's and KID; density/coverage on request
  metrics::StatsOptions stats;
  metrics::FrechetOptions frechet;
  metrics::InceptionScoreOptions inception;
  metrics::PrecisionRecallOptions pr;
  metrics::KidOptions kid;
  /// KID: a subset size larger than the smaller set is an error (the user asked for that
  /// size) instead of being capped with a warning (the default size).
  bool kid_subset_size_given = false;
  /// FID-infinity: seed of the SplitMix64 stream its subsets come from.
  uint64_t fd_infinity_seed = 0;
};

struct MetricsReport {
  /// By metric key, and the spreads ("inception_score_std", "kid_std"); computed ones only.
  std::map<std::string, double> values;
  int64_t n_samples = 0, n_ref = 0;
  std::vector<std::string> skipped;   ///< one line per metric that had no inputs
  std::vector<std::string> warnings;  ///< rank deficiency, eps retries, ...
  std::vector<std::string> notes;     ///< how a value was computed (FID-infinity's fit, ...)
  /// Per-class FID behind intra_fid: class label -> FID_c (and its sample count).
  std::map<int64_t, std::pair<double, int64_t>> per_class_fid;
  /// The extractors the samples' features record, by kind: "sha256 HEX" (and DINOv2's
  /// "resize MODE"), from the feature set's provenance.
  std::map<std::string, std::string> extractors;
  /// Wall seconds per metric, in computation order (keys).
  std::vector<std::pair<std::string, double>> seconds;

  /// The value of `key`, if computed.
  std::optional<double> get(const std::string& key) const;
  /// ADM's printed lines ("FID: 2.06"), in ADM's order and number format, then KID.
  std::string adm_lines() const;
  /// {KEY: value, KEY_std: spread, ..., "n_samples", "n_ref", "extractors",
  /// "per_class_fid"} in ADM's order; absent metrics omitted, "extractors" only when the
  /// features record some, "per_class_fid" ({"CLASS": {"fid", "samples"}}) with intra_fid.
  std::string json() const;
};

/// Throws sit::Error for inconsistent inputs (dimension mismatch, non-finite rows, N < 2,
/// features of different extractors). A metric whose inputs are missing is skipped with a
/// line in `skipped`.
MetricsReport compute_metrics(const io::FeatureSet& reference, const io::FeatureSet& samples,
                              const MetricsJobOptions& options);

}  // namespace sit::eval
