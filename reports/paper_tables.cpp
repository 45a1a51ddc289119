#include "reports/paper_tables.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <set>

#include "common/error.h"
#include "eval/metric_table.h"
#include "reports/latex.h"

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

/// The metrics papers report beside FID (the ADM evaluator's), in table order — those
/// some record has (a data-space run has no sFID or IS column); FID always.
std::vector<std::string> adm_keys(const std::vector<Record>& records) {
  std::vector<std::string> keys;
  for (const auto& m : eval::metric_table())
    if (*m.adm_label &&
        (std::string(m.key) == "fid" ||
         std::any_of(records.begin(), records.end(),
                     [&](const Record& r) { return r.contains(m.key) && r[m.key].is_number(); })))
      keys.push_back(m.key);
  return keys;
}

bool has_number(const Record& r, const std::string& key) {
  return r.contains(key) && r[key].is_number();
}

bool ok(const Record& r) {
  return text_field(r, "status") == "ok";
}

/// The metric's name over `records` (FD off Inception features) with its direction arrow.
std::string header_cell(const std::vector<Record>& records, const std::string& key) {
  return latex_escape(metric_name(records, key)) +
         (lower_is_better(info(key)) ? "$\\downarrow$" : "$\\uparrow$");
}

/// A numeric column: formatted cells with the best one in bold (ties: all bold).
std::vector<std::string> column(const std::vector<const Record*>& rows, const std::string& key,
                                int digits) {
  const Metric& m = info(key);
  std::vector<std::string> out(rows.size());
  double best = lower_is_better(m) ? 1e300 : -1e300;
  // compare what is printed, so equal printed values are equally bold (strtod: a subnormal
  // value prints as itself, which std::stod refuses)
  auto printed_value = [](const std::string& text) { return std::strtod(text.c_str(), nullptr); };
  for (const Record* r : rows)
    if (r && ok(*r) && has_number(*r, key)) {
      const double v = printed_value(format_metric((*r)[key].get<double>(), key, digits));
      best = lower_is_better(m) ? std::min(best, v) : std::max(best, v);
    }
  for (size_t i = 0; i < rows.size(); ++i) {
    const Record* r = rows[i];
    if (!r) continue;
    if (!ok(*r)) {
      out[i] = "failed";
      continue;
    }
    if (!has_number(*r, key)) continue;  // absent, or null (a NaN result)
    const std::string text = format_metric((*r)[key].get<double>(), key, digits);
    out[i] = printed_value(text) == best ? "\\textbf{" + text + "}" : text;
  }
  return out;
}

/// `what`, then the sample counts and planned NFE of `records` (the records the table shows).
std::string caption(const std::vector<const Record*>& records, const std::string& what) {
  std::set<int64_t> samples, nfe;
  for (const Record* p : records) {
    if (!p) continue;
    const Record& r = *p;
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

std::vector<const Record*> pointers(const std::vector<Record>& records) {
  std::vector<const Record*> out;
  for (const auto& r : records)
    out.push_back(&r);
  return out;
}

/// A finished LaTeX table (render_latex: fitted to the page, breaking across pages).
std::string table(const std::string& cap, std::vector<std::string> header,
                  std::vector<std::vector<std::string>> rows, const std::string& align,
                  const std::string& group_header = "") {
  LatexTable t;
  t.caption = latex_escape(cap);
  t.header = std::move(header);
  t.rows = std::move(rows);
  t.align = align;
  t.group_header = group_header;
  return render_latex(t);
}

std::string diffusion_layout(const std::vector<Record>& records, const std::string& metric,
                             int digits) {
  std::vector<std::string> rows, cols;
  std::map<std::pair<std::string, std::string>, const Record*> cell;
  std::vector<const Record*> shown;
  // Several SDE samplers per interpolant / prediction and w(t) (the demo: Euler and Heun at
  // three step counts): a row for each, so that no configuration hides another.
  auto pair_of = [](const Record& r) {
    return text_field(r, "path_type") + " / " + text_field(r, "prediction");
  };
  auto sampler_of = [](const Record& r) {
    std::string s = text_field(r, "method") + " " + std::to_string(r.value("num_steps", int64_t{0}));
    if (r.value("cfg_scale", 1.0) != 1.0) s += " cfg " + shortest_text(r["cfg_scale"].get<double>());
    return s;
  };
  std::set<std::string> samplers;
  for (const auto& r : records)
    if (text_field(r, "mode") == "SDE") samplers.insert(sampler_of(r));
  for (const auto& r : records) {
    if (text_field(r, "mode") != "SDE") continue;
    const std::string row = pair_of(r) + (samplers.size() > 1 ? ", " + sampler_of(r) : "");
    const std::string col = text_field(r, "diffusion_form");
    if (std::find(rows.begin(), rows.end(), row) == rows.end()) rows.push_back(row);
    if (std::find(cols.begin(), cols.end(), col) == cols.end()) cols.push_back(col);
    cell[{row, col}] = &r;
  }
  if (rows.empty()) fail("--layout diffusion needs SDE configurations");
  for (const auto& [key, r] : cell)
    shown.push_back(r);  // the caption's NFE and sample counts: the cells' own
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
  std::vector<std::string> header = {"Interpolant / model"};
  for (const auto& c : cols)
    header.push_back("$w(t)$ = " + latex_escape(c));
  std::vector<std::vector<std::string>> lines;
  for (size_t i = 0; i < rows.size(); ++i) {
    std::vector<std::string> line = {latex_escape(rows[i])};
    line.insert(line.end(), grid[i].begin(), grid[i].end());
    lines.push_back(std::move(line));
  }
  return table(caption(shown, metric_name(records, metric) +
                                  " of SDE sampling by diffusion coefficient (D = w/2)"),
               std::move(header), std::move(lines), "p" + std::string(cols.size(), 'c'));
}

std::string ode_sde_layout(const std::vector<Record>& records, int digits) {
  const std::vector<std::string> keys = adm_keys(records);
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
  std::vector<const Record*> shown;
  for (const auto* family : {&ode, &sde})
    for (const auto& k : keys) {
      std::vector<const Record*> c;
      for (const auto& n : names)
        c.push_back(family->count(n) ? family->at(n) : nullptr);
      const auto values = column(c, k, digits);
      for (size_t i = 0; i < names.size(); ++i)
        grid[i].push_back(values[i]);
    }
  // each row names the configurations it shows (the caption, so the columns stay narrow)
  std::string which;
  for (const auto& n : names)
    for (const auto* family : {&ode, &sde})
      if (family->count(n)) {
        const Record& r = *family->at(n);
        shown.push_back(&r);
        std::string label = text_field(r, "label");
        if (label.empty()) label = text_field(r, "sampler");
        which += (which.empty() ? "" : "; ") + n + " " + text_field(r, "mode") + ": " + label +
                 " (" + text_field(r, "id") + ")";
      }
  const size_t k = keys.size();
  const std::string groups = cat(" & \\multicolumn{", k, "}{c}{ODE} & \\multicolumn{", k,
                                 "}{c}{SDE} \\\\\n\\cmidrule(lr){2-", k + 1, "} \\cmidrule(lr){",
                                 k + 2, "-", 2 * k + 1, "}\n");
  std::vector<std::string> header = {"Model"};
  for (int f = 0; f < 2; ++f)
    for (const auto& key : keys)
      header.push_back(header_cell(records, key));
  std::vector<std::vector<std::string>> lines;
  for (size_t i = 0; i < names.size(); ++i) {
    std::vector<std::string> line = {latex_escape(names[i])};
    line.insert(line.end(), grid[i].begin(), grid[i].end());
    lines.push_back(std::move(line));
  }
  return table(caption(shown, "ODE and SDE sampling side by side (per model, the configuration "
                              "of each family with the most NFE: " +
                                  which + ")"),
               std::move(header), std::move(lines), "p" + std::string(2 * k, 'c'), groups);
}

/// The model without its kind prefix: "DiT-XL/2", "SiT-XL/2"; analytic models keep it.
std::string model_name(const Record& r) {
  const std::string m = text_field(r, "model");
  return m.rfind("sit:", 0) == 0 || m.rfind("dit:", 0) == 0 ? m.substr(4) : m;
}

std::string nfe_layout(const std::vector<Record>& records, const std::string& metric,
                       int digits) {
  const Metric& m = info(metric);
  std::vector<int64_t> nfes;
  std::vector<std::string> samplers;
  std::map<std::pair<int64_t, std::string>, const Record*> cell;
  std::vector<const Record*> shown;
  for (const auto& r : records) {
    const int64_t nfe = r.value("nfe_planned", int64_t{-1});
    if (nfe < 0) continue;  // adaptive: no matched budget
    std::string name = (r.contains("run") ? text_field(r, "run") + ": " : "") + model_name(r) +
                       " " + sampler_without_steps(r);
    // two configurations in one cell: the later one gets its own sampler, named by its ID
    if (cell.count({nfe, name})) name += " [" + text_field(r, "id") + "]";
    if (std::find(samplers.begin(), samplers.end(), name) == samplers.end())
      samplers.push_back(name);
    if (std::find(nfes.begin(), nfes.end(), nfe) == nfes.end()) nfes.push_back(nfe);
    cell[{nfe, name}] = &r;
    shown.push_back(&r);
  }
  if (nfes.empty()) fail("--layout nfe needs configurations with a fixed NFE");
  std::sort(nfes.begin(), nfes.end());
  // The samplers compared at one budget: the best of each budget in bold.
  std::map<int64_t, std::map<std::string, std::string>> text;
  for (int64_t nfe : nfes) {
    double best = lower_is_better(m) ? 1e300 : -1e300;
    for (const auto& s : samplers) {
      auto it = cell.find({nfe, s});
      if (it == cell.end()) continue;
      const Record& r = *it->second;
      if (!ok(r)) {
        text[nfe][s] = "failed";
      } else if (has_number(r, metric)) {
        text[nfe][s] = format_metric(r[metric].get<double>(), metric, digits);
        const double v = std::strtod(text[nfe][s].c_str(), nullptr);
        best = lower_is_better(m) ? std::min(best, v) : std::max(best, v);
      }
    }
    for (auto& [s, t] : text[nfe])
      if (t != "failed" && std::strtod(t.c_str(), nullptr) == best) t = "\\textbf{" + t + "}";
  }
  auto value = [&](int64_t nfe, const std::string& s) {
    auto it = text[nfe].find(s);
    return it == text[nfe].end() || it->second.empty() ? std::string("--") : it->second;
  };
  // The longer side runs down the page: samplers as rows when they outnumber the budgets.
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> lines;
  std::string align;
  if (samplers.size() > nfes.size()) {
    header = {"Sampler"};
    for (int64_t nfe : nfes)
      header.push_back("NFE " + std::to_string(nfe));
    for (const auto& s : samplers) {
      std::vector<std::string> line = {latex_escape(s)};
      for (int64_t nfe : nfes)
        line.push_back(value(nfe, s));
      lines.push_back(std::move(line));
    }
    align = "p" + std::string(nfes.size(), 'c');
  } else {
    header = {"NFE"};
    for (const auto& s : samplers)
      header.push_back(latex_escape(s));
    for (int64_t nfe : nfes) {
      std::vector<std::string> line = {std::to_string(nfe)};
      for (const auto& s : samplers)
        line.push_back(value(nfe, s));
      lines.push_back(std::move(line));
    }
    align = "r" + std::string(samplers.size(), 'c');
  }
  return table(caption(shown, metric_name(records, metric) +
                                  " at matched NFE (one network evaluation per sample and "
                                  "step; a guided pair counts once), best per NFE in bold"),
               std::move(header), std::move(lines), align);
}

std::string system_layout(const std::vector<Record>& records, int digits) {
  // ADM's columns, then the modern metrics any record carries (FD_DINOv2 beside FID, as
  // EDM2 reports them)
  std::vector<std::string> keys = adm_keys(records);
  for (const auto& m : eval::metric_table())
    if (!*m.adm_label && m.adm_position >= 6 &&
        std::any_of(records.begin(), records.end(),
                    [&](const Record& r) { return r.contains(m.key) && r[m.key].is_number(); }))
      keys.push_back(m.key);
  const std::vector<const Record*> rows = pointers(records);
  std::vector<std::vector<std::string>> cols;
  for (const auto& k : keys)
    cols.push_back(column(rows, k, digits));
  std::vector<std::string> header = {"Configuration"};
  for (const auto& k : keys)
    header.push_back(header_cell(records, k));
  std::vector<std::vector<std::string>> lines;
  for (size_t i = 0; i < rows.size(); ++i) {
    const Record& r = *rows[i];
    std::vector<std::string> line = {
        latex_escape((r.contains("run") ? text_field(r, "run") + ": " : "") +
                     text_field(r, "model") + " " + text_field(r, "label"))};
    for (const auto& c : cols)
      line.push_back(c[i]);
    lines.push_back(std::move(line));
  }
  return table(caption(rows, "System-level comparison"), std::move(header), std::move(lines),
               "p" + std::string(keys.size(), 'c'));
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
