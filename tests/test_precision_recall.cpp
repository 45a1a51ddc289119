#include <algorithm>
#include <cmath>

#include "metrics/half.h"
#include "metrics/precision_recall.h"
#include "test_util.h"

using namespace sit::metrics;

namespace {

// O(n^2) reference of ADM's ManifoldEstimator, with the same arithmetic per mode.
float naive_distance(const float* u, const float* v, int64_t d, DistanceMode mode) {
  if (mode == DistanceMode::kFp32) {
    double nu = 0, nv = 0;
    float g = 0;
    for (int64_t k = 0; k < d; ++k) {
      nu += double(u[k]) * u[k];
      nv += double(v[k]) * v[k];
    }
    // Dot product in double then rounded: sgemm's float accumulation differs by rounding
    // only, and test data is chosen so that no comparison sits within that rounding.
    double gd = 0;
    for (int64_t k = 0; k < d; ++k)
      gd += double(u[k]) * v[k];
    g = static_cast<float>(gd);
    const float r = (static_cast<float>(nu) - 2.0f * g) + static_cast<float>(nv);
    return std::max(r, 0.0f);
  }
  float nu = 0, nv = 0, g = 0;
  for (int64_t k = 0; k < d; ++k) {
    const float uh = round_to_half(u[k]), vh = round_to_half(v[k]);
    nu += round_to_half(uh * uh);
    nv += round_to_half(vh * vh);
    g += uh * vh;
  }
  const float t = round_to_half(round_to_half(nu) - 2.0f * round_to_half(g));
  return std::max(round_to_half(t + round_to_half(nv)), 0.0f);
}

std::vector<float> naive_radii(const std::vector<float>& x, int64_t n, int64_t d, int k,
                               DistanceMode mode) {
  std::vector<float> radii(n), row(n);
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < n; ++j)
      row[j] = naive_distance(&x[i * d], &x[j * d], d, mode);
    std::nth_element(row.begin(), row.begin() + k, row.end());
    radii[i] = row[k];
  }
  return radii;
}

std::pair<double, double> naive_pr(const std::vector<float>& ref, int64_t nr,
                                   const std::vector<float>& smp, int64_t ns, int64_t d,
                                   DistanceMode mode) {
  const auto rr = naive_radii(ref, nr, d, 3, mode), rs = naive_radii(smp, ns, d, 3, mode);
  int64_t prec = 0, rec = 0;
  for (int64_t j = 0; j < ns; ++j) {
    bool in = false;
    for (int64_t i = 0; i < nr && !in; ++i)
      in = naive_distance(&ref[i * d], &smp[j * d], d, mode) <= rr[i];
    prec += in;
  }
  for (int64_t i = 0; i < nr; ++i) {
    bool in = false;
    for (int64_t j = 0; j < ns && !in; ++j)
      in = naive_distance(&ref[i * d], &smp[j * d], d, mode) <= rs[j];
    rec += in;
  }
  return {double(prec) / ns, double(rec) / nr};
}

// Features on a grid of 1/4: every product and sum is exact in float and half, so the
// fast path and the naive reference must agree exactly, ties included.
std::vector<float> grid_features(int64_t n, int64_t d, uint64_t seed, double shift) {
  auto x = sit::test::gaussian_features(n, d, seed, 1.0, shift);
  for (auto& v : x)
    v = std::round(v * 4.0f) / 4.0f;
  return x;
}

}  // namespace

TEST(HalfRounding, MatchesIeeeBinary16) {
  EXPECT_EQ(round_to_half(1.0f), 1.0f);
  EXPECT_EQ(round_to_half(1.0f + 1.0f / 4096), 1.0f);                // below half an ulp
  EXPECT_EQ(round_to_half(1.0f + 3.0f / 2048), 1.0f + 2.0f / 1024);  // tie to even (up)
  EXPECT_EQ(round_to_half(1.0f + 1.0f / 2048), 1.0f);                // tie to even (down)
  EXPECT_EQ(round_to_half(65504.0f), 65504.0f);
  EXPECT_EQ(round_to_half(65519.0f), 65504.0f);
  EXPECT_TRUE(std::isinf(round_to_half(65520.0f)));
  EXPECT_EQ(round_to_half(-2.0e-8f), -0.0f);                 // below half the min subnormal
  EXPECT_EQ(round_to_half(3.0e-8f), std::ldexp(1.0f, -24));  // just above half of it
  EXPECT_EQ(round_to_half(6.0e-8f), std::ldexp(1.0f, -24));  // min subnormal
  EXPECT_EQ(round_to_half(std::ldexp(3.0f, -25)), std::ldexp(2.0f, -24));  // tie to even
  EXPECT_TRUE(std::isnan(round_to_half(std::nanf(""))));
  EXPECT_EQ(round_to_half(0.1f), 0.0999755859375f);
}

TEST(PrecisionRecall, MatchesNaiveReferenceWithTies) {
  const int64_t d = 6, nr = 150, ns = 170;
  const auto ref = grid_features(nr, d, 1, 0.0), smp = grid_features(ns, d, 2, 0.3);
  for (auto mode : {DistanceMode::kFp32, DistanceMode::kAdmFp16}) {
    PrecisionRecallOptions o;
    o.mode = mode;
    const auto r = precision_recall({ref.data(), nr, d}, {smp.data(), ns, d}, o);
    const auto [p, rc] = naive_pr(ref, nr, smp, ns, d, mode);
    EXPECT_DOUBLE_EQ(r.precision, p) << to_string(mode);
    EXPECT_DOUBLE_EQ(r.recall, rc) << to_string(mode);
    EXPECT_EQ(r.fp32_fallback_blocks, 0);
  }
}

TEST(PrecisionRecall, Fp16ArithmeticDiffersFromFp32WhereItShould) {
  // Off-grid values with large norms: half rounding changes distances.
  const int64_t d = 32, n = 120;
  const auto ref = sit::test::gaussian_features(n, d, 3, 1.0, 6.0);
  const auto smp = sit::test::gaussian_features(n, d, 4, 1.1, 6.1);
  PrecisionRecallOptions o;
  o.mode = DistanceMode::kAdmFp16;
  const auto radii = manifold_radii({ref.data(), n, d}, o);
  const auto naive = naive_radii(ref, n, d, 3, DistanceMode::kAdmFp16);
  int differ_from_fp32 = 0;
  const auto naive32 = naive_radii(ref, n, d, 3, DistanceMode::kFp32);
  for (int64_t i = 0; i < n; ++i) {
    // The only difference from the naive reference is the summation order of the
    // float32 product before its rounding to half: allow one half ulp.
    EXPECT_NEAR(radii[i], naive[i], std::max(1e-6f, naive[i] * 1e-3f)) << i;
    differ_from_fp32 += radii[i] != naive32[i];
  }
  EXPECT_GT(differ_from_fp32, n / 4);
}

TEST(PrecisionRecall, RadiusIsFourthSmallestIncludingSelf) {
  // Points on a line at 0, 1, 2, 4, 8: squared distances from 0 are 0, 1, 4, 16, 64.
  const std::vector<float> x = {0, 1, 2, 4, 8};
  PrecisionRecallOptions o;
  o.mode = DistanceMode::kFp32;
  const auto r = manifold_radii({x.data(), 5, 1}, o);
  EXPECT_EQ(r[0], 16.0f);  // 4th smallest of {0, 1, 4, 16, 64}
  EXPECT_EQ(r[4], 49.0f);  // from 8: {0, 16, 36, 49, 64}
}

TEST(PrecisionRecall, BlockAndTileSizesDoNotChangeResults) {
  const int64_t d = 8, nr = 97, ns = 131;
  const auto ref = grid_features(nr, d, 5, 0.0), smp = grid_features(ns, d, 6, 0.2);
  PrecisionRecallOptions base;
  base.mode = DistanceMode::kFp32;
  const auto a = precision_recall({ref.data(), nr, d}, {smp.data(), ns, d}, base);
  for (auto [block, tile] : {std::pair<int64_t, int64_t>{10, 3}, {50, 50}, {1000, 7}}) {
    PrecisionRecallOptions o = base;
    o.block_size = block;
    o.tile_rows = tile;
    const auto b = precision_recall({ref.data(), nr, d}, {smp.data(), ns, d}, o);
    EXPECT_EQ(a.precision, b.precision) << block << "/" << tile;
    EXPECT_EQ(a.recall, b.recall) << block << "/" << tile;
  }
}

TEST(PrecisionRecall, OverflowingHalfBlocksFallBackToFp32) {
  // Norms beyond 65504 overflow half: ADM recomputes those blocks in float32.
  const int64_t d = 4, n = 40;
  auto ref = grid_features(n, d, 7, 0.0), smp = grid_features(n, d, 8, 0.1);
  for (auto& v : ref)
    v = v * 100.0f + 300.0f;
  for (auto& v : smp)
    v = v * 100.0f + 300.0f;
  PrecisionRecallOptions fp16, fp32;
  fp16.mode = DistanceMode::kAdmFp16;
  fp16.block_size = 16;
  fp32.mode = DistanceMode::kFp32;
  fp32.block_size = 16;
  const auto a = precision_recall({ref.data(), n, d}, {smp.data(), n, d}, fp16);
  const auto b = precision_recall({ref.data(), n, d}, {smp.data(), n, d}, fp32);
  EXPECT_GT(a.fp32_fallback_blocks, 0);
  EXPECT_EQ(a.precision, b.precision);
  EXPECT_EQ(a.recall, b.recall);
}

TEST(PrecisionRecall, IdenticalSetsHavePerfectScores) {
  const int64_t d = 5, n = 64;
  const auto x = sit::test::gaussian_features(n, d, 9);
  const auto r = precision_recall({x.data(), n, d}, {x.data(), n, d});
  EXPECT_EQ(r.precision, 1.0);
  EXPECT_EQ(r.recall, 1.0);
}

TEST(PrecisionRecall, BadInputsAreErrors) {
  const std::vector<float> x(40, 1.0f);
  sit::test::expect_error(
      [&] {
        precision_recall({x.data(), 3, 4}, {x.data(), 10, 4});
      },
      {"reference set needs at least k + 1 = 4 rows", "got 3"});
  sit::test::expect_error(
      [&] {
        precision_recall({x.data(), 10, 4}, {x.data(), 5, 8});
      },
      {"dimensions must match", "4 (reference)", "8 (samples)"});
  sit::test::expect_error([] { parse_distance_mode("bf16"); }, {"fp32, adm-fp16", "'bf16'"});
}
