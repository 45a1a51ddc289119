#include <Eigen/Dense>

#include "metrics/feature_stats.h"
#include "test_util.h"

using namespace sit::metrics;

namespace {

// Naive two-pass reference in long double.
void naive_stats(const std::vector<float>& x, int64_t n, int64_t d, int ddof, Eigen::VectorXd* mu,
                 Eigen::MatrixXd* sigma) {
  std::vector<long double> mean(d, 0.0L);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < d; ++j)
      mean[j] += x[i * d + j];
  for (auto& m : mean)
    m /= n;
  *mu = Eigen::VectorXd(d);
  *sigma = Eigen::MatrixXd(d, d);
  for (int64_t j = 0; j < d; ++j)
    (*mu)[j] = static_cast<double>(mean[j]);
  for (int64_t a = 0; a < d; ++a)
    for (int64_t b = 0; b < d; ++b) {
      long double s = 0;
      for (int64_t i = 0; i < n; ++i)
        s += (x[i * d + a] - mean[a]) * (x[i * d + b] - mean[b]);
      (*sigma)(a, b) = static_cast<double>(s / (n - ddof));
    }
}

double rel(const Eigen::MatrixXd& a, const Eigen::MatrixXd& b) {
  return (a - b).norm() / b.norm();
}

}  // namespace

TEST(FeatureStats, TwoPassMatchesNaiveReference) {
  const int64_t n = 517, d = 13;
  const auto x = sit::test::gaussian_features(n, d, 1, 2.0, 100.0);  // large offset
  Eigen::VectorXd mu;
  Eigen::MatrixXd sigma;
  naive_stats(x, n, d, 1, &mu, &sigma);
  StatsOptions o;
  o.block_rows = 64;
  const FeatureStats s = compute_stats({x.data(), n, d}, o);
  EXPECT_EQ(s.count, n);
  EXPECT_LT(rel(s.mu, mu), 1e-14);
  EXPECT_LT(rel(s.sigma, sigma), 1e-12);
  EXPECT_EQ((s.sigma - s.sigma.transpose()).norm(), 0.0);
}

TEST(FeatureStats, StreamingMatchesTwoPassWhateverTheBatches) {
  const int64_t n = 1000, d = 9;
  const auto x = sit::test::gaussian_features(n, d, 2, 1.0, 1e3);
  StatsOptions o;
  o.block_rows = 128;
  const FeatureStats ref = compute_stats({x.data(), n, d}, o);
  for (int64_t batch : {1, 7, 128, 333, 1000}) {
    StatsAccumulator acc(d, o);
    for (int64_t start = 0; start < n; start += batch)
      acc.add(x.data() + start * d, std::min(batch, n - start));
    const FeatureStats s = acc.finalize();
    EXPECT_EQ(s.count, n);
    EXPECT_LT(rel(s.mu, ref.mu), 1e-13) << "batch " << batch;
    EXPECT_LT(rel(s.sigma, ref.sigma), 1e-12) << "batch " << batch;
  }
}

TEST(FeatureStats, BlockGroupingDependsOnlyOnRowSequence) {
  const int64_t n = 700, d = 5;
  const auto x = sit::test::gaussian_features(n, d, 3);
  StatsOptions o;
  o.block_rows = 64;
  StatsAccumulator a(d, o), b(d, o);
  a.add(x.data(), n);
  for (int64_t i = 0; i < n; i += 3)
    b.add(x.data() + i * d, std::min<int64_t>(3, n - i));
  const auto sa = a.finalize(), sb = b.finalize();
  EXPECT_EQ((sa.sigma - sb.sigma).norm(), 0.0);  // bitwise identical
  EXPECT_EQ((sa.mu - sb.mu).norm(), 0.0);
}

TEST(FeatureStats, MergingPartialAccumulatorsEqualsOnePass) {
  const int64_t n = 900, d = 11;
  const auto x = sit::test::gaussian_features(n, d, 4, 3.0, -50.0);
  StatsOptions o;
  o.block_rows = 100;
  StatsAccumulator whole(d, o);
  whole.add(x.data(), n);
  // Uneven shards, including buffered (unflushed) rows in each.
  const int64_t cuts[] = {0, 151, 152, 560, 900};
  StatsAccumulator merged(d, o);
  for (int k = 0; k < 4; ++k) {
    StatsAccumulator part(d, o);
    part.add(x.data() + cuts[k] * d, cuts[k + 1] - cuts[k]);
    merged.merge(part);
  }
  const auto a = whole.finalize(), b = merged.finalize();
  EXPECT_EQ(b.count, n);
  EXPECT_LT(rel(b.mu, a.mu), 1e-12);
  EXPECT_LT(rel(b.sigma, a.sigma), 1e-12);
}

TEST(FeatureStats, DdofZeroDividesByN) {
  const int64_t n = 50, d = 3;
  const auto x = sit::test::gaussian_features(n, d, 5);
  StatsOptions o1, o0;
  o0.ddof = 0;
  const auto s1 = compute_stats({x.data(), n, d}, o1);
  const auto s0 = compute_stats({x.data(), n, d}, o0);
  EXPECT_LT(rel(s0.sigma * n, s1.sigma * (n - 1)), 1e-14);
  StatsAccumulator acc(d, o0);
  acc.add(x.data(), n);
  EXPECT_LT(rel(acc.finalize().sigma, s0.sigma), 1e-13);
}

TEST(FeatureStats, TooFewRowsIsAnError) {
  const std::vector<float> one_row = {1, 2, 3};
  sit::test::expect_error(
      [&] {
        compute_stats({one_row.data(), 1, 3});
      },
      {"at least 2 rows", "got 1"});
  StatsAccumulator acc(3);
  acc.add(one_row.data(), 1);
  sit::test::expect_error([&] { acc.finalize(); }, {"need at least 2 rows", "got 1"});
  sit::test::expect_error([] { StatsAccumulator bad(0); }, {"dim must be positive"});
}

TEST(FeatureStats, MergeRejectsOtherDimension) {
  StatsAccumulator a(3), b(4);
  sit::test::expect_error([&] { a.merge(b); }, {"dimensions must match", "3", "4"});
}

TEST(FeatureCheck, NamesTheFirstNonFiniteRow) {
  std::vector<float> x(5 * 4, 1.0f);
  x[3 * 4 + 2] = std::numeric_limits<float>::quiet_NaN();
  x[4 * 4 + 0] = std::numeric_limits<float>::infinity();
  sit::test::expect_error(
      [&] {
        check_finite({x.data(), 5, 4}, "samples.npz 'pool'");
      },
      {"samples.npz 'pool'", "row 3", "column 2", "nan"});
}

TEST(StreamingStats, BitwiseTheSameWhateverThePieces) {
  const int64_t n = 1000, d = 9;
  const auto x = sit::test::gaussian_features(n, d, 6, 2.0, 40.0);
  StatsOptions o;
  o.block_rows = 128;
  const FeatureStats whole = compute_stats({x.data(), n, d}, o);
  // pieces smaller than a block (the first block is held until the shift is known), equal
  // to it (read in place), across block boundaries, and one piece of everything
  for (const std::vector<int64_t>& pieces :
       std::vector<std::vector<int64_t>>{{1}, {7}, {128}, {333}, {1000}, {5, 128, 200}}) {
    StreamingStats s(n, d, o, "test");
    size_t k = 0;
    for (int64_t start = 0; start < n;) {
      const int64_t m = std::min(pieces[std::min(k++, pieces.size() - 1)], n - start);
      s.add(x.data() + start * d, m);
      start += m;
    }
    const FeatureStats r = s.finalize();
    EXPECT_EQ(r.count, n);
    EXPECT_EQ((r.mu - whole.mu).norm(), 0.0) << "first piece " << pieces[0];
    EXPECT_EQ((r.sigma - whole.sigma).norm(), 0.0) << "first piece " << pieces[0];
  }
}

TEST(StreamingStats, NamesTheFirstNonFiniteRowOfTheWholeStream) {
  const int64_t n = 300, d = 4;
  auto x = sit::test::gaussian_features(n, d, 7);
  x[261 * d + 3] = -std::numeric_limits<float>::infinity();  // third block of 100
  StatsOptions o;
  o.block_rows = 100;
  StreamingStats s(n, d, o, "ref.npz 'pool'");
  sit::test::expect_error(
      [&] {
        for (int64_t i = 0; i < n; i += 30)
          s.add(x.data() + i * d, 30);
      },
      {"ref.npz 'pool'", "row 261", "column 3", "-inf"});
}

TEST(StreamingStats, WrongRowCountsAreErrors) {
  const int64_t d = 3;
  const auto x = sit::test::gaussian_features(10, d, 8);
  StreamingStats s(8, d, {}, "f.npz 'pool'");
  s.add(x.data(), 5);
  sit::test::expect_error([&] { s.finalize(); }, {"f.npz 'pool'", "5 rows added, expected 8"});
  sit::test::expect_error([&] { s.add(x.data(), 4); }, {"9 rows added, expected 8"});
  sit::test::expect_error([] { StreamingStats one(1, 3, {}, "g.npz 'pool'"); },
                          {"g.npz 'pool'", "at least 2 rows", "got 1"});
}
