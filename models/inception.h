#pragma once
/// Inception-v3 "2015-12-05" features as the ADM evaluator computes them
/// (spec/evaluator.md section 2), from a TorchScript file: uint8 images of any size are
/// resized to 299x299 with TF1's legacy bilinear rule and normalised as (x - 128) / 128 in
/// C++, then run through either
///  - sit-eval's canonical extractor (tools/export_inception.py), whose forward returns
///    (pool [N, 2048], spatial [N, 2023], logits [N, 1008]), or
///  - NVIDIA's inception-2015-12-05.pt: its `layers` submodule run child by child with the
///    1x1 branch of Mixed_6d (`layers.mixed_6.conv`) tapped for sFID, logits from
///    `output.weight` without the bias.
/// Feature extraction runs in float32 with TF32 off.

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <memory>
#include <string>

#include "models/feature_extractor.h"

namespace sit::models {

/// TF1 legacy bilinear resize (align_corners false, no half-pixel centres): source
/// coordinate i * (in / out) in float32, lower = floor, upper = min(ceil, in - 1).
/// images: (N, H, W, C) uint8 or float; returns float32 (N, out_h, out_w, C).
at::Tensor tf1_resize_bilinear(const at::Tensor& images, int64_t out_h, int64_t out_w);

/// uint8 (N, H, W, 3) -> float32 (N, 3, 299, 299) in [-1, 1): resize (unless already
/// 299 x 299) and (x - 128) / 128.
at::Tensor inception_preprocess(const at::Tensor& images);

/// Widths of the feature blocks every extractor gives: pool_3, the sFID tap (7 channels
/// of Mixed_6/conv at 17 x 17, H-W-C order) and the 1008-way logits.
constexpr int64_t kInceptionPoolWidth = 2048;
constexpr int64_t kInceptionSpatialWidth = 2023;
constexpr int64_t kInceptionLogitsWidth = 1008;

struct InceptionFeatures {
  at::Tensor pool;     ///< (N, 2048) float32, CPU
  at::Tensor spatial;  ///< (N, 2023), or undefined when the file offers no sFID tap
  at::Tensor logits;   ///< (N, 1008)
};

class InceptionExtractor final : public FeatureExtractor {
 public:
  /// Loads the TorchScript file onto `device`. Errors name the file and the missing
  /// submodule when its structure is not one of the two known kinds.
  InceptionExtractor(const std::string& path, const std::string& device = "cpu");
  ~InceptionExtractor();
  InceptionExtractor(InceptionExtractor&&) noexcept;

  /// images: uint8 (N, H, W, 3), any size, on any device.
  InceptionFeatures extract(const at::Tensor& images) const;
  /// x: (N, 3, 299, 299) float32, already preprocessed.
  InceptionFeatures extract_preprocessed(const at::Tensor& x) const;

  /// FeatureExtractor: pool 2048, spatial 2023 (when the file has the tap), logits 1008.
  std::vector<FeatureBlockInfo> blocks() const override;
  at::Tensor preprocess(const at::Tensor& images) const override;
  std::vector<at::Tensor> extract_blocks(const at::Tensor& x) const override;

  const std::string& path() const override;
  const std::string& sha256() const override;  ///< of the file: the extractor's identity
  /// "canonical", "nvidia", or "nvidia (forward only: no sFID)".
  const std::string& kind() const;
  /// "inception FILE (KIND, sha256 HEX)" for provenance records.
  std::string identity() const override;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sit::models
