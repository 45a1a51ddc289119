#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <numeric>

#include "models/gmm.h"
#include "samplers/sampler.h"
#include "test_util.h"
#include "torch_test_util.h"

using namespace sit;
using namespace sit::samplers;

namespace {

using sit::testing::iota_ids;
using sit::testing::max_abs;

constexpr double kPi = 3.14159265358979323846;
const PathType kPaths[] = {PathType::kLinear, PathType::kGVP, PathType::kVP};
const Prediction kPredictions[] = {Prediction::kVelocity, Prediction::kScore, Prediction::kNoise};

at::Tensor randn64(std::vector<int64_t> shape, uint64_t seed) {
  std::vector<int64_t> ids(static_cast<size_t>(shape[0]));
  std::iota(ids.begin(), ids.end(), 0);
  std::vector<int64_t> rest(shape.begin() + 1, shape.end());
  return per_sample_normal(seed, ids, 77, rest, at::TensorOptions().dtype(at::kDouble));
}

}  // namespace

TEST(Interpolant, LambdaClosedFormsAndDefinitionAgree) {
  EXPECT_NEAR(Interpolant(PathType::kLinear).lambda(0.25), 3.0, 1e-15);
  EXPECT_NEAR(Interpolant(PathType::kGVP).lambda(0.5), kPi / 2, 1e-14);
  EXPECT_NEAR(Interpolant(PathType::kVP).lambda(1.0), 0.05, 1e-15);
  EXPECT_NEAR(Interpolant(PathType::kVP).lambda(0.0), 10.0, 1e-14);
  for (PathType p : kPaths)
    for (double t : {0.05, 0.3, 0.5, 0.9, 0.99}) {
      const Interpolant path(p);
      const Coefficients c = path.at(t);
      const double by_definition = c.d_alpha / c.alpha * c.sigma * c.sigma - c.sigma * c.d_sigma;
      EXPECT_NEAR(path.lambda(t), by_definition, 1e-12 * std::abs(by_definition))
          << to_string(p) << " " << t;
      // derivatives by central differences
      const double h = 1e-6;
      EXPECT_NEAR(c.d_alpha, (path.at(t + h).alpha - path.at(t - h).alpha) / (2 * h), 1e-6);
      EXPECT_NEAR(c.d_sigma, (path.at(t + h).sigma - path.at(t - h).sigma) / (2 * h), 1e-5);
    }
  EXPECT_TRUE(std::isinf(Interpolant(PathType::kLinear).lambda(0.0)));
  EXPECT_EQ(Interpolant(PathType::kLinear).at(0.0).alpha, 0.0);
  EXPECT_NEAR(Interpolant(PathType::kVP).at(1.0).sigma, 0.0, 1e-15);
}

TEST(Conversions, RoundTripsInFloat64) {
  const at::Tensor x = randn64({5, 3}, 1), v = randn64({5, 3}, 2);
  for (PathType p : kPaths)
    for (double t : {0.1, 0.5, 0.8}) {
      const Interpolant path(p);
      const Coefficients c = path.at(t);
      const at::Tensor s = score_from_velocity(c, v, x);
      EXPECT_LT(max_abs(velocity_from_score(c, path.lambda(t), s, x) - v), 1e-12);
      const at::Tensor eps = noise_from_velocity(c, v, x);
      EXPECT_LT(max_abs(score_from_noise(c, eps) - s), 1e-12);
      EXPECT_LT(max_abs(noise_from_score(c, s) - eps), 1e-12);
      // x = alpha x1_hat + sigma eps_hat
      EXPECT_LT(max_abs(c.alpha * data_from_score(c, s, x) + c.sigma * eps - x), 1e-12);
    }
  // Linear + velocity closed forms
  const double t = 0.3;
  const Coefficients c = Interpolant(PathType::kLinear).at(t);
  EXPECT_LT(max_abs(score_from_velocity(c, v, x) - (t * v - x) / (1 - t)), 1e-13);
  EXPECT_LT(max_abs(noise_from_velocity(c, v, x) - (x - t * v)), 1e-13);
}

TEST(Diffusion, FormsAtKnownTimes) {
  const Interpolant lin(PathType::kLinear);
  DiffusionOptions o;
  o.norm = 2.0;
  auto d = [&](DiffusionForm f, double t) {
    o.form = f;
    return diffusion_coefficient(o, lin, t);
  };
  EXPECT_DOUBLE_EQ(d(DiffusionForm::kConstant, 0.3), 2.0);
  EXPECT_DOUBLE_EQ(d(DiffusionForm::kSBDM, 0.25), 6.0);
  EXPECT_DOUBLE_EQ(d(DiffusionForm::kSigma, 0.25), 1.5);
  EXPECT_DOUBLE_EQ(d(DiffusionForm::kLinear, 0.25), 1.5);
  EXPECT_NEAR(d(DiffusionForm::kDecreasing, 0.0), 0.25 * 9, 1e-15);  // norm inside the square
  EXPECT_NEAR(d(DiffusionForm::kIncreasingDecreasing, 0.5), 2.0, 1e-15);
  EXPECT_EQ(parse_diffusion_form("sin2"), DiffusionForm::kIncreasingDecreasing);
  EXPECT_EQ(parse_diffusion_form("inccreasing-decreasing"), DiffusionForm::kIncreasingDecreasing);
  sit::test::expect_error([] { parse_diffusion_form("cosine"); },
                          {"diffusion form must be one of constant, SBDM, sigma", "'cosine'"});
  // w^{KL,eta}: eta = 0 gives w^KL, i.e. D = lambda (the SBDM form with norm 1).
  o.form = DiffusionForm::kKlEta;
  o.loss = LossTable({0.0, 1.0}, {2.0, 2.0});
  o.eta = 0.0;
  EXPECT_NEAR(diffusion_coefficient(o, lin, 0.25), 3.0, 1e-15);
  o.eta = 0.5;  // w = 6 * 2 / (2 + 2 * 0.5 * 36) = 12 / 38
  EXPECT_NEAR(diffusion_coefficient(o, lin, 0.25), 0.5 * 12.0 / 38.0, 1e-15);
}

TEST(Diffusion, LossTableFromCsvAndErrors) {
  const auto dir = sit::test::temp_dir();
  {
    std::ofstream(dir / "l.csv") << "t,L\n0,1\n0.5,3\n1,2\n";
    std::ofstream(dir / "bad.csv") << "t,L\n0,1\n0.5,oops\n";
    std::ofstream(dir / "order.csv") << "t,L\n0.5,1\n0.2,1\n";
  }
  const LossTable l = LossTable::from_csv((dir / "l.csv").string());
  EXPECT_DOUBLE_EQ(l.at(0.25), 2.0);
  EXPECT_DOUBLE_EQ(l.at(0.75), 2.5);
  sit::test::expect_error([&] { LossTable::from_csv((dir / "bad.csv").string()); },
                          {"bad.csv:3", "two numbers"});
  sit::test::expect_error([&] { LossTable::from_csv((dir / "order.csv").string()); },
                          {"order.csv", "increase strictly"});
}

TEST(Interval, ReferenceTableCaseByCase) {
  IntervalOptions ode;
  IntervalOptions sde;
  sde.family = SamplerFamily::kSde;  // last step Mean, h = 0.04
  auto iv = [](PathType p, Prediction m, IntervalOptions o) { return sampling_interval(p, m, o); };
  for (PathType p : {PathType::kLinear, PathType::kGVP}) {
    Interval r = iv(p, Prediction::kVelocity, ode);
    EXPECT_EQ(r.t0, 0.0);
    EXPECT_EQ(r.t1, 1.0);
    r = iv(p, Prediction::kVelocity, sde);
    EXPECT_EQ(r.t0, 0.0);
    EXPECT_DOUBLE_EQ(r.t1, 0.96);
    IntervalOptions sbdm = sde;
    sbdm.form = DiffusionForm::kSBDM;
    EXPECT_EQ(iv(p, Prediction::kVelocity, sbdm).t0, 0.0);  // eps is forced to 0
    for (Prediction m : {Prediction::kScore, Prediction::kNoise}) {
      r = iv(p, m, ode);
      EXPECT_DOUBLE_EQ(r.t0, 1e-3);
      EXPECT_DOUBLE_EQ(r.t1, 1 - 1e-3);
      r = iv(p, m, sde);
      EXPECT_DOUBLE_EQ(r.t0, 1e-3);
      EXPECT_DOUBLE_EQ(r.t1, 0.96);
      IntervalOptions none = sde;
      none.last_step = LastStep::kNone;
      EXPECT_DOUBLE_EQ(iv(p, m, none).t1, 1 - 1e-3);
    }
  }
  for (Prediction m : kPredictions) {
    Interval r = iv(PathType::kVP, m, ode);
    EXPECT_EQ(r.t0, 0.0);
    EXPECT_DOUBLE_EQ(r.t1, 1 - 1e-3);
    r = iv(PathType::kVP, m, sde);
    EXPECT_EQ(r.t0, 0.0);
    EXPECT_DOUBLE_EQ(r.t1, 0.96);
  }
  IntervalOptions over = ode;
  over.t0 = 0.2;
  over.t1 = 0.7;
  EXPECT_DOUBLE_EQ(iv(PathType::kLinear, Prediction::kVelocity, over).t0, 0.2);
  over.t0 = 0.8;
  sit::test::expect_error([&] { iv(PathType::kLinear, Prediction::kVelocity, over); },
                          {"0 <= t0 < t1 <= 1", "t0 = 0.8"});
}

TEST(Sampler, RefusesInfiniteCoefficientsNamingTheFix) {
  const auto gmm = models::GaussianMixture::preset("mix1d");
  SamplerConfig cfg;
  cfg.family = SamplerFamily::kSde;
  cfg.num_steps = 20;
  cfg.sde_options.diffusion.form = DiffusionForm::kSBDM;  // lambda(0) = inf on Linear
  const at::Tensor x0 = randn64({4, 1}, 3), y = at::zeros({4}, at::kLong);
  const auto model = gmm.model_fn(Prediction::kVelocity, PathType::kLinear);
  sit::test::expect_error([&] { sample(model, cfg, x0, y, iota_ids(4), 0); },
                          {"SBDM", "infinite at t = 0", "--t0"});
  cfg.interval.t0 = 1e-3;  // the fix
  EXPECT_TRUE(at::isfinite(sample(model, cfg, x0, y, iota_ids(4), 0).x).all().item<bool>());
  // Heun SDE with no last step reaches t = 1, where the score of a velocity model is 0 * inf.
  SamplerConfig heun;
  heun.family = SamplerFamily::kSde;
  heun.num_steps = 20;
  heun.sde_options.method = SdeMethod::kHeun;
  heun.sde_options.last_step = LastStep::kNone;
  sit::test::expect_error([&] { sample(model, heun, x0, y, iota_ids(4), 0); },
                          {"score from the velocity prediction", "t = 1", "--t1"});
  // A score model's ODE at t = 0 (explicit override) needs d_alpha / alpha = inf.
  SamplerConfig ode;
  ode.path = PathType::kGVP;
  ode.prediction = Prediction::kScore;
  ode.ode.method = OdeMethod::kEuler;
  ode.interval.t0 = 0.0;
  ode.interval.sample_eps = 0.0;
  sit::test::expect_error(
      [&] { sample(gmm.model_fn(Prediction::kScore, PathType::kGVP), ode, x0, y, iota_ids(4), 0); },
      {"not finite at t = 0", "GVP score model"});
}

TEST(Sampler, NonFiniteSamplesAreReportedById) {
  SamplerConfig cfg;
  cfg.ode.method = OdeMethod::kEuler;
  cfg.num_steps = 3;
  auto model = [](const at::Tensor& x, const at::Tensor&, const at::Tensor&) {
    at::Tensor v = at::zeros_like(x);
    v[2] = std::numeric_limits<double>::quiet_NaN();
    return v;
  };
  const std::vector<int64_t> ids = {10, 11, 12, 13};
  sit::test::expect_error(
      [&] {
        sample(model, cfg, randn64({4, 2}, 4), at::zeros({4}, at::kLong), ids, 0);
      },
      {"non-finite values for 1 of 4 samples", "sample ids 12"});
}

TEST(Ode, ConvergenceOrderOfFixedStepMethods) {
  // dx/dt = cos(t) x has x(t) = x0 exp(sin t - sin t0).
  const DriftFn f = [](const at::Tensor& x, double t) { return std::cos(t) * x; };
  const at::Tensor x0 = at::ones({1}, at::kDouble);
  const double exact = std::exp(std::sin(1.0));
  const std::pair<OdeMethod, double> orders[] = {{OdeMethod::kEuler, 1},
                                                 {OdeMethod::kMidpoint, 2},
                                                 {OdeMethod::kHeun2, 2},
                                                 {OdeMethod::kRk4, 4}};
  for (auto [method, order] : orders) {
    OdeOptions o;
    o.method = method;
    std::vector<double> errors;
    for (int64_t n : {20, 40}) {
      std::vector<double> grid(n + 1);
      for (int64_t i = 0; i <= n; ++i)
        grid[i] = static_cast<double>(i) / n;
      OdeStats stats;
      const double x1 = integrate_ode(f, x0, grid, o, &stats).item<double>();
      errors.push_back(std::abs(x1 - exact));
      EXPECT_EQ(stats.evaluations, fixed_step_evaluations(method, n + 1));
    }
    const double observed = std::log2(errors[0] / errors[1]);
    EXPECT_NEAR(observed, order, 0.15) << to_string(method);
  }
}

// LightningDiT's time shift (spec protocols.md 4.1): the float32 grid of the reference
// (torch tensor ops with Python-float scalars), its worked step sizes at s = 0.3, and the
// fixed-step methods keep their order on the shifted (non-uniform) grid.
TEST(Ode, TimeShiftedGridAsLightningDiT) {
  const std::vector<double> u = linspace_grid(0.0, 1.0, 250);
  const std::vector<double> t = time_shifted_grid(u, 0.3);
  const at::Tensor lin = at::linspace(0.0, 1.0, 250, at::kFloat);
  const at::Tensor ref = (lin * 0.3) / ((lin * (0.3 - 1.0)) + 1.0);  // float32 as torch
  for (int64_t i = 0; i < 250; ++i)
    EXPECT_EQ(t[i], static_cast<double>(ref[i].item<float>())) << i;
  EXPECT_EQ(t.front(), 0.0);
  EXPECT_EQ(t.back(), 1.0);
  EXPECT_NEAR(t[1] - t[0], 0.00120822, 1e-8);    // dense near noise
  EXPECT_NEAR(t[249] - t[248], 0.0132626, 1e-7);
  EXPECT_EQ(time_shifted_grid(u, 1.0), u);
  sit::test::expect_error([&] { time_shifted_grid(u, 0.0); }, {"time shift must be > 0", "got 0"});
  sit::test::expect_error([&] { time_shifted_grid(u, -2.0); }, {"got -2"});

  // dx/dt = x (x(1) = e): its leading error terms do not cancel on this grid (for
  // cos(t) x they nearly do, and Euler's error ratio then reads 1.89)
  const DriftFn f = [](const at::Tensor& x, double) { return x; };
  const at::Tensor x0 = at::ones({1}, at::kDouble);
  const double exact = std::exp(1.0);
  for (auto [method, order] : {std::pair<OdeMethod, double>{OdeMethod::kEuler, 1},
                               {OdeMethod::kHeun2, 2},
                               {OdeMethod::kRk4, 4}}) {
    OdeOptions o;
    o.method = method;
    std::vector<double> errors;
    for (int64_t n : {40, 80}) {
      std::vector<double> grid(n + 1);
      for (int64_t i = 0; i <= n; ++i)
        grid[i] = static_cast<double>(i) / n;
      // the shift in double here: the order, not the float32 rounding, is under test
      for (double& g : grid)
        g = 0.3 * g / (1 + (0.3 - 1) * g);
      OdeStats stats;
      errors.push_back(std::abs(integrate_ode(f, x0, grid, o, &stats).item<double>() - exact));
    }
    EXPECT_NEAR(std::log2(errors[0] / errors[1]), order, 0.15) << to_string(method);
  }
}

// sample() steps on the shifted grid: Euler on v = x multiplies by (1 + h_i) per step.
TEST(Sampler, TimeShiftMovesTheGridPoints) {
  SamplerConfig cfg;
  cfg.ode.method = OdeMethod::kEuler;
  cfg.num_steps = 6;
  cfg.time_shift = 0.3;
  auto model = [](const at::Tensor& x, const at::Tensor&, const at::Tensor&) { return x.clone(); };
  const at::Tensor x0 = at::ones({2, 1}, at::kDouble);
  const auto r = sample(model, cfg, x0, at::zeros({2}, at::kLong), iota_ids(2), 0);
  const auto grid = time_shifted_grid(linspace_grid(r.interval.t0, r.interval.t1, 6), 0.3);
  double want = 1.0;
  for (size_t i = 0; i + 1 < grid.size(); ++i)
    want *= 1.0 + (grid[i + 1] - grid[i]);
  EXPECT_NEAR(r.x[0][0].item<double>(), want, 1e-12);
  cfg.time_shift = 1.0;
  EXPECT_GT(std::abs(sample(model, cfg, x0, at::zeros({2}, at::kLong), iota_ids(2), 0)
                         .x[0][0].item<double>() - want),
            1e-3);
}

TEST(Ode, Dopri5MeetsToleranceWithTorchdiffeqNfe) {
  const DriftFn f = [](const at::Tensor& x, double t) { return std::cos(5 * t) * x; };
  const at::Tensor x0 = at::full({3}, 1.0, at::kDouble);
  for (double rtol : {1e-3, 1e-6, 1e-9}) {
    OdeOptions o;
    o.atol = rtol * 1e-3;
    o.rtol = rtol;
    OdeStats s;
    const at::Tensor x1 = integrate_ode(f, x0, {0.0, 1.0}, o, &s);
    const double exact = std::exp(std::sin(5.0) / 5);
    EXPECT_LT(std::abs(x1[0].item<double>() - exact), 50 * rtol * exact) << rtol;
    EXPECT_EQ(s.evaluations, 2 + 6 * (s.accepted + s.rejected));
    EXPECT_GT(s.accepted, 0);
  }
}

TEST(Ode, GaussianToGaussianFlowIsTheKnownAffineMap) {
  // Target N(m, s^2): the probability-flow ODE is affine in x, mapping x_t0 to
  // alpha_t1 m + std_t1 (x_t0 - alpha_t0 m) / std_t0, std_t^2 = alpha_t^2 s^2 + sigma_t^2
  // (x_0 = m + s x0 at t1 = 1 for Linear/GVP). VP keeps its reference interval
  // [0, 1 - 1e-3] and fixed steps: dopri5's last step may overshoot past t = 1, where VP
  // has no real sigma.
  const double m = 0.7, sd = 0.4;
  const models::GaussianMixture g("gauss", {{1.0, {m}, {sd}, -1}});
  const at::Tensor x0 = randn64({16, 1}, 5);
  for (PathType p : kPaths) {
    SamplerConfig cfg;
    cfg.path = p;
    cfg.ode.rtol = 1e-9;
    cfg.ode.atol = 1e-11;
    cfg.num_steps = 2;
    if (p == PathType::kVP) {  // fixed steps: no overshoot past t = 1
      cfg.ode.method = OdeMethod::kRk4;
      cfg.num_steps = 2001;
    }
    const auto r = sample(g.model_fn(Prediction::kVelocity, p), cfg, x0, at::zeros({16}, at::kLong),
                          iota_ids(16), 0);
    const Interpolant path(p);
    auto std_at = [&](const Coefficients& c) {
      return std::sqrt(c.alpha * c.alpha * sd * sd + c.sigma * c.sigma);
    };
    const Coefficients c0 = path.at(r.interval.t0), c1 = path.at(r.interval.t1);
    const at::Tensor expected = c1.alpha * m + std_at(c1) * (x0 - c0.alpha * m) / std_at(c0);
    EXPECT_LT(max_abs(r.x - expected), p == PathType::kVP ? 1e-6 : 1e-7)
        << to_string(p) << " nfe " << r.nfe[0];
    if (p != PathType::kVP) {
      EXPECT_EQ(r.interval.t1, 1.0);
    }
  }
}

TEST(Sde, MomentsOfGaussianAndMixTargetsForEveryPathPredictionAndForm) {
  const models::GaussianMixture gauss("gauss", {{1.0, {0.5}, {0.7}, -1}});
  const auto mix = models::GaussianMixture::preset("mix1d");
  const int64_t n = 3000;
  const at::Tensor y = at::zeros({n}, at::kLong);
  const DiffusionForm forms[] = {DiffusionForm::kConstant,   DiffusionForm::kSBDM,
                                 DiffusionForm::kSigma,      DiffusionForm::kLinear,
                                 DiffusionForm::kDecreasing, DiffusionForm::kIncreasingDecreasing};
  int checked = 0;
  for (const models::GaussianMixture* g : {&gauss, &mix}) {
    const double m = g->target_mean().item<double>();
    const double var = g->target_covariance()[0][0].item<double>();
    for (PathType p : kPaths)
      for (Prediction pred : kPredictions)
        for (DiffusionForm form : forms) {
          SamplerConfig cfg;
          cfg.path = p;
          cfg.prediction = pred;
          cfg.family = SamplerFamily::kSde;
          cfg.num_steps = 250;
          cfg.sde_options.diffusion.form = form;
          if (form == DiffusionForm::kSBDM && p != PathType::kVP) cfg.interval.t0 = 1e-3;
          const at::Tensor x0 = per_sample_normal(1, iota_ids(n), kStreamInit, {1}, at::kDouble);
          const auto r = sample(g->model_fn(pred, p), cfg, x0, y, iota_ids(n), 1);
          const double mean = r.x.mean().item<double>(), v = r.x.var().item<double>();
          // 5 standard errors plus the discretisation and last-step bias (h = 0.04).
          EXPECT_NEAR(mean, m, 5 * std::sqrt(var / n) + 0.03)
              << g->name() << " " << to_string(p) << " " << to_string(pred) << " "
              << to_string(form);
          EXPECT_NEAR(v, var, var * (5 * std::sqrt(2.0 / n) + 0.06))
              << g->name() << " " << to_string(p) << " " << to_string(pred) << " "
              << to_string(form);
          EXPECT_EQ(r.nfe[0], 250);  // 249 steps + the Mean last step, as the reference
          ++checked;
        }
  }
  EXPECT_EQ(checked, 2 * 9 * 6);
}

TEST(Guidance, ThreeChannelModeMatchesReferenceAndScaleOneIsUnguided) {
  // Toy 4-channel model: output = label-dependent constant per channel.
  std::vector<int64_t> batch_sizes;
  auto model = [&](const at::Tensor& x, const at::Tensor&, const at::Tensor& y) {
    batch_sizes.push_back(x.size(0));
    const at::Tensor cond = (y != 1000).to(at::kDouble).view({-1, 1});
    return at::ones_like(x) * (1.0 + 2.0 * cond) + 0.1 * x;  // c = 3 + 0.1x, u = 1 + 0.1x
  };
  GuidanceOptions g;
  g.scale = 4.0;
  const at::Tensor x = randn64({3, 4}, 6);
  const at::Tensor y2 = at::cat({at::zeros({3}, at::kLong), at::full({3}, 1000, at::kLong)});
  const at::Tensor xx = at::cat({x, x + 100});  // the second half is ignored
  const at::Tensor out = guided_model(model, g)(xx, at::zeros({6}, at::kDouble), y2);
  const at::Tensor guided = 1 + 0.1 * x + 4.0 * 2.0;
  EXPECT_LT(max_abs(out.narrow(0, 0, 3).narrow(1, 0, 3) - guided.narrow(1, 0, 3)), 1e-12);
  EXPECT_LT(max_abs(out.narrow(0, 3, 3).narrow(1, 0, 3) - guided.narrow(1, 0, 3)), 1e-12);
  EXPECT_LT(max_abs(out.narrow(0, 0, 3).select(1, 3) - (3 + 0.1 * x.select(1, 3))), 1e-12);
  EXPECT_LT(max_abs(out.narrow(0, 3, 3).select(1, 3) - (1 + 0.1 * x.select(1, 3))), 1e-12);
  g.channels = CfgChannels::kAll;
  const at::Tensor all = guided_model(model, g)(xx, at::zeros({6}, at::kDouble), y2);
  EXPECT_LT(max_abs(all.narrow(0, 0, 3) - guided), 1e-12);

  // scale 1: no doubled batch, identical to the unguided model; NFE counts a pair once.
  SamplerConfig cfg;
  cfg.ode.method = OdeMethod::kHeun2;
  cfg.num_steps = 6;
  batch_sizes.clear();
  const auto r1 = sample(model, cfg, x, at::zeros({3}, at::kLong), iota_ids(3), 0);
  EXPECT_EQ(batch_sizes, std::vector<int64_t>(10, 3));
  cfg.guidance.scale = 1.5;
  batch_sizes.clear();
  const auto r2 = sample(model, cfg, x, at::zeros({3}, at::kLong), iota_ids(3), 0);
  EXPECT_EQ(batch_sizes, std::vector<int64_t>(10, 6));
  EXPECT_EQ(r2.nfe[0], 10);
  EXPECT_EQ(r2.network_calls, 10);
}

TEST(Sampler, SamplesDoNotDependOnBatchSize) {
  const auto gmm = models::GaussianMixture::preset("demo");
  const int64_t n = 64;
  const auto ids = iota_ids(n);
  const at::Tensor y = per_sample_labels(9, ids, gmm.num_classes());
  const at::Tensor x0 = per_sample_normal(9, ids, kStreamInit, {gmm.dim()}, at::kFloat);
  // every fixed-step ODE method and both SDE methods (README: "Batch invariance")
  const std::pair<bool, int> methods[] = {
      {false, static_cast<int>(OdeMethod::kEuler)}, {false, static_cast<int>(OdeMethod::kMidpoint)},
      {false, static_cast<int>(OdeMethod::kHeun2)}, {false, static_cast<int>(OdeMethod::kRk4)},
      {true, static_cast<int>(SdeMethod::kEulerMaruyama)}, {true, static_cast<int>(SdeMethod::kHeun)}};
  for (const auto& [sde, method] : methods) {
    SamplerConfig cfg;
    cfg.family = sde ? SamplerFamily::kSde : SamplerFamily::kOde;
    cfg.num_steps = 30;
    if (sde)
      cfg.sde_options.method = static_cast<SdeMethod>(method);
    else
      cfg.ode.method = static_cast<OdeMethod>(method);
    cfg.guidance.scale = 2.0;
    cfg.guidance.null_class = gmm.null_class();
    cfg.guidance.channels = CfgChannels::kAll;
    const auto model = gmm.model_fn(Prediction::kVelocity, PathType::kLinear);
    const at::Tensor whole = sample(model, cfg, x0, y, ids, 9).x;
    for (int64_t b : {1, 7}) {
      std::vector<at::Tensor> parts;
      for (int64_t s = 0; s < n; s += b) {
        const int64_t m = std::min(b, n - s);
        std::vector<int64_t> sub(ids.begin() + s, ids.begin() + s + m);
        parts.push_back(sample(model, cfg, x0.narrow(0, s, m), y.narrow(0, s, m), sub, 9).x);
      }
      EXPECT_TRUE(at::equal(at::cat(parts), whole))
          << "sde " << sde << " method " << method << " batch " << b;
    }
  }
  // dopri5 with the per-sample error norm is batch-invariant too.
  SamplerConfig d;
  d.error_norm = ErrorNorm::kPerSample;
  d.num_steps = 2;
  const auto model = gmm.model_fn(Prediction::kVelocity, PathType::kGVP);
  const auto whole = sample(model, d, x0.narrow(0, 0, 8), y.narrow(0, 0, 8), iota_ids(8), 0);
  const auto one = sample(model, d, x0.narrow(0, 3, 1), y.narrow(0, 3, 1), {3}, 0);
  EXPECT_TRUE(at::equal(whole.x.narrow(0, 3, 1), one.x));
  EXPECT_EQ(whole.nfe[3], one.nfe[0]);
}

TEST(Gmm, PredictionTypesAreConsistentAndMomentsExact) {
  const auto gmm = models::GaussianMixture::preset("demo");
  const at::Tensor x = randn64({6, gmm.dim()}, 8);
  const at::Tensor y = at::tensor({0, 3, 9, 10, 10, 2}, at::kLong);  // 10 = null: full mixture
  for (PathType p : kPaths) {
    const Interpolant path(p);
    for (double t : {0.2, 0.6, 0.95}) {
      const at::Tensor tt = at::full({6}, t, at::kDouble);
      const at::Tensor v = gmm.predict(Prediction::kVelocity, path, x, tt, y);
      const at::Tensor s = gmm.predict(Prediction::kScore, path, x, tt, y);
      const at::Tensor e = gmm.predict(Prediction::kNoise, path, x, tt, y);
      const Coefficients c = path.at(t);
      EXPECT_LT(max_abs(velocity_from_score(c, path.lambda(t), s, x) - v), 1e-9);
      EXPECT_LT(max_abs(score_from_noise(c, e) - s), 1e-9);
    }
  }
  // Exact target samples have the exact moments (class 3).
  const int64_t n = 20000;
  const auto ids = iota_ids(n);
  const at::Tensor samples = gmm.sample_target(2, ids, at::full({n}, 3, at::kLong));
  EXPECT_LT(max_abs(samples.mean(0) - gmm.target_mean(3)), 0.05);
  EXPECT_LT(max_abs(at::cov(samples.t()) - gmm.target_covariance(3)), 0.1);
  // bernoulli1d: atoms at -1 and +1 only
  const auto b = models::GaussianMixture::preset("bernoulli1d");
  const at::Tensor atoms = b.sample_target(0, iota_ids(100), at::zeros({100}, at::kLong));
  EXPECT_TRUE(at::equal(atoms.abs(), at::ones_like(atoms)));
}

TEST(Gmm, TomlDefinitionsAndErrorsWithLines) {
  const auto dir = sit::test::temp_dir();
  std::ofstream(dir / "ok.toml") << "dim = 2\nnum_classes = 2\n[[component]]\nweight = 1\n"
                                    "mean = [0.0, 1.0]\nstd = 0.5\nclass = 0\n[[component]]\n"
                                    "mean = [2, 2]\nstd = [0.1, 0.2]\nclass = 1\n";
  std::ofstream(dir / "key.toml") << "dim = 1\n[[component]]\nmean = [0]\ncolour = 3\n";
  std::ofstream(dir / "len.toml") << "dim = 2\n[[component]]\nmean = [0, 1, 2]\n";
  const auto g = models::GaussianMixture::from_spec("gmm:" + (dir / "ok.toml").string());
  EXPECT_EQ(g.dim(), 2);
  EXPECT_EQ(g.num_classes(), 2);
  EXPECT_NEAR(g.target_mean(1)[1].item<double>(), 2.0, 1e-15);
  sit::test::expect_error([&] { models::GaussianMixture::from_toml((dir / "key.toml").string()); },
                          {"key.toml:4", "unknown key 'colour'"});
  sit::test::expect_error([&] { models::GaussianMixture::from_toml((dir / "len.toml").string()); },
                          {"len.toml:3", "'mean' has 3 values, expected dim = 2"});
  sit::test::expect_error([] { models::GaussianMixture::from_spec("sit:SiT-XL/2"); },
                          {"--model must be gmm:PRESET or gmm:FILE.toml"});
  sit::test::expect_error([] { models::GaussianMixture::preset("mix2d"); },
                          {"bernoulli1d, mix1d, demo", "'mix2d'"});
  // sizes checked before anything is allocated or looped over (issue 18: resource limits)
  std::ofstream(dir / "huge_dim.toml") << "dim = 1000000000000\n[[component]]\nmean = 0.0\n";
  sit::test::expect_error(
      [&] { models::GaussianMixture::from_toml((dir / "huge_dim.toml").string()); },
      {"huge_dim.toml", "'dim' must be an integer in [1, 1048576]"});
  std::ofstream(dir / "classes.toml")
      << "dim = 1\nnum_classes = 1000000000000000000\n[[component]]\nmean = 0.0\nclass = 0\n";
  sit::test::expect_error(
      [&] { models::GaussianMixture::from_toml((dir / "classes.toml").string()); },
      {"classes.toml", "class 1 has no component (num_classes = 1000000000000000000"});
  // fuzz_mixture's input: toml++ asserts on it in debug builds; ours define NDEBUG
  std::ofstream(dir / "brackets.toml") << "name = \"one\"\ndim = 1\n[[[com3\nmean = class[1.0]\n";
  sit::test::expect_error(
      [&] { models::GaussianMixture::from_toml((dir / "brackets.toml").string()); },
      {"brackets.toml:3", "Error while parsing key"});
  std::ofstream(dir / "uni.toml") << "\xef\xb1\xbf";  // U+FC7F (fuzz_mixture's second input)
  sit::test::expect_error([&] { models::GaussianMixture::from_toml((dir / "uni.toml").string()); },
                          {"uni.toml:1", "Error while parsing"});
  std::ofstream(dir / "nan.toml") << "dim = 1\n[[component]]\nmean = [nan]\n";
  sit::test::expect_error([&] { models::GaussianMixture::from_toml((dir / "nan.toml").string()); },
                          {"nan.toml:3", "'mean' must hold finite numbers"});
  std::ofstream(dir / "std.toml") << "dim = 1\n[[component]]\nmean = 0.0\nstd = -1.0\n";
  sit::test::expect_error([&] { models::GaussianMixture::from_toml((dir / "std.toml").string()); },
                          {"std.toml", "'std' must be >= 0, got -1"});
}
