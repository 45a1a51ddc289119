#pragma once
/// The sampling interval [t0, t1] (the reference's check_interval), and the refusal of
/// configurations that would evaluate an infinite coefficient.

#include <optional>
#include <string>

#include "samplers/diffusion.h"
#include "samplers/field.h"
#include "samplers/stepper.h"

namespace sit::samplers {

enum class LastStep { kNone, kMean, kTweedie, kEuler };
const char* to_string(LastStep s);
/// "none", "Mean", "Tweedie", "Euler" (reference names; lower case accepted).
LastStep parse_last_step(const std::string& name);

struct IntervalOptions {
  SamplerFamily family = SamplerFamily::kOde;
  DiffusionForm form = DiffusionForm::kSigma;
  LastStep last_step = LastStep::kMean;
  double last_step_size = 0.04;
  /// The reference's sample_eps; unset: 1e-3, or 0 for Linear/GVP velocity models (as the
  /// reference forces).
  std::optional<double> sample_eps;
  std::optional<double> t0, t1;  ///< explicit overrides
};

struct Interval {
  double t0 = 0, t1 = 1;
};

/// The reference's interval for this configuration, with the overrides applied.
Interval sampling_interval(PathType path, Prediction prediction, const IntervalOptions& o);

/// What a sampler evaluates at one time.
struct CoefficientUse {
  bool velocity = false;   ///< the ODE drift
  bool score = false;      ///< the score (SDE drift, Tweedie)
  bool diffusion = false;  ///< D(t)
  bool tweedie = false;    ///< 1 / alpha, sigma^2 / alpha
};

/// Throws sit::Error naming the coefficient, the time and the fix when evaluating `use` at
/// time t would meet a non-finite coefficient (e.g. SBDM on a Linear velocity model at
/// t = 0: lambda(0) = inf).
void check_coefficients(const Interpolant& path, Prediction prediction,
                        const DiffusionOptions& diffusion, double t, const CoefficientUse& use);

}  // namespace sit::samplers
