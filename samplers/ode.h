#pragma once
/// ODE integrators with torchdiffeq semantics (the SiT reference's ODE sampler).

#include <ATen/core/Tensor.h>

#include <functional>
#include <string>
#include <vector>

#include "samplers/stepper.h"

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
at::Tensor integrate_ode(const DriftFn& f, const at::Tensor& x0, const std::vector<double>& grid,
                         const OdeOptions& o, OdeStats* stats);

/// Evaluations of a fixed-step method on a grid of n points, from its descriptor row
/// (adaptive methods: -1, not known upfront).
int64_t fixed_step_evaluations(OdeMethod m, int64_t n);

}  // namespace sit::samplers
