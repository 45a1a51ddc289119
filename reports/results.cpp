#include "reports/results.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include <toml++/toml.h>

#include "common/error.h"
#include "eval/metric_table.h"
#include "reports/latex.h"

namespace sit::reports {
namespace {

/// A settings number (cfg scale, NFE, eta) as written (its shortest exact text), or with 6
/// significant digits where that is long (an adaptive solver's mean NFE).
std::string num(const Record& r, const char* key) {
  if (!r.contains(key) || !r[key].is_number()) return "";
  const std::string text = shortest_text(r[key].get<double>());
  if (text.size() <= 8) return text;
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", r[key].get<double>());
  return buf;
}

/// A published_ / delta_ field's metric key ("published_fid" -> "fid"); others as they are.
std::string without_baseline_prefix(std::string key) {
  for (const char* prefix : {"published_", "delta_"})
    if (key.rfind(prefix, 0) == 0) key = key.substr(std::string(prefix).size());
  return key;
}

/// The decimals papers print for a metric key, its spread or a published_/delta_ field.
int paper_digits(const std::string& field) {
  const std::string key = without_baseline_prefix(field);
  for (const auto& m : eval::metric_table())
    if (key == m.key || key == m.spread) return m.paper_digits;
  return 2;
}

/// A metric cell in the chosen number style.
std::string metric(const Record& r, const std::string& key, int digits) {
  if (!r.contains(key) || !r[key].is_number()) return "";
  return format_metric(r[key].get<double>(), key, digits);
}

std::string csv_cell(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s)
    out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

/// `header` and `rows` as LaTeX through render_latex: text escaped, `align` per column
/// ('p' for text that may wrap), the first `key_columns` repeated if the table is split.
std::string render_tex(const std::vector<std::string>& header,
                       const std::vector<std::vector<std::string>>& rows, const std::string& align,
                       int key_columns, const std::string& caption = "") {
  LatexTable t;
  t.caption = latex_escape(caption);
  for (const auto& h : header)
    t.header.push_back(latex_escape(h));
  for (const auto& r : rows) {
    std::vector<std::string> line;
    for (const auto& c : r)
      line.push_back(latex_escape(c));
    t.rows.push_back(std::move(line));
  }
  t.align = align;
  t.key_columns = key_columns;
  return render_latex(t);
}

std::string render(const std::vector<std::string>& header,
                   const std::vector<std::vector<std::string>>& rows, TableFormat format) {
  std::string out;
  if (format == TableFormat::kLatex)
    return render_tex(header, rows, "l" + std::string(header.size() - 1, 'r'), 1);
  if (format == TableFormat::kHtml) {
    out = "<table>\n<thead><tr>";
    for (const auto& c : header)
      out += "<th>" + html_escape(c) + "</th>";
    out += "</tr></thead>\n<tbody>\n";
    for (const auto& r : rows) {
      out += "<tr>";
      for (const auto& c : r)
        out += "<td>" + html_escape(c) + "</td>";
      out += "</tr>\n";
    }
    return out + "</tbody>\n</table>\n";
  }
  auto line = [&](const std::vector<std::string>& cells) {
    if (format == TableFormat::kCsv) {
      for (size_t i = 0; i < cells.size(); ++i)
        out += (i ? "," : "") + csv_cell(cells[i]);
    } else {
      out += "|";
      for (const auto& c : cells)
        out += " " + c + " |";
    }
    out += "\n";
  };
  line(header);
  if (format == TableFormat::kMarkdown) {
    out += "|";
    for (size_t i = 0; i < header.size(); ++i)
      out += "---|";
    out += "\n";
  }
  for (const auto& r : rows)
    line(r);
  return out;
}

std::string sampler_column(const Record& r) {
  // the sampler's label (every setting that differs from its default); records written
  // before it existed: mode, method, steps, w(t) and guidance
  std::string s = text_field(r, "sampler");
  if (s.empty()) {
    s = text_field(r, "mode") + " " + text_field(r, "method") + " " +
        std::to_string(r.value("num_steps", int64_t{0}));
    if (text_field(r, "mode") == "SDE") s += " " + text_field(r, "diffusion_form");
    if (r.value("cfg_scale", 1.0) != 1.0) s += " cfg " + num(r, "cfg_scale");
  }
  // The planned NFE per sample (the same in every row; dopri5's is adaptive).
  if (r.contains("nfe_planned") && r["nfe_planned"].is_number_integer())
    s += r["nfe_planned"].get<int64_t>() < 0
             ? " (NFE adaptive)"
             : " (NFE " + std::to_string(r["nfe_planned"].get<int64_t>()) + ")";
  return s;
}

/// The steps column: grid points (ODE/SDE) or the respacing (DDPM/DDIM).
std::string steps_of(const Record& r) {
  if (r.contains("respacing")) return text_field(r, "respacing");
  return std::to_string(r.value("num_steps", int64_t{0}));
}

/// w(t) of an SDE, the variance type of DDPM, eta of DDIM.
std::string form_or_variance(const Record& r) {
  const std::string clip = text_field(r, "clip_denoised") == "true" ? " clip" : "";
  if (r.contains("variance_type")) return text_field(r, "variance_type") + clip;
  if (r.contains("eta") && text_field(r, "mode") == "DDIM") return "eta " + num(r, "eta") + clip;
  return text_field(r, "diffusion_form");
}

}  // namespace

std::string sampler_without_steps(const Record& r) {
  std::string label = text_field(r, "sampler");
  if (label.empty()) label = sampler_column(r);
  const std::string steps = r.contains("respacing")
                                ? text_field(r, "respacing")
                                : std::to_string(r.value("num_steps", int64_t{-1}));
  // which timesteps a respacing keeps is part of the sampler: "ddim50" (a stride) and
  // "25,25" (sections) are other samplers than "50" at the same NFE
  std::string kind;
  if (steps.rfind("ddim", 0) == 0)
    kind = "ddim-stride";
  else if (r.contains("respacing") && steps.find(',') != std::string::npos)
    kind = "sections " + steps;
  std::istringstream in(label);
  std::string token, out;
  bool dropped = false;
  while (in >> token) {
    if (token == "(NFE") break;  // sampler_column's NFE note
    if (!dropped && token == steps) {
      dropped = true;  // the first match: the label puts the steps right after the method
      if (!kind.empty()) out += (out.empty() ? "" : " ") + kind;
      continue;
    }
    out += (out.empty() ? "" : " ") + token;
  }
  if (r.contains("path_type"))
    out = text_field(r, "path_type") + "/" + text_field(r, "prediction") + " " + out;
  return out;
}


std::string text_field(const Record& r, const char* key) {
  return r.contains(key) && r[key].is_string() ? r[key].get<std::string>() : "";
}

std::string latex_escape(const std::string& text) {
  // Symbols the reports print that pdflatex's default fonts lack as text characters.
  static const std::pair<const char*, const char*> kMath[] = {
      {"\u0394", "$\\Delta$"}, {"\u2212", "$-$"},     {"\u00d7", "$\\times$"},
      {"\u00b1", "$\\pm$"},    {"\u2264", "$\\le$"}, {"\u2265", "$\\ge$"},
      {"\u03c3", "$\\sigma$"}};
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (static_cast<unsigned char>(c) >= 0x80) {
      bool replaced = false;
      for (const auto& [utf8, tex] : kMath) {
        const std::string u(utf8);
        if (text.compare(i, u.size(), u) == 0) {
          out += tex;
          i += u.size() - 1;
          replaced = true;
          break;
        }
      }
      if (!replaced) out += c;  // other UTF-8 passes through (LaTeX reads UTF-8)
      continue;
    }
    switch (c) {
      case '\\':
        out += "\\textbackslash{}";
        break;
      case '~':
        out += "\\textasciitilde{}";
        break;
      case '-':  // "--" would print an en dash: "--t0" stays two hyphens
        out += '-';
        if (i + 1 < text.size() && text[i + 1] == '-') out += "{}";
        break;
      case '<':  // the default OT1 text font has no < and >
        out += "$<$";
        break;
      case '>':
        out += "$>$";
        break;
      case '^':
        out += "\\textasciicircum{}";
        break;
      case '&':
      case '%':
      case '$':
      case '#':
      case '_':
      case '{':
      case '}':
        out += '\\';
        out += c;
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string html_escape(const std::string& text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

namespace {

// JSON nested deeper than this is refused where it is read: copying or printing a value
// recurses per level (a record with 100,000 nested arrays overflowed the stack in gate and
// compare, found by a helper session); sit-eval's own records nest 3 levels.
constexpr int kMaxJsonDepth = 64;

// Parses TEXT (a string or a stream), refusing nesting past kMaxJsonDepth with WHERE.
template <class Input>
Record parse_bounded(Input&& text, const std::string& where) {
  return Record::parse(std::forward<Input>(text),
                       [&](int depth, Record::parse_event_t, Record&) {
                         if (depth > kMaxJsonDepth)
                           fail(where, ": JSON nested deeper than ", kMaxJsonDepth, " levels");
                         return true;
                       });
}

// nlohmann's message without its "[json.exception.parse_error.101] " tag.
std::string json_reason(const nlohmann::json::exception& e) {
  const std::string what = e.what();
  const size_t tag = what.find("] ");
  return what.rfind("[json.exception.", 0) == 0 && tag != std::string::npos ? what.substr(tag + 2)
                                                                             : what;
}

enum class FieldType { kText, kNumber, kInteger };

/// The record fields the reports, `compare` and `gate` read, with the JSON type sit-eval
/// writes them as (eval/sweep.cpp: base_record and the metric fields; the sampler fields'
/// types are eval/sampler_spec's numeric / integer flags). Other fields pass unchecked.
const std::map<std::string, FieldType>& record_field_types() {
  static const std::map<std::string, FieldType> types = [] {
    std::map<std::string, FieldType> t;
    for (const char* k : {"id", "label", "sampler", "model", "mode", "path_type", "prediction",
                          "method", "status", "error", "run", "shard", "feature_space",
                          "protocol", "protocol_fingerprint", "protocol_overrides", "respacing",
                          "variance_type", "clip_denoised", "diffusion_form",
                          "diffusion_convention", "last_step", "cfg_channels", "cfg_schedule",
                          "guidance", "guidance_interval", "guidance_steps", "error_norm",
                          "loss_table"})
      t[k] = FieldType::kText;
    for (const char* k : {"nfe", "nfe_uncond", "cfg_scale", "cfg_interval_start", "eta", "atol",
                          "rtol", "diffusion_norm", "last_step_size", "diffusion_eta",
                          "time_shift", "sample_eps", "wall_s", "samples_per_s"})
      t[k] = FieldType::kNumber;
    for (const char* k : {"num_steps", "nfe_planned", "n_samples", "global_seed", "null_class"})
      t[k] = FieldType::kInteger;
    return t;
  }();
  return types;
}

/// Refuses a record that is not an object or whose known fields have another JSON type
/// than sit-eval writes (a file from another tool, edited by hand, or damaged), so that no
/// table fails halfway on it. Metrics and their spreads are numbers, or null (NaN).
void check_record(const Record& r, const std::string& path, int line_no) {
  if (!r.is_object())
    fail(path, ":", line_no, ": a result record must be a JSON object, got ", r.type_name());
  for (const auto& [key, value] : r.items()) {
    const auto it = record_field_types().find(key);
    const char* expected = nullptr;
    if (it != record_field_types().end()) {
      if (it->second == FieldType::kText && !value.is_string()) expected = "a string";
      if (it->second == FieldType::kNumber && !value.is_number()) expected = "a number";
      if (it->second == FieldType::kInteger && !value.is_number_integer()) expected = "an integer";
    } else if (is_metric_field(key) && !value.is_number() && !value.is_null()) {
      expected = "a number or null";
    }
    if (expected)
      fail(path, ":", line_no, ": field '", key, "' must be ", expected, ", got ",
           value.is_string() ? "\"" + value.get<std::string>().substr(0, 40) + "\""
                             : std::string(value.type_name()));
  }
}

}  // namespace

bool is_metric_field(const std::string& field) {
  const std::string key = without_baseline_prefix(field);
  for (const auto& m : eval::metric_table())
    if (key == m.key || (*m.spread && key == m.spread)) return true;
  return false;
}

std::vector<Record> load_results(const std::string& path) {
  if (std::filesystem::is_directory(path))
    fail(path, ": is a directory, expected a results file (a run directory's is "
         "RUN_DIR/results.jsonl)");
  std::ifstream in(path);
  if (!in) fail(path, ": cannot open the results file");
  std::vector<Record> out;
  std::string content((std::istreambuf_iterator<char>(in)), {});
  size_t start = 0;
  int line_no = 0;
  for (size_t end; (end = content.find('\n', start)) != std::string::npos; start = end + 1) {
    ++line_no;
    const std::string line = content.substr(start, end - start);
    if (line.empty()) continue;
    try {
      out.push_back(parse_bounded(line, cat(path, ":", line_no)));
    } catch (const nlohmann::json::exception& e) {
      fail(path, ":", line_no, ": not a JSON record (", json_reason(e), ")");
    }
    check_record(out.back(), path, line_no);
  }
  return out;  // anything after the last newline is a torn write and is ignored
}

TableFormat parse_table_format(const std::string& name) {
  if (name == "md") return TableFormat::kMarkdown;
  if (name == "csv") return TableFormat::kCsv;
  if (name == "tex") return TableFormat::kLatex;
  if (name == "html") return TableFormat::kHtml;
  fail("table format must be one of md, csv, tex, html, json; got '", name, "'");
}

std::string guidance_text(const Record& r);

/// The long table in LaTeX, with the columns chosen to fit a page: the sampler settings in
/// one wrapping "configuration" column (the record's label, with its protocol and guidance),
/// NFE, the metrics, and the status only when a configuration failed.
std::string long_table_tex(const std::vector<Record>& records,
                           const std::vector<std::string>& metric_columns,
                           const std::vector<std::string>& metric_headers, int digits) {
  const bool runs = std::any_of(records.begin(), records.end(),
                                [](const Record& r) { return r.contains("run"); });
  const bool failures = std::any_of(records.begin(), records.end(),
                                    [](const Record& r) { return text_field(r, "status") != "ok"; });
  std::vector<std::string> header = {"id", "configuration", "NFE"};
  std::string align = "lpr";
  header.insert(header.end(), metric_headers.begin(), metric_headers.end());
  align += std::string(metric_headers.size(), 'r');
  if (failures) {
    header.push_back("status");
    align += 'p';
  }
  if (runs) {
    header.insert(header.begin(), "run");
    align = "l" + align;
  }
  std::vector<std::vector<std::string>> rows;
  for (const auto& r : records) {
    std::string config = text_field(r, "label");
    if (config.empty()) config = sampler_column(r);
    if (r.contains("protocol"))
      config += "; protocol " + text_field(r, "protocol") + " " +
                text_field(r, "protocol_fingerprint") +
                (r.contains("protocol_overrides") ? " (changed)" : "");
    if (r.contains("nfe_uncond")) config += "; guidance " + guidance_text(r);
    std::vector<std::string> row = {text_field(r, "id"), config, num(r, "nfe")};
    for (const auto& key : metric_columns)
      row.push_back(metric(r, key, digits));
    if (failures)
      row.push_back(text_field(r, "status") == "ok" ? "ok" : "failed: " + text_field(r, "error"));
    if (runs) row.insert(row.begin(), text_field(r, "run"));
    rows.push_back(std::move(row));
  }
  return render_tex(header, rows, align, runs ? 2 : 1);
}

/// "autoguidance, linear, t in [0.3,1.0] (10)": what decides when and how a guided record's
/// guidance ran; "" for unguided records.
std::string guidance_text(const Record& r) {
  if (!r.contains("nfe_uncond")) return "";
  std::string s;
  auto add = [&](const std::string& part) { s += (s.empty() ? "" : ", ") + part; };
  if (r.contains("guidance")) add(text_field(r, "guidance"));
  if (r.contains("cfg_schedule")) add(text_field(r, "cfg_schedule"));
  if (r.contains("guidance_interval")) add("t in [" + text_field(r, "guidance_interval") + "]");
  if (r.contains("cfg_interval_start")) add("t >= " + num(r, "cfg_interval_start"));
  if (r.contains("guidance_steps")) add("steps " + text_field(r, "guidance_steps"));
  if (s.empty()) add("every step");
  return s + " (" + num(r, "nfe_uncond") + ")";
}

std::string long_table(const std::vector<Record>& records, TableFormat format, int digits) {
  if (format == TableFormat::kCsv) digits = kFull;  // CSV is read by programs: every digit
  const bool runs = std::any_of(records.begin(), records.end(),
                                [](const Record& r) { return r.contains("run"); });
  // a column for each metric some record has (FID always); the published FID and the
  // difference beside it when a baseline annotated the records
  auto any = [&](const std::string& key) {
    return std::any_of(records.begin(), records.end(),
                       [&](const Record& r) { return r.contains(key); });
  };
  std::vector<std::string> metric_columns;  // record keys
  std::vector<std::string> header = {
      "id", "mode", "path", "prediction", "method", "steps", "w(t) (D = w/2) / variance",
      "cfg", "NFE"};
  for (const auto& m : eval::metric_table()) {
    const std::string key = m.key;
    if (key != "fid" && !any(key)) continue;
    metric_columns.push_back(key);
    const std::string name = metric_name(records, key);
    header.push_back(name);
    if (key == "fid" && any("published_" + key)) {
      metric_columns.push_back("published_" + key);
      header.push_back("published " + name);
      metric_columns.push_back("delta_" + key);
      header.push_back("\u0394 " + name);
    }
  }
  if (format == TableFormat::kLatex)
    return long_table_tex(records, metric_columns,
                          std::vector<std::string>(header.end() - metric_columns.size(),
                                                   header.end()),
                          digits);
  // when guidance is on: its form (autoguidance, schedule, interval) and the evaluations
  // that ran the guiding branch, so configurations differing only there read apart
  const bool guidance_forms = any("nfe_uncond");
  if (guidance_forms) header.insert(header.begin() + 9, "guidance (guided NFE)");  // after NFE
  header.push_back("status");
  // runs of protocol presets: the preset and the fingerprint of what ran
  const bool protocols = any("protocol");
  if (protocols) header.insert(header.begin() + 1, "protocol (fingerprint)");
  if (runs) header.insert(header.begin(), "run");
  std::vector<std::vector<std::string>> rows;
  for (const auto& r : records) {
    std::vector<std::string> row = {text_field(r, "id"),
                                    text_field(r, "mode"),
                                    text_field(r, "path_type"),
                                    text_field(r, "prediction"),
                                    text_field(r, "method"),
                                    steps_of(r),
                                    form_or_variance(r),
                                    num(r, "cfg_scale"),
                                    num(r, "nfe")};
    if (guidance_forms) row.push_back(guidance_text(r));
    for (const auto& key : metric_columns)
      row.push_back(metric(r, key, digits));
    row.push_back(text_field(r, "status") == "ok" ? "ok" : "failed: " + text_field(r, "error"));
    if (protocols)
      row.insert(row.begin() + 1,
                 r.contains("protocol")
                     ? text_field(r, "protocol") + " " + text_field(r, "protocol_fingerprint") +
                           (r.contains("protocol_overrides") ? " (changed)" : "")
                     : std::string());
    if (runs) row.insert(row.begin(), text_field(r, "run"));
    rows.push_back(std::move(row));
  }
  return render(header, rows, format);
}

std::string pivot_table(const std::vector<Record>& records, const std::string& metric_key,
                        TableFormat format, int digits) {
  if (format == TableFormat::kCsv) digits = kFull;
  std::vector<std::string> columns, row_keys;
  std::map<std::pair<std::string, std::string>, std::string> cells;
  auto add_unique = [](std::vector<std::string>& v, const std::string& s) {
    if (std::find(v.begin(), v.end(), s) == v.end()) v.push_back(s);
  };
  for (const auto& r : records) {
    const std::string row =
        (r.contains("run") ? text_field(r, "run") + ": " : std::string()) +
        (r.contains("path_type")
             ? text_field(r, "path_type") + " / " + text_field(r, "prediction")
             : std::string("discrete timesteps / noise"));  // DDPM, DDIM
    std::string col = sampler_column(r);
    // two configurations in one cell (records without a distinguishing label): one column
    // each, named by ID, rather than one hiding the other
    if (cells.count({row, col})) col += " [" + text_field(r, "id") + "]";
    add_unique(row_keys, row);
    add_unique(columns, col);
    cells[{row, col}] = text_field(r, "status") == "ok" ? metric(r, metric_key, digits) : "failed";
  }
  if (format == TableFormat::kLatex) {
    // on paper the longer side runs down the page: samplers as rows when they outnumber
    // the interpolant / prediction pairs (the demo: 40 samplers, 9 pairs)
    const bool transpose = columns.size() > row_keys.size();
    const auto& down = transpose ? columns : row_keys;
    const auto& across = transpose ? row_keys : columns;
    std::vector<std::string> header = {transpose ? "sampler" : "interpolant / prediction"};
    header.insert(header.end(), across.begin(), across.end());
    std::vector<std::vector<std::string>> rows;
    for (const auto& d : down) {
      std::vector<std::string> row = {d};
      for (const auto& a : across) {
        auto it = transpose ? cells.find({a, d}) : cells.find({d, a});
        row.push_back(it == cells.end() ? "" : it->second);
      }
      rows.push_back(std::move(row));
    }
    return render_tex(header, rows, "p" + std::string(across.size(), 'r'), 1,
                      metric_name(records, metric_key) + " by interpolant / prediction and sampler");
  }
  std::vector<std::string> header = {"interpolant / prediction"};
  header.insert(header.end(), columns.begin(), columns.end());
  std::vector<std::vector<std::string>> rows;
  for (const auto& rk : row_keys) {
    std::vector<std::string> row = {rk};
    for (const auto& c : columns) {
      auto it = cells.find({rk, c});
      row.push_back(it == cells.end() ? "" : it->second);
    }
    rows.push_back(std::move(row));
  }
  return render(header, rows, format);
}

}  // namespace sit::reports

namespace sit::reports {

std::string shortest_text(double v) {
  if (!std::isfinite(v)) return std::isnan(v) ? "nan" : v > 0 ? "inf" : "-inf";
  char buf[40];
  // the fewest digits that read back exactly; positional rather than "1e+01" for
  // ordinary magnitudes
  const bool ordinary = v == 0 || (std::fabs(v) >= 1e-5 && std::fabs(v) < 1e16);
  for (int p = 1; p <= 17; ++p) {
    std::snprintf(buf, sizeof buf, "%.*g", p, v);
    if (std::strtod(buf, nullptr) == v && !(ordinary && std::strchr(buf, 'e'))) break;
  }
  return buf;
}

namespace {
/// printf of one precision and one double into a string of whatever length it takes.
std::string printed(const char* format, int precision, double v) {
  const int n = std::snprintf(nullptr, 0, format, precision, v);
  std::string out(static_cast<size_t>(std::max(n, 0)) + 1, '\0');
  std::snprintf(out.data(), out.size(), format, precision, v);
  out.resize(out.size() - 1);
  return out;
}
}  // namespace

std::string format_metric(double v, const std::string& key, int digits) {
  if (digits == kFull) return shortest_text(v);
  if (digits >= 0) return printed("%.*f", digits, v);
  if (digits == kPaper && key != "nfe") return printed("%.*f", paper_digits(key), v);
  // 4 significant digits would need an exponent from 10^4: whole numbers up to 10^15,
  // beyond that (no metric's range) the exponent after all
  if (std::fabs(v) >= 1e4 && std::fabs(v) < 1e15) return printed("%.*f", 0, v);
  return printed("%.*g", 4, v);
}

bool inception_features(const Record& r) {
  const std::string space = text_field(r, "feature_space");
  return space.empty() || space.find("Inception") != std::string::npos ||
         space.find("inception") != std::string::npos;
}

std::string metric_name(const std::vector<Record>& records, const std::string& key) {
  const eval::Metric* m = eval::find_metric(key);
  if (!m) return key == "nfe" ? "NFE" : key;
  if (key != "fid" && key != "sfid") return m->display;
  int inception = 0, other = 0;
  for (const auto& r : records)
    if (r.contains(key) || r.contains("published_" + key))
      (inception_features(r) ? inception : other) += 1;
  const std::string fd = key == "fid" ? "FD" : "sFD";
  if (other == 0) return m->display;
  return inception == 0 ? fd : fd + " / " + m->display;
}

std::vector<Record> ok_records(const std::string& dir) {
  std::vector<Record> out;
  for (auto& r : load_results(dir + "/results.jsonl"))
    if (r.value("status", "") == "ok") out.push_back(r);
  return out;
}

std::map<std::string, Record> load_gate_baseline(const std::string& path) {
  namespace fs = std::filesystem;
  std::vector<Record> rows;
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
      Record row;
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
    Record j;
    try {
      j = parse_bounded(in, path);
    } catch (const nlohmann::json::exception& e) {
      fail(path, ": not valid JSON: ", json_reason(e));
    }
    const Record& list = j.is_object() && j.contains("configurations") ? j["configurations"] : j;
    if (!list.is_array())
      fail(path, ": expected an array of configurations or {\"configurations\": [...]}");
    for (const auto& r : list)
      rows.push_back(r);
  }
  const bool written_by_hand = !fs::is_directory(path);
  std::map<std::string, Record> out;
  for (const auto& r : rows) {
    if (!r.contains("id") || !r["id"].is_string())
      fail(path, ": every baseline configuration needs a string 'id'");
    for (const auto& m : eval::metric_keys())
      if (r.contains(m) && (!r[m].is_number() || !std::isfinite(r[m].get<double>())))
        fail(path, ": configuration ", r["id"].get<std::string>(), ": '", m,
             "' must be a finite number, got ",
             r[m].is_number() ? shortest_text(r[m].get<double>()) : r[m].dump());
    if (r.contains("label") && !r["label"].is_string())
      fail(path, ": configuration ", r["id"].get<std::string>(), ": 'label' must be a string, got ",
           r["label"].dump());
    const std::string id = r["id"].get<std::string>();
    if (written_by_hand && out.count(id))
      fail(path, ": configuration ", id, " is given twice; each id once");
    out[id] = r;
  }
  if (out.empty()) fail(path, ": the baseline has no configurations");
  return out;
}

}  // namespace sit::reports
