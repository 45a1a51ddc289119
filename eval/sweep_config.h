#pragma once
/// Sweep definitions: a TOML file names the model, the sampling budget and a grid of
/// sampler settings; the grid expands to configurations, each with a stable ID.
///
/// [grid] takes every sampler field of the table (eval/sampler_spec.h) as an axis (a
/// value or an array), plus ode_methods / ode_steps and sde_methods / sde_steps for the
/// two families' methods and grid points. Fields that apply to one family are crossed
/// with that family's configurations only. [[include]] tables name fields of one extra
/// configuration (mode first); [[exclude]] tables drop the configurations matching every
/// field they name.

#include <cstdint>
#include <string>
#include <vector>

#include "eval/sampler_spec.h"

namespace sit::eval {

struct SweepSpec {
  std::string source;  ///< the TOML file
  std::string name, model, device = "cpu", precision = "fp32", out;
  int64_t samples = 1000, reference_samples = 1000, batch_size = 500;
  uint64_t seed = 0;
  std::vector<std::string> metrics = {"fid", "precision", "recall", "kid"};  ///< metric keys
  /// Network models (model = "sit:SiT-XL/2"): checkpoint, VAE folder, image size in
  /// pixels and classes (0: the checkpoint's). Paths are relative to the working directory.
  std::string ckpt, vae;
  /// Autoguidance's guiding network (guidance = "autoguidance"): its kind and checkpoint.
  std::string guide_model, guide_ckpt;
  std::string quantization;  ///< uint8 rule ("dit", "repa"); empty: the model's
  /// A protocol preset (eval/protocols.h): its family starts from the preset's settings,
  /// samples and quantization default to its; records carry its fingerprint.
  std::string protocol;
  std::string inception;  ///< TorchScript Inception: image features (FID, sFID, IS, P/R)
  std::string extractor = "inception";  ///< the kind of the 'inception' file
  std::string dinov2;                   ///< DINOv2 TorchScript (fd_dinov2, precision_dinov2)
  std::string clip;                     ///< CLIP image tower TorchScript (cmmd)
  std::string dinov2_resize = "pil";    ///< pil or torch
  int64_t image_size = 0, num_classes = 0;
  /// Reference features (npz/h5 feature file) in the run's feature space; analytic models
  /// use their exact statistics and draws instead.
  std::string reference;
  std::string save_images = "none";  ///< none, png (images/ID/NNNNNN.png), npz (images/ID.npz)
  std::vector<SamplerSpec> configs;  ///< expanded, excludes applied, in grid order
};

/// The most combinations a [grid] may expand to (before [[exclude]] rules and duplicates
/// are dropped): a larger grid is refused before any configuration is made.
inline constexpr int64_t kMaxGridCombinations = 100000;
/// The most [[exclude]] rules (each is matched against every combination of the grid).
inline constexpr size_t kMaxExcludeRules = 1000;

/// Parses and expands a sweep file. Errors name the file, the line and the key; a grid of
/// more than kMaxGridCombinations combinations is an error.
SweepSpec load_sweep(const std::string& path);

}  // namespace sit::eval
