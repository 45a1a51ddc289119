#include "models/inception.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>
#include <torch/script.h>

#include "common/error.h"
#include "common/format.h"
#include "common/sha256.h"
#include "models/device.h"
#include "models/sit.h"

namespace sit::models {
namespace {

struct Axis {
  at::Tensor lower, upper, lerp;  // (out) long, long, float
};

/// TF1 legacy interpolation weights along one axis, in float32 as TF computes them.
Axis legacy_axis(int64_t in, int64_t out) {
  const float scale = static_cast<float>(in) / static_cast<float>(out);
  const at::Tensor src = at::arange(out, at::kFloat) * scale;  // float32 i * scale
  const at::Tensor lo = at::floor(src);
  Axis a;
  a.lower = lo.to(at::kLong).clamp_min(0);
  a.upper = at::ceil(src).to(at::kLong).clamp_max(in - 1);
  a.lerp = src - lo;
  return a;
}

}  // namespace

at::Tensor tf1_resize_bilinear(const at::Tensor& images, int64_t out_h, int64_t out_w) {
  if (images.dim() != 4) fail("resize: images must be (N, H, W, C), got ", images.dim(), " dims");
  const int64_t h = images.size(1), w = images.size(2);
  if (h == out_h && w == out_w) return images.to(at::kFloat);
  const Axis ay = legacy_axis(h, out_h), ax = legacy_axis(w, out_w);
  const auto dev = images.device();
  // Columns first, on the input's own dtype (uint8 gathers move a quarter of the bytes):
  // row r's horizontal interpolation is the same whether it serves as TF's "top" or
  // "bottom" row, so computing it once per source row gives TF's values exactly.
  const at::Tensor left = images.index_select(2, ax.lower.to(dev)).to(at::kFloat);
  const at::Tensor right = images.index_select(2, ax.upper.to(dev)).to(at::kFloat);
  const at::Tensor xl = ax.lerp.to(dev).view({1, 1, out_w, 1});
  const at::Tensor across = left + (right - left) * xl;  // (N, H, out_w, C): tl + (tr - tl) xl
  const at::Tensor top = across.index_select(1, ay.lower.to(dev));
  const at::Tensor bottom = across.index_select(1, ay.upper.to(dev));
  const at::Tensor yl = ay.lerp.to(dev).view({1, out_h, 1, 1});
  // the TF kernel's order: out = top + (bottom - top) yl
  return top + (bottom - top) * yl;
}

at::Tensor inception_preprocess(const at::Tensor& images) {
  if (images.dim() != 4 || images.size(3) != 3)
    fail("Inception input must be RGB images (N, H, W, 3), got ",
         shape_string(images.sizes().vec()));
  const at::Tensor r = tf1_resize_bilinear(images, 299, 299);
  return ((r - 128.0f) / 128.0f).permute({0, 3, 1, 2}).contiguous();
}

struct InceptionExtractor::Impl {
  std::string path, sha256, kind;
  torch::jit::Module module;
  std::vector<std::pair<std::string, torch::jit::Module>> layers;  // NVIDIA: children in order
  torch::jit::Module tap;                                          // layers.mixed_6.conv
  bool has_tap = false;
  at::Tensor output_weight;  // NVIDIA: (1008, 2048)
  at::Device device = at::kCPU;
};

InceptionExtractor::InceptionExtractor(const std::string& path, const std::string& device)
    : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  m.path = path;
  check_device(device);
  m.device = at::Device(device);
  m.sha256 = sha256_file(path);
  try {
    m.module = torch::jit::load(path, m.device);
  } catch (const c10::Error& e) {
    fail(path, ": not a TorchScript file torch::jit::load can read (",
         std::string(e.what_without_backtrace()).substr(0, 200), ")");
  }
  m.module.eval();
  if (m.module.hasattr("Mixed_6d") && m.module.hasattr("fc")) {
    m.kind = "canonical";
    return;
  }
  if (!m.module.hasattr("layers")) {
    if (auto forward = m.module.find_method("forward")) {
      // NVIDIA's forward is (img, return_features, ...); a one-input forward is a network
      // of another kind (sit-eval's DINOv2 and CLIP exports)
      if (forward->function().getSchema().arguments().size() < 3)
        fail(path, ": not an Inception extractor: its forward takes one input and it has "
             "neither Inception's submodules (Mixed_6d, fc) nor NVIDIA's 'layers' (a DINOv2 or "
             "CLIP export? pass it as --dinov2 / --clip)");
      m.kind = "nvidia (forward only: no sFID)";
      return;
    }
    fail(path,
         ": neither sit-eval's canonical extractor (no submodules Mixed_6d and fc) nor "
         "NVIDIA's inception-2015-12-05.pt (no submodule 'layers'), and no forward method");
  }
  m.kind = "nvidia";
  const torch::jit::Module layers = m.module.attr("layers").toModule();
  for (const auto& child : layers.named_children()) {
    m.layers.emplace_back(child.name, child.value);
    if (child.name == "mixed_6" && child.value.hasattr("conv")) {
      m.tap = child.value.attr("conv").toModule();
      m.has_tap = true;
    }
  }
  if (!m.has_tap) m.kind = "nvidia (no submodule layers.mixed_6.conv: no sFID)";
  if (!m.module.hasattr("output"))
    fail(path, ": NVIDIA-style file without the submodule 'output' (the 1008-way logits layer)");
  m.output_weight = m.module.attr("output").toModule().attr("weight").toTensor();
  if (m.output_weight.dim() != 2 || m.output_weight.size(0) != 1008 ||
      m.output_weight.size(1) != 2048)
    fail(path, ": output.weight must be (1008, 2048), got ",
         shape_string(m.output_weight.sizes().vec()));
}

InceptionExtractor::~InceptionExtractor() = default;
InceptionExtractor::InceptionExtractor(InceptionExtractor&&) noexcept = default;
const std::string& InceptionExtractor::path() const {
  return impl_->path;
}
const std::string& InceptionExtractor::sha256() const {
  return impl_->sha256;
}
const std::string& InceptionExtractor::kind() const {
  return impl_->kind;
}

std::string InceptionExtractor::identity() const {
  return cat("inception ", impl_->path, " (", impl_->kind, ", sha256 ", impl_->sha256, ")");
}

std::vector<FeatureBlockInfo> InceptionExtractor::blocks() const {
  std::vector<FeatureBlockInfo> b = {{"pool", kInceptionPoolWidth}};
  if (impl_->kind == "canonical" || impl_->has_tap) b.push_back({"spatial", kInceptionSpatialWidth});
  b.push_back({"logits", kInceptionLogitsWidth});
  return b;
}

at::Tensor InceptionExtractor::preprocess(const at::Tensor& images) const {
  return inception_preprocess(images.to(impl_->device));
}

std::vector<at::Tensor> InceptionExtractor::extract_blocks(const at::Tensor& x) const {
  const InceptionFeatures f = extract_preprocessed(x);
  std::vector<at::Tensor> out = {f.pool};
  if (f.spatial.defined()) out.push_back(f.spatial);
  out.push_back(f.logits);
  return out;
}

InceptionFeatures InceptionExtractor::extract(const at::Tensor& images) const {
  return extract_preprocessed(inception_preprocess(images.to(impl_->device)));
}

InceptionFeatures InceptionExtractor::extract_preprocessed(const at::Tensor& x_in) const {
  const Impl& m = *impl_;
  c10::InferenceMode guard;
  apply_precision(Precision::kFp32);  // TF32 changes features on Ampere and later
  const at::Tensor x = x_in.to(m.device, at::kFloat);
  InceptionFeatures f;
  auto check = [&](const at::Tensor& t, int64_t cols, const char* what) {
    if (t.dim() != 2 || t.size(0) != x.size(0) || t.size(1) != cols)
      fail(m.path, ": ", what, " must be (", x.size(0), ", ", cols, "), got ",
           shape_string(t.sizes().vec()));
    return t.to(at::kCPU, at::kFloat).contiguous();
  };
  if (m.kind == "canonical") {
    torch::jit::Module mod = m.module;
    const auto out = mod.forward({x}).toTuple();
    if (out->elements().size() != 3) fail(m.path, ": forward must return (pool, spatial, logits)");
    f.pool = check(out->elements()[0].toTensor(), 2048, "pool");
    f.spatial = check(out->elements()[1].toTensor(), 2023, "spatial");
    f.logits = check(out->elements()[2].toTensor(), 1008, "logits");
    return f;
  }
  if (m.layers.empty()) {
    // forward(img, return_features, ...) on 0..255 NCHW input that is already 299 x 299,
    // so the file's own resize does nothing.
    torch::jit::Module mod = m.module;
    const at::Tensor img = x * 128.0f + 128.0f;
    f.pool = check(mod.forward({img, true}).toTensor(), 2048, "forward(return_features=True)");
    const at::Tensor probs = mod.forward({img, false}).toTensor();
    f.logits = check(at::log(probs), 1008, "forward()");
    return f;
  }
  at::Tensor h = x;
  for (const auto& [name, child] : m.layers) {
    if (name == "mixed_6" && m.has_tap) {
      torch::jit::Module tap = m.tap;
      const at::Tensor s = tap.forward({h}).toTensor();  // (N, 192, 17, 17)
      if (s.dim() != 4 || s.size(1) < 7)
        fail(m.path, ": layers.mixed_6.conv output must be (N, >= 7, H, W), got ",
             shape_string(s.sizes().vec()));
      // sFID: first 7 channels, flattened H, W, C (channel fastest) as ADM's TF graph
      f.spatial = check(s.narrow(1, 0, 7).permute({0, 2, 3, 1}).flatten(1), 2023, "spatial");
    }
    torch::jit::Module c = child;
    h = c.forward({h}).toTensor();
  }
  f.pool = check(h.flatten(1), 2048, "layers output (pool_3)");
  f.logits = at::matmul(f.pool, m.output_weight.to(at::kCPU, at::kFloat).t()).contiguous();
  return f;
}

}  // namespace sit::models
