#pragma once
/// ODE integrators with torchdiffeq semantics (the SiT reference's ODE sampler).

#include <ATen/core/Tensor.h>

#include <functional>
#include <string>
#include <vector>

#include "samplers/path.h"
#include "samplers/stepper.h"

namespace sit::samplers {

enum class OdeMethod {
  kEuler, kMidpoint, kHeun2, kRk4, kDopri5, kAb2, kAb4, kDpmSolver2M, kHeunLastEuler
};
const char* to_string(OdeMethod m);
/// "euler", "midpoint", "heun2" (alias "heun", the paper's name), "rk4" (torchdiffeq's 3/8
/// rule), "dopri5", "ab2" / "ab4" (Adams-Bashforth with NeuralSolver's start-up; aliases
/// "adam2", "adam4"), "dpm++2m" (DPM-Solver++(2M) in data prediction; alias "dpmpp2m"),
/// "heun-last-euler" (Heun steps and a plain Euler last step: EDM's and REPA's Heun, NFE
/// 2 (points - 1) - 1; aliases "edm-heun", "repa-heun").
OdeMethod parse_ode_method(const std::string& name);

struct OdeOptions {
  OdeMethod method = OdeMethod::kDopri5;
  double atol = 1e-6, rtol = 1e-3;  ///< dopri5
};

/// Drift (velocity) at (x, t).
using DriftFn = std::function<at::Tensor(const at::Tensor& x, double t)>;

/// One fixed step of dx/dt = f(x, t) from t0 to t1 (f counts its own evaluations).
using OdeStepFn = at::Tensor (*)(const DriftFn& f, const at::Tensor& x, double t0, double t1);

/// An ODE stepper: its descriptor and step function (nullptr for the adaptive dopri5,
/// which integrate_ode runs with torchdiffeq's step-size control).
struct OdeStepper : StepperInfo {
  OdeMethod method = OdeMethod::kEuler;
  OdeStepFn step = nullptr;
};
/// Every ODE stepper, one row each (ode.cpp), in enum order.
const std::vector<OdeStepper>& ode_steppers();
const OdeStepper& ode_stepper(OdeMethod m);

struct OdeStats {
  int64_t evaluations = 0;             ///< drift evaluations
  int64_t accepted = 0, rejected = 0;  ///< dopri5 steps
};

/// The reference's time grid: torch.linspace(t0, t1, n) in float32 (so grids are
/// bit-identical to the reference's), returned as doubles.
std::vector<double> linspace_grid(double t0, double t1, int64_t n);

/// A time-shifted grid (LightningDiT's timestep_shift, the SD3/FLUX shift): each point
/// t' = s t / (1 + (s - 1) t), computed per element in float32 as the reference does with
/// torch tensors (s = 1 leaves the grid unchanged; s < 1 puts the points near the noise
/// end t = 0). Throws sit::Error unless s > 0.
/// as LightningDiT transport/transport.py: Sampler.sample_ode (timestep_shift)
std::vector<double> time_shifted_grid(const std::vector<double>& grid, double s);

/// Integrates dx/dt = f(x, t) from grid.front() to grid.back(). Fixed-step methods step
/// on the grid (grid.size() - 1 steps); dopri5 chooses its own steps (the grid only sets
/// the end points) with the error ratio an RMS over the whole tensor.
///
/// Multistep methods evaluate f once per step, at its start (never at grid.back()):
/// - ab2 / ab4, as NeuralSolver adam_sampling.py: AdamLMSampler: step i forms
///   v_hat = sum_j c_ij f_j with the constant-step Adams-Bashforth weights (step 0 Euler,
///   step 1 AB2, then AB2; ab4: AB3 at step 2 and AB4 from step 3) and moves
///   x += (t_{i+1} - t_i) v_hat. The weights are the constant-step ones on any grid (as the
///   reference's fixed tables). Global order 2 for both (the Euler start-up dominates ab4).
/// - dpm++2m: DPM-Solver++(2M) for x_t = alpha_t x1 + sigma_t x0 (protocols.md §7, written
///   for any VP-form path): D = x1 estimate from the velocity, lambda = ln(alpha / sigma),
///   x_u = (sigma_u / sigma_s) x_s + (alpha_u - alpha_s sigma_u / sigma_s) D_hat, with the
///   second-order D_hat = (1 + 1/(2r)) D_{i-1} - D_{i-2}/(2r), r = h_{i-1}/h_i, wherever
///   both lambda steps are finite (first order at t = 0 and into t = 1). Needs `path`.
/// `on_step` (when set) is called before every fixed or multistep step. Throws sit::Error
/// for dpm++2m without a path.
at::Tensor integrate_ode(const DriftFn& f, const at::Tensor& x0, const std::vector<double>& grid,
                         const OdeOptions& o, OdeStats* stats, const Interpolant* path = nullptr,
                         const StepHook& on_step = {});

/// Evaluations of a fixed-step method on a grid of n points, from its descriptor row
/// (adaptive methods: -1, not known upfront).
int64_t fixed_step_evaluations(OdeMethod m, int64_t n);

}  // namespace sit::samplers
