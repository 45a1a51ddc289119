// Metrics on the committed fixtures against values from numpy / scipy, computed the ADM
// way by tests/fixtures/make_fixtures.py.
#include <fstream>
#include <nlohmann/json.hpp>

#include "eval/metrics_job.h"
#include "reference_stats/feature_set.h"
#include "test_util.h"

using namespace sit;

namespace {
nlohmann::json golden() {
  std::ifstream in(test::fixture("golden.json"));
  return nlohmann::json::parse(in);
}
}  // namespace

TEST(Golden, MetricsMatchNumpyScipyReference) {
  const auto g = golden();
  const auto ref = io::load_feature_set(test::fixture("features_ref.npz"));
  const auto smp = io::load_feature_set(test::fixture("features_samples.npz"));
  for (const char* mode : {"fp32", "adm-fp16"}) {
    eval::MetricsJobOptions o;
    o.pr.mode = metrics::parse_distance_mode(mode);
    o.kid.subset_size = 600;
    o.kid.subsets = 2;
    const auto r = eval::compute_metrics(ref, smp, o);
    EXPECT_NEAR(*r.get("fid"), g["fid"].get<double>(), 1e-9 * g["fid"].get<double>());
    EXPECT_NEAR(*r.get("sfid"), g["sfid"].get<double>(), 1e-9 * g["sfid"].get<double>());
    // numpy accumulates the IS sums in float32, sit-eval in double.
    EXPECT_NEAR(*r.get("inception_score"), g["inception_score"].get<double>(), 1e-5);
    EXPECT_DOUBLE_EQ(*r.get("precision"), g[std::string("precision_") + mode].get<double>()) << mode;
    EXPECT_DOUBLE_EQ(*r.get("recall"), g[std::string("recall_") + mode].get<double>()) << mode;
    EXPECT_NEAR(*r.get("kid"), g["kid_all_rows"].get<double>(), 1e-5 * g["kid_all_rows"].get<double>());
    EXPECT_EQ(r.n_samples, 600);
    EXPECT_EQ(r.n_ref, 600);
  }
}

TEST(Golden, InceptionScoreSplitsMatchNumpy) {
  const auto g = golden();
  const auto smp = io::load_feature_set(test::fixture("features_samples.npz"));
  metrics::InceptionScoreOptions o;
  o.split_size = 250;
  const auto r = metrics::inception_score(smp.rows("logits")->view(), o);
  EXPECT_EQ(r.split_scores.size(), 3u);
  EXPECT_NEAR(r.mean, g["inception_score_split250"].get<double>(), 1e-5);
  EXPECT_NEAR(r.std, g["inception_score_split250_std"].get<double>(), 1e-5);
}

TEST(Golden, AdmReferenceBatchStoredStatisticsAreUsed) {
  // adm_ref.npz stores the statistics of features_ref.npz (sigma_s as float32).
  const auto g = golden();
  const auto adm = io::load_feature_set(test::fixture("adm_ref.npz"));
  const auto smp = io::load_feature_set(test::fixture("features_samples.npz"));
  EXPECT_EQ(adm.image_count, 20);
  EXPECT_FALSE(adm.rows("pool"));
  eval::MetricsJobOptions o;
  const auto r = eval::compute_metrics(adm, smp, o);
  EXPECT_NEAR(*r.get("fid"), g["fid"].get<double>(), 1e-9 * g["fid"].get<double>());
  EXPECT_NEAR(*r.get("sfid"), g["sfid"].get<double>(), 1e-5 * g["sfid"].get<double>());
  EXPECT_FALSE(r.get("precision").has_value());
  ASSERT_EQ(r.skipped.size(), 2u);
  EXPECT_NE(r.skipped[0].find("arr_0 images need the feature extractor"), std::string::npos);
}
