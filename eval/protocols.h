#pragma once
/// Published sampling protocols as named presets (../shared/spec/protocols.md): each sets
/// every sampler field (family, method, grid, time shift, guidance scale, channels and
/// interval), the uint8 rule, the sample count, the label scheme and the reference batch
/// it was scored against, and names the model kind it samples. `sample --protocol NAME` and
/// `protocol = "NAME"` in sweeps start from it; any field given explicitly overrides it,
/// and the override is shown. A fingerprint (a hash of the resolved settings) identifies
/// what actually ran: equal to the preset's own fingerprint exactly when nothing was
/// overridden.

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "eval/sampler_spec.h"

namespace sit::eval {

struct Protocol {
  const char* name;     ///< "sit-sde"
  const char* summary;  ///< what it is, with its published number
  const char* model;    ///< model kind prefix it samples: "sit", "dit", "repa", "lightningdit"
  samplers::SamplerFamily family;
  /// Sampler fields (table keys) and values, applied in order to the family's defaults.
  std::vector<std::pair<const char*, const char*>> fields;
  int64_t num_samples;       ///< 50,000 for FID-50K
  const char* quantization;  ///< "dit" or "repa"
  const char* labels;        ///< the label scheme
  const char* reference;     ///< the reference batch the number was scored against
  const char* source;        ///< where the settings come from
};

/// Every preset, in a fixed order.
const std::vector<Protocol>& protocols();
/// The preset named `name` (any case); throws sit::Error listing the names.
const Protocol& find_protocol(const std::string& name);
/// "sit-sde, sit-ode-heun, ..." for help texts.
std::string protocol_names();

/// The preset's sampler configuration (its family's defaults with its fields set,
/// normalised).
SamplerSpec protocol_spec(const Protocol& p);

/// What a run resolved to: the sampler's canonical text plus the run settings a protocol
/// fixes.
struct ProtocolRun {
  const Protocol* protocol = nullptr;
  SamplerSpec spec;
  int64_t num_samples = 0;
  std::string quantization;
  /// First 12 hex digits of FNV-1a 64 of "protocol=NAME;" + the sampler's canonical text +
  /// ";samples=N;quantization=Q;labels=...;reference=...".
  std::string fingerprint() const;
  /// "cfg_scale 1.5 -> 2.0, samples 50000 -> 64" for every setting that differs from the
  /// preset's; "" when none does.
  std::string overrides() const;
};

}  // namespace sit::eval
