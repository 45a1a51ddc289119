#pragma once
/// A single self-contained HTML report (no network needed to view it) that answers
/// "which sampler is best at which budget":
///  - the best configuration per NFE budget (the Pareto front of the metric against the
///    measured NFE), drawn over every finished configuration and tabled;
///  - small multiples of the metric against NFE: one panel per interpolant / prediction
///    (per run; DiT's DDPM/DDIM in their own), shared axes, one line per sampler with the
///    same colour in every panel, at most kMaxLegendEntries legend entries per panel (a
///    larger group is split by family); log y when every value is positive, and a robust
///    range: values beyond it (a diverging cell) are drawn as triangles on the edge and
///    listed under the panels;
///  - a bar chart of the configurations at one NFE, on the same axis rules;
///  - the pivot and long tables, and the reproduction summary.
/// Metric names come from the metric table and the features (FD for data-space or latent
/// features, FID for Inception: metric_name). Plots are rendered by gnuplot to inline SVG;
/// without gnuplot the page says so and keeps the tables.

#include <cstdint>
#include <string>
#include <vector>

#include "reports/results.h"

namespace sit::reports {

inline constexpr int kMaxLegendEntries = 10;

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

/// The page. Errors: none (a missing gnuplot or a metric no record has gives a note on the
/// page); the caller checks that bar_nfe names a planned NFE (bar_chart_nfe_exists).
std::string html_report(const std::vector<Record>& records, const HtmlOptions& options);

/// Whether some finished configuration with `metric` has planned NFE `nfe`.
bool has_configuration_at_nfe(const std::vector<Record>& records, const std::string& metric,
                              int64_t nfe);

/// The Pareto front of `metric` against the measured NFE ("nfe") over the finished
/// configurations: in order of NFE, each configuration better than every one with fewer
/// (or equal) NFE — the best configuration at each budget. Direction from the metric table.
std::vector<const Record*> pareto_front(const std::vector<Record>& records,
                                        const std::string& metric);

}  // namespace sit::reports
