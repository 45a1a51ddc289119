// The sgemm-bound metrics against their bound: precision/recall (ADM ManifoldEstimator
// semantics) for 10,000 reference vs 50,000 sample features of dimension 2048, and KID
// (100 subsets of 1000, as torch-fidelity / clean-fid), each against the time of the sgemm
// work it needs at this machine's sgemm rate measured at the metric's own shape.
//
//   build/bench/bench_pr [--ref 10000] [--samples 50000] [--d 2048] [--mode adm-fp16|fp32]
//                        [--threads 2] [--no-kid]
#include <cstdio>

#include "bench_common.h"
#include "metrics/kid.h"
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

// The sgemm shape of KID: one m x m Gram matrix of two 1000-row subsets.
void BM_SgemmKid(benchmark::State& state) {
  const int64_t m = std::min<int64_t>(1000, std::min(g_ref, g_smp)), k = g_d;
  std::vector<float> c(static_cast<size_t>(m * m));
  for (auto _ : state) {
    linalg::sgemm(true, false, m, m, k, 1.0f, g_b.data(), k, g_a.data(), k, 0.0f, c.data(), m);
    benchmark::DoNotOptimize(c.data());
  }
}

void BM_Kid(benchmark::State& state) {
  for (auto _ : state)
    state.counters["kid"] =
        metrics::kernel_inception_distance({g_a.data(), g_ref, g_d}, {g_b.data(), g_smp, g_d}).mean;
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
  const bool kid = !bench::has_flag(argc, argv, "--no-kid");
  if (kid) {
    benchmark::RegisterBenchmark("SgemmKid", BM_SgemmKid)
        ->Unit(benchmark::kMillisecond)
        ->MinTime(1.0)
        ->Repetitions(5)
        ->UseRealTime();
    bench::add_timed("Kid", BM_Kid, 3);
  }
  auto seconds = bench::run_all(argc, argv);

  if (seconds.count("PrecisionRecall") && seconds.count("Sgemm")) {  // --benchmark_filter
    const double sgemm_s = seconds["Sgemm"], pr_s = seconds["PrecisionRecall"];
    const double m = std::min<int64_t>(1024, g_ref), n = std::min<int64_t>(10000, g_smp);
    const double rate = 2.0 * m * n * g_d / sgemm_s;
    // ADM's work: radii of each set against itself, then reference x samples.
    const double r = static_cast<double>(g_ref), s = static_cast<double>(g_smp);
    const double flops = 2.0 * g_d * (r * r + s * s + r * s);
    const double sgemm_time = flops / rate;
    std::printf(
        "\nsgemm rate %.1f GFLOP/s; sgemm work %.3g FLOP = %.1f s at that rate; "
        "precision/recall %.1f s; ratio %.2f (target <= 1.15)\n",
        rate / 1e9, flops, sgemm_time, pr_s, pr_s / sgemm_time);
  }
  if (kid && seconds.count("Kid") && seconds.count("SgemmKid")) {
    // KID: three m x m Gram matrices (xx, yy, xy) per subset
    const double km = static_cast<double>(std::min<int64_t>(1000, std::min(g_ref, g_smp)));
    const double kid_rate = 2.0 * km * km * g_d / seconds["SgemmKid"];
    const double kid_flops = 100 * 3 * 2.0 * km * km * g_d;
    std::printf(
        "KID (100 subsets of %.0f): sgemm rate at that shape %.1f GFLOP/s; sgemm work %.3g "
        "FLOP = %.2f s; KID %.2f s; ratio %.2f\n",
        km, kid_rate / 1e9, kid_flops, kid_flops / kid_rate, seconds["Kid"],
        seconds["Kid"] / (kid_flops / kid_rate));
  }
  std::printf(
      "peak memory while measuring: %.0f MiB, of which %.0f MiB are the input "
      "features\n",
      bench::peak_rss_mib(), input_mib);
  return 0;
}
