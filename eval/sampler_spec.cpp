#include "eval/sampler_spec.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "common/error.h"
#include "common/format.h"
#include "samplers/names.h"

namespace sit::eval {
namespace {

using samplers::SamplerFamily;
constexpr SamplerFamily kOde = SamplerFamily::kOde, kSde = SamplerFamily::kSde,
                        kDdpm = SamplerFamily::kDdpm, kDdim = SamplerFamily::kDdim;

/// The number a numeric field's text holds (SamplerField::set checked it against the
/// row's range first).
double value(const std::string& text) {
  return std::strtod(text.c_str(), nullptr) + 0.0;  // -0 is 0: one configuration, one ID
}

std::string repr(double v) {
  return python_repr(v);
}
std::string repr(const std::optional<double>& v) {
  return v ? python_repr(*v) : std::string();
}

bool adaptive(const SamplerSpec& s) {
  return s.family() == kOde && samplers::ode_stepper(s.config.ode.method).adaptive;
}
/// The grid's interior points matter (not dopri5, which keeps only its end points).
bool fixed_grid(const SamplerSpec& s) {
  return s.family() == kSde || !adaptive(s);
}
bool kl_eta(const SamplerSpec& s) {
  return s.family() == kSde && s.config.sde_options.diffusion.form == samplers::DiffusionForm::kKlEta;
}
bool parse_bool(const std::string& t) {
  if (samplers::same_name(t, "true")) return true;
  if (samplers::same_name(t, "false")) return false;
  fail("expected true or false, got '", t, "'");
}
bool guided(const SamplerSpec& s) {
  return s.config.guidance.scale != 1.0;
}

/// "A,B" -> (A, B), both in [lo, hi] and A <= B; "" -> unset. Errors name the form.
std::optional<std::pair<double, double>> parse_pair(const std::string& t, const char* form,
                                                    double lo, double hi) {
  if (t.empty()) return std::nullopt;
  const size_t comma = t.find(',');
  auto number = [&](const std::string& part) {
    char* end = nullptr;
    const double v = std::strtod(part.c_str(), &end);
    if (part.empty() || end != part.c_str() + part.size() || !std::isfinite(v))
      fail("expected \"", form, "\" (two numbers), got '", t, "'");
    return v + 0.0;
  };
  if (comma == std::string::npos || t.find(',', comma + 1) != std::string::npos)
    fail("expected \"", form, "\" (two numbers), got '", t, "'");
  auto trim = [](std::string v) {
    const auto b = v.find_first_not_of(" \t"), e = v.find_last_not_of(" \t");
    return b == std::string::npos ? std::string() : v.substr(b, e - b + 1);
  };
  const double a = number(trim(t.substr(0, comma))), b = number(trim(t.substr(comma + 1)));
  if (a < lo || b > hi || a > b)
    fail("expected \"", form, "\": two numbers in [", python_repr(lo), ", ", python_repr(hi),
         "], the first not above the second, got '", t, "'");
  return std::make_pair(a, b);
}

/// "FIRST,LAST" -> two step indices (digits only, at most 9 each), FIRST <= LAST.
std::pair<int64_t, int64_t> parse_step_range(const std::string& t) {
  const size_t comma = t.find(',');
  auto index = [&](std::string part) -> int64_t {
    const auto b = part.find_first_not_of(" \t"), e = part.find_last_not_of(" \t");
    part = b == std::string::npos ? std::string() : part.substr(b, e - b + 1);
    if (part.empty() || part.size() > 9 || part.find_first_not_of("0123456789") != std::string::npos)
      fail("expected \"FIRST,LAST\": two step indices (digits, 0-based), got '", t, "'");
    return std::stoll(part);
  };
  if (comma == std::string::npos)
    fail("expected \"FIRST,LAST\": two step indices (digits, 0-based), got '", t, "'");
  const int64_t first = index(t.substr(0, comma)), last = index(t.substr(comma + 1));
  if (first > last)
    fail("expected \"FIRST,LAST\" with FIRST <= LAST, got '", t, "'");
  return {first, last};
}

// Ranges shared by the rows and their help.
const Range kSteps = integers(2, 1000000);

std::vector<SamplerField> make_fields() {
  using namespace samplers;
  // both: the continuous-time families; discrete: DiT's; all: every family
  const std::vector<SamplerFamily> both = {kOde, kSde}, ode = {kOde}, sde = {kSde};
  const std::vector<SamplerFamily> discrete = {kDdpm, kDdim}, all = {kOde, kSde, kDdpm, kDdim};
  // key, canonical key, flag, help, families, numeric, integer, range, shown, in label,
  // assign (the text is valid: set() checked it against the range), print, relevant
  std::vector<SamplerField> f = {
      {"mode", "mode", "", "sampler family: ODE, SDE, DDPM or DDIM", all, false, false, {},
       FieldShown::kAlways, true,
       [](SamplerSpec& s, const std::string& t) { s.config.family = parse_sampler_family(t); },
       [](const SamplerSpec& s) -> std::string { return to_string(s.family()); }},
      {"path_type", "path", "--path-type", "interpolant: Linear, GVP or VP", both, false, false,
       {}, FieldShown::kAlways, true,
       [](SamplerSpec& s, const std::string& t) { s.config.path = parse_path_type(t); },
       [](const SamplerSpec& s) -> std::string { return to_string(s.config.path); }},
      {"prediction", "prediction", "--prediction",
       "what the model predicts: velocity, score or noise", both, false, false, {},
       FieldShown::kAlways, true,
       [](SamplerSpec& s, const std::string& t) { s.config.prediction = parse_prediction(t); },
       [](const SamplerSpec& s) -> std::string { return to_string(s.config.prediction); }},
      {"method", "method", "--sampling-method",
       "ODE: euler, midpoint, heun2 (heun), rk4, dopri5; SDE: Euler (Euler-Maruyama) or Heun",
       both, false, false, {}, FieldShown::kAlways, true,
       [](SamplerSpec& s, const std::string& t) {
         if (s.family() == kOde)
           s.config.ode.method = parse_ode_method(t);
         else
           s.config.sde_options.method = parse_sde_method(t);
       },
       [](const SamplerSpec& s) -> std::string { return s.stepper().name; }},
      {"num_steps", "steps", "--num-sampling-steps",
       "grid points (steps = points - 1; dopri5 chooses its own steps)", both, true, true, kSteps,
       FieldShown::kAlways, true,
       [](SamplerSpec& s, const std::string& t) {
         s.config.num_steps = static_cast<int64_t>(value(t));
       },
       [](const SamplerSpec& s) { return std::to_string(s.config.num_steps); }},
      {"respacing", "respacing", "--respacing",
       "timesteps kept of DiT's 1000: \"250\" (steps), \"25,25,50\" (steps per equal section) "
       "or \"ddimN\" (a stride of the 1000)",
       discrete, false, false, {}, FieldShown::kAlways, true,
       [](SamplerSpec& s, const std::string& t) {
         s.config.discrete.respacing = samplers::canonical_respacing(t);
       },
       [](const SamplerSpec& s) { return s.config.discrete.respacing; }},
      {"variance_type", "variance", "--variance-type",
       "DDPM variance: learned-range (the model's channels C..2C-1, as DiT), fixed-small "
       "(posterior variance) or fixed-large (betas)",
       {kDdpm}, false, false, {}, FieldShown::kAlways, true,
       [](SamplerSpec& s, const std::string& t) {
         s.config.discrete.variance = parse_variance_type(t);
       },
       [](const SamplerSpec& s) -> std::string { return to_string(s.config.discrete.variance); }},
      {"eta", "eta", "--eta",
       "DDIM eta: 0 deterministic, 1 the DDPM posterior variance", {kDdim}, true, false,
       not_below(0), FieldShown::kAlways, false,
       [](SamplerSpec& s, const std::string& t) { s.config.discrete.eta = value(t); },
       [](const SamplerSpec& s) { return repr(s.config.discrete.eta); }},
      {"clip_denoised", "clip", "--clip-denoised",
       "clamp each x0 estimate to [-1, 1] (true/false; DiT passes false: latents are not in "
       "[-1, 1])",
       discrete, false, false, {}, FieldShown::kChanged, true,
       [](SamplerSpec& s, const std::string& t) {
         s.config.discrete.clip_denoised = parse_bool(t);
       },
       [](const SamplerSpec& s) -> std::string {
         return s.config.discrete.clip_denoised ? "true" : "false";
       }},
      {"atol", "atol", "--atol", "dopri5 absolute tolerance", ode, true, false, greater_than(0),
       FieldShown::kAlways, false,
       [](SamplerSpec& s, const std::string& t) { s.config.ode.atol = value(t); },
       [](const SamplerSpec& s) { return repr(s.config.ode.atol); }, adaptive},
      {"rtol", "rtol", "--rtol", "dopri5 relative tolerance", ode, true, false, greater_than(0),
       FieldShown::kAlways, false,
       [](SamplerSpec& s, const std::string& t) { s.config.ode.rtol = value(t); },
       [](const SamplerSpec& s) { return repr(s.config.ode.rtol); }, adaptive},
      {"error_norm", "error_norm", "--error-norm",
       "dopri5 error norm: batch (RMS over the whole batch, as torchdiffeq) or per-sample "
       "(each sample on its own: independent of batching)",
       ode, false, false, {}, FieldShown::kChanged, true,
       [](SamplerSpec& s, const std::string& t) { s.config.error_norm = parse_error_norm(t); },
       [](const SamplerSpec& s) -> std::string { return to_string(s.config.error_norm); },
       adaptive},
      {"diffusion_form", "form", "--diffusion-form",
       "D(t) (= w/2): constant, SBDM, sigma, linear, decreasing, increasing-decreasing (sin2), "
       "kl-eta (paper eq. 14, needs loss_table and diffusion_eta)",
       sde, false, false, {}, FieldShown::kAlways, true,
       [](SamplerSpec& s, const std::string& t) {
         s.config.sde_options.diffusion.form = parse_diffusion_form(t);
       },
       [](const SamplerSpec& s) -> std::string {
         return to_string(s.config.sde_options.diffusion.form);
       }},
      {"diffusion_norm", "norm", "--diffusion-norm", "norm of the diffusion form", sde, true,
       false, not_below(0), FieldShown::kAlways, false,
       [](SamplerSpec& s, const std::string& t) {
         s.config.sde_options.diffusion.norm = value(t);
       },
       [](const SamplerSpec& s) { return repr(s.config.sde_options.diffusion.norm); }},
      {"last_step", "last", "--last-step", "none, Mean, Tweedie or Euler", sde, false, false, {},
       FieldShown::kAlways, false,
       [](SamplerSpec& s, const std::string& t) {
         s.config.sde_options.last_step = parse_last_step(t);
       },
       [](const SamplerSpec& s) -> std::string { return to_string(s.config.sde_options.last_step); }},
      {"last_step_size", "h", "--last-step-size", "size of the last step", sde, true, false,
       between(0, 1, true, true), FieldShown::kAlways, false,
       [](SamplerSpec& s, const std::string& t) {
         s.config.sde_options.last_step_size = value(t);
       },
       [](const SamplerSpec& s) { return repr(s.config.sde_options.last_step_size); }},
      {"diffusion_eta", "eta", "--diffusion-eta", "eta of the kl-eta form", sde, true, false,
       not_below(0), FieldShown::kChanged, true,
       [](SamplerSpec& s, const std::string& t) {
         s.config.sde_options.diffusion.eta = value(t);
       },
       [](const SamplerSpec& s) { return repr(s.config.sde_options.diffusion.eta); }, kl_eta},
      {"loss_table", "loss_table", "--loss-table",
       "kl-eta: CSV 't,L' of the model's loss per time", sde, false, false, {},
       FieldShown::kChanged, true,
       [](SamplerSpec& s, const std::string& t) { s.loss_table = t; },
       [](const SamplerSpec& s) { return s.loss_table; }, kl_eta},
      {"time_shift", "shift", "--time-shift",
       "time shift s of the grid, t' = s t / (1 + (s - 1) t) in float32 (LightningDiT's "
       "timestep_shift; 1: none, < 1: dense near noise); fixed-step methods",
       both, true, false, greater_than(0), FieldShown::kChanged, true,
       [](SamplerSpec& s, const std::string& t) { s.config.time_shift = value(t); },
       [](const SamplerSpec& s) { return repr(s.config.time_shift); }, fixed_grid},
      {"cfg_scale", "cfg", "--cfg-scale", "classifier-free guidance scale (1: none)", all, true,
       false, not_below(0), FieldShown::kAlways, false,
       [](SamplerSpec& s, const std::string& t) { s.config.guidance.scale = value(t); },
       [](const SamplerSpec& s) { return repr(s.config.guidance.scale); }},
      {"cfg_channels", "cfg_channels", "--cfg-channels",
       "3: guide channels 0..2 as the reference's forward_with_cfg; all: every prediction "
       "channel (DiT: the 4 eps channels, never the variance channels)",
       all,
       false, false, {}, FieldShown::kRelevant, false,
       [](SamplerSpec& s, const std::string& t) {
         s.config.guidance.channels = parse_cfg_channels(t);
       },
       [](const SamplerSpec& s) -> std::string { return to_string(s.config.guidance.channels); },
       guided},
      {"guidance", "guidance", "--guidance",
       "cfg (classifier-free: the null label) or autoguidance (a weaker guiding network with "
       "the same labels: guide_model / --guide-model; EDM2's D_g + w (D - D_g))",
       all, false, false, {}, FieldShown::kChanged, true,
       [](SamplerSpec& s, const std::string& t) { s.config.guidance.kind = parse_guidance_kind(t); },
       [](const SamplerSpec& s) -> std::string { return to_string(s.config.guidance.kind); },
       guided},
      {"cfg_schedule", "cfg_schedule", "--cfg-schedule",
       "constant, or linear: scale 1 + (cfg_scale - 1) t at code time t (none at noise, full "
       "at data)",
       both, false, false, {}, FieldShown::kChanged, true,
       [](SamplerSpec& s, const std::string& t) {
         s.config.guidance.schedule = parse_cfg_schedule(t);
       },
       [](const SamplerSpec& s) -> std::string { return to_string(s.config.guidance.schedule); },
       guided},
      {"guidance_interval", "guidance_interval", "--guidance-interval",
       "\"LOW,HIGH\" in code time: step i guided iff LOW <= t_i <= HIGH at its start (both "
       "stages share it; REPA's guidance_low/high are tau = 1 - t: [0, 0.7] is \"0.3,1\")",
       both, false, false, {}, FieldShown::kChanged, true,
       [](SamplerSpec& s, const std::string& t) {
         s.config.guidance.interval.time = parse_pair(t, "LOW,HIGH", 0.0, 1.0);
       },
       [](const SamplerSpec& s) -> std::string {
         const auto& v = s.config.guidance.interval.time;
         return v ? repr(v->first) + "," + repr(v->second) : "";
       },
       guided},
      {"cfg_interval_start", "cfg_start", "--cfg-interval-start",
       "LightningDiT's cfg_interval_start: evaluations at code time t < START are unguided",
       both, true, false, between(0, 1), FieldShown::kChanged, true,
       [](SamplerSpec& s, const std::string& t) {
         if (t.empty())
           s.config.guidance.interval.start.reset();
         else
           s.config.guidance.interval.start = value(t);
       },
       [](const SamplerSpec& s) { return repr(s.config.guidance.interval.start); }, guided},
      {"guidance_steps", "guidance_steps", "--guidance-steps",
       "\"FIRST,LAST\": steps FIRST..LAST (0-based, inclusive) guided, both stages of a step "
       "(EDM's guidance interval, e.g. \"17,22\" of 32 Heun steps); LAST may pass the end",
       all, false, false, {}, FieldShown::kChanged, true,
       [](SamplerSpec& s, const std::string& t) {
         if (t.empty()) {
           s.config.guidance.interval.steps.reset();
           return;
         }
         s.config.guidance.interval.steps = parse_step_range(t);
       },
       [](const SamplerSpec& s) -> std::string {
         const auto& v = s.config.guidance.interval.steps;
         return v ? std::to_string(v->first) + "," + std::to_string(v->second) : "";
       },
       guided},
      {"t0", "t0", "--t0", "start of the sampling interval (overrides the reference rule)", both,
       true, false, between(0, 1), FieldShown::kChanged, true,
       [](SamplerSpec& s, const std::string& t) { s.config.interval.t0 = value(t); },
       [](const SamplerSpec& s) { return repr(s.config.interval.t0); }},
      {"t1", "t1", "--t1", "end of the sampling interval (overrides the reference rule)", both,
       true, false, between(0, 1), FieldShown::kChanged, true,
       [](SamplerSpec& s, const std::string& t) { s.config.interval.t1 = value(t); },
       [](const SamplerSpec& s) { return repr(s.config.interval.t1); }},
      {"sample_eps", "sample_eps", "--sample-eps",
       "the reference's sample_eps (default 1e-3; 0 for Linear/GVP velocity models)", both, true,
       false, between(0, 1, false, true), FieldShown::kChanged, true,
       [](SamplerSpec& s, const std::string& t) {
         s.config.interval.sample_eps = value(t);
       },
       [](const SamplerSpec& s) { return repr(s.config.interval.sample_eps); }},
      {"null_class", "null_class", "--null-class",
       "label of the unconditional class (default: the model's, 1000 for ImageNet models)", all,
       true, true, at_least(0), FieldShown::kChanged, true,
       [](SamplerSpec& s, const std::string& t) {
         if (t.empty())
           s.null_class.reset();  // the default: the model's
         else
           s.null_class = static_cast<int64_t>(value(t));
       },
       [](const SamplerSpec& s) { return s.null_class ? std::to_string(*s.null_class) : ""; },
       guided},
  };
  return f;
}

}  // namespace

void SamplerField::set(SamplerSpec& spec, const std::string& text) const {
  // unset optional fields print as "" and take "" back
  if (numeric && !text.empty())
    if (const std::string bad = range.check_text(text); !bad.empty()) fail(bad);
  assign(spec, text);
}

bool SamplerField::applies_to(SamplerFamily f) const {
  return std::find(families.begin(), families.end(), f) != families.end();
}

const std::vector<SamplerField>& sampler_fields() {
  static const std::vector<SamplerField> fields = make_fields();
  return fields;
}

const SamplerField* find_sampler_field(const std::string& key) {
  for (const auto& f : sampler_fields())
    if (key == f.key) return &f;
  return nullptr;
}

SamplerSpec default_sampler_spec(SamplerFamily family) {
  SamplerSpec s;
  s.config.family = family;
  switch (family) {
    case kOde:
      s.config.ode.method = samplers::OdeMethod::kDopri5;
      s.config.num_steps = 50;
      return s;
    case kSde:
      s.config.sde_options.method = samplers::SdeMethod::kEulerMaruyama;
      s.config.num_steps = 250;
      return s;
    case kDdpm:
    case kDdim:
      return s;  // DiT's sample.py: "250", learned-range, clip_denoised false, eta 0
  }
  unreachable("SamplerFamily ", static_cast<int>(family));
}

void set_sampler_field(SamplerSpec& spec, const std::string& key, const std::string& text) {
  const SamplerField* f = find_sampler_field(key);
  if (!f) unreachable("no sampler field '", key, "'");
  in_context("'" + key + "'", [&] { f->set(spec, text); });
}

void normalise(SamplerSpec& spec) {
  const SamplerSpec defaults = default_sampler_spec(spec.family());
  // (every row with a relevance rule parses its default's canonical text back)
  for (const auto& f : sampler_fields())
    if (f.applies_to(spec.family()) && f.relevant && !f.relevant(spec))
      f.set(spec, f.print(defaults));
  if (adaptive(spec)) spec.config.num_steps = 2;  // dopri5 chooses its own steps
}

bool SamplerSpec::shows(const SamplerField& f) const {
  if (!f.applies_to(family())) return false;
  if (f.shown == FieldShown::kAlways) return true;  // (at its default when it does not matter)
  if (f.relevant && !f.relevant(*this)) return false;
  if (f.shown != FieldShown::kChanged) return true;
  return f.print(*this) != f.print(default_sampler_spec(family()));
}

const samplers::StepperInfo& SamplerSpec::stepper() const {
  if (family() == kOde) return samplers::ode_stepper(config.ode.method);
  if (samplers::is_discrete(family())) return samplers::discrete_stepper(family());
  return samplers::sde_stepper(config.sde_options.method);
}

std::string SamplerSpec::canonical() const {
  std::string s;
  for (const auto& f : sampler_fields())
    if (shows(f)) s += (s.empty() ? "" : ";") + std::string(f.canonical) + "=" + f.print(*this);
  return s;
}

std::string SamplerSpec::id() const {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char ch : canonical()) {
    h ^= ch;
    h *= 0x100000001b3ull;
  }
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(h));
  return std::string(buf, 12);
}

int64_t SamplerSpec::nfe_estimate() const {
  if (family() == kOde) return samplers::fixed_step_evaluations(config.ode.method, config.num_steps);
  if (samplers::is_discrete(family()))  // one network call per kept timestep
    return static_cast<int64_t>(
        samplers::space_timesteps(samplers::kDiffusionSteps, config.discrete.respacing).size());
  return samplers::sde_evaluations(config.sde_options, config.num_steps);
}

std::string SamplerSpec::label(bool with_path) const {
  std::string s;
  const SamplerSpec defaults = default_sampler_spec(family());
  for (const auto& f : sampler_fields()) {
    if (!shows(f)) continue;
    const std::string key = f.key;
    const std::string v = f.print(*this);
    if (key == "path_type" || key == "prediction") {
      if (with_path) s += key == "prediction" ? "/" + v : " " + v;  // "Linear/velocity"
    } else if (key == "num_steps" && stepper().adaptive) {
      continue;  // dopri5 chooses its own steps
    } else if (f.in_label && f.shown == FieldShown::kAlways) {
      s += (s.empty() ? "" : " ") + v;  // mode, method, steps, w(t)
    } else if (v != f.print(defaults)) {
      // any other field that differs from its default, named as in the canonical text:
      // "cfg 1.5", "atol 0.001", "last Tweedie"
      s += cat(" ", f.canonical, " ", v);
    }
  }
  return s;
}

std::string SamplerSpec::value(const std::string& key) const {
  const SamplerField* f = find_sampler_field(key);
  if (!f) unreachable("no sampler field '", key, "'");
  return f->applies_to(family()) ? f->print(*this) : std::string();
}

samplers::SamplerConfig SamplerSpec::resolved(int64_t model_null_class) const {
  samplers::SamplerConfig c = config;
  c.guidance.null_class = null_class ? *null_class : model_null_class;
  if (family() == kDdim)
    in_context("'eta'", [&] { samplers::check_ddim_eta(config.discrete.respacing, config.discrete.eta); });
  if (!loss_table.empty())
    c.sde_options.diffusion.loss =
        in_context("'loss_table'", [&] { return samplers::LossTable::from_csv(loss_table); });
  return c;
}

bool field_matches(const SamplerSpec& spec, const std::string& key, const std::string& text) {
  const SamplerField* f = find_sampler_field(key);
  if (!f) return false;
  try {
    if (key == "method") {
      // spelled exactly as one family's canonical name: that family's method only
      auto exact = [&](SamplerFamily family) {
        try {
          SamplerSpec probe = default_sampler_spec(family);
          f->set(probe, text);
          return f->print(probe) == text;
        } catch (const Error&) {
          return false;
        }
      };
      const bool ode = exact(kOde), sde = exact(kSde);
      if (ode != sde && (ode ? spec.family() != kOde : spec.family() != kSde)) return false;
    }
    if (!f->applies_to(spec.family())) return false;
    SamplerSpec probe = spec;
    f->set(probe, text);
    return f->print(probe) == f->print(spec);
  } catch (const Error&) {
    return false;
  }
}

}  // namespace sit::eval
