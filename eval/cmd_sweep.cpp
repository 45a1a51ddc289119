// sit-eval sweep FILE and sit-eval report RUN_DIR.

#include <CLI/CLI.hpp>
#include <filesystem>
#include <iostream>

#include "common/atomic_file.h"
#include "common/error.h"
#include "eval/commands.h"
#include "eval/sweep.h"
#include "reports/results.h"

namespace sit::eval {
namespace {

/// report.md (long table + FD pivot) and results.csv for a run directory.
void write_reports(const std::string& dir) {
  const auto records = reports::load_results(dir + "/results.jsonl");
  const std::string md =
      "# Sweep results\n\nFrechet distance (FD) in the run's feature space; "
      "SDE diffusion w(t) with the code convention D = w/2.\n\n## FD by "
      "interpolant and sampler\n\n" +
      reports::pivot_table(records, "fid", reports::TableFormat::kMarkdown) +
      "\n## All configurations\n\n" + reports::long_table(records, reports::TableFormat::kMarkdown);
  write_file_atomic(dir + "/report.md", md);
  write_file_atomic(dir + "/results.csv", reports::long_table(records, reports::TableFormat::kCsv));
}

}  // namespace

Command add_sweep_command(CLI::App& app) {
  struct Args {
    std::string file, out;
    bool dry_run = false, quiet = false;
  };
  auto a = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand(
      "sweep", "evaluate every configuration of a sweep file (resumable: rerun to continue)");
  cmd->add_option("FILE", a->file, "sweep definition (.toml)")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("--out", a->out, "run directory (default: the file's [sweep] out, or runs/NAME)");
  cmd->add_flag("--dry-run", a->dry_run, "list the configurations and the NFE budget, run nothing");
  cmd->add_flag("--quiet", a->quiet, "no progress lines");
  return [a]() -> int {
    const SweepSpec spec = load_sweep(a->file);
    if (a->dry_run) {
      std::cout << dry_run_listing(spec);
      return 0;
    }
    const SweepSummary s = run_sweep(spec, {a->out, a->quiet}, std::cerr);
    write_reports(s.dir);
    std::cout << "sweep " << spec.name << ": " << s.ok << " ok, " << s.failed << " failed, "
              << s.skipped << " already done; tables in " << s.dir << "/report.md and " << s.dir
              << "/results.csv\n";
    return 0;
  };
}

Command add_report_command(CLI::App& app) {
  struct Args {
    std::string dir, format = "md", out, metric = "fid";
    bool pivot = false;
  };
  auto a = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand("report", "tables from a sweep's results");
  cmd->add_option("RUN_DIR", a->dir, "sweep run directory")
      ->required()
      ->check(CLI::ExistingDirectory);
  cmd->add_option("--format", a->format, "md or csv")->capture_default_str();
  cmd->add_option("--out", a->out, "write here instead of standard output");
  cmd->add_flag("--pivot", a->pivot, "interpolant x prediction rows against sampler columns");
  cmd->add_option("--metric", a->metric, "pivot cell metric: fid, precision, recall, kid, nfe")
      ->capture_default_str();
  return [a]() -> int {
    const auto records = reports::load_results(a->dir + "/results.jsonl");
    const auto format = reports::parse_table_format(a->format);
    const std::string text = a->pivot ? reports::pivot_table(records, a->metric, format)
                                      : reports::long_table(records, format);
    if (a->out.empty())
      std::cout << text;
    else
      write_file_atomic(a->out, text);
    return 0;
  };
}

}  // namespace sit::eval
