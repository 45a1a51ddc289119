#pragma once
/// Result records of sweeps (results.jsonl) and the tables made from them.

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
/// LaTeX-escaped text (\ & % $ # _ { } ~ ^).
std::string latex_escape(const std::string& text);
/// HTML-escaped text (& < > ").
std::string html_escape(const std::string& text);

/// Complete lines of a results.jsonl (a torn last line from a crash is ignored).
std::vector<Record> load_results(const std::string& path);

enum class TableFormat { kMarkdown, kCsv, kLatex, kHtml };
/// "md", "csv", "tex", "html" (a table element; html_report makes the page)
TableFormat parse_table_format(const std::string& name);

/// Number style of metric cells: kSignificant4 (4 significant digits, the sweep's own
/// report.md), kPaper (FID, sFID, IS, precision and recall with 2 decimals as papers
/// print them, KID 4), or N >= 0 decimals for every metric.
constexpr int kSignificant4 = -1;
constexpr int kPaper = -2;

/// One row per configuration: id, sampler settings, NFE, metrics, status. Records that
/// carry a "run" field (several runs combined) get a leading run column.
std::string long_table(const std::vector<Record>& records, TableFormat format,
                       int digits = kSignificant4);

/// Rows: interpolant x prediction; columns: sampler (mode, method, steps, w(t)); cells:
/// `metric` (e.g. "fid") with 4 significant digits, "failed" where the run failed.
std::string pivot_table(const std::vector<Record>& records, const std::string& metric,
                        TableFormat format, int digits = kSignificant4);

}  // namespace sit::reports
