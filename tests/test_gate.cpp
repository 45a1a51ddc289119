// sit-eval compare and gate through the CLI on small analytic sweeps.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "test_util.h"
// after test_util.h
#include "cli_runner.h"

namespace fs = std::filesystem;

namespace {

/// A finished 3-configuration sweep on gmm:mix1d, run once per test program.
const fs::path& sweep_run() {
  static const fs::path dir = [] {
    // per process: ctest runs the tests of this file in parallel processes
    const fs::path d = sit::test::temp_dir("gate_run." + std::to_string(::getpid()));
    std::ofstream(d / "s.toml") << "[sweep]\nname = \"g\"\nmodel = \"gmm:mix1d\"\nsamples = 600\n"
                                   "batch_size = 300\nmetrics = [\"fid\", \"pr\", \"kid\"]\n[grid]\n"
                                   "ode_methods = [\"euler\", \"heun2\"]\node_steps = [5]\n"
                                   "sde_methods = [\"Euler\"]\nsde_steps = [9]\n";
    const CliRun r =
        run("sweep " + (d / "s.toml").string() + " --quiet --out " + (d / "run").string());
    EXPECT_EQ(r.code, 0) << r.err;
    return d / "run";
  }();
  return dir;
}

std::vector<std::string> ids_of(const fs::path& run_dir) {
  std::ifstream in(run_dir / "results.jsonl");
  std::vector<std::string> ids;
  for (std::string line; std::getline(in, line);)
    ids.push_back(line.substr(line.find("\"id\":\"") + 6, 12));
  return ids;
}

double value_of(const fs::path& run_dir, const std::string& id, const std::string& key) {
  std::ifstream in(run_dir / "results.jsonl");
  for (std::string line; std::getline(in, line);)
    if (contains(line, id))
      return std::stod(line.substr(line.find("\"" + key + "\":") + key.size() + 3));
  return NAN;
}

}  // namespace

TEST(Gate, PassesAgainstItselfAndARunDirectory) {
  const CliRun r = run("gate " + sweep_run().string() + " --baseline " + sweep_run().string() +
                       " --metrics fid,precision,recall");
  EXPECT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_TRUE(contains(r.out, "gate passed: 9 checks on 3 configurations")) << r.out;
}

TEST(Gate, RegressionExitsTwoWithAReadableList) {
  const fs::path d = sit::test::temp_dir("gate_regress");
  const auto ids = ids_of(sweep_run());
  const double fid = value_of(sweep_run(), ids[0], "fid");
  // The baseline claims a much better FID for the first configuration and lists one that
  // the run lacks.
  std::ofstream(d / "base.json") << "{\"configurations\": [{\"id\": \"" << ids[0]
                                 << "\", \"label\": \"first\", \"fid\": " << fid - 1.0
                                 << "}, {\"id\": \"ffffffffffff\", \"fid\": 1.0}]}";
  const CliRun r =
      run("gate " + sweep_run().string() + " --baseline " + (d / "base.json").string());
  EXPECT_EQ(r.code, 2) << r.out << r.err;
  EXPECT_TRUE(contains(r.out, "gate failed: 2 regression(s)")) << r.out;
  EXPECT_TRUE(contains(r.out, "| " + ids[0] + " first | fid |")) << r.out;
  EXPECT_TRUE(contains(r.out, "+0.0500")) << r.out;
  EXPECT_TRUE(contains(r.out, "| ffffffffffff | status | ok | missing |")) << r.out;
  // Within a wide enough tolerance the same baseline passes for FID.
  std::ofstream(d / "base.toml") << "[[configuration]]\nid = \"" << ids[0]
                                 << "\"\nfid = " << fid - 1.0 << "\n";
  const CliRun ok = run("gate " + sweep_run().string() + " --baseline " +
                        (d / "base.toml").string() + " --max-fid-increase 1.5");
  EXPECT_EQ(ok.code, 0) << ok.out << ok.err;
}

TEST(Gate, BadInputExitsOne) {
  const fs::path d = sit::test::temp_dir("gate_bad");
  std::ofstream(d / "bad.json") << "{not json";
  CliRun r = run("gate " + sweep_run().string() + " --baseline " + (d / "bad.json").string());
  EXPECT_EQ(r.code, 1);
  EXPECT_TRUE(contains(r.err, "not valid JSON")) << r.err;
  r = run("gate " + sweep_run().string() + " --baseline " + (d / "none.json").string());
  EXPECT_EQ(r.code, 1);
  EXPECT_TRUE(contains(r.err, "baseline not found")) << r.err;
  r = run("gate " + d.string() + " --baseline " + sweep_run().string());
  EXPECT_EQ(r.code, 1);
  EXPECT_TRUE(contains(r.err, "not a sweep run directory")) << r.err;
  std::ofstream(d / "ok.json") << "[{\"id\": \"x\", \"fid\": 1}]";
  r = run("gate " + sweep_run().string() + " --baseline " + (d / "ok.json").string() +
          " --significant");
  EXPECT_EQ(r.code, 1);
  EXPECT_TRUE(contains(r.err, "--significant needs a baseline run directory")) << r.err;
  r = run("gate " + sweep_run().string() + " --baseline " + sweep_run().string() +
          " --metrics fidd");
  EXPECT_EQ(r.code, 1);
  EXPECT_TRUE(contains(r.err, "unknown metric 'fidd'")) << r.err;
  // A baseline that could never fail (NaN compares false) or has a label of another type is
  // refused naming the configuration (found by a helper session trying bad inputs).
  const auto ids = ids_of(sweep_run());
  std::ofstream(d / "nan.toml") << "[[configuration]]\nid = \"" << ids[0] << "\"\nfid = nan\n";
  r = run("gate " + sweep_run().string() + " --baseline " + (d / "nan.toml").string());
  EXPECT_EQ(r.code, 1);
  EXPECT_TRUE(contains(r.err, "nan.toml: configuration " + ids[0] +
                                  ": 'fid' must be a finite number, got nan"))
      << r.err;
  std::ofstream(d / "label.json") << "[{\"id\": \"" << ids[0] << "\", \"label\": 5, \"fid\": 1}]";
  r = run("gate " + sweep_run().string() + " --baseline " + (d / "label.json").string());
  EXPECT_EQ(r.code, 1);
  EXPECT_TRUE(contains(r.err, "'label' must be a string, got 5")) << r.err;
}

TEST(Gate, ANaNResultIsARegression) {
  // A metric recorded as null (NaN) in the run is a regression, not an exception.
  const fs::path d = sit::test::temp_dir("gate_nan");
  const auto ids = ids_of(sweep_run());
  fs::copy(sweep_run(), d / "run", fs::copy_options::recursive);
  std::string text, line;
  std::ifstream in(d / "run" / "results.jsonl");
  while (std::getline(in, line)) {
    auto r = nlohmann::ordered_json::parse(line);
    if (r["id"] == ids[0]) r["fid"] = nullptr;
    text += r.dump() + "\n";
  }
  std::ofstream(d / "run" / "results.jsonl") << text;
  const CliRun r = run("gate " + (d / "run").string() + " --baseline " + sweep_run().string());
  EXPECT_EQ(r.code, 2) << r.out << r.err;
  EXPECT_TRUE(contains(r.out, "| fid |")) << r.out;
  EXPECT_TRUE(contains(r.out, "| NaN |")) << r.out;
}

TEST(Compare, IdenticalRunsDifferByZeroAndDifferentSamplersAreSignificant) {
  const auto ids = ids_of(sweep_run());
  const fs::path d = sit::test::temp_dir("compare");
  CliRun r = run("compare " + sweep_run().string() + " " + sweep_run().string() +
                 " --replicates 20 --json " + (d / "c.json").string());
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(contains(r.out, "| fid | ")) << r.out;
  EXPECT_TRUE(contains(r.out, "| precision | ")) << r.out;  // the exact reference's draws
  EXPECT_TRUE(contains(r.out, "| recall | ")) << r.out;
  EXPECT_TRUE(contains(r.out, "| kid | ")) << r.out;
  EXPECT_TRUE(contains(r.out, "| 0.0000 | [0.0000, 0.0000] | no |")) << r.out;
  EXPECT_FALSE(contains(r.out, "| yes |")) << r.out;
  // euler with 5 points against heun2 with 5 points on the same samples.
  r = run("compare " + sweep_run().string() + ":" + ids[0] + " " + sweep_run().string() + ":" +
          ids[1] + " --replicates 50");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(contains(r.out, " vs ")) << r.out;
  // heun2 is far closer to the target than euler at 5 points: a clear, significant gap
  EXPECT_TRUE(contains(r.out, "| yes |")) << r.out;
  const CliRun again = run("compare " + sweep_run().string() + ":" + ids[0] + " " +
                           sweep_run().string() + ":" + ids[1] + " --replicates 50");
  EXPECT_EQ(r.out, again.out);  // seeded
  // --metrics picks; a metric without its inputs is an error when asked for by name.
  r = run("compare " + sweep_run().string() + ":" + ids[0] + " " + sweep_run().string() + ":" +
          ids[1] + " --replicates 10 --metrics recall");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(contains(r.out, "| recall | ")) << r.out;
  EXPECT_FALSE(contains(r.out, "| fid | ")) << r.out;
  r = run("compare " + sweep_run().string() + " " + sweep_run().string() +
          " --metrics inception_score");
  EXPECT_EQ(r.code, 1);
  EXPECT_TRUE(contains(r.err, "a side has no 'logits' features")) << r.err;
  r = run("compare " + sweep_run().string() + " " + sweep_run().string() + " --metrics fud");
  EXPECT_EQ(r.code, 1);
  EXPECT_TRUE(contains(r.err, "unknown metric 'fud'")) << r.err;
}

TEST(Gate, SignificantAppliesToEveryMetric) {
  // The same sweep with another global seed: the configuration IDs match, the values move
  // by sampling noise only. With zero tolerances some metrics come out worse; the paired
  // bootstrap (rows paired by index) finds none of those changes significant.
  const fs::path d = sit::test::temp_dir("gate_seed." + std::to_string(::getpid()));
  std::ifstream in(sweep_run().parent_path() / "s.toml");
  std::stringstream text;
  text << in.rdbuf();
  std::string toml = text.str();
  toml.insert(toml.find("samples = 600\n") + 14, "global_seed = 1\n");
  std::ofstream(d / "s.toml") << toml;
  CliRun r = run("sweep " + (d / "s.toml").string() + " --quiet --out " + (d / "run").string());
  ASSERT_EQ(r.code, 0) << r.err;
  const std::string gate = "gate " + (d / "run").string() + " --baseline " +
                           sweep_run().string() +
                           " --metrics fid,precision,recall,kid --max-fid-increase 0";
  r = run(gate);
  EXPECT_EQ(r.code, 2) << r.out << r.err;
  EXPECT_TRUE(contains(r.out, "| kid |")) << r.out;
  EXPECT_TRUE(contains(r.out, "| 0 |")) << r.out;  // the tolerance column
  r = run(gate + " --significant --replicates 50");
  EXPECT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_TRUE(contains(r.out, "gate passed: 12 checks on 3 configurations")) << r.out;

  // A real regression stays one: a baseline whose first configuration is heun2's
  // (values and features), against which euler at 5 points is far worse.
  const auto ids = ids_of(sweep_run());
  const fs::path base = d / "swapped";
  fs::copy(sweep_run(), base, fs::copy_options::recursive);
  fs::copy_file(base / "features" / (ids[1] + ".h5"), base / "features" / (ids[0] + ".h5"),
                fs::copy_options::overwrite_existing);
  std::vector<std::string> lines;
  {
    std::ifstream results(base / "results.jsonl");
    for (std::string line; std::getline(results, line);)
      lines.push_back(line);
  }
  for (auto& line : lines)
    if (contains(line, "\"id\":\"" + ids[1] + "\"")) {
      std::string copy = line;
      copy.replace(copy.find(ids[1]), ids[1].size(), ids[0]);
      lines[0] = copy;  // the first line is ids[0]'s
    }
  {
    std::ofstream results(base / "results.jsonl");
    for (const auto& line : lines)
      results << line << "\n";
  }
  r = run("gate " + sweep_run().string() + " --baseline " + base.string() +
          " --metrics fid --max-fid-increase 0.01 --significant --replicates 50");
  EXPECT_EQ(r.code, 2) << r.out << r.err;
  EXPECT_TRUE(contains(r.out, "| " + ids[0])) << r.out;
  EXPECT_TRUE(contains(r.out, "| fid |")) << r.out;
  EXPECT_TRUE(contains(r.out, "| [")) << r.out;  // the interval is listed
}

TEST(Report, SeveralRunsJsonAndDigits) {
  const std::string dir = sweep_run().string();
  // two runs with the same folder name are told apart by their paths; one run twice is
  // refused
  const fs::path copies = sit::test::temp_dir("report_runs");
  fs::create_directories(copies / "a");
  fs::create_directories(copies / "b");
  fs::copy(dir, copies / "a" / "run", fs::copy_options::recursive);
  fs::copy(dir, copies / "b" / "run", fs::copy_options::recursive);
  CliRun r = run("report " + (copies / "a" / "run").string() + " " +
                 (copies / "b" / "run").string() + " --digits 3");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out.rfind("| run | id | mode |", 0), 0u) << r.out;
  EXPECT_TRUE(contains(r.out, "| " + (copies / "a" / "run").string() + " | ")) << r.out;
  EXPECT_TRUE(contains(r.out, "| " + (copies / "b" / "run").string() + " | ")) << r.out;
  r = run("report " + dir + " " + dir);
  EXPECT_EQ(r.code, 1);
  EXPECT_TRUE(contains(r.err, "error: " + dir + ": given twice")) << r.err;
  r = run("report " + (copies / "a" / "run").string() + " " + (copies / "b" / "run").string() +
          " --digits 3");
  const auto ids = ids_of(sweep_run());
  char want[64];
  std::snprintf(want, sizeof want, "| %.3f |", value_of(sweep_run(), ids[0], "fid"));
  EXPECT_TRUE(contains(r.out, want)) << want << "\n" << r.out;
  r = run("report " + dir + " --digits paper");  // paper style: 2 decimals
  std::snprintf(want, sizeof want, "| %.2f |", value_of(sweep_run(), ids[0], "fid"));
  EXPECT_TRUE(contains(r.out, want)) << want << "\n" << r.out;
  r = run("report " + dir);  // the default: 4 significant digits
  std::snprintf(want, sizeof want, "| %.4g |", value_of(sweep_run(), ids[0], "fid"));
  EXPECT_TRUE(contains(r.out, want)) << want << "\n" << r.out;
  // CSV at full precision whatever --digits says: every value reads back exactly
  r = run("report " + dir + " --format csv --digits 1");
  ASSERT_EQ(r.code, 0) << r.err;
  {
    std::istringstream lines(r.out);
    std::string line, cell;
    while (std::getline(lines, line) && line.rfind(ids[0] + ",", 0) != 0) {
    }
    std::istringstream cells(line);
    for (int i = 0; i <= 9; ++i)  // id, 8 settings, then FID
      std::getline(cells, cell, ',');
    EXPECT_EQ(std::strtod(cell.c_str(), nullptr), value_of(sweep_run(), ids[0], "fid")) << line;
  }
  r = run("report " + dir + " --format json");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out.rfind("[\n  {\n    \"id\": \"" + ids[0] + "\"", 0), 0u) << r.out;
  r = run("report " + dir + " --baseline sit-paper");  // analytic runs match nothing
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(contains(r.out, "no configuration matches a published number of sit-paper")) << r.out;
  r = run("report " + dir + " --baseline /no/such.toml");
  EXPECT_EQ(r.code, 1);
  r = run("report " + dir + " --digits many");
  EXPECT_EQ(r.code, 1);
  EXPECT_TRUE(contains(r.err, "error: --digits: expected paper, sig4 or an integer in [0, 12], got 'many'")) << r.err;
}

// A run still going (or interrupted): configurations it plans but has not finished are
// pending, not regressions; with none finished there is nothing to gate.
TEST(Gate, UnfinishedConfigurationsArePendingNotRegressions) {
  const fs::path d = sit::test::temp_dir("gate_pending");
  fs::copy(sweep_run(), d / "run", fs::copy_options::recursive);
  std::vector<std::string> lines;
  {
    std::ifstream in(d / "run" / "results.jsonl");
    for (std::string line; std::getline(in, line);)
      lines.push_back(line);
  }
  ASSERT_EQ(lines.size(), 3u);
  std::ofstream(d / "run" / "results.jsonl") << lines[0] << "\n" << lines[1] << "\n";
  const CliRun r = run("gate " + (d / "run").string() + " --baseline " + sweep_run().string());
  EXPECT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_TRUE(contains(r.out, "pending: 1 configuration(s) of the baseline have not finished")) << r.out;
  EXPECT_TRUE(contains(r.out, "gate passed: 2 checks on 2 configurations within tolerance (1 pending)"))
      << r.out;
  std::ofstream(d / "run" / "results.jsonl") << "";
  const CliRun none = run("gate " + (d / "run").string() + " --baseline " + sweep_run().string());
  EXPECT_EQ(none.code, 1) << none.out << none.err;
  EXPECT_TRUE(contains(none.err, "no configuration of the baseline has finished yet (3 pending)"))
      << none.err;
}
