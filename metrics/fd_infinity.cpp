#include "metrics/fd_infinity.h"

#include <algorithm>
#include <cmath>
#include <tuple>

#include "common/error.h"
#include "metrics/random.h"

namespace sit::metrics {
namespace {

template <class T>
FdInfinityResult fd_infinity_impl(const T* rows, int64_t m, int64_t d,
                                  const FeatureStats& reference, const FdInfinityOptions& o) {
  if (reference.dim() != d)
    fail("FD-infinity: feature dimensions must match, got ", d, " (samples) and ",
         reference.dim(), " (reference)");
  for (int64_t i = 0; i < m * d; ++i)
    if (!std::isfinite(static_cast<double>(rows[i])))
      fail("FD-infinity: sample row ", i / d, " has a non-finite value");
  FdInfinityResult r;
  r.n = fd_infinity_grid(m, o.points);
  SplitMix64 stream(o.seed);
  StatsOptions stats_options;  // float64, divisor N - 1
  std::vector<T> block;
  std::vector<double> x;
  for (const int64_t n : r.n) {
    std::vector<int64_t> order;
    if (!o.prefix) order = stream.permutation(m);  // fresh subsets, the stream continuing
    StatsAccumulator acc(d, stats_options);
    for (int64_t s = 0; s < n; s += stats_options.block_rows) {
      const int64_t b = std::min(stats_options.block_rows, n - s);
      block.resize(static_cast<size_t>(b * d));
      for (int64_t i = 0; i < b; ++i) {
        const int64_t row = o.prefix ? s + i : order[s + i];
        std::copy_n(rows + row * d, d, block.data() + i * d);
      }
      acc.add(block.data(), b);
    }
    r.fd.push_back(frechet_distance(acc.finalize(), reference, o.frechet).distance);
    x.push_back(1.0 / static_cast<double>(n));
  }
  std::tie(r.value, r.slope) = least_squares_line(x, r.fd);
  return r;
}

}  // namespace

std::vector<int64_t> fd_infinity_grid(int64_t m, int points) {
  if (points < 2) fail("FD-infinity: the grid needs at least 2 points, got ", points);
  if (m < 3) fail("FD-infinity: needs at least 3 generated rows, got ", m);
  const int64_t start = std::min<int64_t>(5000, std::max<int64_t>(m / 10, 2));
  const double step = static_cast<double>(m - start) / static_cast<double>(points - 1);
  std::vector<int64_t> grid;
  for (int i = 0; i + 1 < points; ++i)
    grid.push_back(static_cast<int64_t>(static_cast<double>(start) + i * step));
  grid.push_back(m);
  return grid;
}

std::pair<double, double> least_squares_line(const std::vector<double>& x,
                                             const std::vector<double>& y) {
  const double n = static_cast<double>(x.size());
  double xbar = 0, ybar = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    xbar += x[i];
    ybar += y[i];
  }
  xbar /= n;
  ybar /= n;
  double sxy = 0, sxx = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    sxy += (x[i] - xbar) * (y[i] - ybar);
    sxx += (x[i] - xbar) * (x[i] - xbar);
  }
  if (!(sxx > 0)) fail("least squares: the x values must differ");
  const double b = sxy / sxx;
  return {ybar - b * xbar, b};
}

FdInfinityResult fd_infinity(const FeatureView& samples, const FeatureStats& reference,
                             const FdInfinityOptions& options) {
  return fd_infinity_impl(samples.data, samples.rows, samples.cols, reference, options);
}

FdInfinityResult fd_infinity(const double* samples, int64_t m, int64_t d,
                             const FeatureStats& reference, const FdInfinityOptions& options) {
  return fd_infinity_impl(samples, m, d, reference, options);
}

}  // namespace sit::metrics
