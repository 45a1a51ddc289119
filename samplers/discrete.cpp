#include "samplers/discrete.h"

#include <ATen/ATen.h>

#include <cctype>
#include <cmath>
#include <set>

#include "common/error.h"
#include "common/format.h"
#include "samplers/names.h"

namespace sit::samplers {
namespace {

const NameTable<VarianceType>& variance_names() {
  static const NameTable<VarianceType> t = {{"learned-range", VarianceType::kLearnedRange},
                                            {"fixed-small", VarianceType::kFixedSmall},
                                            {"fixed-large", VarianceType::kFixedLarge},
                                            {"learned_range", VarianceType::kLearnedRange},
                                            {"learned", VarianceType::kLearnedRange},
                                            {"fixed_small", VarianceType::kFixedSmall},
                                            {"fixed_large", VarianceType::kFixedLarge}};
  return t;
}

/// A non-negative decimal integer (no sign, no spaces), or -1.
int64_t parse_count(const std::string& s) {
  if (s.empty() || s.size() > 9) return -1;
  for (char c : s)
    if (!std::isdigit(static_cast<unsigned char>(c))) return -1;
  return std::stoll(s);
}

}  // namespace

const char* to_string(VarianceType v) {
  return name_of(variance_names(), v);
}
VarianceType parse_variance_type(const std::string& name) {
  return parse_name(variance_names(), name, "variance type");
}

const StepperInfo& discrete_stepper(SamplerFamily family) {
  // One network call per step; neither reaches a continuous end point.
  static const StepperInfo ddpm{"ddpm", {}, SamplerFamily::kDdpm, 1, 1, false, false};
  static const StepperInfo ddim{"ddim", {}, SamplerFamily::kDdim, 1, 1, false, false};
  if (family == SamplerFamily::kDdpm) return ddpm;
  if (family == SamplerFamily::kDdim) return ddim;
  unreachable("discrete_stepper: family ", static_cast<int>(family), " is not discrete");
}

bool is_discrete(SamplerFamily family) {
  return family == SamplerFamily::kDdpm || family == SamplerFamily::kDdim;
}

std::vector<double> linear_beta_schedule(int64_t T) {
  if (T < 2) fail("linear beta schedule: need at least 2 diffusion steps, got ", T);
  const double scale = 1000.0 / static_cast<double>(T);
  const double start = scale * 0.0001, stop = scale * 0.02;
  // numpy.linspace: i * step + start, the last point set to stop
  const double step = (stop - start) / static_cast<double>(T - 1);
  std::vector<double> b(static_cast<size_t>(T));
  for (int64_t i = 0; i < T; ++i)
    b[i] = static_cast<double>(i) * step + start;
  b.back() = stop;
  return b;
}

std::vector<int64_t> space_timesteps(int64_t T, const std::string& respacing) {
  const std::string what = cat("respacing '", respacing, "'");
  std::vector<int64_t> kept;
  if (respacing.rfind("ddim", 0) == 0) {
    const int64_t n = parse_count(respacing.substr(4));
    if (n < 1) fail(what, ": expected ddimN with N a positive integer");
    for (int64_t i = 1; i < T && kept.empty(); ++i)
      if ((T + i - 1) / i == n)  // len(range(0, T, i))
        for (int64_t k = 0; k < T; k += i)
          kept.push_back(k);
    if (kept.empty())
      fail(what, ": no integer stride gives exactly ", n, " of ", T, " timesteps (ddimN takes "
           "range(0, ", T, ", stride); e.g. ddim25, ddim50, ddim100, ddim250)");
  } else {
    std::vector<int64_t> counts;
    size_t start = 0;
    while (true) {
      const size_t comma = respacing.find(',', start);
      const std::string part = respacing.substr(start, comma - start);
      const int64_t c = parse_count(part);
      if (c < 0)
        fail(what, ": expected a step count (\"250\"), counts per section (\"25,25,50\") or "
             "ddimN; '", part, "' is not a step count (digits only, at most ", T, ")");
      counts.push_back(c);
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
    const int64_t sections = static_cast<int64_t>(counts.size());
    if (sections > T) fail(what, ": ", sections, " sections for ", T, " timesteps");
    const int64_t size_per = T / sections, extra = T % sections;
    std::set<int64_t> taken;
    int64_t first = 0;
    for (int64_t i = 0; i < sections; ++i) {
      const int64_t size = size_per + (i < extra ? 1 : 0), c = counts[i];
      if (size < c)
        fail(what, ": section ", i, " has ", size, " timesteps, cannot take ", c,
             " steps (at most ", T, " steps in all)");
      const double stride =
          c <= 1 ? 1.0 : static_cast<double>(size - 1) / static_cast<double>(c - 1);
      double cur = 0.0;
      for (int64_t k = 0; k < c; ++k) {
        taken.insert(first + static_cast<int64_t>(std::nearbyint(cur)));  // half to even
        cur += stride;
      }
      first += size;
    }
    kept.assign(taken.begin(), taken.end());
  }
  if (kept.size() < 2)
    fail(what, " keeps ", kept.size(), " timestep", kept.size() == 1 ? "" : "s",
         "; DDPM/DDIM need at least 2",
         kept.size() == 1 ? " (the reference's clipped posterior log variance is undefined for one)"
                          : "");
  return kept;
}

std::string canonical_respacing(const std::string& respacing) {
  space_timesteps(kDiffusionSteps, respacing);  // valid
  if (respacing.rfind("ddim", 0) == 0) return "ddim" + std::to_string(parse_count(respacing.substr(4)));
  std::string out;
  size_t start = 0;
  while (true) {
    const size_t comma = respacing.find(',', start);
    out += (out.empty() ? "" : ",") +
           std::to_string(parse_count(respacing.substr(start, comma - start)));
    if (comma == std::string::npos) return out;
    start = comma + 1;
  }
}

GaussianDiffusion::GaussianDiffusion(std::vector<double> b) : betas(std::move(b)) {
  const size_t n = betas.size();
  if (n < 2) fail("Gaussian diffusion: need at least 2 timesteps, got ", n);
  for (size_t i = 0; i < n; ++i)
    if (!(betas[i] > 0 && betas[i] <= 1))
      fail("Gaussian diffusion: beta ", i, " is ", python_repr(betas[i]), ", must be in (0, 1]");
  auto make = [n] { return std::vector<double>(n); };
  alphas_cumprod = make();
  double p = 1.0;
  for (size_t i = 0; i < n; ++i)
    alphas_cumprod[i] = p *= 1.0 - betas[i];  // numpy cumprod: sequential
  alphas_cumprod_prev = make();
  alphas_cumprod_next = make();
  sqrt_alphas_cumprod = make();
  sqrt_one_minus_alphas_cumprod = make();
  log_one_minus_alphas_cumprod = make();
  sqrt_recip_alphas_cumprod = make();
  sqrt_recipm1_alphas_cumprod = make();
  posterior_variance = make();
  posterior_log_variance_clipped = make();
  posterior_mean_coef1 = make();
  posterior_mean_coef2 = make();
  for (size_t i = 0; i < n; ++i) {
    const double ab = alphas_cumprod[i], abp = i == 0 ? 1.0 : alphas_cumprod[i - 1];
    alphas_cumprod_prev[i] = abp;
    alphas_cumprod_next[i] = i + 1 < n ? alphas_cumprod[i + 1] : 0.0;
    sqrt_alphas_cumprod[i] = std::sqrt(ab);
    sqrt_one_minus_alphas_cumprod[i] = std::sqrt(1.0 - ab);
    log_one_minus_alphas_cumprod[i] = std::log(1.0 - ab);
    sqrt_recip_alphas_cumprod[i] = std::sqrt(1.0 / ab);
    sqrt_recipm1_alphas_cumprod[i] = std::sqrt(1.0 / ab - 1.0);
    posterior_variance[i] = betas[i] * (1.0 - abp) / (1.0 - ab);
    posterior_mean_coef1[i] = betas[i] * std::sqrt(abp) / (1.0 - ab);
    posterior_mean_coef2[i] = (1.0 - abp) * std::sqrt(1.0 - betas[i]) / (1.0 - ab);
  }
  // log(posterior variance) with element 0 (exactly 0) replaced by element 1
  for (size_t i = 0; i < n; ++i)
    posterior_log_variance_clipped[i] = std::log(posterior_variance[i == 0 ? 1 : i]);
  timestep_map.resize(n);
  for (size_t i = 0; i < n; ++i)
    timestep_map[i] = static_cast<int64_t>(i);
}

GaussianDiffusion GaussianDiffusion::spaced(const std::vector<double>& base_betas,
                                            const std::vector<int64_t>& use) {
  const GaussianDiffusion base(base_betas);
  std::vector<double> betas;
  std::vector<int64_t> map;
  double last = 1.0;
  size_t u = 0;
  for (int64_t k = 0; k < base.num_timesteps() && u < use.size(); ++k) {
    if (use[u] != k) continue;
    ++u;
    betas.push_back(1.0 - base.alphas_cumprod[k] / last);
    last = base.alphas_cumprod[k];
    map.push_back(k);
  }
  if (u != use.size())
    fail("respacing: timestep indices must be ascending and below ", base.num_timesteps());
  GaussianDiffusion d(std::move(betas));
  d.timestep_map = std::move(map);
  return d;
}

GaussianDiffusion GaussianDiffusion::spaced(const std::string& respacing) {
  return spaced(linear_beta_schedule(kDiffusionSteps),
                space_timesteps(kDiffusionSteps, respacing));
}

MeanVariance p_mean_variance(const GaussianDiffusion& d, const at::Tensor& out,
                             const at::Tensor& x, int64_t j, VarianceType variance,
                             bool clip_denoised, bool need_variance) {
  // as _extract_into_tensor: float64 array values cast to the state's float type
  const bool fp32 = x.scalar_type() != at::kDouble;
  auto c = [fp32](double v) { return fp32 ? static_cast<double>(static_cast<float>(v)) : v; };
  const int64_t channels = x.dim() >= 2 ? x.size(1) : 1;
  const bool learned = x.dim() >= 2 && out.dim() == x.dim() && out.size(1) == 2 * channels;
  const at::Tensor eps = learned ? out.narrow(1, 0, channels) : out;
  if (eps.sizes() != x.sizes())
    fail("discrete sampler: the model output has shape ", shape_string(out.sizes().vec()),
         "; expected the state's ", shape_string(x.sizes().vec()),
         " (eps) or twice its channels (eps and learned variance)");
  MeanVariance r;
  if (need_variance) {
    switch (variance) {
      case VarianceType::kLearnedRange: {
        if (!learned)
          fail("variance type learned-range needs a model with learned sigma (2 x ", channels,
               " output channels: eps and the variance interpolation v); this model predicts "
               "eps only: use fixed-small or fixed-large");
        const double min_log = c(d.posterior_log_variance_clipped[j]);
        const double max_log = c(std::log(d.betas[j]));
        const at::Tensor frac = (out.narrow(1, channels, channels) + 1) / 2;  // not clamped
        r.log_variance = frac * max_log + (1 - frac) * min_log;
        break;
      }
      case VarianceType::kFixedSmall:
        r.log_variance = at::full_like(x, c(d.posterior_log_variance_clipped[j]));
        break;
      case VarianceType::kFixedLarge:
        // variances [posterior_variance[1], betas[1:]]
        r.log_variance =
            at::full_like(x, c(std::log(j == 0 ? d.posterior_variance[1] : d.betas[j])));
        break;
    }
  }
  r.pred_xstart = c(d.sqrt_recip_alphas_cumprod[j]) * x - c(d.sqrt_recipm1_alphas_cumprod[j]) * eps;
  if (clip_denoised) r.pred_xstart = r.pred_xstart.clamp(-1, 1);
  r.mean = c(d.posterior_mean_coef1[j]) * r.pred_xstart + c(d.posterior_mean_coef2[j]) * x;
  return r;
}

void check_ddim_eta(const std::string& respacing, double eta) {
  if (eta < 0) fail("DDIM eta must be >= 0, got ", python_repr(eta));
  const GaussianDiffusion d = GaussianDiffusion::spaced(respacing);
  double largest = 1e300;  // the largest eta every step takes
  int64_t worst = -1;
  for (int64_t j = 1; j < d.num_timesteps(); ++j) {
    const double ab = d.alphas_cumprod[j], abp = d.alphas_cumprod_prev[j];
    const double unit = (1 - abp) / (1 - ab) * (1 - ab / abp);  // sigma^2 at eta 1
    const double limit = std::sqrt((1 - abp) / unit);
    if (limit < largest) {
      largest = limit;
      worst = d.timestep_map[j];
    }
  }
  if (eta > largest * (1 - 1e-6))
    fail("DDIM eta ", python_repr(eta), " is too large for respacing '", respacing,
         "': at timestep ", worst, " sigma^2 exceeds 1 - abar_prev (eta <= ",
         python_repr(std::floor(largest * 1e4) / 1e4), " works here; eta <= 1 always does)");
}

DiscreteResult sample_discrete(const ModelFn& net, const GaussianDiffusion& d, SamplerFamily family,
                               const DiscreteOptions& o, const at::Tensor& x_T, const at::Tensor& y,
                               const StepNoise& noise, const StepHook& on_step) {
  if (!is_discrete(family)) unreachable("sample_discrete: family ", to_string(family));
  if (o.eta < 0) fail("DDIM eta must be >= 0, got ", python_repr(o.eta));
  const bool ddpm = family == SamplerFamily::kDdpm;
  const bool fp32 = x_T.scalar_type() != at::kDouble;
  DiscreteResult r;
  at::Tensor x = x_T;
  const int64_t n = d.num_timesteps();
  for (int64_t step = 0; step < n; ++step) {
    const int64_t j = n - 1 - step;
    if (on_step) on_step(step, static_cast<double>(d.timestep_map[j]));
    // the network sees the original index (respace.py: _WrappedModel)
    const at::Tensor t =
        at::full({x.size(0)}, static_cast<double>(d.timestep_map[j]), x.options());
    const at::Tensor out = net(x, t, y);
    ++r.network_calls;
    const MeanVariance mv = p_mean_variance(d, out, x, j, o.variance, o.clip_denoised, ddpm);
    if (ddpm) {
      // as p_sample: no noise at spaced index 0 (the output is the x0 estimate)
      x = j == 0 ? mv.mean : mv.mean + at::exp(0.5 * mv.log_variance) * noise(step);
      continue;
    }
    // as ddim_sample: eps re-derived from x0, the coefficients in the state's precision
    auto c = [fp32](double v) { return fp32 ? static_cast<double>(static_cast<float>(v)) : v; };
    const at::Tensor eps = (c(d.sqrt_recip_alphas_cumprod[j]) * x - mv.pred_xstart) /
                           c(d.sqrt_recipm1_alphas_cumprod[j]);
    double sigma, a, b;
    if (fp32) {
      const float ab = static_cast<float>(d.alphas_cumprod[j]);
      const float abp = static_cast<float>(d.alphas_cumprod_prev[j]);
      const float s = static_cast<float>(o.eta) * std::sqrt((1.0f - abp) / (1.0f - ab)) *
                      std::sqrt(1.0f - ab / abp);
      sigma = s;
      a = std::sqrt(abp);
      b = 1.0f - abp - s * s;
      b = b >= 0 ? std::sqrt(static_cast<float>(b)) : b;
    } else {
      const double ab = d.alphas_cumprod[j], abp = d.alphas_cumprod_prev[j];
      sigma = o.eta * std::sqrt((1.0 - abp) / (1.0 - ab)) * std::sqrt(1.0 - ab / abp);
      a = std::sqrt(abp);
      b = 1.0 - abp - sigma * sigma;
      b = b >= 0 ? std::sqrt(b) : b;
    }
    if (b < 0)
      fail("DDIM eta ", python_repr(o.eta), " is too large: at timestep ", d.timestep_map[j],
           " sigma^2 exceeds 1 - abar_prev (eta <= 1 always works)");
    x = mv.pred_xstart * a + b * eps;
    if (j != 0 && sigma > 0) x = x + sigma * noise(step);
  }
  r.x = x;
  return r;
}

}  // namespace sit::samplers
