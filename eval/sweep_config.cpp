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
#include "common/toml_where.h"
#include "eval/metric_table.h"
#include "reference_stats/feature_set.h"
#include "models/device.h"
#include "eval/generator.h"
#include "eval/protocols.h"
#include "models/feature_extractor.h"
#include "models/vae.h"
#include "models/vit_extractors.h"
#include "samplers/diffusion.h"
#include "samplers/field.h"
#include "samplers/interval.h"
#include "samplers/names.h"
#include "samplers/ode.h"
#include "samplers/sampler.h"
#include "samplers/sde.h"

namespace sit::eval {
namespace {

/// The text of a TOML scalar: a string as is, an integer in digits, a float in shortest
/// round-trip form (so field parsers see one text form from TOML and from the CLI).
std::string scalar_text(const std::string& file, const toml::node& v, const std::string& what) {
  if (const auto s = v.value_exact<std::string>()) return *s;
  if (const auto b = v.value_exact<bool>()) return *b ? "true" : "false";
  if (v.is_integer()) return std::to_string(*v.value<int64_t>());
  if (v.is_floating_point()) return python_repr(*v.value<double>());
  fail(toml_where(file, v), ": ", what, " must be a string or a number, got ", v.type());
}

/// Fields a family's own grid keys set (ode_methods, ode_steps, ddpm_respacing, ...).
bool family_key(const std::string& key) {
  return key == "mode" || key == "method" || key == "num_steps" || key == "respacing";
}

/// The values of a grid axis (a TOML array, or a single value), as text.
std::vector<std::string> value_texts(const std::string& file, const toml::node& n,
                                     const char* key, bool numeric) {
  std::vector<std::string> out;
  auto take = [&](const toml::node& v) {
    if (numeric ? !v.is_number() : !(v.is_string() || v.is_boolean()))
      fail(toml_where(file, v), ": '", key, "' must hold ", numeric ? "numbers" : "strings");
    out.push_back(scalar_text(file, v, cat("'", key, "'")));
  };
  if (const auto* a = n.as_array()) {
    for (const auto& v : *a)
      take(v);
  } else {
    take(n);
  }
  if (out.empty()) fail(toml_where(file, n), ": '", key, "' must not be empty");
  return out;
}

void check_keys(const std::string& file, const toml::table& t, const char* section,
                const std::set<std::string>& allowed) {
  for (const auto& [key, node] : t)
    if (!allowed.count(std::string(key.str()))) {
      std::string list;
      for (const auto& a : allowed)
        list += (list.empty() ? "" : ", ") + a;
      fail(toml_where(file, node), ": unknown key '", key.str(), "' in [", section, "] (expected ", list,
           ")");
    }
}

}  // namespace

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
  // A protocol preset is a configuration of its own: the grid then only varies it.
  const Protocol* protocol = nullptr;
  if (const toml::node* n = sweep->get("protocol")) {
    const auto name = n->value<std::string>();
    if (!name) fail(toml_where(path, *n), ": 'protocol' must be a string (", protocol_names(), ")");
    protocol = in_context(toml_where(path, *n), [&] { return &find_protocol(*name); });
  }
  static const toml::table kNoGrid;
  if (!grid && protocol) grid = &kNoGrid;
  if (!grid) fail(path, ": needs a [grid] table (path_type, prediction, methods, steps, ...)");
  check_keys(path, *sweep, "sweep",
             {"name", "model", "samples", "reference_samples", "global_seed", "batch_size",
              "device", "precision", "out", "metrics", "ckpt", "vae", "image_size", "num_classes",
              "reference", "save_images", "inception", "extractor", "dinov2", "clip",
              "dinov2_resize", "guide_model", "guide_ckpt", "quantization", "protocol"});
  {
    // every sampler field but those the family keys set
    std::set<std::string> keys = {"ode_methods", "ode_steps",      "sde_methods",
                                  "sde_steps",   "ddpm_respacing", "ddim_respacing"};
    for (const auto& f : sampler_fields())
      if (!family_key(f.key)) keys.insert(f.key);
    check_keys(path, *grid, "grid", keys);
  }

  SweepSpec spec;
  spec.source = path;
  auto str = [&](const char* key, std::string fallback) {
    const toml::node* n = sweep->get(key);
    if (!n) return fallback;
    const auto v = n->value<std::string>();
    if (!v) fail(toml_where(path, *n), ": '", key, "' must be a string");
    return *v;
  };
  auto integer = [&](const char* key, int64_t fallback, int64_t min) {
    const toml::node* n = sweep->get(key);
    if (!n) return fallback;
    const auto v = n->value<int64_t>();
    if (!v || !n->is_integer())
      fail(toml_where(path, *n), ": '", key, "': expected ", at_least(min).describe(), ", got ",
           n->type());
    const std::string bad = at_least(min).check(static_cast<double>(*v));
    if (!bad.empty()) fail(toml_where(path, *n), ": '", key, "': ", bad);
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
  spec.guide_model = str("guide_model", "");
  spec.guide_ckpt = str("guide_ckpt", "");
  spec.quantization = lowercase(str("quantization", protocol ? protocol->quantization : ""));
  if (protocol) spec.protocol = protocol->name;
  if (const toml::node* n = sweep->get("quantization"))
    in_context(toml_where(path, *n), [&] { return models::parse_quantization(spec.quantization); });
  spec.inception = str("inception", "");
  spec.extractor = str("extractor", "inception");
  if (const toml::node* n = sweep->get("extractor")) {
    if (!models::find_extractor_kind(spec.extractor))
      fail(toml_where(path, *n), ": 'extractor' must be one of ", models::extractor_kind_names(),
           ", got '", spec.extractor, "'");
    if (spec.extractor != "inception")
      fail(toml_where(path, *n), ": 'extractor' names the kind of the 'inception' file; give a ",
           spec.extractor, " file as ", spec.extractor, " = \"FILE\" instead");
  }
  spec.dinov2 = str("dinov2", "");
  spec.clip = str("clip", "");
  spec.dinov2_resize = str("dinov2_resize", "pil");
  if (const toml::node* n = sweep->get("dinov2_resize"))
    in_context(toml_where(path, *n), [&] { return models::parse_resize_mode(spec.dinov2_resize); });
  spec.reference = str("reference", "");
  spec.save_images = str("save_images", "none");
  spec.image_size = integer("image_size", 0, 0);
  spec.num_classes = integer("num_classes", 0, 0);
  const bool analytic = in_context(toml_where(path, *sweep->get("model")),
                                   [&] { return model_kind(spec.model).analytic; });
  if (analytic ? spec.precision != "fp32" && spec.precision != "fp64"
               : spec.precision != "fp32" && spec.precision != "tf32" && spec.precision != "bf16")
    fail(toml_where(path, *sweep->get("precision")), ": 'precision' must be ",
         analytic ? "fp32 or fp64 for an analytic model" : "fp32, tf32 or bf16 for a network",
         ", got '", spec.precision, "'");
  if (spec.save_images != "none" && spec.save_images != "png" && spec.save_images != "npz")
    fail(toml_where(path, *sweep->get("save_images")), ": 'save_images' must be none, png or npz, got '",
         spec.save_images, "'");
  if (protocol && !analytic &&
      std::string(model_kind(spec.model).prefix) != protocol->model)
    fail(toml_where(path, *sweep->get("protocol")), ": protocol ", protocol->name, " samples ",
         protocol->model, ": models; model ", spec.model, " is a ", model_kind(spec.model).prefix,
         ": model");
  if (!analytic && spec.ckpt.empty())
    fail(path, ": [sweep] model ", spec.model, " needs 'ckpt' (the checkpoint file)");
  if (analytic)
    for (const char* key : {"ckpt", "vae", "image_size", "num_classes", "inception", "extractor",
                            "dinov2", "clip", "dinov2_resize", "quantization"})
      if (const toml::node* n = sweep->get(key))
        fail(toml_where(path, *n), ": '", key, "' does not apply to the analytic model ", spec.model);
  for (const char* key : {"inception", "dinov2", "clip"})
    if (const toml::node* n = sweep->get(key); n && spec.vae.empty())
      fail(toml_where(path, *n), ": '", key, "' needs a model with images ('vae')");
  if (spec.save_images != "none" && spec.vae.empty())
    fail(toml_where(path, *sweep->get("save_images")),
         ": 'save_images' needs a model with images ('vae')");
  if (const toml::node* n = sweep->get("device")) {
    try {
      models::check_device(spec.device, "'device'");
    } catch (const Error& e) {
      fail(toml_where(path, *n), ": ", e.what());
    }
  }
  spec.samples = integer("samples", protocol ? protocol->num_samples : 1000, 2);
  spec.reference_samples = integer("reference_samples", spec.samples, 2);
  spec.batch_size = integer("batch_size", 500, 1);
  spec.seed = static_cast<uint64_t>(integer("global_seed", 0, 0));
  if (const toml::node* n = sweep->get("metrics"))
    spec.metrics = value_texts(path, *n, "metrics", /*numeric=*/false);
  {
    std::string list;
    for (const auto& m : spec.metrics)
      list += m + ",";
    const toml::node* node = sweep->get("metrics");
    spec.metrics = in_context(node ? toml_where(path, *node) + ": 'metrics'" : path,
                              [&] { return parse_metric_list(list); });
  }
  // DINOv2 and CLIP run beside Inception, whose pool features are a run's primary ones
  // (streamed statistics, bootstrap pairing).
  for (const char* key : {"dinov2", "clip"})
    if (const toml::node* n = sweep->get(key); n && spec.inception.empty())
      fail(toml_where(path, *n), ": '", key, "' runs beside Inception: give 'inception' too");
  // The blocks the run's features have: Inception's with 'inception' (and DINOv2's, CLIP's),
  // else one block of data-space or latent features.
  std::set<std::string> blocks = spec.inception.empty()
                                     ? std::set<std::string>{io::kPool}
                                     : std::set<std::string>{io::kPool, io::kSpatial, io::kLogits};
  if (!spec.dinov2.empty()) blocks.insert("dinov2");
  if (!spec.clip.empty()) blocks.insert("clip");
  for (const auto& key : spec.metrics) {
    const Metric& m = metric(key);
    for (const MetricInput& in : m.inputs)
      if (in.side == MetricInput::kSamples && !blocks.count(in.block)) {
        const auto* kind = models::extractor_kind_of_block(in.block);
        const std::string file = kind ? kind->name : "inception";
        fail(toml_where(path, sweep->get("metrics") ? *sweep->get("metrics") : *sweep), ": '", key,
             "' needs the '", in.block, "' features of ", file, " (a model with 'vae' and '",
             file, "'); ", spec.model,
             analytic ? " is an analytic model" : " has no '" + file + "'");
      }
    if (std::string(m.computed_with) == "precision" || key == "precision")
      if (std::min(spec.samples, spec.reference_samples) < 4)
        fail(path, ": '", key, "' needs at least k + 1 = 4 samples and reference_samples, got ",
             spec.samples, " and ", spec.reference_samples);
  }

  // The configuration a family's grid starts from: the protocol's for its family.
  auto base_spec = [&](samplers::SamplerFamily family) {
    return protocol && protocol->family == family ? protocol_spec(*protocol)
                                                  : default_sampler_spec(family);
  };
  // Expand the grid; every value is parsed by its field's row.
  using samplers::SamplerFamily;
  struct Axis {
    const SamplerField* field;
    std::vector<std::string> values;  ///< canonical text
  };
  // An axis of `key` (a value or an array) for `field`, each value parsed on a probe of
  // `family` and kept in canonical spelling.
  auto grid_axis = [&](const char* key, const SamplerField& field, SamplerFamily family,
                       std::vector<std::string> fallback) {
    Axis a{&field, {}};
    const toml::node* n = grid->get(key);
    if (!n) {
      a.values = std::move(fallback);
      return a;
    }
    for (const std::string& text : value_texts(path, *n, key, field.numeric)) {
      SamplerSpec probe = default_sampler_spec(family);
      in_context(cat(toml_where(path, *n), ": '", key, "'"), [&] { field.set(probe, text); });
      a.values.push_back(field.print(probe));
    }
    return a;
  };
  const std::pair<SamplerFamily, const char*> family_keys[] = {{SamplerFamily::kOde, "ode"},
                                                               {SamplerFamily::kSde, "sde"},
                                                               {SamplerFamily::kDdpm, "ddpm"},
                                                               {SamplerFamily::kDdim, "ddim"}};
  std::vector<Axis> shared;  // axes of fields several families have, outermost first
  std::map<SamplerFamily, std::vector<Axis>> own;  // method, steps, the family's fields
  for (const auto& [family, prefix] : family_keys) {
    if (samplers::is_discrete(family)) {
      const std::string respacing = cat(prefix, "_respacing");
      if (grid->get(respacing))
        own[family].push_back(
            grid_axis(respacing.c_str(), *find_sampler_field("respacing"), family, {}));
      continue;
    }
    const std::string methods = cat(prefix, "_methods"), steps = cat(prefix, "_steps");
    const bool preset = protocol && protocol->family == family;
    if (!grid->get(methods) && !(preset && grid->get(steps))) {
      if (const toml::node* n = grid->get(steps))
        fail(toml_where(path, *n), ": '", steps, "' needs '", methods, "' (the methods to run)");
      continue;
    }
    const SamplerSpec defaults = base_spec(family);
    // a preset's family: its own method unless the grid names others
    own[family].push_back(grid_axis(methods.c_str(), *find_sampler_field("method"), family,
                                    preset ? std::vector<std::string>{defaults.stepper().name}
                                           : std::vector<std::string>{}));
    own[family].push_back(grid_axis(steps.c_str(), *find_sampler_field("num_steps"), family,
                                    {std::to_string(defaults.config.num_steps)}));
  }
  if (protocol && !own.count(protocol->family)) own[protocol->family] = {};  // the preset itself
  if (own.empty())
    fail(toml_where(path, *grid),
         ": [grid] needs ode_methods, sde_methods, ddpm_respacing and/or ddim_respacing");
  for (const auto& f : sampler_fields()) {
    if (family_key(f.key) || !grid->get(f.key)) continue;
    std::vector<SamplerFamily> families;  // every family the field applies to
    for (const auto& [family, prefix] : family_keys)
      if (f.applies_to(family)) families.push_back(family);
    if (families.size() > 1) {
      // first family the field has: a probe to parse the values on
      shared.push_back(grid_axis(f.key, f, families.front(), {}));
    } else if (own.count(families.front())) {
      own[families.front()].push_back(grid_axis(f.key, f, families.front(), {}));
    }
  }
  // The grid's combinations before excludes and duplicates are dropped, counted before
  // any is made: a few array axes multiply past what a run could sample or memory hold.
  {
    double combinations = 0;  // a double: 40 axes of 10 values do not wrap
    for (const auto& [family, axes] : own) {
      double n = 1;
      for (const Axis& a : axes) n *= static_cast<double>(a.values.size());
      combinations += n;
    }
    for (const Axis& a : shared) combinations *= static_cast<double>(a.values.size());
    if (combinations > kMaxGridCombinations)
      fail(toml_where(path, *grid), ": the grid expands to ",
           combinations < 1e18 ? std::to_string(static_cast<int64_t>(combinations)) : "over 10^18",
           " combinations, more than ", kMaxGridCombinations,
           " (before [[exclude]]): split the sweep into several files");
  }
  // Every combination of `axes`, first axis outermost.
  const std::function<void(const std::vector<Axis>&, size_t, SamplerSpec&,
                           const std::function<void(SamplerSpec&)>&)>
      cross = [&](const std::vector<Axis>& axes, size_t i, SamplerSpec& s,
                  const std::function<void(SamplerSpec&)>& emit) {
        if (i == axes.size()) return emit(s);
        for (const auto& v : axes[i].values) {
          SamplerSpec t = s;
          axes[i].field->set(t, v);
          cross(axes, i + 1, t, emit);
        }
      };
  std::vector<SamplerSpec> all;
  SamplerSpec start;
  cross(shared, 0, start, [&](SamplerSpec& common) {
    for (const auto& [family, axes] : own) {
      SamplerSpec s = base_spec(family);
      for (const Axis& a : shared)
        if (a.field->applies_to(family)) a.field->set(s, a.field->print(common));
      cross(axes, 0, s, [&](SamplerSpec& c) {
        normalise(c);
        all.push_back(c);
      });
    }
  });

  // [[exclude]] rules: a configuration matching every key of a rule is dropped.
  std::set<std::string> rule_keys;
  for (const auto& f : sampler_fields())
    rule_keys.insert(f.key);
  std::vector<std::map<std::string, std::string>> rules;
  if (const toml::node* ex = tbl.get("exclude")) {
    const toml::array* arr = ex->as_array();
    if (!arr) fail(toml_where(path, *ex), ": 'exclude' must be [[exclude]] tables");
    // each rule is matched against every configuration of the grid
    if (arr->size() > kMaxExcludeRules)
      fail(toml_where(path, *ex), ": ", arr->size(), " [[exclude]] rules, more than ", kMaxExcludeRules,
           ": narrow the grid instead, or split the sweep");
    for (const auto& r : *arr) {
      const toml::table* t = r.as_table();
      if (!t) fail(toml_where(path, r), ": each [[exclude]] must be a table");
      check_keys(path, *t, "exclude", rule_keys);
      std::map<std::string, std::string> rule;
      for (const auto& [k, v] : *t) {
        const std::string key(k.str());
        const std::string text = scalar_text(path, v, cat("exclude '", key, "'"));
        // a value no family's parser takes matches nothing: a typo
        const SamplerField& f = *find_sampler_field(key);
        std::string error;
        bool valid = false;
        for (auto family : samplers::all_sampler_families()) {
          if (!f.applies_to(family)) continue;
          try {
            SamplerSpec probe = default_sampler_spec(family);
            f.set(probe, text);
            valid = true;
          } catch (const Error& e) {
            if (error.find(e.what()) == std::string::npos)
              error += (error.empty() ? "" : "; ") + std::string(e.what());
          }
        }
        if (!valid) fail(toml_where(path, v), ": exclude '", key, "': ", error);
        rule[key] = text;
      }
      // a rule whose keys no one family has can never match: a mistake, not a rule
      std::string families;
      for (auto family : samplers::all_sampler_families()) {
        bool all = true;
        for (const auto& [k, text] : rule)
          all = all && (k == "mode" ? samplers::same_name(text, samplers::to_string(family))
                                    : find_sampler_field(k)->applies_to(family));
        if (all) families += "x";
      }
      if (families.empty()) {
        std::string keys;
        for (const auto& [k, text] : rule)
          keys += (keys.empty() ? "" : ", ") + k + " = " + text;
        fail(toml_where(path, r), ": this [[exclude]] rule can never match: no sampler family has all "
             "of ", keys);
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
    // duplicates collapse: dopri5 step lists, fields that do not matter for a configuration
    if (excluded || !seen.insert(c.id()).second) continue;
    spec.configs.push_back(c);
  }
  // [[include]] tables add configurations outside the grid (after the excludes).
  if (const toml::node* inc = tbl.get("include")) {
    const toml::array* arr = inc->as_array();
    if (!arr) fail(toml_where(path, *inc), ": 'include' must be [[include]] tables");
    for (const auto& node : *arr) {
      const toml::table* t = node.as_table();
      if (!t) fail(toml_where(path, node), ": each [[include]] must be a table");
      check_keys(path, *t, "include", rule_keys);
      const toml::node* mode = t->get("mode");
      if (!mode) fail(toml_where(path, node), ": include needs 'mode' (\"ODE\", \"SDE\", \"DDPM\" or \"DDIM\")");
      SamplerSpec c;
      in_context(cat(toml_where(path, *mode), ": include 'mode'"), [&] {
        c = default_sampler_spec(
            samplers::parse_sampler_family(scalar_text(path, *mode, "include 'mode'")));
      });
      for (const auto& f : sampler_fields()) {
        const toml::node* n = t->get(f.key);
        if (!n || std::string(f.key) == "mode") continue;
        const std::string context = cat(toml_where(path, *n), ": include '", f.key, "'");
        if (!f.applies_to(c.family()))
          fail(context, " does not apply to ", samplers::to_string(c.family()), " sampling");
        const std::string text = scalar_text(path, *n, cat("include '", f.key, "'"));
        if (f.numeric != n->is_number())
          fail(context, " must be a ", f.numeric ? "number" : "string", ", got ", n->type());
        in_context(context, [&] { f.set(c, text); });
      }
      normalise(c);
      if (seen.insert(c.id()).second) spec.configs.push_back(c);
    }
  }
  if (spec.configs.empty()) fail(path, ": the grid expands to no configuration");
  // A loss table is read now, not when its configuration runs.
  for (const auto& c : spec.configs) {
    if (c.config.sde_options.diffusion.form == samplers::DiffusionForm::kKlEta &&
        c.loss_table.empty())
      fail(path, ": configuration ", c.label(),
           ": diffusion_form kl-eta needs 'loss_table' (a CSV 't,L' of the model's loss)");
    in_context(cat(path, ": configuration ", c.label()), [&] { c.resolved(0); });
  }
  // Impossible combinations: guidance needs a class-conditional model.
  if (analytic && in_context(path, [&] {
        GeneratorSettings settings;  // an analytic model is cheap to build
        settings.model = spec.model;
        return Generator::create(settings)->num_classes();
      }) == 0)
    for (const auto& c : spec.configs)
      if (c.config.guidance.scale != 1.0 &&
          c.config.guidance.kind == samplers::GuidanceKind::kCfg) {
        const toml::node* n = grid->get("cfg_scale");
        fail(n ? toml_where(path, *n) : path, ": cfg_scale ", c.value("cfg_scale"),
             " needs a "
             "class-conditional model, and ",
             spec.model, " is unconditional");
      }
  // ... and what else the model cannot take (learned-range variance on an eps-only
  // mixture, a null class that is not its unconditional label), before any work
  if (analytic) {
    GeneratorSettings settings;
    settings.model = spec.model;
    settings.guide_model = spec.guide_model;
    settings.guide_ckpt = spec.guide_ckpt;
    const auto model = in_context(path, [&] { return Generator::create(settings); });
    const auto guide = in_context(path, [&] { return Generator::create_guide(settings, *model); });
    for (const auto& c : spec.configs)
      in_context(cat(path, ": configuration ", c.label()),
                 [&] { check_sampler(c, *model, guide.get()); });
  }
  return spec;
}

}  // namespace sit::eval
