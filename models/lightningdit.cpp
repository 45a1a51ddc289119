#include "models/lightningdit.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <cmath>
#include <utility>
#include <vector>

#include "common/error.h"
#include "common/format.h"

namespace sit::models {
namespace {

struct SizeRow {
  const char* size;
  int64_t depth, hidden, heads;
};
// protocols.md §4.2
constexpr SizeRow kSizes[] = {{"XL", 28, 1152, 16},
                              {"L", 24, 1024, 16},
                              {"B", 12, 768, 12},
                              {"1p0B", 24, 1536, 24},
                              {"1p6B", 28, 1792, 28}};

struct Linear {
  at::Tensor w, b;
  at::Tensor operator()(const at::Tensor& x) const { return at::linear(x, w, b); }
};

struct Block {
  at::Tensor norm1, norm2, q_norm, k_norm;  ///< RMSNorm weights (q/k: qk_norm only)
  Linear qkv, proj, w12, w3, ada;
};

/// RMSNorm as the reference: x * rsqrt(mean(x^2) + 1e-6) in float32, cast back, * weight.
at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& weight) {
  const at::Tensor f = x.to(at::kFloat);
  const at::Tensor normed = f * at::rsqrt(f.pow(2).mean(-1, /*keepdim=*/true) + 1e-6);
  return normed.to(x.scalar_type()) * weight;
}

at::Tensor modulate(const at::Tensor& x, const at::Tensor& shift, const at::Tensor& scale) {
  return x * (1 + scale.unsqueeze(1)) + shift.unsqueeze(1);
}

/// x cos + rotate_half(x) sin, rotate_half taking each adjacent pair (a, b) to (-b, a).
at::Tensor apply_rope(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin) {
  std::vector<int64_t> pairs = x.sizes().vec();
  pairs.back() /= 2;
  pairs.push_back(2);
  const at::Tensor p = x.reshape(pairs);
  const at::Tensor rotated = at::stack({-p.select(-1, 1), p.select(-1, 0)}, -1).reshape(x.sizes());
  return x * cos + rotated * sin;
}

}  // namespace

LightningDiTConfig LightningDiTConfig::named(const std::string& name) {
  std::string s = name;
  if (s.rfind("LightningDiT-", 0) == 0) s = s.substr(13);
  const auto slash = s.find('/');
  if (slash != std::string::npos) {
    const std::string size = s.substr(0, slash), patch = s.substr(slash + 1);
    for (const auto& row : kSizes)
      if (size == row.size && (patch == "1" || patch == "2")) {
        LightningDiTConfig c;
        c.size = row.size;
        c.depth = row.depth;
        c.hidden = row.hidden;
        c.heads = row.heads;
        c.patch = std::stoll(patch);
        c.input_size = 16;
        return c;
      }
  }
  fail("model name must be LightningDiT-{B,L,XL,1p0B,1p6B}/{1,2} (e.g. LightningDiT-XL/1), got '",
       name, "'");
}

std::string LightningDiTConfig::name() const {
  return cat("LightningDiT-", size, "/", patch);
}

ShapeList lightningdit_parameter_shapes(const LightningDiTConfig& c) {
  const int64_t d = c.hidden, p = c.patch, h = c.mlp_hidden(), hd = c.head_dim();
  const int64_t tokens = c.grid() * c.grid();
  ShapeList s = {
      {"pos_embed", {1, tokens, d}},
      {"x_embedder.proj.weight", {d, c.in_channels, p, p}},
      {"x_embedder.proj.bias", {d}},
      {"t_embedder.mlp.0.weight", {d, 256}},
      {"t_embedder.mlp.0.bias", {d}},
      {"t_embedder.mlp.2.weight", {d, d}},
      {"t_embedder.mlp.2.bias", {d}},
      {"y_embedder.embedding_table.weight", {c.num_classes + 1, d}},
      {"feat_rope.freqs_cos", {tokens, hd}},
      {"feat_rope.freqs_sin", {tokens, hd}},
  };
  for (int64_t i = 0; i < c.depth; ++i) {
    const std::string b = cat("blocks.", i, ".");
    s.push_back({b + "norm1.weight", {d}});
    s.push_back({b + "attn.qkv.weight", {3 * d, d}});
    s.push_back({b + "attn.qkv.bias", {3 * d}});
    if (c.qk_norm) {
      s.push_back({b + "attn.q_norm.weight", {hd}});
      s.push_back({b + "attn.k_norm.weight", {hd}});
    }
    s.push_back({b + "attn.proj.weight", {d, d}});
    s.push_back({b + "attn.proj.bias", {d}});
    s.push_back({b + "norm2.weight", {d}});
    s.push_back({b + "mlp.w12.weight", {2 * h, d}});
    s.push_back({b + "mlp.w12.bias", {2 * h}});
    s.push_back({b + "mlp.w3.weight", {d, h}});
    s.push_back({b + "mlp.w3.bias", {d}});
    s.push_back({b + "adaLN_modulation.1.weight", {6 * d, d}});
    s.push_back({b + "adaLN_modulation.1.bias", {6 * d}});
  }
  s.push_back({"final_layer.norm_final.weight", {d}});
  s.push_back({"final_layer.linear.weight", {p * p * c.in_channels, d}});
  s.push_back({"final_layer.linear.bias", {p * p * c.in_channels}});
  s.push_back({"final_layer.adaLN_modulation.1.weight", {2 * d, d}});
  s.push_back({"final_layer.adaLN_modulation.1.bias", {2 * d}});
  return s;
}

std::pair<at::Tensor, at::Tensor> lightningdit_rope_tables(int64_t head_dim, int64_t grid) {
  if (head_dim % 4 != 0) fail("RoPE: head dimension must be a multiple of 4, got ", head_dim);
  const int64_t half = head_dim / 2;  // per axis
  const auto f32 = at::TensorOptions().dtype(at::kFloat);
  // EVA VisionRotaryEmbeddingFast: 1 / theta^(arange(0, dim, 2) / dim), float32
  const at::Tensor freqs = 1.0 / at::pow(10000.0, at::arange(0, half, 2, f32) / static_cast<double>(half));
  const at::Tensor pos = at::arange(grid, f32);
  // each frequency for one adjacent pair: (grid, half)
  const at::Tensor ang = at::outer(pos, freqs).repeat_interleave(2, 1);
  const at::Tensor rows = ang.unsqueeze(1).expand({grid, grid, half});  // token (h, w) -> h
  const at::Tensor cols = ang.unsqueeze(0).expand({grid, grid, half});  // -> w
  const at::Tensor all = at::cat({rows, cols}, 2).reshape({grid * grid, head_dim});
  return {at::cos(all), at::sin(all)};
}

LightningDiTConfig detect_lightningdit_config(const StateDict& sd) {
  auto need = [&](const std::string& key) {
    at::Tensor t = sd.find(key);
    if (!t.defined())
      fail(sd.path, ": not a LightningDiT checkpoint: key '", key, "' is missing",
           sd.find("blocks.0.mlp.fc1.weight").defined()
               ? " (it has SiT's GELU MLP: load it with --model sit:...)"
               : "");
    return t;
  };
  need("blocks.0.mlp.w12.weight");
  need("blocks.0.norm1.weight");
  const at::Tensor proj = need("x_embedder.proj.weight");
  if (proj.dim() != 4 || proj.size(2) != proj.size(3))
    fail(sd.path, ": x_embedder.proj.weight must be (D, C, p, p), got ",
         shape_string(proj.sizes().vec()));
  LightningDiTConfig c;
  bool found = false;
  for (const auto& row : kSizes)
    if (row.hidden == proj.size(0)) {
      c = LightningDiTConfig::named(cat(row.size, "/1"));
      found = true;
    }
  if (!found)
    fail(sd.path, ": hidden size ", proj.size(0),
         " matches none of LightningDiT-B/L/XL/1p0B/1p6B (768, 1024, 1152, 1536, 1792)");
  c.patch = proj.size(2);
  c.in_channels = proj.size(1);
  int64_t depth = 0;
  while (sd.find(cat("blocks.", depth, ".attn.qkv.weight")).defined())
    ++depth;
  c.depth = depth;
  c.num_classes = need("y_embedder.embedding_table.weight").size(0) - 1;
  c.qk_norm = sd.find("blocks.0.attn.q_norm.weight").defined();
  const at::Tensor pos = need("pos_embed");
  if (pos.dim() == 3)
    c.input_size = static_cast<int64_t>(std::llround(std::sqrt(double(pos.size(1))))) * c.patch;
  return c;
}

struct LightningDiT::Impl {
  LightningDiTConfig config;
  at::ScalarType dtype = at::kFloat;
  at::Tensor pos_embed, proj_w, proj_b, table, rope_cos, rope_sin, final_norm;
  Linear t0, t2, final_ada, final_linear;
  std::vector<Block> blocks;

  at::Tensor forward(const at::Tensor& x_in, const at::Tensor& t, const at::Tensor& y) const;
};

LightningDiT::LightningDiT(const StateDict& sd, const LightningDiTOptions& o)
    : impl_(std::make_unique<Impl>()) {
  LightningDiTConfig c = detect_lightningdit_config(sd);
  if (!o.name.empty()) {
    const LightningDiTConfig want = LightningDiTConfig::named(o.name);
    if (want.hidden != c.hidden || want.patch != c.patch || want.depth != c.depth)
      fail(sd.path, ": the checkpoint is ", c.name(), " (hidden ", c.hidden, ", patch ", c.patch,
           ", depth ", c.depth, "), not the requested ", want.name());
  }
  ShapeList expected = lightningdit_parameter_shapes(c);
  // the RoPE buffers are in the reference's state dicts; accept files without them
  const bool has_rope = sd.find("feat_rope.freqs_cos").defined();
  if (!has_rope)
    expected.erase(std::remove_if(expected.begin(), expected.end(),
                                  [](const auto& e) { return e.first.rfind("feat_rope.", 0) == 0; }),
                   expected.end());
  match_state_dict(sd, expected, c.name());
  auto [cos, sin] = lightningdit_rope_tables(c.head_dim(), c.grid());
  if (has_rope) {
    const double dc = (sd.find("feat_rope.freqs_cos").to(at::kFloat) - cos).abs().max().item<double>();
    const double ds = (sd.find("feat_rope.freqs_sin").to(at::kFloat) - sin).abs().max().item<double>();
    if (!(dc < 2e-3 && ds < 2e-3))  // (float16 storage rounds them by up to 5e-4)
      fail(sd.path, ": feat_rope.freqs_cos/sin differ from the RoPE of a ", c.grid(), " x ",
           c.grid(), " grid with head dimension ", c.head_dim(), " by up to ", std::max(dc, ds),
           ": not the LightningDiT layout");
  }
  Impl& m = *impl_;
  m.config = c;
  m.dtype = o.precision == Precision::kBf16 ? at::kBFloat16 : at::kFloat;
  const auto opts = at::TensorOptions().dtype(m.dtype).device(at::Device(o.device));
  auto get = [&](const std::string& key) { return sd.find(key).to(opts).contiguous(); };
  auto lin = [&](const std::string& key) {
    return Linear{get(key + ".weight"), get(key + ".bias")};
  };
  m.pos_embed = get("pos_embed");
  m.proj_w = get("x_embedder.proj.weight");
  m.proj_b = get("x_embedder.proj.bias");
  m.t0 = lin("t_embedder.mlp.0");
  m.t2 = lin("t_embedder.mlp.2");
  m.table = get("y_embedder.embedding_table.weight");
  m.rope_cos = cos.to(opts);
  m.rope_sin = sin.to(opts);
  for (int64_t i = 0; i < c.depth; ++i) {
    const std::string b = cat("blocks.", i, ".");
    Block blk;
    blk.norm1 = get(b + "norm1.weight");
    blk.norm2 = get(b + "norm2.weight");
    if (c.qk_norm) {
      blk.q_norm = get(b + "attn.q_norm.weight");
      blk.k_norm = get(b + "attn.k_norm.weight");
    }
    blk.qkv = lin(b + "attn.qkv");
    blk.proj = lin(b + "attn.proj");
    blk.w12 = lin(b + "mlp.w12");
    blk.w3 = lin(b + "mlp.w3");
    blk.ada = lin(b + "adaLN_modulation.1");
    m.blocks.push_back(std::move(blk));
  }
  m.final_norm = get("final_layer.norm_final.weight");
  m.final_ada = lin("final_layer.adaLN_modulation.1");
  m.final_linear = lin("final_layer.linear");
}

LightningDiT::~LightningDiT() = default;
LightningDiT::LightningDiT(LightningDiT&&) noexcept = default;
const LightningDiTConfig& LightningDiT::config() const {
  return impl_->config;
}

at::Tensor LightningDiT::forward(const at::Tensor& x, const at::Tensor& t,
                                 const at::Tensor& y) const {
  c10::InferenceMode no_autograd;
  const LightningDiTConfig& c = impl_->config;
  if (x.dim() != 4 || x.size(1) != c.in_channels || x.size(2) != c.input_size ||
      x.size(3) != c.input_size)
    fail(c.name(), ": input must be (B, ", c.in_channels, ", ", c.input_size, ", ", c.input_size,
         "), got ", shape_string(x.sizes().vec()));
  if (t.dim() != 1 || t.size(0) != x.size(0) || y.dim() != 1 || y.size(0) != x.size(0))
    fail(c.name(), ": t and y must have shape (", x.size(0), ")");
  return impl_->forward(x, t, y).to(x.scalar_type());
}

at::Tensor LightningDiT::Impl::forward(const at::Tensor& x_in, const at::Tensor& t,
                                       const at::Tensor& y) const {
  const LightningDiTConfig& c = config;
  const int64_t batch = x_in.size(0), d = c.hidden, p = c.patch, g = c.grid();
  const int64_t heads = c.heads, hd = c.head_dim(), tokens = g * g;

  at::Tensor x = at::conv2d(x_in.to(dtype), proj_w, proj_b, {p, p});
  x = x.flatten(2).transpose(1, 2) + pos_embed;  // (B, T, D), tokens row-major

  const at::Tensor t_freq = timestep_embedding(t.to(x_in.device())).to(dtype);
  const at::Tensor t_emb = t2(at::silu(t0(t_freq)));
  const at::Tensor cond = at::silu(t_emb + at::embedding(table, y.to(at::kLong)));

  for (const Block& blk : blocks) {
    const auto mod = blk.ada(cond).chunk(6, 1);
    at::Tensor h = modulate(rms_norm(x, blk.norm1), mod[0], mod[1]);
    const at::Tensor qkv =
        blk.qkv(h).reshape({batch, tokens, 3, heads, hd}).permute({2, 0, 3, 1, 4});
    at::Tensor q = qkv[0], k = qkv[1];
    if (c.qk_norm) {
      q = rms_norm(q, blk.q_norm);
      k = rms_norm(k, blk.k_norm);
    }
    q = apply_rope(q, rope_cos, rope_sin);  // (B, heads, T, hd) with (T, hd) tables
    k = apply_rope(k, rope_cos, rope_sin);
    at::Tensor a = attention(q, k, qkv[2]);
    a = a.transpose(1, 2).reshape({batch, tokens, d});
    x = x + mod[2].unsqueeze(1) * blk.proj(a);
    h = modulate(rms_norm(x, blk.norm2), mod[3], mod[4]);
    const auto ab = blk.w12(h).chunk(2, -1);  // SwiGLU: w3(silu(a) * b)
    x = x + mod[5].unsqueeze(1) * blk.w3(at::silu(ab[0]) * ab[1]);
  }
  const auto fmod = final_ada(cond).chunk(2, 1);
  x = final_linear(modulate(rms_norm(x, final_norm), fmod[0], fmod[1]));

  const int64_t co = c.in_channels;  // unpatchify as SiT
  return x.reshape({batch, g, g, p, p, co})
      .permute({0, 5, 1, 3, 2, 4})
      .reshape({batch, co, g * p, g * p});
}

}  // namespace sit::models
