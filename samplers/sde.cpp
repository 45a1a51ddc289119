#include "samplers/sde.h"

#include <ATen/ATen.h>

#include <cmath>

#include "common/error.h"
#include "samplers/names.h"

namespace sit::samplers {
namespace {

const NameTable<SdeMethod>& method_names() {
  static const NameTable<SdeMethod> t = {{"Euler", SdeMethod::kEulerMaruyama},
                                         {"Heun", SdeMethod::kHeun},
                                         {"euler-maruyama", SdeMethod::kEulerMaruyama}};
  return t;
}

}  // namespace

const char* to_string(SdeMethod m) {
  return name_of(method_names(), m);
}
SdeMethod parse_sde_method(const std::string& name) {
  return parse_name(method_names(), name, "SDE sampling method");
}

int64_t sde_evaluations(const SdeOptions& o, int64_t n) {
  const int64_t steps = n - 1;
  const int64_t last = o.last_step == LastStep::kNone ? 0 : 1;
  return (o.method == SdeMethod::kHeun ? 2 : 1) * steps + last;
}

at::Tensor integrate_sde(Field& field, const at::Tensor& x0, const at::Tensor& y,
                         const std::vector<double>& grid, const SdeOptions& o,
                         const NoiseFn& noise) {
  if (grid.size() < 2) fail("integrate_sde: the time grid needs at least 2 points");
  const Interpolant& path = field.path();
  const double dt = grid[1] - grid[0];
  const double sqrt_dt = std::sqrt(dt);
  auto drift = [&](const at::Tensor& x, double t) {
    auto [v, s] = field.velocity_and_score(x, t, y);
    return v + diffusion_coefficient(o.diffusion, path, t) * s;
  };
  at::Tensor x = x0;
  for (size_t i = 0; i + 1 < grid.size(); ++i) {
    const double t = grid[i];
    const at::Tensor w = noise(static_cast<int64_t>(i));  // drawn before the drift
    const double g = std::sqrt(2.0 * diffusion_coefficient(o.diffusion, path, t)) * sqrt_dt;
    if (o.method == SdeMethod::kEulerMaruyama) {
      x = x + drift(x, t) * dt + g * w;
    } else {
      const at::Tensor xh = x + g * w;
      const at::Tensor k1 = drift(xh, t);
      const at::Tensor xp = xh + dt * k1;
      const at::Tensor k2 = drift(xp, t + dt);
      x = xh + (0.5 * dt) * (k1 + k2);
    }
  }
  const double t1 = grid.back();
  const double h = o.last_step_size;
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
  return x;
}

}  // namespace sit::samplers
