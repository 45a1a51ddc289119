#pragma once
/// Result records of sweeps (results.jsonl) and the tables made from them.

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace sit::reports {

using Record = nlohmann::ordered_json;

/// A string field of a record, "" when absent or not a string.
std::string text_field(const Record& r, const char* key);
/// A configuration without its step count, for curves over NFE and the NFE layout:
/// "Linear/velocity SDE Euler sigma", "DDPM fixed-small", "DDIM eta 1.0 cfg 1.5" (the
/// record's sampler label with the steps or respacing removed, the interpolant and
/// prediction in front for ODE/SDE).
std::string sampler_without_steps(const Record& r);
/// LaTeX-escaped text (\ & % $ # _ { } ~ ^, < > as math, "--" kept as two hyphens).
std::string latex_escape(const std::string& text);
/// HTML-escaped text (& < > ").
std::string html_escape(const std::string& text);

/// Complete lines of a results.jsonl (a torn last line from a crash is ignored). Throws
/// sit::Error naming the file and line for a line that is not a JSON object, and for a
/// field the reports read whose JSON type is not the one sit-eval writes ("cfg_scale" a
/// number, "num_steps" an integer, "label" a string, a metric a number or null).
std::vector<Record> load_results(const std::string& path);
/// Whether `key` is a metric of eval::metric_table(), its spread ("kid_std"), or a
/// published_ / delta_ field of one.
bool is_metric_field(const std::string& key);

/// The finished records (status "ok") of RUN_DIR/results.jsonl.
std::vector<Record> ok_records(const std::string& run_dir);

/// The baseline of `sit-eval gate`, by configuration ID: a run directory (its finished
/// records), a JSON file (an array of records, or {"configurations": [...]}) or a TOML file
/// ([[configuration]] tables of id and metric values). Throws sit::Error naming the file
/// for anything else: no configurations, one without a string id, a metric that is not a
/// number, a TOML value that is neither string nor number.
std::map<std::string, Record> load_gate_baseline(const std::string& path);

enum class TableFormat { kMarkdown, kCsv, kLatex, kHtml };
/// "md", "csv", "tex", "html" (a table element; html_report makes the page)
TableFormat parse_table_format(const std::string& name);

/// Number style of metric cells: kSignificant4 (4 significant digits, the default of every
/// table; values from 10^4 to 10^15 print whole), kPaper (FID, sFID, IS, precision and recall
/// with 2 decimals as papers print them, KID 4), kFull (the shortest text that reads back as
/// the same double: CSV), or N >= 0 decimals for every metric.
constexpr int kSignificant4 = -1;
constexpr int kPaper = -2;
constexpr int kFull = -3;

/// `v` in the number style `digits` for the metric (or published_/delta_ field) `key`.
std::string format_metric(double v, const std::string& key, int digits);
/// The shortest decimal text that parses back to exactly `v` ("0.0775", "1.5", "249").
std::string shortest_text(double v);

/// The name of metric `key` over `records` for headers, captions and axes: the metric
/// table's display name, except that a Frechet distance not on Inception features is "FD"
/// (data-space or latent FD is not FID): "FID" when every record with `key` was scored on
/// Inception features (records without feature_space predate it: Inception), "FD" when
/// none was, "FD / FID" for a mix. sFID likewise ("sFD").
std::string metric_name(const std::vector<Record>& records, const std::string& key);
/// Whether a record's metrics were computed on Inception features (feature_space).
bool inception_features(const Record& r);

/// One row per configuration: id, sampler settings, NFE, metrics, status. Records that
/// carry a "run" field (several runs combined) get a leading run column. CSV cells are
/// always at full precision (kFull). LaTeX is a longtable (breaks across pages) in
/// \footnotesize, needing \usepackage{booktabs,longtable}; see latex_preamble().
std::string long_table(const std::vector<Record>& records, TableFormat format,
                       int digits = kSignificant4);

/// Rows: interpolant x prediction; columns: sampler (mode, method, steps, w(t)); cells:
/// `metric` (e.g. "fid") in the number style `digits`, "failed" where the run failed.
/// CSV cells are always at full precision (kFull).
std::string pivot_table(const std::vector<Record>& records, const std::string& metric,
                        TableFormat format, int digits = kSignificant4);

}  // namespace sit::reports
