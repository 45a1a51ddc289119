// sit-eval inspect CKPT: what a weights file holds and which architecture it is.
#include <ATen/ATen.h>

#include <CLI/CLI.hpp>
#include <filesystem>
#include <iostream>
#include <map>

#include "common/error.h"
#include "common/format.h"
#include "eval/commands.h"
#include "models/checkpoint.h"
#include "models/sit.h"
#include "models/vae.h"

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

int run_inspect(const std::string& path, bool list_keys) {
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

  if (sd.find("x_embedder.proj.weight").defined()) {
    const models::SiTConfig c = models::detect_sit_config(sd);
    std::cout << "  architecture: " << c.name() << " (depth " << c.depth << ", hidden " << c.hidden
              << ", heads " << c.heads << ", patch " << c.patch << "), latent " << c.input_size
              << " x " << c.input_size << " x " << c.in_channels << " (" << c.input_size * 8
              << " px with the SD VAE), " << c.num_classes << " classes + null, learn_sigma "
              << (c.learn_sigma ? "true (output channels 4..7 dropped)" : "false") << "\n";
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
      "inspect", "show a checkpoint's format, detected architecture, parameter count and keys");
  cmd->add_option("CKPT", *path, ".pt (torch.save zip) or .safetensors file")->required();
  cmd->add_flag("--keys", *keys, "list every key with its shape and dtype");
  return [path, keys]() { return run_inspect(*path, *keys); };
}

}  // namespace sit::eval
