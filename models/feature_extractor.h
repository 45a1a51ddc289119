#pragma once
/// Feature extractors: networks that map uint8 images to named blocks of feature rows
/// (Inception's pool / spatial / logits, and others later). Sample and reference features
/// are comparable only when one extractor made both: every extractor reports its file's
/// SHA-256, which feature files record and the metrics commands check.

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace sit::models {

struct FeatureBlockInfo {
  std::string name;  ///< the block's key in feature files ("pool")
  int64_t width = 0;  ///< features per row
};

class FeatureExtractor {
 public:
  virtual ~FeatureExtractor() = default;
  /// The blocks extract_blocks() returns, in its order.
  virtual std::vector<FeatureBlockInfo> blocks() const = 0;
  /// uint8 (N, H, W, 3) images of one size, any device -> the network's input (N, ...).
  virtual at::Tensor preprocess(const at::Tensor& images) const = 0;
  /// Preprocessed input -> float32 CPU rows (N, width), one per block in blocks() order.
  virtual std::vector<at::Tensor> extract_blocks(const at::Tensor& x) const = 0;
  /// preprocess() then extract_blocks().
  std::vector<at::Tensor> extract_images(const at::Tensor& images) const {
    return extract_blocks(preprocess(images));
  }
  /// Width of `block`, 0 when this extractor does not give it.
  int64_t width(const std::string& block) const;

  virtual const std::string& path() const = 0;
  virtual const std::string& sha256() const = 0;  ///< of the file: the extractor's identity
  /// "KIND FILE (details, sha256 HEX)": recorded as feature files' provenance.
  virtual std::string identity() const = 0;
};

/// One kind of extractor: its name and how to load a file of that kind.
struct ExtractorKind {
  const char* name;
  const char* description;
  std::unique_ptr<FeatureExtractor> (*load)(const std::string& path, const std::string& device);
};
/// Every kind sit-eval can load (one row each).
const std::vector<ExtractorKind>& extractor_registry();
/// Loads `path` as an extractor of kind `kind` onto `device`; errors list the kinds.
std::unique_ptr<FeatureExtractor> load_extractor(const std::string& kind, const std::string& path,
                                                 const std::string& device = "cpu");

}  // namespace sit::models
