#include "metrics/density_coverage.h"

#include <algorithm>
#include <cmath>

#include "common/error.h"
#include "metrics/linalg.h"

namespace sit::metrics {
namespace {

/// Rows [begin, end) of a float32 feature block as float64, row-major.
std::vector<double> to_double(const FeatureView& f, int64_t begin, int64_t end) {
  std::vector<double> out(static_cast<size_t>((end - begin) * f.cols));
  for (int64_t i = begin; i < end; ++i)
    for (int64_t c = 0; c < f.cols; ++c)
      out[(i - begin) * f.cols + c] = f.row(i)[c];
  return out;
}

std::vector<double> squared_norms(const std::vector<double>& rows, int64_t n, int64_t d) {
  std::vector<double> out(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    double s = 0;
    for (int64_t c = 0; c < d; ++c)
      s += rows[i * d + c] * rows[i * d + c];
    out[i] = s;
  }
  return out;
}

/// Euclidean distances of `block` rows (b x d, row-major) to all `real` rows (n x d):
/// out[r * n + i], as sklearn: -2 a.b, plus |a|^2, plus |b|^2, clipped at 0, sqrt.
void distances(const std::vector<double>& block, const std::vector<double>& block_norms,
               int64_t b, const std::vector<double>& real, const std::vector<double>& real_norms,
               int64_t n, int64_t d, std::vector<double>& out) {
  out.assign(static_cast<size_t>(b * n), 0.0);
  // column-major view: out is (n x b) with leading dimension n; out = R^T-rows . block
  linalg::dgemm(true, false, n, b, d, -2.0, real.data(), d, block.data(), d, 0.0, out.data(), n);
  for (int64_t r = 0; r < b; ++r)
    for (int64_t i = 0; i < n; ++i) {
      double& v = out[r * n + i];
      v += block_norms[r];
      v += real_norms[i];
      v = std::sqrt(std::max(v, 0.0));
    }
}

void check_reference(const FeatureView& real, const DensityCoverageOptions& o) {
  if (o.k < 1) fail("density/coverage: k must be >= 1, got ", o.k);
  if (real.rows < o.k + 1)
    fail("density/coverage: the reference needs at least k + 1 = ", o.k + 1, " rows, got ",
         real.rows);
  if (real.rows > INT32_MAX) fail("density/coverage: more than 2^31 reference rows");
  check_finite(real, "density/coverage reference features");
}

}  // namespace

std::vector<double> reference_radii(const FeatureView& real, const DensityCoverageOptions& o) {
  check_reference(real, o);
  const int64_t n = real.rows, d = real.cols, bs = std::max<int64_t>(1, o.block);
  const std::vector<double> r64 = to_double(real, 0, n);
  const std::vector<double> rn = squared_norms(r64, n, d);
  std::vector<double> radii(static_cast<size_t>(n)), dist;
  // the (k+1)-th smallest of each row, the zero self-distance included
  for (int64_t b0 = 0; b0 < n; b0 += bs) {
    const int64_t b = std::min(bs, n - b0);
    const std::vector<double> blk(r64.begin() + b0 * d, r64.begin() + (b0 + b) * d);
    const std::vector<double> bn(rn.begin() + b0, rn.begin() + b0 + b);
    distances(blk, bn, b, r64, rn, n, d, dist);
    for (int64_t r = 0; r < b; ++r) {
      double* row = dist.data() + r * n;
      row[b0 + r] = 0.0;  // sklearn sets the self-distance to exactly 0
      std::nth_element(row, row + o.k, row + n);
      radii[b0 + r] = row[o.k];
    }
  }
  return radii;
}

RealBalls real_balls(const FeatureView& real, const FeatureView& fake,
                     const DensityCoverageOptions& o) {
  return real_balls(real, reference_radii(real, o), fake, o);
}

RealBalls real_balls(const FeatureView& real, const std::vector<double>& radii,
                     const FeatureView& fake, const DensityCoverageOptions& o) {
  check_reference(real, o);
  if (static_cast<int64_t>(radii.size()) != real.rows)
    fail("density/coverage: ", radii.size(), " radii for ", real.rows, " reference rows");
  if (fake.rows < 1) fail("density/coverage: no sample rows");
  if (real.cols != fake.cols)
    fail("density/coverage: reference rows have ", real.cols, " features, samples ", fake.cols);
  check_finite(fake, "density/coverage sample features");
  const int64_t n = real.rows, m = fake.rows, d = real.cols, bs = std::max<int64_t>(1, o.block);
  const std::vector<double> r64 = to_double(real, 0, n);
  const std::vector<double> rn = squared_norms(r64, n, d);
  RealBalls balls;
  balls.k = o.k;
  balls.reals = n;
  balls.fakes = m;
  balls.radii = radii;
  // which real balls hold each fake point (strict)
  std::vector<double> dist;
  balls.offsets.assign(1, 0);
  for (int64_t b0 = 0; b0 < m; b0 += bs) {
    const int64_t b = std::min(bs, m - b0);
    const std::vector<double> blk = to_double(fake, b0, b0 + b);
    const std::vector<double> bn = squared_norms(blk, b, d);
    distances(blk, bn, b, r64, rn, n, d, dist);
    for (int64_t r = 0; r < b; ++r) {
      const double* row = dist.data() + r * n;
      for (int64_t i = 0; i < n; ++i)
        if (row[i] < radii[i]) balls.reals_of_fake.push_back(static_cast<int32_t>(i));
      balls.offsets.push_back(static_cast<int64_t>(balls.reals_of_fake.size()));
    }
  }
  return balls;
}

DensityCoverage density_coverage(const RealBalls& balls, const std::vector<int32_t>& weights) {
  if (!weights.empty() && static_cast<int64_t>(weights.size()) != balls.fakes)
    fail("density/coverage: ", weights.size(), " weights for ", balls.fakes, " samples");
  std::vector<char> covered(static_cast<size_t>(balls.reals), 0);
  double inside = 0, total = 0;
  for (int64_t j = 0; j < balls.fakes; ++j) {
    const double w = weights.empty() ? 1.0 : weights[j];
    total += w;
    if (w == 0) continue;
    const int64_t begin = balls.offsets[j], end = balls.offsets[j + 1];
    inside += w * static_cast<double>(end - begin);
    for (int64_t p = begin; p < end; ++p)
      covered[balls.reals_of_fake[p]] = 1;
  }
  DensityCoverage r;
  r.density = total > 0 ? inside / (balls.k * total) : 0.0;
  r.coverage = static_cast<double>(std::count(covered.begin(), covered.end(), 1)) /
               static_cast<double>(balls.reals);
  return r;
}

}  // namespace sit::metrics
