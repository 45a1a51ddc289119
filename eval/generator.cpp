#include "eval/generator.h"

#include <ATen/ATen.h>

#include <filesystem>
#include <optional>

#include "common/error.h"
#include "common/format.h"
#include "common/sha256.h"
#include "eval/sampler_spec.h"
#include "models/device.h"
#include "models/gmm.h"
#include "models/lightningdit.h"
#include "models/feature_extractor.h"
#include "models/sit.h"
#include "models/vae.h"

namespace sit::eval {
namespace {

class MixtureGenerator final : public Generator {
 public:
  MixtureGenerator(const GeneratorSettings& s) : gmm_(models::GaussianMixture::from_spec(s.model)) {
    if (!s.ckpt.empty() || !s.vae.empty() || !s.inception.empty())
      fail("model ", s.model,
           " is an exact analytic model: it takes no checkpoint, VAE or Inception");
    // a mixture defined in a file: its contents are part of the run's identity
    const std::string file = s.model.substr(4);
    if (std::filesystem::is_regular_file(file)) mixture_sha256_ = sha256_file(file);
    if (s.precision != "fp32" && s.precision != "fp64")
      fail("precision for ", s.model, " must be fp32 or fp64, got '", s.precision, "'");
    state_options_ = at::TensorOptions()
                         .dtype(s.precision == "fp64" ? at::kDouble : at::kFloat)
                         .device(at::Device(s.device));
  }
  std::string name() const override { return gmm_.name(); }
  std::vector<int64_t> state_shape() const override { return {gmm_.dim()}; }
  int64_t num_classes() const override { return gmm_.num_classes(); }
  int64_t null_class() const override { return gmm_.null_class(); }
  samplers::ModelFn model_fn(samplers::Prediction p, samplers::PathType path) const override {
    return gmm_.model_fn(p, path);
  }
  bool supports(samplers::SamplerFamily) const override { return true; }
  samplers::ModelFn discrete_model_fn() const override { return gmm_.discrete_model_fn(); }
  std::string feature_space() const override { return "identity (data-space features)"; }
  const models::GaussianMixture* mixture() const override { return &gmm_; }
  std::vector<std::pair<std::string, std::string>> provenance() const override {
    if (mixture_sha256_.empty()) return {};
    return {{"mixture", gmm_.name()}, {"mixture_sha256", mixture_sha256_}};
  }

 private:
  models::GaussianMixture gmm_;
  std::string mixture_sha256_;
};

/// A SiT network (continuous time, ODE/SDE) or a DiT network (the same backbone on DiT's
/// integer timesteps, learned-sigma channels kept, DDPM/DDIM), with optional VAE and
/// feature extractor.
/// The networks on the SiT backbone: SiT (code time, velocity as trained), DiT (integer
/// timesteps, learned sigma kept) and REPA (its own time tau = 1 - t and velocity
/// v_R = -v, protocols.md §3: adapted here so that every SiT sampler drives it).
enum class NetKind { kSiT, kDiT, kRepa };

class SiTGenerator final : public Generator {
 public:
  SiTGenerator(const GeneratorSettings& s, NetKind kind)
      : settings_(s), kind_(kind), dit_(kind == NetKind::kDiT) {
    if (s.ckpt.empty()) fail("model ", s.model, " needs a checkpoint (--ckpt / ckpt = \"FILE\")");
    if (s.precision == "fp64" || s.precision == "fp16")
      fail("precision ", s.precision, " is not available for a SiT network: fp32 (TF32 off, as "
           "the papers), tf32 or bf16; fp64 applies to the analytic gmm: models");
    const models::Precision precision = models::parse_precision(s.precision);
    models::apply_precision(precision);
    if (!s.vae.empty()) vae_.emplace(models::VaeDecoder::load(s.vae, s.device, precision));
    const int64_t factor = vae_ ? vae_->config().upsampling() : 8;
    models::SiTOptions o;
    const size_t colon = s.model.find(':');
    o.name = colon == std::string::npos ? "" : s.model.substr(colon + 1);  // after "sit:"
    if (!s.quantization.empty()) quantization_ = models::parse_quantization(s.quantization);
    else if (kind == NetKind::kRepa) quantization_ = models::Quantization::kRepa;
    o.keep_learned_sigma = dit_;
    o.num_classes = s.num_classes;
    o.device = s.device;
    o.precision = precision;
    if (s.image_size > 0) {
      if (s.image_size % factor != 0)
        fail("image size ", s.image_size, " must be a multiple of the VAE's downsampling factor ",
             factor);
      o.input_size = s.image_size / factor;
    }
    models::StateDict sd = models::load_state_dict(s.ckpt);
    if (kind != NetKind::kRepa)
      for (const auto& [key, tensor] : sd.tensors)
        if (key.rfind("projectors.", 0) == 0)
          fail(s.ckpt, ": holds REPA's projection heads ('", key, "'): a REPA checkpoint; load "
               "it with --model repa (model = \"repa:SiT-XL/2\"), which also takes REPA's time "
               "and velocity convention");
    if (sd.find("blocks.0.mlp.w12.weight").defined())
      fail(s.ckpt, ": has SwiGLU MLPs and RMSNorm (blocks.0.mlp.w12.weight): a LightningDiT "
           "checkpoint; load it with --model lightningdit (model = \"lightningdit:"
           "LightningDiT-XL/1\")");
    if (kind == NetKind::kRepa) {
      // REPA checkpoints: projection heads (training only) ignored, legacy keys renamed
      o.ignore_prefixes = {"projectors."};
      models::rename_repa_legacy_keys(sd);
    }
    net_.emplace(sd, o);
    if (kind == NetKind::kRepa && net_->config().learn_sigma)
      fail(s.ckpt, ": has learned-sigma outputs (final_layer.linear.weight ",
           shape_string(sd.find("final_layer.linear.weight").sizes().vec()),
           "); REPA's networks have none: a SiT or DiT checkpoint (--model sit:... / dit:...)");
    if (!s.inception.empty() || !s.dinov2.empty() || !s.clip.empty()) {
      if (!vae_)
        fail("image features (Inception, DINOv2, CLIP) need images: give the model a VAE "
             "(--vae / vae = \"DIR\")");
      models::ExtractorSettings es;
      es.device = s.device;
      es.dinov2_resize = s.dinov2_resize;
      std::vector<std::unique_ptr<models::FeatureExtractor>> members;
      if (!s.inception.empty()) members.push_back(models::load_extractor(s.extractor, s.inception, es));
      if (!s.dinov2.empty()) members.push_back(models::load_extractor("dinov2", s.dinov2, es));
      if (!s.clip.empty()) members.push_back(models::load_extractor("clip", s.clip, es));
      if (members.size() == 1)
        extractor_ = std::move(members.front());
      else  // one decode of each batch feeds every extractor
        extractor_ = std::make_unique<models::ExtractorGroup>(std::move(members));
    }
    if (vae_ && vae_->config().latent_channels != net_->config().in_channels)
      fail(s.vae, ": the VAE has ", vae_->config().latent_channels, " latent channels, the model ",
           net_->config().in_channels);
    // REPA integrates in float64 (the network itself runs in its precision)
    state_options_ = at::TensorOptions()
                         .dtype(kind == NetKind::kRepa ? at::kDouble : at::kFloat)
                         .device(at::Device(s.device));
  }
  std::string name() const override {
    const std::string n = net_->config().name();  // "SiT-XL/2"
    return (dit_ ? "DiT" + n.substr(3) : kind_ == NetKind::kRepa ? "REPA " + n : n) + " (" +
           settings_.ckpt + ")";
  }
  std::vector<int64_t> state_shape() const override {
    const auto& c = net_->config();
    return {c.in_channels, c.input_size, c.input_size};
  }
  int64_t num_classes() const override { return net_->config().num_classes; }
  int64_t null_class() const override { return net_->config().num_classes; }
  samplers::ModelFn model_fn(samplers::Prediction, samplers::PathType) const override {
    // The network predicts whatever it was trained to; the sweep's prediction says what.
    const models::SiT* net = &*net_;
    if (kind_ == NetKind::kRepa)  // v(x, t) = -v_R(x, tau = 1 - t), tau cast to float32
      return [net](const at::Tensor& x, const at::Tensor& t, const at::Tensor& y) {
        return net->forward_repa(x, t, y);
      };
    return [net](const at::Tensor& x, const at::Tensor& t, const at::Tensor& y) {
      return net->forward(x, t, y);
    };
  }
  bool supports(samplers::SamplerFamily f) const override {
    return samplers::is_discrete(f) == dit_;
  }
  samplers::ModelFn discrete_model_fn() const override {
    if (!dit_) return Generator::discrete_model_fn();
    return model_fn(samplers::Prediction::kNoise, samplers::PathType::kVP);  // indices in t
  }
  bool learned_sigma() const override { return dit_ && net_->config().learn_sigma; }
  bool has_images() const override { return vae_.has_value(); }
  at::Tensor decode_images(const at::Tensor& x) const override {
    if (!vae_) fail(name(), ": images need a VAE (--vae DIR / vae = \"DIR\")");
    return models::to_uint8_nhwc(vae_->decode(x.to(at::kFloat)), quantization_);
  }
  std::string feature_space() const override {
    return extractor_ ? extractor_->identity() + " of the decoded uint8 images"
                      : "latent (flattened SiT latents, C x H x W order)";
  }
  std::vector<std::pair<std::string, int64_t>> feature_layout() const override {
    if (!extractor_) return Generator::feature_layout();
    std::vector<std::pair<std::string, int64_t>> l;
    for (const auto& b : extractor_->blocks())
      l.emplace_back(b.name, b.width);
    return l;
  }
  std::vector<at::Tensor> features(const at::Tensor& x, const at::Tensor& images) const override {
    if (!extractor_) return Generator::features(x, images);
    // matches the reference pipeline: uint8 quantised images straight into the extractor
    return extractor_->extract_images(images.defined() ? images : decode_images(x));
  }
  std::vector<std::pair<std::string, std::string>> provenance() const override {
    std::vector<std::pair<std::string, std::string>> p = {
        {"checkpoint", settings_.ckpt}, {"checkpoint_sha256", sha256_file(settings_.ckpt)}};
    if (vae_) {
      p.emplace_back("vae", vae_->weights_path());
      p.emplace_back("vae_sha256", sha256_file(vae_->weights_path()));
    }
    auto add = [&](const std::string& kind, const std::string& path) {
      if (path.empty()) return;
      p.emplace_back(kind, path);
      p.emplace_back(kind + "_sha256", sha256_file(path));
    };
    add(settings_.extractor, settings_.inception);
    add("dinov2", settings_.dinov2);
    if (!settings_.dinov2.empty()) p.emplace_back("dinov2_resize", settings_.dinov2_resize);
    add("clip", settings_.clip);
    return p;
  }

 private:
  GeneratorSettings settings_;
  NetKind kind_ = NetKind::kSiT;
  bool dit_ = false;
  models::Quantization quantization_ = models::Quantization::kDiT;
  std::optional<models::VaeDecoder> vae_;
  std::optional<models::SiT> net_;
  std::unique_ptr<models::FeatureExtractor> extractor_;
};

/// LightningDiT checkpoints (protocols.md §4): SiT code time, velocity, 32-channel latents.
/// Their VA-VAE decoder is not implemented, so the latents are the output (and features).
class LightningDiTGenerator final : public Generator {
 public:
  explicit LightningDiTGenerator(const GeneratorSettings& s) : settings_(s) {
    if (s.ckpt.empty()) fail("model ", s.model, " needs a checkpoint (--ckpt / ckpt = \"FILE\")");
    if (!s.vae.empty())
      fail("vae ", s.vae, ": LightningDiT decodes with its VA-VAE (f16d32, LDM layout), which "
           "sit-eval cannot load yet; sample latents without a VAE (sample --save-latents, or "
           "sweeps on latent features)");
    if (!s.inception.empty() || !s.dinov2.empty() || !s.clip.empty())
      fail("image features need images, and LightningDiT's VA-VAE decoder is not implemented");
    if (s.precision == "fp64" || s.precision == "fp16")
      fail("precision ", s.precision, " is not available for a network: fp32, tf32 or bf16");
    const models::Precision precision = models::parse_precision(s.precision);
    models::apply_precision(precision);
    models::LightningDiTOptions o;
    const size_t colon = s.model.find(':');
    o.name = colon == std::string::npos ? "" : s.model.substr(colon + 1);
    o.device = s.device;
    o.precision = precision;
    net_.emplace(models::load_state_dict(s.ckpt), o);
    // the VA-VAE downsamples by 16: the checkpoint's latent side fixes the image size
    if (s.image_size > 0 && s.image_size != 16 * net_->config().input_size)
      fail("image size ", s.image_size, ": ", s.ckpt, " takes ", net_->config().input_size, " x ",
           net_->config().input_size, " latents (", 16 * net_->config().input_size,
           " px with the f16 VA-VAE)");
    if (s.num_classes > 0 && s.num_classes != net_->config().num_classes)
      fail(s.ckpt, ": --num-classes ", s.num_classes, " does not match the checkpoint's ",
           net_->config().num_classes);
    state_options_ = at::TensorOptions().dtype(at::kFloat).device(at::Device(s.device));
  }
  std::string name() const override { return net_->config().name() + " (" + settings_.ckpt + ")"; }
  std::vector<int64_t> state_shape() const override {
    const auto& c = net_->config();
    return {c.in_channels, c.input_size, c.input_size};
  }
  int64_t num_classes() const override { return net_->config().num_classes; }
  int64_t null_class() const override { return net_->config().num_classes; }
  samplers::ModelFn model_fn(samplers::Prediction, samplers::PathType) const override {
    const models::LightningDiT* net = &*net_;
    return [net](const at::Tensor& x, const at::Tensor& t, const at::Tensor& y) {
      return net->forward(x, t, y);
    };
  }
  bool supports(samplers::SamplerFamily f) const override { return !samplers::is_discrete(f); }
  std::string feature_space() const override {
    return "latent (flattened LightningDiT latents, C x H x W order, before the VA-VAE's "
           "per-channel denormalisation)";
  }
  std::vector<std::pair<std::string, std::string>> provenance() const override {
    return {{"checkpoint", settings_.ckpt}, {"checkpoint_sha256", sha256_file(settings_.ckpt)}};
  }

 private:
  GeneratorSettings settings_;
  std::optional<models::LightningDiT> net_;
};

}  // namespace

const std::vector<ModelKind>& model_registry() {
  static const std::vector<ModelKind> kinds = {
      {"gmm", "gmm:PRESET or gmm:FILE.toml", true,
       [](const GeneratorSettings& s) -> std::unique_ptr<Generator> {
         return std::make_unique<MixtureGenerator>(s);
       }},
      {"sit", "sit:SiT-{S,B,L,XL}/{2,4,8}", false,
       [](const GeneratorSettings& s) -> std::unique_ptr<Generator> {
         return std::make_unique<SiTGenerator>(s, NetKind::kSiT);
       }},
      {"dit", "dit:DiT-{S,B,L,XL}/{2,4,8}", false,
       [](const GeneratorSettings& s) -> std::unique_ptr<Generator> {
         return std::make_unique<SiTGenerator>(s, NetKind::kDiT);
       }},
      {"repa", "repa:SiT-{S,B,L,XL}/{2,4,8}", false,
       [](const GeneratorSettings& s) -> std::unique_ptr<Generator> {
         return std::make_unique<SiTGenerator>(s, NetKind::kRepa);
       }},
      {"lightningdit", "lightningdit:LightningDiT-{B,L,XL,1p0B,1p6B}/{1,2}", false,
       [](const GeneratorSettings& s) -> std::unique_ptr<Generator> {
         return std::make_unique<LightningDiTGenerator>(s);
       }},
  };
  return kinds;
}

const ModelKind& model_kind(const std::string& model) {
  std::string usages;
  for (const auto& k : model_registry()) {
    const std::string prefix = k.prefix;
    if (model == prefix || model.rfind(prefix + ":", 0) == 0) return k;
    usages += (usages.empty() ? "" : " or ") + std::string(k.usage);
  }
  fail("model must be ", usages, ", got '", model, "'");
}

std::unique_ptr<Generator> Generator::create(const GeneratorSettings& s) {
  models::check_device(s.device);
  const ModelKind& kind = model_kind(s.model);
  GeneratorSettings t = s;
  if (!kind.analytic && t.model == kind.prefix) t.model += ":";  // "sit": size from the file
  return kind.create(t);
}

std::unique_ptr<Generator> Generator::create_guide(const GeneratorSettings& s,
                                                   const Generator& model) {
  if (s.guide_model.empty()) {
    if (!s.guide_ckpt.empty())
      fail("guide_ckpt (--guide-ckpt) needs guide_model (--guide-model: the guiding network)");
    return nullptr;
  }
  if (std::string(model_kind(s.guide_model).prefix) != model_kind(s.model).prefix)
    fail("guide_model ", s.guide_model, " is not of the kind of model ", s.model,
         ": autoguidance guides a network with a weaker one of the same family");
  GeneratorSettings g;
  g.model = s.guide_model;
  g.ckpt = s.guide_ckpt;
  g.image_size = s.image_size;
  g.num_classes = s.num_classes;
  g.device = s.device;
  g.precision = s.precision;
  if (!model_kind(g.model).analytic && g.ckpt.empty())
    fail("guide_model ", g.model, " needs guide_ckpt (the guiding network's checkpoint)");
  if (model_kind(g.model).analytic && !g.ckpt.empty())
    fail("guide_ckpt does not apply to the analytic guide_model ", g.model);
  std::unique_ptr<Generator> guide =
      in_context("guide_model " + g.model, [&] { return create(g); });
  if (guide->state_shape() != model.state_shape())
    fail("guide_model ", guide->name(), " has states of shape ", shape_string(guide->state_shape()),
         ", model ", model.name(), " ", shape_string(model.state_shape()), ": they must match");
  if (guide->num_classes() != model.num_classes() || guide->null_class() != model.null_class())
    fail("guide_model ", guide->name(), " has ", guide->num_classes(), " classes (null ",
         guide->null_class(), "), model ", model.name(), " ", model.num_classes(), " (null ",
         model.null_class(), "): autoguidance needs the same conditioning");
  return guide;
}

samplers::ModelFn Generator::discrete_model_fn() const {
  fail(name(), " runs in continuous time (ODE/SDE); DDPM/DDIM need a DiT (dit:) or gmm: model");
}

at::Tensor Generator::decode_images(const at::Tensor&) const {
  fail(name(), " has no images: it is not an image model (or no VAE was given)");
}

std::vector<std::pair<std::string, int64_t>> Generator::feature_layout() const {
  return {{"pool", state_numel()}};
}

std::vector<at::Tensor> Generator::features(const at::Tensor& x, const at::Tensor&) const {
  return {x.reshape({x.size(0), -1}).to(at::kFloat).cpu().contiguous()};
}

int64_t Generator::state_numel() const {
  int64_t d = 1;
  for (int64_t s : state_shape())
    d *= s;
  return d;
}

void check_sampler(const SamplerSpec& spec, const Generator& model, const Generator* guide) {
  const samplers::SamplerFamily family = spec.family();
  const bool guided = spec.config.guidance.scale != 1.0;
  if (guided && spec.config.guidance.kind == samplers::GuidanceKind::kAutoguidance) {
    if (!guide)
      fail(
          "guidance autoguidance needs a guiding network: guide_model (--guide-model) and, "
          "for a network, guide_ckpt (--guide-ckpt)");
    if (!guide->supports(family))
      fail("guide_model ", guide->name(), " cannot drive mode ", samplers::to_string(family));
    if (family == samplers::SamplerFamily::kDdpm &&
        spec.config.discrete.variance == samplers::VarianceType::kLearnedRange &&
        guide->learned_sigma() != model.learned_sigma())
      fail("guide_model ", guide->name(), " and model ", model.name(),
           " differ in learned sigma: their outputs cannot be combined");
  }
  if (guided) samplers::check_guidance_interval(spec.config);
  if (!model.supports(family))
    fail("mode ", samplers::to_string(family), ": ", model.name(),
         samplers::is_discrete(family)
             ? " takes continuous time in [0, 1] (SiT); DDPM/DDIM drive DiT checkpoints "
               "(--model dit:...) on integer timesteps"
             : " takes DiT's integer timesteps; sample it with DDPM or DDIM (ODE/SDE need a "
               "SiT checkpoint, --model sit:...)");
  if (family == samplers::SamplerFamily::kDdpm &&
      spec.config.discrete.variance == samplers::VarianceType::kLearnedRange &&
      !model.learned_sigma())
    fail("variance_type learned-range needs a model with learned sigma; ", model.name(),
         model.mixture() ? " is an exact eps model" : " was trained without learn_sigma",
         ": use variance_type fixed-small or fixed-large");
  if (spec.config.guidance.scale != 1.0 && model.num_classes() == 0 &&
      spec.config.guidance.kind == samplers::GuidanceKind::kCfg)
    fail("cfg_scale ", spec.value("cfg_scale"), " needs a class-conditional model; ", model.name(),
         " is unconditional");
  if (guided && spec.config.guidance.channels == samplers::CfgChannels::kFirst3 &&
      model.state_shape()[0] < 3)
    fail("cfg_channels 3 guides channels 0..2 (the reference's forward_with_cfg); ", model.name(),
         " has states of shape ", shape_string(model.state_shape()),
         ": use cfg_channels = \"all\" (--cfg-channels all)");
  // The unconditional label is the model's: the row of its label table after the classes.
  if (spec.null_class && *spec.null_class != model.null_class())
    fail("null_class ", *spec.null_class, ": ",
         *spec.null_class < model.num_classes() ? "is one of the model's classes"
                                                : "is not a label of",
         " ", model.name(), " (classes 0..", model.num_classes() - 1, ", unconditional ",
         model.null_class(), ")");
}

at::Tensor sample_labels(int64_t num_classes, uint64_t seed, const std::vector<int64_t>& ids) {
  return num_classes > 0 ? samplers::per_sample_labels(seed, ids, num_classes)
                                 : at::zeros({static_cast<int64_t>(ids.size())}, at::kLong);
}

GeneratedBatch generate_batch(const Generator& model, const samplers::SamplerConfig& config,
                              uint64_t seed, const std::vector<int64_t>& ids,
                              const at::Tensor& labels, at::Tensor x0, bool decode,
                              const Generator* guide) {
  const at::TensorOptions& options = model.state_options();
  if (!x0.defined())
    x0 = samplers::per_sample_normal(seed, ids, samplers::kStreamInit, model.state_shape(),
                                     options);
  GeneratedBatch out;
  auto model_fn = [&](const Generator& g) {
    return samplers::is_discrete(config.family) ? g.discrete_model_fn()
                                                : g.model_fn(config.prediction, config.path);
  };
  const bool autoguidance =
      config.guidance.scale != 1.0 && config.guidance.kind == samplers::GuidanceKind::kAutoguidance;
  out.result =
      samplers::sample(model_fn(model), config, x0.to(options), labels.to(options.device()), ids,
                       seed, autoguidance && guide ? model_fn(*guide) : samplers::ModelFn());
  if (decode) out.images = model.decode_images(out.result.x);  // (B, H, W, 3) uint8
  return out;
}

}  // namespace sit::eval
