#pragma once
// Synthetic features and a reporter that keeps each benchmark's real time, shared by the
// benchmark programs.

#include <benchmark/benchmark.h>
#include <sys/resource.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "metrics/linalg.h"

namespace sit::bench {

/// Row-major [n, d] features with correlated dimensions, like pool_3 activations:
/// x = relu(g + g[:, :r] M + 0.5 + shift), g standard normal (fast xorshift +
/// Box-Muller). M is the same for every seed, so sets differ only by the draw and shift.
inline std::vector<float> synthetic_features(int64_t n, int64_t d, uint64_t seed,
                                             float shift = 0.0f) {
  uint64_t s = 0x5DEECE66Dull;
  auto next = [&s]() {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    return (static_cast<double>(s >> 11) + 0.5) * (1.0 / 9007199254740992.0);
  };
  auto normal = [&]() {
    return static_cast<float>(std::sqrt(-2.0 * std::log(next())) *
                              std::cos(6.283185307179586 * next()));
  };
  const int64_t r = std::min<int64_t>(64, d);
  std::vector<float> g(static_cast<size_t>(n * d)), m(static_cast<size_t>(r * d));
  for (auto& v : m)
    v = normal() * 0.15f;
  s = seed * 0x9E3779B97F4A7C15ull + 1;
  for (auto& v : g)
    v = normal();
  std::vector<float> x = g;
  // x += g[:, :r] @ M  (column-major: X^T (d x n) += M^T (d x r) * G_r^T (r x n))
  linalg::sgemm(true, false, d, n, r, 1.0f, m.data(), r, g.data(), d, 1.0f, x.data(), d);
  for (auto& v : x)
    v = std::max(0.0f, v + 0.5f + shift);
  return x;
}

/// Peak resident memory (VmHWM) of this process in MiB, since start or the last
/// reset_peak_rss().
inline double peak_rss_mib() {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);)
    if (line.rfind("VmHWM:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_maxrss) / 1024.0;
}

/// Resets the peak to the current resident size (Linux: "5" > /proc/self/clear_refs).
inline void reset_peak_rss() {
  std::ofstream("/proc/self/clear_refs") << "5";
}

/// Console output plus, for each benchmark (by function name), the best real time per
/// iteration in seconds over its repetitions: the machine's capability, robust to the
/// run-to-run noise of a shared VM.
class RecordingReporter : public benchmark::ConsoleReporter {
 public:
  std::map<std::string, double> seconds;
  void ReportRuns(const std::vector<Run>& runs) override {
    for (const auto& r : runs) {
      if (r.run_type != Run::RT_Iteration) continue;
      // GetTimeUnitMultiplier converts seconds into the run's unit.
      const double per_iter =
          r.GetAdjustedRealTime() / benchmark::GetTimeUnitMultiplier(r.time_unit);
      auto [it, fresh] = seconds.emplace(r.run_name.function_name, per_iter);
      if (!fresh) it->second = std::min(it->second, per_iter);
    }
    ConsoleReporter::ReportRuns(runs);
  }
};

/// Value of "--name VALUE" among the program's arguments, or `fallback`.
inline std::string arg(int argc, char** argv, const std::string& name,
                       const std::string& fallback) {
  for (int i = 1; i + 1 < argc; ++i)
    if (name == argv[i]) return argv[i + 1];
  return fallback;
}

/// Whether "--name" is among the program's arguments.
inline bool has_flag(int argc, char** argv, const std::string& name) {
  for (int i = 1; i < argc; ++i)
    if (name == argv[i]) return true;
  return false;
}

/// Registers a real-time benchmark whose every run is one call, repeated `repetitions`
/// times (the reporter keeps the best).
inline void add_timed(const char* name, void (*fn)(benchmark::State&), int repetitions) {
  benchmark::RegisterBenchmark(name, fn)
      ->Unit(benchmark::kSecond)
      ->Iterations(1)
      ->Repetitions(repetitions)
      ->UseRealTime();
}

/// Where a benchmark ran, for its report: the CPU model and vector extensions (from
/// /proc/cpuinfo), the CPUs this process may use, the BLAS libraries and kernel sets in use
/// and their thread count (numbers differ by machine; README lists each machine measured).
inline std::string machine_description() {
  std::ifstream in("/proc/cpuinfo");
  std::string line, model = "unknown CPU", flags;
  while (std::getline(in, line)) {
    const auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    const std::string key = line.substr(0, line.find_last_not_of(" \t", colon - 1) + 1);
    const std::string value = colon + 2 <= line.size() ? line.substr(colon + 2) : "";
    if (key == "model name" && model == "unknown CPU") model = value;
    if (key == "flags" && flags.empty()) flags = " " + value + " ";
  }
  std::string isa;
  for (const char* f : {"avx2", "fma", "avx512f", "avx512_bf16", "amx_tile"})
    if (flags.find(std::string(" ") + f + " ") != std::string::npos) isa += (isa.empty() ? "" : " ") + std::string(f);
  return "machine: " + model + " (" + (isa.empty() ? "no AVX2" : isa) + "), " +
         std::to_string(linalg::hardware_threads()) + " CPUs usable; BLAS: " +
         linalg::blas_description();
}

/// Runs the registered benchmarks, passing Google Benchmark's own flags
/// (--benchmark_filter=..., ...) through; returns the best seconds per benchmark. Prints
/// machine_description() first.
inline std::map<std::string, double> run_all(int argc, char** argv) {
  std::printf("%s\n", machine_description().c_str());
  std::fflush(stdout);
  std::vector<char*> bargv = {argv[0]};
  for (int i = 1; i < argc; ++i)
    if (std::string(argv[i]).rfind("--benchmark", 0) == 0) bargv.push_back(argv[i]);
  int bargc = static_cast<int>(bargv.size());
  benchmark::Initialize(&bargc, bargv.data());
  RecordingReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  return reporter.seconds;
}

}  // namespace sit::bench
