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
  EXPECT_TRUE(contains(r.err, "note: Precision: skipped"));
  EXPECT_TRUE(contains(r.err, "arr_0 images need the feature extractor"));
}

TEST(Cli, MetricSubsetAndOptions) {
  const CliRun r =
      run("metrics --ref " + fx("features_ref.npz") + " --samples " + fx("features_samples.npz") +
          " --metrics fid,pr --pr-distance fp32 --fid-route sqrtm --timings");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(contains(r.out, "FID: ") && contains(r.out, "Precision: "));
  EXPECT_FALSE(contains(r.out, "Inception") || contains(r.out, "sFID") || contains(r.out, "KID"));
  EXPECT_TRUE(contains(r.err, "timing: load ")) << r.err;
  EXPECT_TRUE(contains(r.err, ", fid ") && contains(r.err, ", precision ")) << r.err;
}

TEST(Cli, UsageErrorsExitOne) {
  const std::string base =
      "metrics --ref " + fx("features_ref.npz") + " --samples " + fx("features_samples.npz");
  CliRun r = run(base + " --metrics fid,bogus");
  EXPECT_EQ(r.code, 1);
  EXPECT_TRUE(contains(r.err, "unknown metric 'bogus' (fid, sfid, inception_score (is)")) << r.err;
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

// Every error line starts with "error:", argument-parsing errors included; numeric options
// are range-checked where they are parsed, naming the option, the range and the value.
TEST(Cli, OneCommandLineSurface) {
  const std::string base =
      "metrics --ref " + fx("features_ref.npz") + " --samples " + fx("features_samples.npz");
  struct Case {
    std::string args, fragment;
  };
  const Case cases[] = {
      {"--threads 0 version", "error: --threads: expected an integer in [1, 4096], got 0"},
      {"version --threads -2", "error: --threads: expected an integer in [1, 4096], got -2"},
      {base + " --kid-subsets 0", "error: --kid-subsets: expected an integer in [1, 100000], got 0"},
      {base + " --kid-subset-size 1", "error: --kid-subset-size: expected an integer >= 2, got 1"},
      {base + " --cov-ddof 2", "error: --cov-ddof: expected an integer in [0, 1], got 2"},
      {base + " --cov-ddof 0.5", "error: --cov-ddof: expected an integer in [0, 1], got '0.5'"},
      {"metrics --samples /nonexistent.npz --ref x", "error: --"},
      {"frobnicate", "error: unknown command 'frobnicate' (commands: "},
      {base + " --json /nonexistent-dir/m.json", "error: --json /nonexistent-dir/m.json: no folder"},
      {base + " --json m.txt", "the file name must end in .json"},
  };
  for (const auto& c : cases) {
    const CliRun r = run(c.args);
    EXPECT_EQ(r.code, 1) << c.args;
    EXPECT_TRUE(r.err.rfind("error: ", 0) == 0) << c.args << ": " << r.err;
    EXPECT_TRUE(contains(r.err, c.fragment)) << c.args << ": " << r.err;
    EXPECT_TRUE(r.out.empty()) << c.args << ": nothing computed before the refusal";
  }
  // --version works; --threads is accepted after the command too.
  const CliRun v = run("--version");
  EXPECT_EQ(v.code, 0);
  EXPECT_TRUE(contains(v.out, "sit-eval ")) << v.out;
  EXPECT_EQ(run(base + " --metrics fid --threads 1").code, 0);
  // Names are case-insensitive.
  EXPECT_EQ(run(base + " --metrics fid,pr --pr-distance FP32 --fid-route SQRTM").code, 0);
}

// An explicit KID subset size must fit both sets; the default size is capped with a warning.
TEST(Cli, KidSubsetSizeIsCheckedOrCappedWithAWarning) {
  const std::string base = "metrics --metrics kid --ref " + fx("features_ref.npz") +
                           " --samples " + fx("features_samples.npz");
  CliRun r = run(base);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(contains(r.err, "warning: KID: subset size 1000 capped at the smaller set's 600 rows"))
      << r.err;
  r = run(base + " --kid-subset-size 2000");
  EXPECT_EQ(r.code, 1);
  EXPECT_TRUE(contains(r.err, "--kid-subset-size 2000: larger than the smaller set (600 rows in"))
      << r.err;
  r = run(base + " --kid-subset-size 600");
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_FALSE(contains(r.err, "capped")) << r.err;
}

// ADM's Inception Score over 5,000-row splits: 5,001 rows average a full split with a
// 1-row split (which scores exactly 1). The value is ADM's; a warning says why it is low.
TEST(Cli, InceptionScoreWarnsAboutAShortLastSplit) {
  const auto dir = sit::test::temp_dir();
  const int64_t c = 10;
  auto write = [&](const std::string& name, int64_t n) {
    std::vector<float> logits(static_cast<size_t>(n * c));
    for (int64_t i = 0; i < n; ++i)
      logits[i * c + i % c] = 6.0f;  // confident, evenly spread predictions
    sit::io::NpzWriter w((dir / name).string());
    w.add("logits", {n, c}, logits.data());
    w.close();
    return (dir / name).string();
  };
  const std::string full = write("full.npz", 5000), plus1 = write("plus1.npz", 5001);
  const CliRun a = run("metrics --metrics is --ref " + full + " --samples " + full);
  const CliRun b = run("metrics --metrics is --ref " + full + " --samples " + plus1);
  ASSERT_EQ(a.code, 0) << a.err;
  ASSERT_EQ(b.code, 0) << b.err;
  const double is_full = std::stod(a.out.substr(a.out.find(": ") + 2));
  const double is_plus1 = std::stod(b.out.substr(b.out.find(": ") + 2));
  // the 5,001st row is class 0 again: its split's score is exp(KL(p || p)) = 1
  EXPECT_NEAR(is_plus1, (is_full + 1.0) / 2, 1e-6 * is_full);
  EXPECT_FALSE(contains(a.err, "warning")) << a.err;
  EXPECT_TRUE(contains(b.err, "warning: Inception Score: the last of 2 splits holds 1 of 5000 "
                              "rows"))
      << b.err;
}

// `metrics` scores the output of `sample` for an analytic model (data-space features) and
// explains what to do with an npz of images.
TEST(Cli, MetricsExplainsImageFilesAndReadsSampleRows) {
  const auto dir = sit::test::temp_dir();
  {
    sit::io::NpzWriter w((dir / "images.npz").string());
    const std::vector<uint8_t> img(2 * 4 * 4 * 3, 7);
    w.add("arr_0", {2, 4, 4, 3}, img.data());
    w.close();
  }
  CliRun r = run("metrics --ref " + fx("features_ref.npz") + " --samples " +
                 (dir / "images.npz").string());
  EXPECT_EQ(r.code, 1);
  EXPECT_TRUE(contains(r.err, "images.npz: holds images (arr_0), not features: score it with "
                              "`sit-eval evaluate REF "))
      << r.err;
  const auto x = sit::test::gaussian_features(50, 3, 1), y = sit::test::gaussian_features(50, 3, 2);
  for (const auto& [name, rows] : {std::pair{"a.npz", &x}, std::pair{"b.npz", &y}}) {
    sit::io::NpzWriter w((dir / name).string());
    w.add("samples", {50, 3}, rows->data());
    w.close();
  }
  r = run("metrics --metrics fid,pr --ref " + (dir / "a.npz").string() + " --samples " +
          (dir / "b.npz").string());
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(contains(r.out, "FID: ") && contains(r.out, "Precision: ")) << r.out;
}

// FID alone streams the pool rows into statistics; with KID the rows are loaded whole. The
// two routes give the same FID bit for bit, and the same counts.
TEST(Cli, FidAloneStreamsTheRowsAndScoresAlike) {
  const auto dir = sit::test::temp_dir();
  const auto a = (dir / "a.json").string(), b = (dir / "b.json").string();
  const std::string files =
      " --ref " + fx("features_ref.npz") + " --samples " + fx("features_samples.npz");
  CliRun r = run("metrics --metrics fid --json " + a + files);
  ASSERT_EQ(r.code, 0) << r.err;
  r = run("metrics --metrics fid,kid --json " + b + files);
  ASSERT_EQ(r.code, 0) << r.err;
  std::ifstream ia(a), ib(b);
  const auto ja = nlohmann::json::parse(ia), jb = nlohmann::json::parse(ib);
  EXPECT_EQ(ja["fid"].get<double>(), jb["fid"].get<double>());
  EXPECT_EQ(ja["n_samples"], jb["n_samples"]);
  EXPECT_EQ(ja["n_ref"], jb["n_ref"]);
  EXPECT_EQ(ja["n_samples"], 600);
}

// `sit-eval` runs `metrics` without LibTorch and hands everything else to sit-eval-torch
// beside it: alone in a folder, it still scores features and names what is missing.
TEST(Cli, FrontRunsMetricsAloneAndNamesTheLibTorchProgram) {
  const auto dir = sit::test::temp_dir();
  const auto front = dir / "sit-eval";
  std::filesystem::copy_file(SIT_EVAL_BINARY, front);
  const std::string files =
      " --ref " + fx("features_ref.npz") + " --samples " + fx("features_samples.npz");
  auto run_front = [&](const std::string& args) {
    const std::string cmd = front.string() + " --threads 1 " + args + " 2>&1";
    FILE* pipe = ::popen(cmd.c_str(), "r");
    std::string out;
    std::array<char, 4096> buf{};
    for (size_t n; (n = std::fread(buf.data(), 1, buf.size(), pipe)) > 0;)
      out.append(buf.data(), n);
    const int status = ::pclose(pipe);
    return std::make_pair(WEXITSTATUS(status), out);
  };
  const auto metrics = run_front("metrics --metrics fid" + files);
  const CliRun whole = run("metrics --metrics fid" + files);
  EXPECT_EQ(metrics.first, 0) << metrics.second;
  EXPECT_EQ(metrics.second, whole.out);
  if (std::filesystem::exists(std::filesystem::path(SIT_EVAL_BINARY).parent_path() /
                              "sit-eval-torch")) {  // a build with LibTorch
    const auto other = run_front("version");
    EXPECT_EQ(other.first, 1);
    EXPECT_TRUE(contains(other.second, "error: cannot run " + (dir / "sit-eval-torch").string()))
        << other.second;
    EXPECT_TRUE(contains(other.second, "'version' needs that program")) << other.second;
    // without it, the front still answers --help, --version and unknown commands
    EXPECT_EQ(run_front("--version").first, 0);
    EXPECT_TRUE(contains(run_front("--help").second, "metrics"));
    const auto unknown = run_front("bogus");
    EXPECT_EQ(unknown.first, 1);
    EXPECT_TRUE(contains(unknown.second, "unknown command 'bogus'")) << unknown.second;
    EXPECT_TRUE(contains(run("version").out, "libtorch: "));
  }
}
