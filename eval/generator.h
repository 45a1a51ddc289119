#pragma once
/// What sweeps and `sit-eval sample` generate from: a model seen as a sampler's model
/// function over states of a fixed shape, plus what turns final states into images and
/// into feature rows. Two kinds: the exact analytic mixtures (states are the data,
/// features the identity) and SiT networks (states are latents; a VAE decodes them to
/// images; features are the flattened latents until an image feature extractor is used).

#include <ATen/core/Tensor.h>
#include <c10/core/TensorOptions.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "samplers/field.h"
#include "samplers/path.h"
#include "samplers/sampler.h"

namespace sit::models {
class GaussianMixture;
}

namespace sit::eval {

struct GeneratorSettings {
  /// "gmm:PRESET", "gmm:FILE.toml", "sit:SiT-XL/2", "dit:DiT-XL/2", "repa:SiT-XL/2"
  /// ("sit"/"dit"/"repa": detect the size)
  std::string model;
  std::string ckpt;   ///< SiT / DiT checkpoint (.pt or .safetensors)
  std::string inception;    ///< the feature extractor's file: features of the decoded images
  std::string extractor = "inception";  ///< its kind (models::extractor_registry())
  std::string dinov2;  ///< DINOv2 TorchScript (FD_DINOv2), run on the same decoded images
  std::string clip;    ///< CLIP image tower TorchScript (CMMD), likewise
  std::string dinov2_resize = "pil";  ///< "pil" or "torch" (models::ResizeMode)
  std::string vae;          ///< diffusers AutoencoderKL folder; empty: no decoding
  int64_t image_size = 0;   ///< pixels; 0: the checkpoint's resolution
  int64_t num_classes = 0;  ///< 0: the checkpoint's
  std::string device = "cpu";
  /// fp32, fp64 (state and analytic model in float64), tf32 or bf16 (network precision;
  /// the sampler state stays float32).
  std::string precision = "fp32";
  /// Autoguidance: the guiding network (a weaker model of the same kind, classes and state
  /// shape, e.g. a smaller or shorter-trained checkpoint) and its checkpoint; empty: none.
  std::string guide_model, guide_ckpt;
  /// uint8 rule of decoded images: "dit" (127.5 x + 128) or "repa" (255 (x + 1) / 2);
  /// empty: the model's own (repa: for REPA models, else dit).
  std::string quantization;
};

class Generator {
 public:
  virtual ~Generator() = default;
  /// Builds the generator the settings name; errors name the setting at fault.
  static std::unique_ptr<Generator> create(const GeneratorSettings& s);
  /// The guiding network of `s` (guide_model / guide_ckpt; nullptr when none), checked
  /// against `model`: the same kind, state shape and classes. Errors name the setting.
  static std::unique_ptr<Generator> create_guide(const GeneratorSettings& s,
                                                 const Generator& model);

  virtual std::string name() const = 0;
  /// Shape of one sample's state, e.g. {32} or {4, 32, 32}.
  virtual std::vector<int64_t> state_shape() const = 0;
  virtual int64_t num_classes() const = 0;  ///< 0: unconditional
  virtual int64_t null_class() const = 0;
  virtual samplers::ModelFn model_fn(samplers::Prediction prediction,
                                     samplers::PathType path) const = 0;
  /// Whether the model can drive `family`: continuous code time (ODE/SDE: SiT networks)
  /// or DiT's integer timesteps (DDPM/DDIM: DiT networks); the analytic mixtures both.
  virtual bool supports(samplers::SamplerFamily family) const = 0;
  /// The model on DiT's discrete timesteps: t holds original indices 0..999; returns eps,
  /// or [eps; v] (2C channels) when learned_sigma(). Throws when not supported.
  virtual samplers::ModelFn discrete_model_fn() const;
  /// Whether discrete_model_fn() returns the learned-variance channels.
  virtual bool learned_sigma() const { return false; }
  /// Whether decode_images works (a VAE is loaded).
  virtual bool has_images() const { return false; }
  /// Final states (B, ...) -> uint8 images (B, H, W, 3) on the CPU.
  virtual at::Tensor decode_images(const at::Tensor& x) const;
  /// Names and widths of the feature blocks: {("pool", D)} for data-space or latent
  /// features; ("pool", 2048), ("spatial", 2023), ("logits", 1008) with Inception.
  virtual std::vector<std::pair<std::string, int64_t>> feature_layout() const;
  /// Final states -> float32 feature rows per block (B, width) on the CPU, in
  /// feature_layout() order. `images`: the decoded images when the caller has them.
  virtual std::vector<at::Tensor> features(const at::Tensor& x, const at::Tensor& images) const;
  /// Elements of one sample's state.
  int64_t state_numel() const;
  /// What the features are, recorded in feature files.
  virtual std::string feature_space() const = 0;
  /// "key: value" lines for results provenance (checkpoint checksums and the like).
  virtual std::vector<std::pair<std::string, std::string>> provenance() const { return {}; }

  /// The exact analytic model behind this generator, or nullptr.
  virtual const models::GaussianMixture* mixture() const { return nullptr; }
  /// dtype and device of the sampler state.
  const at::TensorOptions& state_options() const { return state_options_; }

 protected:
  at::TensorOptions state_options_;
};

/// A kind of model, known by the prefix of its spec ("gmm:demo", "sit:SiT-XL/2"): the
/// registry is the only reader of model specs.
struct ModelKind {
  const char* prefix;  ///< "gmm": matches "gmm" and "gmm:..."
  const char* usage;   ///< "gmm:PRESET or gmm:FILE.toml", for errors
  bool analytic;       ///< an exact model: no checkpoint, VAE or extractor; exact reference
  std::unique_ptr<Generator> (*create)(const GeneratorSettings& settings);
};
/// Every kind, one row each.
const std::vector<ModelKind>& model_registry();
/// The kind of `model` by prefix; throws sit::Error listing the usages.
const ModelKind& model_kind(const std::string& model);

struct SamplerSpec;

/// Refuses a sampler the model cannot take, naming fields by their table keys: a family
/// of the other time convention (ODE/SDE on a DiT, DDPM/DDIM on a SiT), learned-range
/// variance without learned sigma, cfg_scale != 1 on an unconditional model, a null_class
/// that is one of the model's classes (or, for a network, not its unconditional label).
/// `guide`: the autoguidance network, needed by guidance = autoguidance.
void check_sampler(const SamplerSpec& spec, const Generator& model,
                   const Generator* guide = nullptr);

/// Labels of the samples `ids`: uniform over `num_classes` from their own stream
/// (per_sample_labels), zeros for an unconditional model (0 classes). CPU int64 (B).
at::Tensor sample_labels(int64_t num_classes, uint64_t seed, const std::vector<int64_t>& ids);

struct GeneratedBatch {
  samplers::SampleResult result;  ///< final states (B, ...), NFE per sample
  at::Tensor images;              ///< uint8 (B, H, W, 3) on the CPU when decoded
};

/// The one batch generator of `sample` and sweeps: initial states x0 (B, state shape; drawn
/// from (seed, ids) with per_sample_normal when undefined), labels (B) on any device,
/// sampled with `config` and, when `decode`, decoded to images. `guide`: the autoguidance
/// network (Generator::create_guide).
GeneratedBatch generate_batch(const Generator& model, const samplers::SamplerConfig& config,
                              uint64_t seed, const std::vector<int64_t>& ids,
                              const at::Tensor& labels, at::Tensor x0, bool decode,
                              const Generator* guide = nullptr);

}  // namespace sit::eval
