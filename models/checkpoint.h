#pragma once
/// Reading weights: PyTorch zip checkpoints (`torch.save`, any torch >= 1.6) through our
/// own pickle reader, and safetensors files (header parsed with nlohmann-json, data
/// mapped). Strict loading against an architecture's expected key list.

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace sit::models {

/// Named tensors in file order, on the CPU, in the file's dtypes.
struct StateDict {
  std::string path;
  std::string format;  ///< "torch zip" or "safetensors"
  std::string entry;   ///< "" for a plain state dict, else the entry used ("ema", "model", ...)
  std::vector<std::string> top_level_keys;  ///< keys of the file's top-level dict
  std::vector<std::pair<std::string, at::Tensor>> tensors;

  /// The tensor with this key, or an undefined tensor.
  at::Tensor find(const std::string& key) const;
  int64_t numel() const;
};

/// Loads a checkpoint. From a dict with `ema` (preferred), `model` or `state_dict` that
/// entry is used; otherwise the file must be a plain state dict. A "module." prefix on
/// every key (DistributedDataParallel) is dropped. Errors name the file and explain how
/// to extract the state dict when the file cannot be read.
StateDict load_state_dict(const std::string& path);

/// Expected key -> shape of an architecture.
using ShapeList = std::vector<std::pair<std::string, std::vector<int64_t>>>;

struct LoadCheck {
  std::vector<std::string> ignore_prefixes;  ///< unexpected keys under these are allowed
};

/// Strict loading: one error listing every missing, unexpected and wrong-shape key.
/// Returns the tensors in `expected` order.
std::vector<at::Tensor> match_state_dict(const StateDict& sd, const ShapeList& expected,
                                         const std::string& architecture,
                                         const LoadCheck& check = {});

}  // namespace sit::models
