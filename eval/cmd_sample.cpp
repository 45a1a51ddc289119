// sit-eval sample {ODE|SDE}: draws samples from a model with one sampler configuration.
#include <ATen/ATen.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cctype>
#include <iostream>
#include <numeric>
#include <optional>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/format.h"
#include "eval/cli_checks.h"
#include "eval/commands.h"
#include "eval/generator.h"
#include "reference_stats/image_writer.h"
#include "reference_stats/npy.h"
#include "samplers/names.h"
#include "samplers/sampler.h"

namespace sit::eval {
namespace {

struct SampleArgs {
  std::string model, path_type = "Linear", prediction = "velocity", method, out = "samples.npz";
  std::string noise, labels, diffusion_form = "sigma", last_step = "Mean", cfg_channels = "3";
  std::string error_norm = "batch", loss_table, device = "cpu", precision = "fp32";
  std::string ckpt, vae, sample_dir, save_latents;
  int64_t image_size = 0, num_classes = 0;
  int64_t num_steps = -1, num_samples = 0, batch_size = 32, null_class = -1;  // 0: unset
  double atol = 1e-6, rtol = 1e-3, diffusion_norm = 1.0, eta = 0.0, last_step_size = 0.04;
  double cfg_scale = 1.0;
  uint64_t seed = 0;
  std::optional<double> t0, t1, sample_eps;
};

void add_shared_options(CLI::App* cmd, SampleArgs& a) {
  cmd->add_option("--model", a.model,
                  "gmm:PRESET (bernoulli1d, mix1d, demo), gmm:FILE.toml, or sit:SiT-XL/2 (any "
                  "SiT-{S,B,L,XL}/{2,4,8}; 'sit' alone detects it from --ckpt)")
      ->required();
  cmd->add_option("--ckpt", a.ckpt,
                  "SiT/DiT checkpoint: torch.save .pt (plain, or ema/model "
                  "entry of a training checkpoint) or .safetensors");
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
  cmd->add_option("--path-type", a.path_type, "Linear, GVP or VP")->capture_default_str();
  cmd->add_option("--prediction", a.prediction, "what the model predicts: velocity, score, noise")
      ->capture_default_str();
  cmd->add_option("--sampling-method", a.method,
                  "ODE: euler, midpoint, heun2 (heun), rk4, dopri5 (default); SDE: Euler "
                  "(Euler-Maruyama, default) or Heun");
  cmd->add_option("--num-sampling-steps", a.num_steps,
                  "grid points (ODE default 50, SDE default 250); steps = points - 1")
      ->check(valid(integers(2, 1000000)));
  cmd->add_option("--cfg-scale", a.cfg_scale, "classifier-free guidance scale (1: none)")
      ->capture_default_str()
      ->check(valid(not_below(0)));
  cmd->add_option("--cfg-channels", a.cfg_channels,
                  "3: guide channels 0..2 as the reference's forward_with_cfg; all: every channel")
      ->capture_default_str();
  cmd->add_option("--null-class", a.null_class,
                  "label of the unconditional class (default: the "
                  "model's, 1000 for ImageNet models)")
      ->check(valid(at_least(0)));
  cmd->add_option("--global-seed", a.seed, "seed; sample i depends only on (seed, i)")
      ->capture_default_str()
      ->check(valid_seed());
  cmd->add_option("--num-samples", a.num_samples,
                  "samples to draw (default 64, or the rows of --noise)")
      ->check(valid(integers(1, 100000000)));
  cmd->add_option("--batch-size", a.batch_size, "samples per batch (results do not depend on it)")
      ->capture_default_str()
      ->check(valid(at_least(1)));
  cmd->add_option("--t0", a.t0, "start of the sampling interval (overrides the reference rule)")
      ->check(valid(between(0, 1)));
  cmd->add_option("--t1", a.t1, "end of the sampling interval (overrides the reference rule)")
      ->check(valid(between(0, 1)));
  cmd->add_option("--sample-eps", a.sample_eps,
                  "the reference's sample_eps (default 1e-3; 0 for Linear/GVP velocity models)")
      ->check(valid(between(0, 1, false, true)));
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

int run_sample(const SampleArgs& a, bool sde) {
  using namespace sit::samplers;
  GeneratorSettings settings;
  settings.model = a.model;
  settings.ckpt = a.ckpt;
  settings.vae = a.vae;
  settings.image_size = a.image_size;
  settings.num_classes = a.num_classes;
  settings.device = a.device;
  settings.precision = a.precision;  // lower-cased by the option's transform
  const std::unique_ptr<Generator> generator = Generator::create(settings);
  const Generator& model = *generator;
  const bool analytic = model.mixture() != nullptr;
  const bool images = model.has_images();
  if (!analytic && !images && a.save_latents.empty())
    fail("without --vae a SiT model has no images: give --vae DIR, or --save-latents FILE.npz");
  if (analytic || images) check_output_path(a.out, "--out", {".npz"});
  if (!a.save_latents.empty()) check_output_path(a.save_latents, "--save-latents", {".npz"});
  if (!a.sample_dir.empty() && !images)
    fail("--sample-dir needs an image model (sit:... with --vae)");
  SamplerConfig cfg;
  cfg.path = parse_path_type(a.path_type);
  cfg.prediction = parse_prediction(a.prediction);
  cfg.sde = sde;
  cfg.num_steps = a.num_steps > 0 ? a.num_steps : (sde ? 250 : 50);
  if (sde) {
    cfg.sde_options.method = parse_sde_method(a.method.empty() ? "Euler" : a.method);
    cfg.sde_options.diffusion.form = parse_diffusion_form(a.diffusion_form);
    cfg.sde_options.diffusion.norm = a.diffusion_norm;
    cfg.sde_options.diffusion.eta = a.eta;
    if (!a.loss_table.empty()) cfg.sde_options.diffusion.loss = LossTable::from_csv(a.loss_table);
    cfg.sde_options.last_step = parse_last_step(a.last_step);
    cfg.sde_options.last_step_size = a.last_step_size;
  } else {
    cfg.ode.method = parse_ode_method(a.method.empty() ? "dopri5" : a.method);
    cfg.ode.atol = a.atol;
    cfg.ode.rtol = a.rtol;
    if (samplers::same_name(a.error_norm, "per-sample"))
      cfg.error_norm = ErrorNorm::kPerSample;
    else if (!samplers::same_name(a.error_norm, "batch"))
      fail("--error-norm must be one of batch, per-sample; got '", a.error_norm, "'");
  }
  cfg.interval.t0 = a.t0;
  cfg.interval.t1 = a.t1;
  cfg.interval.sample_eps = a.sample_eps;
  cfg.guidance.scale = a.cfg_scale;
  cfg.guidance.channels = parse_cfg_channels(a.cfg_channels);
  if (a.null_class >= 0 && (a.null_class < model.num_classes() ||
                            (!analytic && a.null_class != model.null_class())))
    fail("--null-class ", a.null_class, ": ",
         a.null_class < model.num_classes() ? "is one of the model's classes" : "is not a label of",
         " ", model.name(), " (classes 0..", model.num_classes() - 1, ", unconditional ",
         model.null_class(), ")");
  cfg.guidance.null_class = a.null_class >= 0 ? a.null_class : model.null_class();
  if (a.cfg_scale != 1.0 && model.num_classes() == 0)
    fail("--cfg-scale ", a.cfg_scale, " needs a class-conditional model; ", model.name(),
         " is unconditional");

  const at::Device device(a.device);
  const auto options = model.state_options();
  // N: --num-samples, else the rows of --noise, else 64.
  std::optional<io::NpyArray> noise_file, label_file;
  if (!a.noise.empty()) noise_file.emplace(io::open_npy(a.noise));
  const int64_t noise_rows =
      noise_file && !noise_file->shape().empty() ? noise_file->shape()[0] : 0;
  const int64_t n = a.num_samples > 0 ? a.num_samples : noise_file ? noise_rows : 64;
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
    labels_all = model.num_classes() > 0 ? per_sample_labels(a.seed, all_ids, model.num_classes())
                                         : at::zeros({n}, at::kLong);
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
  std::vector<int64_t> nfe;
  int64_t network_calls = 0;
  Interval interval;
  for (int64_t s = 0; s < n; s += a.batch_size) {
    const int64_t b = std::min(a.batch_size, n - s);
    const std::vector<int64_t> ids(all_ids.begin() + s, all_ids.begin() + s + b);
    at::Tensor x0;
    if (noise_file) {
      std::vector<double> rows(static_cast<size_t>(b * d));
      noise_file->read_rows(s, b, rows.data());
      std::vector<int64_t> shape = {b};
      shape.insert(shape.end(), state_shape.begin(), state_shape.end());
      x0 = at::tensor(rows, at::kDouble).view(shape).to(options);
    } else {
      x0 = per_sample_normal(a.seed, ids, kStreamInit, state_shape, options);
    }
    const at::Tensor y = labels_all.narrow(0, s, b).to(device);
    const SampleResult r =
        sample(model.model_fn(cfg.prediction, cfg.path), cfg, x0, y, ids, a.seed);
    if (out) {
      const at::Tensor host = r.x.cpu().contiguous();
      out->append_rows(host.data_ptr(), b);
    }
    if (latents) {
      const at::Tensor host = r.x.to(at::kFloat).cpu().contiguous();
      latents->append_rows(host.data_ptr(), b);
    }
    if (images) {
      const at::Tensor u8 = model.decode_images(r.x);  // (b, H, W, 3)
      if (!adm) adm.emplace(a.out, n, u8.size(1), u8.size(2));
      const at::Tensor yb = labels_all.narrow(0, s, b).contiguous();
      adm->write(u8.data_ptr<uint8_t>(), b, yb.data_ptr<int64_t>());
      if (pngs) pngs->write(u8.data_ptr<uint8_t>(), b, u8.size(1), u8.size(2), s);
    }
    nfe.insert(nfe.end(), r.nfe.begin(), r.nfe.end());
    network_calls += r.network_calls;
    interval = r.interval;
  }
  for (auto* w : {out ? &*out : nullptr, latents ? &*latents : nullptr}) {
    if (!w) continue;
    w->end();
    w->add("labels", {n}, labels_all.contiguous().data_ptr<int64_t>());
    w->add("nfe", {n}, nfe.data());
    w->close();
  }
  if (adm) adm->close();

  const double mean_nfe = std::accumulate(nfe.begin(), nfe.end(), 0.0) / static_cast<double>(n);
  std::cerr << "sampled " << n << " x " << shape_string(state_shape) << " from " << model.name()
            << " (" << to_string(cfg.path) << ", " << to_string(cfg.prediction) << ") with "
            << (sde ? to_string(cfg.sde_options.method) : to_string(cfg.ode.method)) << " on ["
            << interval.t0 << ", " << interval.t1 << "], " << cfg.num_steps << " grid points";
  if (sde)
    std::cerr << ", diffusion " << to_string(cfg.sde_options.diffusion.form) << " norm "
              << cfg.sde_options.diffusion.norm << " (D(t) = w(t)/2), last step "
              << to_string(cfg.sde_options.last_step);
  std::cerr << "; mean NFE " << mean_nfe << " per sample, " << network_calls
            << " network batch evaluations; wrote " << (analytic || images ? a.out : std::string())
            << (pngs ? " " + a.sample_dir + "/" : std::string())
            << (latents ? " " + a.save_latents : std::string()) << "\n";
  return 0;
}

}  // namespace

Command add_sample_command(CLI::App& app) {
  auto ode = std::make_shared<SampleArgs>();
  auto sde = std::make_shared<SampleArgs>();
  CLI::App* cmd = app.add_subcommand(
      "sample",
      "draw samples with one sampler configuration: 'sample ODE ...' or 'sample SDE ...'");
  cmd->require_subcommand(1);
  CLI::App* o = cmd->add_subcommand("ODE", "probability-flow ODE sampling")->ignore_case();
  add_shared_options(o, *ode);
  o->add_option("--atol", ode->atol, "dopri5 absolute tolerance")
      ->capture_default_str()
      ->check(valid(greater_than(0)));
  o->add_option("--rtol", ode->rtol, "dopri5 relative tolerance")
      ->capture_default_str()
      ->check(valid(greater_than(0)));
  o->add_option("--error-norm", ode->error_norm,
                "dopri5 error norm: batch (RMS over the whole batch, as torchdiffeq) or "
                "per-sample (each sample on its own: independent of batching)")
      ->capture_default_str();
  CLI::App* s = cmd->add_subcommand(
      "SDE",
      "SDE sampling: dx = [v + D s] dt + sqrt(2 D) dW in code time, D(t) = w(t)/2 where "
      "w is the paper's diffusion coefficient")->ignore_case();
  add_shared_options(s, *sde);
  s->add_option("--diffusion-form", sde->diffusion_form,
                "D(t) (= w/2): constant, SBDM, sigma, linear, decreasing, increasing-decreasing "
                "(sin2), kl-eta (paper eq. 14, needs --loss-table and --diffusion-eta)")
      ->capture_default_str();
  s->add_option("--diffusion-norm", sde->diffusion_norm, "norm of the diffusion form")
      ->capture_default_str()
      ->check(valid(not_below(0)));
  s->add_option("--diffusion-eta", sde->eta, "eta of the kl-eta form")
      ->capture_default_str()
      ->check(valid(not_below(0)));
  s->add_option("--loss-table", sde->loss_table, "CSV 't,L' of the model's loss per time (kl-eta)");
  s->add_option("--last-step", sde->last_step, "none, Mean, Tweedie, Euler")->capture_default_str();
  s->add_option("--last-step-size", sde->last_step_size, "size of the last step")
      ->capture_default_str()
      ->check(valid(between(0, 1, true, true)));
  return [cmd, o, ode, sde]() -> int {
    return o->parsed() ? run_sample(*ode, false) : run_sample(*sde, true);
  };
}

}  // namespace sit::eval
