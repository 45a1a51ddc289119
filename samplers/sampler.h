#pragma once
/// One sampling run: interval, grid, guidance, integrator, NFE accounting, and the check
/// that no non-finite sample leaves silently.

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "samplers/discrete.h"
#include "samplers/field.h"
#include "samplers/interval.h"
#include "samplers/ode.h"
#include "samplers/sde.h"

namespace sit::samplers {

enum class CfgChannels { kFirst3, kAll };
const char* to_string(CfgChannels c);
/// "3" / "3ch" (the reference's forward_with_cfg: channels 0..2 guided) or "all".
CfgChannels parse_cfg_channels(const std::string& name);

/// How the guidance scale varies with time.
enum class CfgSchedule {
  kConstant,  ///< the scale at every guided evaluation
  kLinear     ///< 1 + (scale - 1) t at code time t: none at noise (t = 0), full at data
};
const char* to_string(CfgSchedule s);
/// "constant" / "linear".
CfgSchedule parse_cfg_schedule(const std::string& name);

/// What the guided prediction is extrapolated from.
enum class GuidanceKind {
  kCfg,          ///< classifier-free: the same network with the null label
  kAutoguidance  ///< a second, weaker network with the same labels (EDM2 autoguidance)
};
const char* to_string(GuidanceKind k);
/// "cfg" / "autoguidance".
GuidanceKind parse_guidance_kind(const std::string& name);

/// When guidance is on: every form given must hold (none given: every evaluation).
struct GuidanceInterval {
  /// Time form (REPA's guidance_low/high after tau = 1 - t): step i is guided iff
  /// low <= t_i <= high at its start time t_i (inclusive), and every stage of the step
  /// shares the decision (REPA's Heun corrector); dopri5 decides per evaluation.
  std::optional<std::pair<double, double>> time;
  /// Start form (LightningDiT's cfg_interval_start): an evaluation at code time t < start
  /// is unguided (strict; per evaluation).
  std::optional<double> start;
  /// Step-index form (EDM guidance interval): step i (0-based) is guided iff
  /// first <= i <= last (inclusive); both stages of a step share it. Not for dopri5.
  std::optional<std::pair<int64_t, int64_t>> steps;
  bool any() const { return time || start || steps; }
};

struct GuidanceOptions {
  double scale = 1.0;  ///< 1: no guidance, no doubled batch
  int64_t null_class = 1000;
  CfgChannels channels = CfgChannels::kFirst3;
  GuidanceKind kind = GuidanceKind::kCfg;
  CfgSchedule schedule = CfgSchedule::kConstant;
  GuidanceInterval interval;
};

/// What a guided model knows of the sampler's progress and what it counts.
struct GuidanceState {
  int64_t step = -1;               ///< the step being taken (-1: not known, decide per evaluation)
  double step_time = 0;            ///< its start time
  int64_t guided_evaluations = 0;  ///< evaluations whose unconditional / guiding branch ran
};

/// The reference's guided model on a doubled state [x; x] with labels [y; y2]: the first
/// half is evaluated conditionally (labels y) and, where guidance is on, the guiding
/// branch is evaluated too -- the same network with labels y2 = null (kCfg, one doubled
/// batch as forward_with_cfg) or `guide` with the labels y (kAutoguidance, y2 = y). The
/// output's guided part is u + scale (c - u), on channels 0..2 (kFirst3; channels 3.. keep
/// the conditional output in the first half and the guiding one in the second) or on all
/// channels. Where guidance is off (GuidanceInterval), only the conditional branch runs
/// (B rows) and both halves get its output. `state` (may be null) gives the step for the
/// interval forms and counts guided evaluations.
ModelFn guided_model(ModelFn model, const GuidanceOptions& g,
                     std::shared_ptr<GuidanceState> state = nullptr, ModelFn guide = nullptr);

enum class ErrorNorm {
  kBatch,     ///< dopri5 error RMS over the whole batch tensor (reference, default)
  kPerSample  ///< each sample integrated on its own: results independent of batching
};
const char* to_string(ErrorNorm n);
/// "batch" / "per-sample".
ErrorNorm parse_error_norm(const std::string& name);

struct SamplerConfig {
  PathType path = PathType::kLinear;
  Prediction prediction = Prediction::kVelocity;
  SamplerFamily family = SamplerFamily::kOde;
  int64_t num_steps = 50;  ///< grid points (the reference's num_sampling_steps)
  /// Time shift s of the grid (time_shifted_grid); 1: none. LightningDiT: 0.3.
  double time_shift = 1.0;
  OdeOptions ode;                ///< kOde
  ErrorNorm error_norm = ErrorNorm::kBatch;
  SdeOptions sde_options;        ///< kSde
  DiscreteOptions discrete;      ///< kDdpm, kDdim (num_steps, path, prediction unused)
  IntervalOptions interval;  ///< family / form / last step fields are filled from the above
  GuidanceOptions guidance;
};

struct SampleResult {
  at::Tensor x;              ///< (B, ...)
  std::vector<int64_t> nfe;  ///< per sample: drift evaluations (a guided pair counts once)
  /// per sample: of those, the evaluations whose unconditional (CFG) or guiding-network
  /// (autoguidance) branch also ran -- all of them with guidance on every step, 0 without
  std::vector<int64_t> nfe_uncond;
  int64_t network_calls = 0;  ///< model batch evaluations
  Interval interval;
};

/// Standard normal draws for the given sample ids: row i depends only on (seed, ids[i],
/// stream), never on the batch. Generated in float64, then cast to `options`.
at::Tensor per_sample_normal(uint64_t seed, const std::vector<int64_t>& ids, uint64_t stream,
                             at::IntArrayRef sample_shape, const at::TensorOptions& options);
/// Uniform labels in [0, num_classes) per sample id, from their own stream.
at::Tensor per_sample_labels(uint64_t seed, const std::vector<int64_t>& ids, int64_t num_classes);

/// Noise streams: 0 initial state, 1 labels, 2 + k SDE step k, 1000+ model-specific.
constexpr uint64_t kStreamInit = 0, kStreamLabels = 1, kStreamSdeBase = 2;

/// Samples from x0 (B, ...) with labels y (B). Continuous families: the model receives code
/// time t in [0, 1]. DDPM / DDIM: x0 is x_T, the model receives the original timestep index
/// (x's dtype) and returns eps, or [eps; v] on dim 1 with learned sigma; per-step noise
/// comes from the same per-sample streams as the SDE's. SDE noise comes from per_sample_normal
/// with `seed` and `ids`. Throws sit::Error for configurations that would evaluate an
/// infinite coefficient, and when any final sample is not finite (naming their ids).
/// `guide`: the guiding network of autoguidance (same call convention as `model`); guidance
/// settings that cannot apply are refused before sampling (autoguidance without `guide`,
/// time forms on DDPM/DDIM, step ranges with dopri5 or past the last step).
SampleResult sample(const ModelFn& model, const SamplerConfig& config, const at::Tensor& x0,
                    const at::Tensor& y, const std::vector<int64_t>& ids, uint64_t seed,
                    const ModelFn& guide = nullptr);

/// The steps the guidance forms count: grid points - 1 (ODE), plus the last step (SDE),
/// kept timesteps (DDPM/DDIM).
int64_t guidance_step_count(const SamplerConfig& config);
/// Refuses guidance settings that cannot apply to `config` (see sample()). Throws
/// sit::Error naming the setting. sample() calls it; checks before work call it too.
void check_guidance_interval(const SamplerConfig& config);

/// Throws sit::Error naming the ids of samples of result.x that are not finite.
void check_finite(const SampleResult& result, const std::vector<int64_t>& ids,
                  const std::string& context);

}  // namespace sit::samplers
