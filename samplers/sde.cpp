#include "samplers/sde.h"

#include <ATen/ATen.h>

#include <cmath>

#include "common/error.h"
#include "samplers/names.h"

namespace sit::samplers {
namespace {

at::Tensor euler_maruyama_step(const SdeDriftFn& drift, const at::Tensor& x,
                               const at::Tensor& w, double t, double dt, double g) {
  return x + drift(x, t) * dt + g * w;
}

/// The reference's Heun: noise first, then the explicit trapezoid on the drift.
at::Tensor heun_step(const SdeDriftFn& drift, const at::Tensor& x, const at::Tensor& w, double t,
                     double dt, double g) {
  const at::Tensor xh = x + g * w;
  const at::Tensor k1 = drift(xh, t);
  const at::Tensor xp = xh + dt * k1;
  const at::Tensor k2 = drift(xp, t + dt);
  return xh + (0.5 * dt) * (k1 + k2);
}

const NameTable<SdeMethod>& method_names() {
  static const NameTable<SdeMethod> t = stepper_name_table(sde_steppers());
  return t;
}

}  // namespace

const std::vector<SdeStepper>& sde_steppers() {
  constexpr SamplerFamily sde = SamplerFamily::kSde;
  // {name (the reference's), aliases, family, weak order, drift evaluations per step,
  // adaptive, evaluates t_{i+1}}, method, step function
  static const std::vector<SdeStepper> rows = {
      {{"Euler", {"euler-maruyama"}, sde, 1, 1, false, false}, SdeMethod::kEulerMaruyama,
       euler_maruyama_step},
      {{"Heun", {}, sde, 1, 2, false, true}, SdeMethod::kHeun, heun_step},
  };
  return rows;
}

const SdeStepper& sde_stepper(SdeMethod m) {
  for (const auto& s : sde_steppers())
    if (s.method == m) return s;
  unreachable("SdeMethod ", static_cast<int>(m), " has no descriptor row");
}

const char* to_string(SdeMethod m) {
  return name_of(method_names(), m);
}
SdeMethod parse_sde_method(const std::string& name) {
  return parse_name(method_names(), name, "SDE sampling method");
}

int64_t sde_evaluations(const SdeOptions& o, int64_t n) {
  const int64_t steps = n - 1;
  const int64_t last = o.last_step == LastStep::kNone ? 0 : 1;
  return sde_stepper(o.method).evaluations_per_step * steps + last;
}

at::Tensor integrate_sde(Field& field, const at::Tensor& x0, const at::Tensor& y,
                         const std::vector<double>& grid, const SdeOptions& o, const NoiseFn& noise,
                         const StepHook& on_step) {
  if (grid.size() < 2) fail("integrate_sde: the time grid needs at least 2 points");
  const Interpolant& path = field.path();
  const double dt = grid[1] - grid[0];
  const double sqrt_dt = std::sqrt(dt);
  const SdeStepper& stepper = sde_stepper(o.method);
  const SdeDriftFn drift = [&](const at::Tensor& x, double t) {
    auto [v, s] = field.velocity_and_score(x, t, y);
    return v + diffusion_coefficient(o.diffusion, path, t) * s;
  };
  at::Tensor x = x0;
  for (size_t i = 0; i + 1 < grid.size(); ++i) {
    const double t = grid[i];
    if (on_step) on_step(static_cast<int64_t>(i), t);
    const at::Tensor w = noise(static_cast<int64_t>(i));  // drawn before the drift
    const double g = std::sqrt(2.0 * diffusion_coefficient(o.diffusion, path, t)) * sqrt_dt;
    x = stepper.step(drift, x, w, t, dt, g);
  }
  const double t1 = grid.back();
  const double h = o.last_step_size;
  if (on_step && o.last_step != LastStep::kNone) on_step(static_cast<int64_t>(grid.size()) - 1, t1);
  switch (o.last_step) {
    case LastStep::kNone:
      return x;
    case LastStep::kMean:
      return x + drift(x, t1) * h;
    case LastStep::kTweedie: {
      const Coefficients c = path.at(t1);
      return data_from_score(c, field.score(x, t1, y), x);
    }
    case LastStep::kEuler:
      return x + field.velocity(x, t1, y) * h;
  }
  unreachable("LastStep ", static_cast<int>(o.last_step));
}

}  // namespace sit::samplers
