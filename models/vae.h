#pragma once
/// The decoder half of Stable Diffusion's AutoencoderKL (as SiT and DiT use it with
/// stabilityai/sd-vae-ft-ema or -mse), loading diffusers weights by key name with the
/// architecture read from its config.json. Latents are divided by the scaling factor
/// before decoding.

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "models/checkpoint.h"
#include "models/sit.h"

namespace sit::models {

struct VaeConfig {
  std::vector<int64_t> block_out_channels = {128, 256, 512, 512};
  int64_t layers_per_block = 2, latent_channels = 4, out_channels = 3, norm_num_groups = 32;
  double scaling_factor = 0.18215;
  bool mid_block_attention = true, post_quant_conv = true;

  /// A diffusers config.json; keys it lacks keep the defaults above (the SD VAE's).
  static VaeConfig from_json(const std::string& path);
  /// Image side / latent side: 2^(number of blocks - 1), 8 for the SD VAE.
  int64_t upsampling() const { return int64_t{1} << (block_out_channels.size() - 1); }
};

/// Decoder key -> shape; attention layers in the current diffusers names (to_q, to_k,
/// to_v, to_out.0) or the older ones (query, key, value, proj_attn).
ShapeList vae_decoder_shapes(const VaeConfig& c, bool old_attention_names = false);

class VaeDecoder {
 public:
  /// `dir`: a diffusers folder (config.json and diffusion_pytorch_model.safetensors or
  /// .bin), or a weights file with config.json beside it.
  static VaeDecoder load(const std::string& dir, const std::string& device = "cpu",
                         Precision precision = Precision::kFp32);
  VaeDecoder(const VaeConfig& config, const StateDict& sd, const std::string& device,
             Precision precision);
  ~VaeDecoder();
  VaeDecoder(VaeDecoder&&) noexcept;

  /// latents (B, latent_channels, h, w) as the generator produced them (scaled);
  /// returns images (B, out_channels, h f, w f), about [-1, 1], float32.
  at::Tensor decode(const at::Tensor& latents) const;

  const VaeConfig& config() const;
  const std::string& weights_path() const;
  int64_t parameter_count() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// How decoded images in [-1, 1] become uint8.
enum class Quantization {
  kDiT,  ///< clamp(127.5 x + 128, 0, 255) truncated (DiT/SiT sample_ddp.py, LightningDiT)
  kRepa  ///< clamp(255 (x + 1) / 2, 0, 255) truncated: half a level lower (REPA generate.py)
};
/// "dit" / "repa".
Quantization parse_quantization(const std::string& name);
const char* to_string(Quantization q);

/// The reference's quantisation from (B, 3, H, W) to (B, H, W, 3) uint8 on the CPU.
at::Tensor to_uint8_nhwc(const at::Tensor& images, Quantization q = Quantization::kDiT);

}  // namespace sit::models
