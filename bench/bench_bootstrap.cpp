// Cost of compare's paired bootstrap per metric: each metric's one-off work (distance or
// kernel passes) and its cost per replicate, for 50,000 samples against 10,000 reference
// rows of dimension 2048 (IS: 1008 logits per sample). A benchmark "X/R" evaluates X on
// all rows plus R replicates; (X/R - X/0) / R is the cost of one replicate. compare runs
// each metric for both sides of a pair.
//
//   build/bench/bench_bootstrap [--samples 50000] [--ref 10000] [--d 2048] [--classes 1008]
//                               [--replicates 100] [--threads 2]
#include <cstdio>

#include "bench_common.h"
#include "metrics/bootstrap.h"
#include "metrics/feature_stats.h"
#include "metrics/inception_score.h"
#include "metrics/kid.h"
#include "metrics/precision_recall.h"

using namespace sit;

namespace {

int64_t g_ref = 10000, g_smp = 50000, g_d = 2048, g_classes = 1008;
int g_replicates = 100;
std::vector<float> g_ref_rows, g_smp_rows, g_logits;
std::vector<std::vector<int32_t>> g_all, g_one;  // ones + replicates; ones only
metrics::FeatureStats g_ref_stats;
std::vector<float> g_radii;
double g_kid_term = 0;

metrics::FeatureView ref_view() { return {g_ref_rows.data(), g_ref, g_d}; }
metrics::FeatureView smp_view() { return {g_smp_rows.data(), g_smp, g_d}; }

void BM_FdReplicate(benchmark::State& state) {
  const std::vector<std::vector<int32_t>> one = {g_all[1]};
  const metrics::FrechetReference ref(g_ref_stats);  // factored once per comparison
  for (auto _ : state)
    benchmark::DoNotOptimize(metrics::resampled_fd(smp_view(), ref, one));
}

template <bool kAll>
void BM_PrecisionRecall(benchmark::State& state) {
  metrics::PrecisionRecallOptions o;
  o.mode = metrics::DistanceMode::kFp32;
  for (auto _ : state) {
    const auto r = metrics::resampled_precision_recall(ref_view(), g_radii, smp_view(),
                                                       kAll ? g_all : g_one, o);
    state.counters["pairs"] = static_cast<double>(r.candidate_pairs);
    state.counters["full_rows"] = static_cast<double>(r.full_rows);
  }
}

template <bool kAll>
void BM_Kid(benchmark::State& state) {
  for (auto _ : state)
    benchmark::DoNotOptimize(
        metrics::resampled_kid(ref_view(), g_kid_term, smp_view(), kAll ? g_all : g_one));
}

template <bool kAll>
void BM_InceptionScore(benchmark::State& state) {
  for (auto _ : state)
    benchmark::DoNotOptimize(metrics::resampled_inception_score(
        {g_logits.data(), g_smp, g_classes}, kAll ? g_all : g_one));
}

}  // namespace

int main(int argc, char** argv) {
  g_ref = std::stoll(bench::arg(argc, argv, "--ref", "10000"));
  g_smp = std::stoll(bench::arg(argc, argv, "--samples", "50000"));
  g_d = std::stoll(bench::arg(argc, argv, "--d", "2048"));
  g_classes = std::stoll(bench::arg(argc, argv, "--classes", "1008"));
  g_replicates = std::stoi(bench::arg(argc, argv, "--replicates", "100"));
  linalg::set_num_threads(std::stoi(bench::arg(argc, argv, "--threads", "0")));
  std::printf(
      "Paired bootstrap benchmark: %lld samples vs %lld reference rows, D = %lld, %lld classes, "
      "%d replicates, %d threads\n",
      static_cast<long long>(g_smp), static_cast<long long>(g_ref), static_cast<long long>(g_d),
      static_cast<long long>(g_classes), g_replicates, linalg::num_threads());
  g_ref_rows = bench::synthetic_features(g_ref, g_d, 3);
  g_smp_rows = bench::synthetic_features(g_smp, g_d, 4, 0.05f);
  g_logits = bench::synthetic_features(g_smp, g_classes, 5);
  for (auto& v : g_logits)
    v *= 4.0f;  // confident-ish class predictions
  g_all = metrics::bootstrap_weight_set(g_smp, {g_replicates, 0, 0.95});
  g_one = {g_all[0]};
  g_ref_stats = metrics::compute_stats(ref_view());
  metrics::PrecisionRecallOptions o;
  o.mode = metrics::DistanceMode::kFp32;
  g_radii = metrics::manifold_radii(ref_view(), o);
  g_kid_term = metrics::kid_reference_term(ref_view());
  bench::reset_peak_rss();

  bench::add_timed("FdReplicate", BM_FdReplicate, 3);
  bench::add_timed("PrecisionRecall/0", BM_PrecisionRecall<false>, 1);
  bench::add_timed("PrecisionRecall/R", BM_PrecisionRecall<true>, 1);
  bench::add_timed("Kid/0", BM_Kid<false>, 1);
  bench::add_timed("Kid/R", BM_Kid<true>, 1);
  bench::add_timed("InceptionScore/0", BM_InceptionScore<false>, 1);
  bench::add_timed("InceptionScore/R", BM_InceptionScore<true>, 1);
  auto s = bench::run_all(argc, argv);

  const double r = g_replicates;
  std::printf("\nper side of a pair, %d replicates:\n", g_replicates);
  std::printf("  FID:        %.2f s per replicate, %.0f s in all\n", s["FdReplicate"],
              s["FdReplicate"] * (r + 1));
  auto line = [&](const char* what, const std::string& key) {
    const double base = s[key + "/0"], all = s[key + "/R"];
    std::printf("  %-11s %.1f s one-off (all rows), %.3f s per replicate, %.0f s in all\n", what,
                base, (all - base) / r, all);
  };
  line("P/R:", "PrecisionRecall");
  line("KID:", "Kid");
  line("IS:", "InceptionScore");
  std::printf("peak memory while measuring: %.0f MiB\n", bench::peak_rss_mib());
  return 0;
}
