#pragma once
/// Running a sweep: one directory per sweep holding the expanded configurations, the
/// reference, per-configuration feature files and results as JSON lines. Interrupt it at
/// any moment and rerun: finished configurations are skipped, finished batches are kept,
/// and features and metrics come out bitwise identical to an uninterrupted run.

#include <iosfwd>
#include <optional>
#include <string>

#include "eval/sweep_config.h"
#include "reference_stats/feature_set.h"

namespace sit::eval {

class Generator;

struct SweepOptions {
  std::string out_dir;  ///< overrides the file's [sweep] out
  bool quiet = false;
  int shard = 0, num_shards = 1;  ///< this process does batches k with k % N == shard
  bool merge_only = false;        ///< only finalise configurations whose batches are all there
  std::string device;             ///< overrides the file's device (e.g. cuda:LOCAL_RANK)
  std::string save_images;        ///< overrides the file's save_images: none, png or npz
  /// Progress: a live line rewritten in place (terminal) or a plain line at most every
  /// `log_interval_s` seconds (files, pipes).
  bool tty = false;
  double log_interval_s = 10.0;
};

struct SweepSummary {
  int ok = 0, failed = 0, skipped = 0;
  int pending = 0;  ///< configurations still waiting for other shards' batches
  std::string dir;
  /// The signal (SIGINT, SIGTERM) that stopped the sweep after the batch in flight; 0 when
  /// it ran to its end. Finished configurations are recorded, started ones keep their
  /// batches for the rerun.
  int interrupted = 0;
};

/// A process's place among launcher ranks.
struct Shard {
  int index = 0, count = 1, local_rank = 0;
};
/// From SLURM_PROCID/SLURM_NTASKS (srun), RANK/WORLD_SIZE (torchrun) or
/// OMPI_COMM_WORLD_RANK/OMPI_COMM_WORLD_SIZE (mpirun), with the local rank for the CUDA
/// device; a single shard when none is set.
Shard shard_from_environment();
/// "K/N".
Shard parse_shard(const std::string& text);

/// For `merge` of a run whose configurations still miss batches: one line per shard that
/// owns a missing batch — running (it holds RUN/shards/K-of-N.lock: wait), stopped (its
/// record says running but the lock is free: killed; or interrupted: rerun it), or never
/// started; "" when no batch is missing.
std::string shard_status(const SweepSpec& spec, const std::string& run_dir);

/// The configurations with IDs and the estimated NFE budget (the --dry-run listing).
std::string dry_run_listing(const SweepSpec& spec);

/// The reference a sweep scores against, with statistics: an analytic model's exact
/// statistics and target draws, or the `reference` file (plus the cached pool features of
/// an ADM batch's arr_0 when precision/recall need them); none for a network without one.
std::optional<io::FeatureSet> run_reference(const SweepSpec& spec, const Generator& model,
                                            const std::string& device);

/// Progress lines go to `log` unless quiet.
SweepSummary run_sweep(const SweepSpec& spec, const SweepOptions& options, std::ostream& log);

}  // namespace sit::eval
