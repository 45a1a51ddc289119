// Paired bootstrap of Frechet distances: zero for identical sides, determinism, weighted
// statistics against copies of the resampled rows, and coverage of the true difference
// on a closed-form Gaussian case.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <random>

#include "common/error.h"
#include "metrics/bootstrap.h"
#include "metrics/frechet.h"
#include "metrics/inception_score.h"
#include "metrics/kid.h"
#include "metrics/precision_recall.h"

using namespace sit::metrics;

namespace {

std::vector<float> gaussian_rows(int64_t n, int64_t d, uint64_t seed, float shift = 0) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> z;
  std::vector<float> x(static_cast<size_t>(n * d));
  for (auto& v : x)
    v = static_cast<float>(z(rng)) + shift;
  return x;
}

FeatureStats standard_normal(int64_t d) {
  FeatureStats s;
  s.mu = Eigen::VectorXd::Zero(d);
  s.sigma = Eigen::MatrixXd::Identity(d, d);
  return s;
}

/// FD(B) - FD(A) as compare computes it: one weight set, the reference factored once.
PairedDifference paired_bootstrap_fd(const FeatureView& a, const FeatureView& b,
                                     const FeatureStats& reference, const BootstrapOptions& o) {
  const auto w = bootstrap_weight_set(a.rows, o);
  const FrechetReference ref(reference);
  return paired_difference(resampled_fd(a, ref, w), resampled_fd(b, ref, w), o);
}

}  // namespace

TEST(Bootstrap, CountsAreAMultinomialResampleAndDeterministic) {
  const auto c = bootstrap_counts(1000, 7, 3);
  int64_t total = 0;
  for (int32_t v : c)
    total += v;
  EXPECT_EQ(total, 1000);
  EXPECT_EQ(c, bootstrap_counts(1000, 7, 3));
  EXPECT_NE(c, bootstrap_counts(1000, 7, 4));
  EXPECT_NE(c, bootstrap_counts(1000, 8, 3));
}

TEST(Bootstrap, WeightedStatsEqualStatsOfTheResampledCopy) {
  const int64_t n = 300, d = 5;
  const auto x = gaussian_rows(n, d, 1);
  const auto c = bootstrap_counts(n, 2, 0);
  std::vector<float> copy;
  for (int64_t i = 0; i < n; ++i)
    for (int32_t k = 0; k < c[i]; ++k)
      copy.insert(copy.end(), x.begin() + i * d, x.begin() + (i + 1) * d);
  const FeatureStats w = weighted_stats({x.data(), n, d}, c);
  const FeatureStats naive = compute_stats({copy.data(), n, d});
  EXPECT_LT((w.mu - naive.mu).cwiseAbs().maxCoeff(), 1e-12);
  EXPECT_LT((w.sigma - naive.sigma).cwiseAbs().maxCoeff(), 1e-12);
}

TEST(Bootstrap, IdenticalRunsDifferByExactlyZero) {
  const auto x = gaussian_rows(500, 4, 3);
  const FeatureView v{x.data(), 500, 4};
  const PairedDifference r = paired_bootstrap_fd(v, v, standard_normal(4), {50, 1, 0.95});
  EXPECT_EQ(r.diff, 0.0);
  EXPECT_EQ(r.lo, 0.0);
  EXPECT_EQ(r.hi, 0.0);
  EXPECT_FALSE(r.significant);
}

TEST(Bootstrap, FixedSeedGivesTheSameInterval) {
  const auto a = gaussian_rows(400, 3, 4), b = gaussian_rows(400, 3, 5, 0.1f);
  const FeatureView va{a.data(), 400, 3}, vb{b.data(), 400, 3};
  const auto r1 = paired_bootstrap_fd(va, vb, standard_normal(3), {40, 9, 0.9});
  const auto r2 = paired_bootstrap_fd(va, vb, standard_normal(3), {40, 9, 0.9});
  EXPECT_EQ(r1.replicates, r2.replicates);
  const auto r3 = paired_bootstrap_fd(va, vb, standard_normal(3), {40, 10, 0.9});
  EXPECT_NE(r1.replicates, r3.replicates);
}

TEST(Bootstrap, IntervalCoversTheTrueDifferenceAtTheNominalRate) {
  // A = z, B = z + delta with z ~ N(0, I) and the reference N(0, I): the covariances are
  // identical, so FD(B) - FD(A) = |delta|^2 + 2 delta . mean(z), whose expectation (the
  // true difference) is |delta|^2. Over 40 independent trials a 90 % interval should
  // miss about 4 times; P(more than 10 misses) < 0.2 % for a correct interval.
  const int64_t n = 400, d = 2;
  const double delta = 0.15, truth = d * delta * delta;
  int covered = 0;
  for (int trial = 0; trial < 40; ++trial) {
    const auto a = gaussian_rows(n, d, 100 + trial);
    std::vector<float> b = a;
    for (auto& v : b)
      v += static_cast<float>(delta);
    const auto r = paired_bootstrap_fd({a.data(), n, d}, {b.data(), n, d}, standard_normal(d),
                                       {200, static_cast<uint64_t>(trial), 0.9});
    covered += r.lo <= truth && truth <= r.hi;
  }
  EXPECT_GE(covered, 30);
  EXPECT_LE(covered, 40);
}

TEST(Bootstrap, BadInputsAreRefused) {
  const auto a = gaussian_rows(10, 2, 1), b = gaussian_rows(12, 2, 1);
  EXPECT_THROW(paired_bootstrap_fd({a.data(), 10, 2}, {b.data(), 12, 2}, standard_normal(2), {}),
               sit::Error);
  EXPECT_THROW(
      paired_bootstrap_fd({a.data(), 10, 2}, {a.data(), 10, 2}, standard_normal(2), {1, 0, 0.9}),
      sit::Error);
}

TEST(Bootstrap, PairedDifferenceOfPerSampleIndicators) {
  // precision-like: B adds one sample inside the manifold out of 10; a replicate's
  // difference is (draws of sample 1) / 10 >= 0
  const std::vector<double> a = {1, 0, 1, 1, 0, 1, 0, 1, 1, 1}, b = {1, 1, 1, 1, 0, 1, 0, 1, 1, 1};
  const BootstrapOptions o{200, 0, 0.95};
  const auto w = bootstrap_weight_set(10, o);
  auto means = [&](const std::vector<double>& v) {
    std::vector<double> out;
    for (const auto& c : w) {
      double s = 0;
      for (size_t i = 0; i < v.size(); ++i)
        s += c[i] * v[i];
      out.push_back(s / 10);
    }
    return out;
  };
  const PairedDifference same = paired_difference(means(a), means(a), o);
  EXPECT_EQ(same.lo, 0.0);
  EXPECT_EQ(same.hi, 0.0);
  const PairedDifference d = paired_difference(means(a), means(b), o);
  EXPECT_DOUBLE_EQ(d.a, 0.7);
  EXPECT_DOUBLE_EQ(d.b, 0.8);
  EXPECT_NEAR(d.diff, 0.1, 1e-15);
  EXPECT_GE(d.lo, 0.0);
  EXPECT_LE(d.hi, 0.4);
  EXPECT_TRUE(d.significant == (d.lo > 0));
}

TEST(Bootstrap, MismatchedInputsNameWhatDiffers) {
  auto message = [](const std::function<void()>& f) -> std::string {
    try {
      f();
    } catch (const sit::Error& e) {
      return e.what();
    }
    return "(no error)";
  };
  const BootstrapOptions o{3, 0, 0.95};
  EXPECT_NE(message([&] { paired_difference({1, 2, 3}, {1, 2, 3, 4}, o); })
                .find("expected 4 values per side, got 3 and 4"),
            std::string::npos);
  const auto x = gaussian_rows(20, 3, 1);
  const FeatureView v{x.data(), 20, 3};
  const std::vector<std::vector<int32_t>> short_w = {std::vector<int32_t>(19, 1)};
  EXPECT_NE(message([&] { resampled_kid(v, 0.0, v, short_w); }).find("19 weights for 20"),
            std::string::npos);
  EXPECT_NE(message([&] { resampled_inception_score(v, short_w); }).find("19 weights for 20"),
            std::string::npos);
  const std::vector<std::vector<int32_t>> one_draw = {std::vector<int32_t>(20, 0)};
  EXPECT_NE(message([&] { resampled_kid(v, 0.0, v, {{}}); }).find("0 weights for 20"),
            std::string::npos);
  std::vector<int32_t> single(20, 0);
  single[3] = 1;
  EXPECT_NE(message([&] { resampled_kid(v, 0.0, v, {single}); }).find("total weight 1 < 2"),
            std::string::npos);
  PrecisionRecallOptions pr;
  pr.mode = DistanceMode::kFp32;
  const auto radii = manifold_radii(v, pr);
  EXPECT_NE(message([&] { resampled_precision_recall(v, radii, v, one_draw, pr); })
                .find("draws no sample"),
            std::string::npos);
  EXPECT_NE(message([&] { resampled_precision_recall(v, {1.0f}, v, short_w, pr); })
                .find("1 reference radii for 20 reference rows"),
            std::string::npos);
  FeatureStats bad;
  bad.mu = Eigen::VectorXd::Zero(3);
  bad.sigma = Eigen::MatrixXd::Identity(3, 3);
  bad.sigma(1, 1) = std::numeric_limits<double>::infinity();
  EXPECT_NE(message([&] { FrechetReference r(bad); }).find("reference statistics must be finite"),
            std::string::npos);
}

// ---- weighted forms of the other metrics: each must equal the metric computed on a copy
// of the resampled rows

namespace {

/// Rows of x repeated by their counts (the resample a weight vector stands for).
std::vector<float> materialise(const std::vector<float>& x, int64_t d,
                               const std::vector<int32_t>& counts) {
  std::vector<float> out;
  for (size_t i = 0; i < counts.size(); ++i)
    for (int32_t k = 0; k < counts[i]; ++k)
      out.insert(out.end(), x.begin() + i * d, x.begin() + (i + 1) * d);
  return out;
}

/// The all-rows unbiased MMD^2 with the cubic kernel, directly from its definition.
double brute_force_kid(const std::vector<float>& x, int64_t n, const std::vector<float>& y,
                       int64_t m, int64_t d) {
  auto k = [&](const float* a, const float* b) {
    double dot = 0;
    for (int64_t j = 0; j < d; ++j)
      dot += static_cast<double>(a[j]) * b[j];
    const double v = dot / static_cast<double>(d) + 1;
    return v * v * v;
  };
  double xx = 0, yy = 0, xy = 0;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j)
      if (i != j) xx += k(&x[i * d], &x[j * d]);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < m; ++j)
      if (i != j) yy += k(&y[i * d], &y[j * d]);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < m; ++j)
      xy += k(&x[i * d], &y[j * d]);
  return xx / (n * (n - 1.0)) + yy / (m * (m - 1.0)) - 2 * xy / (static_cast<double>(n) * m);
}

}  // namespace

TEST(Bootstrap, ResampledInceptionScoreIsTheScoreOfTheResampledRows) {
  const int64_t n = 240, c = 12;
  const auto logits = gaussian_rows(n, c, 21);
  const FeatureView v{logits.data(), n, c};
  const auto w = bootstrap_weight_set(n, {3, 5, 0.95});
  // Several splits (100, 100, 40): all-ones weights give ADM's mean exactly.
  const auto split = resampled_inception_score(v, w, {100});
  EXPECT_EQ(split[0], inception_score(v, {100}).mean);
  // One split: a replicate is the plain score of its resampled rows.
  const auto one = resampled_inception_score(v, w, {n});
  for (size_t r = 1; r < w.size(); ++r) {
    const auto copy = materialise(logits, c, w[r]);
    EXPECT_NEAR(one[r], inception_score({copy.data(), n, c}, {n}).mean, 1e-12 * one[r]);
    EXPECT_NE(one[r], one[0]);
  }
}

TEST(Bootstrap, ResampledKidIsTheAllRowsUStatisticOfTheResampledRows) {
  const int64_t n = 90, m = 70, d = 6;
  const auto x = gaussian_rows(n, d, 31, 0.2f), y = gaussian_rows(m, d, 32);
  const FeatureView vx{x.data(), n, d}, vy{y.data(), m, d};
  const auto w = bootstrap_weight_set(n, {3, 6, 0.95});
  const double yy = kid_reference_term(vy, 16);
  const auto kid = resampled_kid(vy, yy, vx, w, 16);  // tiles of 16: several, ragged
  // Within float32 inner products (the brute force takes them in double).
  EXPECT_NEAR(kid[0], brute_force_kid(x, n, y, m, d), 1e-7);
  const auto untiled = resampled_kid(vy, kid_reference_term(vy), vx, w);
  for (size_t r = 0; r < w.size(); ++r) {
    EXPECT_NEAR(kid[r], untiled[r], 1e-12);  // tiling changes only the summation order
    if (r) {
      EXPECT_NEAR(kid[r], brute_force_kid(materialise(x, d, w[r]), n, y, m, d), 1e-7);
    }
  }
  // The subset estimator averages to the same quantity.
  const KidResult subsets = kernel_inception_distance(vy, vx, {400, 40, 1});
  EXPECT_NEAR(subsets.mean, kid[0], 4 * subsets.std / std::sqrt(400.0) + 1e-6);
}

TEST(Bootstrap, ResampledPrecisionRecallIsThatOfTheResampledRows) {
  const int64_t n = 300, m = 200, d = 8;
  const auto x = gaussian_rows(n, d, 41, 0.3f), y = gaussian_rows(m, d, 42);
  const FeatureView vx{x.data(), n, d}, vy{y.data(), m, d};
  PrecisionRecallOptions o;
  o.mode = DistanceMode::kFp32;
  o.block_size = 128;  // several blocks
  o.tile_rows = 50;
  const auto radii = manifold_radii(vy, o);
  const auto w = bootstrap_weight_set(n, {6, 7, 0.95});
  const PrecisionRecallResult plain = precision_recall(vy, vx, o);
  for (int neighbours : {16, 4}) {  // 4 = k + 1: most radii need the full-row path
    o.neighbours = neighbours;
    const auto r = resampled_precision_recall(vy, radii, vx, w, o);
    EXPECT_EQ(r.precision[0], plain.precision);
    EXPECT_EQ(r.recall[0], plain.recall);
    EXPECT_GT(r.candidate_pairs, 0);
    if (neighbours == 4) {
      EXPECT_GT(r.full_rows, 100);
    }
    for (size_t k = 1; k < w.size(); ++k) {
      const auto copy = materialise(x, d, w[k]);
      const PrecisionRecallResult direct = precision_recall(vy, {copy.data(), n, d}, o);
      EXPECT_DOUBLE_EQ(r.precision[k], direct.precision) << neighbours << " " << k;
      EXPECT_DOUBLE_EQ(r.recall[k], direct.recall) << neighbours << " " << k;
    }
  }
  // Identical sides: every replicate's difference is zero.
  o.neighbours = 16;
  const auto r = resampled_precision_recall(vy, radii, vx, w, o);
  const PairedDifference zero = paired_difference(r.recall, r.recall, {6, 7, 0.95});
  EXPECT_EQ(zero.lo, 0.0);
  EXPECT_EQ(zero.hi, 0.0);
  o.mode = DistanceMode::kAdmFp16;
  try {
    resampled_precision_recall(vy, radii, vx, w, o);
    ADD_FAILURE() << "adm-fp16 accepted";
  } catch (const sit::Error& e) {
    EXPECT_NE(std::string(e.what()).find("fp32 distances; got mode adm-fp16"), std::string::npos)
        << e.what();
  }
  o.mode = DistanceMode::kFp32;
  o.max_pairs = 10;
  try {
    resampled_precision_recall(vy, radii, vx, w, o);
    ADD_FAILURE() << "pair limit ignored";
  } catch (const sit::Error& e) {
    EXPECT_NE(std::string(e.what()).find("more than 10 (reference, sample) candidate pairs"),
              std::string::npos)
        << e.what();
  }
}
