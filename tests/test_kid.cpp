#include "metrics/kid.h"
#include "test_util.h"

using namespace sit::metrics;

namespace {

double naive_mmd(const std::vector<float>& x, const std::vector<float>& y, int64_t m, int64_t d) {
  auto k = [&](const float* a, const float* b) {
    double s = 0;
    for (int64_t i = 0; i < d; ++i)
      s += double(a[i]) * b[i];
    return std::pow(s / d + 1.0, 3);
  };
  double kxx = 0, kyy = 0, kxy = 0;
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < m; ++j) {
      if (i != j) {
        kxx += k(&x[i * d], &x[j * d]);
        kyy += k(&y[i * d], &y[j * d]);
      }
      kxy += k(&x[i * d], &y[j * d]);
    }
  return kxx / (m * (m - 1.0)) + kyy / (m * (m - 1.0)) - 2 * kxy / (double(m) * m);
}

}  // namespace

TEST(Kid, WholeSetSubsetEqualsNaiveUnbiasedMmd) {
  const int64_t n = 60, d = 10;
  const auto ref = sit::test::gaussian_features(n, d, 1);
  const auto smp = sit::test::gaussian_features(n, d, 2, 1.3, 0.2);
  KidOptions o;
  o.subsets = 3;
  o.subset_size = n;  // every subset is a permutation of all rows
  const auto r = kernel_inception_distance({ref.data(), n, d}, {smp.data(), n, d}, o);
  const double expected = naive_mmd(smp, ref, n, d);
  EXPECT_EQ(r.subset_size, n);
  for (double v : r.subset_values)
    EXPECT_NEAR(v, expected, 1e-5 * std::abs(expected));
  EXPECT_NEAR(r.std, 0.0, 1e-5 * std::abs(expected));
}

TEST(Kid, SeededAndReproducible) {
  const int64_t n = 300, d = 8;
  const auto ref = sit::test::gaussian_features(n, d, 3);
  const auto smp = sit::test::gaussian_features(n, d, 4, 1.2);
  KidOptions o;
  o.subsets = 10;
  o.subset_size = 50;
  const auto a = kernel_inception_distance({ref.data(), n, d}, {smp.data(), n, d}, o);
  const auto b = kernel_inception_distance({ref.data(), n, d}, {smp.data(), n, d}, o);
  EXPECT_EQ(a.subset_values, b.subset_values);
  o.seed = 1;
  const auto c = kernel_inception_distance({ref.data(), n, d}, {smp.data(), n, d}, o);
  EXPECT_NE(a.subset_values, c.subset_values);
  EXPECT_GT(a.mean, 0.0);  // different distributions
}

TEST(Kid, SameDistributionIsNearZero) {
  const int64_t n = 2000, d = 6;
  const auto all = sit::test::gaussian_features(2 * n, d, 5);
  const std::vector<float> a(all.begin(), all.begin() + n * d), b(all.begin() + n * d, all.end());
  const auto r = kernel_inception_distance({a.data(), n, d}, {b.data(), n, d});
  EXPECT_LT(std::abs(r.mean), 3 * r.std / std::sqrt(100.0) + 1e-3);
}

TEST(Kid, BadInputsAreErrors) {
  const std::vector<float> x(20, 1.0f);
  sit::test::expect_error(
      [&] {
        kernel_inception_distance({x.data(), 1, 4}, {x.data(), 5, 4});
      },
      {"subset size must be >= 2"});
  sit::test::expect_error(
      [&] {
        kernel_inception_distance({x.data(), 5, 4}, {x.data(), 2, 8});
      },
      {"dimensions must match"});
}
