// Precision/recall (ADM ManifoldEstimator semantics) for 10,000 reference vs 50,000 sample
// features of dimension 2048, against the time of the sgemm work it needs at this
// machine's measured sgemm rate.
//
//   build/bench/bench_pr [--ref 10000] [--samples 50000] [--d 2048] [--mode adm-fp16|fp32]
//                        [--threads 2]
#include <cstdio>

#include "bench_common.h"
#include "metrics/precision_recall.h"

using namespace sit;

namespace {

int64_t g_ref = 10000, g_smp = 50000, g_d = 2048;
metrics::DistanceMode g_mode = metrics::DistanceMode::kAdmFp16;
std::vector<float> g_a, g_b;

// The sgemm shape the estimator uses: a tile of 1024 rows against a 10,000-row block.
void BM_Sgemm(benchmark::State& state) {
  const int64_t m = std::min<int64_t>(1024, g_ref), n = std::min<int64_t>(10000, g_smp), k = g_d;
  std::vector<float> c(static_cast<size_t>(m * n));
  for (auto _ : state) {
    linalg::sgemm(true, false, n, m, k, 1.0f, g_b.data(), k, g_a.data(), k, 0.0f, c.data(), n);
    benchmark::DoNotOptimize(c.data());
  }
  state.counters["GFLOP/s"] =
      benchmark::Counter(2.0 * m * n * k * state.iterations(), benchmark::Counter::kIsRate);
}

void BM_PrecisionRecall(benchmark::State& state) {
  metrics::PrecisionRecallOptions o;
  o.mode = g_mode;
  for (auto _ : state) {
    const auto r = metrics::precision_recall({g_a.data(), g_ref, g_d}, {g_b.data(), g_smp, g_d}, o);
    state.counters["precision"] = r.precision;
    state.counters["recall"] = r.recall;
  }
}

}  // namespace

int main(int argc, char** argv) {
  g_ref = std::stoll(bench::arg(argc, argv, "--ref", "10000"));
  g_smp = std::stoll(bench::arg(argc, argv, "--samples", "50000"));
  g_d = std::stoll(bench::arg(argc, argv, "--d", "2048"));
  g_mode = metrics::parse_distance_mode(bench::arg(argc, argv, "--mode", "adm-fp16"));
  linalg::set_num_threads(std::stoi(bench::arg(argc, argv, "--threads", "0")));
  std::printf(
      "Precision/recall benchmark: %lld reference vs %lld samples, D = %lld, mode %s, "
      "%d threads\n",
      static_cast<long long>(g_ref), static_cast<long long>(g_smp), static_cast<long long>(g_d),
      metrics::to_string(g_mode), linalg::num_threads());
  g_a = bench::synthetic_features(g_ref, g_d, 3);
  g_b = bench::synthetic_features(g_smp, g_d, 4, 0.05f);
  const double input_mib = (g_ref + g_smp) * g_d * 4.0 / (1 << 20);
  bench::reset_peak_rss();

  benchmark::RegisterBenchmark("Sgemm", BM_Sgemm)
      ->Unit(benchmark::kMillisecond)
      ->MinTime(1.0)
      ->Repetitions(5)
      ->UseRealTime();
  bench::add_timed("PrecisionRecall", BM_PrecisionRecall, 1);
  auto seconds = bench::run_all(argc, argv);

  const double sgemm_s = seconds["Sgemm"], pr_s = seconds["PrecisionRecall"];
  const double m = std::min<int64_t>(1024, g_ref), n = std::min<int64_t>(10000, g_smp);
  const double rate = 2.0 * m * n * g_d / sgemm_s;
  // ADM's work: radii of each set against itself, then reference x samples.
  const double r = static_cast<double>(g_ref), s = static_cast<double>(g_smp);
  const double flops = 2.0 * g_d * (r * r + s * s + r * s);
  const double sgemm_time = flops / rate;
  std::printf(
      "\nsgemm rate %.1f GFLOP/s; sgemm work %.3g FLOP = %.1f s at that rate; "
      "precision/recall %.1f s; ratio %.2f (target <= 1.5)\n",
      rate / 1e9, flops, sgemm_time, pr_s, pr_s / sgemm_time);
  std::printf(
      "peak memory while measuring: %.0f MiB, of which %.0f MiB are the input "
      "features\n",
      bench::peak_rss_mib(), input_mib);
  return 0;
}
