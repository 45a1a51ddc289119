#include "samplers/ode.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>

#include "common/error.h"
#include "samplers/names.h"

namespace sit::samplers {
namespace {

at::Tensor euler_step(const DriftFn& f, const at::Tensor& x, double t0, double t1) {
  return x + (t1 - t0) * f(x, t0);
}

at::Tensor midpoint_step(const DriftFn& f, const at::Tensor& x, double t0, double t1) {
  const double dt = t1 - t0;
  const at::Tensor k1 = f(x, t0);
  return x + dt * f(x + (0.5 * dt) * k1, t0 + 0.5 * dt);
}

/// The explicit trapezoid (the paper's Heun): k2 at t_{i+1}.
at::Tensor heun2_step(const DriftFn& f, const at::Tensor& x, double t0, double t1) {
  const double dt = t1 - t0;
  const at::Tensor k1 = f(x, t0);
  const at::Tensor k2 = f(x + dt * k1, t1);
  return x + (0.5 * dt) * (k1 + k2);
}

/// torchdiffeq's rk4 (rk4_alt_step_func: the 3/8 rule).
at::Tensor rk4_step(const DriftFn& f, const at::Tensor& x, double t0, double t1) {
  const double dt = t1 - t0;
  const at::Tensor k1 = f(x, t0);
  const at::Tensor k2 = f(x + (dt / 3) * k1, t0 + dt / 3);
  const at::Tensor k3 = f(x + dt * (k2 - k1 / 3), t0 + dt * 2 / 3);
  const at::Tensor k4 = f(x + dt * (k1 - k2 + k3), t1);
  return x + (dt * 0.125) * (k1 + 3 * (k2 + k3) + k4);
}

const NameTable<OdeMethod>& method_names() {
  static const NameTable<OdeMethod> t = stepper_name_table(ode_steppers());
  return t;
}

double rms(const at::Tensor& t) {
  return t.pow(2).mean().sqrt().item<double>();
}

// Dormand-Prince 5(4) tableau as in torchdiffeq (dopri5.py).
constexpr double kAlpha[6] = {1.0 / 5, 3.0 / 10, 4.0 / 5, 8.0 / 9, 1.0, 1.0};
constexpr double kBeta[6][6] = {
    {1.0 / 5},
    {3.0 / 40, 9.0 / 40},
    {44.0 / 45, -56.0 / 15, 32.0 / 9},
    {19372.0 / 6561, -25360.0 / 2187, 64448.0 / 6561, -212.0 / 729},
    {9017.0 / 3168, -355.0 / 33, 46732.0 / 5247, 49.0 / 176, -5103.0 / 18656},
    {35.0 / 384, 0, 500.0 / 1113, 125.0 / 192, -2187.0 / 6784, 11.0 / 84},
};
constexpr double kCError[7] = {35.0 / 384 - 1951.0 / 21600,
                               0,
                               500.0 / 1113 - 22642.0 / 50085,
                               125.0 / 192 - 451.0 / 720,
                               -2187.0 / 6784 + 12231.0 / 42400,
                               11.0 / 84 - 649.0 / 6300,
                               -1.0 / 60};
constexpr double kCMid[7] = {6025192743.0 / 30085553152 / 2,     0,
                             51252292925.0 / 65400821598 / 2,    -2691868925.0 / 45128329728 / 2,
                             187940372067.0 / 1594534317056 / 2, -1776094331.0 / 19743644256 / 2,
                             11237099.0 / 235043384 / 2};

struct Dopri5 {
  const DriftFn& f;
  double atol, rtol;
  OdeStats* stats;

  at::Tensor eval(const at::Tensor& x, double t) {
    ++stats->evaluations;
    return f(x, t);
  }

  // torchdiffeq's _select_initial_step with order 4 (dopri5's order - 1).
  double initial_step(const at::Tensor& y0, const at::Tensor& f0, double t0) {
    const at::Tensor scale = atol + y0.abs() * rtol;
    const double d0 = rms(y0 / scale), d1 = rms(f0 / scale);
    const double h0 = (d0 < 1e-5 || d1 < 1e-5) ? 1e-6 : 0.01 * d0 / d1;
    const at::Tensor f1 = eval(y0 + h0 * f0, t0 + h0);
    const double d2 = rms((f1 - f0) / scale) / h0;
    const double h1 = (d1 <= 1e-15 && d2 <= 1e-15) ? std::max(1e-6, h0 * 1e-3)
                                                   : std::pow(0.01 / std::max(d1, d2), 1.0 / 5);
    return std::min(100 * h0, h1);
  }

  at::Tensor integrate(const at::Tensor& x0, double t_start, double t_end) {
    at::Tensor y0 = x0;
    at::Tensor f0 = eval(y0, t_start);
    double t0 = t_start;
    double dt = initial_step(y0, f0, t0);
    for (;;) {
      if (!(t0 + dt > t0)) fail("dopri5: step size underflow at t = ", t0, " (dt = ", dt, ")");
      // One Runge-Kutta step (6 evaluations; f1 is the last stage, FSAL).
      at::Tensor k[7];
      k[0] = f0;
      at::Tensor yi;
      for (int i = 0; i < 6; ++i) {
        yi = y0;
        for (int j = 0; j <= i; ++j)
          if (kBeta[i][j] != 0) yi = yi + (kBeta[i][j] * dt) * k[j];
        const double ti = kAlpha[i] == 1.0 ? t0 + dt : t0 + kAlpha[i] * dt;
        k[i + 1] = eval(yi, ti);
      }
      const at::Tensor y1 = yi;  // c_sol equals the last beta row (Dormand-Prince)
      at::Tensor err = at::zeros_like(y0);
      for (int j = 0; j < 7; ++j)
        if (kCError[j] != 0) err = err + (kCError[j] * dt) * k[j];
      const at::Tensor tol = atol + rtol * at::max(y0.abs(), y1.abs());
      const double ratio = rms(err / tol);
      if (!std::isfinite(ratio))
        fail("dopri5: the error estimate is not finite at t = ", t0, " (step to ", t0 + dt,
             "): the drift returned NaN or Inf. As in torchdiffeq, a last step may overshoot t1;",
             " past t = 1 the VP path has no real sigma. Lower t1 (--t1) or use a fixed-step method");
      const bool accept = ratio <= 1;
      const double t1 = t0 + dt;
      if (accept) {
        ++stats->accepted;
        if (t1 >= t_end) {
          // 4th-order interpolation back to t_end (torchdiffeq's _interp_fit/_evaluate).
          at::Tensor y_mid = y0;
          for (int j = 0; j < 7; ++j)
            if (kCMid[j] != 0) y_mid = y_mid + (kCMid[j] * dt) * k[j];
          const at::Tensor& fa = k[0];
          const at::Tensor& fb = k[6];
          const at::Tensor a = 2 * dt * (fb - fa) - 8 * (y1 + y0) + 16 * y_mid;
          const at::Tensor b = dt * (5 * fa - 3 * fb) + 18 * y0 + 14 * y1 - 32 * y_mid;
          const at::Tensor c = dt * (fb - 4 * fa) - 11 * y0 - 5 * y1 + 16 * y_mid;
          const at::Tensor d = dt * fa;
          const double s = (t_end - t0) / (t1 - t0);
          return y0 + s * d + (s * s) * c + (s * s * s) * b + (s * s * s * s) * a;
        }
        y0 = y1;
        f0 = k[6];
        t0 = t1;
      } else {
        ++stats->rejected;
      }
      // torchdiffeq's _optimal_step_size: safety 0.9, factors in [0.2, 10], no shrink
      // after an accepted step.
      double factor;
      if (ratio == 0) {
        factor = 10.0;
      } else {
        const double dfactor = ratio < 1 ? 1.0 : 0.2;
        factor = std::min(10.0, std::max(0.9 / std::pow(ratio, 1.0 / 5), dfactor));
      }
      dt *= factor;
    }
  }
};

/// Constant-step Adams-Bashforth weights on (f_i, f_{i-1}, ...) for step i, with
/// NeuralSolver's start-up (AdamLMSampler): Euler, AB2, then AB2 (order 2) or AB3, AB4.
std::vector<double> adams_weights(int max_order, size_t i) {
  const size_t k = std::min<size_t>(i + 1, static_cast<size_t>(max_order == 2 ? 2 : 4));
  switch (k) {
    case 1:
      return {1.0};
    case 2:
      return {3.0 / 2, -1.0 / 2};
    case 3:
      return {23.0 / 12, -16.0 / 12, 5.0 / 12};
    default:
      return {55.0 / 24, -59.0 / 24, 37.0 / 24, -9.0 / 24};
  }
}

at::Tensor integrate_adams(const DriftFn& f, const at::Tensor& x0, const std::vector<double>& grid,
                           int max_order, const StepHook& on_step) {
  at::Tensor x = x0;
  std::vector<at::Tensor> history;  // f_i, f_{i-1}, ... (as many as the next step needs)
  for (size_t i = 0; i + 1 < grid.size(); ++i) {
    if (on_step) on_step(static_cast<int64_t>(i), grid[i]);
    history.insert(history.begin(), f(x, grid[i]));
    const std::vector<double> w = adams_weights(max_order, i);
    history.resize(std::min(history.size(), w.size()));
    at::Tensor v_hat = w[0] * history[0];
    for (size_t j = 1; j < w.size(); ++j)
      v_hat = v_hat + w[j] * history[j];
    x = x + (grid[i + 1] - grid[i]) * v_hat;
  }
  return x;
}

/// lambda = ln(alpha / sigma); -inf at alpha = 0, +inf at sigma = 0.
double log_snr_half(const Coefficients& c) {
  return std::log(c.alpha) - std::log(c.sigma);
}

at::Tensor integrate_dpm_solver(const DriftFn& f, const at::Tensor& x0,
                                const std::vector<double>& grid, const Interpolant& path,
                                const StepHook& on_step) {
  at::Tensor x = x0;
  // the path's end points exactly: alpha(0) = 0, sigma(1) = 0 (GVP's cos(pi/2) rounds to
  // 6e-17, which would make the last lambda step finite and the second-order weights huge)
  const auto exact_ends = [&](double t) {
    Coefficients c = path.at(t);
    if (t == 0.0) c.alpha = 0.0;
    if (t == 1.0) c.sigma = 0.0;
    return c;
  };
  at::Tensor d_prev;  // D_{i-2}
  double h_prev = 0;  // h_{i-1}
  for (size_t i = 0; i + 1 < grid.size(); ++i) {
    if (on_step) on_step(static_cast<int64_t>(i), grid[i]);
    const Coefficients s = exact_ends(grid[i]), u = exact_ends(grid[i + 1]);
    // the x1 (data) estimate from the velocity: solve x = alpha x1 + sigma x0 and
    // v = d_alpha x1 + d_sigma x0 for x1 (Linear: D = x + (1 - t) v)
    const at::Tensor v = f(x, grid[i]);
    const at::Tensor d =
        (s.d_sigma * x - s.sigma * v) / (s.d_sigma * s.alpha - s.sigma * s.d_alpha);
    const double h = log_snr_half(u) - log_snr_half(s);
    at::Tensor d_hat = d;
    if (i > 0 && std::isfinite(h) && std::isfinite(h_prev)) {
      const double r = h_prev / h;
      d_hat = (1 + 1 / (2 * r)) * d - (1 / (2 * r)) * d_prev;
    }
    // (sigma_u / sigma_s) x + alpha_u (1 - e^{-h}) D_hat, e^{-h} = alpha_s sigma_u /
    // (sigma_s alpha_u) written without the infinities of lambda at the ends
    x = (u.sigma / s.sigma) * x + (u.alpha - s.alpha * u.sigma / s.sigma) * d_hat;
    d_prev = d;
    h_prev = h;
  }
  return x;
}

}  // namespace

const std::vector<OdeStepper>& ode_steppers() {
  constexpr SamplerFamily ode = SamplerFamily::kOde;
  // {name, aliases, family, order, evaluations per step, adaptive, evaluates t_{i+1}},
  // method, step function
  static const std::vector<OdeStepper> rows = {
      {{"euler", {}, ode, 1, 1, false, false}, OdeMethod::kEuler, euler_step},
      {{"midpoint", {}, ode, 2, 2, false, false}, OdeMethod::kMidpoint, midpoint_step},
      {{"heun2", {"heun"}, ode, 2, 2, false, true}, OdeMethod::kHeun2, heun2_step},
      {{"rk4", {}, ode, 4, 4, false, true}, OdeMethod::kRk4, rk4_step},
      // adaptive: integrate_ode runs torchdiffeq's step-size control (6 evaluations a trial)
      {{"dopri5", {}, ode, 5, 6, true, true}, OdeMethod::kDopri5, nullptr},
      // multistep: integrate_ode runs their loops (one evaluation per step, at its start);
      // ab4's Euler and AB2 start-up steps limit it to global order 2 (protocols.md §6.1)
      {{"ab2", {"adam2"}, ode, 2, 1, false, false, true}, OdeMethod::kAb2, nullptr},
      {{"ab4", {"adam4"}, ode, 2, 1, false, false, true}, OdeMethod::kAb4, nullptr},
      {{"dpm++2m", {"dpmpp2m", "dpm-solver++2m"}, ode, 2, 1, false, false, true},
       OdeMethod::kDpmSolver2M, nullptr},
      // as REPA samplers.py: euler_sampler(heun=True) / EDM edm_sampler: Heun, last step Euler
      {{"heun-last-euler", {"edm-heun", "repa-heun"}, ode, 2, 2, false, false, false, true},
       OdeMethod::kHeunLastEuler, heun2_step},
  };
  return rows;
}

const OdeStepper& ode_stepper(OdeMethod m) {
  for (const auto& s : ode_steppers())
    if (s.method == m) return s;
  unreachable("OdeMethod ", static_cast<int>(m), " has no descriptor row");
}

const char* to_string(OdeMethod m) {
  return name_of(method_names(), m);
}
OdeMethod parse_ode_method(const std::string& name) {
  return parse_name(method_names(), name, "ODE sampling method");
}

std::vector<double> time_shifted_grid(const std::vector<double>& grid, double s) {
  if (!(s > 0)) fail("time shift must be > 0, got ", s);
  const float shift = static_cast<float>(s), shift_minus_1 = static_cast<float>(s - 1.0);
  std::vector<double> out(grid.size());
  for (size_t i = 0; i < grid.size(); ++i) {
    const float t = static_cast<float>(grid[i]);
    // float32 throughout, in the reference's order: (s * t) / (1 + (s - 1) * t)
    const float num = shift * t, den = 1.0f + shift_minus_1 * t;
    out[i] = static_cast<double>(num / den);
  }
  return out;
}

std::vector<double> linspace_grid(double t0, double t1, int64_t n) {
  if (n < 2) fail("number of sampling steps must be >= 2 (grid points), got ", n);
  const at::Tensor g = at::linspace(t0, t1, n, at::TensorOptions().dtype(at::kFloat));
  std::vector<double> out(static_cast<size_t>(n));
  const float* p = g.data_ptr<float>();
  for (int64_t i = 0; i < n; ++i)
    out[i] = static_cast<double>(p[i]);
  return out;
}

int64_t fixed_step_evaluations(OdeMethod m, int64_t n) {
  const OdeStepper& s = ode_stepper(m);
  if (s.adaptive) return -1;
  return s.evaluations_per_step * (n - 1) - (s.last_step_euler && n > 1 ? 1 : 0);
}

at::Tensor integrate_ode(const DriftFn& f, const at::Tensor& x0, const std::vector<double>& grid,
                         const OdeOptions& o, OdeStats* stats, const Interpolant* path,
                         const StepHook& on_step) {
  OdeStats local;
  if (!stats) stats = &local;
  if (grid.size() < 2) fail("integrate_ode: the time grid needs at least 2 points");
  if (ode_stepper(o.method).adaptive) {  // dopri5, the one adaptive method
    Dopri5 solver{f, o.atol, o.rtol, stats};
    return solver.integrate(x0, grid.front(), grid.back());
  }
  const OdeStepper& stepper = ode_stepper(o.method);
  const DriftFn counted = [&](const at::Tensor& x, double t) {
    ++stats->evaluations;
    return f(x, t);
  };
  switch (o.method) {
    case OdeMethod::kAb2:
      return integrate_adams(counted, x0, grid, 2, on_step);
    case OdeMethod::kAb4:
      return integrate_adams(counted, x0, grid, 4, on_step);
    case OdeMethod::kDpmSolver2M:
      if (!path) fail("integrate_ode: dpm++2m needs the interpolant");
      return integrate_dpm_solver(counted, x0, grid, *path, on_step);
    default:
      break;
  }
  at::Tensor x = x0;
  for (size_t i = 0; i + 1 < grid.size(); ++i) {
    if (on_step) on_step(static_cast<int64_t>(i), grid[i]);
    const bool last = i + 2 == grid.size();
    x = (last && stepper.last_step_euler ? euler_step : stepper.step)(counted, x, grid[i],
                                                                       grid[i + 1]);
  }
  return x;
}

}  // namespace sit::samplers
