#include "models/vit_extractors.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/core/InferenceMode.h>
#include <torch/script.h>

#include "common/error.h"
#include "common/format.h"
#include "common/sha256.h"
#include "models/device.h"
#include "models/sit.h"
#include "reference_stats/image_resize.h"

namespace sit::models {

const char* to_string(ResizeMode m) {
  switch (m) {
    case ResizeMode::kPil: return "pil";
    case ResizeMode::kTorch: return "torch";
    case ResizeMode::kPilFloat: return "pil-float";
  }
  unreachable("ResizeMode ", static_cast<int>(m));
}

ResizeMode parse_resize_mode(const std::string& name) {
  for (ResizeMode m : {ResizeMode::kPil, ResizeMode::kTorch, ResizeMode::kPilFloat})
    if (name == to_string(m)) return m;
  fail("resize mode must be pil (Pillow bicubic on uint8: dgm-eval, EDM2 'pil'), torch "
       "(antialiased bicubic on float: EDM2's default) or pil-float (Pillow's float bicubic, "
       "clipped: dgm-eval --clean_resize), got '", name, "'");
}

ViTPreprocessing dinov2_preprocessing(ResizeMode resize) {
  // ImageNet mean and std (dgm-eval DINOv2Encoder.transform; EDM2 DINOv2Detector)
  return {"dinov2", 224, false, resize, {0.485f, 0.456f, 0.406f}, {0.229f, 0.224f, 0.225f}};
}

ViTPreprocessing clip_preprocessing() {
  // scenic clip model.py IMAGE_MEAN / IMAGE_STD, as CMMD normalises
  return {"clip",
          336,
          true,
          ResizeMode::kPil,
          {0.48145466f, 0.4578275f, 0.40821073f},
          {0.26862954f, 0.26130258f, 0.27577711f}};
}

at::Tensor vit_preprocess(const at::Tensor& images, const ViTPreprocessing& p,
                          const std::string& device) {
  if (images.dim() != 4 || images.size(3) != 3 || images.scalar_type() != at::kByte)
    fail(p.kind, " input must be uint8 RGB images (N, H, W, 3), got ",
         shape_string(images.sizes().vec()), " ", images.scalar_type());
  const int64_t n = images.size(0), s = p.size;
  at::Tensor x;  // float32 (N, 3, S, S), 0..255 scale
  if (p.resize != ResizeMode::kTorch) {
    // Pillow's resize on the CPU, images in parallel on the intra-op threads (each image's
    // arithmetic is fixed: the result does not depend on the thread count)
    const at::Tensor cpu = images.to(at::kCPU).contiguous();
    const int64_t h = cpu.size(1), w = cpu.size(2);
    const bool as_float = p.resize == ResizeMode::kPilFloat;
    at::Tensor out = at::empty({n, s, s, 3}, as_float ? at::kFloat : at::kByte);
    const uint8_t* in = cpu.data_ptr<uint8_t>();
    at::parallel_for(0, n, 1, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        const uint8_t* src = in + i * h * w * 3;
        std::vector<uint8_t> square;
        int64_t side_h = h, side_w = w;
        if (p.crop_square && h != w) {
          side_h = side_w = std::min(h, w);
          square = io::center_crop(src, h, w, 3, side_h);
          src = square.data();
        }
        if (as_float) {  // mode F, clipped but not rounded (dgm-eval --clean_resize)
          const std::vector<float> f(src, src + side_h * side_w * 3);
          auto r = io::pil_bicubic_resize(f.data(), side_h, side_w, 3, s, s);
          for (float& v : r)
            v = std::min(255.0f, std::max(0.0f, v));
          std::copy(r.begin(), r.end(), out.data_ptr<float>() + i * s * s * 3);
        } else {
          const auto r = io::pil_bicubic_resize(src, side_h, side_w, 3, s, s);
          std::copy(r.begin(), r.end(), out.data_ptr<uint8_t>() + i * s * s * 3);
        }
      }
    });
    x = out.to(at::Device(device)).permute({0, 3, 1, 2}).to(at::kFloat);
  } else {
    at::Tensor f = images.to(at::Device(device));
    if (p.crop_square && f.size(1) != f.size(2)) {
      const int64_t side = std::min(f.size(1), f.size(2));
      f = f.narrow(1, (f.size(1) - side) / 2, side).narrow(2, (f.size(2) - side) / 2, side);
    }
    f = f.permute({0, 3, 1, 2}).to(at::kFloat).contiguous();
    x = at::_upsample_bicubic2d_aa(f, {s, s}, /*align_corners=*/false);
  }
  // float32 throughout, in ToTensor / Normalize's order: x / 255, then (x - mean) / std
  const auto opts = x.options();
  const at::Tensor mean = at::tensor(std::vector<float>(p.mean, p.mean + 3)).to(opts).view({1, 3, 1, 1});
  const at::Tensor stdv = at::tensor(std::vector<float>(p.std, p.std + 3)).to(opts).view({1, 3, 1, 1});
  return ((x / 255.0f - mean) / stdv).contiguous();
}

struct ViTExtractor::Impl {
  std::string path, sha256;
  ViTPreprocessing pre;
  std::string device;
  torch::jit::Module module;
  int64_t width = 0;
};

ViTExtractor::ViTExtractor(const std::string& path, ViTPreprocessing preprocessing,
                           const std::string& device)
    : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  m.path = path;
  m.pre = preprocessing;
  check_device(device);
  m.device = device;
  m.sha256 = sha256_file(path);
  try {
    m.module = torch::jit::load(path, at::Device(device));
  } catch (const c10::Error& e) {
    fail(path, ": not a TorchScript file torch::jit::load can read (",
         std::string(e.what_without_backtrace()).substr(0, 200), ")");
  }
  m.module.eval();
  // one zero image tells the width, and whether the file takes this input size at all
  c10::InferenceMode guard;
  const at::Tensor probe = at::zeros({1, 3, m.pre.size, m.pre.size},
                                     at::TensorOptions().device(at::Device(device)));
  at::Tensor out;
  try {
    out = m.module.forward({probe}).toTensor();
  } catch (const std::exception& e) {
    fail(path, ": its forward does not take a (1, 3, ", m.pre.size, ", ", m.pre.size,
         ") image batch, as a ", m.pre.kind, " extractor must (",
         std::string(e.what()).substr(0, 200), "); export it with tools/export_", m.pre.kind,
         ".py");
  }
  if (out.dim() != 2 || out.size(0) != 1)
    fail(path, ": forward must return (N, D) features, got ", shape_string(out.sizes().vec()),
         " for one image");
  m.width = out.size(1);
}

ViTExtractor::~ViTExtractor() = default;

std::vector<FeatureBlockInfo> ViTExtractor::blocks() const {
  return {{impl_->pre.kind, impl_->width}};
}

at::Tensor ViTExtractor::preprocess(const at::Tensor& images) const {
  return vit_preprocess(images, impl_->pre, impl_->device);
}

std::vector<at::Tensor> ViTExtractor::extract_blocks(const at::Tensor& x_in) const {
  const Impl& m = *impl_;
  c10::InferenceMode guard;
  apply_precision(Precision::kFp32);  // no TF32
  const at::Tensor x = x_in.to(at::Device(m.device), at::kFloat);
  if (x.dim() != 4 || x.size(1) != 3 || x.size(2) != m.pre.size || x.size(3) != m.pre.size)
    fail(m.pre.kind, " network input must be (N, 3, ", m.pre.size, ", ", m.pre.size, "), got ",
         shape_string(x.sizes().vec()));
  torch::jit::Module mod = m.module;
  const at::Tensor out = mod.forward({x}).toTensor();
  if (out.dim() != 2 || out.size(0) != x.size(0) || out.size(1) != m.width)
    fail(m.path, ": features must be (", x.size(0), ", ", m.width, "), got ",
         shape_string(out.sizes().vec()));
  return {out.to(at::kCPU, at::kFloat).contiguous()};
}

const std::string& ViTExtractor::path() const {
  return impl_->path;
}
const std::string& ViTExtractor::sha256() const {
  return impl_->sha256;
}

std::string ViTExtractor::identity() const {
  const Impl& m = *impl_;
  return cat(m.pre.kind, " ", m.path, " (resize ", to_string(m.pre.resize), ", ", m.pre.size,
             " px, sha256 ", m.sha256, ")");
}

}  // namespace sit::models
