#include <cmath>

#include "metrics/inception_score.h"
#include "test_util.h"

using namespace sit::metrics;

// Probabilities and logs are float32 as in ADM's graph: closed forms hold to ~1e-7.
constexpr double kTol = 1e-6;

TEST(InceptionScore, UniformOverConfidentOneHotGivesNumberOfClasses) {
  // Row i is (almost surely) class i % C: p(y|x) one-hot, p(y) uniform -> IS = C.
  const int64_t c = 10, n = 1000;
  std::vector<float> logits(n * c, -40.0f);
  for (int64_t i = 0; i < n; ++i)
    logits[i * c + i % c] = 40.0f;
  const auto r = inception_score({logits.data(), n, c});
  EXPECT_NEAR(r.mean, 10.0, 10 * kTol);
  EXPECT_EQ(r.split_scores.size(), 1u);
}

TEST(InceptionScore, IdenticalRowsGiveOne) {
  const int64_t c = 7, n = 64;
  std::vector<float> logits(n * c);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < c; ++j)
      logits[i * c + j] = 0.3f * j - 1.0f;
  EXPECT_NEAR(inception_score({logits.data(), n, c}).mean, 1.0, 1e-6);
}

TEST(InceptionScore, ConsecutiveSplitsWithTrailingPartialSplit) {
  // First 6 rows all class 0, next 6 all class 1, last 3 alternate 0/1/2.
  const int64_t c = 3, n = 15;
  std::vector<float> logits(n * c, -50.0f);
  for (int64_t i = 0; i < 6; ++i)
    logits[i * c + 0] = 50.0f;
  for (int64_t i = 6; i < 12; ++i)
    logits[i * c + 1] = 50.0f;
  for (int64_t i = 12; i < 15; ++i)
    logits[i * c + (i - 12)] = 50.0f;
  InceptionScoreOptions o;
  o.split_size = 6;
  const auto r = inception_score({logits.data(), n, c}, o);
  ASSERT_EQ(r.split_scores.size(), 3u);
  EXPECT_NEAR(r.split_scores[0], 1.0, kTol);  // no shuffle: each split is one class
  EXPECT_NEAR(r.split_scores[1], 1.0, kTol);
  EXPECT_NEAR(r.split_scores[2], 3.0, kTol);
  EXPECT_NEAR(r.mean, 5.0 / 3.0, kTol);
  EXPECT_NEAR(r.std, std::sqrt(((2.0 / 3) * (2.0 / 3) * 2 + (4.0 / 3) * (4.0 / 3)) / 3), kTol);
}

TEST(InceptionScore, UnderflowingProbabilitiesStayFinite) {
  // float32 softmax underflows to exactly 0 for a logit gap of 200: numpy would give NaN.
  const int64_t c = 4, n = 8;
  std::vector<float> logits(n * c, 0.0f);
  for (int64_t i = 0; i < n; ++i)
    logits[i * c + (i % 2)] = 200.0f;
  const auto r = inception_score({logits.data(), n, c});
  EXPECT_TRUE(std::isfinite(r.mean));
  EXPECT_NEAR(r.mean, 2.0, kTol);
}

TEST(InceptionScore, BadArgumentsAreErrors) {
  std::vector<float> logits(10, 0.0f);
  sit::test::expect_error([&] { inception_score({logits.data(), 0, 10}); }, {"at least 1 row"});
  sit::test::expect_error([&] { inception_score({logits.data(), 10, 1}); }, {"at least 2 classes"});
  InceptionScoreOptions o;
  o.split_size = 0;
  sit::test::expect_error([&] { inception_score({logits.data(), 1, 10}, o); }, {"split size"});
}
