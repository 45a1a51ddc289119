// Sweeps: grid expansion and IDs, an end-to-end run, resume after SIGKILL (bitwise), a
// failing configuration recorded, bad files, report rendering.
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <algorithm>
#include <chrono>
#include <set>
#include <sstream>

#include "eval/sweep.h"
#include "eval/sweep_config.h"
#include "reports/paper_tables.h"
#include "reference_stats/feature_set.h"
#include "reference_stats/npy.h"
#include "reports/results.h"
#include "test_util.h"

using namespace sit;
namespace fs = std::filesystem;

using sit::test::slurp;

namespace {

const char* kSmallSweep = R"([sweep]
name = "small"
model = "gmm:mix1d"
samples = 600
reference_samples = 500
batch_size = 100
global_seed = 3
[grid]
path_type = ["Linear", "VP"]
prediction = ["velocity"]
ode_methods = ["euler", "heun2"]
ode_steps = [5, 9]
sde_methods = ["Euler"]
sde_steps = [41]
diffusion_form = ["sigma", "SBDM"]
[[exclude]]
path_type = "VP"
method = "euler"
)";

fs::path write_sweep(const fs::path& dir, const std::string& text) {
  const fs::path p = dir / "sweep.toml";
  std::ofstream(p) << text;
  return p;
}

/// Result records without the fields that legitimately differ between runs.
std::string stable_results(const fs::path& file) {
  std::string out;
  auto records = reports::load_results(file.string());
  std::sort(records.begin(), records.end(),
            [](const auto& a, const auto& b) { return a["id"] < b["id"]; });
  for (auto r : records) {
    r.erase("wall_s");
    r.erase("samples_per_s");
    r.erase("provenance");  // describes the process (threads, BLAS kernels), not the result
    r.erase("shard");
    out += r.dump() + "\n";
  }
  return out;
}

}  // namespace

TEST(SweepConfig, GridExpansionExcludesAndStableIds) {
  const auto dir = sit::test::temp_dir();
  const auto spec = eval::load_sweep(write_sweep(dir, kSmallSweep).string());
  // Linear: 2 ODE methods x 2 steps + 2 SDE forms = 6; VP: 1 ODE method x 2 + 2 = 4.
  ASSERT_EQ(spec.configs.size(), 10u);
  EXPECT_EQ(spec.samples, 600);
  std::set<std::string> ids;
  for (const auto& c : spec.configs) {
    EXPECT_EQ(c.id().size(), 12u);
    ids.insert(c.id());
    EXPECT_FALSE(c.value("path_type") == "VP" && c.value("method") == "euler");
  }
  EXPECT_EQ(ids.size(), spec.configs.size());
  // The ID is a function of the canonical form only.
  eval::SamplerSpec c = spec.configs[0];
  const std::string id = c.id();
  EXPECT_EQ(c.canonical(),
            "mode=ODE;path=Linear;prediction=velocity;method=euler;steps=5;"
            "atol=1e-06;rtol=0.001;cfg=1.0");
  c.config.num_steps = 6;
  EXPECT_NE(c.id(), id);
  EXPECT_EQ(spec.configs[0].nfe_estimate(), 4);
  // [[include]] adds configurations outside the grid.
  const auto with_include = eval::load_sweep(
      write_sweep(dir, std::string(kSmallSweep) +
                           "[[include]]\nmode = \"SDE\"\npath_type = \"GVP\"\nmethod = "
                           "\"Heun\"\nnum_steps = 17\ndiffusion_form = \"sin2\"\n")
          .string());
  ASSERT_EQ(with_include.configs.size(), 11u);
  EXPECT_EQ(with_include.configs.back().label(),  // names canonicalised
            "SDE GVP/velocity Heun 17 increasing-decreasing");
  EXPECT_EQ(with_include.configs.back().nfe_estimate(), 33);
  const std::string listing = eval::dry_run_listing(spec);
  EXPECT_NE(listing.find("10 configurations"), std::string::npos);
  EXPECT_NE(listing.find("estimated budget"), std::string::npos);
}

TEST(SweepConfig, BadFilesNameFileLineAndKey) {
  const auto dir = sit::test::temp_dir();
  struct Case {
    std::string text, fragment;
  };
  const Case cases[] = {
      {"[sweep]\nmodel = \"gmm:mix1d\"\nsamplez = 3\n[grid]\node_methods = [\"euler\"]\n",
       "sweep.toml:3: unknown key 'samplez' in [sweep]"},
      {"[sweep]\nmodel = \"gmm:mix1d\"\n[grid]\node_methods = [\"euler\", \"rk5\"]\n",
       "sweep.toml:4: 'ode_methods': ODE sampling method must be one of"},
      {"[sweep]\nmodel = \"gmm:mix1d\"\nsamples = \"many\"\n[grid]\node_methods = [\"euler\"]\n",
       "sweep.toml:3: 'samples': expected an integer >= 2, got string"},
      {"[sweep]\nmodel = \"gmm:mix1d\"\nsamples = 1\n[grid]\node_methods = [\"euler\"]\n",
       "sweep.toml:3: 'samples': expected an integer >= 2, got 1"},
      {"[sweep]\nmodel = \"gmm:mix1d\"\nbatch_size = 0\n[grid]\node_methods = [\"euler\"]\n",
       "sweep.toml:3: 'batch_size': expected an integer >= 1, got 0"},
      {"[sweep]\nmodel = \"gmm:mix1d\"\n[grid]\nsde_methods = [\"Euler\"]\ndiffusion_norm = [1.0, "
       "-1.0]\n",
       "sweep.toml:5: 'diffusion_norm': expected a number >= 0, got -1"},
      {"[sweep]\nmodel = \"gmm:mix1d\"\n[grid]\nsde_methods = [\"Euler\"]\nlast_step_size = 1.5\n",
       "sweep.toml:5: 'last_step_size': expected a number in (0, 1), got 1.5"},
      {"[sweep]\nmodel = \"gmm:mix1d\"\n[grid]\node_methods = [\"dopri5\"]\natol = 0\n",
       "sweep.toml:5: 'atol': expected a number > 0, got 0"},
      {"[sweep]\nmodel = \"gmm:mix1d\"\n[grid]\node_methods = [\"euler\"]\n[[include]]\nmode = "
       "\"ODE\"\nnum_steps = 1\n",
       "sweep.toml:7: include 'num_steps': expected an integer in [2, 1000000], got 1"},
      {"[sweep]\nmodel = \"gmm:mix1d\"\n[grid]\node_methods = [\"euler\"]\n[[include]]\nmode = "
       "\"ODE\"\nnum_steps = 7.5\n",
       "sweep.toml:7: include 'num_steps': expected an integer in [2, 1000000], got '7.5'"},
      {"[sweep]\nmodel = \"gmm:mix1d\"\n[grid]\npath_type = [1, 2]\node_methods = [\"euler\"]\n",
       "sweep.toml:4: 'path_type' must hold strings"},
      {"[sweep]\nmodel = \"gmm:mix1d\"\n[grid]\npath_type = [\"Linear\"]\n",
       "needs ode_methods, sde_methods, ddpm_respacing and/or ddim_respacing"},
      {"[sweep]\nmodel = \"gmm:mix1d\"\n[grid]\node_methods = [\"euler\"]\n[[exclude]]\ncolor = "
       "1\n",
       "sweep.toml:6: unknown key 'color' in [exclude]"},
      {"[sweep\nmodel = 1\n", "sweep.toml:1:"},
      {"[sweep]\nmodel = \"gmm:mix1d\"\nprecision = \"fp16\"\n[grid]\node_methods = [\"euler\"]\n",
       "sweep.toml:3: 'precision' must be fp32 or fp64 for an analytic model, got 'fp16'"},
      {"[sweep]\nmodel = \"sit:SiT-S/2\"\n[grid]\node_methods = [\"euler\"]\n",
       "model sit:SiT-S/2 needs 'ckpt'"},
      {"[sweep]\nmodel = \"gmm:mix1d\"\nckpt = \"a.pt\"\n[grid]\node_methods = [\"euler\"]\n",
       "sweep.toml:3: 'ckpt' does not apply to the analytic model gmm:mix1d"},
      {"[sweep]\nmodel = \"sit:SiT-S/2\"\nckpt = \"a.pt\"\nsave_images = \"png\"\n[grid]\n"
       "ode_methods = [\"euler\"]\n",
       "sweep.toml:4: 'save_images' needs a model with images ('vae')"},
      {"[sweep]\nmodel = \"sit:SiT-S/2\"\nckpt = \"a.pt\"\nvae = \"v\"\nsave_images = \"jpg\"\n"
       "[grid]\node_methods = [\"euler\"]\n",
       "sweep.toml:5: 'save_images' must be none, png or npz, got 'jpg'"},
      {"[sweep]\nmodel = \"sit:SiT-S/2\"\nckpt = \"a.pt\"\nprecision = \"fp64\"\n[grid]\n"
       "ode_methods = [\"euler\"]\n",
       "sweep.toml:4: 'precision' must be fp32, tf32 or bf16 for a network, got 'fp64'"},
      {"[sweep]\nmodel = \"gmm:mix1d\"\ndevice = \"gpu0\"\n[grid]\node_methods = [\"euler\"]\n",
       "sweep.toml:3: 'device': expected cpu, cuda or cuda:N, got 'gpu0'"},
      {"[sweep]\nmodel = \"gmm:mix1d\"\ndevice = \"cuda:0\"\n[grid]\node_methods = [\"euler\"]\n",
       "sweep.toml:3: 'device' cuda:0: this sit-eval was built against a LibTorch without CUDA"},
      {"[sweep]\nmodel = \"gmm:mix1d\"\n[grid]\node_methods = [\"euler\"]\ncfg_scale = [1.0, "
       "2.0]\n",
       "sweep.toml:5: cfg_scale 2.0 needs a class-conditional model"},
      {"[sweep]\nmodel = \"gmm:mix1d\"\n[grid]\node_methods = [\"euler\"]\n[[include]]\nmode = "
       "\"PDE\"\n",
       "sweep.toml:6: include 'mode': sampler family (mode) must be one of ODE, SDE, DDPM, DDIM; got 'PDE'"},
      {"[sweep]\nmodel = \"gmm:mix1d\"\n[grid]\node_methods = [\"euler\"]\n[[include]]\nmode = "
       "\"SDE\"\n"
       "diffusion_form = \"cosine\"\n",
       "sweep.toml:7: include 'diffusion_form': diffusion form must be one of"},
  };
  for (const auto& c : cases) {
    const auto p = write_sweep(dir, c.text).string();
    sit::test::expect_error([&] { eval::load_sweep(p); }, {c.fragment});
  }
}

TEST(SweepConfig, GridsTooLargeAreRefusedBeforeExpanding) {
  // Array axes multiply: 100 x 100 x 99 ODE combinations, and 3 x 3 x 1000^3 (a count
  // past 32 bits, 9e9 configurations to make), are refused before any is made.
  const auto dir = sit::test::temp_dir();
  auto values = [](int n, double scale) {
    std::string text = "[";
    for (int i = 1; i <= n; ++i) text += (i > 1 ? ", " : "") + std::to_string(i * scale);
    return text + "]";
  };
  auto integers = [](int from, int to) {
    std::string text = "[";
    for (int i = from; i <= to; ++i) text += (i > from ? ", " : "") + std::to_string(i);
    return text + "]";
  };
  const std::string big = "[sweep]\nmodel = \"gmm:mix1d\"\n[grid]\node_methods = [\"dopri5\"]\n"
                          "ode_steps = " + integers(2, 101) + "\natol = " + values(100, 1e-6) +
                          "\nrtol = " + values(99, 1e-4) + "\n";
  sit::test::expect_error([&] { eval::load_sweep(write_sweep(dir, big).string()); },
                          {"sweep.toml:3: the grid expands to 990000 combinations, more than 100000",
                           "split the sweep"});
  const std::string huge = "[sweep]\nmodel = \"gmm:mix1d\"\n[grid]\npath_type = [\"Linear\", "
                           "\"GVP\", \"VP\"]\nprediction = [\"velocity\", \"score\", \"noise\"]\n"
                           "ode_methods = [\"euler\"]\node_steps = " + integers(2, 1001) + "\natol = " +
                           values(1000, 1e-6) + "\nrtol = " + values(1000, 1e-4) + "\n";
  sit::test::expect_error([&] { eval::load_sweep(write_sweep(dir, huge).string()); },
                          {"the grid expands to 9000000000 combinations"});
  // Rules cost rules x combinations (found by a helper session: 1,000 rules on a full grid
  // took 15 s, and a 2.5 MB file could ask for 20 minutes)
  std::string rules = "[sweep]\nmodel = \"gmm:mix1d\"\n[grid]\node_methods = [\"euler\"]\n";
  for (int i = 0; i < 1001; ++i) rules += "[[exclude]]\nnum_steps = " + std::to_string(i + 2) + "\n";
  sit::test::expect_error([&] { eval::load_sweep(write_sweep(dir, rules).string()); },
                          {"sweep.toml:5: 1001 [[exclude]] rules, more than 1000"});
}

TEST(Sweep, EndToEndRecordsFailuresAndRendersTables) {
  const auto dir = sit::test::temp_dir();
  const auto spec = eval::load_sweep(write_sweep(dir, kSmallSweep).string());
  std::ostringstream log;
  eval::SweepOptions o;
  o.out_dir = (dir / "run").string();
  o.log_interval_s = 0;  // every batch
  const auto s = eval::run_sweep(spec, o, log);
  // Progress: configuration i of n, samples done, samples/s, ETAs; then a result line.
  EXPECT_NE(log.str().find("[1/10] ODE Linear/velocity euler 5: 100/600 samples, "),
            std::string::npos)
      << log.str().substr(0, 300);
  EXPECT_NE(log.str().find("samples/s, ETA "), std::string::npos);
  EXPECT_NE(log.str().find("(sweep "), std::string::npos);
  EXPECT_NE(log.str().find(": FD "), std::string::npos);
  // SBDM on the Linear velocity model is refused (lambda(0) = inf) and recorded.
  EXPECT_EQ(s.ok, 9);
  EXPECT_EQ(s.failed, 1);
  const auto records = reports::load_results((dir / "run" / "results.jsonl").string());
  ASSERT_EQ(records.size(), 10u);
  for (const auto& r : records) {
    for (const char* key : {"id", "mode", "path_type", "prediction", "method", "num_steps",
                            "status", "wall_s", "provenance"})
      EXPECT_TRUE(r.contains(key)) << key;
    if (r["status"] == "ok") {
      for (const char* key :
           {"n_samples", "nfe", "fid", "precision", "recall", "kid", "samples_per_s"})
        EXPECT_TRUE(r.contains(key)) << key;
      EXPECT_TRUE(fs::exists(dir / "run" / "features" / (r["id"].get<std::string>() + ".h5")));
    } else {
      EXPECT_NE(r["error"].get<std::string>().find("SBDM"), std::string::npos);
    }
  }
  // Euler ODE: more steps, lower FD; Heun beats Euler at equal NFE (8).
  auto fd = [&](const std::string& method, int64_t steps) {
    for (const auto& r : records)
      if (r["path_type"] == "Linear" && r["method"] == method && r["num_steps"] == steps)
        return r["fid"].get<double>();
    return -1.0;
  };
  EXPECT_LT(fd("euler", 9), fd("euler", 5));
  EXPECT_LT(fd("heun2", 5), fd("euler", 9));
  const std::string pivot = reports::pivot_table(records, "fid", reports::TableFormat::kMarkdown);
  EXPECT_NE(pivot.find("| interpolant / prediction | ODE euler 5 (NFE 4) | ODE euler 9 (NFE 8) |"),
            std::string::npos)
      << pivot;
  // A failed configuration shares its column with the others of the same sampler.
  EXPECT_NE(pivot.find("SDE Euler 41 SBDM (NFE 41) |"), std::string::npos);
  EXPECT_EQ(pivot.find("SDE Euler 41 SBDM |"), std::string::npos);
  EXPECT_NE(pivot.find("| Linear / velocity |"), std::string::npos);
  EXPECT_NE(pivot.find("failed"), std::string::npos);
  const std::string tex = reports::pivot_table(records, "fid", reports::TableFormat::kLatex);
  // on paper the samplers (more than the interpolant / prediction pairs) run down the page
  EXPECT_NE(tex.find("\\toprule\nsampler & Linear / velocity & "), std::string::npos) << tex;
  EXPECT_NE(tex.find("\nODE euler 5 (NFE 4) & "), std::string::npos) << tex;
  EXPECT_NE(tex.find("\\end{longtable}"), std::string::npos);
  // the long table's settings in one wrapping column, the failure's reason in the status
  const std::string long_tex = reports::long_table(records, reports::TableFormat::kLatex);
  EXPECT_NE(long_tex.find("id & configuration & NFE & FD & "), std::string::npos) << long_tex;
  EXPECT_NE(long_tex.find("& failed: "), std::string::npos) << long_tex;
  sit::test::expect_error([] { reports::parse_table_format("pdf"); },
                          {"md, csv, tex, html", "'pdf'"});
  const std::string csv = reports::long_table(records, reports::TableFormat::kCsv);
  EXPECT_EQ(csv.rfind("id,mode,path,prediction,method,steps,", 0), 0u);
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 11);
  // A second run skips everything.
  o.quiet = true;
  const auto again = eval::run_sweep(spec, o, log);
  EXPECT_EQ(again.skipped, 10);
}

TEST(Sweep, ResumeAfterSigkillIsBitwiseIdentical) {
  const auto dir = sit::test::temp_dir();
  const auto spec = eval::load_sweep(write_sweep(dir, kSmallSweep).string());
  std::ostringstream log;
  eval::SweepOptions clean_options;
  clean_options.out_dir = (dir / "clean").string();
  clean_options.quiet = true;
  eval::run_sweep(spec, clean_options, log);
  const std::string clean = stable_results(dir / "clean" / "results.jsonl");

  // Run the sit-eval program on the same sweep and SIGKILL it at random moments, three
  // times, then let it finish.
  std::mt19937 rng(7);
  const fs::path killed = dir / "killed";
  const std::string sweep_file = (dir / "sweep.toml").string();
  auto results_count = [&] {
    return fs::exists(killed / "results.jsonl")
               ? reports::load_results((killed / "results.jsonl").string()).size()
               : size_t{0};
  };
  auto batches_on_disk = [&] {
    size_t n = 0;
    if (fs::exists(killed / "partial"))
      for (const auto& e : fs::recursive_directory_iterator(killed / "partial"))
        n += e.path().extension() == ".npz";
    return n;
  };
  int interrupted_mid_run = 0;
  for (int attempt = 0; attempt < 12 && interrupted_mid_run < 3 && results_count() < 10;
       ++attempt) {
    const pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      execl(SIT_EVAL_BINARY, SIT_EVAL_BINARY, "--threads", "1", "sweep", sweep_file.c_str(),
            "--out", killed.c_str(), "--quiet", static_cast<char*>(nullptr));
      _exit(127);
    }
    // The kill lands inside the work however slowly the program starts on a loaded machine
    // (CI runs this beside the sanitizer build): wait until the run shows work, a batch on
    // disk or a record that was not there before, then a random 0-300 ms more. (Fixed sleeps of up to 2 s could all
    // end before the first batch under load: a flaky verdict.)
    int status = 0;
    bool exited = false;
    const size_t records_before = results_count(), batches_before = batches_on_disk();
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(120);
    while (!exited && batches_on_disk() == batches_before && results_count() == records_before &&
           std::chrono::steady_clock::now() < give_up) {
      exited = waitpid(pid, &status, WNOHANG) == pid;
      usleep(5000);
    }
    if (!exited) {
      usleep(std::uniform_int_distribution<int>(0, 300000)(rng));
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
    }
    const size_t done = results_count();
    if (WIFSIGNALED(status) && done < 10 && (done > 0 || batches_on_disk() > 0))
      ++interrupted_mid_run;
  }
  EXPECT_GT(interrupted_mid_run, 0) << "no kill landed inside the sweep; the test proves nothing";
  eval::SweepOptions resume;
  resume.out_dir = killed.string();
  resume.quiet = true;
  eval::run_sweep(spec, resume, log);
  EXPECT_EQ(stable_results(killed / "results.jsonl"), clean);
  for (const auto& entry : fs::directory_iterator(dir / "clean" / "features"))
    EXPECT_EQ(slurp(killed / "features" / entry.path().filename()), slurp(entry.path()))
        << entry.path().filename();
  EXPECT_FALSE(fs::exists(killed / "partial"));
}

// A process killed between writing a configuration's record and removing its batches
// leaves them behind; the next run (which skips the configuration) removes them.
TEST(Sweep, LeftoversOfRecordedConfigurationsAreRemovedOnResume) {
  const auto dir = sit::test::temp_dir();
  const auto spec = eval::load_sweep(write_sweep(dir, kSmallSweep).string());
  std::ostringstream log;
  eval::SweepOptions o;
  o.out_dir = (dir / "run").string();
  o.quiet = true;
  eval::run_sweep(spec, o, log);
  ASSERT_FALSE(fs::exists(dir / "run" / "partial"));
  const fs::path partial = dir / "run" / "partial";
  fs::create_directories(partial / spec.configs[0].id());
  std::ofstream(partial / spec.configs[0].id() / "batch_0.npz") << "left by a killed process";
  std::ofstream(partial / (spec.configs[1].id() + ".lock"));
  const auto again = eval::run_sweep(spec, o, log);
  EXPECT_EQ(again.skipped, 10);
  EXPECT_FALSE(fs::exists(partial));
}

namespace {

/// Runs `command` through the shell; returns its exit status.
int shell(const std::string& command) {
  const int status = std::system(command.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/// "sit-eval sweep FILE --out OUT EXTRA --quiet", output discarded.
std::string sweep_command(const std::string& file, const fs::path& out,
                          const std::string& extra = "") {
  return std::string(SIT_EVAL_BINARY) + " sweep " + file + " --out " + out.string() + " " + extra +
         " --quiet >/dev/null";
}

/// The small sweep's file in a fresh directory, and its single-process run in DIR/one.
std::pair<fs::path, std::string> single_process_run() {
  const auto dir = sit::test::temp_dir();
  const auto file = write_sweep(dir, kSmallSweep).string();
  EXPECT_EQ(shell(sweep_command(file, dir / "one")), 0);
  return {dir, file};
}

}  // namespace

TEST(Sweep, TwoShardsThenMergeEqualOneProcess) {
  const auto [dir, file] = single_process_run();
  const std::string bin = SIT_EVAL_BINARY;
  // Two concurrent shards; then merge (which finds nothing left when the later shard
  // already completed everything, and still writes the tables).
  const fs::path two = dir / "two";
  ASSERT_EQ(shell("(" + sweep_command(file, two, "--shard 0/2") + " & " +
                  sweep_command(file, two, "--shard 1/2") + "; wait)"),
            0);
  ASSERT_EQ(shell(bin + " merge " + two.string() + " >/dev/null"), 0);
  EXPECT_EQ(stable_results(dir / "one" / "results.jsonl"), stable_results(two / "results.jsonl"));
  for (const auto& entry : fs::directory_iterator(dir / "one" / "features"))
    EXPECT_EQ(slurp(two / "features" / entry.path().filename()), slurp(entry.path()));
  EXPECT_TRUE(fs::exists(two / "report.md"));

  // One shard alone leaves work pending; merge refuses until the other shard has run.
  const fs::path half = dir / "half";
  ASSERT_EQ(shell(sweep_command(file, half, "--shard 0/2")), 0);
  EXPECT_EQ(shell(bin + " merge " + half.string() + " 2>/dev/null >/dev/null"), 1);
  ASSERT_EQ(shell(sweep_command(file, half, "--shard 1/2")), 0);
  EXPECT_EQ(stable_results(dir / "one" / "results.jsonl"), stable_results(half / "results.jsonl"));
}

TEST(Sweep, BadShardsAndIncompleteMergeAreClearErrors) {
  const auto dir = sit::test::temp_dir();
  const auto file = write_sweep(dir, kSmallSweep).string();
  const std::string bin = SIT_EVAL_BINARY;
  const std::string err = (dir / "err.txt").string();
  auto stderr_of = [&] {
    std::ifstream in(err);
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  EXPECT_EQ(shell(bin + " sweep " + file + " --shard 2/2 2>" + err), 1);
  EXPECT_NE(stderr_of().find("--shard K/N needs 0 <= K < N, got '2/2'"), std::string::npos)
      << stderr_of();
  EXPECT_EQ(shell(bin + " sweep " + file + " --shard half 2>" + err), 1);
  EXPECT_NE(stderr_of().find("--shard must be K/N"), std::string::npos) << stderr_of();
  EXPECT_EQ(shell("RANK=5 WORLD_SIZE=2 " + bin + " sweep " + file + " 2>" + err), 1);
  EXPECT_NE(stderr_of().find("RANK = 5 and WORLD_SIZE = 2 do not describe a shard"),
            std::string::npos)
      << stderr_of();
  ASSERT_EQ(shell(sweep_command(file, dir / "half", "--shard 0/2")), 0);
  const std::string merge = bin + " merge " + (dir / "half").string() + " 2>" + err;
  EXPECT_EQ(shell(merge), 1);
  EXPECT_NE(stderr_of().find("still miss batches:\n  shard 1/2 has not started: run 'sit-eval "
                             "sweep " + (dir / "half" / "sweep.toml").string() + " --out " +
                             (dir / "half").string() + " --shard 1/2'"),
            std::string::npos)
      << stderr_of();
  // Shard 0/2 finished: its record says so and its lock is free.
  const auto shards = dir / "half" / "shards";
  EXPECT_NE(slurp(shards / "0-of-2.json").find("\"state\": \"finished\""), std::string::npos);
  // Shard 1/2 running: a process holds its lock (this test, as a sweep process would).
  std::ofstream(shards / "1-of-2.json")
      << "{\"shard\": \"1/2\", \"pid\": " << ::getpid()
      << ", \"host\": \"node7\", \"started\": \"2026-12-01T06:00:00Z\", \"state\": \"running\"}\n";
  {
    const int fd = ::open((shards / "1-of-2.lock").c_str(), O_RDWR | O_CREAT, 0644);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::flock(fd, LOCK_EX | LOCK_NB), 0);
    EXPECT_EQ(shell(merge), 1);
    EXPECT_NE(stderr_of().find("shard 1/2 is running (pid " + std::to_string(::getpid()) +
                               " on node7, started 2026-12-01T06:00:00Z): wait for it"),
              std::string::npos)
        << stderr_of();
    // a second process of the same shard is refused while the first runs
    EXPECT_EQ(shell(sweep_command(file, dir / "half", "--shard 1/2") + " 2>" + err), 1);
    EXPECT_NE(stderr_of().find("shard 1/2 is already running (pid " + std::to_string(::getpid()) +
                               " on node7"),
              std::string::npos)
        << stderr_of();
    // another sweep on the same directory, split differently (or not at all), is refused
    EXPECT_EQ(shell(sweep_command(file, dir / "half", "") + " 2>" + err), 1);
    EXPECT_NE(stderr_of().find("a sweep split into 2 shards is running here (shard 1/2, pid " +
                               std::to_string(::getpid()) + " on node7); this one is split "
                               "into 1. One sweep per run directory"),
              std::string::npos)
        << stderr_of();
    ::close(fd);  // the process "dies": its lock goes, its record still says running
  }
  EXPECT_EQ(shell(merge), 1);
  EXPECT_NE(stderr_of().find("shard 1/2 stopped before its batches were written (pid " +
                             std::to_string(::getpid()) + " on node7, started "
                             "2026-12-01T06:00:00Z, killed): rerun it with --shard 1/2"),
            std::string::npos)
      << stderr_of();
  ASSERT_EQ(shell(sweep_command(file, dir / "half", "--shard 1/2")), 0);
  EXPECT_EQ(shell(merge), 0) << stderr_of();
}

// A batch file that does not read back whole — bytes flipped inside a member (its CRC-32
// fails) or the file cut short (no zip directory) — is never scored: it is deleted, named
// on stderr, regenerated by its shard, and the results equal a run that never saw it.
TEST(Sweep, CorruptOrTruncatedBatchesAreRegeneratedNotScored) {
  const auto [dir, file] = single_process_run();
  const fs::path bad = dir / "bad";
  ASSERT_EQ(shell(sweep_command(file, bad, "--shard 0/2")), 0);
  std::vector<fs::path> batches;
  for (const auto& config : fs::directory_iterator(bad / "partial"))
    if (config.is_directory() && fs::exists(config.path() / "batch_0.npz"))
      batches.push_back(config.path());
  ASSERT_GE(batches.size(), 2u);
  {  // flip 32 bytes in the middle of one member's data
    const fs::path f = batches[0] / "batch_0.npz";
    const auto size = fs::file_size(f);
    std::fstream io(f, std::ios::in | std::ios::out | std::ios::binary);
    io.seekp(static_cast<std::streamoff>(size / 2));
    for (int i = 0; i < 32; ++i)
      io.put(static_cast<char>(0x5A));
  }
  fs::resize_file(batches[1] / "batch_2.npz", fs::file_size(batches[1] / "batch_2.npz") / 2);
  const std::string err = (dir / "err.txt").string();
  ASSERT_EQ(shell(sweep_command(file, bad) + " 2>" + err), 0);
  const std::string log = slurp(err);
  for (const auto& [config, k] : {std::pair{batches[0], 0}, std::pair{batches[1], 2}})
    EXPECT_NE(log.find("note: batch " + std::to_string(k) + " of " +
                       config.filename().string() + " did not read back ("),
              std::string::npos)
        << log;
  EXPECT_EQ(stable_results(dir / "one" / "results.jsonl"), stable_results(bad / "results.jsonl"));
}

TEST(Sweep, MpirunTwoRanksEqualOneProcess) {
  if (shell("command -v mpirun >/dev/null 2>&1") != 0)
    GTEST_SKIP() << "mpirun not installed (Debian openmpi-bin; scripts/test.sh installs it)";
  const auto [dir, file] = single_process_run();
  const std::string bin = SIT_EVAL_BINARY;
  // The rank and size come from OMPI_COMM_WORLD_RANK / OMPI_COMM_WORLD_SIZE.
  ASSERT_EQ(shell("mpirun --allow-run-as-root --oversubscribe -np 2 " + bin + " --threads 1 sweep " + file +
                  " --out " + (dir / "mpi").string() + " --quiet >/dev/null 2>&1"),
            0);
  ASSERT_EQ(shell(bin + " merge " + (dir / "mpi").string() + " >/dev/null"), 0);
  EXPECT_EQ(stable_results(dir / "one" / "results.jsonl"),
            stable_results(dir / "mpi" / "results.jsonl"));
  const auto records = reports::load_results((dir / "mpi" / "results.jsonl").string());
  std::set<std::string> shards;
  for (const auto& r : records)
    shards.insert(r.value("shard", ""));
  EXPECT_TRUE(shards.count("0/2") || shards.count("1/2")) << "ran as one process?";
}

TEST(Reports, TablesRenderExactlyTheExpectedText) {
  std::vector<reports::Record> records = {
      reports::Record::parse(
          R"({"id":"aaa","mode":"ODE","path_type":"Linear","prediction":"velocity",
        "method":"heun2","num_steps":5,"nfe_planned":8,"cfg_scale":1.0,"nfe":8.0,"fid":0.123456,
        "precision":0.9,"recall":0.8,"kid":0.01,"status":"ok"})"),
      reports::Record::parse(
          R"({"id":"bbb","mode":"SDE","path_type":"Linear","prediction":"velocity",
        "method":"Euler","num_steps":9,"nfe_planned":9,"diffusion_form":"SBDM","cfg_scale":1.0,
        "status":"failed","error":"lambda(0) = inf, set --t0"})"),
      reports::Record::parse(R"({"id":"ccc","mode":"ODE","path_type":"VP","prediction":"noise",
        "method":"heun2","num_steps":5,"nfe_planned":8,"cfg_scale":1.0,"nfe":8.0,"fid":2.5,
        "status":"ok"})")};
  EXPECT_EQ(reports::pivot_table(records, "fid", reports::TableFormat::kMarkdown),
            "| interpolant / prediction | ODE heun2 5 (NFE 8) | SDE Euler 9 SBDM (NFE 9) |\n"
            "|---|---|---|\n"
            "| Linear / velocity | 0.1235 | failed |\n"
            "| VP / noise | 2.5 |  |\n");
  EXPECT_EQ(
      reports::long_table(records, reports::TableFormat::kCsv),
      "id,mode,path,prediction,method,steps,w(t) (D = w/2) / variance,cfg,NFE,FID,Precision,Recall,KID,status\n"
      "aaa,ODE,Linear,velocity,heun2,5,,1,8,0.123456,0.9,0.8,0.01,ok\n"
      "bbb,SDE,Linear,velocity,Euler,9,SBDM,1,,,,,,\"failed: lambda(0) = inf, set --t0\"\n"
      "ccc,ODE,VP,noise,heun2,5,,1,8,2.5,,,,ok\n");
  // two pairs, two samplers: not transposed; the header repeats on continuation pages
  const std::string head =
      "\\toprule\ninterpolant / prediction & ODE heun2 5 (NFE 8) & SDE Euler 9 SBDM (NFE 9) "
      "\\\\\n\\midrule\n";
  EXPECT_EQ(reports::pivot_table(records, "fid", reports::TableFormat::kLatex),
            "\\begingroup\n\\footnotesize\n\\setlength{\\tabcolsep}{4pt}\n"
            "\\begin{longtable}{@{}lrr@{}}\n"
            "\\caption{FID by interpolant / prediction and sampler}\\\\\n" +
                head + "\\endfirsthead\n\\caption[]{(continued)}\\\\\n" + head +
                "\\endhead\n\\bottomrule\n\\endlastfoot\n"
                "Linear / velocity & 0.1235 & failed \\\\\n"
                "VP / noise & 2.5 &  \\\\\n"
                "\\end{longtable}\n\\endgroup\n");
}

// Names in any case and their aliases are one configuration with the canonical spelling's
// ID; rules match by meaning, a method name read in the configuration's own mode.
TEST(SweepConfig, AliasesAreCanonicalisedToOneConfiguration) {
  const auto dir = sit::test::temp_dir();
  const auto canonical = eval::load_sweep(
      write_sweep(dir,
                  "[sweep]\nmodel = \"gmm:mix1d\"\n[grid]\npath_type = [\"Linear\"]\n"
                  "ode_methods = [\"euler\", \"heun2\"]\node_steps = [5]\nsde_methods = "
                  "[\"Euler\"]\nsde_steps = [9]\ndiffusion_form = [\"SBDM\"]\nlast_step = "
                  "[\"Mean\"]\n")
          .string());
  const auto aliases = eval::load_sweep(
      write_sweep(dir,
                  "[sweep]\nmodel = \"gmm:mix1d\"\n[grid]\npath_type = [\"linear\", \"LINEAR\"]\n"
                  "ode_methods = [\"Euler\", \"heun\", \"heun2\", \"EULER\"]\node_steps = [5]\n"
                  "sde_methods = [\"euler\", \"euler-maruyama\"]\nsde_steps = [9]\n"
                  "diffusion_form = [\"sbdm\"]\nlast_step = [\"mean\"]\n")
          .string());
  ASSERT_EQ(canonical.configs.size(), 3u);
  ASSERT_EQ(aliases.configs.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(aliases.configs[i].id(), canonical.configs[i].id());
    EXPECT_EQ(aliases.configs[i].canonical(), canonical.configs[i].canonical());
  }
  // A rule's method in another spelling is read in each configuration's mode; "mode"
  // restricts it (here: EULER excludes the ODE euler, not Euler-Maruyama).
  const auto excluded = eval::load_sweep(
      write_sweep(dir,
                  "[sweep]\nmodel = \"gmm:mix1d\"\n[grid]\node_methods = [\"euler\", \"heun\"]\n"
                  "ode_steps = [5]\nsde_methods = [\"Euler\"]\nsde_steps = [9]\n[[exclude]]\n"
                  "mode = \"ode\"\nmethod = \"EULER\"\n")
          .string());
  ASSERT_EQ(excluded.configs.size(), 2u);
  EXPECT_EQ(excluded.configs[0].value("method"), "heun2");
  EXPECT_EQ(excluded.configs[1].value("method"), "Euler");
}

TEST(SweepConfig, MixtureFileWithAClassWithoutComponentNamesTheFile) {
  const auto dir = sit::test::temp_dir();
  std::ofstream(dir / "m.toml") << "dim = 1\nnum_classes = 2\n[[component]]\nweight = 1.0\n"
                                   "mean = [0.0]\nclass = 0\n";
  sit::test::expect_error(
      [&] { eval::load_sweep(write_sweep(dir, "[sweep]\nmodel = \"gmm:" + (dir / "m.toml").string() +
                                                  "\"\n[grid]\node_methods = [\"euler\"]\n")
                                 .string()); },
      {"m.toml: class 1 has no component (num_classes = 2 needs at least one [[component]] with "
       "class = 1)"});
}

TEST(Sweep, DitFamiliesBesideSiTSamplersOnTheExactMixture) {
  const auto dir = sit::test::temp_dir();
  const std::string text = R"([sweep]
name = "discrete"
model = "gmm:mix1d"
samples = 400
reference_samples = 400
batch_size = 200
global_seed = 1
metrics = ["fid"]
[grid]
path_type = ["Linear"]
prediction = ["velocity"]
ode_methods = ["heun2"]
ode_steps = [6, 11]
ddpm_respacing = ["10", "20"]
ddim_respacing = ["10", "020"]
variance_type = ["fixed-small", "fixed_large"]
eta = [0.0, 1.0]
clip_denoised = [false]
[[include]]
mode = "DDPM"
respacing = "ddim10"
variance_type = "fixed-large"
clip_denoised = true
)";
  const auto spec = eval::load_sweep(write_sweep(dir, text).string());
  ASSERT_EQ(spec.configs.size(), 11u);  // ODE 2, DDPM 2 x 2, DDIM 2 x 2, the include
  std::set<std::string> labels;
  for (const auto& c : spec.configs)
    labels.insert(c.label());
  for (const char* l : {"ODE Linear/velocity heun2 6", "DDPM 10 fixed-small", "DDPM 20 fixed-large",
                        "DDIM 20", "DDIM 10 eta 1.0", "DDPM ddim10 fixed-large clip true"})
    EXPECT_TRUE(labels.count(l)) << l;
  std::ostringstream log;
  eval::SweepOptions o;
  o.out_dir = (dir / "run").string();
  o.quiet = true;
  const auto s = eval::run_sweep(spec, o, log);
  EXPECT_EQ(s.ok, 11) << log.str();
  const auto records = reports::load_results((dir / "run" / "results.jsonl").string());
  ASSERT_EQ(records.size(), 11u);
  for (const auto& r : records) {
    const std::string mode = r["mode"];
    if (mode == "ODE") continue;
    EXPECT_FALSE(r.contains("path_type")) << r.dump();
    EXPECT_TRUE(r.contains("respacing")) << r.dump();
    EXPECT_EQ(r.contains("variance_type"), mode == "DDPM") << r.dump();
    EXPECT_EQ(r.contains("eta"), mode == "DDIM") << r.dump();
    EXPECT_EQ(r["nfe"].get<double>(), r["nfe_planned"].get<int64_t>());
    EXPECT_EQ(r["respacing"] == "ddim10" || r["respacing"] == "10", r["nfe_planned"] == 10);
  }
  // DiT's samplers beside SiT's at matched NFE: more samplers than budgets, so rows
  // samplers, columns NFE
  const std::string tex = reports::paper_table(records, "nfe", "fid", 2);
  for (const char* cell : {"Sampler & NFE 10 & NFE 20 \\\\", "\ngmm:mix1d Linear/velocity ODE heun2 & ",
                           "\ngmm:mix1d DDPM fixed-small & ", "\ngmm:mix1d DDIM eta 1.0 & ",
                           "\\textbf{"})
    EXPECT_NE(tex.find(cell), std::string::npos) << cell << "\n" << tex;
  const std::string md = reports::long_table(records, reports::TableFormat::kMarkdown);
  EXPECT_NE(md.find("| DDPM |  |  |  | 20 | fixed-large |"), std::string::npos) << md;
  EXPECT_NE(md.find("| DDPM |  |  |  | ddim10 | fixed-large clip |"), std::string::npos) << md;
  // "ddim10" keeps other timesteps than "10": its own column at NFE 10
  EXPECT_NE(tex.find("gmm:mix1d DDPM ddim-stride fixed-large clip true"), std::string::npos) << tex;
  const std::string pivot = reports::pivot_table(records, "fid", reports::TableFormat::kMarkdown);
  EXPECT_NE(pivot.find("| discrete timesteps / noise |"), std::string::npos) << pivot;

  // learned-range (the default) on an eps-only model is refused before any work
  const auto bad_dir = sit::test::temp_dir();
  const std::string bad = R"([sweep]
name = "bad"
model = "gmm:mix1d"
samples = 100
[grid]
ddpm_respacing = ["10"]
)";
  sit::test::expect_error([&] { eval::load_sweep(write_sweep(bad_dir, bad).string()); },
                          {"sweep.toml: configuration DDPM 10 learned-range",
                           "variance_type learned-range needs a model with learned sigma",
                           "use variance_type fixed-small"});
  // a DDIM eta too large for its respacing, and exclude rules no family can match
  const std::pair<const char*, std::vector<std::string>> bad_files[] = {
      {"[grid]\nddim_respacing = [\"10\"]\neta = [5.0]\n",
       {"configuration DDIM 10 eta 5.0", "'eta': DDIM eta 5.0 is too large for respacing '10'",
        "eta <= 1 always does"}},
      {"[grid]\nddpm_respacing = [\"10\"]\nvariance_type = [\"fixed-small\"]\n"
       "[[exclude]]\nmode = \"DDPM\"\neta = 1.0\n",
       {"sweep.toml:7", "this [[exclude]] rule can never match", "eta = 1.0, mode = DDPM"}},
      {"[grid]\nddpm_respacing = [\"10\"]\nvariance_type = [\"fixed-small\"]\n"
       "[[exclude]]\nrespacing = \"10\"\nmethod = \"euler\"\n",
       {"can never match", "method = euler, respacing = 10"}},
      {"[grid]\nddpm_respacing = [\"10\"]\n[[exclude]]\nrespacing = \"abc\"\n",
       {"exclude 'respacing': respacing 'abc': expected a step count"}}};
  for (const auto& [grid, fragments] : bad_files) {
    const std::string file = "[sweep]\nmodel = \"gmm:mix1d\"\nsamples = 100\n" + std::string(grid);
    std::vector<std::string> want = fragments;
    try {
      eval::load_sweep(write_sweep(bad_dir, file).string());
      ADD_FAILURE() << "accepted:\n" << file;
    } catch (const sit::Error& e) {
      for (const auto& f : want)
        EXPECT_NE(std::string(e.what()).find(f), std::string::npos) << e.what() << "\nlacks " << f;
      // the exclude-value error is not repeated once per family
      const std::string m = e.what();
      EXPECT_EQ(m.find("respacing 'abc'"), m.rfind("respacing 'abc'")) << m;
    }
  }
  std::ofstream(bad_dir / "r.toml") << "[sweep]\nmodel = \"gmm:mix1d\"\nsamples = 10\n[grid]\n"
                                       "ddim_respacing = [\"ddim300\"]\n";
  sit::test::expect_error([&] { eval::load_sweep((bad_dir / "r.toml").string()); },
                          {"r.toml:5", "'ddim_respacing'", "no integer stride gives exactly 300"});
}

// Multistep samplers and every guidance form as sweep keys (issue 16): records carry the
// fields and nfe_uncond (guided evaluations), autoguidance uses the run's guide_model and
// joins the run identity; settings that cannot apply are refused when the file is read.
TEST(Sweep, MultistepSamplersAndGuidanceFormsOnTheExactMixture) {
  const auto dir = sit::test::temp_dir();
  const std::string good = R"(dim = 2
num_classes = 2
[[component]]
weight = 1.0
mean = [0.0, 1.0]
std = 0.5
class = 0
[[component]]
weight = 1.0
mean = [2.0, -1.0]
std = [0.3, 0.6]
class = 1
)";
  std::ofstream(dir / "good.toml") << good;
  std::string weak = good;  // wider components: a weaker model of the same conditioning
  weak.replace(weak.find("std = 0.5"), 9, "std = 0.9");
  std::ofstream(dir / "weak.toml") << weak;
  const std::string text = R"([sweep]
name = "protocols"
model = "gmm:good.toml"
guide_model = "gmm:weak.toml"
samples = 300
reference_samples = 300
batch_size = 100
global_seed = 2
metrics = ["fid"]
[grid]
path_type = ["Linear"]
prediction = ["velocity"]
ode_methods = ["ab2", "ab4", "dpm++2m", "heun2"]
ode_steps = [11]
cfg_scale = [1.5]
cfg_channels = ["all"]
guidance_interval = ["", "0.3,1"]
[[include]]
mode = "SDE"
method = "Euler"
num_steps = 21
cfg_scale = 2.0
cfg_channels = "all"
cfg_interval_start = 0.2
cfg_schedule = "linear"
[[include]]
mode = "ODE"
method = "heun2"
num_steps = 11
cfg_scale = 2.0
cfg_channels = "all"
guidance = "autoguidance"
guidance_steps = "2,4"
)";
  const fs::path old_cwd = fs::current_path();
  fs::current_path(dir);  // mixture paths are relative to the working directory
  const auto spec = eval::load_sweep(write_sweep(dir, text).string());
  ASSERT_EQ(spec.configs.size(), 10u);
  std::set<std::string> labels;
  for (const auto& c : spec.configs)
    labels.insert(c.label());
  for (const char* l : {"ODE Linear/velocity ab4 11 cfg 1.5 cfg_channels all",
                        "ODE Linear/velocity dpm++2m 11 cfg 1.5 cfg_channels all guidance_interval "
                        "0.3,1.0",
                        "ODE Linear/velocity heun2 11 cfg 2.0 cfg_channels all guidance "
                        "autoguidance guidance_steps 2,4"})
    EXPECT_TRUE(labels.count(l)) << l << " among " << *labels.begin();
  std::ostringstream log;
  eval::SweepOptions o;
  o.out_dir = (dir / "run").string();
  o.quiet = true;
  const auto s = eval::run_sweep(spec, o, log);
  fs::current_path(old_cwd);
  EXPECT_EQ(s.ok, 10) << log.str();
  const auto records = reports::load_results((dir / "run" / "results.jsonl").string());
  ASSERT_EQ(records.size(), 10u);
  for (const auto& r : records) {
    ASSERT_TRUE(r.contains("nfe_uncond")) << r.dump();
    const double nfe = r["nfe"], guided = r["nfe_uncond"];
    const std::string method = r["method"];
    if (r.contains("guidance_interval")) {  // steps 3..9 of 10 start at t >= 0.3
      EXPECT_EQ(r["guidance_interval"], "0.3,1.0");
      EXPECT_EQ(guided, method == "heun2" ? 14 : 7) << r.dump();
    } else if (r.contains("guidance_steps")) {
      EXPECT_EQ(r["guidance"], "autoguidance");
      EXPECT_EQ(guided, 6);  // 3 heun2 steps, both stages
    } else if (r.contains("cfg_interval_start")) {
      EXPECT_EQ(r["cfg_schedule"], "linear");
      EXPECT_LT(guided, nfe);
      EXPECT_GT(guided, 0);
    } else {
      EXPECT_EQ(guided, nfe) << r.dump();
    }
    EXPECT_EQ(nfe, r["nfe_planned"].get<int64_t>()) << r.dump();
    EXPECT_TRUE(std::isfinite(r["fid"].get<double>())) << r.dump();
  }
  // the long table tells the guidance forms apart (the labels do too)
  const std::string table = reports::long_table(records, reports::TableFormat::kMarkdown);
  for (const char* cell : {"| guidance (guided NFE) |", "| t in [0.3,1.0] (7) |",
                           "| every step (10) |", "| autoguidance, steps 2,4 (6) |",
                           "| linear, t >= 0.2 ("})
    EXPECT_NE(table.find(cell), std::string::npos) << cell << "\n" << table;
  const std::string identity = slurp(dir / "run" / "run.json");
  EXPECT_NE(identity.find("\"guide_model\": \"gmm:weak.toml\""), std::string::npos) << identity;
  EXPECT_NE(identity.find("guide_mixture_sha256"), std::string::npos) << identity;

  // refused when the file is read, with the configuration named
  const std::pair<const char*, std::vector<std::string>> bad_files[] = {
      {"[grid]\node_methods = [\"dopri5\"]\ncfg_scale = [1.5]\ncfg_channels = [\"all\"]\nguidance_steps = [\"1,2\"]\n",
       {"guidance_steps (--guidance-steps) needs a fixed-step method"}},
      {"[grid]\node_methods = [\"euler\"]\node_steps = [5]\ncfg_scale = [1.5]\ncfg_channels = [\"all\"]\n"
       "guidance_steps = [\"4,6\"]\n",
       {"guidance_steps (--guidance-steps) [4, 6] starts after the last step", "4 steps"}},
      {"[grid]\node_methods = [\"euler\"]\ncfg_scale = [1.5]\ncfg_channels = [\"all\"]\nguidance_interval = [\"0.5\"]\n",
       {"'guidance_interval'", "expected \"LOW,HIGH\" (two numbers), got '0.5'"}},
      {"[grid]\node_methods = [\"euler\"]\ncfg_scale = [1.5]\ncfg_channels = [\"all\"]\nguidance = [\"autoguidance\"]\n",
       {"autoguidance needs a guiding network", "guide_model"}},
      {"[grid]\node_methods = [\"euler\"]\ncfg_scale = [1.5]\n",
       {"cfg_channels 3 guides channels 0..2", "states of shape (2,)", "cfg_channels = \"all\""}},
      {"quantization = \"repa\"\n[grid]\node_methods = [\"euler\"]\n",
       {"'quantization' does not apply to the analytic model"}},
      {"quantization = \"srgb\"\n[grid]\node_methods = [\"euler\"]\n",
       {"sweep.toml:4", "quantization must be dit", "got 'srgb'"}},
  };
  for (const auto& [grid, fragments] : bad_files) {
    const std::string file =
        "[sweep]\nmodel = \"gmm:" + (dir / "good.toml").string() + "\"\nsamples = 100\n" + grid;
    try {
      const auto bad = eval::load_sweep(write_sweep(dir / "run", file).string());
      std::ostringstream quiet;
      eval::SweepOptions bo;
      bo.out_dir = (dir / "bad").string();
      bo.quiet = true;
      eval::run_sweep(bad, bo, quiet);
      ADD_FAILURE() << "accepted: " << grid;
    } catch (const Error& e) {
      for (const auto& f : fragments)
        EXPECT_NE(std::string(e.what()).find(f), std::string::npos) << f << " in " << e.what();
    }
  }
}

// protocol = "NAME": the preset is a configuration (no [grid] needed), grid keys vary it;
// records carry the preset, the fingerprint of what ran and the overrides.
TEST(Sweep, ProtocolPresetsAreConfigurationsWithFingerprints) {
  const auto dir = sit::test::temp_dir();
  const std::string text = R"([sweep]
model = "gmm:demo"
protocol = "repa-ode"
samples = 200
reference_samples = 200
batch_size = 100
metrics = ["fid"]
[grid]
cfg_scale = [1.5, 2.0]
ode_methods = ["euler", "heun-last-euler"]
ode_steps = [11]
)";
  const auto spec = eval::load_sweep(write_sweep(dir, text).string());
  ASSERT_EQ(spec.configs.size(), 4u);
  for (const auto& c : spec.configs) {
    EXPECT_EQ(c.value("cfg_channels"), "all");  // the preset's, not the default 3
    EXPECT_EQ(c.family(), samplers::SamplerFamily::kOde);
  }
  EXPECT_EQ(spec.samples, 200);
  EXPECT_EQ(spec.quantization, "repa");
  std::ostringstream log;
  eval::SweepOptions o;
  o.out_dir = (dir / "run").string();
  o.quiet = true;
  EXPECT_EQ(eval::run_sweep(spec, o, log).ok, 4) << log.str();
  const auto records = reports::load_results((dir / "run" / "results.jsonl").string());
  std::set<std::string> fingerprints;
  for (const auto& r : records) {
    EXPECT_EQ(r["protocol"], "repa-ode");
    fingerprints.insert(r["protocol_fingerprint"].get<std::string>());
    const std::string overrides = r["protocol_overrides"];
    EXPECT_NE(overrides.find("num_steps 51 -> 11"), std::string::npos) << overrides;
    EXPECT_NE(overrides.find("samples 50000 -> 200"), std::string::npos) << overrides;
    EXPECT_EQ(overrides.find("method euler -> heun-last-euler") != std::string::npos,
              r["method"] == "heun-last-euler")
        << overrides;
    EXPECT_EQ(overrides.find("cfg_scale") != std::string::npos, r["cfg_scale"] == 2.0);
    EXPECT_EQ(r["nfe"].get<double>(), r["method"] == "euler" ? 10 : 19);
  }
  EXPECT_EQ(fingerprints.size(), 4u);
  EXPECT_NE(slurp(dir / "run" / "run.json").find("\"protocol\": \"repa-ode\""), std::string::npos);
  const std::string table = reports::long_table(records, reports::TableFormat::kMarkdown);
  EXPECT_NE(table.find("| protocol (fingerprint) |"), std::string::npos) << table;
  EXPECT_NE(table.find("| repa-ode " + *fingerprints.begin() + " (changed) |"), std::string::npos)
      << table;

  // a preset's steps alone vary it; another family's grid gives plain configurations
  const std::string steps_only =
      "[sweep]\nmodel = \"gmm:demo\"\nprotocol = \"repa-sde\"\nsamples = 10\n[grid]\n"
      "sde_steps = [20, 40]\node_methods = [\"euler\"]\node_steps = [5]\n";
  const auto mixed = eval::load_sweep(write_sweep(dir, steps_only).string());
  ASSERT_EQ(mixed.configs.size(), 3u);
  EXPECT_EQ(mixed.configs[0].label(), "ODE Linear/velocity euler 5");  // families in table order
  EXPECT_EQ(mixed.configs[1].label(),
            "SDE Linear/velocity Euler 20 sigma cfg 1.8 cfg_channels all guidance_interval 0.3,1.0");
  std::ostringstream mixed_log;
  o.out_dir = (dir / "mixed").string();
  EXPECT_EQ(eval::run_sweep(mixed, o, mixed_log).ok, 3) << mixed_log.str();
  for (const auto& r : reports::load_results((dir / "mixed" / "results.jsonl").string()))
    EXPECT_EQ(r.contains("protocol"), r["mode"] == "SDE") << r.dump();
  sit::test::expect_error(
      [&] {
        eval::load_sweep(write_sweep(dir, "[sweep]\nmodel = \"gmm:demo\"\n[grid]\n"
                                          "ode_steps = [5]\nsde_methods = [\"Euler\"]\n")
                             .string());
      },
      {"sweep.toml:4", "'ode_steps' needs 'ode_methods'"});

  // no [grid]: the preset alone; a preset for another model kind, an unknown name
  const std::string alone =
      "[sweep]\nmodel = \"gmm:demo\"\nprotocol = \"lightningdit\"\nsamples = 10\n";
  const auto one = eval::load_sweep(write_sweep(dir, alone).string());
  ASSERT_EQ(one.configs.size(), 1u);
  EXPECT_EQ(one.configs[0].nfe_estimate(), 249);
  sit::test::expect_error(
      [&] {
        eval::load_sweep(
            write_sweep(dir, "[sweep]\nmodel = \"sit\"\nckpt = \"x.pt\"\nprotocol = \"dit-ddpm\"\n")
                .string());
      },
      {"sweep.toml:4", "protocol dit-ddpm samples dit: models", "is a sit: model"});
  sit::test::expect_error(
      [&] {
        eval::load_sweep(
            write_sweep(dir, "[sweep]\nmodel = \"gmm:demo\"\nprotocol = \"repa\"\n").string());
      },
      {"sweep.toml:3", "unknown protocol 'repa'", "repa-sde, repa-ode"});
}

// SIGINT / SIGTERM: the sweep stops after the batch in flight, writes the finished
// configurations' report, says how to resume and exits 128 + signal; the rerun completes
// the run with the results of an uninterrupted one.
TEST(Sweep, InterruptStopsCleanlyAndTheRerunResumes) {
  const auto dir = sit::test::temp_dir();
  const std::string text = R"([sweep]
model = "gmm:demo"
samples = 3000
reference_samples = 500
batch_size = 500
global_seed = 4
metrics = ["fid"]
[grid]
ode_methods = ["euler", "heun2"]
ode_steps = [17, 33]
)";
  const fs::path sweep_file = write_sweep(dir, text);
  const auto spec = eval::load_sweep(sweep_file.string());
  std::ostringstream log;
  eval::SweepOptions clean_options;
  clean_options.out_dir = (dir / "clean").string();
  clean_options.quiet = true;
  eval::run_sweep(spec, clean_options, log);
  const std::string clean = stable_results(dir / "clean" / "results.jsonl");

  const fs::path run_dir = dir / "run";
  int interrupted = 0;
  for (const int sig : {SIGINT, SIGTERM}) {
    const fs::path err = dir / ("stderr" + std::to_string(sig));
    const size_t before = fs::exists(run_dir / "results.jsonl")
                              ? reports::load_results((run_dir / "results.jsonl").string()).size()
                              : 0;
    const pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      freopen(err.c_str(), "w", stderr);
      freopen("/dev/null", "w", stdout);
      execl(SIT_EVAL_BINARY, SIT_EVAL_BINARY, "--threads", "1", "sweep", sweep_file.c_str(),
            "--out", run_dir.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    // signal once one more configuration has finished (so the report has something)
    for (int i = 0; i < 1200; ++i) {
      usleep(50000);
      if (fs::exists(run_dir / "results.jsonl") &&
          reports::load_results((run_dir / "results.jsonl").string()).size() > before)
        break;
    }
    kill(pid, sig);
    int status = 0;
    waitpid(pid, &status, 0);
    ASSERT_TRUE(WIFEXITED(status)) << "signal " << sig << " killed the process";
    const size_t after = reports::load_results((run_dir / "results.jsonl").string()).size();
    if (after == 4) break;  // a slow signal found the sweep done: nothing left to interrupt
    EXPECT_EQ(WEXITSTATUS(status), 128 + sig);
    EXPECT_NE(slurp(err).find("interrupted; rerun the same command to resume"), std::string::npos)
        << slurp(err);
    EXPECT_TRUE(fs::exists(run_dir / "report.md"));
    EXPECT_LT(after, 4u);
    ++interrupted;
    // report on the unfinished run: the finished configurations, the pending ones counted
    const fs::path report_err = dir / "report_err";
    const std::string cmd = std::string(SIT_EVAL_BINARY) + " report " + run_dir.string() +
                            " > /dev/null 2> " + report_err.string();
    EXPECT_EQ(std::system(cmd.c_str()), 0);
    EXPECT_NE(slurp(report_err).find(std::to_string(after) + " of 4 configurations finished, " +
                                     std::to_string(4 - after) + " pending"),
              std::string::npos)
        << slurp(report_err);
  }
  EXPECT_GT(interrupted, 0) << "no signal landed inside the sweep; the test proves nothing";
  eval::SweepOptions resume;
  resume.out_dir = run_dir.string();
  resume.quiet = true;
  const auto s = eval::run_sweep(spec, resume, log);
  EXPECT_EQ(s.interrupted, 0);
  EXPECT_EQ(stable_results(run_dir / "results.jsonl"), clean);
  EXPECT_FALSE(fs::exists(run_dir / "partial"));
}

// Fault injection (issue 18): an LD_PRELOAD shim (tests/fault_inject.c) makes one kind of
// write fail — ENOSPC / EIO from write, fsync or rename — at one write site of a sweep or
// of merge. The command must fail naming the file, leave no partial or corrupt record in
// the run directory, and the same command run again must complete the run with the
// results of a run that never failed.
struct Fault {
  const char* name;
  const char* spec;   // SIT_FAULT: OP:ERRNO:PATH_PART[:SKIP]
  const char* named;  // what the error must name
  bool merge = false; // the fault hits `merge` after two shards, not the sweep
};

void PrintTo(const Fault& f, std::ostream* os) {
  *os << f.name << " (" << f.spec << ")";
}

class SweepFaults : public ::testing::TestWithParam<Fault> {};

namespace {

/// No temporary file left, results.jsonl made of whole records, and every batch and
/// feature file present readable.
void expect_nothing_partial(const fs::path& run) {
  for (const auto& e : fs::recursive_directory_iterator(run)) {
    const std::string name = e.path().filename().string();
    EXPECT_EQ(name.find(".tmp."), std::string::npos) << e.path();
    if (name.rfind("batch_", 0) == 0) {
      io::NpzReader z(e.path().string());
      for (const auto& key : z.keys()) {
        const io::DType t = z.open(key).dtype();
        if (t == io::DType::kI8 || t == io::DType::kI4)
          z.open(key).read_all<int64_t>();
        else
          z.open(key).read_all<double>();
      }
    }
    if (e.path().parent_path().filename() == "features") io::load_feature_set(e.path().string());
  }
  if (fs::exists(run / "results.jsonl")) {
    const std::string text = slurp(run / "results.jsonl");
    EXPECT_TRUE(text.empty() || text.back() == '\n') << "a torn last record";
    reports::load_results((run / "results.jsonl").string());
  }
}

}  // namespace

TEST_P(SweepFaults, FailsNamingTheFileKeepsTheRunWholeAndTheRerunCompletes) {
  const Fault& f = GetParam();
  const auto [dir, file] = single_process_run();
  const fs::path run = dir / "faulty";
  const std::string err = (dir / "err.txt").string();
  const std::string inject =
      std::string("LD_PRELOAD=") + SIT_FAULT_LIB + " SIT_FAULT='" + f.spec + "' ";
  if (f.merge) {
    ASSERT_EQ(shell(sweep_command(file, run, "--shard 0/2") + " && " +
                    sweep_command(file, run, "--shard 1/2")),
              0);
    fs::remove(run / "report.md");
    ASSERT_NE(shell(inject + SIT_EVAL_BINARY + " merge " + run.string() + " >/dev/null 2>" + err),
              0);
  } else {
    ASSERT_NE(shell(inject + sweep_command(file, run) + " 2>" + err), 0);
  }
  const std::string log = slurp(err);
  EXPECT_NE(log.find("fault_inject: "), std::string::npos) << "no fault was injected: " << log;
  EXPECT_NE(log.find("error: "), std::string::npos) << log;
  EXPECT_NE(log.find(f.named), std::string::npos) << log;
  expect_nothing_partial(run);
  // space is back: the same command completes the run, as if nothing had failed
  if (f.merge)
    ASSERT_EQ(shell(std::string(SIT_EVAL_BINARY) + " merge " + run.string() + " >/dev/null"), 0);
  else
    ASSERT_EQ(shell(sweep_command(file, run)), 0);
  EXPECT_EQ(stable_results(dir / "one" / "results.jsonl"), stable_results(run / "results.jsonl"));
  EXPECT_TRUE(fs::exists(run / "report.md") && fs::exists(run / "results.csv"));
  expect_nothing_partial(run);
}

INSTANTIATE_TEST_SUITE_P(
    EveryWriteSite, SweepFaults,
    ::testing::Values(
        Fault{"BatchWriteNoSpace", "write:ENOSPC:/partial/:5", "batch_"},
        Fault{"BatchFsyncIo", "fsync:EIO:batch_2.npz", "batch_2.npz"},
        Fault{"BatchRenameIo", "rename:EIO:batch_1.npz", "batch_1.npz"},
        Fault{"FeaturesWriteNoSpace", "write:ENOSPC:/features/:3", "/features/"},
        Fault{"ReferenceWriteIo", "write:EIO:reference.h5", "reference.h5"},
        Fault{"ResultsWriteNoSpace", "write:ENOSPC:results.jsonl:2", "results.jsonl"},
        Fault{"ResultsFsyncIo", "fsync:EIO:results.jsonl:1", "results.jsonl"},
        Fault{"RunManifestRenameNoSpace", "rename:ENOSPC:run.json", "run.json"},
        Fault{"ConfigsWriteNoSpace", "write:ENOSPC:configs.json", "configs.json"},
        Fault{"ShardRecordRenameIo", "rename:EIO:shards/0-of-1.json", "0-of-1.json"},
        Fault{"ReportWriteNoSpace", "write:ENOSPC:report.md", "report.md"},
        Fault{"CsvFsyncIo", "fsync:EIO:results.csv", "results.csv"},
        Fault{"MergeReportWriteNoSpace", "write:ENOSPC:report.md", "report.md", true},
        Fault{"MergeCsvRenameIo", "rename:EIO:results.csv", "results.csv", true}),
    [](const ::testing::TestParamInfo<Fault>& info) { return std::string(info.param.name); });
