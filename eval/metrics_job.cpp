#include "eval/metrics_job.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/error.h"
#include "common/format.h"

namespace sit::eval {
namespace {

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

/// Rows in ADM's print order.
std::vector<const Metric*> adm_order() {
  std::vector<const Metric*> rows;
  for (const auto& m : metric_table())
    rows.push_back(&m);
  std::stable_sort(rows.begin(), rows.end(),
                   [](const Metric* a, const Metric* b) { return a->adm_position < b->adm_position; });
  return rows;
}

}  // namespace

MetricsReport compute_metrics(const io::FeatureSet& ref, const io::FeatureSet& smp,
                              const MetricsJobOptions& o) {
  check_same_extractor(ref, smp);
  MetricsReport report;
  report.n_samples = smp.num_rows();
  report.n_ref = ref.num_rows();
  for (const auto& [kind, signature] : io::extractor_signatures(smp.provenance.extractor))
    if (signature.find("sha256 ") != std::string::npos) report.extractors[kind] = signature;
  auto wanted = [&](const std::string& key) {
    return std::find(o.which.begin(), o.which.end(), key) != o.which.end();
  };
  // ADM's order: IS, FID, sFID, precision/recall, then KID
  for (const Metric* m : adm_order()) {
    if (!wanted(m->key)) continue;
    const Metric& owner = *m->computed_with ? metric(m->computed_with) : *m;
    if (&owner != m && wanted(owner.key)) continue;  // computed (or skipped) with its owner
    if (const std::string why = missing_input(owner, ref, smp); !why.empty()) {
      report.skipped.push_back(cat(m->display, ": skipped, ", why));
      continue;
    }
    Timer timer(&report, owner.key);
    in_context(cat(owner.display, " of ", smp.path, " against ", ref.path),
               [&] { owner.compute(ref, smp, o, report); });
    for (const auto& [key, value] : report.values)
      if (!std::isfinite(value))
        fail(owner.display, ": the value (", key, ") is not finite for ", smp.path, " against ",
             ref.path, "; the features are out of the metric's numeric range (e.g. values near "
             "1e30 overflow KID's cubic kernel)");
  }
  // only what was asked for (precision without recall, say)
  for (auto it = report.values.begin(); it != report.values.end();) {
    bool keep = false;
    for (const auto& m : metric_table())
      if (wanted(m.key) && (it->first == m.key || it->first == m.spread)) keep = true;
    it = keep ? std::next(it) : report.values.erase(it);
  }
  return report;
}

std::optional<double> MetricsReport::get(const std::string& key) const {
  const auto it = values.find(key);
  if (it == values.end()) return std::nullopt;
  return it->second;
}

std::string MetricsReport::adm_lines() const {
  std::string out;
  for (const Metric* m : adm_order()) {
    const auto v = get(m->key);
    if (!v) continue;
    out += cat(*m->adm_label ? m->adm_label : m->display, ": ", python_repr(*v));
    if (*m->spread && !*m->adm_label)  // not ADM's: its spread beside it
      if (const auto s = get(m->spread)) out += " (std " + python_repr(*s) + ")";
    out += "\n";
  }
  return out;
}

std::string MetricsReport::json() const {
  nlohmann::ordered_json j;
  for (const Metric* m : adm_order()) {
    if (const auto v = get(m->key)) j[m->key] = *v;
    if (*m->spread)
      if (const auto s = get(m->spread)) j[m->spread] = *s;
  }
  j["n_samples"] = n_samples;
  j["n_ref"] = n_ref;
  if (!extractors.empty()) j["extractors"] = extractors;
  if (!per_class_fid.empty()) {
    nlohmann::ordered_json c;
    for (const auto& [label, v] : per_class_fid)
      c[std::to_string(label)] = {{"fid", v.first}, {"samples", v.second}};
    j["per_class_fid"] = c;
  }
  return j.dump(2) + "\n";
}

}  // namespace sit::eval
