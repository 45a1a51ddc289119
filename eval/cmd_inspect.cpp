// sit-eval inspect CKPT: what a weights file holds and which architecture it is.
#include <ATen/ATen.h>

#include <CLI/CLI.hpp>
#include <filesystem>
#include <fstream>
#include <optional>
#include <iostream>
#include <map>

#include "common/error.h"
#include "common/format.h"
#include "eval/commands.h"
#include "models/checkpoint.h"
#include "models/edm2_reference.h"
#include "models/feature_extractor.h"
#include "models/inception.h"
#include "reference_stats/feature_set.h"
#include "reference_stats/image_reader.h"
#include "reference_stats/npy.h"
#include "reference_stats/zip.h"
#include "models/lightningdit.h"
#include "models/sit.h"
#include "models/vae.h"

namespace fs = std::filesystem;

namespace sit::eval {
namespace {

std::string with_commas(int64_t n) {
  std::string s = std::to_string(n), out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (i > 0 && (s.size() - i) % 3 == 0) out += ',';
    out += s[i];
  }
  return out;
}

int run_inspect(const std::string& path, bool list_keys);

/// A folder: a diffusers VAE (config.json + weights), or PNG/JPEG images.
int inspect_folder(const std::string& dir, bool list_keys) {
  const fs::path d(dir);
  if (fs::exists(d / "config.json"))
    for (const char* name : {"diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin"})
      if (fs::exists(d / name)) {
        std::cout << dir << ": diffusers model folder (config.json, " << name << ")\n";
        return run_inspect((d / name).string(), list_keys);
      }
  const std::vector<std::string> files = io::list_image_files(dir);
  if (files.empty())
    fail(dir, ": a folder with neither a diffusers VAE (config.json and "
         "diffusion_pytorch_model.safetensors or .bin) nor .png/.jpg/.jpeg images");
  std::cout << dir << ": folder of " << files.size() << " images (PNG/JPEG, sorted by name: "
            << fs::path(files.front()).filename().string() << " .. "
            << fs::path(files.back()).filename().string() << ")\n";
  try {
    const io::Image first = io::read_image(files.front());
    std::cout << "  the first is " << first.width << " x " << first.height << " RGB\n";
  } catch (const Error& e) {
    std::cout << "  the first cannot be read: " << e.what() << "\n";
  }
  std::cout << "  use: sit-eval evaluate REF " << dir
            << ", sit-eval features " << dir << " --out FEATURES.h5\n";
  return 0;
}

/// A zip holding TorchScript (code/ and constants.pkl) rather than a torch.save pickle.
bool is_torchscript(const std::string& path) {
  try {
    const io::ZipReader z(path);
    for (const auto& e : z.entries())
      if (e.name.find("/code/") != std::string::npos ||
          (e.name.size() >= 13 && e.name.compare(e.name.size() - 13, 13, "constants.pkl") == 0))
        return true;
  } catch (const Error&) {
  }
  return false;
}

/// An npz: its arrays, and what sit-eval reads it as.
int inspect_npz(const std::string& path) {
  const io::NpzReader z(path);
  std::cout << path << ": npz with " << z.keys().size() << " arrays\n";
  for (const auto& k : z.keys()) {
    const io::NpyArray a = z.open(k);
    std::cout << "    " << k << " " << shape_string(a.shape()) << " " << io::descr(a.dtype())
              << "\n";
  }
  const bool images = z.has("arr_0") && !z.has("pool");
  bool features = false;
  for (const char* k : {"pool", "spatial", "logits", "mu", "mu_s"})
    features = features || z.has(k);
  std::cout << "  read as: "
            << (images && z.has("mu") ? "an ADM batch (arr_0 images and stored statistics)"
                : images              ? "images (arr_0), e.g. sample output"
                : features            ? "a feature set (pool / spatial / logits, mu / sigma)"
                : z.has("samples")    ? "analytic samples (data-space features for `metrics`)"
                                      : "nothing sit-eval reads (no arr_0, samples, pool, "
                                        "spatial, logits, mu or mu_s)")
            << "\n";
  return 0;
}

/// An HDF5 feature file or an .npy array.
int inspect_array_file(const std::string& path, bool hdf5) {
  if (hdf5) {
    const io::FeatureSet f = io::load_feature_set(path);
    std::cout << path << ": HDF5 feature file, " << f.num_rows() << " rows";
    for (const auto& [name, m] : f.blocks)
      std::cout << ", " << name << " " << m.cols;
    for (const auto& [block, s] : f.stats) {
      const auto [mu, sigma] = io::stats_keys(block);
      std::cout << ", " << mu << "/" << sigma << " " << s.dim();
    }
    // (strings from the file: printed escaped, a terminal escape in them does nothing)
    std::cout << "\n  source: " << printable(f.provenance.source, 4096)
              << "\n  extractor: " << printable(f.provenance.extractor, 4096)
              << "\n  created: " << printable(f.provenance.created) << " by "
              << printable(f.provenance.program_version) << "\n";
    return 0;
  }
  const io::NpyArray a = io::open_npy(path);
  const auto& s = a.shape();
  std::cout << path << ": npy " << shape_string(s) << " " << io::descr(a.dtype()) << "\n  read as: "
            << (a.dtype() == io::DType::kU1 && s.size() == 4 && s[3] == 3
                    ? "images (uint8 [N, H, W, 3]) by evaluate, features and ref-stats"
                    : "--noise or --labels of `sample` when its shape fits")
            << "\n";
  return 0;
}

int run_inspect(const std::string& path, bool list_keys) {
  if (fs::is_directory(path)) return inspect_folder(path, list_keys);
  if (!fs::exists(path)) fail(path, ": no such file or folder");
  if (is_torchscript(path)) {
    std::string inception_error;
    try {
      const models::InceptionExtractor e(path);
      std::string blocks;
      for (const auto& b : e.blocks())
        blocks += (blocks.empty() ? "" : ", ") + b.name + " " + std::to_string(b.width);
      std::cout << path << ": TorchScript module, an Inception feature extractor of kind "
                << e.kind() << "\n  sha256: " << e.sha256() << "\n  features: " << blocks << "\n";
      return 0;
    } catch (const Error& e) {
      inception_error = e.what();
    }
    for (const char* kind : {"dinov2", "clip"}) {  // by the input size its forward takes
      try {
        const auto e = models::load_extractor(kind, path);
        std::cout << path << ": TorchScript module, a " << kind << " feature extractor ("
                  << e->blocks()[0].width << "-d features; use it as --" << kind
                  << ")\n  sha256: " << e->sha256() << "\n";
        return 0;
      } catch (const Error&) {
      }
    }
    fail(inception_error, "; nor a DINOv2 (224 px) or CLIP (336 px) extractor");
  }
  if (models::is_pickle_file(path)) {
    std::optional<io::FeatureSet> ref;
    try {
      ref = models::load_edm2_reference(path);
    } catch (const Error& e) {
      // a dict that is not an EDM2 reference says why; another pickle (a legacy torch.save
      // file starts with an int) goes on to the checkpoint reader below
      if (std::string(e.what()).find("must hold a dict") == std::string::npos) throw;
    }
    if (ref) {
      std::cout << path << ": EDM2 reference statistics pickle of " << ref->provenance.count
                << " images";
      for (const auto& [block, s] : ref->stats)
        std::cout << "\n  " << (block == io::kPool ? "fid" : "fd_dinov2") << ": mu [" << s.dim()
                  << "], sigma [" << s.dim() << ", " << s.dim() << "] (read as "
                  << io::stats_keys(block).first << " / " << io::stats_keys(block).second << ")";
      std::cout << "\n  read as: REF by evaluate, metrics and sweeps; convert-ref makes an npz\n";
      return 0;
    }
  }
  char magic[8] = {};
  std::ifstream(path, std::ios::binary).read(magic, 8);
  if (std::string(magic, 8) == "\x89HDF\r\n\x1a\n") return inspect_array_file(path, true);
  if (std::string(magic, 6) == "\x93NUMPY") return inspect_array_file(path, false);
  if (magic[0] == 'P' && magic[1] == 'K') {
    const io::ZipReader z(path);
    bool npy = !z.entries().empty();
    for (const auto& e : z.entries())
      npy = npy && e.name.size() > 4 && e.name.compare(e.name.size() - 4, 4, ".npy") == 0;
    if (npy) return inspect_npz(path);
  }
  const models::StateDict sd = models::load_state_dict(path);
  std::cout << path << "\n  format: " << sd.format;
  if (!sd.entry.empty()) {
    std::cout << "; top-level keys:";
    for (const auto& k : sd.top_level_keys)
      std::cout << " " << k;
  }
  std::cout << "\n  tensors from: "
            << (sd.entry.empty() ? "the state dict itself" : "'" + sd.entry + "'")
            << "\n  tensors: " << sd.tensors.size() << ", elements: " << with_commas(sd.numel())
            << "\n  dtypes:";
  std::map<std::string, int64_t> dtypes;
  for (const auto& [k, t] : sd.tensors)
    dtypes[at::toString(t.scalar_type())] += 1;
  for (const auto& [name, count] : dtypes)
    std::cout << " " << name << " x " << count;
  std::cout << "\n";

  bool repa = false;
  for (const auto& [k, t] : sd.tensors)
    repa = repa || k.rfind("projectors.", 0) == 0 || k.rfind("decoder_blocks.", 0) == 0;
  if (sd.find("blocks.0.mlp.w12.weight").defined()) {
    const models::LightningDiTConfig c = models::detect_lightningdit_config(sd);
    std::cout << "  architecture: " << c.name() << " (depth " << c.depth << ", hidden " << c.hidden
              << ", heads " << c.heads << ", patch " << c.patch << ", RMSNorm, SwiGLU "
              << c.mlp_hidden() << ", RoPE" << (c.qk_norm ? ", qk-norm" : "") << "), latent "
              << c.input_size << " x " << c.input_size << " x " << c.in_channels << ", "
              << c.num_classes << " classes + null\n";
    std::cout << "  sample it as: lightningdit:" << c.name()
              << " (ODE/SDE, time in [0, 1]; latents out: its VA-VAE is not implemented)\n";
    int64_t want = 0;
    for (const auto& [key, shape] : models::lightningdit_parameter_shapes(c)) {
      int64_t k = 1;
      for (int64_t v : shape)
        k *= v;
      want += k;
    }
    std::cout << "  parameters: " << with_commas(want)
              << (want == sd.numel() ? " (matches the tensors, RoPE buffers included)"
                                     : " expected by the architecture; the file differs")
              << "\n";
  } else if (repa && sd.find("x_embedder.proj.weight").defined()) {
    models::StateDict renamed = sd;
    const int64_t legacy = models::rename_repa_legacy_keys(renamed);
    const models::SiTConfig c = models::detect_sit_config(renamed);
    std::cout << "  architecture: REPA " << c.name() << " (depth " << c.depth << ", hidden "
              << c.hidden << ", heads " << c.heads << ", patch " << c.patch
              << (c.qk_norm ? ", qk-norm" : "") << "), latent " << c.input_size << " x "
              << c.input_size << " x " << c.in_channels << ", " << c.num_classes
              << " classes + null, learn_sigma " << (c.learn_sigma ? "true" : "false")
              << ", projection heads (ignored)"
              << (legacy ? cat(", legacy layout (", legacy, " decoder_blocks keys)") : "") << "\n";
    std::cout << "  sample it as: repa:" << c.name()
              << " (ODE/SDE; REPA's time tau = 1 - t and velocity -v adapted)\n";
  } else if (sd.find("x_embedder.proj.weight").defined()) {
    const models::SiTConfig c = models::detect_sit_config(sd);
    // SiT and DiT checkpoints have the same keys: the file cannot say which it is
    std::cout << "  architecture: " << c.name() << " / DiT" << c.name().substr(3) << " (depth "
              << c.depth << ", hidden " << c.hidden
              << ", heads " << c.heads << ", patch " << c.patch << "), latent " << c.input_size
              << " x " << c.input_size << " x " << c.in_channels << " (" << c.input_size * 8
              << " px with the SD VAE), " << c.num_classes << " classes + null, learn_sigma "
              << (c.learn_sigma ? "true (output channels 4..7: dropped by sit:, the learned "
                                  "variance of dit: DDPM)"
                                : "false") << "\n";
    std::cout << "  sample it as: sit:" << c.name() << " (ODE/SDE, time in [0, 1]) or dit:DiT"
              << c.name().substr(3) << " (DDPM/DDIM, timesteps 0..999), as it was trained\n";
    const int64_t want = models::sit_parameter_count(c);
    std::cout << "  parameters: " << with_commas(want)
              << (want == sd.numel() ? " (matches the tensors)"
                                     : " expected by the architecture; the file differs")
              << "\n";
  } else if (sd.find("decoder.conv_in.weight").defined()) {
    const auto cfg_path = std::filesystem::path(path).parent_path() / "config.json";
    std::cout << "  architecture: AutoencoderKL (decoder used for latents -> images)";
    if (std::filesystem::exists(cfg_path)) {
      const models::VaeConfig c = models::VaeConfig::from_json(cfg_path.string());
      std::cout << ", blocks";
      for (int64_t ch : c.block_out_channels)
        std::cout << " " << ch;
      std::cout << ", " << c.layers_per_block << " layers per block, upsampling x" << c.upsampling()
                << ", scaling factor " << c.scaling_factor;
    }
    std::cout << "\n";
  } else {
    std::cout << "  architecture: not recognised (neither SiT/DiT nor an AutoencoderKL)\n";
  }

  // Key summary: first path component -> tensors, elements.
  std::map<std::string, std::pair<int64_t, int64_t>> groups;
  std::vector<std::string> order;
  for (const auto& [k, t] : sd.tensors) {
    const std::string g = k.substr(0, k.find('.'));
    if (!groups.count(g)) order.push_back(g);
    groups[g].first += 1;
    groups[g].second += t.numel();
  }
  std::cout << "  keys:\n";
  for (const auto& g : order)
    std::cout << "    " << g << ": " << groups[g].first << " tensors, "
              << with_commas(groups[g].second) << " elements\n";
  if (list_keys)
    for (const auto& [k, t] : sd.tensors)
      std::cout << "    " << k << " " << shape_string(t.sizes().vec()) << " "
                << at::toString(t.scalar_type()) << "\n";
  return 0;
}

}  // namespace

Command add_inspect_command(CLI::App& app) {
  auto path = std::make_shared<std::string>();
  auto keys = std::make_shared<bool>(false);
  CLI::App* cmd = app.add_subcommand(
      "inspect",
      "describe an input: a checkpoint's format, architecture, parameter count and keys; a "
      "VAE or image folder; a TorchScript extractor; an npz's arrays");
  cmd->add_option("PATH", *path,
                  ".pt (torch.save zip) or .safetensors checkpoint, TorchScript .pt, .npz, or a "
                  "folder (diffusers VAE, PNG/JPEG images)")
      ->required();
  cmd->add_flag("--keys", *keys, "list every key with its shape and dtype");
  return [path, keys]() { return run_inspect(*path, *keys); };
}

}  // namespace sit::eval
