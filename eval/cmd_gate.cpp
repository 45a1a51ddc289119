// sit-eval compare (paired bootstrap of two runs' configurations) and sit-eval gate (CI
// regression check against a baseline run or a committed file of expected values).
#include <CLI/CLI.hpp>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <algorithm>
#include <map>
#include <optional>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/format.h"
#include "eval/cli_checks.h"
#include "eval/commands.h"
#include "eval/metric_table.h"
#include "eval/run_manifest.h"
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
  if (!f.rows(io::kPool)) fail(path, ": no pool feature rows");
  return f;
}

struct Comparison {
  std::string metric;
  metrics::PairedDifference d;
};

/// Paired bootstrap of B - A for each of `which` (metric keys) with the table's resampled
/// forms: FID and sFID from weighted statistics, IS with ADM's splits, precision and
/// recall with each resample's own sample balls, KID as the all-rows U-statistic.
/// `strict`: a metric that lacks its inputs is an error (else it is skipped with a note on
/// stderr).
std::vector<Comparison> compare_configs(const std::string& dir_a, const std::string& id_a,
                                        const std::string& dir_b, const std::string& id_b,
                                        BootstrapReference& ref, const metrics::BootstrapOptions& o,
                                        const std::vector<std::string>& which, bool strict) {
  const io::FeatureSet a = sample_features(dir_a, id_a), b = sample_features(dir_b, id_b);
  io::check_same_extractor(a, b);
  for (const auto& [block, rows] : a.blocks)
    if (b.rows(block) && b.rows(block)->cols != rows.cols)
      fail("cannot compare ", dir_a, ":", id_a, " with ", dir_b, ":", id_b, ": their '", block,
           "' features have ", rows.cols, " and ", b.rows(block)->cols,
           " dimensions: the runs are of different models");
  if (a.rows(io::kPool)->rows != b.rows(io::kPool)->rows)
    fail("cannot pair ", dir_a, ":", id_a, " (", a.rows(io::kPool)->rows, " samples) with ", dir_b,
         ":", id_b, " (", b.rows(io::kPool)->rows,
         " samples): paired comparisons need the same sample indices");
  const Weights w = metrics::bootstrap_weight_set(a.rows(io::kPool)->rows, o);
  // values by metric key for each side, one pass per computing row (precision and recall
  // come from one)
  std::map<std::string, std::vector<double>> va, vb;
  std::vector<Comparison> out;
  for (const std::string& key : which) {
    const Metric& m = metric(key);
    const Metric& owner = *m.computed_with ? metric(m.computed_with) : m;
    // bootstrap inputs: the samples' rows of every block the metric reads, the reference's
    // inputs as the run scored them
    std::string why;
    if (!owner.resampled) why = cat("it has no bootstrap (", owner.no_bootstrap, ")");
    for (const MetricInput& in : owner.inputs) {
      if (!why.empty()) break;
      if (in.side == MetricInput::kSamples && (!a.rows(in.block) || !b.rows(in.block)))
        why = cat("a side has no '", in.block, "' features");
      else if (in.side == MetricInput::kReference && in.need == MetricInput::kRows &&
               !ref.set.rows(in.block))
        why = cat("the reference has no '", in.block, "' feature rows");
      else if (in.side == MetricInput::kReference && in.need == MetricInput::kStatistics &&
               !ref.set.statistics(in.block))
        why = cat("the reference has no '", in.block, "' statistics");
      else if (in.side == MetricInput::kReference && a.rows(in.block) &&
               ((ref.set.rows(in.block) &&
                 ref.set.rows(in.block)->cols != a.rows(in.block)->cols) ||
                (ref.set.statistics(in.block) &&
                 ref.set.statistics(in.block)->dim() != a.rows(in.block)->cols)))
        why = cat("the reference's '", in.block, "' features have another width than the "
                  "samples' (", a.rows(in.block)->cols, "): the runs are of different models");
    }
    if (!why.empty()) {
      const std::string msg = key + " of " + id_a + " vs " + id_b + ": " + why;
      if (strict) fail("cannot compare ", msg);
      std::cerr << "compare: skipping " << msg << "\n";
      continue;
    }
    if (!va.count(key)) {
      for (auto& [k, v] : owner.resampled(a, ref, w))
        va[k] = std::move(v);
      for (auto& [k, v] : owner.resampled(b, ref, w))
        vb[k] = std::move(v);
    }
    out.push_back({key, metrics::paired_difference(va.at(key), vb.at(key), o)});
  }
  return out;
}

/// The reference a run scored against, from its directory (RUN/reference.h5): no model
/// files, no sweep file paths, no working directory needed.
BootstrapReference reference_of(const std::string& dir) {
  const fs::path file = fs::path(dir) / "reference.h5";
  if (!fs::exists(file))
    fail(dir, ": no reference.h5 (a run without a reference, or made by an older sit-eval: rerun "
         "'sit-eval sweep' on it to save its reference)");
  BootstrapReference out;
  out.set = io::load_feature_set(file.string());
  out.pr.mode = metrics::DistanceMode::kFp32;  // as the sweeps score
  return out;
}

/// Comma-separated metric keys (aliases allowed), in table order.
std::vector<std::string> metric_list(const std::string& text, const char* option) {
  return in_context(option, [&] { return parse_metric_list(text); });
}

/// The metrics both records carry, in table order.
std::vector<std::string> recorded_metrics(const reports::Record& a, const reports::Record& b) {
  std::vector<std::string> out;
  for (const auto& m : metric_keys())
    if (a.contains(m) && b.contains(m) && a[m].is_number() && b[m].is_number()) out.push_back(m);
  return out;
}

std::string fmt(double v, int digits) {
  return fixed(v, digits);
}

int run_compare(const std::string& a_text, const std::string& b_text,
                const metrics::BootstrapOptions& o, const std::string& json_out, int digits,
                const std::string& metric_names) {
  if (!json_out.empty()) check_output_path(json_out, "--json", {".json"});
  const RunRef a = parse_run_ref(a_text), b = parse_run_ref(b_text);
  std::vector<std::string> which;
  if (!metric_names.empty()) which = metric_list(metric_names, "--metrics");
  const auto ra = reports::ok_records(a.dir), rb = reports::ok_records(b.dir);
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
  BootstrapReference ref = reference_of(a.dir);
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
int direction(const std::string& key) {
  return metric(key).direction == Direction::kLowerIsBetter ? +1 : -1;
}

struct GateArgs {
  std::string run, baseline, metrics = "fid";
  double max_fid_increase = 0.05;
  bool max_fid_increase_given = false;
  std::vector<std::string> tolerances;  // metric=value
  bool significant = false;
  metrics::BootstrapOptions boot;
};

int run_gate(const GateArgs& g) {
  if (!fs::is_directory(g.run) || !fs::exists(fs::path(g.run) / "results.jsonl"))
    fail(g.run, ": not a sweep run directory (no results.jsonl)");
  const auto baseline = reports::load_gate_baseline(g.baseline);
  std::map<std::string, json> now;
  for (auto& r : reports::load_results(g.run + "/results.jsonl"))
    now[r.value("id", "")] = r;
  const std::vector<std::string> metrics = metric_list(g.metrics, "--metrics");
  std::map<std::string, double> tol = {{"fid", g.max_fid_increase}};
  for (const auto& t : g.tolerances) {
    const auto eq = t.find('=');
    if (eq == std::string::npos) fail("--tolerance must be METRIC=VALUE, got '", t, "'");
    const auto named = metric_list(t.substr(0, eq), "--tolerance");
    if (named.size() != 1) fail("--tolerance ", t, ": name one metric");
    const std::string value = t.substr(eq + 1), bad = not_below(0).check_text(value);
    if (!bad.empty()) fail("--tolerance ", t, ": ", bad);
    if (named.front() == "fid" && g.max_fid_increase_given)
      fail("--tolerance ", t, " and --max-fid-increase both set FID's tolerance; give one");
    tol[named.front()] = std::stod(value);
  }
  if (g.significant && !fs::is_directory(g.baseline))
    fail(
        "--significant needs a baseline run directory (the paired bootstrap needs its "
        "per-sample features); ",
        g.baseline, " is a file");
  std::optional<BootstrapReference> ref;
  struct Row {
    std::string id, label, metric, base, now, tolerance, ci;
  };
  std::vector<Row> regressions;
  // configurations the run plans (configs.json) but has not finished: pending, not
  // regressions (a sweep still running, or interrupted)
  const std::set<std::string> planned = planned_configurations(g.run);
  std::vector<std::string> pending;
  int checked = 0;
  for (const auto& [id, base] : baseline) {
    const std::string label = reports::text_field(base, "label");
    auto it = now.find(id);
    if (it == now.end() && planned.count(id)) {
      pending.push_back(label.empty() ? id : id + " " + label);
      continue;
    }
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
      if (!it->second.contains(m) || !it->second[m].is_number()) {  // absent, or null: NaN
        regressions.push_back({id, label, m, fixed(base[m].get<double>(), 4),
                               it->second.contains(m) ? "NaN" : "absent", "", ""});
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
  if (!pending.empty()) {
    std::cout << "pending: " << pending.size() << " configuration(s) of the baseline have not "
              << "finished in " << g.run << " (not checked; rerun the sweep to finish them):";
    for (const auto& p : pending)
      std::cout << " " << p << ";";
    std::cout << "\n";
  }
  if (checked == 0 && regressions.empty() && !pending.empty())
    fail(g.run, ": no configuration of the baseline has finished yet (", pending.size(),
         " pending): nothing to gate");
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
    std::cout << "gate passed: " << checked << " checks on " << baseline.size() - pending.size()
              << " configurations within tolerance"
              << (pending.empty() ? "" : cat(" (", pending.size(), " pending)")) << "\n";
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
                  "comma-separated metrics: " + metric_names_help() +
                      " (default: the metrics both configurations were scored with)");
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
                  "comma-separated metrics: " + metric_names_help() +
                      " (FID, sFID, KID: larger is worse; the others: smaller is worse)")
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
  return [g, cmd] {
    g->max_fid_increase_given = cmd->get_option("--max-fid-increase")->count() > 0;
    return run_gate(*g);
  };
}

}  // namespace sit::eval
