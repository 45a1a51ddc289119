#pragma once
/// Running a sweep: one directory per sweep holding the expanded configurations, the
/// reference, per-configuration feature files and results as JSON lines. Interrupt it at
/// any moment and rerun: finished configurations are skipped, finished batches are kept,
/// and features and metrics come out bitwise identical to an uninterrupted run.

#include <iosfwd>
#include <string>

#include "eval/sweep_config.h"

namespace sit::eval {

struct SweepOptions {
  std::string out_dir;  ///< overrides the file's [sweep] out
  bool quiet = false;
};

struct SweepSummary {
  int ok = 0, failed = 0, skipped = 0;
  std::string dir;
};

/// The configurations with IDs and the estimated NFE budget (the --dry-run listing).
std::string dry_run_listing(const SweepSpec& spec);

/// Progress lines go to `log` unless quiet.
SweepSummary run_sweep(const SweepSpec& spec, const SweepOptions& options, std::ostream& log);

}  // namespace sit::eval
