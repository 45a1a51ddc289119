// sit-eval sample {ODE|SDE} as a user runs it.
#include <algorithm>
#include <filesystem>
#include <fstream>

#include "reference_stats/npy.h"
#include "test_util.h"
// after test_util.h: the runner uses sit::test::fixture
#include "cli_runner.h"

using sit::test::slurp;

TEST(CliSample, OdeWritesSamplesLabelsAndNfe) {
  const auto dir = sit::test::temp_dir();
  const auto out = (dir / "s.npz").string();
  const CliRun r =
      run("sample ODE --model gmm:demo --sampling-method heun --num-sampling-steps 11 "
          "--num-samples 20 --batch-size 8 --cfg-scale 1.5 --out " +
          out);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(contains(r.err, "mean NFE 20 per sample")) << r.err;  // 10 Heun steps
  sit::io::NpzReader z(out);
  EXPECT_EQ(z.open("samples").shape(), (std::vector<int64_t>{20, 32}));
  EXPECT_EQ(z.open("samples").dtype(), sit::io::DType::kF4);
  const auto labels = z.open("labels").read_all<int64_t>();
  for (int64_t l : labels)
    EXPECT_TRUE(l >= 0 && l < 10);
  EXPECT_EQ(z.open("nfe").read_all<int64_t>(), std::vector<int64_t>(20, 20));
}

TEST(CliSample, OutputDoesNotDependOnBatchSize) {
  const auto dir = sit::test::temp_dir();
  const std::string base =
      "sample SDE --model gmm:demo --num-sampling-steps 40 --num-samples 30 "
      "--global-seed 5 --cfg-scale 2 --cfg-channels all";
  for (int b : {1, 7, 30}) {
    const CliRun r = run(base + " --batch-size " + std::to_string(b) + " --out " +
                         (dir / ("b" + std::to_string(b) + ".npz")).string());
    ASSERT_EQ(r.code, 0) << r.err;
  }
  const std::string whole = slurp(dir / "b30.npz");
  EXPECT_EQ(slurp(dir / "b1.npz"), whole);
  EXPECT_EQ(slurp(dir / "b7.npz"), whole);
}

TEST(CliSample, UserNoiseAndLabels) {
  const auto dir = sit::test::temp_dir();
  const std::vector<float> noise(4, 0.0f);
  const std::vector<int64_t> labels = {0, 1, 1, 0};
  // .npy files: sit-eval's header writer plus the raw rows.
  auto write_npy = [&](const std::string& name, auto data, std::vector<int64_t> shape) {
    const std::string header =
        sit::io::format_npy_header(sit::io::dtype_of<typename decltype(data)::value_type>(), shape);
    std::ofstream f(dir / name, std::ios::binary);
    f << header;
    f.write(reinterpret_cast<const char*>(data.data()), data.size() * sizeof(data[0]));
  };
  write_npy("noise.npy", noise, {4, 1});
  write_npy("labels.npy", labels, {4});
  write_npy("bad.npy", noise, {2, 2});
  const auto out = (dir / "o.npz").string();
  // Atoms at -1 and +1 from x0 = 0 with the exact Euler flow of bernoulli1d: x stays 0.
  CliRun r =
      run("sample ODE --model gmm:bernoulli1d --sampling-method euler --num-samples 4 "
          "--noise " +
          (dir / "noise.npy").string() + " --labels " + (dir / "labels.npy").string() + " --out " +
          out);
  ASSERT_EQ(r.code, 0) << r.err;
  sit::io::NpzReader z(out);
  EXPECT_EQ(z.open("samples").read_all<float>(), std::vector<float>(4, 0.0f));
  EXPECT_EQ(z.open("labels").read_all<int64_t>(), labels);
  r = run("sample ODE --model gmm:bernoulli1d --num-samples 4 --noise " +
          (dir / "bad.npy").string() + " --out " + out);
  EXPECT_EQ(r.code, 1);
  EXPECT_TRUE(contains(r.err, "--noise must have shape (4, 1)")) << r.err;
}

TEST(CliSample, BadConfigurationsExitOneWithTheFix) {
  const auto dir = sit::test::temp_dir();
  const auto out = (dir / "x.npz").string();
  CliRun r = run("sample SDE --model gmm:mix1d --diffusion-form SBDM --out " + out);
  EXPECT_EQ(r.code, 1);
  EXPECT_TRUE(contains(r.err, "infinite at t = 0") && contains(r.err, "--t0")) << r.err;
  EXPECT_FALSE(std::filesystem::exists(out));
  r = run("sample ODE --model gmm:mix1d --path-type Cosine --out " + out);
  EXPECT_EQ(r.code, 1);
  EXPECT_TRUE(contains(r.err, "path type must be one of Linear, GVP, VP")) << r.err;
  r = run("sample SDE --model gmm:mix1d --last-step Median --out " + out);
  EXPECT_EQ(r.code, 1);
  EXPECT_TRUE(contains(r.err, "last step must be one of none, Mean, Tweedie, Euler")) << r.err;
  r = run("sample ODE --model gmm:mix1d --cfg-scale 4 --out " + out);
  EXPECT_EQ(r.code, 1);
  EXPECT_TRUE(contains(r.err, "needs a class-conditional model")) << r.err;
  r = run("sample ODE --model gmm:mix1d --precision fp16 --out " + out);
  EXPECT_EQ(r.code, 1);
  EXPECT_TRUE(contains(r.err, "precision for gmm:mix1d must be fp32 or fp64, got 'fp16'")) << r.err;
  r = run("sample ODE --model gmm:mix1d --error-norm rms --out " + out);
  EXPECT_EQ(r.code, 1);
  EXPECT_TRUE(contains(r.err, "--error-norm: dopri5 error norm must be one of batch, per-sample; got 'rms'")) << r.err;
  r = run("sample ODE --model gmm:mix1d --batch-size 0 --out " + out);
  EXPECT_EQ(r.code, 1);
  EXPECT_TRUE(contains(r.err, "--batch-size: expected an integer >= 1, got 0")) << r.err;
  {
    const std::vector<int64_t> labels = {0, 1, 12, 0};
    std::ofstream f(dir / "labels.npy", std::ios::binary);
    f << sit::io::format_npy_header(sit::io::DType::kI8, {4});
    f.write(reinterpret_cast<const char*>(labels.data()), labels.size() * sizeof(int64_t));
  }
  r = run("sample ODE --model gmm:demo --num-samples 4 --labels " + (dir / "labels.npy").string() +
          " --out " + out);
  EXPECT_EQ(r.code, 1);
  EXPECT_TRUE(contains(r.err, "labels must lie in [0, 10]")) << r.err;
  r = run("sample ODE --model vae:SD --out " + out);
  EXPECT_EQ(r.code, 1);
  EXPECT_TRUE(contains(r.err, "model must be gmm:PRESET or gmm:FILE.toml or sit:SiT-{S,B,L,XL}/{2,4,8} or dit:DiT-{S,B,L,XL}/{2,4,8} or repa:SiT-{S,B,L,XL}/{2,4,8} or lightningdit:LightningDiT-{B,L,XL,1p0B,1p6B}/{1,2}, got 'vae:SD'")) << r.err;
}

// Numeric options are range-checked before any sampling; names are case-insensitive; the
// device is checked in one line.
TEST(CliSample, OptionsCheckedWhereParsed) {
  const auto dir = sit::test::temp_dir();
  const std::string base = "sample ODE --model gmm:demo --num-samples 4 --out " +
                           (dir / "s.npz").string();
  struct Case {
    std::string args, fragment;
  };
  const Case cases[] = {
      {base + " --sampling-method euler --num-sampling-steps 0",
       "error: --num-sampling-steps: expected an integer in [2, 1000000], got 0"},
      {base + " --num-sampling-steps -3", "--num-sampling-steps: expected an integer in [2, 1000000], got -3"},
      {base + " --num-sampling-steps 1", "--num-sampling-steps: expected an integer in [2, 1000000], got 1"},
      {base + " --batch-size 0", "--batch-size: expected an integer >= 1, got 0"},
      {"sample ODE --model gmm:demo --num-samples 0", "--num-samples: expected an integer in [1, 100000000], got 0"},
      {base + " --atol 0", "--atol: expected a number > 0, got 0"},
      {base + " --rtol nan", "--rtol: expected a number > 0, got nan"},
      {base + " --t0 1.5", "--t0: expected a number in [0, 1], got 1.5"},
      {base + " --sample-eps 1", "--sample-eps: expected a number in [0, 1), got 1"},
      {base + " --cfg-scale -1", "--cfg-scale: expected a number >= 0, got -1"},
      {"sample SDE --model gmm:demo --last-step-size 0", "--last-step-size: expected a number in "
                                                         "(0, 1), got 0"},
      {"sample SDE --model gmm:demo --diffusion-eta -1", "--diffusion-eta: expected a number >= 0"},
      {base + " --device cuda:0", "error: --device cuda:0: this sit-eval was built against a "
                                  "LibTorch without CUDA"},
      {base + " --device gpu", "error: --device: expected cpu, cuda or cuda:N, got 'gpu'"},
      {base + " --sampling-method rk5", "ODE sampling method must be one of euler, midpoint"},
      {"sample ODE --model gmm:demo --out " + (dir / "nodir" / "s.npz").string(), "no folder"},
  };
  for (const auto& c : cases) {
    const CliRun r = run(c.args);
    EXPECT_EQ(r.code, 1) << c.args;
    EXPECT_TRUE(r.err.rfind("error: ", 0) == 0) << c.args << ": " << r.err;
    EXPECT_TRUE(contains(r.err, c.fragment)) << c.args << ": " << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << "one line: " << r.err;
    EXPECT_FALSE(std::filesystem::exists(dir / "s.npz"));
  }
  // Any letter case: the same samples as the canonical spelling.
  const auto a = (dir / "a.npz").string(), b = (dir / "b.npz").string();
  ASSERT_EQ(run("sample SDE --model gmm:mix1d --num-samples 6 --num-sampling-steps 20 "
                "--sampling-method Euler --diffusion-form SBDM --path-type VP --out " + a)
                .code,
            0);
  const CliRun r = run("sample SDE --model gmm:mix1d --num-samples 6 --num-sampling-steps 20 "
                       "--sampling-method EULER --diffusion-form sbdm --path-type vp --precision "
                       "FP32 --out " + b);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(slurp(a), slurp(b));
}

// With --noise and no --num-samples, N is the file's rows.
TEST(CliSample, NoiseFileSetsTheSampleCount) {
  const auto dir = sit::test::temp_dir();
  const std::vector<double> noise = {0.1, -0.4, 1.2, 0.7, -2.0};
  const std::string header = sit::io::format_npy_header(sit::io::DType::kF8, {5, 1});
  {
    std::ofstream f(dir / "noise.npy", std::ios::binary);
    f << header;
    f.write(reinterpret_cast<const char*>(noise.data()), noise.size() * sizeof(double));
  }
  const auto out = (dir / "s.npz").string();
  CliRun r = run("sample ODE --model gmm:mix1d --sampling-method heun --num-sampling-steps 8 "
                 "--noise " + (dir / "noise.npy").string() + " --out " + out);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(sit::io::NpzReader(out).open("samples").shape(), (std::vector<int64_t>{5, 1}));
  r = run("sample ODE --model gmm:mix1d --num-samples 4 --noise " + (dir / "noise.npy").string() +
          " --out " + out);
  EXPECT_EQ(r.code, 1);
  EXPECT_TRUE(contains(r.err, "--noise must have shape (4, 1)")) << r.err;
}

// Protocol presets and guidance forms from the command line: the preset's settings, its
// fingerprint and the overrides on stderr, nfe_uncond in the output; refusals.
TEST(CliSample, ProtocolPresetsAndGuidanceForms) {
  const auto dir = sit::test::temp_dir();
  const auto out = (dir / "p.npz").string();
  CliRun r = run("sample SDE --model gmm:demo --protocol repa-sde --num-samples 6 --batch-size 4 "
                 "--out " + out);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(contains(r.err, "protocol repa-sde: fingerprint ")) << r.err;
  EXPECT_TRUE(contains(r.err, "overrides: samples 50000 -> 6 (the preset's own fingerprint "
                              "c999d9081323)")) << r.err;
  EXPECT_TRUE(contains(r.err, "mean NFE 250 per sample (172 guided)")) << r.err;
  sit::io::NpzReader z(out);
  EXPECT_EQ(z.open("nfe_uncond").read_all<int64_t>(), std::vector<int64_t>(6, 172));
  r = run("sample ODE --model gmm:demo --protocol lightningdit --num-samples 2 --cfg-scale 4 "
          "--out " + out);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(contains(r.err, "overrides: cfg_scale 6.7 -> 4.0, samples 50000 -> 2")) << r.err;
  EXPECT_TRUE(contains(r.err, "mean NFE 249 per sample (168 guided)")) << r.err;
  r = run("sample ODE --model gmm:demo --sampling-method dpm++2m --num-sampling-steps 9 "
          "--num-samples 2 --cfg-scale 2 --cfg-channels all --guidance-steps 2,5 --out " + out);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(contains(r.err, "mean NFE 8 per sample (4 guided)")) << r.err;
  // an interval that excludes every step is said; autoguidance needs no classes
  r = run("sample ODE --model gmm:demo --sampling-method euler --num-samples 2 --cfg-scale 2 "
          "--cfg-interval-start 1 --out " + out);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(contains(r.err, "note: guidance was never on (0 guided evaluations)")) << r.err;
  r = run("sample ODE --model gmm:mix1d --sampling-method euler --num-samples 2 --cfg-scale 1.5 "
          "--cfg-channels all --guidance autoguidance --guide-model gmm:mix1d --out " + out);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(contains(r.err, "(49 with the guiding network)")) << r.err;
  r = run("sample ODE --model gmm:demo --sampling-method euler --num-samples 2 "
          "--quantization repa --out " + out);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(contains(r.err, "note: --quantization applies to decoded images; demo writes none"))
      << r.err;

  const std::pair<std::string, std::vector<std::string>> bad[] = {
      {"sample ODE --model gmm:demo --protocol sit-sde",
       {"--protocol sit-sde samples with SDE", "sit-eval sample SDE --protocol sit-sde"}},
      {"sample SDE --model gmm:demo --protocol sit-sdf", {"unknown protocol 'sit-sdf'", "repa-sde"}},
      {"sample SDE --model sit --ckpt x.pt --protocol repa-sde",
       {"--protocol repa-sde samples repa: models", "is a sit: model"}},
      {"sample ODE --model gmm:demo --cfg-scale 2 --guidance-interval 0.9,0.2",
       {"--guidance-interval", "the first not above the second, got '0.9,0.2'"}},
      {"sample ODE --model gmm:demo --cfg-scale 2 --guidance-steps 3,4",
       {"guidance_steps (--guidance-steps) needs a fixed-step method: dopri5"}},
      {"sample ODE --model gmm:demo --sampling-method euler --cfg-scale 2 --guidance autoguidance",
       {"autoguidance needs a guiding network", "--guide-model"}},
      {"sample ODE --model gmm:demo --sampling-method euler --cfg-scale 2 --guidance autoguidance "
       "--guide-model gmm:mix1d",
       {"guide_model mix1d has states of shape (1,), model demo (32,)"}},
      {"sample ODE --model gmm:mix1d --cfg-scale 2 --guide-model gmm:demo --guide-ckpt x.pt",
       {"guide_ckpt does not apply to the analytic guide_model gmm:demo"}},
      {"sample DDPM --model gmm:demo --variance-type fixed-small --cfg-scale 2 "
       "--guidance-interval 0.3,1",
       {"--guidance-interval does not apply to DDPM sampling", "ODE/SDE", "--guidance-steps"}},
      {"sample DDIM --model gmm:demo --num-sampling-steps 5",
       {"--num-sampling-steps does not apply to DDIM sampling"}},
      {"sample ODE --model gmm:demo --sampling-method euler --cfg-scale 2 --guidance-steps 1e1,20",
       {"two step indices (digits, 0-based), got '1e1,20'"}},
      {"sample ODE --model gmm:demo --protocol ''", {"--protocol: expected a protocol name"}},
      {"sample ODE --model gmm:demo --guide-ckpt x.pt",
       {"guide_ckpt (--guide-ckpt) needs guide_model (--guide-model"}},
  };
  for (const auto& [args, fragments] : bad) {
    r = run(args + " --out " + out);
    EXPECT_EQ(r.code, 1) << args;
    for (const auto& f : fragments)
      EXPECT_TRUE(contains(r.err, f)) << args << "\n" << r.err;
  }
}

// Under a launcher with several ranks, `sample` (one output file) refuses before any work
// and points at the sharded route, a sweep; a single-rank launcher is fine.
TEST(CliSample, RefusesSeveralLauncherRanksAndNamesTheShardedRoute) {
  const auto dir = sit::test::temp_dir();
  const auto out = (dir / "s.npz").string();
  ::setenv("RANK", "1", 1);
  ::setenv("WORLD_SIZE", "8", 1);
  CliRun r = run("sample ODE --model gmm:demo --num-samples 4 --out " + out);
  ::setenv("WORLD_SIZE", "1", 1);
  ::setenv("RANK", "0", 1);
  const CliRun single = run("sample ODE --model gmm:demo --num-samples 4 --out " + out);
  ::unsetenv("RANK");
  ::unsetenv("WORLD_SIZE");
  EXPECT_EQ(r.code, 1);
  EXPECT_TRUE(contains(r.err, "error: sample runs as one process, but the launcher started 8 "
                              "(this is rank 1)"))
      << r.err;
  EXPECT_TRUE(contains(r.err, "sit-eval sweep FILE.toml --save-images npz")) << r.err;
  EXPECT_EQ(single.code, 0) << single.err;
}
