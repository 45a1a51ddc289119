#include "eval/metric_table.h"

#include <algorithm>
#include <sstream>

#include "common/error.h"
#include "common/format.h"
#include "eval/metrics_job.h"
#include "metrics/cmmd.h"
#include "metrics/density_coverage.h"
#include "metrics/fd_infinity.h"
#include "metrics/per_class_fid.h"

namespace sit::eval {
namespace {

using io::FeatureSet;
using io::kLogits;
using io::kPool;
using io::kSpatial;

constexpr MetricInput::Side kRef = MetricInput::kReference, kSmp = MetricInput::kSamples;
constexpr MetricInput::Need kStats = MetricInput::kStatistics, kRows = MetricInput::kRows;

/// Statistics of a block of one side: the stored ones when present (as ADM does), else
/// computed from the rows.
metrics::FeatureStats side_stats(const FeatureSet& set, const std::string& block,
                                 const metrics::StatsOptions& options) {
  if (const metrics::FeatureStats* s = set.statistics(block)) return *s;
  const io::FeatureMatrix& rows = *set.rows(block);
  metrics::check_finite(rows.view(), cat(set.path, " '", block, "'"));
  if (rows.rows < options.ddof + 1)
    fail(set.path, ": '", block, "' needs at least ", options.ddof + 1,
         " rows for a covariance, got ", rows.rows);
  return metrics::compute_stats(rows.view(), options);
}

/// FID / sFID (any Frechet distance): the distance between the statistics of one block.
template <const char* const* Key, const char* const* Block>
void compute_fd(const FeatureSet& ref, const FeatureSet& smp, const MetricsJobOptions& o,
                MetricsReport& report) {
  const std::string block = *Block;
  const char* key = *Key;
  const auto s_ref = side_stats(ref, block, o.stats), s_smp = side_stats(smp, block, o.stats);
  if (s_ref.dim() != s_smp.dim())
    fail(metric(key).display, ": feature dimensions must match, got ", s_smp.dim(), " in ",
         smp.path, " and ", s_ref.dim(), " in ", ref.path);
  const auto r = metrics::frechet_distance(s_smp, s_ref, o.frechet);
  for (const auto& w : r.warnings)
    report.warnings.push_back(cat(metric(key).display, ": ", w));
  report.values[key] = r.distance;
}
constexpr const char* kFid = "fid";
constexpr const char* kSfid = "sfid";
constexpr const char* kFdDinov2 = "fd_dinov2";
constexpr const char* kPoolName = "pool";
constexpr const char* kSpatialName = "spatial";
constexpr const char* kDinov2 = "dinov2";
constexpr const char* kClip = "clip";
constexpr const char* kPrecision = "precision";
constexpr const char* kRecall = "recall";
constexpr const char* kPrecisionDinov2 = "precision_dinov2";
constexpr const char* kRecallDinov2 = "recall_dinov2";

void compute_inception_score(const FeatureSet&, const FeatureSet& smp, const MetricsJobOptions& o,
                             MetricsReport& report) {
  const io::FeatureMatrix& logits = *smp.rows(kLogits);
  metrics::check_finite(logits.view(), cat(smp.path, " 'logits'"));
  const auto is = metrics::inception_score(logits.view(), o.inception);
  const int64_t n = logits.rows, split = o.inception.split_size, last = n % split;
  if (n > split && last > 0 && last < split / 2)
    report.warnings.push_back(
        cat("Inception Score: the last of ", (n + split - 1) / split, " splits holds ", last,
            " of ", split, " rows and counts as much as a full split (as in ADM's "
            "evaluator), which biases the score; use a multiple of ", split, " samples"));
  report.values["inception_score"] = is.mean;
  report.values["inception_score_std"] = is.std;
}

/// Rows of one block of both sides, checked once for the row metrics.
void check_rows(const FeatureSet& ref, const FeatureSet& smp, const char* block = kPool) {
  const io::FeatureMatrix &a = *ref.rows(block), &b = *smp.rows(block);
  if (a.cols != b.cols)
    fail(block, " features: dimensions must match, got ", b.cols, " in ", smp.path, " and ",
         a.cols, " in ", ref.path);
  metrics::check_finite(a.view(), cat(ref.path, " '", block, "'"));
  metrics::check_finite(b.view(), cat(smp.path, " '", block, "'"));
}
void check_pool_rows(const FeatureSet& ref, const FeatureSet& smp) {
  check_rows(ref, smp, kPool);
}

/// Improved precision/recall (ADM: k = 3) on the rows of one block.
template <const char* const* Block, const char* const* P, const char* const* R>
void compute_precision_recall(const FeatureSet& ref, const FeatureSet& smp,
                              const MetricsJobOptions& o, MetricsReport& report) {
  const char* block = *Block;
  check_rows(ref, smp, block);
  for (const FeatureSet* set : {&ref, &smp})
    if (set->rows(block)->rows < o.pr.k + 1)
      fail(set->path, ": ", set->rows(block)->rows, " rows of '", block, "'; precision/recall "
           "needs at least k + 1 = ", o.pr.k + 1, " (the k-th neighbour of each row)");
  const auto pr = metrics::precision_recall(ref.rows(block)->view(), smp.rows(block)->view(), o.pr);
  report.values[*P] = pr.precision;
  report.values[*R] = pr.recall;
  if (pr.fp32_fallback_blocks > 0)
    report.warnings.push_back(cat("Precision/Recall: ", pr.fp32_fallback_blocks,
                                  " half-precision distance blocks overflowed and were "
                                  "recomputed in float32 (as ADM does)"));
}

void compute_kid(const FeatureSet& ref, const FeatureSet& smp, const MetricsJobOptions& o,
                 MetricsReport& report) {
  check_pool_rows(ref, smp);
  const io::FeatureMatrix &a = *ref.rows(kPool), &b = *smp.rows(kPool);
  const int64_t smaller = std::min(a.rows, b.rows);
  if (o.kid.subset_size > smaller) {
    if (o.kid_subset_size_given)
      fail("--kid-subset-size ", o.kid.subset_size, ": larger than the smaller set (", a.rows,
           " rows in ", ref.path, ", ", b.rows, " in ", smp.path, ")");
    report.warnings.push_back(
        cat("KID: subset size ", o.kid.subset_size, " capped at the smaller set's ", smaller, " rows"));
  }
  const auto kid = metrics::kernel_inception_distance(a.view(), b.view(), o.kid);
  report.values["kid"] = kid.mean;
  report.values["kid_std"] = kid.std;
}

void compute_density_coverage(const FeatureSet& ref, const FeatureSet& smp,
                              const MetricsJobOptions&, MetricsReport& report) {
  check_pool_rows(ref, smp);
  const metrics::DensityCoverageOptions o;  // k = 5, as dgm-eval
  if (ref.rows(kPool)->rows < o.k + 1)
    fail(ref.path, ": density/coverage need at least k + 1 = ", o.k + 1,
         " reference rows (the k-th neighbour of each row), got ", ref.rows(kPool)->rows);
  const auto dc = metrics::density_coverage(
      metrics::real_balls(ref.rows(kPool)->view(), smp.rows(kPool)->view(), o));
  report.values["density"] = dc.density;
  report.values["coverage"] = dc.coverage;
}

void compute_cmmd(const FeatureSet& ref, const FeatureSet& smp, const MetricsJobOptions&,
                  MetricsReport& report) {
  check_rows(ref, smp, kClip);
  report.values["cmmd"] = metrics::cmmd(ref.rows(kClip)->view(), smp.rows(kClip)->view()).value;
}

void compute_fid_infinity(const FeatureSet& ref, const FeatureSet& smp, const MetricsJobOptions& o,
                          MetricsReport& report) {
  const io::FeatureMatrix& rows = *smp.rows(kPool);
  metrics::check_finite(rows.view(), cat(smp.path, " 'pool'"));
  const auto s_ref = side_stats(ref, kPool, o.stats);
  if (s_ref.dim() != rows.cols)
    fail("FID-infinity: feature dimensions must match, got ", rows.cols, " in ", smp.path,
         " and ", s_ref.dim(), " in ", ref.path);
  metrics::FdInfinityOptions fo;
  fo.seed = o.fd_infinity_seed;
  fo.frechet = o.frechet;
  const auto r = metrics::fd_infinity(rows.view(), s_ref, fo);
  report.values["fid_infinity"] = r.value;
  report.notes.push_back(cat("FID-infinity: intercept of FID_N = a + b / N over N = ", r.n.front(),
                             "..", r.n.back(), " (", r.n.size(), " seeded subsets, seed ", fo.seed,
                             "), slope b = ", python_repr(r.slope)));
}

void compute_intra_fid(const FeatureSet& ref, const FeatureSet& smp, const MetricsJobOptions& o,
                       MetricsReport& report) {
  for (const FeatureSet* set : {&ref, &smp})
    if (!set->labels)
      fail("intra-FID: ", set->path, " has no labels (class-conditional samples carry them as "
           "'labels', ADM batches as arr_1; the reference needs per-class rows with labels)");
  check_pool_rows(ref, smp);
  metrics::PerClassFidOptions po;
  po.frechet = o.frechet;
  const auto r = metrics::per_class_fid(smp.rows(kPool)->view(), *smp.labels,
                                        ref.rows(kPool)->view(), *ref.labels, po);
  report.values["intra_fid"] = r.intra_fid;
  for (size_t i = 0; i < r.classes.size(); ++i)
    report.per_class_fid[r.classes[i]] = {r.fid[i], r.sample_count[i]};
  const auto [lo, hi] = std::minmax_element(r.sample_count.begin(), r.sample_count.end());
  report.notes.push_back(cat("intra-FID: mean FID of ", r.classes.size(),
                             " classes, each class's samples against the reference rows of "
                             "that class; ", *lo, "..", *hi, " samples per class (compare only "
                             "at equal per-class counts)"));
}

template <const char* const* Key, const char* const* Block>
std::map<std::string, std::vector<double>> resampled_fd(const FeatureSet& smp,
                                                        BootstrapReference& ref, const Weights& w) {
  return {{*Key, metrics::resampled_fd(smp.rows(*Block)->view(), ref.frechet(*Block), w)}};
}

std::map<std::string, std::vector<double>> resampled_is(const FeatureSet& smp,
                                                        BootstrapReference&, const Weights& w) {
  return {{"inception_score", metrics::resampled_inception_score(smp.rows(kLogits)->view(), w)}};
}

template <const char* const* Block, const char* const* P, const char* const* R>
std::map<std::string, std::vector<double>> resampled_pr(const FeatureSet& smp,
                                                        BootstrapReference& ref, const Weights& w) {
  const auto r = metrics::resampled_precision_recall(ref.set.rows(*Block)->view(),
                                                     ref.manifold_radii(*Block),
                                                     smp.rows(*Block)->view(), w, ref.pr);
  return {{*P, r.precision}, {*R, r.recall}};
}

std::map<std::string, std::vector<double>> resampled_density_coverage(const FeatureSet& smp,
                                                                      BootstrapReference& ref,
                                                                      const Weights& w) {
  // the balls of the reference hold each sample or not, whatever the resample: computed
  // once, then each weight vector is one pass over the memberships
  const metrics::RealBalls balls = metrics::real_balls(ref.set.rows(kPool)->view(),
                                                      ref.density_radii(), smp.rows(kPool)->view());
  std::map<std::string, std::vector<double>> out;
  for (const auto& weights : w) {
    const auto dc = metrics::density_coverage(balls, weights);
    out["density"].push_back(dc.density);
    out["coverage"].push_back(dc.coverage);
  }
  return out;
}

std::map<std::string, std::vector<double>> resampled_kid(const FeatureSet& smp,
                                                         BootstrapReference& ref, const Weights& w) {
  return {{"kid", metrics::resampled_kid(ref.set.rows(kPool)->view(), ref.kid_reference_term(),
                                         smp.rows(kPool)->view(), w)}};
}

std::vector<Metric> make_table() {
  // key, aliases, display, ADM label, ADM position, direction, paper digits, spread, inputs,
  // computed with, compute, resampled
  return {
      {"fid", {}, "FID", "FID", 1, Direction::kLowerIsBetter, 2, "",
       {{kRef, kStats, kPool}, {kSmp, kStats, kPool}}, "", compute_fd<&kFid, &kPoolName>,
       resampled_fd<&kFid, &kPoolName>},
      {"sfid", {}, "sFID", "sFID", 2, Direction::kLowerIsBetter, 2, "",
       {{kRef, kStats, kSpatial}, {kSmp, kStats, kSpatial}}, "", compute_fd<&kSfid, &kSpatialName>,
       resampled_fd<&kSfid, &kSpatialName>},
      {"inception_score", {"is"}, "IS", "Inception Score", 0, Direction::kHigherIsBetter, 2,
       "inception_score_std", {{kSmp, kRows, kLogits}}, "", compute_inception_score, resampled_is},
      {"precision", {"pr"}, "Precision", "Precision", 3, Direction::kHigherIsBetter, 2, "",
       {{kRef, kRows, kPool}, {kSmp, kRows, kPool}}, "",
       compute_precision_recall<&kPoolName, &kPrecision, &kRecall>,
       resampled_pr<&kPoolName, &kPrecision, &kRecall>},
      {"recall", {"pr"}, "Recall", "Recall", 4, Direction::kHigherIsBetter, 2, "",
       {{kRef, kRows, kPool}, {kSmp, kRows, kPool}}, "precision", nullptr, nullptr},
      {"kid", {}, "KID", "", 5, Direction::kLowerIsBetter, 4, "kid_std",
       {{kRef, kRows, kPool}, {kSmp, kRows, kPool}}, "", compute_kid, resampled_kid},
      // Naeem et al. 2020 as prdc / dgm-eval (k = 5): not ADM's
      {"density", {"dc"}, "Density", "", 6, Direction::kHigherIsBetter, 4, "",
       {{kRef, kRows, kPool}, {kSmp, kRows, kPool}}, "", compute_density_coverage,
       resampled_density_coverage},
      {"coverage", {"dc"}, "Coverage", "", 7, Direction::kHigherIsBetter, 4, "",
       {{kRef, kRows, kPool}, {kSmp, kRows, kPool}}, "density", nullptr, nullptr},
      // The modern metrics (metrics_modern.md): DINOv2 and CLIP features, FD-infinity and
      // intra-FID on Inception's.
      {"fd_dinov2", {}, "FD_DINOv2", "", 8, Direction::kLowerIsBetter, 2, "",
       {{kRef, kStats, kDinov2}, {kSmp, kStats, kDinov2}}, "", compute_fd<&kFdDinov2, &kDinov2>,
       resampled_fd<&kFdDinov2, &kDinov2>},
      {"precision_dinov2", {"pr_dinov2"}, "Precision (DINOv2)", "", 9,
       Direction::kHigherIsBetter, 2, "", {{kRef, kRows, kDinov2}, {kSmp, kRows, kDinov2}}, "",
       compute_precision_recall<&kDinov2, &kPrecisionDinov2, &kRecallDinov2>,
       resampled_pr<&kDinov2, &kPrecisionDinov2, &kRecallDinov2>},
      {"recall_dinov2", {"pr_dinov2"}, "Recall (DINOv2)", "", 10, Direction::kHigherIsBetter, 2,
       "", {{kRef, kRows, kDinov2}, {kSmp, kRows, kDinov2}}, "precision_dinov2", nullptr, nullptr},
      {"cmmd", {}, "CMMD", "", 11, Direction::kLowerIsBetter, 3, "",
       {{kRef, kRows, kClip}, {kSmp, kRows, kClip}}, "", compute_cmmd, nullptr,
       "a resample's sample-sample kernel term costs a full m x m kernel matrix"},
      {"fid_infinity", {"fid_inf"}, "FID_inf", "", 12, Direction::kLowerIsBetter, 2, "",
       {{kRef, kStats, kPool}, {kSmp, kRows, kPool}}, "", compute_fid_infinity, nullptr,
       "it is itself an extrapolation over 15 subsets"},
      {"intra_fid", {}, "intra-FID", "", 13, Direction::kLowerIsBetter, 2, "",
       {{kRef, kRows, kPool}, {kSmp, kRows, kPool}}, "", compute_intra_fid, nullptr,
       "a resample changes the per-class counts it is only comparable at"},
  };
}

}  // namespace

const std::vector<float>& BootstrapReference::manifold_radii(const std::string& block) {
  auto it = radii_.find(block);
  if (it == radii_.end())
    it = radii_.emplace(block, metrics::manifold_radii(set.rows(block)->view(), pr)).first;
  return it->second;
}

const metrics::FrechetReference& BootstrapReference::frechet(const std::string& block) {
  auto it = frechet_.find(block);
  if (it == frechet_.end())
    it = frechet_.emplace(block, metrics::FrechetReference(*set.statistics(block))).first;
  return it->second;
}

const std::vector<double>& BootstrapReference::density_radii() {
  if (!density_radii_) density_radii_ = metrics::reference_radii(set.rows(kPool)->view());
  return *density_radii_;
}

double BootstrapReference::kid_reference_term() {
  if (!kid_term_) kid_term_ = metrics::kid_reference_term(set.rows(kPool)->view());
  return *kid_term_;
}

const std::vector<Metric>& metric_table() {
  static const std::vector<Metric> table = make_table();
  return table;
}

const Metric* find_metric(const std::string& name) {
  const std::string lower = lowercase(name);
  for (const auto& m : metric_table()) {
    if (lower == m.key) return &m;
    for (const char* a : m.aliases)
      if (lower == a) return &m;
  }
  return nullptr;
}

const Metric& metric(const std::string& key) {
  for (const auto& m : metric_table())
    if (key == m.key) return m;
  unreachable("no metric '", key, "' in the metric table");
}

std::vector<std::string> metric_keys() {
  std::vector<std::string> keys;
  for (const auto& m : metric_table())
    keys.push_back(m.key);
  return keys;
}

std::string metric_names_help() {
  std::string out;
  for (const auto& m : metric_table()) {
    out += (out.empty() ? "" : ", ") + std::string(m.key);
    for (const char* a : m.aliases)
      out += std::string(" (") + a + ")";
  }
  return out;
}

std::vector<std::string> parse_metric_list(const std::string& list) {
  std::vector<bool> chosen(metric_table().size(), false);
  std::stringstream in(list);
  bool any = false;
  for (std::string name; std::getline(in, name, ',');) {
    name.erase(0, name.find_first_not_of(" \t"));  // "fid, kid"
    name.erase(name.find_last_not_of(" \t") + 1);
    if (name.empty()) continue;
    const std::string lower = lowercase(name);
    bool known = false;
    for (size_t i = 0; i < metric_table().size(); ++i) {
      const Metric& m = metric_table()[i];
      bool match = lower == m.key;
      for (const char* a : m.aliases)
        match = match || lower == a;
      if (match) chosen[i] = known = true;
    }
    if (!known) fail("unknown metric '", name, "' (", metric_names_help(), ")");
    any = true;
  }
  if (!any) fail("name at least one metric (", metric_names_help(), ")");
  std::vector<std::string> keys;
  for (size_t i = 0; i < chosen.size(); ++i)
    if (chosen[i]) keys.push_back(metric_table()[i].key);
  return keys;
}

std::set<std::string> statistics_only_blocks(const std::vector<std::string>& which,
                                             MetricInput::Side side) {
  std::set<std::string> stats, rows;
  for (const std::string& key : which) {
    const Metric& m = metric(key);
    const Metric& owner = *m.computed_with ? metric(m.computed_with) : m;
    for (const MetricInput& in : owner.inputs)
      if (in.side == side) (in.need == MetricInput::kRows ? rows : stats).insert(in.block);
  }
  for (const std::string& block : rows)
    stats.erase(block);
  return stats;
}

std::string missing_input(const Metric& m, const FeatureSet& ref, const FeatureSet& smp) {
  for (const MetricInput& in : m.inputs) {
    const FeatureSet& set = in.side == MetricInput::kReference ? ref : smp;
    if (set.rows(in.block)) continue;
    if (in.need == MetricInput::kStatistics && set.statistics(in.block)) continue;
    std::string why = cat(set.path, " has no '", in.block, "' features");
    if (in.need == MetricInput::kStatistics)
      why = cat(set.path, " has neither '", in.block, "' features nor stored '",
                io::stats_keys(in.block).first, "' statistics");
    if (&set == &ref && ref.image_count > 0 && in.need == MetricInput::kRows)
      why += " (its arr_0 images need the feature extractor)";
    return why;
  }
  return "";
}

}  // namespace sit::eval
