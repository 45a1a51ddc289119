#pragma once
/// LaTeX tables in the layouts of the SiT paper, with the best value of each column in
/// bold, metric direction arrows, and the sample counts and NFE of the cells shown in the
/// caption ("FD" for metrics not on Inception features, metric_name):
///  - "diffusion": rows interpolant x prediction, columns w(t) — SDE configurations
///    (the paper's Table 6);
///  - "ode-sde": one row per run and model, ODE and SDE metrics side by side, each the
///    configuration of its family with the most NFE, named in the caption (Table 8);
///  - "system": one row per configuration with FID, sFID, IS, precision, recall (Table 7);
///  - "nfe": model + sampler without its step count against NFE (DiT's DDPM/DDIM beside
///    SiT's ODE/SDE, as the paper's DiT-to-SiT comparison), the best per NFE bold; samplers
///    run down the page when they outnumber the budgets.
/// Rendered by render_latex (fitted to the page, longtable); needs kLatexPackages.

#include <string>
#include <vector>

#include "reports/results.h"

namespace sit::reports {

/// layout: "diffusion", "ode-sde", "system" or "nfe"; metric: the cell metric of
/// "diffusion" and "nfe".
std::string paper_table(const std::vector<Record>& records, const std::string& layout,
                        const std::string& metric = "fid", int digits = kSignificant4);

}  // namespace sit::reports
