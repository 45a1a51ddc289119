#pragma once
/// ODE integrators with torchdiffeq semantics (the SiT reference's ODE sampler).

#include <ATen/core/Tensor.h>

#include <functional>
#include <string>
#include <vector>

namespace sit::samplers {

enum class OdeMethod { kEuler, kMidpoint, kHeun2, kRk4, kDopri5 };
const char* to_string(OdeMethod m);
/// "euler", "midpoint", "heun2" (alias "heun", the paper's name), "rk4" (torchdiffeq's 3/8
/// rule), "dopri5".
OdeMethod parse_ode_method(const std::string& name);

struct OdeOptions {
  OdeMethod method = OdeMethod::kDopri5;
  double atol = 1e-6, rtol = 1e-3;  ///< dopri5
};

/// Drift (velocity) at (x, t).
using DriftFn = std::function<at::Tensor(const at::Tensor& x, double t)>;

struct OdeStats {
  int64_t evaluations = 0;             ///< drift evaluations
  int64_t accepted = 0, rejected = 0;  ///< dopri5 steps
};

/// The reference's time grid: torch.linspace(t0, t1, n) in float32 (so grids are
/// bit-identical to the reference's), returned as doubles.
std::vector<double> linspace_grid(double t0, double t1, int64_t n);

/// Integrates dx/dt = f(x, t) from grid.front() to grid.back(). Fixed-step methods step
/// on the grid (grid.size() - 1 steps); dopri5 chooses its own steps (the grid only sets
/// the end points) with the error ratio an RMS over the whole tensor.
at::Tensor integrate_ode(const DriftFn& f, const at::Tensor& x0, const std::vector<double>& grid,
                         const OdeOptions& o, OdeStats* stats);

/// Evaluations of a fixed-step method on a grid of n points (dopri5: not known upfront).
int64_t fixed_step_evaluations(OdeMethod m, int64_t n);

}  // namespace sit::samplers
