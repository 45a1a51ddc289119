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
  /// The extractors that run in turn on a decoded batch, each with its own preprocessing
  /// and blocks (in blocks() order): this one, or a group's members.
  virtual std::vector<const FeatureExtractor*> stages() const { return {this}; }
};

/// How an extractor is loaded besides its file.
struct ExtractorSettings {
  std::string device = "cpu";
  /// DINOv2's resize: "pil" (dgm-eval; EDM2 'pil') or "torch" (EDM2's default).
  std::string dinov2_resize = "pil";
};

/// One kind of extractor: its name, the blocks it gives (their names are the kind's
/// alone, so a feature file can hold several extractors' blocks), and how to load a file.
struct ExtractorKind {
  const char* name;
  const char* description;
  std::vector<const char*> blocks;
  const char* env;  ///< environment variable naming its default file
  std::unique_ptr<FeatureExtractor> (*load)(const std::string& path, const ExtractorSettings& s);
};
/// Every kind sit-eval can load (one row each): inception, dinov2, clip.
const std::vector<ExtractorKind>& extractor_registry();
/// The row of `name`, or nullptr.
const ExtractorKind* find_extractor_kind(const std::string& name);
/// The kind whose blocks include `block`, or nullptr.
const ExtractorKind* extractor_kind_of_block(const std::string& block);
/// "inception, dinov2, clip".
std::string extractor_kind_names();
/// Loads `path` as an extractor of kind `kind`; errors list the kinds.
std::unique_ptr<FeatureExtractor> load_extractor(const std::string& kind, const std::string& path,
                                                 const ExtractorSettings& settings = {});
std::unique_ptr<FeatureExtractor> load_extractor(const std::string& kind, const std::string& path,
                                                 const std::string& device);

/// Several extractors run on the same batch of decoded images (one pass over the images
/// for Inception, DINOv2 and CLIP features): preprocess() passes the uint8 images through
/// and extract_blocks() runs each extractor's preprocessing and network in turn; blocks
/// are the concatenation in member order. identity() joins the members' with "; ".
class ExtractorGroup final : public FeatureExtractor {
 public:
  explicit ExtractorGroup(std::vector<std::unique_ptr<FeatureExtractor>> members);
  std::vector<FeatureBlockInfo> blocks() const override;
  at::Tensor preprocess(const at::Tensor& images) const override;
  std::vector<at::Tensor> extract_blocks(const at::Tensor& images) const override;
  const std::string& path() const override { return path_; }
  /// SHA-256 of the members' identities (cache keys); each member's own is in identity().
  const std::string& sha256() const override { return sha256_; }
  std::string identity() const override;
  std::vector<const FeatureExtractor*> stages() const override;

 private:
  std::vector<std::unique_ptr<FeatureExtractor>> members_;
  std::string path_, sha256_;
};

}  // namespace sit::models
