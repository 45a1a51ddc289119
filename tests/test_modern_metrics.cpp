// CMMD, FD-infinity and per-class FID against the worked values of metrics_modern.md
// (sections 0, 2.5, 4.4 and 5), on its portable SplitMix64 data.
#include <gtest/gtest.h>

#include <cmath>

#include "metrics/cmmd.h"
#include "metrics/fd_infinity.h"
#include "metrics/per_class_fid.h"
#include "metrics/random.h"
#include "test_util.h"

using namespace sit;
using metrics::SplitMix64;

namespace {

/// `gauss` with `seed`, rows x cols, row-major (spec section 0), times `scale` plus `shift`.
std::vector<double> gauss_matrix(uint64_t seed, int64_t rows, int64_t cols, double scale = 1.0,
                                 double shift = 0.0) {
  SplitMix64 s(seed);
  std::vector<double> v(static_cast<size_t>(rows * cols));
  for (auto& x : v)
    x = scale * s.gauss() + shift;
  return v;
}

metrics::FeatureStats stats_of(const std::vector<double>& rows, int64_t d) {
  metrics::StatsAccumulator acc(d);
  acc.add(rows.data(), static_cast<int64_t>(rows.size()) / d);
  return acc.finalize();
}

}  // namespace

TEST(PortableRandom, SpecStreams) {
  SplitMix64 s0(0);
  EXPECT_EQ(s0.next(), 0xe220a8397b1dcdafull);
  EXPECT_EQ(s0.next(), 0x6e789e6aa1b965f4ull);
  EXPECT_EQ(s0.next(), 0x06c45d188009454full);
  SplitMix64 u(1);
  EXPECT_DOUBLE_EQ(u.uniform(), 0.5665615751722809);
  EXPECT_DOUBLE_EQ(u.uniform(), 0.7457817572627011);
  EXPECT_DOUBLE_EQ(u.uniform(), 0.9710027535867962);
  const auto g = gauss_matrix(1, 1, 3);
  EXPECT_DOUBLE_EQ(g[0], 1.4243480905156511);
  EXPECT_DOUBLE_EQ(g[1], -0.6189042598785681);
  EXPECT_DOUBLE_EQ(g[2], -0.5907667571367323);
  SplitMix64 p(42);
  EXPECT_EQ(p.permutation(10), (std::vector<int64_t>{8, 3, 6, 5, 4, 0, 9, 2, 1, 7}));
}

TEST(Cmmd, WorkedExampleOfTheSpec) {
  const int64_t d = 768;
  const auto x = gauss_matrix(1, 100, d), y = gauss_matrix(2, 80, d, 1.0, 0.05);
  const auto r = metrics::cmmd(x.data(), 100, y.data(), 80, d);
  EXPECT_NEAR(r.k_xx, 0.990149880286, 1e-12);
  EXPECT_NEAR(r.k_yy, 0.990193081262, 1e-12);
  EXPECT_NEAR(r.k_xy, 0.990046669642, 1e-12);
  EXPECT_NEAR(r.value, 0.2496222633, 0.2496222633 * 1e-8);
  // symmetric; zero for one set against itself
  EXPECT_NEAR(metrics::cmmd(y.data(), 80, x.data(), 100, d).value, r.value, 1e-12);
  EXPECT_NEAR(metrics::cmmd(x.data(), 100, x.data(), 100, d).value, 0.0, 1e-10);
  // tiles smaller than the sets, and float32 embeddings (CLIP's output) agree closely
  metrics::CmmdOptions small;
  small.tile = 7;
  EXPECT_NEAR(metrics::cmmd(x.data(), 100, y.data(), 80, d, small).value, r.value, 1e-10);
  const std::vector<float> xf(x.begin(), x.end()), yf(y.begin(), y.end());
  const auto rf = metrics::cmmd(metrics::FeatureView{xf.data(), 100, d},
                                metrics::FeatureView{yf.data(), 80, d});
  EXPECT_NEAR(rf.value, r.value, 2e-3 * r.value);
}

TEST(Cmmd, BadInputsAreExplained) {
  std::vector<double> zero(4, 0.0), one{1, 0, 0, 1};
  test::expect_error([&] { metrics::cmmd(zero.data(), 2, one.data(), 2, 2); },
                     {"CMMD", "reference row 0", "all zeros"});
  test::expect_error([&] { metrics::cmmd(one.data(), 0, one.data(), 2, 2); },
                     {"at least one row", "0 reference"});
  std::vector<float> a(6, 1.0f), b(4, 1.0f);
  test::expect_error([&] {
    metrics::cmmd(metrics::FeatureView{a.data(), 2, 3}, metrics::FeatureView{b.data(), 2, 2});
  }, {"widths must match", "3 (reference)", "2 (samples)"});
  std::vector<double> nan{1, std::nan("")};
  test::expect_error([&] { metrics::cmmd(one.data(), 2, nan.data(), 1, 2); },
                     {"sample row 0", "non-finite"});
}

TEST(FdInfinity, GridAsNumpyLinspace) {
  EXPECT_EQ(metrics::fd_infinity_grid(50000),
            (std::vector<int64_t>{5000, 8214, 11428, 14642, 17857, 21071, 24285, 27500, 30714,
                                  33928, 37142, 40357, 43571, 46785, 50000}));
  EXPECT_EQ(metrics::fd_infinity_grid(1000),
            (std::vector<int64_t>{100, 164, 228, 292, 357, 421, 485, 550, 614, 678, 742, 807,
                                  871, 935, 1000}));
  test::expect_error([] { metrics::fd_infinity_grid(2); }, {"at least 3", "got 2"});
}

TEST(FdInfinity, WorkedExampleOfTheSpecSeededAndPrefix) {
  const int64_t d = 8;
  const auto a = gauss_matrix(5, 4000, d), g = gauss_matrix(6, 1000, d, 0.9, 0.1);
  EXPECT_NEAR(a[0], -0.8465729828, 1e-10);
  EXPECT_NEAR(g[0], -1.0098332333, 1e-10);
  const auto ref = stats_of(a, d);
  EXPECT_NEAR(metrics::frechet_distance(stats_of(g, d), ref).distance, 0.203092137220, 2e-11);

  SplitMix64 first(7);
  const auto perm = first.permutation(1000);
  EXPECT_EQ(std::vector<int64_t>(perm.begin(), perm.begin() + 8),
            (std::vector<int64_t>{919, 277, 39, 224, 123, 735, 814, 430}));

  metrics::FdInfinityOptions o;
  o.seed = 7;
  const auto r = metrics::fd_infinity(g.data(), 1000, d, ref, o);
  const double fd_n[] = {0.4676866365, 0.3028411328, 0.3110808749, 0.2629092928, 0.2267669439,
                         0.2729933333, 0.2220213049, 0.2205748570, 0.2310653409, 0.1918256339,
                         0.1936563722, 0.2126499599, 0.2070548332, 0.2039129376, 0.2030921372};
  ASSERT_EQ(r.fd.size(), 15u);
  for (int i = 0; i < 15; ++i)
    EXPECT_NEAR(r.fd[i], fd_n[i], 1e-9) << "N = " << r.n[i];
  EXPECT_NEAR(r.value, 0.1701740838, 1e-8);
  EXPECT_NEAR(r.slope, 28.1214199629, 1e-7);

  o.prefix = true;
  const auto p = metrics::fd_infinity(g.data(), 1000, d, ref, o);
  EXPECT_NEAR(p.fd[0], 0.5194295430, 1e-9);
  EXPECT_NEAR(p.fd[7], 0.2074171563, 1e-9);
  EXPECT_NEAR(p.value, 0.1587573445, 1e-8);
  EXPECT_NEAR(p.slope, 35.8613353902, 1e-7);

  // float32 rows go through the same path (values as stored)
  const std::vector<float> gf(g.begin(), g.end());
  o.prefix = false;
  EXPECT_NEAR(metrics::fd_infinity(metrics::FeatureView{gf.data(), 1000, d}, ref, o).value,
              r.value, 1e-6);
  test::expect_error([&] { metrics::fd_infinity(g.data(), 1000, 7, ref, o); },
                     {"dimensions must match", "7 (samples)", "8 (reference)"});
}

namespace {

/// Three classes in 4-d with class-dependent means; the samples of each class are the
/// reference rows of that class shifted by `shift`.
struct ClassData {
  std::vector<float> ref, smp;
  std::vector<int64_t> ref_labels, smp_labels;
};

ClassData class_data(float shift) {
  ClassData c;
  SplitMix64 s(3);
  for (int64_t cls : {0, 2, 5})
    for (int i = 0; i < 40; ++i) {
      for (int j = 0; j < 4; ++j) {
        const float v = static_cast<float>(s.gauss() + 0.5 * cls * (j == cls % 4));
        c.ref.push_back(v);
        c.smp.push_back(v + shift * (j == 0));
      }
      c.ref_labels.push_back(cls);
      c.smp_labels.push_back(cls);
    }
  return c;
}

}  // namespace

TEST(PerClassFid, EachClassAgainstItsOwnReferenceRows) {
  const auto c = class_data(0.25f);
  const metrics::FeatureView ref{c.ref.data(), 120, 4}, smp{c.smp.data(), 120, 4};
  const auto r = metrics::per_class_fid(smp, c.smp_labels, ref, c.ref_labels);
  EXPECT_EQ(r.classes, (std::vector<int64_t>{0, 2, 5}));
  EXPECT_EQ(r.sample_count, (std::vector<int64_t>{40, 40, 40}));
  // a shift of every sample by 0.25 along one axis moves only the means: FID_c = 0.0625
  for (double f : r.fid)
    EXPECT_NEAR(f, 0.0625, 1e-5);
  EXPECT_NEAR(r.intra_fid, 0.0625, 1e-5);

  // against the whole reference: the class means differ from the pooled one, so each
  // class is farther away than from its own rows
  metrics::PerClassFidOptions whole;
  whole.against_whole_reference = true;
  const auto w = metrics::per_class_fid(smp, c.smp_labels, ref, c.ref_labels, whole);
  for (size_t i = 0; i < w.fid.size(); ++i)
    EXPECT_GT(w.fid[i], r.fid[i] + 0.1);
}

TEST(PerClassFid, MissingAndThinClassesAreRefused) {
  auto c = class_data(0.0f);
  const metrics::FeatureView ref{c.ref.data(), 120, 4};
  // a class of the reference without samples
  std::vector<int64_t> only_two(c.smp_labels);
  for (auto& l : only_two)
    if (l == 5) l = 2;
  test::expect_error([&] { metrics::check_class_counts(only_two, c.ref_labels); },
                     {"class 5 has 0 generated samples", "2 of the reference's 3 classes"});
  // one sample of a class
  std::vector<int64_t> thin(c.smp_labels);
  for (int i = 0; i < 39; ++i)
    thin[80 + i] = 2;
  test::expect_error([&] { metrics::check_class_counts(thin, c.ref_labels); },
                     {"class 5 has 1 generated samples", "at least 2"});
  // a label the reference does not have
  std::vector<int64_t> unknown(c.smp_labels);
  unknown[0] = 7;
  test::expect_error([&] { metrics::check_class_counts(unknown, c.ref_labels); },
                     {"labelled 7", "does not have"});
  test::expect_error([&] { metrics::check_class_counts({}, c.ref_labels); },
                     {"samples have no labels"});
  const metrics::FeatureView smp{c.smp.data(), 120, 4};
  test::expect_error([&] {
    metrics::per_class_fid(smp, std::vector<int64_t>(119, 0), ref, c.ref_labels);
  }, {"119 sample labels for 120 rows"});
}
