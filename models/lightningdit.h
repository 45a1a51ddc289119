#pragma once
/// The LightningDiT backbone (hustvl/LightningDiT models/lightningdit.py, restated in
/// ../shared/spec/protocols.md §4.2): the SiT/DiT transformer with RMSNorm (learned
/// weight, eps 1e-6, computed in float32), SwiGLU MLPs (w12 / w3, hidden int(8 D / 3)),
/// 2-D rotary position embedding on q and k beside the absolute sin-cos table, optional
/// qk-norm (RMSNorm over the head dimension), patch 1 on 16 x 16 x 32 VA-VAE latents, no
/// learned sigma. Weights are held under the released checkpoint's keys and loaded
/// strictly; the model takes SiT code time (t = 0 noise, t = 1 data, float in [0, 1]) and
/// predicts the velocity.

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <memory>
#include <string>
#include <utility>

#include "models/checkpoint.h"
#include "models/sit.h"

namespace sit::models {

struct LightningDiTConfig {
  std::string size;  ///< "XL", "L", "B", "1p0B", "1p6B"
  int64_t depth = 28, hidden = 1152, heads = 16, patch = 1;
  int64_t input_size = 16;  ///< latent side (16 for 256 px with the f16 VA-VAE)
  int64_t in_channels = 32;
  int64_t num_classes = 1000;  ///< the label table has num_classes + 1 rows
  bool qk_norm = false;

  /// "LightningDiT-XL/1" (also "XL/1", any listed size, patch 1 or 2).
  static LightningDiTConfig named(const std::string& name);
  std::string name() const;  ///< "LightningDiT-XL/1"
  int64_t head_dim() const { return hidden / heads; }
  /// SwiGLU hidden width int(2/3 * 4 D): XL 3072, L 2730, B 2048.
  int64_t mlp_hidden() const { return (8 * hidden) / 3; }
  int64_t grid() const { return input_size / patch; }
};

/// Every parameter and buffer (checkpoint key) with its shape, in the reference's order;
/// feat_rope.freqs_cos / freqs_sin [tokens, head_dim] included.
ShapeList lightningdit_parameter_shapes(const LightningDiTConfig& c);

/// The RoPE tables (EVA's VisionRotaryEmbeddingFast with dim head_dim / 2 per axis, grid
/// g): (g * g, head_dim) cos and sin, float32; frequencies 10000^(-2m / (head_dim / 2)),
/// each used for one adjacent pair of dimensions; the first half of the head dimensions
/// rotates by the token's row, the second half by its column.
std::pair<at::Tensor, at::Tensor> lightningdit_rope_tables(int64_t head_dim, int64_t grid);

struct LightningDiTOptions {
  std::string name;  ///< "LightningDiT-XL/1"; empty: detect from the checkpoint
  std::string device = "cpu";
  Precision precision = Precision::kFp32;
};

class LightningDiT {
 public:
  /// Strict loading (every key and shape; the RoPE buffers may be absent, and are checked
  /// against their recomputed values when present). Throws sit::Error naming the file.
  LightningDiT(const StateDict& sd, const LightningDiTOptions& options);
  ~LightningDiT();
  LightningDiT(LightningDiT&&) noexcept;

  /// x: latents (B, 32, 16, 16); t: (B) code time in [0, 1]; y: (B) int64 labels, the
  /// null class num_classes. Returns the velocity, shape and dtype of x.
  /// as LightningDiT models/lightningdit.py: LightningDiT.forward
  at::Tensor forward(const at::Tensor& x, const at::Tensor& t, const at::Tensor& y) const;

  const LightningDiTConfig& config() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// What a checkpoint says about its architecture; throws naming the file when it is not a
/// LightningDiT (no SwiGLU / RMSNorm keys).
LightningDiTConfig detect_lightningdit_config(const StateDict& sd);

}  // namespace sit::models
