#pragma once
/// Computes ADM-style metrics from two feature sets (reference, samples).

#include <optional>
#include <string>
#include <vector>

#include "metrics/feature_stats.h"
#include "metrics/frechet.h"
#include "metrics/inception_score.h"
#include "metrics/kid.h"
#include "metrics/precision_recall.h"
#include "reference_stats/feature_set.h"

namespace sit::eval {

struct MetricSelection {
  bool inception_score = true, fid = true, sfid = true, precision_recall = true, kid = true;
};

/// "fid,sfid,is,pr,kid" (any subset, any order); errors list the valid names.
MetricSelection parse_metric_selection(const std::string& list);

struct MetricsJobOptions {
  MetricSelection which;
  metrics::StatsOptions stats;
  metrics::FrechetOptions frechet;
  metrics::InceptionScoreOptions inception;
  metrics::PrecisionRecallOptions pr;
  metrics::KidOptions kid;
  /// KID: a subset size larger than the smaller set is an error (the user asked for that
  /// size) instead of being capped with a warning (the default size).
  bool kid_subset_size_given = false;
};

struct MetricsReport {
  std::optional<double> inception_score, inception_score_std, fid, sfid, precision, recall, kid,
      kid_std;
  int64_t n_samples = 0, n_ref = 0;
  std::vector<std::string> skipped;   ///< one line per metric that had no inputs
  std::vector<std::string> warnings;  ///< rank deficiency, eps retries, ...
  /// Wall seconds per metric, in computation order ("fid", "sfid", ...).
  std::vector<std::pair<std::string, double>> seconds;

  /// ADM's printed lines, in ADM's order and number format, then KID.
  std::string adm_lines() const;
  /// {"inception_score", "inception_score_std", "fid", "sfid", "precision", "recall",
  ///  "kid", "kid_std", "n_samples", "n_ref"}; absent metrics omitted.
  std::string json() const;
};

/// Throws sit::Error for inconsistent inputs (dimension mismatch, non-finite rows, N < 2).
MetricsReport compute_metrics(const io::FeatureSet& reference, const io::FeatureSet& samples,
                              const MetricsJobOptions& options);

}  // namespace sit::eval
