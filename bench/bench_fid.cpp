// FID from two feature sets (statistics + distance) against its double-precision bound:
// the dsyrk work on the centred features plus one symmetric eigensolve of the same size.
//
//   build/bench/bench_fid [--n 50000] [--d 2048] [--threads 2] [--bounds-only]
#include <cstdio>

#include "bench_common.h"
#include "metrics/feature_stats.h"
#include "metrics/frechet.h"

using namespace sit;

namespace {

int64_t g_n = 50000, g_d = 2048;
std::vector<float> g_a, g_b;

void BM_FidFull(benchmark::State& state) {
  for (auto _ : state) {
    const auto s1 = metrics::compute_stats({g_a.data(), g_n, g_d});
    const auto s2 = metrics::compute_stats({g_b.data(), g_n, g_d});
    benchmark::DoNotOptimize(metrics::frechet_distance(s1, s2).distance);
  }
}

// Bound, part 1: dsyrk of both centred sets, in the same blocks, timed without the
// centring and conversion (which FidFull pays for).
void BM_BoundDsyrk(benchmark::State& state) {
  const int64_t block = 2048;
  std::vector<double> centred(static_cast<size_t>(block * g_d));
  for (size_t i = 0; i < centred.size(); ++i)
    centred[i] = g_a[i] - 0.5;
  std::vector<double> c(static_cast<size_t>(g_d * g_d));
  for (auto _ : state) {
    for (int side = 0; side < 2; ++side)
      for (int64_t start = 0; start < g_n; start += block)
        linalg::dsyrk_lower(g_d, std::min(block, g_n - start), 1.0, centred.data(), g_d, 1.0,
                            c.data(), g_d);
    benchmark::DoNotOptimize(c.data());
  }
  state.counters["GFLOP/s"] = benchmark::Counter(2.0 * g_n * g_d * (g_d + 1.0) * state.iterations(),
                                                 benchmark::Counter::kIsRate);
}

// The statistics of one set alone (mean pass, centring, dsyrk).
void BM_StatsOneSet(benchmark::State& state) {
  for (auto _ : state)
    benchmark::DoNotOptimize(metrics::compute_stats({g_a.data(), g_n, g_d}));
}

// Bound, part 2: one symmetric eigensolve (eigenvalues only) of a D x D covariance.
void BM_BoundEigensolve(benchmark::State& state) {
  const auto s = metrics::compute_stats({g_a.data(), std::min<int64_t>(g_n, 8192), g_d});
  for (auto _ : state) {
    state.PauseTiming();
    Eigen::MatrixXd m = s.sigma;
    state.ResumeTiming();
    benchmark::DoNotOptimize(linalg::dsyevd_lower(g_d, m.data(), g_d, false));
  }
}

void BM_FrechetEigenRoute(benchmark::State& state) {
  const auto s1 = metrics::compute_stats({g_a.data(), std::min<int64_t>(g_n, 8192), g_d});
  const auto s2 = metrics::compute_stats({g_b.data(), std::min<int64_t>(g_n, 8192), g_d});
  for (auto _ : state)
    benchmark::DoNotOptimize(metrics::frechet_distance(s1, s2).distance);
}

}  // namespace

int main(int argc, char** argv) {
  g_n = std::stoll(bench::arg(argc, argv, "--n", "50000"));
  g_d = std::stoll(bench::arg(argc, argv, "--d", "2048"));
  linalg::set_num_threads(std::stoi(bench::arg(argc, argv, "--threads", "0")));
  std::printf("FID benchmark: two sets of %lld x %lld float32 features, %d threads\n",
              static_cast<long long>(g_n), static_cast<long long>(g_d), linalg::num_threads());
  g_a = bench::synthetic_features(g_n, g_d, 1);
  g_b = bench::synthetic_features(g_n, g_d, 2, 0.05f);

  // --bounds-only: the two parts of the bound alone (bench/compare_fid.py adds the read)
  const bool bounds_only = bench::has_flag(argc, argv, "--bounds-only");
  if (!bounds_only) bench::add_timed("FidFull", BM_FidFull, 3);
  bench::add_timed("BoundDsyrk", BM_BoundDsyrk, 3);
  bench::add_timed("BoundEigensolve", BM_BoundEigensolve, 3);
  if (!bounds_only) {
    bench::add_timed("StatsOneSet", BM_StatsOneSet, 3);
    bench::add_timed("FrechetEigenRoute", BM_FrechetEigenRoute, 3);
  }
  auto seconds = bench::run_all(argc, argv);
  if (bounds_only) {
    std::printf("\nbound: dsyrk %.3f s, eigensolve %.3f s (best of 3 each)\n",
                seconds["BoundDsyrk"], seconds["BoundEigensolve"]);
    return 0;
  }

  const double full = seconds["FidFull"], dsyrk = seconds["BoundDsyrk"],
               eig = seconds["BoundEigensolve"], bound = dsyrk + eig;
  std::printf(
      "\nFID (stats + distance): %.3f s; double-precision bound (dsyrk %.3f s + "
      "eigensolve %.3f s) = %.3f s; ratio %.2f (target <= 1.3); best of 3 each\n",
      full, dsyrk, eig, bound, full / bound);
  std::printf("peak memory: %.0f MiB\n", bench::peak_rss_mib());
  return 0;
}
