// libFuzzer target: the TOML files sit-eval reads besides mixtures — a sweep file as
// `sit-eval sweep FILE` parses and expands it (eval/sweep_config: load_sweep: keys, grid
// axes, [[include]] / [[exclude]], protocol presets) and the same bytes as a published
// baselines file (`--baseline FILE`, reports/baselines) and as a `gate` baseline of
// [[configuration]] tables (reports/results: load_gate_baseline). A clean sit::Error is the
// expected outcome for bad input; a crash, a hang, an unbounded allocation (a grid whose
// expansion has no end) or a sanitizer report is a finding. Built and run by scripts/fuzz.sh.
#include <unistd.h>

#include <cstdint>
#include <fstream>
#include <string>

#include "common/error.h"
#include "eval/sweep_config.h"
#include "reports/baselines.h"
#include "reports/results.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path = "/tmp/sit-fuzz-sweep-" + std::to_string(::getpid()) + ".toml";
  std::ofstream(path, std::ios::binary | std::ios::trunc)
      .write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  try {
    const sit::eval::SweepSpec spec = sit::eval::load_sweep(path);
    for (const auto& c : spec.configs) (void)c.id();
  } catch (const sit::Error&) {
    // refused with a message: what bad input should get
  }
  try {
    (void)sit::reports::Baselines::load(path);
  } catch (const sit::Error&) {
  }
  try {  // a `gate` baseline of [[configuration]] tables
    (void)sit::reports::load_gate_baseline(path);
  } catch (const sit::Error&) {
  }
  return 0;
}
