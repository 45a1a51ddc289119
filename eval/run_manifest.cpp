#include "eval/run_manifest.h"

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/format.h"
#include "common/sha256.h"
#include "eval/metrics_job.h"
#include "eval/sampler_spec.h"
#include "eval/sweep_config.h"
#include "metrics/precision_recall.h"

namespace fs = std::filesystem;
using json = nlohmann::ordered_json;

namespace sit::eval {
namespace {

json read_json(const fs::path& file) {
  std::ifstream in(file);
  try {
    return json::parse(in);
  } catch (const std::exception& e) {
    fail(file.string(), ": not valid JSON (", e.what(), ")");
  }
}

}  // namespace

RunIdentity run_identity(const SweepSpec& spec,
                         const std::vector<std::pair<std::string, std::string>>& provenance,
                         const MetricsJobOptions& m) {
  RunIdentity id = {{"model", spec.model}};
  // (only when set: runs without autoguidance keep their identity)
  if (!spec.guide_model.empty()) id.emplace_back("guide_model", spec.guide_model);
  if (!spec.quantization.empty()) id.emplace_back("quantization", spec.quantization);
  if (!spec.protocol.empty()) id.emplace_back("protocol", spec.protocol);
  // file checksums (checkpoint, VAE, extractor, a mixture's TOML), not paths
  for (const auto& [key, value] : provenance)
    if (key.size() > 7 && key.compare(key.size() - 7, 7, "_sha256") == 0) id.emplace_back(key, value);
  id.emplace_back("image_size", std::to_string(spec.image_size));
  id.emplace_back("num_classes", std::to_string(spec.num_classes));
  id.emplace_back("precision", spec.precision);
  id.emplace_back("samples", std::to_string(spec.samples));
  id.emplace_back("reference_samples", std::to_string(spec.reference_samples));
  id.emplace_back("batch_size", std::to_string(spec.batch_size));  // dopri5's batch error norm
  id.emplace_back("global_seed", std::to_string(spec.seed));
  std::string metrics;
  for (const auto& k : m.which)
    metrics += (metrics.empty() ? "" : ",") + k;
  id.emplace_back("metrics", metrics);
  id.emplace_back("pr_distance", metrics::to_string(m.pr.mode));
  id.emplace_back("pr_k", std::to_string(m.pr.k));
  id.emplace_back("kid", cat("subsets ", m.kid.subsets, ", subset size ", m.kid.subset_size,
                             ", seed ", m.kid.seed));
  id.emplace_back("cov_ddof", std::to_string(m.stats.ddof));
  id.emplace_back("reference", spec.reference.empty() ? std::string("exact (analytic model) or none")
                                                      : "sha256 " + sha256_file(spec.reference));
  return id;
}

void check_run_identity(const std::string& dir, const RunIdentity& identity) {
  const fs::path file = fs::path(dir) / "run.json";
  json now = json::object();
  for (const auto& [k, v] : identity)
    now[k] = v;
  if (!fs::exists(file)) {
    write_file_atomic(file.string(), json{{"identity", now}}.dump(2) + "\n");
    return;
  }
  const json recorded = read_json(file).value("identity", json::object());
  std::string diff;
  std::set<std::string> keys;
  for (const auto& [k, v] : recorded.items())
    keys.insert(k);
  for (const auto& [k, v] : now.items())
    keys.insert(k);
  for (const auto& k : keys) {
    const std::string before = recorded.contains(k) ? recorded[k].get<std::string>() : "(none)";
    const std::string after = now.contains(k) ? now[k].get<std::string>() : "(none)";
    if (before != after)
      diff += cat(diff.empty() ? "" : "; ", k, ": ", before, " recorded, ", after, " now");
  }
  if (!diff.empty())
    fail(dir, ": this run directory holds results of another setup (", diff,
         "); results would mix. Start a new run: another --out (or 'out' in the sweep file), "
         "or remove ", dir);
}

void record_configurations(const std::string& dir, const std::vector<SamplerSpec>& configs) {
  const fs::path file = fs::path(dir) / "configs.json";
  json all = fs::exists(file) ? read_json(file) : json::array();
  if (!all.is_array()) fail(file.string(), ": expected an array of configurations");
  std::set<std::string> ids;
  for (const auto& c : all)
    ids.insert(c.value("id", ""));
  for (const auto& c : configs)
    if (ids.insert(c.id()).second)
      all.push_back({{"id", c.id()}, {"label", c.label()}, {"canonical", c.canonical()}});
  write_file_atomic(file.string(), all.dump(2) + "\n");
}

std::set<std::string> planned_configurations(const std::string& dir) {
  std::set<std::string> ids;
  std::ifstream in(fs::path(dir) / "configs.json");
  if (!in) return ids;
  const json all = json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (all.is_array())
    for (const auto& c : all)
      if (c.is_object() && c.contains("id") && c["id"].is_string())  // else not one of ours
        ids.insert(c["id"].get<std::string>());
  return ids;
}

}  // namespace sit::eval
