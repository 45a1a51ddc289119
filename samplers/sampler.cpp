#include "samplers/sampler.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <cmath>

#include "common/error.h"
#include "common/format.h"
#include "samplers/names.h"

namespace sit::samplers {
namespace {

const NameTable<ErrorNorm>& error_norm_names() {
  static const NameTable<ErrorNorm> t = {{"batch", ErrorNorm::kBatch},
                                         {"per-sample", ErrorNorm::kPerSample}};
  return t;
}

const NameTable<SamplerFamily>& family_names() {
  static const NameTable<SamplerFamily> t = {{"ODE", SamplerFamily::kOde},
                                             {"SDE", SamplerFamily::kSde},
                                             {"DDPM", SamplerFamily::kDdpm},
                                             {"DDIM", SamplerFamily::kDdim}};
  return t;
}

const NameTable<CfgChannels>& channel_names() {
  static const NameTable<CfgChannels> t = {
      {"3", CfgChannels::kFirst3}, {"all", CfgChannels::kAll}, {"3ch", CfgChannels::kFirst3}};
  return t;
}

uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

/// Key of the counter-based stream (seed, sample id, stream).
uint64_t stream_key(uint64_t seed, int64_t id, uint64_t stream) {
  return splitmix64(splitmix64(splitmix64(seed) ^ static_cast<uint64_t>(id)) ^ stream);
}

/// Uniform in (0, 1) from counter j of a stream: 53 random bits, never 0 or 1.
double uniform_at(uint64_t key, uint64_t j) {
  return (static_cast<double>(splitmix64(key + j * 0xD1B54A32D192ED03ull) >> 11) + 0.5) *
         (1.0 / 9007199254740992.0);
}

}  // namespace

const char* to_string(SamplerFamily f) {
  return name_of(family_names(), f);
}
SamplerFamily parse_sampler_family(const std::string& name) {
  return parse_name(family_names(), name, "sampler family (mode)");
}
const std::vector<SamplerFamily>& all_sampler_families() {
  static const std::vector<SamplerFamily> all = {SamplerFamily::kOde, SamplerFamily::kSde,
                                                 SamplerFamily::kDdpm, SamplerFamily::kDdim};
  return all;
}
const char* to_string(ErrorNorm n) {
  return name_of(error_norm_names(), n);
}
ErrorNorm parse_error_norm(const std::string& name) {
  return parse_name(error_norm_names(), name, "dopri5 error norm");
}

const char* to_string(CfgChannels c) {
  return name_of(channel_names(), c);
}
CfgChannels parse_cfg_channels(const std::string& name) {
  return parse_name(channel_names(), name, "cfg channels");
}

at::Tensor per_sample_normal(uint64_t seed, const std::vector<int64_t>& ids, uint64_t stream,
                             at::IntArrayRef sample_shape, const at::TensorOptions& options) {
  // Counter-based (splitmix64 + Box-Muller): identical on every platform and LibTorch
  // version, and cheap enough to draw per sample and per step.
  std::vector<int64_t> shape = {static_cast<int64_t>(ids.size())};
  shape.insert(shape.end(), sample_shape.begin(), sample_shape.end());
  at::Tensor out = at::empty(shape, at::TensorOptions().dtype(at::kDouble));
  const int64_t per = ids.empty() ? 0 : out.numel() / static_cast<int64_t>(ids.size());
  double* p = out.data_ptr<double>();
  // Rows are independent: fill them in parallel (the values do not depend on threads).
  at::parallel_for(0, static_cast<int64_t>(ids.size()), 1, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const uint64_t key = stream_key(seed, ids[i], stream);
      double* row = p + i * per;
      for (int64_t j = 0; j < per; j += 2) {
        const double r = std::sqrt(-2.0 * std::log(uniform_at(key, j)));
        const double a = 6.283185307179586 * uniform_at(key, j + 1);
        row[j] = r * std::cos(a);
        if (j + 1 < per) row[j + 1] = r * std::sin(a);
      }
    }
  });
  return out.to(options);
}

at::Tensor per_sample_labels(uint64_t seed, const std::vector<int64_t>& ids, int64_t num_classes) {
  if (num_classes < 1) fail("number of classes must be >= 1, got ", num_classes);
  at::Tensor labels = at::empty({static_cast<int64_t>(ids.size())}, at::kLong);
  int64_t* p = labels.data_ptr<int64_t>();
  for (size_t i = 0; i < ids.size(); ++i) {
    const double u = uniform_at(stream_key(seed, ids[i], kStreamLabels), 0);
    p[i] = std::min<int64_t>(num_classes - 1, static_cast<int64_t>(u * num_classes));
  }
  return labels;
}

namespace {

const NameTable<CfgSchedule>& schedule_names() {
  static const NameTable<CfgSchedule> t = {{"constant", CfgSchedule::kConstant},
                                           {"linear", CfgSchedule::kLinear}};
  return t;
}
const NameTable<GuidanceKind>& guidance_kind_names() {
  static const NameTable<GuidanceKind> t = {{"cfg", GuidanceKind::kCfg},
                                            {"autoguidance", GuidanceKind::kAutoguidance}};
  return t;
}

/// Whether guidance is on for an evaluation at time t (of step state.step when known).
bool guidance_on(const GuidanceInterval& in, const GuidanceState& state, double t) {
  const bool known = state.step >= 0;
  if (in.time) {
    const double at = known ? state.step_time : t;
    if (!(in.time->first <= at && at <= in.time->second)) return false;
  }
  if (in.start && t < *in.start) return false;
  if (in.steps && !(in.steps->first <= state.step && state.step <= in.steps->second)) return false;
  return true;
}

}  // namespace

const char* to_string(CfgSchedule s) {
  return name_of(schedule_names(), s);
}
CfgSchedule parse_cfg_schedule(const std::string& name) {
  return parse_name(schedule_names(), name, "cfg schedule");
}
const char* to_string(GuidanceKind k) {
  return name_of(guidance_kind_names(), k);
}
GuidanceKind parse_guidance_kind(const std::string& name) {
  return parse_name(guidance_kind_names(), name, "guidance kind");
}

ModelFn guided_model(ModelFn model, const GuidanceOptions& g, std::shared_ptr<GuidanceState> state,
                     ModelFn guide) {
  if (!state) state = std::make_shared<GuidanceState>();
  if (g.kind == GuidanceKind::kAutoguidance && !guide)
    fail("autoguidance needs a guiding model (guide_model)");
  const bool needs_time =
      g.interval.time || g.interval.start || g.schedule != CfgSchedule::kConstant;
  return [model = std::move(model), guide = std::move(guide), g, state, needs_time](
             const at::Tensor& x, const at::Tensor& t, const at::Tensor& y) {
    const int64_t half = x.size(0) / 2;
    const at::Tensor first = x.narrow(0, 0, half);
    const double time = needs_time ? t.reshape({-1})[0].item<double>() : 0.0;
    if (g.interval.any() && !guidance_on(g.interval, *state, time)) {
      // unguided: the conditional branch alone, for both halves of the state
      const at::Tensor c = model(first, t.narrow(0, 0, half), y.narrow(0, 0, half));
      return at::cat({c, c});
    }
    ++state->guided_evaluations;
    const double scale =
        g.schedule == CfgSchedule::kLinear ? 1.0 + (g.scale - 1.0) * time : g.scale;
    at::Tensor out;
    if (g.kind == GuidanceKind::kAutoguidance) {
      const at::Tensor th = t.narrow(0, 0, half), yh = y.narrow(0, 0, half);
      out = at::cat({model(first, th, yh), guide(first, th, y.narrow(0, half, half))});
    } else {
      out = model(at::cat({first, first}), t, y);  // one doubled batch, labels [y; null]
    }
    const at::Tensor cond = out.narrow(0, 0, half), uncond = out.narrow(0, half, half);
    // u + s (c - u) on channels 0..c-1 (dim 1); the rest keep each half's own output
    auto guide_first = [&](int64_t c) {
      const at::Tensor eps =
          uncond.narrow(1, 0, c) + scale * (cond.narrow(1, 0, c) - uncond.narrow(1, 0, c));
      return at::cat({at::cat({eps, eps}), out.narrow(1, c, out.size(1) - c)}, 1);
    };
    if (g.channels == CfgChannels::kAll) {
      // every prediction channel; learned-variance channels beyond the state's (DiT: 2C
      // outputs for a C-channel state) stay unguided, as DiT's "standard" variant
      if (x.dim() >= 2 && out.dim() == x.dim() && out.size(1) > x.size(1))
        return guide_first(x.size(1));
      const at::Tensor guided = uncond + scale * (cond - uncond);
      return at::cat({guided, guided});
    }
    // matches the SiT/DiT reference (forward_with_cfg): guidance on channels 0..2 only
    if (out.dim() < 2 || out.size(1) < 3)
      fail("cfg_channels 3 needs a model output with at least 3 channels (dim 1), got shape ",
           out.sizes());
    return guide_first(3);
  };
}

int64_t guidance_step_count(const SamplerConfig& cfg) {
  if (is_discrete(cfg.family))  // one step per kept timestep
    return static_cast<int64_t>(space_timesteps(kDiffusionSteps, cfg.discrete.respacing).size());
  // the SDE's last step is a step of its own (index points - 1)
  return cfg.num_steps - 1 +
         (cfg.family == SamplerFamily::kSde && cfg.sde_options.last_step != LastStep::kNone ? 1
                                                                                            : 0);
}

void check_guidance_interval(const SamplerConfig& cfg) {
  const int64_t steps = guidance_step_count(cfg);
  const GuidanceOptions& g = cfg.guidance;
  const GuidanceInterval& in = g.interval;
  const bool discrete = is_discrete(cfg.family);
  if (discrete && (in.time || in.start || g.schedule != CfgSchedule::kConstant))
    fail(in.time    ? "guidance_interval (--guidance-interval)"
         : in.start ? "cfg_interval_start (--cfg-interval-start)"
                    : "cfg_schedule (--cfg-schedule)",
         " is in code time t in [0, 1]: ", to_string(cfg.family),
         " steps on DiT's integer timesteps; use guidance_steps (--guidance-steps, a step-index "
         "range)");
  if (in.time && in.time->first > in.time->second)
    fail("guidance_interval (--guidance-interval): low ", in.time->first, " > high ",
         in.time->second);
  if (in.steps) {
    if (in.steps->first > in.steps->second)
      fail("guidance_steps (--guidance-steps): first ", in.steps->first, " > last ",
           in.steps->second);
    if (cfg.family == SamplerFamily::kOde && ode_stepper(cfg.ode.method).adaptive)
      fail("guidance_steps (--guidance-steps) needs a fixed-step method: ",
           ode_stepper(cfg.ode.method).name,
           " chooses its own steps (use guidance_interval, a time range)");
    if (in.steps->first >= steps)
      fail("guidance_steps (--guidance-steps) [", in.steps->first, ", ", in.steps->second,
           "] starts after the last step (the sampler takes ", steps, " steps, 0..", steps - 1,
           ")");
  }
}

SampleResult sample(const ModelFn& model, const SamplerConfig& cfg, const at::Tensor& x0,
                    const at::Tensor& y, const std::vector<int64_t>& ids, uint64_t seed,
                    const ModelFn& guide) {
  const int64_t batch = x0.size(0);
  if (y.size(0) != batch || static_cast<int64_t>(ids.size()) != batch)
    fail("sample: x0, labels and ids must have the same batch size, got ", batch, ", ", y.size(0),
         ", ", ids.size());
  const bool guided = cfg.guidance.scale != 1.0;
  const bool autoguidance = guided && cfg.guidance.kind == GuidanceKind::kAutoguidance;
  if (autoguidance && !guide)
    fail("autoguidance needs a guiding model (guide_model): none was given");
  if (guided) check_guidance_interval(cfg);
  auto state = std::make_shared<GuidanceState>();
  const ModelFn net = guided ? guided_model(model, cfg.guidance, state, guide) : model;
  // the step being taken, for the guidance forms that decide per step
  const StepHook on_step = [state](int64_t step, double t) {
    state->step = step;
    state->step_time = t;
  };
  auto doubled = [&](const at::Tensor& t) { return guided ? at::cat({t, t}) : t; };
  // second half's labels: the null class (CFG) or the same labels (autoguidance)
  const at::Tensor y_state =
      !guided ? y : at::cat({y, autoguidance ? y : at::full_like(y, cfg.guidance.null_class)});
  auto count_guided = [&](SampleResult& r) {
    r.nfe_uncond.assign(static_cast<size_t>(batch), state->guided_evaluations);
  };
  const at::IntArrayRef shape = x0.sizes().slice(1);
  // Noise of step k for every sample: its own stream, so batches and shards do not matter.
  auto step_noise = [&](int64_t step) {
    return doubled(per_sample_normal(seed, ids, kStreamSdeBase + step, shape, x0.options()));
  };

  SampleResult result;
  at::Tensor x;
  result.nfe.assign(static_cast<size_t>(batch), 0);
  if (is_discrete(cfg.family)) {
    // DiT's DDPM / DDIM on the respaced integer timesteps; the model receives them
    const GaussianDiffusion d = GaussianDiffusion::spaced(cfg.discrete.respacing);
    const DiscreteResult r = sample_discrete(net, d, cfg.family, cfg.discrete, doubled(x0), y_state,
                                             step_noise, on_step);
    std::fill(result.nfe.begin(), result.nfe.end(), r.network_calls);
    count_guided(result);
    result.network_calls = r.network_calls;
    result.x = r.x.narrow(0, 0, batch);
    check_finite(result, ids, cat(to_string(cfg.family), " respacing '", cfg.discrete.respacing, "'"));
    return result;
  }

  const Interpolant path(cfg.path);
  IntervalOptions io = cfg.interval;
  io.family = cfg.family;
  io.form = cfg.sde_options.diffusion.form;
  io.last_step = cfg.sde_options.last_step;
  io.last_step_size = cfg.sde_options.last_step_size;
  result.interval = sampling_interval(cfg.path, cfg.prediction, io);
  std::vector<double> grid = linspace_grid(result.interval.t0, result.interval.t1, cfg.num_steps);
  if (cfg.time_shift != 1.0) grid = time_shifted_grid(grid, cfg.time_shift);

  // Refuse configurations that would evaluate an infinite coefficient.
  const DiffusionOptions& diff = cfg.sde_options.diffusion;
  // The last time a step evaluates: t_{n-1}, or t_{n-2} for steppers that stop short
  // (their descriptor rows say which).
  const bool sde = cfg.family == SamplerFamily::kSde;
  const bool reaches_end = sde ? sde_stepper(cfg.sde_options.method).evaluates_end_point
                               : ode_stepper(cfg.ode.method).evaluates_end_point;
  const double last_evaluated = reaches_end ? grid.back() : grid[grid.size() - 2];
  if (sde) {
    // The drift v + D s needs the velocity and the score (from whatever the model predicts).
    const CoefficientUse step{true, true, true, false};
    check_coefficients(path, cfg.prediction, diff, grid.front(), step);
    check_coefficients(path, cfg.prediction, diff, last_evaluated, step);
    switch (cfg.sde_options.last_step) {
      case LastStep::kNone:
        break;
      case LastStep::kMean:
        check_coefficients(path, cfg.prediction, diff, grid.back(), step);
        break;
      case LastStep::kTweedie:
        check_coefficients(path, cfg.prediction, diff, grid.back(), {false, true, false, true});
        break;
      case LastStep::kEuler:
        check_coefficients(path, cfg.prediction, diff, grid.back(), {true, false, false, false});
        break;
    }
  } else {
    const CoefficientUse v{true, false, false, false};
    check_coefficients(path, cfg.prediction, diff, grid.front(), v);
    check_coefficients(path, cfg.prediction, diff, last_evaluated, v);
  }

  if (sde) {
    Field field(net, cfg.prediction, path);
    x = integrate_sde(field, doubled(x0), y_state, grid, cfg.sde_options, step_noise, on_step);
    std::fill(result.nfe.begin(), result.nfe.end(), field.calls());
    count_guided(result);
    result.network_calls = field.calls();
  } else if (ode_stepper(cfg.ode.method).adaptive && cfg.error_norm == ErrorNorm::kPerSample) {
    std::vector<at::Tensor> rows;
    result.nfe_uncond.assign(static_cast<size_t>(batch), 0);
    for (int64_t i = 0; i < batch; ++i) {
      state->guided_evaluations = 0;
      const at::Tensor yi = guided ? at::cat({y.narrow(0, i, 1), y_state.narrow(0, batch + i, 1)})
                                   : y.narrow(0, i, 1);
      Field field(net, cfg.prediction, path);
      auto f = [&](const at::Tensor& xs, double t) { return field.velocity(xs, t, yi); };
      OdeStats stats;
      const at::Tensor xi = integrate_ode(f, doubled(x0.narrow(0, i, 1)), grid, cfg.ode, &stats);
      rows.push_back(xi.narrow(0, 0, 1));
      result.nfe[i] = stats.evaluations;
      result.nfe_uncond[i] = state->guided_evaluations;
      result.network_calls += stats.evaluations;
    }
    x = at::cat(rows);
  } else {
    Field field(net, cfg.prediction, path);
    auto f = [&](const at::Tensor& xs, double t) { return field.velocity(xs, t, y_state); };
    OdeStats stats;
    x = integrate_ode(f, doubled(x0), grid, cfg.ode, &stats, &path, on_step);
    std::fill(result.nfe.begin(), result.nfe.end(), stats.evaluations);
    count_guided(result);
    result.network_calls = stats.evaluations;
  }
  result.x = x.narrow(0, 0, batch);
  check_finite(result, ids,
               cat("path ", to_string(cfg.path), ", prediction ", to_string(cfg.prediction),
                   ", interval [", result.interval.t0, ", ", result.interval.t1, "]"));
  return result;
}

void check_finite(const SampleResult& result, const std::vector<int64_t>& ids,
                  const std::string& context) {
  // No NaN leaves silently.
  const int64_t batch = result.x.size(0);
  const at::Tensor bad = at::logical_not(at::isfinite(result.x.reshape({batch, -1})).all(1));
  if (bad.any().item<bool>()) {
    std::string list;
    int shown = 0;
    for (int64_t i = 0; i < batch && shown < 10; ++i)
      if (bad[i].item<bool>()) {
        list += (shown++ ? ", " : "") + std::to_string(ids[i]);
      }
    fail("sampler produced non-finite values for ", bad.sum().item<int64_t>(), " of ", batch,
         " samples (sample ids ", list, shown < bad.sum().item<int64_t>() ? ", ..." : "",
         "); ", context);
  }
}

}  // namespace sit::samplers
