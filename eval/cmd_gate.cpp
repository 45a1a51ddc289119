// sit-eval compare (paired bootstrap of two runs' configurations) and sit-eval gate (CI
// regression check against a baseline run or a committed file of expected values).
#include <toml++/toml.h>
#include <CLI/CLI.hpp>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <algorithm>
#include <map>
#include <optional>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/format.h"
#include "eval/cli_checks.h"
#include "eval/commands.h"
#include "eval/sweep.h"
#include "eval/sweep_config.h"
#include "metrics/bootstrap.h"
#include "metrics/inception_score.h"
#include "metrics/kid.h"
#include "metrics/precision_recall.h"
#include "reference_stats/feature_set.h"
#include "reports/results.h"

namespace fs = std::filesystem;
using json = nlohmann::ordered_json;

namespace sit::eval {
namespace {

/// Exit code for regressions (usage and data errors exit 1).
constexpr int kRegression = 2;

struct RunRef {
  std::string dir, config;  ///< config: an ID or unique ID prefix; empty: all
};

RunRef parse_run_ref(const std::string& text) {
  RunRef r{text, ""};
  const auto colon = text.rfind(':');
  if (colon != std::string::npos && !fs::exists(text)) {
    r.dir = text.substr(0, colon);
    r.config = text.substr(colon + 1);
  }
  if (!fs::is_directory(r.dir)) fail(r.dir, ": not a run directory");
  if (!fs::exists(fs::path(r.dir) / "results.jsonl"))
    fail(r.dir, ": no results.jsonl (not a sweep run directory)");
  return r;
}

std::vector<reports::Record> ok_records(const std::string& dir) {
  std::vector<reports::Record> out;
  for (auto& r : reports::load_results(dir + "/results.jsonl"))
    if (r.value("status", "") == "ok") out.push_back(r);
  return out;
}

std::string resolve_config(const std::vector<reports::Record>& records, const std::string& prefix,
                           const std::string& dir) {
  std::string found;
  for (const auto& r : records) {
    const std::string id = r.value("id", "");
    if (id.rfind(prefix, 0) == 0) {
      if (!found.empty()) fail(dir, ": configuration prefix '", prefix, "' is ambiguous");
      found = id;
    }
  }
  if (found.empty()) fail(dir, ": no finished configuration with ID '", prefix, "'");
  return found;
}

io::FeatureSet sample_features(const std::string& dir, const std::string& id) {
  const std::string path = dir + "/features/" + id + ".h5";
  io::FeatureSet f = io::load_feature_set(path);
  if (!f.pool) fail(path, ": no pool feature rows");
  return f;
}

struct Comparison {
  std::string metric;
  metrics::PairedDifference d;
};

/// Metrics compare can bootstrap, in table order (the names of the results records).
const std::vector<std::string>& kComparable = result_metric_names();

bool comparable(const std::string& m) {
  return std::find(kComparable.begin(), kComparable.end(), m) != kComparable.end();
}

/// A run's reference with what the resampled metrics derive from it, computed once and
/// shared by every pair scored against it.
struct Reference {
  io::FeatureSet set;
  std::optional<std::vector<float>> radii;  // precision / recall balls
  std::optional<double> kid_term;
  std::optional<metrics::FrechetReference> fd_pool, fd_spatial;  // covariances factored once

  const std::vector<float>& manifold_radii(const metrics::PrecisionRecallOptions& o) {
    if (!radii) radii = metrics::manifold_radii(set.pool->view(), o);
    return *radii;
  }
  const metrics::FrechetReference& frechet(bool spatial) {
    auto& f = spatial ? fd_spatial : fd_pool;
    if (!f) f.emplace(spatial ? *set.stats_spatial : *set.stats);
    return *f;
  }
  double kid_reference_term() {
    if (!kid_term) kid_term = metrics::kid_reference_term(set.pool->view());
    return *kid_term;
  }
};

/// Why `metric` cannot be bootstrapped for this pair, or empty when it can.
std::string missing_input(const std::string& metric, const io::FeatureSet& a,
                          const io::FeatureSet& b, const io::FeatureSet& ref) {
  if (metric == "fid") return ref.stats ? "" : "the reference has no pool statistics";
  if (metric == "sfid") {
    if (!a.spatial || !b.spatial) return "a side has no spatial features";
    return ref.stats_spatial ? "" : "the reference has no spatial statistics";
  }
  if (metric == "inception_score") return a.logits && b.logits ? "" : "a side has no logits";
  // precision, recall, kid: the reference's own feature rows
  if (!ref.pool) return "the reference has no pool feature rows";
  if (ref.pool->cols != a.pool->cols) return "the reference's feature width differs";
  return "";
}

/// Paired bootstrap of B - A for each of `which` (names of kComparable): FID and sFID from
/// weighted statistics, IS with ADM's splits, precision and recall with each resample's
/// own sample balls, KID as the all-rows U-statistic. `strict`: a metric that lacks its
/// inputs is an error (else it is skipped with a note on stderr).
std::vector<Comparison> compare_configs(const std::string& dir_a, const std::string& id_a,
                                        const std::string& dir_b, const std::string& id_b,
                                        Reference& ref, const metrics::BootstrapOptions& o,
                                        const std::vector<std::string>& which, bool strict) {
  const io::FeatureSet a = sample_features(dir_a, id_a), b = sample_features(dir_b, id_b);
  if (a.pool->rows != b.pool->rows)
    fail("cannot pair ", dir_a, ":", id_a, " (", a.pool->rows, " samples) with ", dir_b, ":", id_b,
         " (", b.pool->rows, " samples): paired comparisons need the same sample indices");
  const auto w = metrics::bootstrap_weight_set(a.pool->rows, o);
  metrics::PrecisionRecallOptions pr;
  pr.mode = metrics::DistanceMode::kFp32;  // as the sweeps score
  std::optional<metrics::ResampledPrecisionRecall> pr_a, pr_b;
  std::vector<Comparison> out;
  for (const std::string& m : which) {
    if (const std::string why = missing_input(m, a, b, ref.set); !why.empty()) {
      const std::string msg = m + " of " + id_a + " vs " + id_b + ": " + why;
      if (strict) fail("cannot compare ", msg);
      std::cerr << "compare: skipping " << msg << "\n";
      continue;
    }
    std::vector<double> va, vb;
    if (m == "fid") {
      va = metrics::resampled_fd(a.pool->view(), ref.frechet(false), w);
      vb = metrics::resampled_fd(b.pool->view(), ref.frechet(false), w);
    } else if (m == "sfid") {
      va = metrics::resampled_fd(a.spatial->view(), ref.frechet(true), w);
      vb = metrics::resampled_fd(b.spatial->view(), ref.frechet(true), w);
    } else if (m == "inception_score") {
      va = metrics::resampled_inception_score(a.logits->view(), w);
      vb = metrics::resampled_inception_score(b.logits->view(), w);
    } else if (m == "precision" || m == "recall") {
      if (!pr_a) {
        const auto& radii = ref.manifold_radii(pr);
        pr_a = metrics::resampled_precision_recall(ref.set.pool->view(), radii, a.pool->view(), w,
                                                   pr);
        pr_b = metrics::resampled_precision_recall(ref.set.pool->view(), radii, b.pool->view(), w,
                                                   pr);
      }
      va = m == "precision" ? pr_a->precision : pr_a->recall;
      vb = m == "precision" ? pr_b->precision : pr_b->recall;
    } else {  // kid
      const double term = ref.kid_reference_term();
      va = metrics::resampled_kid(ref.set.pool->view(), term, a.pool->view(), w);
      vb = metrics::resampled_kid(ref.set.pool->view(), term, b.pool->view(), w);
    }
    out.push_back({m, metrics::paired_difference(va, vb, o)});
  }
  return out;
}

Reference reference_of(const std::string& dir) {
  const SweepSpec spec = load_sweep(dir + "/sweep.toml");
  auto ref = run_reference(spec, "cpu");
  if (!ref) fail(dir, ": the run has no reference (set 'reference' in its sweep file)");
  Reference out;
  out.set = std::move(*ref);
  return out;
}

/// Comma-separated metric names, each checked against kComparable.
std::vector<std::string> parse_metric_list(const std::string& text, const char* option) {
  std::vector<std::string> out;
  std::stringstream ss(text);
  for (std::string m; std::getline(ss, m, ',');) {
    if (m.empty()) continue;
    if (!comparable(m))
      fail(option, ": unknown metric '", m, "' (fid, sfid, inception_score, precision, recall, kid)");
    out.push_back(m);
  }
  if (out.empty()) fail(option, ": name at least one metric");
  return out;
}

/// The metrics both records carry, in table order.
std::vector<std::string> recorded_metrics(const reports::Record& a, const reports::Record& b) {
  std::vector<std::string> out;
  for (const auto& m : kComparable)
    if (a.contains(m) && b.contains(m) && a[m].is_number() && b[m].is_number()) out.push_back(m);
  return out;
}

std::string fmt(double v, int digits) {
  return fixed(v, digits);
}

int run_compare(const std::string& a_text, const std::string& b_text,
                const metrics::BootstrapOptions& o, const std::string& json_out, int digits,
                const std::string& metric_list) {
  if (!json_out.empty()) check_output_path(json_out, "--json", {".json"});
  const RunRef a = parse_run_ref(a_text), b = parse_run_ref(b_text);
  std::vector<std::string> which;
  if (!metric_list.empty()) which = parse_metric_list(metric_list, "--metrics");
  const auto ra = ok_records(a.dir), rb = ok_records(b.dir);
  auto record = [](const std::vector<reports::Record>& rs, const std::string& id) {
    for (const auto& r : rs)
      if (r.value("id", "") == id) return r;
    fail("no record for ", id);
  };
  std::vector<std::pair<std::string, std::string>> pairs;
  std::map<std::string, std::string> labels;
  for (const auto& r : ra)
    labels[r.value("id", "")] = r.value("label", "");
  if (!a.config.empty() || !b.config.empty()) {
    const std::string ia = resolve_config(ra, a.config.empty() ? b.config : a.config, a.dir);
    const std::string ib = resolve_config(rb, b.config.empty() ? a.config : b.config, b.dir);
    pairs.emplace_back(ia, ib);
  } else {
    for (const auto& r : ra)
      for (const auto& s : rb)
        if (r.value("id", "") == s.value("id", "")) pairs.emplace_back(r["id"], s["id"]);
    if (pairs.empty()) fail(a.dir, " and ", b.dir, " share no finished configuration");
  }
  // Both sides are scored against one reference: A's.
  Reference ref = reference_of(a.dir);
  json out = json::array();
  // The table is printed once every comparison has succeeded: an error leaves no half table.
  std::ostringstream table;
  table << "| configuration | metric | A | B | B - A | " << fmt(100 * o.level, 0)
        << " % interval | significant |\n|---|---|---|---|---|---|---|\n";
  for (const auto& [ia, ib] : pairs) {
    const std::string name = ia == ib ? ia + " " + labels[ia] : ia + " vs " + ib;
    // By default the metrics both configurations were scored with.
    const auto metrics_here =
        which.empty() ? recorded_metrics(record(ra, ia), record(rb, ib)) : which;
    if (metrics_here.empty()) {
      std::cerr << "compare: " << ia << " and " << ib
                << " share no metric that compare bootstraps\n";
      continue;
    }
    for (const Comparison& c :
         compare_configs(a.dir, ia, b.dir, ib, ref, o, metrics_here, !which.empty())) {
      const auto& d = c.d;
      table << "| " << name << " | " << c.metric << " | " << fmt(d.a, digits) << " | "
            << fmt(d.b, digits) << " | " << fmt(d.diff, digits) << " | [" << fmt(d.lo, digits)
            << ", " << fmt(d.hi, digits) << "] | " << (d.significant ? "yes" : "no") << " |\n";
      out.push_back({{"a", a.dir + ":" + ia},
                     {"b", b.dir + ":" + ib},
                     {"metric", c.metric},
                     {"value_a", d.a},
                     {"value_b", d.b},
                     {"difference", d.diff},
                     {"interval", {d.lo, d.hi}},
                     {"level", o.level},
                     {"replicates", o.replicates},
                     {"seed", o.seed},
                     {"significant", d.significant}});
    }
  }
  std::cout << table.str();
  if (!json_out.empty()) write_file_atomic(json_out, out.dump(2) + "\n");
  return 0;
}

// ---------------------------------------------------------------- gate

/// +1: larger is worse (FID, sFID, KID); -1: smaller is worse (IS, precision, recall).
/// `metric` is one of kComparable.
int direction(const std::string& metric) {
  return metric == "fid" || metric == "sfid" || metric == "kid" ? +1 : -1;
}

/// Baseline values by configuration ID: a run directory, a JSON file (an array of
/// records, or {"configurations": [...]}) or a TOML file ([[configuration]] tables).
std::map<std::string, json> load_baseline(const std::string& path) {
  std::vector<json> rows;
  if (fs::is_directory(path)) {
    for (auto& r : ok_records(path))
      rows.push_back(r);
  } else if (!fs::exists(path)) {
    fail(path, ": baseline not found");
  } else if (fs::path(path).extension() == ".toml") {
    toml::table t;
    try {
      t = toml::parse_file(path);
    } catch (const toml::parse_error& e) {
      fail(path, ":", e.source().begin.line, ": ", e.description());
    }
    const toml::array* configs = t["configuration"].as_array();
    if (!configs) fail(path, ": needs [[configuration]] tables with id and metric values");
    for (const auto& node : *configs) {
      const toml::table* c = node.as_table();
      if (!c) fail(path, ": every [[configuration]] must be a table");
      json row;
      for (const auto& [k, v] : *c) {
        if (auto s = v.value<std::string>())
          row[std::string(k.str())] = *s;
        else if (auto d = v.value<double>())
          row[std::string(k.str())] = *d;
        else
          fail(path, ": key '", k.str(), "' must be a string or a number");
      }
      rows.push_back(row);
    }
  } else {
    std::ifstream in(path);
    json j;
    try {
      j = json::parse(in);
    } catch (const std::exception& e) {
      fail(path, ": not valid JSON: ", e.what());
    }
    const json& list = j.is_object() && j.contains("configurations") ? j["configurations"] : j;
    if (!list.is_array())
      fail(path, ": expected an array of configurations or {\"configurations\": [...]}");
    for (const auto& r : list)
      rows.push_back(r);
  }
  std::map<std::string, json> out;
  for (const auto& r : rows) {
    if (!r.contains("id") || !r["id"].is_string())
      fail(path, ": every baseline configuration needs a string 'id'");
    for (const auto& m : kComparable)
      if (r.contains(m) && !r[m].is_number())
        fail(path, ": configuration ", r["id"].get<std::string>(), ": '", m,
             "' must be a number, got ", r[m].dump());
    out[r["id"].get<std::string>()] = r;
  }
  if (out.empty()) fail(path, ": the baseline has no configurations");
  return out;
}

struct GateArgs {
  std::string run, baseline, metrics = "fid";
  double max_fid_increase = 0.05;
  std::vector<std::string> tolerances;  // metric=value
  bool significant = false;
  metrics::BootstrapOptions boot;
};

int run_gate(const GateArgs& g) {
  if (!fs::is_directory(g.run) || !fs::exists(fs::path(g.run) / "results.jsonl"))
    fail(g.run, ": not a sweep run directory (no results.jsonl)");
  const auto baseline = load_baseline(g.baseline);
  std::map<std::string, json> now;
  for (auto& r : reports::load_results(g.run + "/results.jsonl"))
    now[r.value("id", "")] = r;
  const std::vector<std::string> metrics = parse_metric_list(g.metrics, "--metrics");
  std::map<std::string, double> tol = {{"fid", g.max_fid_increase}};
  for (const auto& t : g.tolerances) {
    const auto eq = t.find('=');
    if (eq == std::string::npos) fail("--tolerance must be METRIC=VALUE, got '", t, "'");
    parse_metric_list(t.substr(0, eq), "--tolerance");
    const std::string value = t.substr(eq + 1), bad = not_below(0).check_text(value);
    if (!bad.empty()) fail("--tolerance ", t, ": ", bad);
    tol[t.substr(0, eq)] = std::stod(value);
  }
  if (g.significant && !fs::is_directory(g.baseline))
    fail(
        "--significant needs a baseline run directory (the paired bootstrap needs its "
        "per-sample features); ",
        g.baseline, " is a file");
  std::optional<Reference> ref;
  struct Row {
    std::string id, label, metric, base, now, tolerance, ci;
  };
  std::vector<Row> regressions;
  int checked = 0;
  for (const auto& [id, base] : baseline) {
    const std::string label = base.value("label", "");
    auto it = now.find(id);
    if (it == now.end() || it->second.value("status", "") != "ok") {
      const std::string why =
          it == now.end() ? "missing" : "failed: " + it->second.value("error", "");
      regressions.push_back({id, label, "status", "ok", why, "", ""});
      continue;
    }
    // Metrics past their tolerance; with --significant, bootstrapped together below (one
    // feature load and one precision/recall pass per configuration).
    struct Worse {
      std::string metric;
      double base, now, tolerance;
    };
    std::vector<Worse> worse;
    for (const auto& m : metrics) {
      if (!base.contains(m)) continue;
      if (!it->second.contains(m)) {
        regressions.push_back({id, label, m, fixed(base[m].get<double>(), 4), "absent", "", ""});
        continue;
      }
      ++checked;
      const double b = base[m].get<double>(), v = it->second[m].get<double>();
      const double t = tol.count(m) ? tol[m] : 0.0;
      if (direction(m) * (v - b) > t) worse.push_back({m, b, v, t});
    }
    std::map<std::string, metrics::PairedDifference> interval;
    if (g.significant && !worse.empty()) {
      if (!ref) ref = reference_of(g.baseline);
      std::vector<std::string> names;
      for (const auto& w : worse)
        names.push_back(w.metric);
      for (auto& c : compare_configs(g.baseline, id, g.run, id, *ref, g.boot, names, true))
        interval[c.metric] = std::move(c.d);
    }
    for (const auto& w : worse) {
      const int dir = direction(w.metric);
      std::string ci;
      if (g.significant) {
        const auto& d = interval.at(w.metric);
        // counts only when the whole interval of now - baseline lies beyond the tolerance,
        // on the worse side
        if (dir > 0 ? !(d.lo > w.tolerance) : !(d.hi < -w.tolerance)) continue;
        ci = "[" + fixed(d.lo, 4) + ", " + fixed(d.hi, 4) + "]";
      }
      regressions.push_back(
          {id, label, w.metric, fixed(w.base, 4), fixed(w.now, 4),
           w.tolerance == 0 ? "0" : (dir > 0 ? "+" : "-") + fixed(w.tolerance, 4), ci});
    }
  }
  if (checked == 0 && regressions.empty())
    fail("no metric of --metrics ", g.metrics, " is in both ", g.baseline, " and ", g.run);
  // A gated metric that no configuration of the run carries gates nothing: say so.
  for (const auto& m : metrics) {
    bool any = false;
    for (const auto& [id, r] : now)
      any = any || (r.contains(m) && r[m].is_number());
    if (!any)
      fail("--metrics ", m, ": no configuration of ", g.run,
           " was scored with it (the run's metrics are set by its sweep file's 'metrics')");
  }
  if (regressions.empty()) {
    std::cout << "gate passed: " << checked << " checks on " << baseline.size()
              << " configurations within tolerance\n";
    return 0;
  }
  std::cout << "gate failed: " << regressions.size() << " regression(s)\n"
            << "| configuration | metric | baseline | now | tolerance | bootstrap CI of now - "
               "baseline |\n"
            << "|---|---|---|---|---|---|\n";
  for (const auto& r : regressions)
    std::cout << "| " << r.id << (r.label.empty() ? "" : " " + r.label) << " | " << r.metric
              << " | " << r.base << " | " << r.now << " | " << r.tolerance << " | " << r.ci
              << " |\n";
  return kRegression;
}

void add_bootstrap_options(CLI::App* cmd, metrics::BootstrapOptions& o) {
  cmd->add_option("--replicates", o.replicates, "bootstrap replicates")
      ->capture_default_str()
      ->check(valid(integers(2, 1000000)));
  cmd->add_option("--seed", o.seed, "bootstrap seed")->capture_default_str()->check(valid_seed());
  cmd->add_option("--level", o.level, "confidence level of the interval")
      ->capture_default_str()
      ->check(valid(between(0, 1, true, true)));
}

}  // namespace

const std::vector<std::string>& result_metric_names() {
  static const std::vector<std::string> names = {"fid",       "sfid",   "inception_score",
                                                 "precision", "recall", "kid"};
  return names;
}

Command add_compare_command(CLI::App& app) {
  struct Args {
    std::string a, b, json, metrics;
    int digits = 4;
    metrics::BootstrapOptions boot;
  };
  auto a = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand(
      "compare",
      "paired bootstrap of metric differences between two runs' configurations (same "
      "sample seeds and labels: rows are paired; the reference is fixed)");
  cmd->add_option("RUN_A", a->a, "run directory, optionally :CONFIG_ID (or a unique prefix)")
      ->required();
  cmd->add_option("RUN_B", a->b, "run directory, optionally :CONFIG_ID")->required();
  cmd->add_option("--json", a->json, "also write the comparisons as JSON");
  cmd->add_option("--digits", a->digits, "decimals in the table")
      ->capture_default_str()
      ->check(valid(integers(0, 17)));
  cmd->add_option("--metrics", a->metrics,
                  "comma-separated subset of fid, sfid, inception_score, precision, recall, kid "
                  "(default: the metrics both configurations were scored with)");
  add_bootstrap_options(cmd, a->boot);
  return [a] { return run_compare(a->a, a->b, a->boot, a->json, a->digits, a->metrics); };
}

Command add_gate_command(CLI::App& app) {
  auto g = std::make_shared<GateArgs>();
  CLI::App* cmd = app.add_subcommand(
      "gate",
      "CI regression gate: exit 0 when every configuration is within tolerance of the "
      "baseline, 2 with a list of regressions, 1 on usage or data errors");
  cmd->add_option("RUN_DIR", g->run, "the run to check")->required();
  cmd->add_option("--baseline", g->baseline,
                  "a previous run directory, or a JSON / TOML file of expected values by "
                  "configuration id")
      ->required();
  cmd->add_option("--metrics", g->metrics,
                  "comma-separated: fid, sfid, kid (larger is worse), inception_score, "
                  "precision, recall (smaller is worse)")
      ->capture_default_str();
  cmd->add_option("--max-fid-increase", g->max_fid_increase, "FID tolerance (absolute)")
      ->capture_default_str()
      ->check(valid(not_below(0)));
  cmd->add_option("--tolerance", g->tolerances,
                  "METRIC=VALUE absolute tolerance for another metric (repeatable; default 0)");
  cmd->add_flag("--significant", g->significant,
                "a change for the worse counts only when the paired bootstrap interval of now - "
                "baseline lies wholly beyond the tolerance (baseline must be a run directory)");
  add_bootstrap_options(cmd, g->boot);
  return [g] { return run_gate(*g); };
}

}  // namespace sit::eval
