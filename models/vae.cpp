#include "models/vae.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/format.h"

namespace fs = std::filesystem;

namespace sit::models {
namespace {

struct Conv {
  at::Tensor w, b;
  int64_t pad = 0;
  at::Tensor operator()(const at::Tensor& x) const { return at::conv2d(x, w, b, 1, pad); }
};
struct Norm {
  at::Tensor w, b;
};
struct Resnet {
  Norm norm1, norm2;
  Conv conv1, conv2, shortcut;  // shortcut undefined when channels are equal
};
struct Attention {
  Norm norm;
  at::Tensor q_w, q_b, k_w, k_b, v_w, v_b, o_w, o_b;
};
struct UpBlock {
  std::vector<Resnet> resnets;
  Conv upsample;  // undefined in the last block
};

void add_resnet(ShapeList& s, const std::string& p, int64_t cin, int64_t cout) {
  s.push_back({p + "norm1.weight", {cin}});
  s.push_back({p + "norm1.bias", {cin}});
  s.push_back({p + "conv1.weight", {cout, cin, 3, 3}});
  s.push_back({p + "conv1.bias", {cout}});
  s.push_back({p + "norm2.weight", {cout}});
  s.push_back({p + "norm2.bias", {cout}});
  s.push_back({p + "conv2.weight", {cout, cout, 3, 3}});
  s.push_back({p + "conv2.bias", {cout}});
  if (cin != cout) {
    s.push_back({p + "conv_shortcut.weight", {cout, cin, 1, 1}});
    s.push_back({p + "conv_shortcut.bias", {cout}});
  }
}

const char* const kNewNames[] = {"to_q", "to_k", "to_v", "to_out.0"};
const char* const kOldNames[] = {"query", "key", "value", "proj_attn"};
const char* const kMid = "decoder.mid_block.attentions.0.";

}  // namespace

VaeConfig VaeConfig::from_json(const std::string& path) {
  std::ifstream in(path);
  if (!in) fail(path, ": cannot open VAE config");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
  } catch (const std::exception& e) {
    fail(path, ": not valid JSON: ", e.what());
  }
  VaeConfig c;
  auto key = [&](const char* k, auto& v) {
    if (!j.contains(k)) return;
    try {
      j.at(k).get_to(v);
    } catch (const std::exception&) {
      fail(path, ": key '", k, "' has the wrong type (", j.at(k).dump(), ")");
    }
  };
  key("block_out_channels", c.block_out_channels);
  key("layers_per_block", c.layers_per_block);
  key("latent_channels", c.latent_channels);
  key("out_channels", c.out_channels);
  key("norm_num_groups", c.norm_num_groups);
  key("scaling_factor", c.scaling_factor);
  key("mid_block_add_attention", c.mid_block_attention);
  key("use_post_quant_conv", c.post_quant_conv);
  if (j.contains("act_fn") && j["act_fn"] != "silu")
    fail(path, ": act_fn must be \"silu\", got ", j["act_fn"].dump());
  if (j.contains("up_block_types"))
    for (const auto& t : j["up_block_types"])
      if (t != "UpDecoderBlock2D")
        fail(path, ": up_block_types must all be \"UpDecoderBlock2D\", got ", t.dump());
  if (c.block_out_channels.empty()) fail(path, ": block_out_channels must not be empty");
  for (int64_t ch : c.block_out_channels)
    if (ch <= 0 || ch % c.norm_num_groups != 0)
      fail(path, ": block_out_channels ", ch, " must be a positive multiple of norm_num_groups ",
           c.norm_num_groups);
  if (!(c.scaling_factor > 0)) fail(path, ": scaling_factor must be > 0, got ", c.scaling_factor);
  return c;
}

ShapeList vae_decoder_shapes(const VaeConfig& c, bool old_names) {
  const int64_t lat = c.latent_channels, top = c.block_out_channels.back();
  ShapeList s;
  if (c.post_quant_conv) {
    s.push_back({"post_quant_conv.weight", {lat, lat, 1, 1}});
    s.push_back({"post_quant_conv.bias", {lat}});
  }
  s.push_back({"decoder.conv_in.weight", {top, lat, 3, 3}});
  s.push_back({"decoder.conv_in.bias", {top}});
  add_resnet(s, "decoder.mid_block.resnets.0.", top, top);
  if (c.mid_block_attention) {
    s.push_back({cat(kMid, "group_norm.weight"), {top}});
    s.push_back({cat(kMid, "group_norm.bias"), {top}});
    for (const char* n : old_names ? kOldNames : kNewNames) {
      s.push_back({cat(kMid, n, ".weight"), {top, top}});
      s.push_back({cat(kMid, n, ".bias"), {top}});
    }
  }
  add_resnet(s, "decoder.mid_block.resnets.1.", top, top);
  const size_t n = c.block_out_channels.size();
  int64_t prev = top;
  for (size_t i = 0; i < n; ++i) {
    const int64_t cout = c.block_out_channels[n - 1 - i];
    for (int64_t j = 0; j <= c.layers_per_block; ++j)
      add_resnet(s, cat("decoder.up_blocks.", i, ".resnets.", j, "."), j == 0 ? prev : cout, cout);
    if (i + 1 < n) {
      s.push_back({cat("decoder.up_blocks.", i, ".upsamplers.0.conv.weight"), {cout, cout, 3, 3}});
      s.push_back({cat("decoder.up_blocks.", i, ".upsamplers.0.conv.bias"), {cout}});
    }
    prev = cout;
  }
  const int64_t first = c.block_out_channels.front();
  s.push_back({"decoder.conv_norm_out.weight", {first}});
  s.push_back({"decoder.conv_norm_out.bias", {first}});
  s.push_back({"decoder.conv_out.weight", {c.out_channels, first, 3, 3}});
  s.push_back({"decoder.conv_out.bias", {c.out_channels}});
  return s;
}

struct VaeDecoder::Impl {
  VaeConfig config;
  std::string path;
  at::ScalarType dtype = at::kFloat;
  int64_t parameters = 0;
  Conv post_quant, conv_in, conv_out;
  Resnet mid0, mid1;
  Attention attn;
  std::vector<UpBlock> up;
  Norm norm_out;

  at::Tensor group_norm(const at::Tensor& x, const Norm& n) const {
    return at::group_norm(x, config.norm_num_groups, n.w, n.b, 1e-6);
  }
  at::Tensor resnet(const at::Tensor& x, const Resnet& r) const {
    at::Tensor h = r.conv1(at::silu(group_norm(x, r.norm1)));
    h = r.conv2(at::silu(group_norm(h, r.norm2)));
    return (r.shortcut.w.defined() ? r.shortcut(x) : x) + h;
  }
  /// One-head self-attention over all pixels, residual.
  at::Tensor attention(const at::Tensor& x) const {
    const int64_t b = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
    const at::Tensor u = group_norm(x, attn.norm).reshape({b, c, h * w}).transpose(1, 2);
    const at::Tensor q = at::linear(u, attn.q_w, attn.q_b), k = at::linear(u, attn.k_w, attn.k_b),
                     v = at::linear(u, attn.v_w, attn.v_b);
    // diffusers upcasts the softmax to float32
    const at::Tensor scores =
        at::matmul(q, k.transpose(1, 2)).to(at::kFloat) * (1.0 / std::sqrt(static_cast<double>(c)));
    const at::Tensor o =
        at::linear(at::matmul(at::softmax(scores, -1).to(dtype), v), attn.o_w, attn.o_b);
    return x + o.transpose(1, 2).reshape({b, c, h, w});
  }
};

VaeDecoder VaeDecoder::load(const std::string& where, const std::string& device,
                            Precision precision) {
  fs::path dir = where, weights;
  if (fs::is_regular_file(dir)) {
    weights = dir;
    dir = dir.parent_path();
  } else if (fs::is_directory(dir)) {
    for (const char* name : {"diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin"})
      if (fs::exists(dir / name)) {
        weights = dir / name;
        break;
      }
    if (weights.empty())
      fail(where,
           ": VAE folder has neither diffusion_pytorch_model.safetensors nor "
           "diffusion_pytorch_model.bin");
  } else {
    fail(where, ": VAE folder or file does not exist");
  }
  if (!fs::exists(dir / "config.json"))
    fail(where, ": the VAE needs its config.json (looked in ", dir.string(), ")");
  return VaeDecoder(VaeConfig::from_json((dir / "config.json").string()),
                    load_state_dict(weights.string()), device, precision);
}

VaeDecoder::VaeDecoder(const VaeConfig& c, const StateDict& sd, const std::string& device,
                       Precision precision)
    : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  m.config = c;
  m.path = sd.path;
  const bool old = sd.find(cat(kMid, "query.weight")).defined();
  const ShapeList shapes = vae_decoder_shapes(c, old);
  // Attention projections saved as 1x1 convolutions load as linear layers.
  StateDict flat = sd;
  for (auto& [key, t] : flat.tensors)
    if (key.rfind(kMid, 0) == 0 && t.dim() == 4 && t.size(2) == 1 && t.size(3) == 1)
      t = t.flatten(1);
  match_state_dict(flat, shapes, cat("the AutoencoderKL decoder of ", sd.path),
                   LoadCheck{{"encoder.", "quant_conv."}});
  for (const auto& kv : shapes) {
    int64_t k = 1;
    for (int64_t v : kv.second)
      k *= v;
    m.parameters += k;
  }
  m.dtype = precision == Precision::kBf16 ? at::kBFloat16 : at::kFloat;
  const auto opts = at::TensorOptions().dtype(m.dtype).device(at::Device(device));
  auto get = [&](const std::string& key) { return flat.find(key).to(opts).contiguous(); };
  auto conv = [&](const std::string& p, int64_t pad) {
    return Conv{get(p + ".weight"), get(p + ".bias"), pad};
  };
  auto norm = [&](const std::string& p) { return Norm{get(p + ".weight"), get(p + ".bias")}; };
  auto resnet = [&](const std::string& p) {
    Resnet r{norm(p + "norm1"), norm(p + "norm2"), conv(p + "conv1", 1), conv(p + "conv2", 1), {}};
    if (flat.find(p + "conv_shortcut.weight").defined()) r.shortcut = conv(p + "conv_shortcut", 0);
    return r;
  };
  if (c.post_quant_conv) m.post_quant = conv("post_quant_conv", 0);
  m.conv_in = conv("decoder.conv_in", 1);
  m.mid0 = resnet("decoder.mid_block.resnets.0.");
  m.mid1 = resnet("decoder.mid_block.resnets.1.");
  if (c.mid_block_attention) {
    const char* const* n = old ? kOldNames : kNewNames;
    auto w = [&](int i) { return get(cat(kMid, n[i], ".weight")); };
    auto b = [&](int i) { return get(cat(kMid, n[i], ".bias")); };
    m.attn = {norm(cat(kMid, "group_norm")), w(0), b(0), w(1), b(1), w(2), b(2), w(3), b(3)};
  }
  const size_t nb = c.block_out_channels.size();
  for (size_t i = 0; i < nb; ++i) {
    UpBlock u;
    for (int64_t j = 0; j <= c.layers_per_block; ++j)
      u.resnets.push_back(resnet(cat("decoder.up_blocks.", i, ".resnets.", j, ".")));
    if (i + 1 < nb) u.upsample = conv(cat("decoder.up_blocks.", i, ".upsamplers.0.conv"), 1);
    m.up.push_back(std::move(u));
  }
  m.norm_out = norm("decoder.conv_norm_out");
  m.conv_out = conv("decoder.conv_out", 1);
}

VaeDecoder::~VaeDecoder() = default;
VaeDecoder::VaeDecoder(VaeDecoder&&) noexcept = default;
const VaeConfig& VaeDecoder::config() const {
  return impl_->config;
}
const std::string& VaeDecoder::weights_path() const {
  return impl_->path;
}
int64_t VaeDecoder::parameter_count() const {
  return impl_->parameters;
}

at::Tensor VaeDecoder::decode(const at::Tensor& latents) const {
  c10::InferenceMode no_autograd;  // no graph, no version counters
  const Impl& m = *impl_;
  if (latents.dim() != 4 || latents.size(1) != m.config.latent_channels)
    fail("VAE decode: latents must be (B, ", m.config.latent_channels, ", h, w), got ",
         shape_string(latents.sizes().vec()));
  at::Tensor z = latents.to(m.dtype) * (1.0 / m.config.scaling_factor);
  if (m.config.post_quant_conv) z = m.post_quant(z);
  z = m.conv_in(z);
  z = m.resnet(z, m.mid0);
  if (m.config.mid_block_attention) z = m.attention(z);
  z = m.resnet(z, m.mid1);
  for (const UpBlock& u : m.up) {
    for (const Resnet& r : u.resnets)
      z = m.resnet(z, r);
    if (u.upsample.w.defined())
      z = u.upsample(at::upsample_nearest2d(z, {2 * z.size(2), 2 * z.size(3)}));
  }
  z = m.conv_out(at::silu(m.group_norm(z, m.norm_out)));
  return z.to(at::kFloat);
}

Quantization parse_quantization(const std::string& name) {
  if (lowercase(name) == "dit") return Quantization::kDiT;
  if (lowercase(name) == "repa") return Quantization::kRepa;
  fail("quantization must be dit (clamp(127.5 x + 128), DiT/SiT/LightningDiT) or repa "
       "(clamp(255 (x + 1) / 2), REPA); got '", name, "'");
}

const char* to_string(Quantization q) {
  switch (q) {
    case Quantization::kDiT:
      return "dit";
    case Quantization::kRepa:
      return "repa";
  }
  unreachable("Quantization ", static_cast<int>(q));
}

at::Tensor to_uint8_nhwc(const at::Tensor& images, Quantization q) {
  // DiT/SiT sample_ddp.py: clamp(127.5 x + 128, 0, 255); REPA generate.py:
  // clamp(255 * ((x + 1) / 2), 0, 255), in that order of float32 operations; casts truncate
  const at::Tensor x = images.to(at::kFloat);
  const at::Tensor scaled = q == Quantization::kRepa ? ((x + 1.0) / 2.0) * 255.0 : x * 127.5 + 128.0;
  return at::clamp(scaled, 0.0, 255.0)
      .permute({0, 2, 3, 1})
      .to(at::kByte)
      .cpu()
      .contiguous();
}

}  // namespace sit::models
