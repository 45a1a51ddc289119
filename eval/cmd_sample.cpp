// sit-eval sample {ODE|SDE|DDPM|DDIM}: draws samples from a model with one sampler configuration.
#include <ATen/ATen.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cctype>
#include <iostream>
#include <map>
#include <numeric>
#include <optional>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/format.h"
#include "eval/cli_checks.h"
#include "eval/commands.h"
#include "eval/generator.h"
#include "eval/protocols.h"
#include "eval/sampler_spec.h"
#include "eval/sweep.h"
#include "reference_stats/image_writer.h"
#include "reference_stats/npy.h"
#include "samplers/names.h"
#include "samplers/sampler.h"

namespace sit::eval {
namespace {

struct SampleArgs {
  std::string model, out = "samples.npz", noise, labels, device = "cpu", precision = "fp32";
  std::string ckpt, vae, sample_dir, save_latents, guide_model, guide_ckpt, quantization;
  std::string protocol;  ///< a preset (eval/protocols.h); "" none
  int64_t image_size = 0, num_classes = 0, num_samples = 0, batch_size = 32;  // 0: unset
  uint64_t seed = 0;
  /// The sampler: every field of the table that applies to the family, as given.
  samplers::SamplerFamily family = samplers::SamplerFamily::kOde;
  std::map<std::string, std::string> fields;
  CLI::App* cmd = nullptr;
};

/// "euler, midpoint, heun2 (heun), rk4, dopri5": the family's steppers from their rows.
std::string method_help(samplers::SamplerFamily family) {
  std::string names;
  auto add = [&](const samplers::StepperInfo& s) {
    names += (names.empty() ? "" : ", ") + std::string(s.name);
    for (const char* alias : s.aliases)
      names += std::string(" (") + alias + ")";
  };
  if (family == samplers::SamplerFamily::kOde)
    for (const auto& s : samplers::ode_steppers())
      add(s);
  else
    for (const auto& s : samplers::sde_steppers())
      add(s);
  return "integrator: " + names;
}

/// One option per sampler field of the family (the field table's flag, help and range).
void add_sampler_options(CLI::App* cmd, SampleArgs& a) {
  const SamplerSpec defaults = default_sampler_spec(a.family);
  for (const auto& f : sampler_fields()) {
    if (!*f.flag) continue;
    if (!f.applies_to(a.family)) {
      // hidden: given, it is refused with the reason (sampler_spec), not as an unknown flag
      cmd->add_option(f.flag, a.fields[f.key])->group("");
      continue;
    }
    std::string help = f.help;
    if (std::string(f.key) == "method") help = method_help(a.family);
    CLI::Option* o = cmd->add_option(f.flag, a.fields[f.key], help);
    o->type_name(f.integer ? "INT" : f.numeric ? "FLOAT" : "TEXT");
    if (const std::string d = f.print(defaults); !d.empty()) o->default_str(d);
    if (f.numeric) o->check(valid(f.range));
  }
}

/// The spec the flags describe: the family's defaults with every given flag applied. A
/// flag that does not matter for this configuration (--atol for euler, --null-class
/// without guidance) is noted on stderr and takes no effect.
SamplerSpec sampler_spec(const SampleArgs& a) {
  SamplerSpec spec = default_sampler_spec(a.family);
  if (a.cmd->get_option("--protocol")->count() > 0 && a.protocol.empty())
    fail("--protocol: expected a protocol name (", protocol_names(), "), got ''");
  if (!a.protocol.empty()) {  // the preset, then the flags given override it
    const Protocol& p = *in_context("--protocol", [&] { return &find_protocol(a.protocol); });
    if (p.family != a.family)
      fail("--protocol ", p.name, " samples with ", samplers::to_string(p.family),
           ": run 'sit-eval sample ", samplers::to_string(p.family), " --protocol ", p.name, "'");
    spec = protocol_spec(p);
  }
  for (const auto& f : sampler_fields())
    if (*f.flag && !f.applies_to(a.family) && a.cmd->get_option(f.flag)->count() > 0) {
      std::string families;
      for (auto family : samplers::all_sampler_families())
        if (f.applies_to(family))
          families += (families.empty() ? "" : "/") + std::string(samplers::to_string(family));
      const bool time_form = std::string(f.key) == "guidance_interval" ||
                             std::string(f.key) == "cfg_interval_start" ||
                             std::string(f.key) == "cfg_schedule";
      fail(f.flag, " does not apply to ", samplers::to_string(a.family), " sampling (it sets ",
           f.key, " of ", families, ")",
           time_form ? "; it is in code time t in [0, 1], and DDPM/DDIM step on DiT's integer "
                       "timesteps: use --guidance-steps FIRST,LAST"
                     : "");
    }
  std::vector<const SamplerField*> given;
  for (const auto& f : sampler_fields())
    if (*f.flag && f.applies_to(a.family) && a.cmd->get_option(f.flag)->count() > 0) {
      in_context(f.flag, [&] { f.set(spec, a.fields.at(f.key)); });
      given.push_back(&f);
    }
  for (const SamplerField* f : given)
    if (f->relevant && !f->relevant(spec))
      std::cerr << "note: " << f->flag << " does not apply to " << spec.label()
                << " (ignored)\n";
  normalise(spec);
  return spec;
}

void add_shared_options(CLI::App* cmd, SampleArgs& a) {
  a.cmd = cmd;
  cmd->add_option("--model", a.model,
                  "gmm:PRESET (bernoulli1d, mix1d, demo), gmm:FILE.toml, sit:SiT-XL/2 (any "
                  "SiT-{S,B,L,XL}/{2,4,8}; 'sit' alone detects it from --ckpt) for ODE/SDE, or "
                  "dit:DiT-XL/2 ('dit' alone detects) for DDPM/DDIM")
      ->required();
  cmd->add_option("--ckpt", a.ckpt,
                  "SiT/DiT checkpoint: torch.save .pt (plain, or ema/model "
                  "entry of a training checkpoint) or .safetensors");
  cmd->add_option("--guide-model", a.guide_model,
                  "autoguidance (--guidance autoguidance): the guiding network, a weaker model "
                  "of the same kind, classes and latent shape (e.g. gmm:FILE.toml, sit:SiT-S/2)");
  cmd->add_option("--guide-ckpt", a.guide_ckpt, "the guiding network's checkpoint");
  cmd->add_option("--protocol", a.protocol,
                  "a published protocol preset (" + protocol_names() +
                      "): every sampler setting, the sample count and the uint8 rule; flags "
                      "given override it (shown with the run's fingerprint)");
  cmd->add_option("--quantization", a.quantization,
                  "uint8 rule of decoded images: dit (clamp(127.5 x + 128), DiT/SiT/LightningDiT) "
                  "or repa (clamp(255 (x + 1) / 2), half a level lower); default: the model's")
      ->transform(lowercase());
  cmd->add_option("--vae", a.vae,
                  "Stable Diffusion VAE: diffusers folder with config.json and "
                  "diffusion_pytorch_model.safetensors or .bin (e.g. sd-vae-ft-ema)");
  cmd->add_option("--image-size", a.image_size,
                  "image side in pixels (latent side = image size / VAE factor 8); default: "
                  "the checkpoint's")
      ->check(valid(integers(8, 8192)));
  cmd->add_option("--num-classes", a.num_classes,
                  "classes of the model (checked against the checkpoint's label table)")
      ->check(valid(at_least(1)));
  cmd->add_option("--sample-dir", a.sample_dir, "also write PNG images DIR/000000.png, ...");
  cmd->add_option("--save-latents", a.save_latents,
                  "also write the final latents: .npz with latents (N, C, h, w), labels, nfe");
  add_sampler_options(cmd, a);
  cmd->add_option("--global-seed", a.seed, "seed; sample i depends only on (seed, i)")
      ->capture_default_str()
      ->check(valid_seed());
  cmd->add_option("--num-samples", a.num_samples,
                  "samples to draw (default 64, or the rows of --noise)")
      ->check(valid(integers(1, 100000000)));
  cmd->add_option("--batch-size", a.batch_size, "samples per batch (results do not depend on it)")
      ->capture_default_str()
      ->check(valid(at_least(1)));
  cmd->add_option("--noise", a.noise, "initial states, .npy with one row per sample");
  cmd->add_option("--labels", a.labels, "labels, .npy with one integer per sample");
  cmd->add_option("--out", a.out,
                  "output .npz: analytic models: samples, labels, nfe; image models: the ADM "
                  "evaluator's layout, arr_0 uint8 (N, H, W, 3) and arr_1 labels")
      ->capture_default_str();
  cmd->add_option("--device", a.device, "cpu, cuda, cuda:N")
      ->capture_default_str()
      ->transform(lowercase());
  cmd->add_option("--precision", a.precision,
                  "analytic models: state precision fp32 or fp64; networks: fp32 (TF32 off, "
                  "as the papers), tf32 or bf16")
      ->capture_default_str()
      ->transform(lowercase());
}

int run_sample(const SampleArgs& a) {
  // One process writes one --out. Under a launcher with several ranks every rank would
  // write the same file; a sweep shards instead (README "Reproducing published numbers").
  if (const Shard shard = shard_from_environment(); shard.count > 1)
    fail("sample runs as one process, but the launcher started ", shard.count,
         " (this is rank ", shard.index, "): every rank would write ", a.out,
         ". Shard with a sweep: 'sit-eval sweep FILE.toml --save-images npz' under the same "
         "launcher splits the batches across ranks and writes RUN/images/ID.npz, "
         "byte-identical to one process (e.g. configs/sit_xl2_sde_fid50k.toml)");
  const bool sde = a.family == samplers::SamplerFamily::kSde;
  using namespace sit::samplers;
  GeneratorSettings settings;
  settings.model = a.model;
  settings.ckpt = a.ckpt;
  settings.vae = a.vae;
  settings.image_size = a.image_size;
  settings.num_classes = a.num_classes;
  settings.device = a.device;
  settings.precision = a.precision;  // lower-cased by the option's transform
  settings.guide_model = a.guide_model;
  settings.guide_ckpt = a.guide_ckpt;
  const Protocol* protocol = a.protocol.empty() ? nullptr : &find_protocol(a.protocol);
  settings.quantization =
      !a.quantization.empty() ? a.quantization : protocol ? protocol->quantization : "";
  if (protocol) {  // before any file is read
    const ModelKind& kind = model_kind(a.model);
    if (!kind.analytic && std::string(kind.prefix) != protocol->model)
      fail("--protocol ", protocol->name, " samples ", protocol->model, ": models; --model ",
           a.model, " is a ", kind.prefix, ": model");
    if (kind.analytic)
      std::cerr << "note: --protocol " << protocol->name << " is defined for " << protocol->model
                << ": checkpoints; on the analytic " << a.model
                << " its sampler settings apply\n";
  }
  const std::unique_ptr<Generator> generator = Generator::create(settings);
  const Generator& model = *generator;
  const bool analytic = model.mixture() != nullptr;
  const bool images = model.has_images();
  const SamplerSpec spec = sampler_spec(a);
  const std::unique_ptr<Generator> guide = Generator::create_guide(settings, model);
  // the family, variance and guidance the model takes
  check_sampler(spec, model, guide.get());
  if (guide && !(spec.config.guidance.scale != 1.0 &&
                 spec.config.guidance.kind == GuidanceKind::kAutoguidance))
    std::cerr << "note: --guide-model is used by --guidance autoguidance with --cfg-scale != 1 "
                 "only (ignored)\n";
  if (!a.quantization.empty() && !images)
    std::cerr << "note: --quantization applies to decoded images; " << model.name()
              << " writes none (ignored)\n";
  if (!analytic && !images && a.save_latents.empty())
    fail("without --vae a SiT/DiT network has no images: give --vae DIR, or --save-latents "
         "FILE.npz");
  if (analytic || images) check_output_path(a.out, "--out", {".npz"});
  if (!a.save_latents.empty()) check_output_path(a.save_latents, "--save-latents", {".npz"});
  if (!a.sample_dir.empty() && !images)
    fail("--sample-dir needs an image model (sit:... or dit:... with --vae)");
  SamplerConfig cfg = spec.resolved(model.null_class());

  const auto options = model.state_options();
  // N: --num-samples, else the rows of --noise, else 64.
  std::optional<io::NpyArray> noise_file, label_file;
  if (!a.noise.empty()) noise_file.emplace(io::open_npy(a.noise));
  const int64_t noise_rows =
      noise_file && !noise_file->shape().empty() ? noise_file->shape()[0] : 0;
  const int64_t n = a.num_samples > 0 ? a.num_samples
                    : noise_file       ? noise_rows
                    : protocol         ? protocol->num_samples
                                       : 64;
  if (protocol) {
    ProtocolRun run{protocol, spec, n, settings.quantization};
    const std::string changed = run.overrides();
    std::cerr << "protocol " << protocol->name << ": fingerprint " << run.fingerprint();
    if (changed.empty()) {
      std::cerr << " (the preset as published)\n";
    } else {
      ProtocolRun preset{protocol, protocol_spec(*protocol), protocol->num_samples,
                         protocol->quantization};
      std::cerr << "; overrides: " << changed << " (the preset's own fingerprint "
                << preset.fingerprint() << ")\n";
    }
  }
  if (n < 1) fail(a.noise, ": --noise holds no rows");
  const int64_t d = model.state_numel();
  std::vector<int64_t> state_shape = model.state_shape();
  std::vector<int64_t> all_ids(static_cast<size_t>(n));
  std::iota(all_ids.begin(), all_ids.end(), 0);

  // Optional user-supplied initial states and labels.
  if (noise_file) {
    std::vector<int64_t> want = {n};
    want.insert(want.end(), state_shape.begin(), state_shape.end());
    const auto& got = noise_file->shape();
    int64_t per_row = 1;
    for (size_t i = 1; i < got.size(); ++i)
      per_row *= got[i];
    if (got.empty() || got[0] != n || per_row != d)
      fail(a.noise, ": --noise must have shape ", shape_string(want),
           state_shape.size() > 1 ? cat(" (or (", n, ", ", d, "))") : std::string(), " for ", n,
           " samples of ", model.name(), ", got ", shape_string(got));
  }
  at::Tensor labels_all;
  if (!a.labels.empty()) {
    label_file.emplace(io::open_npy(a.labels));
    if (label_file->shape() != std::vector<int64_t>{n})
      fail(a.labels, ": --labels must have shape (", n, ",), got ",
           shape_string(label_file->shape()));
    labels_all = at::tensor(label_file->read_all<int64_t>(), at::kLong);
    const int64_t hi = std::max<int64_t>(model.num_classes(), 1);
    if ((labels_all < 0).any().item<bool>() || (labels_all >= hi + 1).any().item<bool>())
      fail(a.labels, ": labels must lie in [0, ", hi, "]");
  } else {
    labels_all = sample_labels(model.num_classes(), a.seed, all_ids);
  }

  // Outputs: analytic samples in --out; images in --out (ADM npz) and/or --sample-dir;
  // latents in --save-latents. All streamed batch by batch.
  std::optional<io::NpzWriter> out, latents;
  std::optional<io::AdmNpzWriter> adm;
  std::optional<io::PngFolderWriter> pngs;
  std::vector<int64_t> latent_shape = {n};
  latent_shape.insert(latent_shape.end(), state_shape.begin(), state_shape.end());
  if (analytic) {
    out.emplace(a.out);
    out->begin("samples", options.dtype() == at::kFloat ? io::DType::kF4 : io::DType::kF8, {n, d});
  }
  if (!a.save_latents.empty()) {
    latents.emplace(a.save_latents);
    latents->begin("latents", io::DType::kF4, latent_shape);
  }
  if (!a.sample_dir.empty()) pngs.emplace(a.sample_dir, n);
  std::vector<int64_t> nfe, nfe_uncond;
  int64_t network_calls = 0;
  Interval interval;
  for (int64_t s = 0; s < n; s += a.batch_size) {
    const int64_t b = std::min(a.batch_size, n - s);
    const std::vector<int64_t> ids(all_ids.begin() + s, all_ids.begin() + s + b);
    at::Tensor x0;  // undefined: drawn from (seed, ids)
    if (noise_file) {
      std::vector<double> rows(static_cast<size_t>(b * d));
      noise_file->read_rows(s, b, rows.data());
      std::vector<int64_t> shape = {b};
      shape.insert(shape.end(), state_shape.begin(), state_shape.end());
      x0 = at::tensor(rows, at::kDouble).view(shape);
    }
    const GeneratedBatch g = generate_batch(model, cfg, a.seed, ids, labels_all.narrow(0, s, b), x0,
                                            images, guide.get());
    const SampleResult& r = g.result;
    if (out) {
      const at::Tensor host = r.x.cpu().contiguous();
      out->append_rows(host.data_ptr(), b);
    }
    if (latents) {
      const at::Tensor host = r.x.to(at::kFloat).cpu().contiguous();
      latents->append_rows(host.data_ptr(), b);
    }
    if (images) {
      const at::Tensor& u8 = g.images;  // (b, H, W, 3)
      if (!adm) adm.emplace(a.out, n, u8.size(1), u8.size(2));
      const at::Tensor yb = labels_all.narrow(0, s, b).contiguous();
      adm->write(u8.data_ptr<uint8_t>(), b, yb.data_ptr<int64_t>());
      if (pngs) pngs->write(u8.data_ptr<uint8_t>(), b, u8.size(1), u8.size(2), s);
    }
    nfe.insert(nfe.end(), r.nfe.begin(), r.nfe.end());
    nfe_uncond.insert(nfe_uncond.end(), r.nfe_uncond.begin(), r.nfe_uncond.end());
    network_calls += r.network_calls;
    interval = r.interval;
  }
  for (auto* w : {out ? &*out : nullptr, latents ? &*latents : nullptr}) {
    if (!w) continue;
    w->end();
    w->add("labels", {n}, labels_all.contiguous().data_ptr<int64_t>());
    w->add("nfe", {n}, nfe.data());
    if (cfg.guidance.scale != 1.0) w->add("nfe_uncond", {n}, nfe_uncond.data());
    w->close();
  }
  if (adm) adm->close();

  const double mean_nfe = std::accumulate(nfe.begin(), nfe.end(), 0.0) / static_cast<double>(n);
  std::cerr << "sampled " << n << " x " << shape_string(state_shape) << " from " << model.name();
  if (is_discrete(a.family))
    std::cerr << " with " << spec.label() << " (respacing '" << cfg.discrete.respacing << "', "
              << spec.nfe_estimate() << " of " << kDiffusionSteps << " timesteps)";
  else
    std::cerr << " (" << to_string(cfg.path) << ", " << to_string(cfg.prediction) << ") with "
              << (sde ? to_string(cfg.sde_options.method) : to_string(cfg.ode.method)) << " on ["
              << interval.t0 << ", " << interval.t1 << "], "
              << (spec.stepper().adaptive ? std::string("adaptive steps")
                                          : std::to_string(cfg.num_steps) + " grid points")
              << (cfg.time_shift != 1.0 && !spec.stepper().adaptive
                      ? " shifted by " + python_repr(cfg.time_shift)
                      : std::string());
  if (sde)
    std::cerr << ", diffusion " << to_string(cfg.sde_options.diffusion.form) << " norm "
              << cfg.sde_options.diffusion.norm << " (D(t) = w(t)/2), last step "
              << to_string(cfg.sde_options.last_step);
  std::cerr << "; mean NFE " << mean_nfe << " per sample";
  if (cfg.guidance.scale != 1.0)
    std::cerr << " (" << std::accumulate(nfe_uncond.begin(), nfe_uncond.end(), 0.0) / n
              << (cfg.guidance.kind == GuidanceKind::kAutoguidance ? " with the guiding network)"
                                                                   : " guided)");
  std::cerr << ", " << network_calls << " network batch evaluations; wrote";
  for (const std::string& f :
       {analytic || images ? a.out : std::string(), pngs ? a.sample_dir + "/" : std::string(),
        latents ? a.save_latents : std::string()})
    if (!f.empty()) std::cerr << " " << f;
  std::cerr << "\n";
  if (cfg.guidance.scale != 1.0 &&
      std::all_of(nfe_uncond.begin(), nfe_uncond.end(), [](int64_t v) { return v == 0; }))
    std::cerr << "note: guidance was never on (0 guided evaluations): the guidance interval "
                 "excludes every step\n";
  return 0;
}

}  // namespace

Command add_sample_command(CLI::App& app) {
  CLI::App* cmd = app.add_subcommand(
      "sample", "draw samples with one sampler configuration: 'sample ODE|SDE|DDPM|DDIM ...'");
  cmd->require_subcommand(1);
  using samplers::SamplerFamily;
  const std::pair<SamplerFamily, const char*> families[] = {
      {SamplerFamily::kOde, "probability-flow ODE sampling (SiT, gmm:)"},
      {SamplerFamily::kSde,
       "SDE sampling: dx = [v + D s] dt + sqrt(2 D) dW in code time, D(t) = w(t)/2 where w is "
       "the paper's diffusion coefficient (SiT, gmm:)"},
      {SamplerFamily::kDdpm,
       "DiT's ancestral DDPM on respaced integer timesteps (DiT, gmm:), as DiT's sample.py"},
      {SamplerFamily::kDdim, "DiT's DDIM with eta on respaced integer timesteps (DiT, gmm:)"}};
  std::vector<std::pair<CLI::App*, std::shared_ptr<SampleArgs>>> subs;
  for (const auto& [family, help] : families) {
    auto args = std::make_shared<SampleArgs>();
    args->family = family;
    CLI::App* sub = cmd->add_subcommand(samplers::to_string(family), help)->ignore_case();
    add_shared_options(sub, *args);
    subs.emplace_back(sub, args);
  }
  return [subs]() -> int {
    for (const auto& [sub, args] : subs)
      if (sub->parsed()) return run_sample(*args);
    unreachable("sample: no family subcommand parsed");
  };
}

}  // namespace sit::eval
