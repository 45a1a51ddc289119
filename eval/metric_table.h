#pragma once
/// The metrics sit-eval computes, one row each: key (the one name in result files, flags,
/// baselines and tables), aliases, display name, direction, the decimals papers print, the
/// ADM evaluator's label, what it reads of each side, how it is computed and how it is
/// recomputed on bootstrap resamples. `metrics`, `evaluate`, sweeps, `compare`, `gate`,
/// `report`, baselines and the LaTeX / HTML tables loop over this table.

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "metrics/bootstrap.h"
#include "metrics/frechet.h"
#include "metrics/inception_score.h"
#include "metrics/kid.h"
#include "metrics/precision_recall.h"
#include "reference_stats/feature_set.h"

namespace sit::eval {

struct MetricsJobOptions;
struct MetricsReport;

enum class Direction { kLowerIsBetter, kHigherIsBetter };

/// One input of a metric: a block of one side, as rows or as statistics (stored ones, or
/// computed from the rows).
struct MetricInput {
  enum Side { kReference, kSamples } side;
  enum Need { kStatistics, kRows } need;
  const char* block;
};

/// A run's reference with what the resampled metrics derive from it, computed once and
/// shared by every configuration scored against it.
struct BootstrapReference {
  io::FeatureSet set;
  metrics::PrecisionRecallOptions pr;  ///< the arithmetic the run scored with

  /// Precision/recall radii of the reference's rows of `block`, computed once.
  const std::vector<float>& manifold_radii(const std::string& block = "pool");
  const metrics::FrechetReference& frechet(const std::string& block);
  double kid_reference_term();
  /// Density/coverage radii of the reference's pool rows (k = 5), computed once.
  const std::vector<double>& density_radii();

 private:
  std::map<std::string, std::vector<float>> radii_;
  std::optional<double> kid_term_;
  std::optional<std::vector<double>> density_radii_;
  std::map<std::string, metrics::FrechetReference> frechet_;  // covariances factored once
};

/// Bootstrap weights (metrics::bootstrap_weight_set): element 0 all ones.
using Weights = std::vector<std::vector<int32_t>>;

struct Metric {
  const char* key;                   ///< "fid"
  std::vector<const char*> aliases;  ///< also accepted in lists ("is"; "pr" names both P and R)
  const char* display;               ///< "FID": table headers
  const char* adm_label;             ///< ADM's printed name ("Inception Score"), "" if ADM has none
  int adm_position;                  ///< ADM's print order (KID, not ADM's, last)
  Direction direction;
  int paper_digits;       ///< decimals papers print
  const char* spread;     ///< key of the spread reported beside the value ("kid_std"), or ""
  std::vector<MetricInput> inputs;
  /// The row whose computation also gives this metric (recall: "precision"), or "".
  const char* computed_with;
  /// Computes the metric (and those computed with it) into report.values; inputs are
  /// present (checked by compute_metrics). nullptr when computed_with is set.
  void (*compute)(const io::FeatureSet& ref, const io::FeatureSet& samples,
                  const MetricsJobOptions& o, MetricsReport& report);
  /// The metric (and those computed with it) of `samples` on each weight vector, by key.
  /// nullptr when computed_with is set, or when the metric has no bootstrap (no_bootstrap
  /// says why).
  std::map<std::string, std::vector<double>> (*resampled)(const io::FeatureSet& samples,
                                                          BootstrapReference& ref,
                                                          const Weights& w);
  const char* no_bootstrap = "";
};

/// Every metric, in table order (fid, sfid, inception_score, precision, recall, kid,
/// density, coverage, fd_dinov2, precision_dinov2, recall_dinov2, cmmd, fid_infinity,
/// intra_fid).
const std::vector<Metric>& metric_table();
/// The row of a key or alias (any letter case), or nullptr. An alias of several rows ("pr")
/// gives the first.
const Metric* find_metric(const std::string& key_or_alias);
/// The row of `key`; throws std::logic_error for an unknown key (a programming error).
const Metric& metric(const std::string& key);
/// The keys of `metric_table()`, in order.
std::vector<std::string> metric_keys();
/// A comma-separated list of keys and aliases ("fid,sfid,is,pr,kid") as keys in table
/// order, duplicates removed. Errors (prefixed by the caller) list the valid names.
std::vector<std::string> parse_metric_list(const std::string& list);
/// The blocks of one side that the metrics `which` (keys) read only as statistics, not as
/// rows: {"pool"} for FID alone, {} once precision/recall need the pool rows. The loader
/// streams these into statistics instead of holding the rows (io::LoadOptions).
std::set<std::string> statistics_only_blocks(const std::vector<std::string>& which,
                                             MetricInput::Side side);
/// "fid, sfid, inception_score (is), precision (pr), recall (pr), kid": for help and errors.
std::string metric_names_help();
/// Why `samples` cannot be scored on `m` against `ref` (a missing input), or "".
std::string missing_input(const Metric& m, const io::FeatureSet& ref,
                          const io::FeatureSet& samples);

}  // namespace sit::eval
