#include <CLI/CLI.hpp>
#include <chrono>
#include <iostream>

#include "common/atomic_file.h"
#include "common/error.h"
#include "eval/cli_checks.h"
#include "eval/commands.h"
#include "eval/metrics_job.h"
#ifdef SIT_HAVE_TORCH
#include "models/edm2_reference.h"
#endif
#include "reference_stats/feature_set.h"

namespace sit::eval {

Command add_metrics_command(CLI::App& app, const GlobalOptions& global) {
  struct Args {
    std::string ref, samples, json, pr_distance = "adm-fp16",
        metrics = "fid,sfid,inception_score,precision,recall,kid";
    std::string fid_route = "eigen";
    int ddof = 1;
    int64_t kid_subsets = 100, kid_subset_size = 1000;
    uint64_t seed = 0;
    bool timings = false;
  };
  auto args = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand(
      "metrics",
      "ADM-exact FID, sFID, Inception Score, precision/recall, and KID from feature files "
      "(npz or HDF5 with pool / spatial / logits rows or stored mu / sigma / mu_s / sigma_s)");
  cmd->add_option("--ref", args->ref, "reference feature file (.npz or .h5)")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("--samples", args->samples, "sample feature file (.npz or .h5)")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("--json", args->json, "also write the metrics as JSON to this file");
  cmd->add_option("--metrics", args->metrics,
                  "comma-separated metrics: " + metric_names_help() + " (aliases in brackets)")
      ->capture_default_str();
  cmd->add_option("--pr-distance", args->pr_distance,
                  "precision/recall distance arithmetic: adm-fp16 (ADM's half-precision "
                  "blocks, the published numbers' arithmetic) or fp32")
      ->capture_default_str();
  cmd->add_option("--fid-route", args->fid_route,
                  "tr sqrt(S1 S2) by 'eigen' (fast, symmetric) or 'sqrtm' (scipy semantics, "
                  "for parity checks)")
      ->capture_default_str();
  cmd->add_option("--cov-ddof", args->ddof,
                  "covariance divisor N - ddof: 1 as ADM / np.cov, 0 as NVIDIA's tools")
      ->capture_default_str()
      ->check(valid(integers(0, 1)));
  cmd->add_option("--kid-subsets", args->kid_subsets, "KID: number of random subsets")
      ->capture_default_str()
      ->check(valid(integers(1, 100000)));
  cmd->add_option("--kid-subset-size", args->kid_subset_size,
                  "KID: subset size (default 1000, capped with a warning at the smaller set; a "
                  "size given here must fit both sets)")
      ->check(valid(at_least(2)));
  cmd->add_option("--seed", args->seed, "KID and FID-infinity subset seed")->capture_default_str()->check(valid_seed());
  cmd->add_flag("--timings", args->timings,
                "print wall seconds of loading and of each metric to stderr");

  (void)global;  // --threads is applied by main() for every command
  return [args, cmd]() -> int {
    MetricsJobOptions o;
    o.which = option_value("--metrics", [&] { return parse_metric_list(args->metrics); });
    o.pr.mode = option_value("--pr-distance",
                             [&] { return metrics::parse_distance_mode(args->pr_distance); });
    o.frechet.route =
        option_value("--fid-route", [&] { return metrics::parse_frechet_route(args->fid_route); });
    o.stats.ddof = args->ddof;
    o.kid.subsets = args->kid_subsets;
    o.kid.subset_size = args->kid_subset_size;
    o.kid.seed = args->seed;
    o.fd_infinity_seed = args->seed;
    o.kid_subset_size_given = cmd->get_option("--kid-subset-size")->count() > 0;

    if (!args->json.empty()) check_output_path(args->json, "--json", {".json"});
    const auto start = std::chrono::steady_clock::now();
    // Blocks only FID-like metrics read are streamed into statistics, never held as rows.
    io::LoadOptions ref_options, samples_options;
    ref_options.statistics_only = statistics_only_blocks(o.which, MetricInput::kReference);
    samples_options.statistics_only = statistics_only_blocks(o.which, MetricInput::kSamples);
    ref_options.stats = samples_options.stats = o.stats;
#ifdef SIT_HAVE_TORCH  // EDM2's reference pickles need the pickle reader
    const io::FeatureSet ref = models::load_any_feature_set(args->ref, ref_options);
    const io::FeatureSet samples = models::load_any_feature_set(args->samples, samples_options);
#else
    const io::FeatureSet ref = io::load_feature_set(args->ref, ref_options);
    const io::FeatureSet samples = io::load_feature_set(args->samples, samples_options);
#endif
    const std::chrono::duration<double> load = std::chrono::steady_clock::now() - start;
    for (const io::FeatureSet* set : {&ref, &samples})
      if (set->num_rows() == 0 && set->stats.empty() && set->image_count > 0)
        fail(set->path, ": holds images (arr_0), not features: score it with `sit-eval evaluate "
             "REF ", set->path, "`, or extract features first with `sit-eval features ", set->path,
             " --out FEATURES.h5`");
    const MetricsReport report = compute_metrics(ref, samples, o);
    if (args->timings) {
      std::cerr << "timing: load " << load.count() << " s";
      for (const auto& [name, s] : report.seconds)
        std::cerr << ", " << name << " " << s << " s";
      std::cerr << "\n";
    }
    for (const auto& w : report.warnings)
      std::cerr << "warning: " << w << "\n";
    for (const auto& s : report.skipped)
      std::cerr << "note: " << s << "\n";
    for (const auto& s : report.notes)
      std::cerr << "note: " << s << "\n";
    std::cout << report.adm_lines() << std::flush;
    if (!args->json.empty()) write_file_atomic(args->json, report.json());
    if (report.values.empty()) fail("metrics: no requested metric could be computed from these files");
    return 0;
  };
}

}  // namespace sit::eval
