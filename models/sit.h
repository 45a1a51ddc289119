#pragma once
/// The SiT / DiT backbone (spec/sit_model.md): a transformer over latent patches with
/// adaLN-Zero conditioning on time and class. Weights are held by checkpoint key name, so
/// the released checkpoints load by name; the forward pass is batched ATen calls.

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "models/checkpoint.h"

namespace sit::models {

/// Compute precision of a network: fp32 (as the papers; TF32 off), tf32 (fp32 storage,
/// TF32 matmuls and convolutions on CUDA), bf16 (weights and activations in bfloat16).
enum class Precision { kFp32, kTf32, kBf16 };
Precision parse_precision(const std::string& name);
const char* to_string(Precision p);
/// Sets the global TF32 switches for this precision (they matter on CUDA only).
void apply_precision(Precision p);

struct SiTConfig {
  std::string size;  ///< "XL", "L", "B", "S"
  int64_t depth = 28, hidden = 1152, heads = 16, patch = 2;
  int64_t input_size = 32;  ///< latent side (32 for 256 px images, 64 for 512 px)
  int64_t in_channels = 4;
  int64_t num_classes = 1000;  ///< the label table has num_classes + 1 rows (null class last)
  int64_t mlp_ratio = 4;
  bool learn_sigma = true;  ///< out channels 2 * in_channels; the extra ones are dropped
  /// timm Attention's qk_norm (REPA's option): LayerNorm(head_dim, eps 1e-5, affine) on q and
  /// k, keys blocks.N.attn.{q,k}_norm.{weight,bias}
  bool qk_norm = false;

  /// "SiT-XL/2" (also "DiT-XL/2", "XL/2"); input_size and num_classes keep their defaults.
  static SiTConfig named(const std::string& name);
  std::string name() const;  ///< "SiT-XL/2"
  int64_t out_channels() const { return learn_sigma ? 2 * in_channels : in_channels; }
  int64_t tokens() const { return (input_size / patch) * (input_size / patch); }
};

/// Every parameter (checkpoint key) with its shape, in the reference's order.
ShapeList sit_parameter_shapes(const SiTConfig& c);
int64_t sit_parameter_count(const SiTConfig& c);

/// The fixed 2-D sin-cos position table (1, grid^2, dim), float32, computed in float64:
/// the first half of the dimensions encodes the column, the second half the row.
at::Tensor sincos_pos_embed(int64_t dim, int64_t grid);

/// as SiT/DiT models.py: TimestepEmbedder.timestep_embedding(t, 256): float32
/// frequencies exp(-ln(10000) k / 128), args = float(t) * freqs, [cos(args), sin(args)]
/// (cos first). t: (B) any dtype; returns (B, 256) float32 on t's device.
at::Tensor timestep_embedding(const at::Tensor& t);

/// softmax(q k^T / sqrt(hd)) v over (B, heads, T, hd) tensors: LibTorch 2.x's
/// scaled_dot_product_attention, or the same product written out on LibTorch 1.x. Shared by
/// the SiT and LightningDiT backbones.
at::Tensor attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v);

/// What a checkpoint says about its architecture (hidden size, patch, depth, classes,
/// learn_sigma, resolution), matched against the configuration table.
SiTConfig detect_sit_config(const StateDict& sd);

struct SiTOptions {
  std::string name;         ///< "SiT-XL/2"; empty: detect from the checkpoint
  int64_t input_size = 0;   ///< latent side; 0: the checkpoint's
  int64_t num_classes = 0;  ///< 0: the checkpoint's
  std::string device = "cpu";
  Precision precision = Precision::kFp32;
  /// DiT: keep the learned-sigma channels C..2C-1 (the variance interpolation v); SiT
  /// drops them.
  bool keep_learned_sigma = false;
  /// Keys under these prefixes are allowed and ignored (REPA: "projectors.", its
  /// training-only projection heads).
  std::vector<std::string> ignore_prefixes;
};

/// REPA's legacy key layout (as REPA utils.py: load_legacy_checkpoints): every key
/// "decoder_blocks.N.rest" becomes "blocks.(N + encoder_depth).rest"; other keys unchanged.
/// Returns how many keys were renamed.
int64_t rename_repa_legacy_keys(StateDict& sd, int64_t encoder_depth = 8);

class SiT {
 public:
  /// Strict loading (every key, every shape) with pos_embed recomputed when the requested
  /// resolution differs from the checkpoint's.
  SiT(const StateDict& sd, const SiTOptions& options);
  ~SiT();
  SiT(SiT&&) noexcept;

  /// x: latents (B, C, H, W) with H = W = input_size; t: (B) in [0, 1] for SiT, DiT's
  /// timestep indices 0..999 for DiT (the same embedder, spec/dit_diffusion.md section 9);
  /// y: (B) int64 labels, num_classes for the null class. Returns (B, C, H, W) in x's
  /// dtype, or (B, 2C, H, W) with keep_learned_sigma on a learn_sigma checkpoint.
  at::Tensor forward(const at::Tensor& x, const at::Tensor& t, const at::Tensor& y) const;
  /// A REPA network seen in SiT code time (protocols.md §3.1): REPA is trained on
  /// x_tau = (1 - tau) x + tau eps with target v_R = eps - x, so the code-time velocity is
  /// v(x, t) = -forward(x, tau = 1 - t) with tau in float32 (as REPA casts its grid).
  at::Tensor forward_repa(const at::Tensor& x, const at::Tensor& t, const at::Tensor& y) const;

  const SiTConfig& config() const;
  int64_t parameter_count() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sit::models
