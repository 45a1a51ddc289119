#pragma once
/// DiT's discrete-time Gaussian diffusion (spec/dit_diffusion.md): the linear beta
/// schedule and its derived arrays in float64, respacing ("250", "25,25,50", "ddim50")
/// with the map back to the original timestep indices the network receives, and the
/// ancestral DDPM and DDIM steps. Index orientation as the reference: k = 0 is one
/// noising step from data, k = T - 1 is (almost) pure noise;
/// x_k = sqrt(abar_k) x_0 + sqrt(1 - abar_k) eps.

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "samplers/field.h"
#include "samplers/stepper.h"

namespace sit::samplers {

/// The reference's model variance types (ModelVarType). DiT-XL/2 uses kLearnedRange.
enum class VarianceType {
  kLearnedRange,  ///< channels C..2C-1 interpolate log beta and the clipped posterior log variance
  kFixedSmall,    ///< the posterior variance (clipped log)
  kFixedLarge,    ///< betas, with posterior_variance[1] at index 0
};
const char* to_string(VarianceType v);
/// "learned-range" (learned_range, learned), "fixed-small", "fixed-large" (any case, _ or -).
VarianceType parse_variance_type(const std::string& name);

/// The descriptor rows of the two discrete steppers (ddpm: family DDPM, ddim: family DDIM).
const StepperInfo& discrete_stepper(SamplerFamily family);
/// Whether the family runs on integer timesteps (DDPM, DDIM).
bool is_discrete(SamplerFamily family);

/// Diffusion steps of the base process (DiT's create_diffusion: diffusion_steps=1000).
constexpr int64_t kDiffusionSteps = 1000;

/// as DiT gaussian_diffusion.py: get_named_beta_schedule("linear", T): numpy linspace of
/// scale * 1e-4 .. scale * 0.02 (scale = 1000 / T), float64, both ends included.
std::vector<double> linear_beta_schedule(int64_t num_diffusion_timesteps);

/// as DiT respace.py: space_timesteps. "N" or "a,b,c" (steps per equal section, strides
/// by repeated float64 addition, Python's round half to even) or "ddimN" (the smallest
/// stride giving N steps). Ascending original indices. Throws sit::Error for text that is
/// not a respacing, a section with more steps than it has timesteps, an impossible ddimN,
/// and respacings keeping fewer than 2 timesteps (the reference's arrays need 2).
std::vector<int64_t> space_timesteps(int64_t num_timesteps, const std::string& respacing);

/// The respacing in one spelling ("0250" -> "250", "ddim050" -> "ddim50"), checked with
/// space_timesteps over kDiffusionSteps. Throws sit::Error as space_timesteps.
std::string canonical_respacing(const std::string& respacing);

/// as DiT gaussian_diffusion.py: GaussianDiffusion.__init__ (the arrays, float64, length
/// T') and respace.py: SpacedDiffusion (the new betas 1 - abar_k / abar_prev_kept and the
/// map spaced index j -> original index).
struct GaussianDiffusion {
  std::vector<double> betas, alphas_cumprod, alphas_cumprod_prev, alphas_cumprod_next;
  std::vector<double> sqrt_alphas_cumprod, sqrt_one_minus_alphas_cumprod,
      log_one_minus_alphas_cumprod, sqrt_recip_alphas_cumprod, sqrt_recipm1_alphas_cumprod;
  std::vector<double> posterior_variance, posterior_log_variance_clipped;
  std::vector<double> posterior_mean_coef1, posterior_mean_coef2;
  std::vector<int64_t> timestep_map;  ///< spaced j -> original index (identity unspaced)

  /// The unspaced process of `betas` (each in (0, 1]; throws otherwise).
  explicit GaussianDiffusion(std::vector<double> betas);
  /// The respaced process of the linear schedule with kDiffusionSteps steps.
  static GaussianDiffusion spaced(const std::string& respacing);
  /// The respaced process of `base_betas` keeping the ascending indices `use`.
  static GaussianDiffusion spaced(const std::vector<double>& base_betas,
                                  const std::vector<int64_t>& use);
  int64_t num_timesteps() const { return static_cast<int64_t>(betas.size()); }
};

struct DiscreteOptions {
  std::string respacing = "250";  ///< DiT's sample_ddp.py: str(num_sampling_steps)
  VarianceType variance = VarianceType::kLearnedRange;  ///< DDPM
  double eta = 0.0;               ///< DDIM: 0 deterministic, 1 the DDPM posterior variance
  bool clip_denoised = false;     ///< DiT's scripts pass False (latents are not in [-1, 1])
};

/// The mean, log variance and x0 estimate of one step (p_mean_variance), x's dtype.
struct MeanVariance {
  at::Tensor mean, log_variance, pred_xstart;
};

/// as DiT gaussian_diffusion.py: p_mean_variance, at spaced index j. `model_output`: eps
/// (the shape of x) or, with learned sigma, [eps; v] on dim 1 (2C channels). With a float32
/// x every coefficient is the float64 array value rounded to float32 (the reference's
/// _extract_into_tensor); v is not clamped. Throws sit::Error when kLearnedRange gets no
/// variance channels.
MeanVariance p_mean_variance(const GaussianDiffusion& d, const at::Tensor& model_output,
                             const at::Tensor& x, int64_t j, VarianceType variance,
                             bool clip_denoised, bool need_variance = true);

/// Refuses a DDIM eta whose sigma^2 exceeds 1 - abar_prev at some step of `respacing`
/// (the reference would take the square root of a negative number there). Throws
/// sit::Error naming the eta, the timestep and the largest eta that works.
void check_ddim_eta(const std::string& respacing, double eta);

/// Per-step noise: step s = 0, 1, ... of the loop (spaced index T' - 1 - s), shape of x.
using StepNoise = std::function<at::Tensor(int64_t step)>;

struct DiscreteResult {
  at::Tensor x;                ///< the final x0 estimate at spaced index 0
  int64_t network_calls = 0;   ///< T'
};

/// as DiT gaussian_diffusion.py: p_sample_loop (DDPM) / ddim_sample_loop (DDIM) from
/// x_T (B, ...). `net(x, t, y)` receives the original timestep index (timestep_map[j],
/// x's dtype) for every row. `noise(step)` is only called where it is used (DDPM j > 0,
/// DDIM with eta > 0 and j > 0): the reference draws at every step, but the counter-based
/// per-sample noise makes skipped draws irrelevant. `on_step` (when set) is called before
/// step s with the original timestep index it evaluates.
DiscreteResult sample_discrete(const ModelFn& net, const GaussianDiffusion& d, SamplerFamily family,
                               const DiscreteOptions& options, const at::Tensor& x_T,
                               const at::Tensor& y, const StepNoise& noise,
                               const StepHook& on_step = {});

}  // namespace sit::samplers
