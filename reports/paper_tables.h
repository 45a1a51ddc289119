#pragma once
/// LaTeX (booktabs) tables in the layouts of the SiT paper, with the best value of each
/// column in bold, metric direction arrows, and the sample count and NFE in the caption:
///  - "diffusion": rows interpolant x prediction, columns w(t) — SDE configurations
///    (the paper's Table 6);
///  - "ode-sde": one row per run and model, ODE and SDE metrics side by side, each the
///    configuration of its family with the most NFE (Table 8);
///  - "system": one row per configuration with FID, sFID, IS, precision, recall (Table 7);
///  - "nfe": rows NFE, columns model + sampler without its step count (DiT's DDPM/DDIM
///    beside SiT's ODE/SDE, as the paper's DiT-to-SiT comparison), the best per row bold.
/// Compiles with plain pdflatex and \usepackage{booktabs}.

#include <string>
#include <vector>

#include "reports/results.h"

namespace sit::reports {

/// layout: "diffusion", "ode-sde", "system" or "nfe"; metric: the cell metric of
/// "diffusion" and "nfe".
std::string paper_table(const std::vector<Record>& records, const std::string& layout,
                        const std::string& metric = "fid", int digits = kPaper);

}  // namespace sit::reports
