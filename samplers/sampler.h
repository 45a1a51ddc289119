#pragma once
/// One sampling run: interval, grid, guidance, integrator, NFE accounting, and the check
/// that no non-finite sample leaves silently.

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <optional>
#include <string>
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

struct GuidanceOptions {
  double scale = 1.0;  ///< 1: no guidance, no doubled batch
  int64_t null_class = 1000;
  CfgChannels channels = CfgChannels::kFirst3;
};

/// The reference's guided model on a doubled batch [x; x] with labels [y; null]: the
/// first half of the state is duplicated before the call; the output's guided part is
/// u + scale (c - u), on channels 0..2 (kFirst3; channel 3.. keep the conditional output
/// in the first half and the unconditional one in the second) or on all channels.
ModelFn guided_model(ModelFn model, const GuidanceOptions& g);

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
  at::Tensor x;               ///< (B, ...)
  std::vector<int64_t> nfe;   ///< per sample: drift evaluations (a guided pair counts once)
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
SampleResult sample(const ModelFn& model, const SamplerConfig& config, const at::Tensor& x0,
                    const at::Tensor& y, const std::vector<int64_t>& ids, uint64_t seed);

/// Throws sit::Error naming the ids of samples of result.x that are not finite.
void check_finite(const SampleResult& result, const std::vector<int64_t>& ids,
                  const std::string& context);

}  // namespace sit::samplers
