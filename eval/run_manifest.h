#pragma once
/// The identity of a sweep run: everything that changes a number -- the model and the
/// SHA-256 of its files (checkpoint, VAE, feature extractor, mixture file), precision,
/// sample and reference counts, batch size, seed, metrics and their arithmetic, and the
/// reference. The first run records it in RUN/run.json; a later run into the same
/// directory (resume, other shards, merge, added configurations) must have the same
/// identity, or it is refused before any work, naming each differing key.

#include <set>
#include <string>
#include <utility>
#include <vector>

namespace sit::eval {

struct SweepSpec;
struct SamplerSpec;
struct MetricsJobOptions;

/// (key, value) pairs, in a fixed order.
using RunIdentity = std::vector<std::pair<std::string, std::string>>;

/// `provenance`: the generator's provenance() (its file checksums), computed once by the
/// caller: hashing a checkpoint takes seconds.
RunIdentity run_identity(const SweepSpec& spec,
                         const std::vector<std::pair<std::string, std::string>>& provenance,
                         const MetricsJobOptions& metrics);

/// Writes DIR/run.json when absent; else throws sit::Error listing every key whose
/// recorded value differs from `identity` ("samples: 64 recorded, 128 now") and how to
/// start a new run.
void check_run_identity(const std::string& dir, const RunIdentity& identity);

/// DIR/configs.json: the configurations recorded before plus `configs` (id, label,
/// canonical text), so it lists every configuration results.jsonl can hold.
void record_configurations(const std::string& dir, const std::vector<SamplerSpec>& configs);
/// The configuration IDs DIR/configs.json lists (every configuration planned into the run);
/// empty when there is no such file or it cannot be read.
std::set<std::string> planned_configurations(const std::string& dir);

}  // namespace sit::eval
