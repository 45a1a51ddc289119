#include "reports/baselines.h"

#include <toml++/toml.h>
#include <cstdio>
#include <cmath>
#include <cstdlib>
#include <optional>
#include <sstream>
#include <string_view>

#include "common/error.h"
#include "common/toml_where.h"
#include "eval/metric_table.h"

namespace sit::reports {

extern const char* const kSitPaperBaselines;  // generated from baselines/sit_paper.toml

namespace {

/// Number key `key` of a row (nullopt when absent); anything but a finite number is an
/// error naming it.
std::optional<double> number_of(const toml::table& row, std::string_view key,
                                const std::string& file) {
  const toml::node* n = row.get(key);
  if (!n) return std::nullopt;
  const auto v = n->value<double>();
  if (!v || !std::isfinite(*v))
    fail(toml_where(file, *n), ": '", key, "' must be a finite number");
  return v;
}

/// Published values by metric key; a row may name a metric by its key or an alias ("is").
std::map<std::string, double> metrics_of(const toml::table& t, const std::string& file) {
  std::map<std::string, double> m;
  for (const auto& [k, v] : t)
    if (const eval::Metric* metric = eval::find_metric(std::string(k.str())))
      m[metric->key] = *number_of(t, k.str(), file);
  return m;
}

/// The rows of array-of-tables `key` ([[system]]); each must be a table.
std::vector<const toml::table*> rows_of(const toml::table& t, const char* key,
                                        const std::string& file) {
  std::vector<const toml::table*> out;
  const toml::node* n = t.get(key);
  if (!n) return out;
  const toml::array* a = n->as_array();
  if (!a) fail(toml_where(file, *n), ": '", key, "' must be [[", key, "]] tables");
  for (const auto& row : *a) {
    if (!row.is_table()) fail(toml_where(file, row), ": each [[", key, "]] must be a table");
    out.push_back(row.as_table());
  }
  return out;
}

/// String key `key` of a row ("" when absent); another type is an error naming it.
std::string text_of(const toml::table& row, const char* key, const std::string& file) {
  const toml::node* n = row.get(key);
  if (!n) return "";
  if (!n->is_string()) fail(toml_where(file, *n), ": '", key, "' must be a string");
  return *n->value<std::string>();
}

std::string lower(std::string s) {
  for (auto& c : s)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace

Baselines Baselines::load(const std::string& name_or_path) {
  Baselines b;
  toml::table t;
  try {
    if (name_or_path == "sit-paper") {
      b.source_ = "sit-paper (SiT paper arXiv 2401.08740, reports/baselines/sit_paper.toml)";
      t = toml::parse(std::string_view(kSitPaperBaselines), std::string_view("sit_paper.toml"));
    } else {
      b.source_ = name_or_path;
      t = toml::parse_file(name_or_path);
    }
  } catch (const toml::parse_error& e) {
    fail(name_or_path, ":", e.source().begin.line, ": ", e.description());
  } catch (const std::exception& e) {
    fail(name_or_path, ": cannot read baselines (", e.what(), "); use sit-paper or a TOML file");
  }
  const std::string& file = name_or_path;
  for (const toml::table* row : rows_of(t, "system", file)) {
    const toml::table& s = *row;
    Row r;
    r.table = "Table 7";
    r.model = text_of(s, "model", file);
    r.sampler = text_of(s, "sampler", file);
    r.family = r.sampler.substr(0, r.sampler.find(' '));
    const auto paren = r.sampler.find(' ');
    if (paren != std::string::npos && (r.family == "ODE" || r.family == "SDE"))
      r.method = lower(r.sampler.substr(4, r.sampler.find(' ', 4) - 4));
    if (r.family == "DDPM" || r.family == "DDIM")  // "DDPM 250 steps": one call per step
      r.nfe = std::atoi(r.sampler.c_str() + r.family.size() + 1);
    if (const auto cfg = number_of(s, "cfg", file)) r.cfg = *cfg;
    r.note = text_of(s, "note", file);
    r.metrics = metrics_of(s, file);
    if (r.family == "ODE" || r.family == "SDE" || r.family == "DDPM") b.rows_.push_back(r);
  }
  // Table 1: DiT (DDPM, 250 steps, no guidance; the DiT paper's numbers) at 400K steps;
  // the SiT column is Table 8's SDE row at two digits.
  for (const toml::table* row : rows_of(t, "dit_vs_sit", file)) {
    const toml::table& s = *row;
    Row r;
    r.table = "Table 1";
    r.model = "DiT-" + text_of(s, "size", file) + "/2";
    r.family = "DDPM";
    r.sampler = "DDPM 250 steps, 400K steps";
    r.nfe = 250;
    if (const auto dit = number_of(s, "dit", file)) r.metrics["fid"] = *dit;
    b.rows_.push_back(r);
  }
  for (const toml::table* row : rows_of(t, "size", file)) {
    const toml::table& s = *row;
    for (const char* fam : {"ode", "sde"}) {
      const toml::table* m = s[fam].as_table();
      if (!m) continue;
      Row r;
      r.table = "Table 8";
      r.model = text_of(s, "model", file);
      r.family = fam == std::string("ode") ? "ODE" : "SDE";
      r.sampler = r.family + " 250 NFE, " + text_of(s, "steps", file) + " steps";
      r.nfe = 250;
      r.metrics = metrics_of(*m, file);
      b.rows_.push_back(r);  // later rows (longer training) win
    }
  }
  for (const toml::table* row : rows_of(t, "protocol", file)) {
    const toml::table& s = *row;
    Row r;
    r.table = "protocol";
    r.protocol = text_of(s, "name", file);
    r.sampler = "protocol " + r.protocol;
    r.note = text_of(s, "source", file);
    r.metrics = metrics_of(s, file);
    b.rows_.push_back(r);
  }
  if (b.rows_.empty()) fail(name_or_path, ": no [[system]] or [[size]] rows");
  return b;
}

std::optional<Published> Baselines::match(const Record& r) const {
  const std::string protocol = r.value("protocol", "");
  const bool inception = inception_features(r);
  if (!protocol.empty() && inception && r.value("protocol_overrides", "").empty())
    for (const Row& row : rows_)
      if (row.protocol == protocol) {
        Published p;
        p.where = "protocol " + protocol + ": " + row.note;
        p.metrics = row.metrics;
        return p;
      }
  const std::string model = r.value("model", "");
  if (model.rfind("sit:", 0) != 0 && model.rfind("dit:", 0) != 0) return std::nullopt;
  const std::string name = model.substr(4);
  // published numbers are Inception-feature metrics: latent or data-space FD is not FID
  if (!inception) return std::nullopt;
  const std::string mode = r.value("mode", ""), method = lower(r.value("method", ""));
  // DiT's published rows are sample_ddp.py's: "250" with learned-range variance
  if (mode == "DDPM" && (r.value("respacing", std::string("250")) != "250" ||
                         r.value("variance_type", std::string("learned-range")) != "learned-range" ||
                         r.value("clip_denoised", std::string("false")) != "false"))
    return std::nullopt;
  const double cfg = r.value("cfg_scale", 1.0);
  const int64_t nfe = r.value("nfe_planned", int64_t{-1});
  const Row* best = nullptr;
  for (const Row& row : rows_) {
    if (!row.protocol.empty() || row.model != name || row.family != mode || row.cfg != cfg)
      continue;
    if (row.nfe >= 0 && row.nfe != nfe) continue;
    if (!row.method.empty() && row.method != method) continue;
    // plain family rows give way to a row naming this very method
    if (row.method.empty() && best && !best->method.empty()) continue;
    best = &row;
  }
  if (!best) return std::nullopt;
  Published p;
  char cfg_text[32];
  std::snprintf(cfg_text, sizeof cfg_text, "%g", best->cfg);
  p.where =
      "SiT paper " + best->table + ": " + best->model + " " + best->sampler + ", cfg " + cfg_text;
  p.metrics = best->metrics;
  p.note = best->note;
  return p;
}

void annotate_with_baseline(std::vector<Record>& records, const Baselines& b) {
  for (auto& r : records) {
    const auto p = b.match(r);
    if (!p) continue;
    r["published_source"] = p->where;
    for (const auto& [k, v] : p->metrics) {
      r["published_" + k] = v;
      if (r.contains(k) && r[k].is_number()) r["delta_" + k] = r[k].get<double>() - v;
    }
  }
}

std::string reproduction_summary(const std::vector<Record>& records, const Baselines& b,
                                 int digits) {
  std::ostringstream out;
  for (const auto& r : records) {
    const auto p = b.match(r);
    if (!p) continue;
    std::string parts;
    for (const auto& m : eval::metric_table()) {
      auto it = p->metrics.find(m.key);
      if (it == p->metrics.end() || !r.contains(m.key) || !r[m.key].is_number()) continue;
      const double v = r[m.key].get<double>();
      char buf[160];
      std::snprintf(buf, sizeof buf, "%s %.*f vs published %.*f: %+.*f", m.display, digits, v,
                    digits, it->second, digits, v - it->second);
      parts += (parts.empty() ? "" : "; ") + std::string(buf);
    }
    if (parts.empty()) continue;
    out << r.value("id", "") << " " << r.value("label", "") << ": " << parts << " (" << p->where
        << ")\n";
  }
  return out.str();
}

}  // namespace sit::reports
