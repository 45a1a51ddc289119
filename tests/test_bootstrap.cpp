// Paired bootstrap of Frechet distances: zero for identical sides, determinism, weighted
// statistics against copies of the resampled rows, and coverage of the true difference
// on a closed-form Gaussian case.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "common/error.h"
#include "metrics/bootstrap.h"
#include "metrics/frechet.h"

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

TEST(Bootstrap, MeanOfPerSampleValues) {
  // precision-like indicators: B adds one sample inside the manifold out of 10
  const std::vector<double> a = {1, 0, 1, 1, 0, 1, 0, 1, 1, 1}, b = {1, 1, 1, 1, 0, 1, 0, 1, 1, 1};
  const PairedDifference same = paired_bootstrap_mean(a, a, {30, 0, 0.95});
  EXPECT_EQ(same.diff, 0.0);
  EXPECT_EQ(same.lo, 0.0);
  EXPECT_EQ(same.hi, 0.0);
  const PairedDifference d = paired_bootstrap_mean(a, b, {200, 0, 0.95});
  EXPECT_DOUBLE_EQ(d.a, 0.7);
  EXPECT_DOUBLE_EQ(d.b, 0.8);
  EXPECT_NEAR(d.diff, 0.1, 1e-15);
  // every replicate is (count of sample 1) / 10 >= 0
  EXPECT_GE(d.lo, 0.0);
  EXPECT_LE(d.hi, 0.4);
  EXPECT_THROW(paired_bootstrap_mean(a, {1.0}, {}), sit::Error);
}
