#pragma once
/// SDE integrators of the SiT reference, code time:
///   dx = [v + D s] dt + sqrt(2 D) dW, D = w / 2 (see diffusion.h).

#include <ATen/core/Tensor.h>

#include <functional>
#include <string>
#include <vector>

#include "samplers/diffusion.h"
#include "samplers/field.h"
#include "samplers/interval.h"
#include "samplers/stepper.h"

namespace sit::samplers {

enum class SdeMethod { kEulerMaruyama, kHeun };
const char* to_string(SdeMethod m);
/// "Euler" (the reference's name for Euler-Maruyama), "euler-maruyama", "Heun", "heun".
SdeMethod parse_sde_method(const std::string& name);

struct SdeOptions {
  SdeMethod method = SdeMethod::kEulerMaruyama;
  DiffusionOptions diffusion;
  LastStep last_step = LastStep::kMean;
  double last_step_size = 0.04;
};

/// Drift of the SDE (v + D s) at (x, t).
using SdeDriftFn = std::function<at::Tensor(const at::Tensor& x, double t)>;
/// One stochastic step from t to t + dt with standard normal noise w and noise scale
/// g = sqrt(2 D(t) dt), as the reference's samplers.
using SdeStepFn = at::Tensor (*)(const SdeDriftFn& drift, const at::Tensor& x,
                                 const at::Tensor& w, double t, double dt, double g);

/// An SDE stepper: its descriptor and step function.
struct SdeStepper : StepperInfo {
  SdeMethod method = SdeMethod::kEulerMaruyama;
  SdeStepFn step = nullptr;
};
/// Every SDE stepper, one row each (sde.cpp), in enum order.
const std::vector<SdeStepper>& sde_steppers();
const SdeStepper& sde_stepper(SdeMethod m);

/// Standard normal noise with the state's shape for stochastic step k (0-based).
using NoiseFn = std::function<at::Tensor(int64_t step)>;

/// Runs grid.size() - 1 stochastic steps (dt = grid[1] - grid[0], as the reference) and
/// the last step at grid.back(). y: labels passed to the model. `on_step` (when set) is
/// called before each step, the last step being step grid.size() - 1.
at::Tensor integrate_sde(Field& field, const at::Tensor& x0, const at::Tensor& y,
                         const std::vector<double>& grid, const SdeOptions& o, const NoiseFn& noise,
                         const StepHook& on_step = {});

/// Drift evaluations of an SDE run on a grid of n points.
int64_t sde_evaluations(const SdeOptions& o, int64_t n);

}  // namespace sit::samplers
