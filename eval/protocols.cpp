#include "eval/protocols.h"

#include <cstdio>

#include "common/error.h"
#include "common/format.h"

namespace sit::eval {
namespace {

using samplers::SamplerFamily;

constexpr const char* kAdmReference =
    "VIRTUAL_imagenet256_labeled.npz (ADM reference batch, ImageNet 256)";
constexpr const char* kUniformLabels = "uniform over the 1000 ImageNet classes, null label 1000";

using Fields = std::vector<std::pair<const char*, const char*>>;

/// SiT's sample_ddp.py SDE defaults (protocols.md §1.2; REPA's EM is the same, §3.4).
const Fields kSitEulerMaruyama = {
    {"path_type", "Linear"}, {"prediction", "velocity"},  {"method", "Euler"},
    {"num_steps", "250"},    {"diffusion_form", "sigma"}, {"diffusion_norm", "1.0"},
    {"last_step", "Mean"},   {"last_step_size", "0.04"}};
/// LightningDiT's inference.py: Euler on 250 points shifted by 0.3, channels 0..2 guided.
const Fields kLightningDiTEuler = {{"path_type", "Linear"}, {"prediction", "velocity"},
                                   {"method", "euler"},     {"num_steps", "250"},
                                   {"time_shift", "0.3"},   {"cfg_channels", "3"}};

Fields with(Fields base, const Fields& more) {
  base.insert(base.end(), more.begin(), more.end());
  return base;
}

std::vector<Protocol> make_protocols() {
  // protocols.md §1-§4; every value as the reference scripts run it
  return {
      {"sit-sde",
       "SiT-XL/2 SDE: Euler-Maruyama, 250 points (249 steps + Mean last step 0.04), w = sigma "
       "(D = 1 - t), cfg 1.5 on channels 0..2; published FID 2.06",
       "sit",
       SamplerFamily::kSde,
       with(kSitEulerMaruyama, {{"cfg_scale", "1.5"}, {"cfg_channels", "3"}}),
       50000,
       "dit",
       kUniformLabels,
       kAdmReference,
       "SiT sample_ddp.py SDE defaults (protocols.md §1.2); SiT paper Table 7"},
      {"sit-ode-heun",
       "SiT-XL/2 ODE: Heun (heun2) on 126 points, 250 NFE, cfg 1.5 on channels 0..2; "
       "published FID 2.15",
       "sit",
       SamplerFamily::kOde,
       {{"path_type", "Linear"},
        {"prediction", "velocity"},
        {"method", "heun2"},
        {"num_steps", "126"},
        {"cfg_scale", "1.5"},
        {"cfg_channels", "3"}},
       50000,
       "dit",
       kUniformLabels,
       kAdmReference,
       "the author's stated setting (protocols.md §1.1); SiT paper Table 7"},
      {"dit-ddpm",
       "DiT-XL/2 DDPM: respacing \"250\", learned-range variance, clip_denoised false, cfg 1.5 "
       "on channels 0..2; published FID 2.27",
       "dit",
       SamplerFamily::kDdpm,
       {{"respacing", "250"},
        {"variance_type", "learned-range"},
        {"clip_denoised", "false"},
        {"cfg_scale", "1.5"},
        {"cfg_channels", "3"}},
       50000,
       "dit",
       kUniformLabels,
       kAdmReference,
       "DiT sample_ddp.py (protocols.md §2); DiT paper"},
      {"repa-sde",
       "SiT-XL/2 + REPA: Euler-Maruyama 250 (REPA's = SiT's EM, sigma form, last step 0.04), "
       "cfg 1.8 on all channels, guidance interval tau in [0, 0.7] (t in [0.3, 1]), REPA's "
       "uint8 rule; published FID 1.42",
       "repa",
       SamplerFamily::kSde,
       with(kSitEulerMaruyama,
            {{"cfg_scale", "1.8"}, {"cfg_channels", "all"}, {"guidance_interval", "0.3,1"}}),
       50000,
       "repa",
       kUniformLabels,
       kAdmReference,
       "REPA README command --mode=sde --num-steps=250 --cfg-scale=1.8 --guidance-high=0.7 "
       "(protocols.md §3.4-3.8)"},
      {"repa-ode",
       "SiT-XL/2 + REPA, generate.py defaults: Euler ODE, 50 steps, cfg 1.5 on all channels, "
       "REPA's uint8 rule; no published number",
       "repa",
       SamplerFamily::kOde,
       {{"path_type", "Linear"},
        {"prediction", "velocity"},
        {"method", "euler"},
        {"num_steps", "51"},
        {"cfg_scale", "1.5"},
        {"cfg_channels", "all"}},
       50000,
       "repa",
       kUniformLabels,
       kAdmReference,
       "REPA generate.py argparse defaults (protocols.md §3.3, §3.8)"},
      {"lightningdit",
       "LightningDiT-XL/1 800 epochs: Euler on 250 points shifted by 0.3 (249 NFE), cfg 6.7 on "
       "channels 0..2 of 32 from t >= 0.125; published FID 1.35",
       "lightningdit",
       SamplerFamily::kOde,
       with(kLightningDiTEuler, {{"cfg_scale", "6.7"}, {"cfg_interval_start", "0.125"}}),
       50000,
       "dit",
       kUniformLabels,
       kAdmReference,
       "LightningDiT configs/reproductions (800 ep) and inference.py (protocols.md §4.1)"},
      {"lightningdit-64ep",
       "LightningDiT-XL/1 64 epochs: as lightningdit with cfg 10.0 from t >= 0.10; published "
       "FID 2.11",
       "lightningdit",
       SamplerFamily::kOde,
       with(kLightningDiTEuler, {{"cfg_scale", "10.0"}, {"cfg_interval_start", "0.1"}}),
       50000,
       "dit",
       kUniformLabels,
       kAdmReference,
       "LightningDiT configs/reproductions (64 ep) (protocols.md §4.1)"},
  };
}

std::string fnv12(const std::string& text) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char ch : text) {
    h ^= ch;
    h *= 0x100000001b3ull;
  }
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(h));
  return std::string(buf, 12);
}

}  // namespace

const std::vector<Protocol>& protocols() {
  static const std::vector<Protocol> all = make_protocols();
  return all;
}

std::string protocol_names() {
  std::string s;
  for (const auto& p : protocols())
    s += (s.empty() ? "" : ", ") + std::string(p.name);
  return s;
}

const Protocol& find_protocol(const std::string& name) {
  for (const auto& p : protocols())
    if (lowercase(name) == p.name) return p;
  fail("unknown protocol '", name, "'; protocols: ", protocol_names());
}

SamplerSpec protocol_spec(const Protocol& p) {
  SamplerSpec s = default_sampler_spec(p.family);
  for (const auto& [key, value] : p.fields)
    set_sampler_field(s, key, value);
  normalise(s);
  return s;
}

std::string ProtocolRun::fingerprint() const {
  if (!protocol) unreachable("ProtocolRun without a protocol");
  return fnv12(cat("protocol=", protocol->name, ";", spec.canonical(), ";samples=", num_samples,
                   ";quantization=", quantization, ";labels=", protocol->labels,
                   ";reference=", protocol->reference));
}

std::string ProtocolRun::overrides() const {
  if (!protocol) unreachable("ProtocolRun without a protocol");
  const SamplerSpec preset = protocol_spec(*protocol);
  std::string out;
  auto add = [&](const std::string& key, const std::string& from, const std::string& to) {
    if (from != to) out += cat(out.empty() ? "" : ", ", key, " ", from.empty() ? "unset" : from,
                               " -> ", to.empty() ? "unset" : to);
  };
  add("mode", samplers::to_string(preset.family()), samplers::to_string(spec.family()));
  if (spec.family() == preset.family())
    for (const auto& f : sampler_fields())
      if (f.applies_to(spec.family()) && (spec.shows(f) || preset.shows(f)))
        add(f.key, preset.shows(f) ? f.print(preset) : "", spec.shows(f) ? f.print(spec) : "");
  add("samples", std::to_string(protocol->num_samples), std::to_string(num_samples));
  add("quantization", protocol->quantization, quantization);
  return out;
}

}  // namespace sit::eval
