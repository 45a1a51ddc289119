#include "models/feature_extractor.h"

#include "common/error.h"
#include "models/inception.h"

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
       [](const std::string& path, const std::string& device) -> std::unique_ptr<FeatureExtractor> {
         return std::make_unique<InceptionExtractor>(path, device);
       }},
  };
  return kinds;
}

std::unique_ptr<FeatureExtractor> load_extractor(const std::string& kind, const std::string& path,
                                                 const std::string& device) {
  std::string names;
  for (const auto& k : extractor_registry()) {
    if (kind == k.name) return k.load(path, device);
    names += (names.empty() ? "" : ", ") + std::string(k.name);
  }
  fail("feature extractor must be one of ", names, "; got '", kind, "'");
}

}  // namespace sit::models
