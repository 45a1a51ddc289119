#include "reports/html.h"

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "eval/metric_table.h"

namespace sit::reports {
namespace {

/// Line colours: the same sampler has the same colour in every panel (Okabe-Ito's
/// colour-blind-safe colours without the yellow and black, then ten more that read on white).
constexpr const char* kPalette[] = {"#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00",
                                    "#56B4E9", "#17BECF", "#7F3C8D", "#8C564B", "#7F7F7F",
                                    "#B22222", "#2E8B57", "#4B0082", "#B8860B", "#1E90FF",
                                    "#FF1493"};

bool finished(const Record& r, const std::string& metric) {
  return text_field(r, "status") == "ok" && r.contains(metric) && r[metric].is_number();
}

bool lower_is_better(const std::string& metric) {
  const eval::Metric* m = eval::find_metric(metric);
  return !m || m->direction == eval::Direction::kLowerIsBetter;
}

std::string gnuplot_string(const std::string& s) {
  std::string out = "\"";
  for (char c : s)
    out += c == '"' || c == '\\' ? '\'' : c;
  return out + "\"";
}

std::string label_of(const Record& r) {
  std::string label = text_field(r, "label");
  if (label.empty()) label = sampler_without_steps(r);
  return (r.contains("run") ? text_field(r, "run") + ": " : "") + label;
}

/// Runs gnuplot on `script`; returns the SVG element, or "" with `error` set.
std::string run_gnuplot(const std::string& program, const std::string& script, std::string& error) {
  char path[] = "/tmp/sit-eval-plot-XXXXXX";
  const int fd = ::mkstemp(path);
  if (fd < 0) {
    error = "cannot create a temporary file";
    return "";
  }
  ::close(fd);
  std::ofstream(path) << script;
  const std::string cmd = program + " " + path + " 2>&1";
  FILE* pipe = ::popen(cmd.c_str(), "r");
  std::string out;
  if (pipe) {
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, pipe)) > 0)
      out.append(buf, n);
  }
  const int status = pipe ? ::pclose(pipe) : -1;
  std::remove(path);
  const auto svg = out.find("<svg");
  if (status != 0 || svg == std::string::npos) {
    error = status == -1 || (WIFEXITED(status) && WEXITSTATUS(status) == 127)
                ? "gnuplot was not found ('" + program + "')"
                : "gnuplot failed: " + out.substr(0, 300);
    return "";
  }
  return out.substr(svg);
}

/// The y axis every plot shares: log when all values are positive, and a robust range —
/// the bad side (high for lower-is-better metrics) stops at 30x (log) or three
/// interdecile ranges (linear) beyond the 90th percentile of badness, so one diverging
/// configuration cannot flatten the others; values beyond are "out of range".
struct Axis {
  bool log = false;
  double lo = 0, hi = 1;
  bool clip_high = true;  ///< which side clips: high values for lower-is-better metrics
  bool outside(double v) const { return clip_high ? v > hi : v < lo; }
  /// `v` inside the range, values beyond it just inside the edge (so their markers show).
  double clamp(double v) const {
    const double in_hi = log ? hi / 1.04 : hi - 0.01 * (hi - lo);
    const double in_lo = log ? lo * 1.04 : lo + 0.01 * (hi - lo);
    return std::min(std::max(v, in_lo), in_hi);
  }
  std::string gnuplot() const {
    std::ostringstream s;
    s.precision(6);
    s << (log ? "set logscale y\n" : "unset logscale y\n") << "set yrange [" << lo << ":" << hi
      << "]\n";
    return s.str();
  }
};

Axis y_axis(std::vector<double> v, bool lower_better) {
  Axis a;
  a.clip_high = lower_better;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  auto quantile = [&](double q) { return v[static_cast<size_t>(std::floor(q * (n - 1) + 0.5))]; };
  // log when every value is positive and they span a decade (within one, a log axis has
  // no labelled tick)
  a.log = v.front() > 0 && v.back() >= 10 * v.front();
  if (a.log) {
    a.lo = v.front() / 1.5;
    a.hi = v.back() * 1.5;
    if (lower_better)
      a.hi = std::min(a.hi, quantile(0.9) * 30);
    else
      a.lo = std::max(a.lo, quantile(0.1) / 30);
  } else {
    const double spread = std::max(quantile(0.9) - quantile(0.1), 1e-12);
    const double pad = 0.05 * std::max(v.back() - v.front(), 1e-12);
    a.lo = v.front() - pad;
    a.hi = v.back() + pad;
    if (lower_better)
      a.hi = std::min(a.hi, quantile(0.9) + 3 * spread);
    else
      a.lo = std::max(a.lo, quantile(0.1) - 3 * spread);
  }
  return a;
}

/// One line of a panel: a sampler over its step counts.
struct Series {
  std::string name;  ///< the legend entry: the sampler without interpolant and steps
  int colour = 0;
  std::string family;  ///< "ODE", "SDE", or the discrete sampler's mode
  std::vector<const Record*> points;
};

struct Panel {
  std::string title;
  std::vector<Series> series;
};

std::string panel_of(const Record& r) {
  return (r.contains("run") ? text_field(r, "run") + ": " : "") +
         (r.contains("path_type")
              ? text_field(r, "path_type") + " / " + text_field(r, "prediction")
              : "DiT discrete timesteps (" + text_field(r, "mode") + ")");
}

/// The sampler of a record without its interpolant / prediction and step count.
std::string series_of(const Record& r) {
  std::string s = sampler_without_steps(r);
  const std::string prefix = text_field(r, "path_type") + "/" + text_field(r, "prediction") + " ";
  if (r.contains("path_type") && s.rfind(prefix, 0) == 0) s = s.substr(prefix.size());
  return s;
}

/// Panels per interpolant / prediction; a panel with more samplers than kMaxLegendEntries is
/// split by family (ODE / SDE), then into chunks.
std::vector<Panel> make_panels(const std::vector<Record>& records, const std::string& metric) {
  std::vector<std::string> order, colours;
  std::map<std::string, std::map<std::string, Series>> groups;
  std::map<std::string, std::vector<std::string>> series_order;
  for (const auto& r : records) {
    if (!finished(r, metric) || !r.contains("nfe")) continue;
    const std::string p = panel_of(r), s = series_of(r);
    if (!groups.count(p)) order.push_back(p);
    auto& series = groups[p];
    if (!series.count(s)) {
      series_order[p].push_back(s);
      auto c = std::find(colours.begin(), colours.end(), s);
      const int colour = static_cast<int>(c - colours.begin());
      if (c == colours.end()) colours.push_back(s);
      series[s] = Series{s, colour, text_field(r, "mode"), {}};
    }
    series[s].points.push_back(&r);
  }
  // the interpolant / prediction panels first, DiT's discrete samplers after them
  std::stable_partition(order.begin(), order.end(), [](const std::string& p) {
    return p.find("DiT discrete timesteps") == std::string::npos;
  });
  std::vector<Panel> panels;
  for (const auto& p : order) {
    std::vector<Series> all;
    for (const auto& s : series_order[p])
      all.push_back(groups[p][s]);
    std::vector<std::pair<std::string, std::vector<Series>>> parts = {{p, all}};
    if (static_cast<int>(all.size()) > kMaxLegendEntries) {
      parts.clear();
      std::map<std::string, std::vector<Series>> by_family;
      for (const auto& s : all)
        by_family[s.family].push_back(s);
      for (auto& [family, list] : by_family)
        for (size_t i = 0; i < list.size(); i += kMaxLegendEntries) {
          std::vector<Series> chunk(list.begin() + i,
                                    list.begin() + std::min(list.size(), i + kMaxLegendEntries));
          std::string title = p + ", " + family;
          if (list.size() > static_cast<size_t>(kMaxLegendEntries))
            title += " (" + std::to_string(i / kMaxLegendEntries + 1) + ")";
          parts.push_back({title, chunk});
        }
    }
    for (auto& [title, list] : parts)
      panels.push_back(Panel{title, list});
  }
  return panels;
}

std::string svg_terminal(int width, int height) {
  // noenhanced: labels are literal ("cfg_channels" is not a subscript)
  return "set terminal svg size " + std::to_string(width) + "," + std::to_string(height) +
         " dynamic noenhanced font 'sans,10'\nset encoding utf8\n";
}

/// The x axis every plot shares: log NFE, ticks at the budgets the run has (up to 16, those
/// at least 1.3x apart).
struct XAxis {
  double lo = 1, hi = 10;
  std::string tics;  ///< "(4, 8, 16)" or "" for gnuplot's own
  std::string gnuplot() const {
    std::ostringstream s;
    s.precision(10);
    s << "set logscale x\nset xrange [" << lo << ":" << hi << "]\n";
    if (!tics.empty()) s << "set xtics " << tics << "\n";
    return s.str();
  }
};

XAxis x_axis(const std::vector<double>& nfes) {
  XAxis x;
  x.lo = *std::min_element(nfes.begin(), nfes.end()) / 1.25;
  x.hi = *std::max_element(nfes.begin(), nfes.end()) * 1.25;
  std::set<double> budgets;
  for (double n : nfes)
    budgets.insert(std::round(n));
  if (budgets.size() <= 16) {
    double last = 0;
    for (double b : budgets)
      if (last == 0 || b >= 1.3 * last) {  // 16 and 17 would print on each other
        x.tics += (x.tics.empty() ? "(" : ", ") + shortest_text(b);
        last = b;
      }
    x.tics += ")";
  }
  return x;
}

std::string panel_script(const Panel& p, const Axis& y, const XAxis& x,
                         const std::string& metric, const std::string& name) {
  std::ostringstream s;
  s.precision(10);
  s << svg_terminal(460, 400) << x.gnuplot()
    << y.gnuplot() << "set title " << gnuplot_string(p.title) << "\n"
    << "set xlabel 'NFE per sample' offset 0,0.4\nset ylabel " << gnuplot_string(name)
    << "\nset grid\nset key below left Left reverse maxcols 2 font ',9' samplen 2 spacing 0.9 "
       "height 1\n";
  std::string plot;
  int block = 0;
  for (const auto& series : p.series) {
    std::vector<std::pair<double, double>> in, out;  // (NFE, value) drawn and edge markers
    for (const Record* r : series.points) {
      const double nfe = (*r)["nfe"].get<double>(), v = (*r)[metric].get<double>();
      in.push_back({nfe, y.clamp(v)});
      if (y.outside(v)) out.push_back({nfe, y.clamp(v)});
    }
    std::sort(in.begin(), in.end());
    const std::string colour = kPalette[series.colour % std::size(kPalette)];
    // ODE solid with circles, SDE dashed with triangles, discrete dotted with squares
    const int dash = series.family == "ODE" ? 1 : series.family == "SDE" ? 2 : 3;
    const int point = series.family == "ODE" ? 7 : series.family == "SDE" ? 9 : 5;
    s << "$D" << block << " << EOD\n";
    for (const auto& [x, v] : in)
      s << x << " " << v << "\n";
    s << "EOD\n";
    plot += std::string(plot.empty() ? "" : ", ") + "$D" + std::to_string(block) +
            " using 1:2 with linespoints lw 1.5 dt " + std::to_string(dash) + " pt " +
            std::to_string(point) + " ps 0.7 lc rgb '" + colour + "' title " +
            gnuplot_string(series.name);
    if (!out.empty()) {
      s << "$O" << block << " << EOD\n";
      for (const auto& [x, v] : out)
        s << x << " " << v << "\n";
      s << "EOD\n";
      plot += ", $O" + std::to_string(block) + " using 1:2 with points pt " +
              (y.clip_high ? "8" : "10") + " ps 1.6 lc rgb '" + colour + "' notitle";
    }
    ++block;
  }
  s << "plot " << plot << "\n";
  return s.str();
}

std::string pareto_script(const std::vector<Record>& records, const std::vector<const Record*>& front,
                          const Axis& y, const XAxis& x, const std::string& metric,
                          const std::string& name) {
  std::ostringstream s;
  s.precision(10);
  s << svg_terminal(900, 420) << x.gnuplot()
    << y.gnuplot() << "set xlabel 'NFE per sample'\nset ylabel " << gnuplot_string(name)
    << "\nset grid\nset key top right font ',9'\n$A << EOD\n";
  for (const auto& r : records)
    if (finished(r, metric) && r.contains("nfe"))
      s << r["nfe"].get<double>() << " " << y.clamp(r[metric].get<double>()) << "\n";
  s << "EOD\n$F << EOD\n";
  for (const Record* r : front)
    s << (*r)["nfe"].get<double>() << " " << y.clamp((*r)[metric].get<double>()) << "\n";
  s << "EOD\nplot $A using 1:2 with points pt 7 ps 0.5 lc rgb '#a0a0a0' title 'every "
       "configuration', $F using 1:2 with steps lw 2 lc rgb '#0072B2' notitle, $F using 1:2 "
       "with points pt 7 ps 1.1 lc rgb '#0072B2' title 'best at each budget (Pareto front)'\n";
  return s.str();
}

int64_t default_bar_nfe(const std::vector<Record>& records) {
  std::map<int64_t, int> count;
  for (const auto& r : records)
    count[r.value("nfe_planned", int64_t{-1})] += 1;
  int64_t best = -1;
  int most = 0;
  for (const auto& [nfe, c] : count)
    if (nfe > 0 && c >= most) {
      best = nfe;
      most = c;
    }
  return best;
}

std::string bar_script(const std::vector<const Record*>& rows, const std::string& metric,
                       const Axis& y, int64_t nfe, const std::string& name) {
  std::ostringstream data;
  data.precision(10);
  for (const Record* r : rows) {
    std::string label = label_of(*r);
    if (label.size() > 48) label = label.substr(0, 45) + "...";  // the full label is tabled
    data << gnuplot_string(label) << " " << y.clamp((*r)[metric].get<double>()) << "\n";
  }
  const int n = static_cast<int>(rows.size());
  std::ostringstream s;
  s.precision(10);
  // bars from the bottom of the shared axis (zero on a linear one)
  s << svg_terminal(std::max(600, 26 * n + 160), 560) << "set xtics rotate by -40 left font ',8'\nset bmargin 20\n"
    << "set rmargin 14\n" << y.gnuplot() << "set xrange [-0.6:" << n - 0.4 << "]\n"
    << "set ylabel " << gnuplot_string(name) << "\nset grid ytics\nunset key\n"
    << "set title " << gnuplot_string("configurations at " + std::to_string(nfe) + " NFE, best first") << "\n"
    << "$B << EOD\n" << data.str() << "EOD\n"
    << "plot $B using 0:2:($0-0.35):($0+0.35):(" << (y.log ? y.lo : std::min(0.0, y.hi)) << "):2:xtic(1) "
       "with boxxyerror fill solid 0.6 lc rgb '#0072B2'\n";
  return s.str();
}

std::string number(double v) {
  return format_metric(v, "", kSignificant4);
}

}  // namespace

bool has_configuration_at_nfe(const std::vector<Record>& records, const std::string& metric,
                              int64_t nfe) {
  return std::any_of(records.begin(), records.end(), [&](const Record& r) {
    return finished(r, metric) && r.value("nfe_planned", int64_t{-1}) == nfe;
  });
}

std::vector<const Record*> pareto_front(const std::vector<Record>& records,
                                        const std::string& metric) {
  std::vector<const Record*> rs;
  for (const auto& r : records)
    if (finished(r, metric) && r.contains("nfe") && r["nfe"].is_number()) rs.push_back(&r);
  const bool lower = lower_is_better(metric);
  auto better = [&](double a, double b) { return lower ? a < b : a > b; };
  // by NFE, the better first at equal NFE; then keep each that beats all before it
  std::stable_sort(rs.begin(), rs.end(), [&](const Record* a, const Record* b) {
    const double na = (*a)["nfe"].get<double>(), nb = (*b)["nfe"].get<double>();
    if (na != nb) return na < nb;
    return better((*a)[metric].get<double>(), (*b)[metric].get<double>());
  });
  std::vector<const Record*> front;
  for (const Record* r : rs)
    if (front.empty() || better((*r)[metric].get<double>(), (*front.back())[metric].get<double>()))
      front.push_back(r);
  return front;
}

std::string html_report(const std::vector<Record>& records, const HtmlOptions& o) {
  std::string program = o.gnuplot;
  if (program.empty())
    program = std::getenv("SIT_EVAL_GNUPLOT") ? std::getenv("SIT_EVAL_GNUPLOT") : "gnuplot";
  const std::string name = metric_name(records, o.metric);
  int ok = 0, failed = 0;
  for (const auto& r : records)
    (text_field(r, "status") == "ok" ? ok : failed) += 1;
  std::ostringstream h;
  h << "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>"
    << html_escape(o.title) << "</title>\n<style>\n"
    << "body{font-family:sans-serif;margin:2em;max-width:1500px}"
       "table{border-collapse:collapse;margin:1em 0;font-size:90%}"
       "th,td{border:1px solid #bbb;padding:3px 8px;text-align:right}"
       "th{background:#eee}td:first-child,th:first-child{text-align:left}"
       ".note{background:#fff4d6;padding:.5em 1em;border-left:4px solid #e0a800}"
       ".panels{display:grid;grid-template-columns:repeat(auto-fill,minmax(460px,1fr));gap:12px}"
       "figure{margin:0}figure.panel{border:1px solid #ddd;padding:4px}"
       "svg{max-width:100%;height:auto}pre{background:#f6f6f6;padding:1em}\n"
    << "</style>\n</head>\n<body>\n<h1>" << html_escape(o.title) << "</h1>\n<p>"
    << records.size() << (records.size() == 1 ? " configuration (" : " configurations (") << ok
    << " finished, " << failed
    << " failed); plotted metric: " << html_escape(name)
    << (lower_is_better(o.metric) ? " (lower is better)" : " (higher is better)") << ".</p>\n";

  // the shared axes: every finished value of the metric, NFE as measured
  std::vector<double> values, nfes;
  for (const auto& r : records)
    if (finished(r, o.metric) && r.contains("nfe") && r["nfe"].is_number()) {
      values.push_back(r[o.metric].get<double>());
      nfes.push_back(r["nfe"].get<double>());
    }
  std::string error;
  const std::vector<const Record*> front = pareto_front(records, o.metric);
  if (values.empty()) {
    h << "<p class=\"note\">No finished configuration has " << html_escape(name)
      << "; no plots.</p>\n";
  } else {
    const Axis y = y_axis(values, lower_is_better(o.metric));
    const XAxis x = x_axis(nfes);
    // 1. the answer first: the best configuration at each budget
    h << "<h2>Best configuration per NFE budget</h2>\n";
    const std::string pareto =
        run_gnuplot(program, pareto_script(records, front, y, x, o.metric, name), error);
    if (!error.empty()) {
      // the install advice only where gnuplot is missing, not where it refused the data
      const bool missing = error.rfind("gnuplot was not found", 0) == 0;
      h << "<p class=\"note\">Plots omitted: " << html_escape(error)
        << (missing ? ". Install gnuplot (Debian: gnuplot-nox) and rerun <code>sit-eval report "
                      "--format html</code>; the"
                    : ". The")
        << " tables below are complete.</p>\n";
    } else {
      h << "<figure class=\"pareto\">" << pareto << "</figure>\n";
    }
    h << "<table class=\"pareto\">\n<thead><tr><th>NFE per sample (at most)</th><th>best "
         "configuration</th><th>id</th><th>"
      << html_escape(name) << "</th></tr></thead>\n<tbody>\n";
    for (const Record* r : front)
      h << "<tr><td>" << shortest_text((*r)["nfe"].get<double>()) << "</td><td>"
        << html_escape(label_of(*r)) << "</td><td>" << html_escape(text_field(*r, "id"))
        << "</td><td>" << number((*r)[o.metric].get<double>()) << "</td></tr>\n";
    h << "</tbody>\n</table>\n";
    // 2. small multiples
    if (error.empty()) {
      const std::vector<Panel> panels = make_panels(records, o.metric);
      h << "<h2>" << html_escape(name) << " against NFE, one panel per interpolant / "
           "prediction</h2>\n<p>Shared axes: NFE per sample on a log scale, "
        << html_escape(name) << (y.log ? " on a log scale" : "") << " from " << number(y.lo)
        << " to " << number(y.hi)
        << ". ODE samplers solid with circles, SDE dashed with triangles, DiT's discrete "
           "samplers dotted with squares; a sampler keeps its colour in every panel.</p>\n"
           "<div class=\"panels\">\n";
      for (const auto& p : panels) {
        const std::string svg =
            run_gnuplot(program, panel_script(p, y, x, o.metric, name), error);
        h << "<figure class=\"panel\" data-legend-entries=\"" << p.series.size() << "\">"
          << (svg.empty() ? "<p class=\"note\">" + html_escape(error) + "</p>" : svg)
          << "</figure>\n";
        error.clear();
      }
      h << "</div>\n";
      std::vector<const Record*> outside;
      for (const auto& r : records)
        if (finished(r, o.metric) && r.contains("nfe") && y.outside(r[o.metric].get<double>()))
          outside.push_back(&r);
      if (!outside.empty()) {
        h << "<h3>Out of range</h3>\n<p>" << outside.size() << " value"
          << (outside.size() > 1 ? "s lie " : " lies ") << (y.clip_high ? "above " : "below ")
          << number(y.clip_high ? y.hi : y.lo)
          << " (the robust range of the axis); they are drawn as open triangles on the "
             "edge:</p>\n<table>\n<thead><tr><th>configuration</th><th>id</th><th>NFE</th><th>"
          << html_escape(name) << "</th></tr></thead>\n<tbody>\n";
        for (const Record* r : outside)
          h << "<tr><td>" << html_escape(label_of(*r)) << "</td><td>"
            << html_escape(text_field(*r, "id")) << "</td><td>"
            << shortest_text((*r)["nfe"].get<double>()) << "</td><td>"
            << number((*r)[o.metric].get<double>()) << "</td></tr>\n";
        h << "</tbody>\n</table>\n";
      }
      // 3. one budget in detail
      const int64_t nfe = o.bar_nfe > 0 ? o.bar_nfe : default_bar_nfe(records);
      std::vector<const Record*> at;
      for (const auto& r : records)
        if (finished(r, o.metric) && r.value("nfe_planned", int64_t{-1}) == nfe) at.push_back(&r);
      const bool lower = lower_is_better(o.metric);
      std::stable_sort(at.begin(), at.end(), [&](const Record* a, const Record* b) {
        const double va = (*a)[o.metric].get<double>(), vb = (*b)[o.metric].get<double>();
        return lower ? va < vb : va > vb;
      });
      if (at.empty()) {
        h << "<p class=\"note\">No bar chart: no finished configuration has " << html_escape(name)
          << " at " << nfe << " NFE.</p>\n";
      } else {
        const std::string svg = run_gnuplot(program, bar_script(at, o.metric, y, nfe, name), error);
        h << "<h2>" << html_escape(name) << " per configuration at " << nfe << " NFE</h2>\n";
        if (!svg.empty()) h << "<figure class=\"bars\">" << svg << "</figure>\n";
      }
    }
  }
  h << "<h2>Pivot: interpolant / prediction against sampler (" << html_escape(name) << ")</h2>\n"
    << pivot_table(records, o.metric, TableFormat::kHtml, o.digits)
    << "<h2>All configurations</h2>\n"
    << long_table(records, TableFormat::kHtml, o.digits);
  if (!o.summary.empty())
    h << "<h2>Reproduction against published numbers</h2>\n<pre>" << html_escape(o.summary)
      << "</pre>\n";
  h << "</body>\n</html>\n";
  return h.str();
}

}  // namespace sit::reports
