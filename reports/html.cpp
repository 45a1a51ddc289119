#include "reports/html.h"

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "eval/metric_table.h"

namespace sit::reports {
namespace {

/// One line of the NFE plot: everything but the step count.
std::string group_of(const Record& r) {
  return (r.contains("run") ? text_field(r, "run") + ": " : "") + sampler_without_steps(r);
}

std::string gnuplot_string(const std::string& s) {
  std::string out = "\"";
  for (char c : s)
    out += c == '"' || c == '\\' ? '\'' : c;
  return out + "\"";
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

std::string nfe_plot_script(const std::vector<Record>& records, const std::string& metric) {
  std::map<std::string, std::vector<std::pair<double, double>>> groups;
  for (const auto& r : records)
    if (text_field(r, "status") == "ok" && r.contains(metric) && r.contains("nfe"))
      groups[group_of(r)].push_back({r["nfe"].get<double>(), r[metric].get<double>()});
  if (groups.empty()) return "";
  std::ostringstream s;
  s << "set terminal svg size 900,520 dynamic font 'sans,11'\n"
    << "set logscale x\nset xlabel 'NFE per sample (log scale)'\nset ylabel "
    << gnuplot_string(metric) << "\nset key outside right top\nset grid\n";
  int i = 0;
  for (auto& [name, pts] : groups) {
    std::sort(pts.begin(), pts.end());
    s << "$G" << i++ << " << EOD\n";
    for (const auto& [x, y] : pts)
      s << x << " " << y << "\n";
    s << "EOD\n";
  }
  s << "plot ";
  i = 0;
  for (const auto& [name, pts] : groups) {
    s << (i ? ", " : "") << "$G" << i << " using 1:2 with linespoints title "
      << gnuplot_string(name);
    ++i;
  }
  s << "\n";
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

std::string bar_plot_script(const std::vector<Record>& records, const std::string& metric,
                            int64_t nfe) {
  std::ostringstream data;
  int n = 0;
  for (const auto& r : records)
    if (text_field(r, "status") == "ok" && r.contains(metric) &&
        r.value("nfe_planned", int64_t{-1}) == nfe) {
      data << gnuplot_string(group_of(r)) << " " << r[metric].get<double>() << "\n";
      ++n;
    }
  if (n == 0) return "";
  std::ostringstream s;
  // bars start at zero; rotated labels get their own margin
  s << "set terminal svg size 900,520 dynamic font 'sans,11'\n"
    << "set style fill solid 0.6\nset boxwidth 0.7\nset xtics rotate by -35 left font ',9'\n"
    << "set bmargin 12\nset rmargin 12\nset yrange [0:*]\nset xrange [-0.6:" << n - 0.4 << "]\n"
    << "set ylabel " << gnuplot_string(metric) << "\nset grid ytics\nunset key\n"
    << "set title " << gnuplot_string("configurations at " + std::to_string(nfe) + " NFE") << "\n"
    << "$B << EOD\n"
    << data.str() << "EOD\n"
    << "plot $B using 0:2:xtic(1) with boxes\n";
  return s.str();
}

}  // namespace

std::string html_report(const std::vector<Record>& records, const HtmlOptions& o) {
  std::string program = o.gnuplot;
  if (program.empty())
    program = std::getenv("SIT_EVAL_GNUPLOT") ? std::getenv("SIT_EVAL_GNUPLOT") : "gnuplot";
  // the metric's display name from the metric table ("FID"), "NFE" for nfe
  const eval::Metric* m = eval::find_metric(o.metric);
  const std::string name = m ? m->display : o.metric == "nfe" ? "NFE" : o.metric;
  std::ostringstream h;
  h << "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>"
    << html_escape(o.title) << "</title>\n<style>\n"
    << "body{font-family:sans-serif;margin:2em;max-width:1200px}"
       "table{border-collapse:collapse;margin:1em 0;font-size:90%}"
       "th,td{border:1px solid #bbb;padding:3px 8px;text-align:right}"
       "th{background:#eee}td:first-child,th:first-child{text-align:left}"
       ".note{background:#fff4d6;padding:.5em 1em;border-left:4px solid #e0a800}"
       "pre{background:#f6f6f6;padding:1em}\n"
    << "</style>\n</head>\n<body>\n<h1>" << html_escape(o.title) << "</h1>\n<p>" << records.size()
    << " configurations; plotted metric: " << html_escape(name) << ".</p>\n";
  // Plots first: people look before they read.
  h << "<h2>" << html_escape(name) << " against NFE</h2>\n";
  std::string error;
  const std::string line_script = nfe_plot_script(records, o.metric);
  const std::string svg1 = line_script.empty() ? "" : run_gnuplot(program, line_script, error);
  if (!error.empty()) {
    h << "<p class=\"note\">Plots omitted: " << html_escape(error)
      << ". Install gnuplot (Debian: gnuplot-nox) and rerun <code>sit-eval report --format "
         "html</code>; the tables below are complete.</p>\n";
  } else if (svg1.empty()) {
    h << "<p class=\"note\">No finished configuration has " << html_escape(name) << ".</p>\n";
  } else {
    h << "<figure>" << svg1 << "</figure>\n";
    const int64_t nfe = o.bar_nfe > 0 ? o.bar_nfe : default_bar_nfe(records);
    const std::string bar_script = bar_plot_script(records, o.metric, nfe);
    if (!bar_script.empty()) {
      const std::string svg2 = run_gnuplot(program, bar_script, error);
      h << "<h2>" << html_escape(name) << " per configuration at " << nfe << " NFE</h2>\n";
      if (!svg2.empty()) h << "<figure>" << svg2 << "</figure>\n";
    } else {
      h << "<p class=\"note\">No bar chart: no finished configuration has " << html_escape(name)
        << " at " << nfe << " NFE.</p>\n";
    }
  }
  h << "<h2>Pivot: interpolant / prediction against sampler</h2>\n"
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
