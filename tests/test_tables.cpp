// The typed sources of truth: the sampler field table, the stepper rows, the metric table,
// named enum values; and what they guard: canonical IDs that do not move, one run for
// aliases, the run's identity, extractor mismatches, and compare / gate on a moved run.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "eval/metric_table.h"
#include "eval/metrics_job.h"
#include "eval/protocols.h"
#include "eval/sampler_spec.h"
#include "eval/sweep_config.h"
#include "metrics/frechet.h"
#include "metrics/precision_recall.h"
#include "reference_stats/feature_set.h"
#include "samplers/diffusion.h"
#include "samplers/interval.h"
#include "samplers/ode.h"
#include "samplers/sampler.h"
#include "samplers/sde.h"
#include "test_util.h"
// after test_util.h
#include "cli_runner.h"

using namespace sit;
namespace fs = std::filesystem;

using sit::test::slurp;

namespace {

/// Every value of an enum whose values are 0..last has a name that parses back to it.
template <class E, class Print, class Parse>
void expect_named(int last, Print print, Parse parse, const char* what) {
  for (int i = 0; i <= last; ++i) {
    const E e = static_cast<E>(i);
    const std::string name = print(e);
    EXPECT_FALSE(name.empty()) << what << " " << i;
    EXPECT_EQ(parse(name), e) << what << " " << name;
  }
}

}  // namespace

TEST(Tables, EveryEnumValueHasAName) {
  using namespace samplers;
  expect_named<SamplerFamily>(3, [](auto e) { return to_string(e); }, parse_sampler_family,
                              "family");
  EXPECT_EQ(all_sampler_families().size(), 4u);
  expect_named<VarianceType>(2, [](auto e) { return to_string(e); }, parse_variance_type,
                             "variance type");
  expect_named<OdeMethod>(8, [](auto e) { return to_string(e); }, parse_ode_method, "ODE method");
  expect_named<SdeMethod>(1, [](auto e) { return to_string(e); }, parse_sde_method, "SDE method");
  expect_named<PathType>(2, [](auto e) { return to_string(e); }, parse_path_type, "path");
  expect_named<Prediction>(2, [](auto e) { return to_string(e); }, parse_prediction, "prediction");
  expect_named<DiffusionForm>(6, [](auto e) { return to_string(e); }, parse_diffusion_form, "form");
  expect_named<LastStep>(3, [](auto e) { return to_string(e); }, parse_last_step, "last step");
  expect_named<CfgChannels>(1, [](auto e) { return to_string(e); }, parse_cfg_channels, "channels");
  expect_named<CfgSchedule>(1, [](auto e) { return to_string(e); }, parse_cfg_schedule, "schedule");
  expect_named<GuidanceKind>(1, [](auto e) { return to_string(e); }, parse_guidance_kind,
                             "guidance");
  expect_named<ErrorNorm>(1, [](auto e) { return to_string(e); }, parse_error_norm, "error norm");
  expect_named<metrics::DistanceMode>(1, [](auto e) { return metrics::to_string(e); },
                                      metrics::parse_distance_mode, "distance");
  expect_named<metrics::FrechetRoute>(1, [](auto e) { return metrics::to_string(e); },
                                      metrics::parse_frechet_route, "route");
  // one past the last value is no enum value: it has no name, and asking is a program error
  EXPECT_THROW(to_string(static_cast<OdeMethod>(9)), std::logic_error);
}

// The NFE a stepper's row promises is what integrating on a grid spends.
TEST(Tables, StepperRowsDescribeTheirSteppers) {
  using namespace samplers;
  ASSERT_EQ(ode_steppers().size(), 9u);
  const Interpolant linear(PathType::kLinear);  // dpm++2m's data estimate needs the path
  for (const auto& s : ode_steppers()) {
    EXPECT_EQ(parse_ode_method(s.name), s.method);
    for (const char* a : s.aliases)
      EXPECT_EQ(parse_ode_method(a), s.method);
    EXPECT_EQ(s.family, SamplerFamily::kOde);
    EXPECT_EQ(s.adaptive || s.multistep, s.step == nullptr) << s.name;
    EXPECT_FALSE(s.adaptive && s.multistep) << s.name;
    if (s.adaptive) continue;
    OdeOptions o;
    o.method = s.method;
    OdeStats stats;
    const at::Tensor x =
        integrate_ode([](const at::Tensor& x, double t) { return -x * t; },
                      at::ones({2, 3}, at::kDouble), linspace_grid(0, 1, 7), o, &stats, &linear);
    EXPECT_EQ(stats.evaluations, fixed_step_evaluations(s.method, 7)) << s.name;
    EXPECT_EQ(stats.evaluations, 6 * s.evaluations_per_step - (s.last_step_euler ? 1 : 0))
        << s.name;
    // dx/dt = -t x: x(1) = exp(-1/2); the order in the row is the convergence order
    const double err = std::abs(x[0][0].item<double>() - std::exp(-0.5));
    EXPECT_LT(err, std::pow(1.0 / 6, s.order) * 0.5) << s.name;
  }
  for (auto family : {SamplerFamily::kDdpm, SamplerFamily::kDdim}) {
    EXPECT_EQ(discrete_stepper(family).family, family);
    EXPECT_EQ(discrete_stepper(family).evaluations_per_step, 1);
  }
  ASSERT_EQ(sde_steppers().size(), 2u);
  for (const auto& s : sde_steppers()) {
    EXPECT_EQ(parse_sde_method(s.name), s.method);
    SdeOptions o;
    o.method = s.method;
    o.last_step = LastStep::kNone;
    EXPECT_EQ(sde_evaluations(o, 9), 8 * s.evaluations_per_step) << s.name;
  }
}

TEST(Tables, SamplerFieldsRoundTripAndCoverTheCli) {
  std::string help;
  for (auto family : samplers::all_sampler_families())
    help += run(std::string("sample ") + samplers::to_string(family) + " --help").out;
  std::set<std::string> keys;
  for (const auto& f : eval::sampler_fields()) {
    EXPECT_TRUE(keys.insert(f.key).second) << "duplicate key " << f.key;
    EXPECT_TRUE(f.assign && f.print) << f.key;
    if (std::string(f.key) != "mode") {
      EXPECT_TRUE(contains(help, f.flag)) << f.flag;
    }
    for (auto family : samplers::all_sampler_families()) {
      if (!f.applies_to(family)) continue;
      eval::SamplerSpec s = eval::default_sampler_spec(family);
      const std::string text = f.print(s);
      if (text.empty()) continue;  // unset optional field
      f.set(s, text);
      EXPECT_EQ(f.print(s), text) << f.key;
    }
  }
  // the canonical text of a default configuration names every always-shown field
  const auto sde = eval::default_sampler_spec(samplers::SamplerFamily::kSde);
  EXPECT_EQ(sde.canonical(),
            "mode=SDE;path=Linear;prediction=velocity;method=Euler;steps=250;form=sigma;norm=1.0;"
            "last=Mean;h=0.04;cfg=1.0");
  // an optional field joins only when set, so existing IDs do not move
  eval::SamplerSpec t0 = sde;
  eval::set_sampler_field(t0, "t0", "0.001");
  EXPECT_EQ(t0.canonical(), sde.canonical() + ";t0=0.001");
  EXPECT_NE(t0.id(), sde.id());
  EXPECT_EQ(t0.label(), "SDE Linear/velocity Euler 250 sigma t0 0.001");
  test::expect_error([&] { eval::set_sampler_field(t0, "cfg_scale", "-1"); },
                     {"'cfg_scale': expected a number >= 0, got -1"});
}

// The IDs of the committed CI baseline are the IDs its sweep file expands to today.
TEST(Tables, CommittedBaselineIdsDoNotMove) {
  const auto spec = eval::load_sweep(std::string(SIT_SOURCE_DIR) + "/configs/ci_gate.toml");
  std::ifstream in(std::string(SIT_SOURCE_DIR) + "/configs/ci_gate_baseline.json");
  const auto baseline = nlohmann::json::parse(in);
  std::set<std::string> want, got;
  for (const auto& c : baseline["configurations"])
    want.insert(c["id"].get<std::string>());
  for (const auto& c : spec.configs)
    got.insert(c.id());
  EXPECT_EQ(got, want);
  // and one pinned by its canonical text
  eval::SamplerSpec euler = eval::default_sampler_spec(samplers::SamplerFamily::kOde);
  eval::set_sampler_field(euler, "method", "euler");
  eval::set_sampler_field(euler, "num_steps", "9");
  EXPECT_EQ(euler.canonical(),
            "mode=ODE;path=Linear;prediction=velocity;method=euler;steps=9;atol=1e-06;"
            "rtol=0.001;cfg=1.0");
  EXPECT_EQ(euler.id(), "265929b3235d");
}

TEST(Tables, MetricTableIsComplete) {
  std::set<std::string> keys;
  for (const auto& m : eval::metric_table()) {
    EXPECT_TRUE(keys.insert(m.key).second) << m.key;
    EXPECT_TRUE(*m.display) << m.key;
    EXPECT_FALSE(m.inputs.empty()) << m.key;
    // computed by itself, or by a row that is in the table and computes it
    if (*m.computed_with) {
      EXPECT_EQ(m.compute, nullptr);
      const auto& owner = eval::metric(m.computed_with);
      EXPECT_TRUE(owner.compute && owner.resampled) << m.key;
    } else {
      // resampled for compare, or a reason why not
      EXPECT_TRUE(m.compute && (m.resampled != nullptr) != (*m.no_bootstrap != 0)) << m.key;
    }
    EXPECT_EQ(eval::find_metric(m.key), &m);
    for (const char* a : m.aliases)
      EXPECT_NE(eval::find_metric(a), nullptr) << a;
  }
  EXPECT_EQ(eval::parse_metric_list("is,PR,fid"),
            (std::vector<std::string>{"fid", "inception_score", "precision", "recall"}));
  test::expect_error([] { eval::parse_metric_list("fid,fd"); }, {"unknown metric 'fd'"});
  // the blocks a side's metrics read only as statistics (streamed by the loader)
  using Blocks = std::set<std::string>;
  const auto ref_side = eval::MetricInput::kReference, smp_side = eval::MetricInput::kSamples;
  EXPECT_EQ(eval::statistics_only_blocks({"fid", "sfid"}, smp_side), (Blocks{"pool", "spatial"}));
  EXPECT_EQ(eval::statistics_only_blocks({"fid", "precision"}, ref_side), Blocks{});
  EXPECT_EQ(eval::statistics_only_blocks({"recall"}, smp_side), Blocks{});  // with precision
  EXPECT_EQ(eval::statistics_only_blocks({"fid_infinity"}, ref_side), Blocks{"pool"});
  EXPECT_EQ(eval::statistics_only_blocks({"fid_infinity"}, smp_side), Blocks{});
  EXPECT_EQ(eval::statistics_only_blocks({"fid", "fd_dinov2", "inception_score"}, smp_side),
            (Blocks{"dinov2", "pool"}));

  // Every row computes on a feature set that has its inputs, and the value lands under its
  // key (with its spread when it has one).
  io::FeatureSet ref, smp;
  const int64_t n = 300, d = 8;
  for (auto* set : {&ref, &smp}) {
    const uint64_t seed = set == &ref ? 1 : 2;
    for (const char* block : {io::kPool, io::kSpatial, io::kLogits, "dinov2", "clip"})
      set->blocks[block] = io::FeatureMatrix{test::gaussian_features(n, d, seed), n, d};
    set->labels = std::vector<int64_t>(n);
    for (int64_t i = 0; i < n; ++i)
      (*set->labels)[i] = i % 3;  // intra-FID: 100 rows of each of 3 classes
    set->path = set == &ref ? "ref" : "samples";
  }
  eval::MetricsJobOptions o;
  o.kid.subset_size = 100;
  o.which = eval::metric_keys();  // every row, not only the default set
  const eval::MetricsReport r = eval::compute_metrics(ref, smp, o);
  for (const auto& m : eval::metric_table()) {
    EXPECT_TRUE(r.get(m.key).has_value()) << m.key;
    if (*m.spread) {
      EXPECT_TRUE(r.get(m.spread).has_value()) << m.spread;
    }
  }
  EXPECT_TRUE(r.skipped.empty());
  // the json carries every key, the ADM lines every ADM label
  const auto j = nlohmann::json::parse(r.json());
  for (const auto& m : eval::metric_table()) {
    EXPECT_TRUE(j.contains(m.key)) << m.key;
    if (*m.adm_label) {
      EXPECT_NE(r.adm_lines().find(std::string(m.adm_label) + ": "), std::string::npos);
    }
  }
}

// Feature sets made by different extractors are refused, naming both.
TEST(Tables, ExtractorMismatchIsRefused) {
  const auto dir = test::temp_dir();
  io::FeatureSet a, b;
  for (auto* set : {&a, &b}) {
    set->blocks[io::kPool] = io::FeatureMatrix{test::gaussian_features(50, 4, 7), 50, 4};
    set->provenance.source = "test";
  }
  const std::string sha_a(64, 'a'), sha_b(64, 'b');
  a.provenance.extractor = "inception x.pt (canonical, sha256 " + sha_a + ")";
  b.provenance.extractor = "inception y.pt (canonical, sha256 " + sha_b + ")";
  io::save_feature_set((dir / "a.h5").string(), a);
  io::save_feature_set((dir / "b.h5").string(), b);
  CliRun r = run("metrics --ref " + (dir / "a.h5").string() + " --samples " +
                 (dir / "b.h5").string() + " --metrics fid");
  EXPECT_EQ(r.code, 1);
  EXPECT_TRUE(contains(r.err, "different extractors") && contains(r.err, sha_a) &&
              contains(r.err, sha_b))
      << r.err;
  // the same extractor under another path is the same extractor
  b.provenance.extractor = "inception elsewhere/x.pt (canonical, sha256 " + sha_a + ")";
  io::save_feature_set((dir / "b.h5").string(), b);
  r = run("metrics --ref " + (dir / "a.h5").string() + " --samples " + (dir / "b.h5").string() +
          " --metrics fid");
  EXPECT_EQ(r.code, 0) << r.err;
}

namespace {

const char* kIdentitySweep = R"([sweep]
name = "identity"
model = "gmm:mix1d"
samples = 64
reference_samples = 64
batch_size = 32
global_seed = 0
metrics = ["fid", "pr"]
[grid]
ode_methods = ["heun", "heun2"]
ode_steps = [5]
)";

std::string with(const std::string& text, const std::string& from, const std::string& to) {
  std::string s = text;
  s.replace(s.find(from), from.size(), to);
  return s;
}

}  // namespace

// Aliases are one run; a rerun with another sample count, seed or model is refused, naming
// what differs; adding a configuration is allowed and keeps configs.json complete.
TEST(Tables, RunIdentityRefusesChangedRerunsAndAllowsNewConfigurations) {
  const auto dir = test::temp_dir();
  const std::string out = (dir / "run").string();
  auto sweep = [&](const std::string& text) {
    std::ofstream(dir / "s.toml") << text;
    return run("sweep " + (dir / "s.toml").string() + " --quiet --out " + out);
  };
  CliRun r = sweep(kIdentitySweep);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(contains(r.out, "1 ok")) << r.out;  // heun and heun2: one configuration
  const std::string results = slurp(fs::path(out) / "results.jsonl");
  struct Change {
    std::string from, to, key;
  };
  for (const Change& c : {Change{"samples = 64", "samples = 128", "samples: 64 recorded, 128 now"},
                          Change{"global_seed = 0", "global_seed = 1", "global_seed: 0 recorded"},
                          Change{"gmm:mix1d", "gmm:bernoulli1d", "model: gmm:mix1d recorded"}}) {
    r = sweep(with(kIdentitySweep, c.from, c.to));
    EXPECT_EQ(r.code, 1) << c.to;
    EXPECT_TRUE(contains(r.err, c.key) && contains(r.err, "Start a new run")) << r.err;
    EXPECT_EQ(slurp(fs::path(out) / "results.jsonl"), results) << "nothing written";
  }
  // a new grid value: allowed, and configs.json lists every result
  r = sweep(with(kIdentitySweep, "ode_steps = [5]", "ode_steps = [5, 9]"));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(contains(r.out, "1 ok") && contains(r.out, "1 already done")) << r.out;
  const auto configs = nlohmann::json::parse(slurp(fs::path(out) / "configs.json"));
  std::set<std::string> listed;
  for (const auto& c : configs)
    listed.insert(c["id"].get<std::string>());
  std::ifstream in(fs::path(out) / "results.jsonl");
  int lines = 0;
  for (std::string line; std::getline(in, line); ++lines)
    EXPECT_TRUE(listed.count(nlohmann::json::parse(line)["id"].get<std::string>()));
  EXPECT_EQ(lines, 2);
  EXPECT_EQ(listed.size(), 2u);
}

// compare and gate read only the run directory: the run moved elsewhere, its mixture file
// gone, they still work.
TEST(Tables, CompareAndGateOnAMovedRunWithoutModelFiles) {
  const auto dir = test::temp_dir();
  std::ofstream(dir / "m.toml") << "dim = 2\n[[component]]\nweight = 0.5\nmean = [1.0, 0.0]\n"
                                   "[[component]]\nweight = 0.5\nmean = [-1.0, 0.5]\n";
  std::ofstream(dir / "s.toml") << "[sweep]\nmodel = \"gmm:" << (dir / "m.toml").string()
                                << "\"\nsamples = 200\nbatch_size = 100\nmetrics = [\"fid\", "
                                   "\"pr\", \"kid\"]\n[grid]\node_methods = [\"euler\", "
                                   "\"heun2\"]\node_steps = [5]\n";
  ASSERT_EQ(run("sweep " + (dir / "s.toml").string() + " --quiet --out " +
                (dir / "run").string())
                .code,
            0);
  fs::create_directories(dir / "elsewhere");
  fs::rename(dir / "run", dir / "elsewhere" / "moved");
  fs::remove(dir / "m.toml");
  fs::remove(dir / "s.toml");
  const std::string moved = (dir / "elsewhere" / "moved").string();
  CliRun r = run("compare " + moved + " " + moved + " --replicates 20");
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(contains(r.out, "| fid |") && contains(r.out, "| kid |")) << r.out;
  r = run("gate " + moved + " --baseline " + moved + " --metrics fid,precision");
  EXPECT_EQ(r.code, 0) << r.err;
  r = run("gate " + moved + " --baseline " + moved + " --max-fid-increase 0.1 --tolerance fid=0.2");
  EXPECT_EQ(r.code, 1);
  EXPECT_TRUE(contains(r.err, "both set FID's tolerance")) << r.err;
  r = run("report " + moved);
  EXPECT_EQ(r.code, 0) << r.err;
}

// Sweep files take every sampler option the CLI has; optional fields join the canonical
// text (and the records) only when set, and a field of the other family is refused.
TEST(Tables, SweepFilesTakeEverySamplerOption) {
  const auto dir = test::temp_dir();
  std::ofstream(dir / "loss.csv") << "t,L\n0,1.0\n1,2.0\n";
  const std::string head = "[sweep]\nmodel = \"gmm:demo\"\nsamples = 64\n";
  std::ofstream(dir / "s.toml")
      << head
      << "[grid]\node_methods = [\"euler\", \"dopri5\"]\node_steps = [5]\nerror_norm = "
         "[\"batch\", \"per-sample\"]\nsample_eps = [0.01]\nt1 = [0.99]\ncfg_scale = [1.5]\n"
         "null_class = [10]\n[[include]]\nmode = \"SDE\"\nnum_steps = 9\ndiffusion_form = "
         "\"kl-eta\"\ndiffusion_eta = 0.5\nloss_table = \""
      << (dir / "loss.csv").string() << "\"\nt0 = 0.001\n";
  const auto spec = eval::load_sweep((dir / "s.toml").string());
  // euler: the error norm does not matter (one configuration); dopri5: two
  ASSERT_EQ(spec.configs.size(), 4u);
  const std::string euler = spec.configs[0].canonical();
  EXPECT_EQ(euler,
            "mode=ODE;path=Linear;prediction=velocity;method=euler;steps=5;atol=1e-06;rtol=0.001;"
            "cfg=1.5;cfg_channels=3;t1=0.99;sample_eps=0.01;null_class=10");
  EXPECT_NE(spec.configs[2].canonical().find("error_norm=per-sample"), std::string::npos);
  EXPECT_NE(spec.configs[3].canonical().find("form=kl-eta"), std::string::npos);
  EXPECT_NE(spec.configs[3].canonical().find(";eta=0.5;loss_table="), std::string::npos);
  EXPECT_EQ(spec.configs[3].resolved(10).sde_options.diffusion.loss.at(0.5), 1.5);
  struct Bad {
    std::string text, fragment;
  };
  for (const Bad& b :
       {Bad{"[grid]\nsde_methods = [\"Euler\"]\n[[include]]\nmode = \"SDE\"\natol = 0.1\n",
            "include 'atol' does not apply to SDE sampling"},
        Bad{"[grid]\nsde_methods = [\"Euler\"]\ndiffusion_form = [\"kl-eta\"]\n",
            "diffusion_form kl-eta needs 'loss_table'"},
        Bad{"[grid]\node_methods = [\"euler\"]\nt0 = [2.0]\n", "'t0': expected a number in [0, 1]"},
        Bad{"[grid]\node_methods = [\"euler\"]\nnull_class = [\"none\"]\n",
            "'null_class' must hold numbers"}}) {
    std::ofstream(dir / "bad.toml") << head << b.text;
    test::expect_error([&] { eval::load_sweep((dir / "bad.toml").string()); }, {b.fragment});
  }
  // a null class the model does not have: refused before any sampling
  std::ofstream(dir / "nc.toml") << head << "[grid]\node_methods = [\"euler\"]\ncfg_scale = 2.0\n"
                                            "null_class = 3\n";
  const CliRun r = run("sweep " + (dir / "nc.toml").string() + " --quiet --out " +
                       (dir / "nc").string());
  EXPECT_EQ(r.code, 1);
  EXPECT_TRUE(contains(r.err, "null_class 3: is one of the model's classes")) << r.err;
  EXPECT_FALSE(fs::exists(dir / "nc")) << "a refused run leaves no directory";
}

// Configurations that sample alike are one; configurations with different IDs have
// different labels (and pivot columns); rule values are checked; the null class is the
// model's.
TEST(Tables, LabelsAreUniqueAndIrrelevantFieldsCollapse) {
  const auto dir = test::temp_dir();
  const std::string head = "[sweep]\nmodel = \"gmm:demo\"\nsamples = 64\n";
  std::ofstream(dir / "s.toml")
      << head
      << "[grid]\node_methods = [\"euler\", \"dopri5\"]\node_steps = [5]\natol = [1e-3, 1e-6]\n"
         "cfg_scale = [1.0, 2.0]\ncfg_channels = [\"3\", \"all\"]\nnull_class = [10]\n"
         "sde_methods = [\"Euler\"]\nsde_steps = [9]\nlast_step = [\"Mean\", \"Tweedie\"]\n";
  const auto spec = eval::load_sweep((dir / "s.toml").string());
  // ODE: euler (atol does not matter) x {cfg 1, cfg 2 x 2 channels} = 3, dopri5 x 2 atol x 3
  // = 6; SDE: 2 last steps x 3 = 6
  EXPECT_EQ(spec.configs.size(), 15u);
  std::set<std::string> labels, columns;
  for (const auto& c : spec.configs) {
    EXPECT_TRUE(labels.insert(c.label()).second) << "label shared: " << c.label();
    EXPECT_TRUE(columns.insert(c.label(false)).second) << c.label(false);
    // without guidance the null class does not matter
    if (c.config.guidance.scale == 1.0) {
      EXPECT_FALSE(c.null_class.has_value());
    }
  }
  EXPECT_TRUE(labels.count("ODE Linear/velocity dopri5 atol 0.001 cfg 2.0 cfg_channels all null_class 10"))
      << *labels.begin();
  // a typo in a rule is an error, not a rule that matches nothing
  std::ofstream(dir / "x.toml") << head << "[grid]\node_methods = [\"euler\"]\n[[exclude]]\n"
                                           "method = \"eulr\"\n";
  test::expect_error([&] { eval::load_sweep((dir / "x.toml").string()); },
                     {"x.toml:7: exclude 'method': ODE sampling method must be one of", "; SDE sampling method"});
  // the null class is the model's unconditional label, no other
  const std::string out = (dir / "run").string();
  std::ofstream(dir / "n.toml") << head << "[grid]\node_methods = [\"euler\"]\ncfg_scale = 2.0\n"
                                           "null_class = 11\n";
  CliRun r = run("sweep " + (dir / "n.toml").string() + " --quiet --out " + out);
  EXPECT_EQ(r.code, 1);
  EXPECT_TRUE(contains(r.err, "null_class 11: is not a label of")) << r.err;
  r = run("sample ODE --model gmm:demo --num-samples 4 --sampling-method euler --atol 0.1 "
          "--null-class 10 --out " + (dir / "s.npz").string());
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(contains(r.err, "note: --atol does not apply") &&
              contains(r.err, "note: --null-class does not apply"))
      << r.err;
}

// compare refuses runs whose features do not fit the reference (another model), and
// launcher ranks that are not numbers.
TEST(Tables, MismatchedRunsAndGarbledRanksAreRefused) {
  const auto dir = test::temp_dir();
  for (const char* model : {"demo", "mix1d"}) {
    std::ofstream(dir / "s.toml") << "[sweep]\nmodel = \"gmm:" << model << "\"\nsamples = 100\n"
                                  << "[grid]\node_methods = [\"euler\"]\node_steps = [5]\n";
    ASSERT_EQ(run("sweep " + (dir / "s.toml").string() + " --quiet --out " + (dir / model).string())
                  .code,
              0);
  }
  const CliRun r = run("compare " + (dir / "mix1d").string() + " " + (dir / "demo").string() +
                       " --replicates 10 --metrics fid");
  EXPECT_EQ(r.code, 1);
  EXPECT_TRUE(contains(r.err, "the runs are of different models")) << r.err;
  ::setenv("RANK", "x", 1);
  ::setenv("WORLD_SIZE", "2", 1);
  const CliRun ranks = run("sweep " + (dir / "s.toml").string() + " --quiet --out " +
                           (dir / "ranks").string());
  ::unsetenv("RANK");
  ::unsetenv("WORLD_SIZE");
  EXPECT_EQ(ranks.code, 1);
  EXPECT_TRUE(contains(ranks.err, "RANK = 'x' and WORLD_SIZE = '2' do not describe a shard"))
      << ranks.err;
}

// Error paths of the run-directory commands and of the tables' names.
TEST(Tables, RunDirectoryAndNameErrorsAreClear) {
  const auto dir = test::temp_dir();
  fs::create_directories(dir / "empty_run");
  std::ofstream(dir / "empty_run" / "results.jsonl") << "";
  // a sweep that has started but finished no configuration yet: run.json and configs.json
  fs::create_directories(dir / "started_run");
  std::ofstream(dir / "started_run" / "run.json") << "{\"identity\": {}}\n";
  std::ofstream(dir / "started_run" / "configs.json")
      << "[{\"id\": \"aaaaaaaaaaaa\"}, {\"id\": \"bbbbbbbbbbbb\"}]\n";
  struct Case {
    std::string args, fragment;
  };
  std::ofstream(dir / "x.toml") << "[sweep]\nmodel = \"gmm:mix1d\"\nextractor = \"nonsense\"\n"
                                   "[grid]\node_methods = [\"euler\"]\n";
  std::ofstream(dir / "kl.toml") << "[sweep]\nmodel = \"gmm:mix1d\"\n[grid]\nsde_methods = "
                                    "[\"Euler\"]\ndiffusion_form = \"kl-eta\"\nloss_table = \""
                                 << (dir / "missing.csv").string() << "\"\n";
  const Case cases[] = {
      {"merge " + dir.string(), ": not a sweep run directory (no sweep.toml"},
      {"report " + dir.string(), ": not a sweep run directory (no results.jsonl)"},
      {"report " + (dir / "empty_run").string(),
       "no configuration has finished yet (results.jsonl is empty)"},
      {"report " + (dir / "started_run").string(),
       "no configuration has finished yet (2 planned; rerun the sweep, or wait for it)"},
      {"sweep " + (dir / "x.toml").string(), "x.toml:3: 'extractor' must be one of inception, dinov2, clip, got 'nonsense'"},
      {"sweep " + (dir / "kl.toml").string(), "'loss_table'"},
      {"features " + fx("adm_ref.npz") + " --out " + (dir / "f.h5").string() + " --inception " +
           fx("adm_ref.npz") + " --extractor nonsense",
       "--extractor: feature extractor must be one of inception, dinov2, clip; got 'nonsense'"},
  };
  for (const auto& c : cases) {
    const CliRun r = run(c.args);
    EXPECT_EQ(r.code, 1) << c.args;
    EXPECT_TRUE(contains(r.err, "error: ") && contains(r.err, c.fragment)) << c.args << ": " << r.err;
  }
  // metric lists: spaces, aliases and case are fine
  const CliRun r = run("metrics --ref " + fx("features_ref.npz") + " --samples " +
                       fx("features_samples.npz") + " --metrics \"fid, PR\" --pr-distance fp32");
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(contains(r.out, "FID: ") && contains(r.out, "Recall: ")) << r.out;
}

// The contents of a mixture file are part of the run's identity; the HTML report says so
// when --bar-nfe names an NFE no configuration has.
TEST(Tables, MixtureContentsAreIdentityAndBarNfeIsNoted) {
  const auto dir = test::temp_dir();
  auto mixture = [&](double mean) {
    std::ofstream(dir / "m.toml") << "dim = 1\n[[component]]\nweight = 1.0\nmean = [" << mean
                                  << "]\n";
  };
  mixture(1.0);
  std::ofstream(dir / "s.toml") << "[sweep]\nmodel = \"gmm:" << (dir / "m.toml").string()
                                << "\"\nsamples = 100\n[grid]\node_methods = [\"euler\"]\n"
                                   "ode_steps = [5]\n";
  const std::string sweep = "sweep " + (dir / "s.toml").string() + " --quiet --out " +
                            (dir / "run").string();
  ASSERT_EQ(run(sweep).code, 0);
  mixture(2.0);
  CliRun r = run(sweep);
  EXPECT_EQ(r.code, 1);
  EXPECT_TRUE(contains(r.err, "mixture_sha256: ")) << r.err;
  r = run("report " + (dir / "run").string() + " --format html --bar-nfe 12345");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(contains(r.err, "note: --bar-nfe 12345: no finished configuration has FD at 12345 "
                              "planned NFE"))
      << r.err;
  if (!contains(r.out, "Plots omitted")) {  // without gnuplot there are no plots at all
    EXPECT_TRUE(contains(r.out, "No bar chart: no finished configuration has FD at 12345 NFE"));
  }
}

// The DiT-XL/2 recipe is DiT's sample_ddp.py protocol, and its ID is pinned.
TEST(Tables, DitRecipeIsTheReferenceProtocol) {
  // (the recipe runs on CUDA; this build may be CPU-only: load it with device cpu)
  std::string text = test::slurp(std::string(SIT_SOURCE_DIR) + "/configs/dit_xl2_fid50k.toml");
  const size_t at = text.find("device = \"cuda\"");
  ASSERT_NE(at, std::string::npos);
  text.replace(at, 15, "device = \"cpu\"");
  const auto dir = test::temp_dir("dit_recipe");
  std::ofstream(dir / "recipe.toml") << text;
  const auto spec = eval::load_sweep((dir / "recipe.toml").string());
  ASSERT_EQ(spec.configs.size(), 1u);
  const eval::SamplerSpec& c = spec.configs[0];
  EXPECT_EQ(c.canonical(), "mode=DDPM;respacing=250;variance=learned-range;cfg=1.5;cfg_channels=3");
  EXPECT_EQ(c.label(), "DDPM 250 learned-range cfg 1.5");
  EXPECT_EQ(c.nfe_estimate(), 250);
  EXPECT_EQ(c.id(), "eea927740bda");
  EXPECT_EQ(spec.samples, 50000);
  EXPECT_EQ(spec.model, "dit:DiT-XL/2");
  EXPECT_EQ(spec.image_size, 256);
  EXPECT_EQ(c.config.discrete.clip_denoised, false);
  EXPECT_EQ(c.config.guidance.channels, samplers::CfgChannels::kFirst3);
  // a DDIM spec: eta joins the canonical text, clip only when set
  eval::SamplerSpec ddim = eval::default_sampler_spec(samplers::SamplerFamily::kDdim);
  eval::set_sampler_field(ddim, "respacing", "ddim050");
  EXPECT_EQ(ddim.canonical(), "mode=DDIM;respacing=ddim50;eta=0.0;cfg=1.0");
  eval::set_sampler_field(ddim, "clip_denoised", "True");
  EXPECT_EQ(ddim.label(), "DDIM ddim50 clip true");
  test::expect_error([&] { eval::set_sampler_field(ddim, "clip_denoised", "yes"); },
                     {"'clip_denoised': expected true or false, got 'yes'"});
  test::expect_error([&] { eval::set_sampler_field(ddim, "eta", "-1"); },
                     {"'eta': expected a number >= 0, got -1"});
  eval::set_sampler_field(ddim, "eta", "-0.0");  // -0 is 0: one configuration
  EXPECT_EQ(ddim.value("eta"), "0.0");
}

// The SiT-XL/2 FID-50K recipes (configs/sit_xl2_{sde,ode}_fid50k.toml) run their published
// presets unchanged: one configuration each, the preset's fingerprint (so `report --baseline
// sit-paper` matches them), 50,000 samples, 250 NFE, the download paths of README
// "Reproducing published numbers".
TEST(Tables, SitRecipesRunThePublishedPresetsUnchanged) {
  struct Want {
    const char* file;
    const char* protocol;
    const char* label;
  };
  for (const Want& w : {Want{"sit_xl2_sde_fid50k.toml", "sit-sde",
                             "SDE Linear/velocity Euler 250 sigma cfg 1.5"},
                        Want{"sit_xl2_ode_fid50k.toml", "sit-ode-heun",
                             "ODE Linear/velocity heun2 126 cfg 1.5"}}) {
    std::string text = test::slurp(std::string(SIT_SOURCE_DIR) + "/configs/" + w.file);
    const size_t at = text.find("device = \"cuda\"");
    ASSERT_NE(at, std::string::npos) << w.file;
    text.replace(at, 15, "device = \"cpu\"");  // this build may be CPU-only
    const auto dir = test::temp_dir("sit_recipe");
    std::ofstream(dir / w.file) << text;
    const auto spec = eval::load_sweep((dir / w.file).string());
    ASSERT_EQ(spec.configs.size(), 1u) << w.file;
    const eval::SamplerSpec& c = spec.configs[0];
    EXPECT_EQ(c.label(), w.label);
    EXPECT_EQ(c.nfe_estimate(), 250);
    EXPECT_EQ(spec.protocol, w.protocol);
    EXPECT_EQ(spec.samples, 50000);
    EXPECT_EQ(spec.model, "sit:SiT-XL/2");
    EXPECT_EQ(spec.image_size, 256);
    EXPECT_EQ(spec.ckpt, "pretrained_models/SiT-XL-2-256.pt");
    EXPECT_EQ(spec.reference, "VIRTUAL_imagenet256_labeled.npz");
    const eval::Protocol& p = eval::find_protocol(w.protocol);
    const eval::ProtocolRun run{&p, c, spec.samples, spec.quantization};
    const eval::ProtocolRun preset{&p, eval::protocol_spec(p), p.num_samples, p.quantization};
    EXPECT_EQ(run.overrides(), "") << w.file;
    EXPECT_EQ(run.fingerprint(), preset.fingerprint()) << w.file;
  }
}

// Protocol presets (eval/protocols.h, protocols.md): each resolves to the published
// settings and NFE; the fingerprints of the presets as published are pinned (a change of
// any preset setting must be deliberate); an override is named and moves the fingerprint.
TEST(Protocols, PresetsResolveToThePublishedSettings) {
  struct Want {
    const char* name;
    int64_t nfe;
    const char* label;
  };
  const Want want[] = {
      {"sit-sde", 250, "SDE Linear/velocity Euler 250 sigma cfg 1.5"},
      {"sit-ode-heun", 250, "ODE Linear/velocity heun2 126 cfg 1.5"},
      {"dit-ddpm", 250, "DDPM 250 learned-range cfg 1.5"},
      {"repa-sde", 250,
       "SDE Linear/velocity Euler 250 sigma cfg 1.8 cfg_channels all guidance_interval 0.3,1.0"},
      {"repa-ode", 50, "ODE Linear/velocity euler 51 cfg 1.5 cfg_channels all"},
      {"lightningdit", 249, "ODE Linear/velocity euler 250 shift 0.3 cfg 6.7 cfg_start 0.125"},
      {"lightningdit-64ep", 249, "ODE Linear/velocity euler 250 shift 0.3 cfg 10.0 cfg_start 0.1"}};
  ASSERT_EQ(eval::protocols().size(), std::size(want));
  std::set<std::string> fingerprints;
  for (const Want& w : want) {
    const eval::Protocol& p = eval::find_protocol(w.name);
    const eval::SamplerSpec s = eval::protocol_spec(p);
    EXPECT_EQ(s.nfe_estimate(), w.nfe) << w.name;
    EXPECT_EQ(s.label(), w.label) << w.name;
    eval::ProtocolRun run{&p, s, p.num_samples, p.quantization};
    EXPECT_EQ(run.overrides(), "") << w.name;
    EXPECT_EQ(run.fingerprint().size(), 12u);
    fingerprints.insert(run.fingerprint());
    EXPECT_EQ(p.num_samples, 50000);
  }
  EXPECT_EQ(fingerprints.size(), std::size(want));
  // pinned: the presets as published
  const eval::Protocol& sde = eval::find_protocol("SIT-SDE");
  eval::ProtocolRun run{&sde, eval::protocol_spec(sde), 50000, "dit"};
  EXPECT_EQ(run.fingerprint(), "ce09840c48ab");
  const eval::Protocol& repa = eval::find_protocol("repa-sde");
  EXPECT_EQ((eval::ProtocolRun{&repa, eval::protocol_spec(repa), 50000, "repa"}.fingerprint()),
            "c999d9081323");
  // overrides are named and move the fingerprint
  eval::SamplerSpec changed = eval::protocol_spec(sde);
  eval::set_sampler_field(changed, "cfg_scale", "2.0");
  eval::ProtocolRun other{&sde, changed, 1000, "repa"};
  EXPECT_EQ(other.overrides(), "cfg_scale 1.5 -> 2.0, samples 50000 -> 1000, quantization dit -> repa");
  EXPECT_NE(other.fingerprint(), run.fingerprint());
  eval::SamplerSpec ode = eval::default_sampler_spec(samplers::SamplerFamily::kOde);
  EXPECT_EQ((eval::ProtocolRun{&sde, ode, 50000, "dit"}.overrides().rfind("mode SDE -> ODE", 0)),
            0u);
  sit::test::expect_error([] { eval::find_protocol("sit-dde"); },
                          {"unknown protocol 'sit-dde'", "sit-sde, sit-ode-heun, dit-ddpm"});
}
