#include "models/feature_extractor.h"

#include <ATen/ATen.h>

#include "common/error.h"
#include "common/sha256.h"
#include "models/inception.h"
#include "models/vit_extractors.h"

namespace sit::models {

int64_t FeatureExtractor::width(const std::string& block) const {
  for (const auto& b : blocks())
    if (b.name == block) return b.width;
  return 0;
}

const std::vector<ExtractorKind>& extractor_registry() {
  static const std::vector<ExtractorKind> kinds = {
      {"inception",
       "Inception-v3 2015-12-05 as the ADM evaluator: NVIDIA's inception-2015-12-05.pt or "
       "tools/export_inception.py's canonical file (pool 2048, spatial 2023, logits 1008)",
       {"pool", "spatial", "logits"}, "SIT_EVAL_INCEPTION",
       [](const std::string& path, const ExtractorSettings& s) -> std::unique_ptr<FeatureExtractor> {
         return std::make_unique<InceptionExtractor>(path, s.device);
       }},
      {"dinov2",
       "DINOv2 ViT/14 from tools/export_dinov2.py (FD_DINOv2: CLS token, 1024-d for "
       "ViT-L/14), 224 px by Pillow's bicubic (pil) or torch's antialiased bicubic (torch)",
       {"dinov2"}, "SIT_EVAL_DINOV2",
       [](const std::string& path, const ExtractorSettings& s) -> std::unique_ptr<FeatureExtractor> {
         return std::make_unique<ViTExtractor>(
             path, dinov2_preprocessing(parse_resize_mode(s.dinov2_resize)), s.device);
       }},
      {"clip",
       "CLIP ViT-L/14@336px image tower from tools/export_clip.py (CMMD: projected "
       "embedding, 768-d), centre crop and Pillow bicubic to 336 px",
       {"clip"}, "SIT_EVAL_CLIP",
       [](const std::string& path, const ExtractorSettings& s) -> std::unique_ptr<FeatureExtractor> {
         return std::make_unique<ViTExtractor>(path, clip_preprocessing(), s.device);
       }},
  };
  return kinds;
}

const ExtractorKind* find_extractor_kind(const std::string& name) {
  for (const auto& k : extractor_registry())
    if (name == k.name) return &k;
  return nullptr;
}

const ExtractorKind* extractor_kind_of_block(const std::string& block) {
  for (const auto& k : extractor_registry())
    for (const char* b : k.blocks)
      if (block == b) return &k;
  return nullptr;
}

std::string extractor_kind_names() {
  std::string names;
  for (const auto& k : extractor_registry())
    names += (names.empty() ? "" : ", ") + std::string(k.name);
  return names;
}

std::unique_ptr<FeatureExtractor> load_extractor(const std::string& kind, const std::string& path,
                                                 const ExtractorSettings& settings) {
  if (const ExtractorKind* k = find_extractor_kind(kind)) return k->load(path, settings);
  fail("feature extractor must be one of ", extractor_kind_names(), "; got '", kind, "'");
}

std::unique_ptr<FeatureExtractor> load_extractor(const std::string& kind, const std::string& path,
                                                 const std::string& device) {
  ExtractorSettings s;
  s.device = device;
  return load_extractor(kind, path, s);
}

ExtractorGroup::ExtractorGroup(std::vector<std::unique_ptr<FeatureExtractor>> members)
    : members_(std::move(members)) {
  if (members_.empty()) unreachable("an extractor group needs members");
  std::string ids;
  for (const auto& m : members_) {
    path_ += (path_.empty() ? "" : ", ") + m->path();
    ids += m->identity() + "\n";
  }
  Sha256 h;
  h.update(ids.data(), ids.size());
  sha256_ = h.hex();
}

std::vector<FeatureBlockInfo> ExtractorGroup::blocks() const {
  std::vector<FeatureBlockInfo> out;
  for (const auto& m : members_)
    for (const auto& b : m->blocks())
      out.push_back(b);
  return out;
}

at::Tensor ExtractorGroup::preprocess(const at::Tensor& images) const {
  return images;  // each member preprocesses the decoded batch its own way
}

std::vector<at::Tensor> ExtractorGroup::extract_blocks(const at::Tensor& images) const {
  std::vector<at::Tensor> out;
  for (const auto& m : members_)
    for (auto& t : m->extract_images(images))
      out.push_back(std::move(t));
  return out;
}

std::vector<const FeatureExtractor*> ExtractorGroup::stages() const {
  std::vector<const FeatureExtractor*> out;
  for (const auto& m : members_)
    out.push_back(m.get());
  return out;
}

std::string ExtractorGroup::identity() const {
  std::string out;
  for (const auto& m : members_)
    out += (out.empty() ? "" : "; ") + m->identity();
  return out;
}

}  // namespace sit::models
