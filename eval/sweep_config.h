#pragma once
/// Sweep definitions: a TOML file names the model, the sampling budget and a grid of
/// sampler settings; the grid expands to configurations, each with a stable ID.

#include <cstdint>
#include <string>
#include <vector>

namespace sit::eval {

/// One sampler configuration of a sweep (all strings in the samplers' name tables).
struct SweepConfig {
  std::string mode;  ///< "ODE" or "SDE"
  std::string path_type, prediction, method;
  int64_t num_steps = 0;            ///< grid points
  double atol = 1e-6, rtol = 1e-3;  ///< ODE
  std::string diffusion_form;       ///< SDE
  double diffusion_norm = 1.0;      ///< SDE
  std::string last_step;            ///< SDE
  double last_step_size = 0.04;     ///< SDE
  double cfg_scale = 1.0;
  std::string cfg_channels = "3";

  /// "key=value;..." with every field that applies to the mode, numbers in shortest
  /// round-trip form: equal configurations have equal canonical forms.
  std::string canonical() const;
  /// First 12 hex digits of the FNV-1a 64-bit hash of canonical().
  std::string id() const;
  /// Model evaluations per sample (dopri5: -1, unknown before running).
  int64_t nfe_estimate() const;
  /// A short human label, e.g. "SDE Linear/velocity Euler 21 sigma".
  std::string label() const;
};

struct SweepSpec {
  std::string source;  ///< the TOML file
  std::string name, model, device = "cpu", precision = "fp32", out;
  int64_t samples = 1000, reference_samples = 1000, batch_size = 500;
  uint64_t seed = 0;
  std::vector<std::string> metrics = {"fid", "pr", "kid"};
  /// Network models (model = "sit:SiT-XL/2"): checkpoint, VAE folder, image size in
  /// pixels and classes (0: the checkpoint's). Paths are relative to the working directory.
  std::string ckpt, vae;
  std::string inception;  ///< TorchScript Inception: image features (FID, sFID, IS, P/R)
  int64_t image_size = 0, num_classes = 0;
  /// Reference features (npz/h5 feature file) in the run's feature space; analytic models
  /// use their exact statistics and draws instead.
  std::string reference;
  std::string save_images = "none";  ///< none, png (images/ID/NNNNNN.png), npz (images/ID.npz)
  std::vector<SweepConfig> configs;  ///< expanded, excludes applied, in grid order
};

/// Parses and expands a sweep file. Errors name the file, the line and the key.
SweepSpec load_sweep(const std::string& path);

}  // namespace sit::eval
