#pragma once
/// Platform-independent seeded randomness for metrics (std::mt19937_64 is fully
/// specified by the standard; the standard distributions are not, so bounded integers
/// and subsets are drawn here).

#include <cstdint>
#include <random>
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

}  // namespace sit::metrics
