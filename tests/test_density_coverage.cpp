// Density and coverage (metrics/density_coverage.h) against the worked examples of
// spec/metrics_modern.md section 3.3, computed there independently with the clovaai file,
// dgm-eval's copy and a NumPy version.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <vector>

#include "metrics/density_coverage.h"
#include "test_util.h"

using namespace sit;
using namespace sit::metrics;

namespace {

/// The spec's portable data (section 0): splitmix64 draws, uniforms of their top 53 bits,
/// gauss = sum of 12 uniforms - 6, row-major.
std::vector<double> portable_gauss(uint64_t seed, int64_t n) {
  uint64_t s = seed;
  auto draw = [&s] {
    s += 0x9E3779B97F4A7C15ull;
    uint64_t z = s;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  };
  std::vector<double> out(static_cast<size_t>(n));
  for (auto& v : out) {
    double sum = 0;
    for (int i = 0; i < 12; ++i)
      sum += static_cast<double>(draw() >> 11) * 0x1.0p-53;
    v = sum - 6.0;
  }
  return out;
}

FeatureView view(const std::vector<float>& v, int64_t rows, int64_t cols) {
  return {v.data(), rows, cols};
}

}  // namespace

TEST(DensityCoverage, PortableExampleMatchesTheSpecExactly) {
  const std::vector<double> r = portable_gauss(3, 200 * 16), g = portable_gauss(4, 150 * 16);
  EXPECT_NEAR(r[0], 0.1660252548, 1e-10);
  EXPECT_NEAR(r[2], 0.510354293, 1e-9);
  std::vector<float> real(r.begin(), r.end()), fake(g.size());
  for (size_t i = 0; i < g.size(); ++i)
    fake[i] = static_cast<float>(1.1 * g[i] + 0.3);
  EXPECT_NEAR(fake[0], 1.6593633927, 1e-6);
  struct Row {
    int k;
    double density, coverage;
  };
  for (const Row& w : {Row{5, 0.5013333333, 137.0 / 200}, Row{3, 0.4911111111, 106.0 / 200}}) {
    DensityCoverageOptions o;
    o.k = w.k;
    o.block = 64;  // several blocks
    const DensityCoverage dc = density_coverage(real_balls(view(real, 200, 16), view(fake, 150, 16), o));
    EXPECT_NEAR(dc.density, w.density, 1e-10) << "k = " << w.k;
    EXPECT_DOUBLE_EQ(dc.coverage, w.coverage) << "k = " << w.k;
  }
}

TEST(DensityCoverage, TiesOnTheBallBoundaryAreNotCounted) {
  // R = {0, 2, 4, 6, 8}, F = {1, 4, 10, 13} in 1-D (spec 3.3 B)
  const std::vector<float> real = {0, 2, 4, 6, 8}, fake = {1, 4, 10, 13};
  DensityCoverageOptions o;
  o.k = 1;
  DensityCoverage dc = density_coverage(real_balls(view(real, 5, 1), view(fake, 4, 1), o));
  EXPECT_DOUBLE_EQ(dc.density, 0.75);  // a non-strict test would give 1.5
  EXPECT_DOUBLE_EQ(dc.coverage, 0.6);  // ... and 1.0
  o.k = 2;
  dc = density_coverage(real_balls(view(real, 5, 1), view(fake, 4, 1), o));
  EXPECT_DOUBLE_EQ(dc.density, 0.5);
  EXPECT_DOUBLE_EQ(dc.coverage, 0.8);
}

TEST(DensityCoverage, WeightsCountSamplesAsOftenAsAResampleHoldsThem) {
  const std::vector<float> real = {0, 2, 4, 6, 8}, fake = {1, 4, 10, 13};
  DensityCoverageOptions o;
  o.k = 1;
  const RealBalls balls = real_balls(view(real, 5, 1), view(fake, 4, 1), o);
  // fake 1 held by reals 0 and 2 (radius 2), fake 4 by real 4; 10 and 13 by none
  const std::vector<float> copy = {1, 1, 4, 13};  // the resample [1, 1, 4, 13] itself
  const DensityCoverage direct = density_coverage(real_balls(view(real, 5, 1), view(copy, 4, 1), o));
  const DensityCoverage weighted = density_coverage(balls, {2, 1, 0, 1});
  EXPECT_DOUBLE_EQ(weighted.density, direct.density);
  EXPECT_DOUBLE_EQ(weighted.coverage, direct.coverage);
  EXPECT_DOUBLE_EQ(density_coverage(balls, {1, 1, 1, 1}).density, density_coverage(balls).density);
  // the reference's radii, computed once, serve every sample set alike
  const std::vector<double> radii = reference_radii(view(real, 5, 1), o);
  EXPECT_EQ(radii, balls.radii);
  const RealBalls again = real_balls(view(real, 5, 1), radii, view(fake, 4, 1), o);
  EXPECT_EQ(again.reals_of_fake, balls.reals_of_fake);
  EXPECT_EQ(again.offsets, balls.offsets);
  test::expect_error([&] { real_balls(view(real, 5, 1), {1.0, 2.0}, view(fake, 4, 1), o); },
                     {"2 radii for 5 reference rows"});
}

TEST(DensityCoverage, BadInputsAreErrors) {
  const std::vector<float> a = {0, 1, 2}, b = {0, 1, 2, 3};
  DensityCoverageOptions o;
  o.k = 5;
  test::expect_error([&] { real_balls(view(a, 3, 1), view(b, 4, 1), o); },
                     {"at least k + 1 = 6 rows, got 3"});
  test::expect_error([&] { real_balls(view(b, 2, 2), view(a, 3, 1), DensityCoverageOptions{1}); },
                     {"reference rows have 2 features, samples 1"});
  const std::vector<float> nan = {0, std::nanf(""), 1, 2};
  test::expect_error([&] { real_balls(view(nan, 4, 1), view(a, 3, 1), DensityCoverageOptions{1}); },
                     {"density/coverage reference features"});
}
