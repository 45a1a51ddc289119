#pragma once
/// One sampler configuration, typed, and the table of its fields. Every field has one row
/// (key, the families it applies to, parser with aliases, canonical printer, `sample` flag
/// and help); the `sample` flags, the sweep TOML ([grid] axes, [[include]], [[exclude]]),
/// canonical IDs, result records and labels all derive from the table.
///
/// Canonical text: "mode=ODE;path=Linear;prediction=velocity;method=euler;steps=5;
/// atol=1e-06;rtol=0.001;cfg=1.0" -- the fields every configuration of the family has, in
/// table order, names in their canonical spelling (aliases and any letter case map to it),
/// numbers in shortest round-trip form; a field that is optional (t0, sample_eps, ...)
/// joins only when it differs from its default, so adding a field never changes existing
/// IDs.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/range.h"
#include "samplers/sampler.h"

namespace sit::eval {

struct SamplerSpec {
  samplers::SamplerConfig config;     ///< typed values; the loss table and null class below
  std::optional<int64_t> null_class;  ///< unset: the model's unconditional label
  std::string loss_table;             ///< kl-eta: CSV "t,L" of the model's loss (path)

  samplers::SamplerFamily family() const { return config.family; }
  /// The stepper's descriptor row.
  const samplers::StepperInfo& stepper() const;
  /// See the file comment. Equal configurations have equal canonical text.
  std::string canonical() const;
  /// First 12 hex digits of the FNV-1a 64-bit hash of canonical().
  std::string id() const;
  /// Drift evaluations per sample from the stepper's row (-1: adaptive, not known).
  int64_t nfe_estimate() const;
  /// "SDE Linear/velocity Euler 21 sigma cfg 1.5": mode, interpolant/prediction, method,
  /// grid points (not for adaptive methods) and w(t), then every other field that differs
  /// from its default as in the canonical text ("cfg 1.5", "last Tweedie"), so configurations with different IDs have different
  /// labels. Without `with_path`: the sampler part alone
  /// (pivot table columns).
  std::string label(bool with_path = true) const;
  /// Whether field `f` joins the canonical text (and the result record).
  bool shows(const struct SamplerField& f) const;
  /// The canonical text of field `key` ("" when it is unset or does not apply).
  std::string value(const std::string& key) const;
  /// The sampler's configuration for a model with this unconditional label (the spec's
  /// null_class wins), loss table loaded. Throws sit::Error for an unreadable loss table
  /// and a DDIM eta too large for its respacing.
  samplers::SamplerConfig resolved(int64_t model_null_class) const;
};

/// When a field joins the canonical text (and the result record).
enum class FieldShown {
  kAlways,    ///< every configuration of the family
  kRelevant,  ///< when it matters (cfg_channels: with guidance)
  kChanged,   ///< when it matters and differs from its default
};

struct SamplerField {
  const char* key;        ///< TOML key and result-record key, e.g. "path_type"
  const char* canonical;  ///< its name in the canonical text, e.g. "path"
  const char* flag;       ///< the `sample` option, e.g. "--path-type" ("" for mode)
  const char* help;       ///< help line, valid names included
  std::vector<samplers::SamplerFamily> families;
  bool numeric = false;  ///< a TOML number (else a string)
  bool integer = false;
  Range range;  ///< numeric fields
  FieldShown shown = FieldShown::kAlways;
  bool in_label = false;
  /// Assigns the field from text already checked against `range` (names are parsed here,
  /// throwing sit::Error with the valid names). Use set().
  void (*assign)(SamplerSpec&, const std::string& text);
  /// The canonical spelling; "" when unset.
  std::string (*print)(const SamplerSpec&);
  /// Whether the value matters for this configuration; nullptr: always (within families).
  bool (*relevant)(const SamplerSpec&) = nullptr;

  bool applies_to(samplers::SamplerFamily f) const;
  /// Sets the field from text (a flag's value, a TOML string, a TOML number as text):
  /// numbers are checked against `range` ("expected a number >= 0, got -1"), names by
  /// their parser. Throws sit::Error.
  void set(SamplerSpec& spec, const std::string& text) const;
};

/// Every field, in canonical order.
const std::vector<SamplerField>& sampler_fields();
/// The row of `key`, or nullptr.
const SamplerField* find_sampler_field(const std::string& key);
/// Defaults of a family: dopri5 with 50 grid points (ODE), Euler-Maruyama with 250 (SDE),
/// as the reference's sample.py.
SamplerSpec default_sampler_spec(samplers::SamplerFamily family);
/// Sets `key` from text; errors name the key: "'cfg_scale': expected a number >= 0, got -1".
void set_sampler_field(SamplerSpec& spec, const std::string& key, const std::string& text);
/// Resets fields that do not matter for this configuration to their defaults, and gives
/// adaptive steppers 2 grid points (they choose their own steps), so that configurations
/// that sample alike have one ID.
void normalise(SamplerSpec& spec);
/// Does `spec` have `text` for field `key`, compared by meaning? A method spelled exactly
/// as one family's canonical name means that family's method ("euler": the ODE method,
/// "Euler": Euler-Maruyama); any other spelling is read in the spec's own family. A value
/// that is not valid for the spec never matches.
bool field_matches(const SamplerSpec& spec, const std::string& key, const std::string& text);

}  // namespace sit::eval
