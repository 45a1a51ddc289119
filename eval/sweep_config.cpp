#include "eval/sweep_config.h"

#include <toml++/toml.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <functional>
#include <map>
#include <set>

#include "common/error.h"
#include "common/format.h"
#include "common/range.h"
#include "models/device.h"
#include "models/gmm.h"
#include "samplers/diffusion.h"
#include "samplers/field.h"
#include "samplers/interval.h"
#include "samplers/names.h"
#include "samplers/ode.h"
#include "samplers/sampler.h"
#include "samplers/sde.h"

namespace sit::eval {
namespace {

std::string where(const std::string& file, const toml::node& n) {
  return cat(file, ":", n.source().begin.line);
}

/// A grid axis: a TOML array (or a single value) of strings or numbers.
template <class T>
std::vector<T> axis(const std::string& file, const toml::table& t, const char* key,
                    std::vector<T> fallback) {
  const toml::node* n = t.get(key);
  if (!n) return fallback;
  std::vector<T> out;
  auto take = [&](const toml::node& v) {
    if constexpr (std::is_same_v<T, std::string>) {
      const auto s = v.value<std::string>();
      if (!s) fail(where(file, v), ": '", key, "' must hold strings");
      out.push_back(*s);
    } else {
      const auto d = v.value<T>();
      if (!d) fail(where(file, v), ": '", key, "' must hold numbers");
      out.push_back(*d);
    }
  };
  if (const auto* a = n->as_array()) {
    for (const auto& v : *a)
      take(v);
  } else {
    take(*n);
  }
  if (out.empty()) fail(where(file, *n), ": '", key, "' must not be empty");
  return out;
}

void check_keys(const std::string& file, const toml::table& t, const char* section,
                const std::set<std::string>& allowed) {
  for (const auto& [key, node] : t)
    if (!allowed.count(std::string(key.str()))) {
      std::string list;
      for (const auto& a : allowed)
        list += (list.empty() ? "" : ", ") + a;
      fail(where(file, node), ": unknown key '", key.str(), "' in [", section, "] (expected ", list,
           ")");
    }
}

/// Value of a config field by its rule key, as a string, for include/exclude matching.
std::string field(const SweepConfig& c, const std::string& key) {
  if (key == "mode") return c.mode;
  if (key == "path_type") return c.path_type;
  if (key == "prediction") return c.prediction;
  if (key == "method") return c.method;
  if (key == "num_steps") return std::to_string(c.num_steps);
  if (key == "diffusion_form") return c.diffusion_form;
  if (key == "last_step") return c.last_step;
  if (key == "cfg_scale") return python_repr(c.cfg_scale);
  if (key == "cfg_channels") return c.cfg_channels;
  if (key == "diffusion_norm") return python_repr(c.diffusion_norm);
  return "";
}

/// Names are canonicalised (any case and alias gives the name tables' first spelling),
/// so "heun" and "heun2", "Euler" and "euler" are one configuration with one ID.
std::string canonical_name(const std::string& key, const std::string& value,
                           const std::string& mode) {
  using namespace samplers;
  if (key == "path_type") return to_string(parse_path_type(value));
  if (key == "prediction") return to_string(parse_prediction(value));
  if (key == "diffusion_form") return to_string(parse_diffusion_form(value));
  if (key == "last_step") return to_string(parse_last_step(value));
  if (key == "cfg_channels") return to_string(parse_cfg_channels(value));
  if (key == "method")
    return mode == "ODE" ? to_string(parse_ode_method(value)) : to_string(parse_sde_method(value));
  if (key == "mode") {
    if (samplers::same_name(value, "ODE")) return "ODE";
    if (samplers::same_name(value, "SDE")) return "SDE";
  }
  return value;
}

/// Does configuration `c` have `value` for rule key `key`? Names compare by what they
/// mean. A method spelled exactly as one mode's canonical name means that mode's method
/// ("euler": the ODE method, "Euler": Euler-Maruyama, as before names were
/// canonicalised); any other spelling is read in the configuration's own mode ("heun" is
/// heun2 for ODEs and Heun for SDEs). A name not valid for the configuration never matches.
bool field_matches(const SweepConfig& c, const std::string& key, const std::string& value) {
  try {
    if (key == "method") {
      auto exact = [&](const char* mode) {
        try {
          return canonical_name(key, value, mode) == value;
        } catch (const Error&) {
          return false;
        }
      };
      const bool ode = exact("ODE"), sde = exact("SDE");
      if (ode != sde && (ode ? c.mode != "ODE" : c.mode != "SDE")) return false;
    }
    return field(c, key) == canonical_name(key, value, c.mode);
  } catch (const Error&) {
    return false;
  }
}

const std::set<std::string> kRuleKeys = {
    "mode",           "path_type",      "prediction", "method",    "num_steps",
    "diffusion_form", "diffusion_norm", "last_step",  "cfg_scale", "cfg_channels"};

}  // namespace

std::string SweepConfig::canonical() const {
  std::string s = "mode=" + mode + ";path=" + path_type + ";prediction=" + prediction +
                  ";method=" + method + ";steps=" + std::to_string(num_steps);
  if (mode == "ODE") {
    s += ";atol=" + python_repr(atol) + ";rtol=" + python_repr(rtol);
  } else {
    s += ";form=" + diffusion_form + ";norm=" + python_repr(diffusion_norm) + ";last=" + last_step +
         ";h=" + python_repr(last_step_size);
  }
  s += ";cfg=" + python_repr(cfg_scale);
  if (cfg_scale != 1.0) s += ";cfg_channels=" + cfg_channels;
  return s;
}

std::string SweepConfig::id() const {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char ch : canonical()) {
    h ^= ch;
    h *= 0x100000001b3ull;
  }
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(h));
  return std::string(buf, 12);
}

int64_t SweepConfig::nfe_estimate() const {
  using namespace samplers;
  if (mode == "ODE") return fixed_step_evaluations(parse_ode_method(method), num_steps);
  SdeOptions o;
  o.method = parse_sde_method(method);
  o.last_step = parse_last_step(last_step);
  return sde_evaluations(o, num_steps);
}

std::string SweepConfig::label() const {
  std::string s =
      mode + " " + path_type + "/" + prediction + " " + method + " " + std::to_string(num_steps);
  if (mode == "SDE") s += " " + diffusion_form;
  if (cfg_scale != 1.0) s += " cfg " + python_repr(cfg_scale);
  return s;
}

SweepSpec load_sweep(const std::string& path) {
  toml::table tbl;
  try {
    tbl = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    fail(path, ":", e.source().begin.line, ": ", e.description());
  }
  check_keys(path, tbl, "top level", {"sweep", "grid", "exclude", "include"});
  const toml::table* sweep = tbl["sweep"].as_table();
  const toml::table* grid = tbl["grid"].as_table();
  if (!sweep) fail(path, ": needs a [sweep] table (model, samples, ...)");
  if (!grid) fail(path, ": needs a [grid] table (path_type, prediction, methods, steps, ...)");
  check_keys(path, *sweep, "sweep",
             {"name", "model", "samples", "reference_samples", "global_seed", "batch_size",
              "device", "precision", "out", "metrics", "ckpt", "vae", "image_size", "num_classes",
              "reference", "save_images", "inception"});
  check_keys(path, *grid, "grid",
             {"path_type", "prediction", "ode_methods", "ode_steps", "sde_methods", "sde_steps",
              "diffusion_form", "diffusion_norm", "last_step", "last_step_size", "cfg_scale",
              "cfg_channels", "atol", "rtol"});

  SweepSpec spec;
  spec.source = path;
  auto str = [&](const char* key, std::string fallback) {
    const toml::node* n = sweep->get(key);
    if (!n) return fallback;
    const auto v = n->value<std::string>();
    if (!v) fail(where(path, *n), ": '", key, "' must be a string");
    return *v;
  };
  auto integer = [&](const char* key, int64_t fallback, int64_t min) {
    const toml::node* n = sweep->get(key);
    if (!n) return fallback;
    const auto v = n->value<int64_t>();
    if (!v || !n->is_integer())
      fail(where(path, *n), ": '", key, "': expected ", at_least(min).describe(), ", got ",
           n->type());
    const std::string bad = at_least(min).check(static_cast<double>(*v));
    if (!bad.empty()) fail(where(path, *n), ": '", key, "': ", bad);
    return *v;
  };
  spec.model = str("model", "");
  if (spec.model.empty()) fail(path, ": [sweep] needs 'model' (e.g. \"gmm:demo\")");
  spec.name = str("name", spec.model);
  spec.device = str("device", "cpu");
  spec.device = lowercase(spec.device);
  spec.precision = str("precision", "fp32");
  spec.precision = lowercase(spec.precision);
  spec.out = str("out", "");
  spec.ckpt = str("ckpt", "");
  spec.vae = str("vae", "");
  spec.inception = str("inception", "");
  spec.reference = str("reference", "");
  spec.save_images = str("save_images", "none");
  spec.image_size = integer("image_size", 0, 0);
  spec.num_classes = integer("num_classes", 0, 0);
  const bool analytic = spec.model.rfind("gmm:", 0) == 0;
  if (analytic ? spec.precision != "fp32" && spec.precision != "fp64"
               : spec.precision != "fp32" && spec.precision != "tf32" && spec.precision != "bf16")
    fail(where(path, *sweep->get("precision")), ": 'precision' must be ",
         analytic ? "fp32 or fp64 for an analytic model" : "fp32, tf32 or bf16 for a network",
         ", got '", spec.precision, "'");
  if (spec.save_images != "none" && spec.save_images != "png" && spec.save_images != "npz")
    fail(where(path, *sweep->get("save_images")), ": 'save_images' must be none, png or npz, got '",
         spec.save_images, "'");
  if (!analytic && spec.ckpt.empty())
    fail(path, ": [sweep] model ", spec.model, " needs 'ckpt' (the checkpoint file)");
  if (analytic)
    for (const char* key : {"ckpt", "vae", "image_size", "num_classes", "inception"})
      if (const toml::node* n = sweep->get(key))
        fail(where(path, *n), ": '", key, "' does not apply to the analytic model ", spec.model);
  if (!spec.inception.empty() && spec.vae.empty())
    fail(where(path, *sweep->get("inception")), ": 'inception' needs a model with images ('vae')");
  if (spec.save_images != "none" && spec.vae.empty())
    fail(where(path, *sweep->get("save_images")),
         ": 'save_images' needs a model with images ('vae')");
  if (const toml::node* n = sweep->get("device")) {
    try {
      models::check_device(spec.device, "'device'");
    } catch (const Error& e) {
      fail(where(path, *n), ": ", e.what());
    }
  }
  spec.samples = integer("samples", 1000, 2);
  spec.reference_samples = integer("reference_samples", spec.samples, 2);
  spec.batch_size = integer("batch_size", 500, 1);
  spec.seed = static_cast<uint64_t>(integer("global_seed", 0, 0));
  spec.metrics = axis<std::string>(path, *sweep, "metrics", spec.metrics);
  for (const auto& m : spec.metrics)
    if (m != "fid" && m != "sfid" && m != "is" && m != "pr" && m != "kid")
      fail(where(path, *sweep->get("metrics")),
           ": 'metrics' entries must be fid, sfid, is, pr or kid, got '", m, "'");
  for (const auto& m : spec.metrics) {
    if ((m == "sfid" || m == "is") && spec.inception.empty())
      fail(where(path, sweep->get("metrics") ? *sweep->get("metrics") : *sweep), ": '", m,
           "' needs Inception features (a model with 'vae' and 'inception'); ", spec.model,
           spec.inception.empty() && !analytic ? " has no 'inception'" : " is an analytic model");
    if (m == "pr" && std::min(spec.samples, spec.reference_samples) < 4)
      fail(path, ": 'pr' needs at least k + 1 = 4 samples and reference_samples, got ",
           spec.samples, " and ", spec.reference_samples);
  }

  // Expand the grid; every name is validated through the samplers' parsers.
  auto paths = axis<std::string>(path, *grid, "path_type", {"Linear"});
  auto preds = axis<std::string>(path, *grid, "prediction", {"velocity"});
  auto ode_methods = axis<std::string>(path, *grid, "ode_methods", {});
  const auto ode_steps = axis<int64_t>(path, *grid, "ode_steps", {50});
  auto sde_methods = axis<std::string>(path, *grid, "sde_methods", {});
  const auto sde_steps = axis<int64_t>(path, *grid, "sde_steps", {250});
  auto forms = axis<std::string>(path, *grid, "diffusion_form", {"sigma"});
  const auto norms = axis<double>(path, *grid, "diffusion_norm", {1.0});
  auto lasts = axis<std::string>(path, *grid, "last_step", {"Mean"});
  const auto sizes = axis<double>(path, *grid, "last_step_size", {0.04});
  const auto scales = axis<double>(path, *grid, "cfg_scale", {1.0});
  auto channels = axis<std::string>(path, *grid, "cfg_channels", {"3"});
  const double atol = axis<double>(path, *grid, "atol", {1e-6}).front();
  const double rtol = axis<double>(path, *grid, "rtol", {1e-3}).front();
  auto validate = [&](const char* key, const std::string& v, const std::function<void()>& parse) {
    try {
      parse();
    } catch (const Error& e) {
      fail(where(path, *grid->get(key)), ": ", key, ": ", e.what());
    }
    (void)v;
  };
  for (const auto& v : paths)
    validate("path_type", v, [&] { samplers::parse_path_type(v); });
  for (const auto& v : preds)
    validate("prediction", v, [&] { samplers::parse_prediction(v); });
  for (const auto& v : ode_methods)
    validate("ode_methods", v, [&] { samplers::parse_ode_method(v); });
  for (const auto& v : sde_methods)
    validate("sde_methods", v, [&] { samplers::parse_sde_method(v); });
  for (const auto& v : forms)
    validate("diffusion_form", v, [&] { samplers::parse_diffusion_form(v); });
  for (const auto& v : lasts)
    validate("last_step", v, [&] { samplers::parse_last_step(v); });
  for (const auto& v : channels)
    validate("cfg_channels", v, [&] { samplers::parse_cfg_channels(v); });
  auto check_numbers = [&](const char* key, const auto& values, const Range& range) {
    for (double v : values) {
      const std::string bad = range.check(static_cast<double>(v));
      if (!bad.empty()) fail(where(path, *grid->get(key)), ": '", key, "': ", bad);
    }
  };
  check_numbers("diffusion_norm", norms, not_below(0));
  check_numbers("last_step_size", sizes, between(0, 1, true, true));
  check_numbers("cfg_scale", scales, not_below(0));
  if (grid->get("atol")) check_numbers("atol", std::vector<double>{atol}, greater_than(0));
  if (grid->get("rtol")) check_numbers("rtol", std::vector<double>{rtol}, greater_than(0));
  auto canonicalise = [](std::vector<std::string>& values, const char* key, const char* mode) {
    for (auto& v : values)
      v = canonical_name(key, v, mode);
  };
  canonicalise(paths, "path_type", "");
  canonicalise(preds, "prediction", "");
  canonicalise(ode_methods, "method", "ODE");
  canonicalise(sde_methods, "method", "SDE");
  canonicalise(forms, "diffusion_form", "");
  canonicalise(lasts, "last_step", "");
  canonicalise(channels, "cfg_channels", "");
  for (int64_t s : ode_steps)
    if (s < 2) fail(where(path, *grid->get("ode_steps")), ": ode_steps must be >= 2, got ", s);
  for (int64_t s : sde_steps)
    if (s < 2) fail(where(path, *grid->get("sde_steps")), ": sde_steps must be >= 2, got ", s);
  if (ode_methods.empty() && sde_methods.empty())
    fail(where(path, *grid), ": [grid] needs ode_methods and/or sde_methods");

  std::vector<SweepConfig> all;
  for (const auto& p : paths)
    for (const auto& pr : preds)
      for (double scale : scales)
        for (const auto& ch : scale == 1.0 ? std::vector<std::string>{"3"} : channels) {
          SweepConfig base;
          base.path_type = p;
          base.prediction = pr;
          base.cfg_scale = scale;
          base.cfg_channels = ch;
          for (const auto& m : ode_methods)
            for (int64_t steps : ode_steps) {
              SweepConfig c = base;
              c.mode = "ODE";
              c.method = m;
              c.num_steps = m == "dopri5" ? 2 : steps;  // dopri5 chooses its own steps
              c.atol = atol;
              c.rtol = rtol;
              all.push_back(c);
            }
          for (const auto& m : sde_methods)
            for (int64_t steps : sde_steps)
              for (const auto& f : forms)
                for (double norm : norms)
                  for (const auto& last : lasts)
                    for (double h : sizes) {
                      SweepConfig c = base;
                      c.mode = "SDE";
                      c.method = m;
                      c.num_steps = steps;
                      c.diffusion_form = f;
                      c.diffusion_norm = norm;
                      c.last_step = last;
                      c.last_step_size = h;
                      all.push_back(c);
                    }
        }

  // [[exclude]] rules: a configuration matching every key of a rule is dropped.
  std::vector<std::map<std::string, std::string>> rules;
  if (const toml::node* ex = tbl.get("exclude")) {
    const toml::array* arr = ex->as_array();
    if (!arr) fail(where(path, *ex), ": 'exclude' must be [[exclude]] tables");
    for (const auto& r : *arr) {
      const toml::table* t = r.as_table();
      if (!t) fail(where(path, r), ": each [[exclude]] must be a table");
      check_keys(path, *t, "exclude", kRuleKeys);
      std::map<std::string, std::string> rule;
      for (const auto& [k, v] : *t) {
        if (const auto s = v.value<std::string>())
          rule[std::string(k.str())] = *s;
        else if (const auto i = v.value<int64_t>(); i && v.is_integer())
          rule[std::string(k.str())] = std::to_string(*i);
        else if (const auto d = v.value<double>())
          rule[std::string(k.str())] = python_repr(*d);
        else
          fail(where(path, v), ": exclude '", k.str(), "' must be a string or a number");
      }
      rules.push_back(std::move(rule));
    }
  }
  std::set<std::string> seen;
  for (const auto& c : all) {
    bool excluded = false;
    for (const auto& rule : rules) {
      bool match = true;
      for (const auto& [k, v] : rule)
        match = match && field_matches(c, k, v);
      excluded = excluded || match;
    }
    if (excluded || !seen.insert(c.id()).second) continue;  // dopri5 step lists collapse
    spec.configs.push_back(c);
  }
  // [[include]] tables add configurations outside the grid (after the excludes).
  if (const toml::node* inc = tbl.get("include")) {
    const toml::array* arr = inc->as_array();
    if (!arr) fail(where(path, *inc), ": 'include' must be [[include]] tables");
    for (const auto& node : *arr) {
      const toml::table* t = node.as_table();
      if (!t) fail(where(path, node), ": each [[include]] must be a table");
      check_keys(path, *t, "include",
                 {"mode", "path_type", "prediction", "method", "num_steps", "atol", "rtol",
                  "diffusion_form", "diffusion_norm", "last_step", "last_step_size", "cfg_scale",
                  "cfg_channels"});
      auto text = [&](const char* key, const char* fallback) {
        const toml::node* n = t->get(key);
        if (!n) return std::string(fallback);
        const auto v = n->value<std::string>();
        if (!v) fail(where(path, *n), ": include '", key, "' must be a string");
        return *v;
      };
      auto number = [&](const char* key, double fallback) {
        const toml::node* n = t->get(key);
        if (!n) return fallback;
        const auto v = n->value<double>();
        if (!v) fail(where(path, *n), ": include '", key, "' must be a number");
        return *v;
      };
      SweepConfig c;
      c.mode = canonical_name("mode", text("mode", ""), "");
      if (c.mode != "ODE" && c.mode != "SDE")
        fail(where(path, node), ": include 'mode' must be \"ODE\" or \"SDE\", got '", c.mode, "'");
      c.path_type = text("path_type", "Linear");
      c.prediction = text("prediction", "velocity");
      c.method = text("method", c.mode == "ODE" ? "dopri5" : "Euler");
      c.num_steps = static_cast<int64_t>(number("num_steps", c.mode == "ODE" ? 50 : 250));
      c.atol = number("atol", 1e-6);
      c.rtol = number("rtol", 1e-3);
      if (c.mode == "SDE") {
        c.diffusion_form = text("diffusion_form", "sigma");
        c.diffusion_norm = number("diffusion_norm", 1.0);
        c.last_step = text("last_step", "Mean");
        c.last_step_size = number("last_step_size", 0.04);
      }
      c.cfg_scale = number("cfg_scale", 1.0);
      c.cfg_channels = text("cfg_channels", "3");
      try {
        c.path_type = canonical_name("path_type", c.path_type, c.mode);
        c.prediction = canonical_name("prediction", c.prediction, c.mode);
        c.method = canonical_name("method", c.method, c.mode);
        if (c.mode == "SDE") {
          c.diffusion_form = canonical_name("diffusion_form", c.diffusion_form, c.mode);
          c.last_step = canonical_name("last_step", c.last_step, c.mode);
        }
        c.cfg_channels = canonical_name("cfg_channels", c.cfg_channels, c.mode);
      } catch (const Error& e) {
        fail(where(path, node), ": include: ", e.what());
      }
      const std::vector<std::pair<const char*, Range>> ranges = {
          {"num_steps", at_least(2)},       {"atol", greater_than(0)},
          {"rtol", greater_than(0)},        {"diffusion_norm", not_below(0)},
          {"last_step_size", between(0, 1, true, true)}, {"cfg_scale", not_below(0)}};
      for (const auto& [key, range] : ranges)
        if (const toml::node* n = t->get(key)) {
          const std::string bad = range.check(number(key, 0));
          if (!bad.empty()) fail(where(path, *n), ": include '", key, "': ", bad);
        }
      if (seen.insert(c.id()).second) spec.configs.push_back(c);
    }
  }
  if (spec.configs.empty()) fail(path, ": the grid expands to no configuration");
  // Impossible combinations: guidance needs a class-conditional model.
  if (analytic && models::GaussianMixture::from_spec(spec.model).num_classes() == 0)
    for (const auto& c : spec.configs)
      if (c.cfg_scale != 1.0) {
        const toml::node* n = grid->get("cfg_scale");
        fail(n ? where(path, *n) : path, ": cfg_scale ", python_repr(c.cfg_scale),
             " needs a "
             "class-conditional model, and ",
             spec.model, " is unconditional");
      }
  return spec;
}

}  // namespace sit::eval
