#pragma once
/// A single self-contained HTML report (no network needed to view it): the tables, and
/// plots rendered by gnuplot to inline SVG — the metric against NFE per configuration
/// group (log NFE axis, the paper's ODE-vs-SDE figure) and a bar chart of the
/// configurations at one NFE. Without gnuplot the page says so and keeps the tables.

#include <string>
#include <vector>

#include "reports/results.h"

namespace sit::reports {

struct HtmlOptions {
  std::string title = "sit-eval report";
  std::string metric = "fid";  ///< plotted and pivoted metric
  int digits = kSignificant4;
  /// gnuplot program; empty: $SIT_EVAL_GNUPLOT, else "gnuplot" on PATH.
  std::string gnuplot;
  /// Planned NFE of the bar chart; -1: the largest NFE shared by the most configurations.
  int64_t bar_nfe = -1;
  std::string summary;  ///< e.g. the reproduction summary, shown under the tables
};

std::string html_report(const std::vector<Record>& records, const HtmlOptions& options);

}  // namespace sit::reports
