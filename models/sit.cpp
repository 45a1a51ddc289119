#include "models/sit.h"

#include <strings.h>

#include <ATen/ATen.h>
#include <ATen/Context.h>
#include <c10/core/InferenceMode.h>
#include <torch/version.h>

#include <cmath>
#include <map>

#include "common/error.h"
#include "common/format.h"

namespace sit::models {
namespace {

struct SizeRow {
  const char* size;
  int64_t depth, hidden, heads;
};
// spec/sit_model.md section 1
constexpr SizeRow kSizes[] = {
    {"XL", 28, 1152, 16}, {"L", 24, 1024, 16}, {"B", 12, 768, 12}, {"S", 12, 384, 6}};

struct Linear {
  at::Tensor w, b;
  at::Tensor operator()(const at::Tensor& x) const { return at::linear(x, w, b); }
};

struct Block {
  Linear qkv, proj, fc1, fc2, ada;
  Linear q_norm, k_norm;  ///< LayerNorm affine parameters (qk_norm only)
};

/// x (1 + scale) + shift with (B, D) modulation broadcast over tokens.
at::Tensor modulate(const at::Tensor& x, const at::Tensor& shift, const at::Tensor& scale) {
  return x * (1 + scale.unsqueeze(1)) + shift.unsqueeze(1);
}

}  // namespace

Precision parse_precision(const std::string& name) {
  if (strcasecmp(name.c_str(), "fp32") == 0) return Precision::kFp32;
  if (strcasecmp(name.c_str(), "tf32") == 0) return Precision::kTf32;
  if (strcasecmp(name.c_str(), "bf16") == 0) return Precision::kBf16;
  fail("precision must be one of fp32, tf32, bf16; got '", name, "'");
}

const char* to_string(Precision p) {
  switch (p) {
    case Precision::kFp32:
      return "fp32";
    case Precision::kTf32:
      return "tf32";
    case Precision::kBf16:
      return "bf16";
  }
  unreachable("Precision ", static_cast<int>(p));
}

void apply_precision(Precision p) {
  // PyTorch allows TF32 in cuDNN convolutions by default; the papers' numbers are fp32.
  const bool tf32 = p == Precision::kTf32;
  at::globalContext().setAllowTF32CuBLAS(tf32);
  at::globalContext().setAllowTF32CuDNN(tf32);
}

SiTConfig SiTConfig::named(const std::string& name) {
  std::string s = name;
  for (const char* prefix : {"SiT-", "DiT-"})
    if (s.rfind(prefix, 0) == 0) s = s.substr(4);
  const auto slash = s.find('/');
  if (slash != std::string::npos) {
    const std::string size = s.substr(0, slash), patch = s.substr(slash + 1);
    for (const auto& row : kSizes)
      if (size == row.size && (patch == "2" || patch == "4" || patch == "8")) {
        SiTConfig c;
        c.size = row.size;
        c.depth = row.depth;
        c.hidden = row.hidden;
        c.heads = row.heads;
        c.patch = std::stoll(patch);
        return c;
      }
  }
  fail("model name must be SiT-{S,B,L,XL}/{2,4,8} or DiT-{S,B,L,XL}/{2,4,8} (e.g. SiT-XL/2), "
       "got '", name, "'");
}

std::string SiTConfig::name() const {
  return cat("SiT-", size, "/", patch);
}

ShapeList sit_parameter_shapes(const SiTConfig& c) {
  const int64_t d = c.hidden, p = c.patch, m = c.mlp_ratio * d;
  ShapeList s = {
      {"pos_embed", {1, c.tokens(), d}},
      {"x_embedder.proj.weight", {d, c.in_channels, p, p}},
      {"x_embedder.proj.bias", {d}},
      {"t_embedder.mlp.0.weight", {d, 256}},
      {"t_embedder.mlp.0.bias", {d}},
      {"t_embedder.mlp.2.weight", {d, d}},
      {"t_embedder.mlp.2.bias", {d}},
      {"y_embedder.embedding_table.weight", {c.num_classes + 1, d}},
  };
  for (int64_t i = 0; i < c.depth; ++i) {
    const std::string b = cat("blocks.", i, ".");
    s.push_back({b + "attn.qkv.weight", {3 * d, d}});
    s.push_back({b + "attn.qkv.bias", {3 * d}});
    if (c.qk_norm)
      for (const char* n : {"attn.q_norm.", "attn.k_norm."}) {
        s.push_back({b + n + "weight", {d / c.heads}});
        s.push_back({b + n + "bias", {d / c.heads}});
      }
    s.push_back({b + "attn.proj.weight", {d, d}});
    s.push_back({b + "attn.proj.bias", {d}});
    s.push_back({b + "mlp.fc1.weight", {m, d}});
    s.push_back({b + "mlp.fc1.bias", {m}});
    s.push_back({b + "mlp.fc2.weight", {d, m}});
    s.push_back({b + "mlp.fc2.bias", {d}});
    s.push_back({b + "adaLN_modulation.1.weight", {6 * d, d}});
    s.push_back({b + "adaLN_modulation.1.bias", {6 * d}});
  }
  s.push_back({"final_layer.linear.weight", {p * p * c.out_channels(), d}});
  s.push_back({"final_layer.linear.bias", {p * p * c.out_channels()}});
  s.push_back({"final_layer.adaLN_modulation.1.weight", {2 * d, d}});
  s.push_back({"final_layer.adaLN_modulation.1.bias", {2 * d}});
  return s;
}

int64_t sit_parameter_count(const SiTConfig& c) {
  int64_t n = 0;
  for (const auto& [key, shape] : sit_parameter_shapes(c)) {
    int64_t k = 1;
    for (int64_t v : shape)
      k *= v;
    n += k;
  }
  return n;
}

at::Tensor sincos_pos_embed(int64_t dim, int64_t grid) {
  if (dim % 4 != 0) fail("pos_embed: hidden size must be a multiple of 4, got ", dim);
  const int64_t q = dim / 4;
  const auto f64 = at::TensorOptions().dtype(at::kDouble);
  const at::Tensor omega = at::pow(10000.0, -at::arange(q, f64) / static_cast<double>(q));
  const at::Tensor pos = at::arange(grid, f64);
  const at::Tensor ang = at::outer(pos, omega);                          // (grid, q)
  const at::Tensor col = at::cat({at::sin(ang), at::cos(ang)}, 1);       // (grid, D/2)
  const at::Tensor rows = col.unsqueeze(1).expand({grid, grid, 2 * q});  // [i][j] -> i
  const at::Tensor cols = col.unsqueeze(0).expand({grid, grid, 2 * q});  // [i][j] -> j
  return at::cat({cols, rows}, 2).reshape({1, grid * grid, dim}).to(at::kFloat);
}

SiTConfig detect_sit_config(const StateDict& sd) {
  auto need = [&](const char* key) {
    at::Tensor t = sd.find(key);
    if (!t.defined()) fail(sd.path, ": not a SiT/DiT checkpoint: key '", key, "' is missing");
    return t;
  };
  const at::Tensor proj = need("x_embedder.proj.weight");
  if (proj.dim() != 4 || proj.size(2) != proj.size(3))
    fail(sd.path, ": x_embedder.proj.weight must be (D, C, p, p), got ",
         shape_string(proj.sizes().vec()));
  const int64_t hidden = proj.size(0), patch = proj.size(2);
  SiTConfig c;
  bool found = false;
  for (const auto& row : kSizes)
    if (row.hidden == hidden) {
      c = SiTConfig::named(cat(row.size, "/", patch == 2 || patch == 4 || patch == 8 ? patch : 2));
      found = true;
    }
  if (!found)
    fail(sd.path, ": hidden size ", hidden, " matches none of SiT-S/B/L/XL (384, 768, 1024, 1152)");
  c.patch = patch;
  c.in_channels = proj.size(1);
  int64_t depth = 0;
  while (sd.find(cat("blocks.", depth, ".attn.qkv.weight")).defined())
    ++depth;
  c.depth = depth;
  c.num_classes = need("y_embedder.embedding_table.weight").size(0) - 1;
  const int64_t rows = need("final_layer.linear.weight").size(0);
  c.learn_sigma = rows == patch * patch * 2 * c.in_channels;
  c.qk_norm = sd.find("blocks.0.attn.q_norm.weight").defined();
  const at::Tensor pos = sd.find("pos_embed");
  if (pos.defined() && pos.dim() == 3) {
    const auto grid = static_cast<int64_t>(std::llround(std::sqrt(double(pos.size(1)))));
    c.input_size = grid * patch;
  }
  return c;
}

struct SiT::Impl {
  SiTConfig config;
  at::ScalarType dtype = at::kFloat;
  at::Tensor pos_embed, proj_w, proj_b, table;
  Linear t0, t2, final_ada, final_linear;
  std::vector<Block> blocks;
  int64_t parameters = 0;
  bool keep_learned_sigma = false;

  at::Tensor forward(const at::Tensor& x_in, const at::Tensor& t, const at::Tensor& y) const;
};

at::Tensor timestep_embedding(const at::Tensor& t) {
  // cos first, float32 frequencies as the reference
  const auto f32 = at::TensorOptions().dtype(at::kFloat).device(t.device());
  const at::Tensor freqs = at::exp(-std::log(10000.0) * at::arange(128, f32) / 128.0);
  const at::Tensor args = t.to(at::kFloat).unsqueeze(1) * freqs.unsqueeze(0);
  return at::cat({at::cos(args), at::sin(args)}, 1);
}

SiT::SiT(const StateDict& sd, const SiTOptions& o) : impl_(std::make_unique<Impl>()) {
  SiTConfig c = detect_sit_config(sd);
  const SiTConfig detected = c;
  if (!o.name.empty()) {
    const SiTConfig want = SiTConfig::named(o.name);
    if (want.hidden != c.hidden || want.patch != c.patch || want.depth != c.depth)
      fail(sd.path, ": the checkpoint is ",
           o.name.rfind("DiT-", 0) == 0 ? "DiT" + c.name().substr(3) : c.name(), " (hidden ",
           c.hidden, ", patch ", c.patch, ", depth ", c.depth, "), not the requested ", o.name);
    c.heads = want.heads;
  }
  if (o.num_classes > 0 && o.num_classes != c.num_classes)
    fail(sd.path, ": --num-classes ", o.num_classes,
         " does not match the checkpoint's label table (", c.num_classes + 1,
         " rows = ", c.num_classes, " classes + the null class)");
  if (o.input_size > 0) {
    if (o.input_size % c.patch != 0)
      fail("latent size ", o.input_size, " is not a multiple of the patch size ", c.patch);
    c.input_size = o.input_size;
  }
  // Strict check against the checkpoint's own resolution; pos_embed is then recomputed.
  at::Tensor pos = sd.find("pos_embed");
  LoadCheck check;
  check.ignore_prefixes = o.ignore_prefixes;
  match_state_dict(sd, sit_parameter_shapes(detected), c.name(), check);
  Impl& m = *impl_;
  m.config = c;
  m.parameters = sit_parameter_count(c);
  m.keep_learned_sigma = o.keep_learned_sigma;
  m.dtype = o.precision == Precision::kBf16 ? at::kBFloat16 : at::kFloat;
  const auto opts = at::TensorOptions().dtype(m.dtype).device(at::Device(o.device));
  auto get = [&](const std::string& key) { return sd.find(key).to(opts).contiguous(); };
  auto lin = [&](const std::string& key) {
    return Linear{get(key + ".weight"), get(key + ".bias")};
  };
  m.pos_embed = c.input_size == detected.input_size
                    ? get("pos_embed")
                    : sincos_pos_embed(c.hidden, c.input_size / c.patch).to(opts);
  m.proj_w = get("x_embedder.proj.weight");
  m.proj_b = get("x_embedder.proj.bias");
  m.t0 = lin("t_embedder.mlp.0");
  m.t2 = lin("t_embedder.mlp.2");
  m.table = get("y_embedder.embedding_table.weight");
  for (int64_t i = 0; i < c.depth; ++i) {
    const std::string b = cat("blocks.", i, ".");
    Block blk{lin(b + "attn.qkv"), lin(b + "attn.proj"), lin(b + "mlp.fc1"),
              lin(b + "mlp.fc2"), lin(b + "adaLN_modulation.1"), {}, {}};
    if (c.qk_norm) {
      blk.q_norm = lin(b + "attn.q_norm");
      blk.k_norm = lin(b + "attn.k_norm");
    }
    m.blocks.push_back(std::move(blk));
  }
  m.final_ada = lin("final_layer.adaLN_modulation.1");
  m.final_linear = lin("final_layer.linear");
}

int64_t rename_repa_legacy_keys(StateDict& sd, int64_t encoder_depth) {
  int64_t renamed = 0;
  const std::string from = "decoder_blocks.";
  for (auto& [key, tensor] : sd.tensors) {
    const size_t at = key.find(from);
    if (at == std::string::npos) continue;
    const size_t dot = key.find('.', at + from.size());
    const std::string index = key.substr(at + from.size(), dot - at - from.size());
    if (index.empty() || index.find_first_not_of("0123456789") != std::string::npos)
      fail(sd.path, ": legacy REPA key '", key, "': expected decoder_blocks.N.");
    key = key.substr(0, at) + "blocks." + std::to_string(std::stoll(index) + encoder_depth) +
          key.substr(dot);
    ++renamed;
  }
  return renamed;
}

SiT::~SiT() = default;
SiT::SiT(SiT&&) noexcept = default;
const SiTConfig& SiT::config() const {
  return impl_->config;
}
int64_t SiT::parameter_count() const {
  return impl_->parameters;
}

at::Tensor SiT::forward(const at::Tensor& x, const at::Tensor& t, const at::Tensor& y) const {
  c10::InferenceMode no_autograd;  // no graph, no version counters
  const SiTConfig& c = impl_->config;
  if (x.dim() != 4 || x.size(1) != c.in_channels || x.size(2) != c.input_size ||
      x.size(3) != c.input_size)
    fail(c.name(), ": input must be (B, ", c.in_channels, ", ", c.input_size, ", ", c.input_size,
         "), got ", shape_string(x.sizes().vec()));
  if (t.dim() != 1 || t.size(0) != x.size(0) || y.dim() != 1 || y.size(0) != x.size(0))
    fail(c.name(), ": t and y must have shape (", x.size(0), ")");
  return impl_->forward(x, t, y).to(x.scalar_type());
}

at::Tensor attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v) {
#if TORCH_VERSION_MAJOR >= 2
  return at::scaled_dot_product_attention(q, k, v);
#else
  const at::Tensor scores =
      at::matmul(q, k.transpose(-2, -1)) * (1.0 / std::sqrt(static_cast<double>(q.size(-1))));
  return at::matmul(at::softmax(scores, -1), v);
#endif
}

at::Tensor SiT::forward_repa(const at::Tensor& x, const at::Tensor& t, const at::Tensor& y) const {
  return -forward(x, (1.0 - t).to(at::kFloat), y);
}

at::Tensor SiT::Impl::forward(const at::Tensor& x_in, const at::Tensor& t,
                              const at::Tensor& y) const {
  const SiTConfig& c = config;
  const int64_t batch = x_in.size(0), d = c.hidden, p = c.patch, g = c.input_size / p;
  const int64_t heads = c.heads, hd = d / heads, tokens = g * g;

  // Patch embedding, tokens in row-major (h, w) order.
  at::Tensor x = at::conv2d(x_in.to(dtype), proj_w, proj_b, {p, p});
  x = x.flatten(2).transpose(1, 2) + pos_embed;  // (B, T, D)

  const at::Tensor t_freq = timestep_embedding(t.to(x_in.device())).to(dtype);
  const at::Tensor t_emb = t2(at::silu(t0(t_freq)));
  const at::Tensor cond = at::silu(t_emb + at::embedding(table, y.to(at::kLong)));

  const std::vector<int64_t> norm_shape = {d};
  for (const Block& blk : blocks) {
    const auto mod = blk.ada(cond).chunk(6, 1);
    at::Tensor h = modulate(at::layer_norm(x, norm_shape, {}, {}, 1e-6), mod[0], mod[1]);
    // Batched attention over all heads: (3, B, heads, T, hd).
    const at::Tensor qkv =
        blk.qkv(h).reshape({batch, tokens, 3, heads, hd}).permute({2, 0, 3, 1, 4});
    at::Tensor q = qkv[0], k = qkv[1];
    if (c.qk_norm) {  // timm Attention: q_norm / k_norm over head_dim before the product
      q = at::layer_norm(q, {hd}, blk.q_norm.w, blk.q_norm.b, 1e-5);
      k = at::layer_norm(k, {hd}, blk.k_norm.w, blk.k_norm.b, 1e-5);
    }
    at::Tensor a = attention(q, k, qkv[2]);
    a = a.transpose(1, 2).reshape({batch, tokens, d});
    x = x + mod[2].unsqueeze(1) * blk.proj(a);
    h = modulate(at::layer_norm(x, norm_shape, {}, {}, 1e-6), mod[3], mod[4]);
    x = x + mod[5].unsqueeze(1) * blk.fc2(at::gelu(blk.fc1(h), "tanh"));
  }
  const auto fmod = final_ada(cond).chunk(2, 1);
  x = final_linear(modulate(at::layer_norm(x, norm_shape, {}, {}, 1e-6), fmod[0], fmod[1]));

  // Unpatchify: feature (pi * p + pj) * C + ch of token (h, w) -> pixel (h p + pi, w p + pj).
  const int64_t co = c.out_channels();
  x = x.reshape({batch, g, g, p, p, co})
          .permute({0, 5, 1, 3, 2, 4})
          .reshape({batch, co, g * p, g * p});
  // SiT keeps the first in_channels outputs (the learned-sigma half is dropped).
  if (c.learn_sigma && !keep_learned_sigma) x = x.narrow(1, 0, c.in_channels);
  return x;
}

}  // namespace sit::models
