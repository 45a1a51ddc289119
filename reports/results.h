#pragma once
/// Result records of sweeps (results.jsonl) and the tables made from them.

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace sit::reports {

using Record = nlohmann::ordered_json;

/// Complete lines of a results.jsonl (a torn last line from a crash is ignored).
std::vector<Record> load_results(const std::string& path);

enum class TableFormat { kMarkdown, kCsv, kLatex };
TableFormat parse_table_format(const std::string& name);  ///< "md", "csv", "tex"

/// One row per configuration: id, sampler settings, NFE, metrics, status.
std::string long_table(const std::vector<Record>& records, TableFormat format);

/// Rows: interpolant x prediction; columns: sampler (mode, method, steps, w(t)); cells:
/// `metric` (e.g. "fid") with 4 significant digits, "failed" where the run failed.
std::string pivot_table(const std::vector<Record>& records, const std::string& metric,
                        TableFormat format);

}  // namespace sit::reports
