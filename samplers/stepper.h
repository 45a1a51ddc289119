#pragma once
/// Sampler families and the descriptor every stepper (one integration rule) has: the
/// facts NFE accounting, the interval rules and the name tables read. A stepper is its
/// step function plus one row of its family's table (ode.cpp, sde.cpp).

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace sit::samplers {

/// How a sampler moves the state: the probability-flow ODE or the SDE of the SiT
/// reference (continuous time, code convention t = 0 noise, t = 1 data), or DiT's
/// ancestral DDPM / DDIM on integer timesteps (samplers/discrete.h; k = 0 data side).
enum class SamplerFamily { kOde, kSde, kDdpm, kDdim };
/// "ODE" / "SDE" / "DDPM" / "DDIM" (any case).
const char* to_string(SamplerFamily f);
SamplerFamily parse_sampler_family(const std::string& name);
/// Every family, in table order (tests check each has a name).
const std::vector<SamplerFamily>& all_sampler_families();

/// Called by the integrators before step `step` (0-based) that starts at time t (code time;
/// DDPM/DDIM: the step's original timestep index): the guidance rules that decide per step
/// (guidance interval, step range) read it. Adaptive dopri5 does not call it.
using StepHook = std::function<void(int64_t step, double t)>;

/// What a stepper is, independent of its step function.
struct StepperInfo {
  const char* name = "";              ///< canonical spelling (the reference's)
  std::vector<const char*> aliases;   ///< also accepted, any letter case
  SamplerFamily family = SamplerFamily::kOde;
  int order = 1;                      ///< global order of accuracy (deterministic part)
  int evaluations_per_step = 1;       ///< drift evaluations per grid step (adaptive: per trial)
  bool adaptive = false;              ///< chooses its own steps (the grid sets only the ends)
  /// Whether the step from t_i to t_{i+1} evaluates the drift at t_{i+1}, so that the last
  /// grid point is evaluated (heun2, rk4, dopri5, SDE Heun) or not (euler, midpoint,
  /// Euler-Maruyama): the interval checks read it.
  bool evaluates_end_point = false;
  /// A multistep method (Adams-Bashforth, DPM-Solver++(2M)): one evaluation per step at
  /// its start, earlier evaluations reused (integrate_ode runs its whole loop).
  bool multistep = false;
  /// The last step is a plain Euler step (EDM's and REPA's Heun): one evaluation fewer.
  bool last_step_euler = false;
};

}  // namespace sit::samplers
