// Runs the sit-eval program as a user would and checks output, files and exit codes.
#include <array>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/format.h"
#include "reference_stats/feature_set.h"
#include "reference_stats/npy.h"
#include "test_util.h"

#include "cli_runner.h"

TEST(Cli, MetricsPrintsAdmLinesInOrderAndWritesJson) {
  const auto dir = sit::test::temp_dir();
  const auto json = (dir / "m.json").string();
  const CliRun r = run("metrics --ref " + fx("features_ref.npz") + " --samples " +
                       fx("features_samples.npz") + " --json " + json);
  ASSERT_EQ(r.code, 0) << r.err;
  // Every line in ADM's order: Inception Score, FID, sFID, Precision, Recall; then KID.
  std::vector<std::string> prefixes;
  std::istringstream lines(r.out);
  for (std::string line; std::getline(lines, line);)
    prefixes.push_back(line.substr(0, line.find(':')));
  EXPECT_EQ(prefixes, (std::vector<std::string>{"Inception Score", "FID", "sFID", "Precision",
                                                "Recall", "KID"}));
  std::ifstream in(json);
  const auto j = nlohmann::json::parse(in);
  for (const char* key : {"inception_score", "inception_score_std", "fid", "sfid", "precision",
                          "recall", "kid", "kid_std", "n_samples", "n_ref"})
    EXPECT_TRUE(j.contains(key)) << key;
  EXPECT_EQ(j["n_samples"], 600);
  // The printed FID is the JSON value in Python's repr.
  EXPECT_TRUE(contains(r.out, "FID: " + sit::python_repr(j["fid"].get<double>()) + "\n"));
}

TEST(Cli, SkipsMetricsWithoutInputsWithOneLineReason) {
  const CliRun r =
      run("metrics --ref " + fx("adm_ref.npz") + " --samples " + fx("features_samples.npz"));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(contains(r.out, "FID: "));
  EXPECT_TRUE(contains(r.out, "sFID: "));
  EXPECT_FALSE(contains(r.out, "Precision"));
  EXPECT_TRUE(contains(r.err, "note: Precision/Recall: skipped"));
  EXPECT_TRUE(contains(r.err, "arr_0 images need the Inception extractor"));
}

TEST(Cli, MetricSubsetAndOptions) {
  const CliRun r =
      run("metrics --ref " + fx("features_ref.npz") + " --samples " + fx("features_samples.npz") +
          " --metrics fid,pr --pr-distance fp32 --fid-route sqrtm --timings");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(contains(r.out, "FID: ") && contains(r.out, "Precision: "));
  EXPECT_FALSE(contains(r.out, "Inception") || contains(r.out, "sFID") || contains(r.out, "KID"));
  EXPECT_TRUE(contains(r.err, "timing: load ")) << r.err;
  EXPECT_TRUE(contains(r.err, ", fid ") && contains(r.err, ", pr ")) << r.err;
}

TEST(Cli, UsageErrorsExitOne) {
  const std::string base =
      "metrics --ref " + fx("features_ref.npz") + " --samples " + fx("features_samples.npz");
  CliRun r = run(base + " --metrics fid,bogus");
  EXPECT_EQ(r.code, 1);
  EXPECT_TRUE(contains(r.err, "one of fid, sfid, is, pr, kid; got 'bogus'")) << r.err;
  r = run(base + " --pr-distance fp8");
  EXPECT_EQ(r.code, 1);
  EXPECT_TRUE(contains(r.err, "fp32, adm-fp16")) << r.err;
  r = run("metrics --ref /nonexistent.npz --samples " + fx("features_samples.npz"));
  EXPECT_EQ(r.code, 1);
  EXPECT_TRUE(contains(r.err, "/nonexistent.npz")) << r.err;
  r = run("frobnicate");
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(run("--help").code, 0);
  EXPECT_EQ(run("version").code, 0);
}

TEST(Cli, BadDataExitsOneWithClearErrorAndNoJson) {
  const auto dir = sit::test::temp_dir();
  const int64_t n = 20, d = 4;
  std::vector<float> x(n * d, 1.0f);
  for (int64_t i = 0; i < n * d; ++i)
    x[i] = float(i % 7);
  auto write = [&](const std::string& name, const std::vector<float>& v, int64_t rows,
                   int64_t cols) {
    sit::io::NpzWriter w((dir / name).string());
    w.add("pool", {rows, cols}, v.data());
    w.close();
    return (dir / name).string();
  };
  const auto good = write("good.npz", x, n, d);
  auto with_nan = x;
  with_nan[13 * d + 1] = std::numeric_limits<float>::quiet_NaN();
  const auto nan = write("nan.npz", with_nan, n, d);
  const auto wide = write("wide.npz", std::vector<float>(n * 5, 1.0f), n, 5);
  const auto one = write("one.npz", std::vector<float>(d, 1.0f), 1, d);
  std::ifstream in(good, std::ios::binary);
  std::string bytes(std::istreambuf_iterator<char>(in), {});
  {
    std::ofstream out(dir / "cut.npz", std::ios::binary);
    out << bytes.substr(0, bytes.size() - 30);
  }
  const auto json = (dir / "out.json").string();
  struct Case {
    std::string ref, samples, fragment;
  };
  const Case cases[] = {
      {good, nan, "nan.npz 'pool': features must be finite, got nan at row 13, column 1"},
      {good, wide, "dimensions must match"},
      {good, one, "needs at least 2 rows"},
      {good, (dir / "cut.npz").string(), "cut.npz: truncated or corrupt zip"},
      {good, fx("bad_fortran.npy"), "single .npy array"},
  };
  for (const auto& c : cases) {
    const CliRun r = run("metrics --metrics fid,pr --ref " + c.ref + " --samples " + c.samples +
                         " --json " + json);
    EXPECT_EQ(r.code, 1) << c.fragment;
    EXPECT_TRUE(contains(r.err, "error: ")) << r.err;
    EXPECT_TRUE(contains(r.err, c.fragment)) << "stderr: " << r.err;
    EXPECT_FALSE(std::filesystem::exists(json));
  }
  // A requested metric whose key is missing on both sides: nothing to compute.
  const CliRun r = run("metrics --metrics is --ref " + good + " --samples " + good);
  EXPECT_EQ(r.code, 1);
  EXPECT_TRUE(contains(r.err, "has no 'logits'")) << r.err;
  EXPECT_TRUE(contains(r.err, "no requested metric could be computed")) << r.err;
}

TEST(Cli, Hdf5AndNpzFeatureFilesGiveIdenticalOutput) {
  const auto dir = sit::test::temp_dir();
  const auto h5 = (dir / "samples.h5").string();
  sit::io::save_feature_set(h5, sit::io::load_feature_set(fx("features_samples.npz")));
  const std::string opts = " --metrics fid,sfid,is,pr --ref " + fx("features_ref.npz");
  const CliRun a = run("metrics" + opts + " --samples " + fx("features_samples.npz"));
  const CliRun b = run("metrics" + opts + " --samples " + h5);
  ASSERT_EQ(a.code, 0) << a.err;
  ASSERT_EQ(b.code, 0) << b.err;
  EXPECT_EQ(a.out, b.out);
}
