#pragma once
/// Platform-independent seeded randomness for metrics (std::mt19937_64 is fully
/// specified by the standard; the standard distributions are not, so bounded integers
/// and subsets are drawn here).

#include <cstdint>
#include <random>
#include <utility>
#include <vector>

namespace sit::metrics {

/// Uniform integer in [0, bound) without modulo bias (Lemire's multiply-and-reject).
inline uint64_t uniform_below(std::mt19937_64& rng, uint64_t bound) {
  __uint128_t product = static_cast<__uint128_t>(rng()) * bound;
  uint64_t low = static_cast<uint64_t>(product);
  if (low < bound) {
    const uint64_t threshold = (0 - bound) % bound;
    while (low < threshold) {
      product = static_cast<__uint128_t>(rng()) * bound;
      low = static_cast<uint64_t>(product);
    }
  }
  return static_cast<uint64_t>(product >> 64);
}

/// m distinct indices of [0, n), in draw order (partial Fisher-Yates).
inline std::vector<int64_t> sample_without_replacement(std::mt19937_64& rng, int64_t n, int64_t m) {
  std::vector<int64_t> pool(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i)
    pool[i] = i;
  for (int64_t i = 0; i < m; ++i) {
    const int64_t j = i + static_cast<int64_t>(uniform_below(rng, static_cast<uint64_t>(n - i)));
    std::swap(pool[i], pool[j]);
  }
  pool.resize(static_cast<size_t>(m));
  return pool;
}

/// The portable random stream of metrics_modern.md section 0, so that seeded subsets
/// (FD-infinity) and test data can be regenerated bit for bit in any language.
class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}
  uint64_t next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  /// A double in [0, 1): the top 53 bits.
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
  /// Irwin-Hall: twelve uniforms added left to right, minus 6 (unit variance).
  double gauss() {
    double s = 0;
    for (int i = 0; i < 12; ++i)
      s += uniform();
    return s - 6.0;
  }
  /// A permutation of 0..n-1: Fisher-Yates from the top, j = floor(uniform * (i + 1));
  /// consumes n - 1 draws.
  std::vector<int64_t> permutation(int64_t n) {
    std::vector<int64_t> a(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i)
      a[i] = i;
    for (int64_t i = n - 1; i >= 1; --i)
      std::swap(a[i], a[static_cast<int64_t>(uniform() * static_cast<double>(i + 1))]);
    return a;
  }

 private:
  uint64_t state_;
};

}  // namespace sit::metrics
