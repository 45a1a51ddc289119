#include "eval/metrics_job.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/error.h"
#include "common/format.h"

namespace sit::eval {
namespace {

/// Statistics of one side: the stored ones when present (as ADM does), else computed
/// from the rows.
std::optional<metrics::FeatureStats> side_stats(const io::FeatureSet& set,
                                                const std::optional<metrics::FeatureStats>& stored,
                                                const std::optional<io::FeatureMatrix>& rows,
                                                const std::string& what,
                                                const metrics::StatsOptions& options) {
  if (stored) return stored;
  if (!rows) return std::nullopt;
  metrics::check_finite(rows->view(), cat(set.path, " '", what, "'"));
  if (rows->rows < options.ddof + 1)
    fail(set.path, ": '", what, "' needs at least ", options.ddof + 1,
         " rows for a covariance, got ", rows->rows);
  return metrics::compute_stats(rows->view(), options);
}

void frechet_metric(const char* name, const io::FeatureSet& ref, const io::FeatureSet& smp,
                    const std::optional<metrics::FeatureStats>& ref_stored,
                    const std::optional<metrics::FeatureStats>& smp_stored,
                    const std::optional<io::FeatureMatrix>& ref_rows,
                    const std::optional<io::FeatureMatrix>& smp_rows, const char* rows_key,
                    const char* mu_key, const MetricsJobOptions& o, std::optional<double>* out,
                    MetricsReport* report) {
  const auto s_ref = side_stats(ref, ref_stored, ref_rows, rows_key, o.stats);
  const auto s_smp = side_stats(smp, smp_stored, smp_rows, rows_key, o.stats);
  if (!s_ref || !s_smp) {
    const io::FeatureSet& missing = !s_ref ? ref : smp;
    report->skipped.push_back(cat(name, ": skipped, ", missing.path, " has neither '", rows_key,
                                  "' features nor stored '", mu_key, "' statistics"));
    return;
  }
  if (s_ref->dim() != s_smp->dim())
    fail(name, ": feature dimensions must match, got ", s_smp->dim(), " in ", smp.path, " and ",
         s_ref->dim(), " in ", ref.path);
  const auto r = metrics::frechet_distance(*s_smp, *s_ref, o.frechet);
  for (const auto& w : r.warnings)
    report->warnings.push_back(cat(name, ": ", w));
  *out = r.distance;
}

/// Records the wall time of one metric into the report.
class Timer {
 public:
  Timer(MetricsReport* report, const char* name)
      : report_(report), name_(name), start_(std::chrono::steady_clock::now()) {}
  ~Timer() {
    const std::chrono::duration<double> dt = std::chrono::steady_clock::now() - start_;
    report_->seconds.emplace_back(name_, dt.count());
  }

 private:
  MetricsReport* report_;
  const char* name_;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace

MetricSelection parse_metric_selection(const std::string& list) {
  MetricSelection s{false, false, false, false, false};
  std::stringstream in(list);
  std::string name;
  bool any = false;
  while (std::getline(in, name, ',')) {
    name = lowercase(name);
    if (name == "fid")
      s.fid = true;
    else if (name == "sfid")
      s.sfid = true;
    else if (name == "is")
      s.inception_score = true;
    else if (name == "pr")
      s.precision_recall = true;
    else if (name == "kid")
      s.kid = true;
    else
      fail("--metrics: each name must be one of fid, sfid, is, pr, kid; got '", name, "'");
    any = true;
  }
  if (!any) fail("--metrics: must name at least one of fid, sfid, is, pr, kid");
  return s;
}

MetricsReport compute_metrics(const io::FeatureSet& ref, const io::FeatureSet& smp,
                              const MetricsJobOptions& o) {
  MetricsReport report;
  report.n_samples = smp.num_rows();
  report.n_ref = ref.num_rows();

  if (o.which.inception_score) {
    Timer timer(&report, "is");
    if (smp.logits) {
      metrics::check_finite(smp.logits->view(), cat(smp.path, " 'logits'"));
      const auto is = metrics::inception_score(smp.logits->view(), o.inception);
      const int64_t n = smp.logits->rows, split = o.inception.split_size, last = n % split;
      if (n > split && last > 0 && last < split / 2)
        report.warnings.push_back(
            cat("Inception Score: the last of ", (n + split - 1) / split, " splits holds ", last,
                " of ", split, " rows and counts as much as a full split (as in ADM's "
                "evaluator), which biases the score; use a multiple of ", split, " samples"));
      report.inception_score = is.mean;
      report.inception_score_std = is.std;
    } else {
      report.skipped.push_back(
          cat("Inception Score: skipped, ", smp.path, " has no 'logits' (unbiased logits [N, C])"));
    }
  }
  if (o.which.fid) {
    Timer timer(&report, "fid");
    frechet_metric("FID", ref, smp, ref.stats, smp.stats, ref.pool, smp.pool, "pool", "mu", o,
                   &report.fid, &report);
  }
  if (o.which.sfid) {
    Timer timer(&report, "sfid");
    frechet_metric("sFID", ref, smp, ref.stats_spatial, smp.stats_spatial, ref.spatial, smp.spatial,
                   "spatial", "mu_s", o, &report.sfid, &report);
  }

  const bool need_rows = o.which.precision_recall || o.which.kid;
  if (need_rows && ref.pool && smp.pool) {
    if (ref.pool->cols != smp.pool->cols)
      fail("pool features: dimensions must match, got ", smp.pool->cols, " in ", smp.path, " and ",
           ref.pool->cols, " in ", ref.path);
    metrics::check_finite(ref.pool->view(), cat(ref.path, " 'pool'"));
    metrics::check_finite(smp.pool->view(), cat(smp.path, " 'pool'"));
  }
  auto rows_reason = [&](const char* name) {
    const io::FeatureSet& missing = !ref.pool ? ref : smp;
    std::string why = cat(name, ": skipped, ", missing.path, " has no 'pool' features");
    if (&missing == &ref && ref.image_count > 0)
      why += " (its arr_0 images need the Inception extractor)";
    return why;
  };
  if (o.which.precision_recall) {
    Timer timer(&report, "pr");
    if (ref.pool && smp.pool) {
      for (const io::FeatureSet* set : {&ref, &smp})
        if (set->pool->rows < o.pr.k + 1)
          fail(set->path, ": ", set->pool->rows, " rows of 'pool'; precision/recall needs at least "
               "k + 1 = ", o.pr.k + 1, " (the k-th neighbour of each row)");
      const auto pr = metrics::precision_recall(ref.pool->view(), smp.pool->view(), o.pr);
      report.precision = pr.precision;
      report.recall = pr.recall;
      if (pr.fp32_fallback_blocks > 0)
        report.warnings.push_back(cat("Precision/Recall: ", pr.fp32_fallback_blocks,
                                      " half-precision distance blocks overflowed and were "
                                      "recomputed in float32 (as ADM does)"));
    } else {
      report.skipped.push_back(rows_reason("Precision/Recall"));
    }
  }
  if (o.which.kid) {
    Timer timer(&report, "kid");
    if (ref.pool && smp.pool) {
      const int64_t smaller = std::min(ref.pool->rows, smp.pool->rows);
      if (o.kid.subset_size > smaller) {
        if (o.kid_subset_size_given)
          fail("--kid-subset-size ", o.kid.subset_size, ": larger than the smaller set (",
               ref.pool->rows, " rows in ", ref.path, ", ", smp.pool->rows, " in ", smp.path, ")");
        report.warnings.push_back(cat("KID: subset size ", o.kid.subset_size,
                                      " capped at the smaller set's ", smaller, " rows"));
      }
      const auto kid =
          metrics::kernel_inception_distance(ref.pool->view(), smp.pool->view(), o.kid);
      report.kid = kid.mean;
      report.kid_std = kid.std;
    } else {
      report.skipped.push_back(rows_reason("KID"));
    }
  }
  return report;
}

std::string MetricsReport::adm_lines() const {
  std::string out;
  if (inception_score) out += "Inception Score: " + python_repr(*inception_score) + "\n";
  if (fid) out += "FID: " + python_repr(*fid) + "\n";
  if (sfid) out += "sFID: " + python_repr(*sfid) + "\n";
  if (precision) out += "Precision: " + python_repr(*precision) + "\n";
  if (recall) out += "Recall: " + python_repr(*recall) + "\n";
  if (kid) out += "KID: " + python_repr(*kid) + " (std " + python_repr(*kid_std) + ")\n";
  return out;
}

std::string MetricsReport::json() const {
  nlohmann::ordered_json j;
  auto put = [&](const char* key, const std::optional<double>& v) {
    if (v) j[key] = *v;
  };
  put("inception_score", inception_score);
  put("inception_score_std", inception_score_std);
  put("fid", fid);
  put("sfid", sfid);
  put("precision", precision);
  put("recall", recall);
  put("kid", kid);
  put("kid_std", kid_std);
  j["n_samples"] = n_samples;
  j["n_ref"] = n_ref;
  return j.dump(2) + "\n";
}

}  // namespace sit::eval
