#include "reports/paper_tables.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <set>

#include "common/error.h"
#include "eval/metric_table.h"

namespace sit::reports {
namespace {

using eval::Metric;

const Metric& info(const std::string& key) {
  const Metric* m = eval::find_metric(key);
  if (!m) fail("paper tables: unknown metric '", key, "' (", eval::metric_names_help(), ")");
  return *m;
}

bool lower_is_better(const Metric& m) {
  return m.direction == eval::Direction::kLowerIsBetter;
}

/// The metrics papers report beside FID (the ADM evaluator's), in table order.
std::vector<std::string> adm_keys() {
  std::vector<std::string> keys;
  for (const auto& m : eval::metric_table())
    if (*m.adm_label) keys.push_back(m.key);
  return keys;
}

bool ok(const Record& r) {
  return text_field(r, "status") == "ok";
}

std::string format_value(double v, const std::string& key, int digits) {
  char buf[64];
  if (digits == kSignificant4)
    std::snprintf(buf, sizeof buf, "%.4g", v);
  else
    std::snprintf(buf, sizeof buf, "%.*f", digits >= 0 ? digits : info(key).paper_digits, v);
  return buf;
}

std::string header_cell(const Metric& m) {
  return latex_escape(m.display) + (lower_is_better(m) ? "$\\downarrow$" : "$\\uparrow$");
}

/// A numeric column: formatted cells with the best one in bold (ties: all bold).
std::vector<std::string> column(const std::vector<const Record*>& rows, const std::string& key,
                                int digits) {
  const Metric& m = info(key);
  std::vector<std::string> out(rows.size());
  double best = lower_is_better(m) ? 1e300 : -1e300;
  for (const Record* r : rows)
    if (r && ok(*r) && r->contains(key)) {
      // compare what is printed, so equal printed values are equally bold
      const double v = std::stod(format_value((*r)[key].get<double>(), key, digits));
      best = lower_is_better(m) ? std::min(best, v) : std::max(best, v);
    }
  for (size_t i = 0; i < rows.size(); ++i) {
    const Record* r = rows[i];
    if (!r) continue;
    if (!ok(*r)) {
      out[i] = "failed";
      continue;
    }
    if (!r->contains(key)) continue;
    const std::string text = format_value((*r)[key].get<double>(), key, digits);
    out[i] = std::stod(text) == best ? "\\textbf{" + text + "}" : text;
  }
  return out;
}

std::string caption(const std::vector<Record>& records, const std::string& what) {
  std::set<int64_t> samples, nfe;
  for (const auto& r : records) {
    if (r.contains("n_samples")) samples.insert(r["n_samples"].get<int64_t>());
    if (r.contains("nfe_planned")) nfe.insert(r["nfe_planned"].get<int64_t>());
  }
  auto list = [](const std::set<int64_t>& s) {
    std::string t;
    for (int64_t v : s)
      t += (t.empty() ? "" : ", ") + (v < 0 ? std::string("adaptive") : std::to_string(v));
    return t;
  };
  // Clauses whose numbers no record carries are left out rather than printed as unknown.
  std::string out = what;
  if (!samples.empty()) out += "; " + list(samples) + " samples per configuration";
  if (!nfe.empty()) out += "; NFE " + list(nfe);
  return out + ".";
}

std::string wrap(const std::string& cap, const std::string& cols, const std::string& body) {
  return "\\begin{table}[t]\n\\centering\n\\caption{" + latex_escape(cap) + "}\n\\begin{tabular}{" +
         cols + "}\n\\toprule\n" + body + "\\bottomrule\n\\end{tabular}\n\\end{table}\n";
}

std::string join(const std::vector<std::string>& cells) {
  std::string s;
  for (size_t i = 0; i < cells.size(); ++i)
    s += (i ? " & " : "") + cells[i];
  return s + " \\\\\n";
}

std::string diffusion_layout(const std::vector<Record>& records, const std::string& metric,
                             int digits) {
  std::vector<std::string> rows, cols;
  std::map<std::pair<std::string, std::string>, const Record*> cell;
  for (const auto& r : records) {
    if (text_field(r, "mode") != "SDE") continue;
    const std::string row = text_field(r, "path_type") + " / " + text_field(r, "prediction");
    const std::string col = text_field(r, "diffusion_form");
    if (std::find(rows.begin(), rows.end(), row) == rows.end()) rows.push_back(row);
    if (std::find(cols.begin(), cols.end(), col) == cols.end()) cols.push_back(col);
    cell[{row, col}] = &r;
  }
  if (rows.empty()) fail("--layout diffusion needs SDE configurations");
  std::vector<std::vector<std::string>> grid(rows.size(), std::vector<std::string>(cols.size()));
  for (size_t j = 0; j < cols.size(); ++j) {
    std::vector<const Record*> c;
    for (const auto& row : rows) {
      auto it = cell.find({row, cols[j]});
      c.push_back(it == cell.end() ? nullptr : it->second);
    }
    const auto values = column(c, metric, digits);
    for (size_t i = 0; i < rows.size(); ++i)
      grid[i][j] = values[i];
  }
  std::string body = join([&] {
    std::vector<std::string> h = {"Interpolant / model"};
    for (const auto& c : cols)
      h.push_back("$w(t)$ = " + latex_escape(c));
    return h;
  }());
  body += "\\midrule\n";
  for (size_t i = 0; i < rows.size(); ++i) {
    std::vector<std::string> line = {latex_escape(rows[i])};
    line.insert(line.end(), grid[i].begin(), grid[i].end());
    body += join(line);
  }
  return wrap(caption(records, std::string(info(metric).display) +
                                   " of SDE sampling by diffusion coefficient (D = w/2)"),
              "l" + std::string(cols.size(), 'c'), body);
}

std::string ode_sde_layout(const std::vector<Record>& records, int digits) {
  const std::vector<std::string> keys = adm_keys();
  std::vector<std::string> names;
  std::map<std::string, const Record*> ode, sde;
  for (const auto& r : records) {
    const std::string mode = text_field(r, "mode");
    if (mode != "ODE" && mode != "SDE") continue;  // DiT's DDPM/DDIM: --layout nfe
    const std::string name =
        (r.contains("run") ? text_field(r, "run") + ": " : "") + text_field(r, "model");
    if (std::find(names.begin(), names.end(), name) == names.end()) names.push_back(name);
    auto& slot = text_field(r, "mode") == "ODE" ? ode[name] : sde[name];
    const int64_t nfe = r.value("nfe_planned", int64_t{0});
    if (!slot || nfe > slot->value("nfe_planned", int64_t{0})) slot = &r;
  }
  if (names.empty()) fail("--layout ode-sde needs ODE or SDE configurations (DDPM/DDIM: --layout nfe)");
  std::vector<std::vector<std::string>> grid(names.size());
  for (const auto* family : {&ode, &sde})
    for (const auto& k : keys) {
      std::vector<const Record*> c;
      for (const auto& n : names)
        c.push_back(family->count(n) ? family->at(n) : nullptr);
      const auto values = column(c, k, digits);
      for (size_t i = 0; i < names.size(); ++i)
        grid[i].push_back(values[i]);
    }
  const size_t k = keys.size();
  std::string body = cat(" & \\multicolumn{", k, "}{c}{ODE} & \\multicolumn{", k,
                         "}{c}{SDE} \\\\\n\\cmidrule(lr){2-", k + 1, "} \\cmidrule(lr){", k + 2,
                         "-", 2 * k + 1, "}\n");
  std::vector<std::string> h = {"Model"};
  for (int f = 0; f < 2; ++f)
    for (const auto& k : keys)
      h.push_back(header_cell(info(k)));
  body += join(h) + "\\midrule\n";
  for (size_t i = 0; i < names.size(); ++i) {
    std::vector<std::string> line = {latex_escape(names[i])};
    line.insert(line.end(), grid[i].begin(), grid[i].end());
    body += join(line);
  }
  return wrap(
      caption(
          records,
          "ODE and SDE sampling side by side (per family, the configuration with the most NFE)"),
      "l" + std::string(2 * keys.size(), 'c'), body);
}

/// The model without its kind prefix: "DiT-XL/2", "SiT-XL/2"; analytic models keep it.
std::string model_name(const Record& r) {
  const std::string m = text_field(r, "model");
  return m.rfind("sit:", 0) == 0 || m.rfind("dit:", 0) == 0 ? m.substr(4) : m;
}

std::string nfe_layout(const std::vector<Record>& records, const std::string& metric,
                       int digits) {
  const Metric& m = info(metric);
  std::set<int64_t> nfes;
  std::vector<std::string> cols;
  std::map<std::pair<int64_t, std::string>, const Record*> cell;
  for (const auto& r : records) {
    const int64_t nfe = r.value("nfe_planned", int64_t{-1});
    if (nfe < 0) continue;  // adaptive: no matched budget
    std::string col = (r.contains("run") ? text_field(r, "run") + ": " : "") + model_name(r) +
                      " " + sampler_without_steps(r);
    // two configurations in one cell: the later one gets a column named by its ID
    if (cell.count({nfe, col})) col += " [" + text_field(r, "id") + "]";
    if (std::find(cols.begin(), cols.end(), col) == cols.end()) cols.push_back(col);
    nfes.insert(nfe);
    cell[{nfe, col}] = &r;
  }
  if (nfes.empty()) fail("--layout nfe needs configurations with a fixed NFE");
  std::string body = join([&] {
    std::vector<std::string> h = {"NFE"};
    for (const auto& c : cols)
      h.push_back(latex_escape(c));
    return h;
  }());
  body += "\\midrule\n";
  for (int64_t nfe : nfes) {
    // per row, the best value in bold: the samplers compared at one budget
    std::vector<std::string> text(cols.size());
    double best = lower_is_better(m) ? 1e300 : -1e300;
    for (size_t j = 0; j < cols.size(); ++j) {
      auto it = cell.find({nfe, cols[j]});
      if (it == cell.end()) continue;
      const Record& r = *it->second;
      if (!ok(r)) {
        text[j] = "failed";
      } else if (r.contains(metric)) {
        text[j] = format_value(r[metric].get<double>(), metric, digits);
        const double v = std::stod(text[j]);
        best = lower_is_better(m) ? std::min(best, v) : std::max(best, v);
      }
    }
    std::vector<std::string> line = {std::to_string(nfe)};
    for (const auto& t : text)
      line.push_back(!t.empty() && t != "failed" && std::stod(t) == best
                         ? "\\textbf{" + t + "}"
                         : (t.empty() ? "--" : t));
    body += join(line);
  }
  return wrap(caption(records, std::string(m.display) +
                                   " at matched NFE (one network evaluation per sample and "
                                   "step; a guided pair counts once), best per row in bold"),
              "r" + std::string(cols.size(), 'c'), body);
}

std::string system_layout(const std::vector<Record>& records, int digits) {
  // ADM's columns, then the modern metrics any record carries (FD_DINOv2 beside FID, as
  // EDM2 reports them)
  std::vector<std::string> keys = adm_keys();
  for (const auto& m : eval::metric_table())
    if (!*m.adm_label && m.adm_position >= 6 &&
        std::any_of(records.begin(), records.end(),
                    [&](const Record& r) { return r.contains(m.key) && r[m.key].is_number(); }))
      keys.push_back(m.key);
  std::vector<const Record*> rows;
  for (const auto& r : records)
    rows.push_back(&r);
  std::vector<std::vector<std::string>> cols;
  for (const auto& k : keys)
    cols.push_back(column(rows, k, digits));
  std::vector<std::string> h = {"Configuration"};
  for (const auto& k : keys)
    h.push_back(header_cell(info(k)));
  std::string body = join(h) + "\\midrule\n";
  for (size_t i = 0; i < rows.size(); ++i) {
    const Record& r = *rows[i];
    std::vector<std::string> line = {
        latex_escape((r.contains("run") ? text_field(r, "run") + ": " : "") +
                     text_field(r, "model") + " " + text_field(r, "label"))};
    for (const auto& c : cols)
      line.push_back(c[i]);
    body += join(line);
  }
  return wrap(caption(records, "System-level comparison"), "l" + std::string(keys.size(), 'c'),
              body);
}

}  // namespace

std::string paper_table(const std::vector<Record>& records, const std::string& layout,
                        const std::string& metric, int digits) {
  if (layout == "diffusion") return diffusion_layout(records, metric, digits);
  if (layout == "ode-sde") return ode_sde_layout(records, digits);
  if (layout == "system") return system_layout(records, digits);
  if (layout == "nfe") return nfe_layout(records, metric, digits);
  fail("--layout must be one of diffusion, ode-sde, system, nfe; got '", layout, "'");
}

}  // namespace sit::reports
