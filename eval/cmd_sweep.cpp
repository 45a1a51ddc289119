// sit-eval sweep FILE and sit-eval report RUN_DIR.

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <csignal>
#include <algorithm>
#include <set>
#include <filesystem>
#include <iostream>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/format.h"
#include "eval/cli_checks.h"
#include "eval/commands.h"
#include "eval/metric_table.h"
#include "eval/run_manifest.h"
#include "eval/sweep.h"
#include "models/device.h"
#include "reports/baselines.h"
#include "reports/html.h"
#include "reports/latex.h"
#include "reports/paper_tables.h"
#include "reports/results.h"

namespace sit::eval {
namespace {

/// report.md (long table + FD pivot) and results.csv for a run directory.
void write_reports(const std::string& dir) {
  const auto records = reports::load_results(dir + "/results.jsonl");
  // FID on Inception features, FD on data-space or latent ones
  const std::string name = reports::metric_name(records, "fid");
  const std::string md =
      "# Sweep results\n\n" + name + ": Frechet distance in the run's feature space (" +
      (records.empty() ? std::string("none") : reports::text_field(records.front(), "feature_space")) +
      "); SDE diffusion w(t) with the code convention D = w/2.\n\n## " + name +
      " by interpolant and sampler\n\n" +
      reports::pivot_table(records, "fid", reports::TableFormat::kMarkdown) +
      "\n## All configurations\n\n" + reports::long_table(records, reports::TableFormat::kMarkdown);
  write_file_atomic(dir + "/report.md", md);
  write_file_atomic(dir + "/results.csv", reports::long_table(records, reports::TableFormat::kCsv));
}

}  // namespace

Command add_sweep_command(CLI::App& app) {
  struct Args {
    std::string file, out, shard, save_images;
    bool dry_run = false, quiet = false;
  };
  auto a = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand(
      "sweep", "evaluate every configuration of a sweep file (resumable: rerun to continue)");
  cmd->add_option("FILE", a->file, "sweep definition (.toml)")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("--out", a->out, "run directory (default: the file's [sweep] out, or runs/NAME)");
  cmd->add_option("--shard", a->shard,
                  "K/N: this process does batches k with k % N == K (default: from "
                  "SLURM_PROCID/SLURM_NTASKS, RANK/WORLD_SIZE or OMPI_COMM_WORLD_RANK/SIZE)");
  cmd->add_flag("--dry-run", a->dry_run, "list the configurations and the NFE budget, run nothing");
  cmd->add_flag("--quiet", a->quiet, "no progress lines");
  cmd->add_option("--save-images", a->save_images,
                  "also write the decoded images: png (RUN/images/ID/NNNNNN.png) or npz "
                  "(RUN/images/ID.npz, ADM layout: arr_0 uint8 NHWC, arr_1 labels); needs a VAE")
      ->check(CLI::IsMember({"none", "png", "npz"}));
  return [a]() -> int {
    const SweepSpec spec = load_sweep(a->file);
    if (a->dry_run) {
      std::cout << dry_run_listing(spec);
      return 0;
    }
    const Shard shard = a->shard.empty() ? shard_from_environment() : parse_shard(a->shard);
    SweepOptions o;
    o.out_dir = a->out;
    o.quiet = a->quiet;
    o.save_images = a->save_images;
    o.tty = ::isatty(STDERR_FILENO) != 0;
    o.shard = shard.index;
    o.num_shards = shard.count;
    if (spec.device == "cuda") o.device = models::rank_device(shard.local_rank);
    const SweepSummary s = run_sweep(spec, o, std::cerr);
    if (s.interrupted) {
      // the finished configurations' tables, then the way back in
      if (std::filesystem::exists(s.dir + "/results.jsonl")) write_reports(s.dir);
      std::cout << "sweep " << spec.name << ": " << s.ok << " ok, " << s.failed << " failed, "
                << s.skipped << " already done before the "
                << (s.interrupted == SIGINT ? "interrupt" : "termination signal") << "\n";
      std::cerr << "interrupted; rerun the same command to resume\n";
      return 128 + s.interrupted;  // 130 (SIGINT), 143 (SIGTERM)
    }
    std::cout << "sweep " << spec.name;
    if (shard.count > 1) std::cout << " (shard " << shard.index << "/" << shard.count << ")";
    std::cout << ": " << s.ok << " ok, " << s.failed << " failed, " << s.skipped << " already done";
    if (s.pending > 0) {
      std::cout << ", " << s.pending << " waiting for other shards (the last one to finish, or "
                << "'sit-eval merge " << s.dir << "', completes them)\n";
      return 0;
    }
    write_reports(s.dir);
    std::cout << "; tables in " << s.dir << "/report.md and " << s.dir << "/results.csv\n";
    return 0;
  };
}

Command add_merge_command(CLI::App& app) {
  auto dir = std::make_shared<std::string>();
  CLI::App* cmd = app.add_subcommand(
      "merge",
      "complete the configurations whose batches all shards have written, and write "
      "the tables (results equal a single-process run with the same batch size)");
  cmd->add_option("RUN_DIR", *dir, "sweep run directory")
      ->required()
      ->check(CLI::ExistingDirectory);
  return [dir]() -> int {
    if (!std::filesystem::exists(*dir + "/sweep.toml"))
      fail(*dir, ": not a sweep run directory (no sweep.toml; 'sit-eval sweep FILE --out DIR' "
           "makes one)");
    const SweepSpec spec = load_sweep(*dir + "/sweep.toml");
    SweepOptions o;
    o.out_dir = *dir;
    o.merge_only = true;
    const SweepSummary s = run_sweep(spec, o, std::cerr);
    if (s.pending > 0)
      fail("merge: ", s.pending, " configurations of ", *dir, " still miss batches:\n",
           shard_status(spec, *dir), "then merge again");
    write_reports(s.dir);
    std::cout << "merged " << s.ok + s.failed << " configurations; tables in " << s.dir
              << "/report.md and " << s.dir << "/results.csv\n";
    return 0;
  };
}

Command add_report_command(CLI::App& app) {
  struct Args {
    std::vector<std::string> dirs;
    std::string format = "md", out, metric = "fid", digits = "sig4", baseline, layout;
    int64_t bar_nfe = -1;
    bool pivot = false;
  };
  auto a = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand("report", "tables from sweep results (one run or several)");
  cmd->add_option("RUN_DIR", a->dirs, "sweep run directories; several add a run column")
      ->required()
      ->check(CLI::ExistingDirectory);
  cmd->add_option("--format", a->format,
                  "md, csv, tex (booktabs), json, or html (one self-contained page with the "
                  "tables and gnuplot plots)")
      ->capture_default_str()
      ->check(CLI::IsMember({"md", "csv", "tex", "json", "html"}));
  cmd->add_option("--layout", a->layout,
                  "LaTeX in the SiT paper's layouts: diffusion (interpolant x prediction "
                  "against w(t), Table 6), ode-sde (Table 8), system (Table 7), nfe (DiT's DDPM/DDIM "
                  "beside SiT's ODE/SDE at matched NFE, --metric per cell)");
  cmd->add_option("--bar-nfe", a->bar_nfe,
                  "html: NFE of the per-configuration bar chart (default: the NFE most "
                  "configurations share)")
      ->check(valid(at_least(1)));
  cmd->add_option("--baseline", a->baseline,
                  "sit-paper (the published SiT/DiT numbers, built in) or a TOML file of the "
                  "same layout: adds published values, differences and a reproduction summary");
  cmd->add_option("--digits", a->digits,
                  "metric numbers: sig4 (4 significant digits), paper (FID, sFID, IS, P, R "
                  "with 2 decimals; KID 4) or a number of decimals; CSV is always at full "
                  "precision")
      ->capture_default_str()
      ->check(CLI::Validator(
          [](std::string& v) {
            if (v == "paper" || v == "sig4") return std::string();
            const std::string bad = integers(0, 12).check_text(v);
            return bad.empty() ? bad : "expected paper, sig4 or " + bad.substr(9);
          },
          "paper, sig4 or 0..12"));
  cmd->add_option("--out", a->out, "write here instead of standard output");
  cmd->add_flag("--pivot", a->pivot, "interpolant x prediction rows against sampler columns");
  cmd->add_option("--metric", a->metric,
                  "metric of --pivot cells, --layout and the html plots: " + metric_names_help() +
                      " or nfe (not given: fid, else the first metric the results have)")
      ->capture_default_str();
  return [a, cmd]() -> int {
    if (!a->out.empty()) check_output_path(a->out, "--out");
    const bool format_given = cmd->get_option("--format")->count() > 0;
    if (!a->layout.empty() && format_given && a->format != "tex")
      fail("--layout writes LaTeX; --format ", a->format, " does not apply (leave it out, or use "
           "--format tex)");
    if (cmd->get_option("--metric")->count() > 0 && !a->pivot && a->layout.empty() &&
        a->format != "html")
      fail("--metric chooses the metric of --pivot, --layout and --format html; the long "
           "table shows every metric");
    if (a->metric != "nfe") {  // a key or an alias of the metric table
      const Metric* m = find_metric(a->metric);
      if (!m) fail("--metric: unknown metric '", a->metric, "' (", metric_names_help(), ", nfe)");
      a->metric = m->key;
    }
    // Each run's column label: its folder name, or the path as given where two runs share
    // a folder name (x/run and y/run); the same run twice is an error.
    std::vector<std::string> labels;
    {
      std::set<std::string> seen, names, clashing;
      for (const auto& dir : a->dirs) {
        const std::string canonical = std::filesystem::weakly_canonical(dir).string();
        if (!seen.insert(canonical).second)
          fail(dir, ": given twice (", canonical, "); name each run directory once");
        const std::string name = std::filesystem::path(canonical).filename().string();
        if (!names.insert(name).second) clashing.insert(name);
      }
      for (const auto& dir : a->dirs) {
        const std::string name =
            std::filesystem::path(std::filesystem::weakly_canonical(dir)).filename().string();
        labels.push_back(clashing.count(name) ? std::filesystem::path(dir).lexically_normal().string()
                                              : name);
      }
    }
    std::vector<reports::Record> records;
    std::string pending_note;
    for (size_t run_index = 0; run_index < a->dirs.size(); ++run_index) {
      const std::string& dir = a->dirs[run_index];
      const bool has_results = std::filesystem::exists(dir + "/results.jsonl");
      // a sweep still running (or interrupted) has run.json and configs.json first
      if (!has_results && !std::filesystem::exists(dir + "/run.json"))
        fail(dir, ": not a sweep run directory (no results.jsonl)");
      auto rs = has_results ? reports::load_results(dir + "/results.jsonl")
                            : std::vector<reports::Record>();
      const int64_t planned = static_cast<int64_t>(planned_configurations(dir).size());
      std::set<std::string> finished;
      for (const auto& r : rs)
        finished.insert(r.value("id", ""));
      if (planned > static_cast<int64_t>(finished.size()))
        pending_note += cat("note: ", dir, ": ", finished.size(), " of ", planned,
                            " configurations finished, ",
                            planned - static_cast<int64_t>(finished.size()),
                            " pending (a sweep still running, or interrupted: rerun it)\n");
      for (auto& r : rs) {
        // several runs: a run column named by the directory
        if (a->dirs.size() > 1) r["run"] = labels[run_index];
        records.push_back(std::move(r));
      }
    }
    int digits = reports::kSignificant4;
    if (a->digits == "paper")
      digits = reports::kPaper;
    else if (a->digits != "sig4")
      digits = std::stoi(a->digits);  // 0..12, checked by the option's validator
    if (records.empty())
      fail(a->dirs.front(), a->dirs.size() > 1 ? " and the other runs" : "",
           ": no configuration has finished yet",
           pending_note.empty() ? std::string(" (results.jsonl is empty)")
                                : " (" + std::to_string(planned_configurations(a->dirs.front()).size()) +
                                      " planned; rerun the sweep, or wait for it)");
    std::cerr << pending_note;
    {  // one column per metric: say so when it mixes Inception FID with data-space / latent FD
      std::set<std::string> spaces;
      for (const auto& r : records)
        if (r.contains("fid")) spaces.insert(reports::inception_features(r) ? "Inception" : "other");
      if (spaces.size() > 1)
        std::cerr << "note: these runs mix Inception features (FID) with data-space or latent "
                     "features (FD); their distances share a column ('FD / FID') but are not "
                     "comparable\n";
    }
    if (a->metric != "nfe") {
      std::set<std::string> present;
      for (const auto& r : records)
        for (const auto& [key, value] : r.items())
          if (value.is_number() && find_metric(key) && find_metric(key)->key == key)
            present.insert(key);
      // not chosen: FID, else the first metric (in table order) the results have (a run
      // scored only on FD_DINOv2 and CMMD, say)
      if (cmd->get_option("--metric")->count() == 0 && !present.count(a->metric))
        for (const auto& m : metric_keys())
          if (present.count(m)) {
            a->metric = m;
            break;
          }
      if (!present.count(a->metric)) {
        std::string have;
        for (const auto& m : present)
          have += (have.empty() ? "" : ", ") + m;
        fail("--metric ", a->metric, ": no configuration of ", a->dirs.front(),
             a->dirs.size() > 1 ? " (and the other runs)" : "", " has it; the results have ",
             have.empty() ? std::string("no metric") : have, " (and nfe)");
      }
    }
    std::string summary;
    if (!a->baseline.empty()) {
      const auto b = reports::Baselines::load(a->baseline);
      reports::annotate_with_baseline(records, b);
      summary = reports::reproduction_summary(records, b, digits >= 0 ? digits : 2);
      if (summary.empty())
        summary = "no configuration matches a published number of " + b.source() + "\n";
    }
    std::string text;
    if (!a->layout.empty()) {
      text = reports::paper_table(records, a->layout, a->metric, digits);
    } else if (a->format == "html") {
      reports::HtmlOptions h;
      h.title = "sit-eval report:";
      for (const auto& dir : a->dirs)
        h.title += " " + std::filesystem::path(dir).filename().string();
      h.metric = a->metric;
      h.digits = digits;
      h.bar_nfe = a->bar_nfe;
      if (a->bar_nfe > 0 && !reports::has_configuration_at_nfe(records, a->metric, a->bar_nfe))
        std::cerr << "note: --bar-nfe " << a->bar_nfe << ": no finished configuration has "
                  << reports::metric_name(records, a->metric) << " at " << a->bar_nfe
                  << " planned NFE; the page has no bar chart\n";
      h.summary = summary;
      text = reports::html_report(records, h);
    } else if (a->format == "json") {
      nlohmann::ordered_json arr = records;
      text = arr.dump(2) + "\n";
    } else {
      const auto format = reports::parse_table_format(a->format);
      text = a->pivot ? reports::pivot_table(records, a->metric, format, digits)
                      : reports::long_table(records, format, digits);
      if (!summary.empty()) {
        if (format == reports::TableFormat::kMarkdown)
          text += "\nReproduction against published numbers:\n\n" + summary;
        else
          std::cerr << summary;
      }
    }
    if (!a->layout.empty() || a->format == "tex")
      text = std::string("% sit-eval tables: \\usepackage{") + reports::kLatexPackages + "}\n" + text;
    if (a->out.empty())
      std::cout << text;
    else
      write_file_atomic(a->out, text);
    return 0;
  };
}

}  // namespace sit::eval
