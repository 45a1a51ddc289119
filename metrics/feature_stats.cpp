#include "metrics/feature_stats.h"

#include <algorithm>
#include <cmath>

#include "common/error.h"
#include "metrics/linalg.h"

namespace sit::metrics {
namespace {

// Fills the upper triangle from the lower one.
void symmetrize_from_lower(Eigen::MatrixXd& m) {
  m.triangularView<Eigen::StrictlyUpper>() = m.transpose();
}

FeatureStats make_stats(int64_t count, const Eigen::VectorXd& mean, const Eigen::MatrixXd& scatter,
                        int ddof) {
  if (count - ddof < 1)
    fail("feature statistics: need at least ", ddof + 1, " rows for a covariance with ddof ", ddof,
         ", got ", count);
  FeatureStats stats;
  stats.count = count;
  stats.mu = mean;
  stats.sigma = scatter / static_cast<double>(count - ddof);
  symmetrize_from_lower(stats.sigma);
  return stats;
}

// Subtracts `mean` from every row of the row-major double block [n, d] in place.
void center_rows(double* block, int64_t n, int64_t d, const double* mean) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    double* r = block + i * d;
    for (int64_t j = 0; j < d; ++j)
      r[j] -= mean[j];
  }
}

}  // namespace

StatsAccumulator::StatsAccumulator(int64_t dim, StatsOptions options)
    : dim_(dim), options_(options) {
  if (dim <= 0) fail("StatsAccumulator: dim must be positive, got ", dim);
  if (options_.block_rows <= 0)
    fail("StatsAccumulator: block_rows must be positive, got ", options_.block_rows);
  if (options_.ddof < 0) fail("StatsAccumulator: ddof must be >= 0, got ", options_.ddof);
  mean_ = Eigen::VectorXd::Zero(dim);
  scatter_ = Eigen::MatrixXd::Zero(dim, dim);
}

template <class T>
void StatsAccumulator::add_rows(const T* rows, int64_t n) {
  if (n < 0) fail("StatsAccumulator::add: row count must be >= 0, got ", n);
  if (buffer_.empty()) buffer_.resize(static_cast<size_t>(options_.block_rows * dim_));
  int64_t done = 0;
  while (done < n) {
    const int64_t take = std::min(n - done, options_.block_rows - buffered_);
    const T* src = rows + done * dim_;
    double* dst = buffer_.data() + buffered_ * dim_;
    const int64_t total = take * dim_;
#pragma omp parallel for schedule(static) if (total > (1 << 16))
    for (int64_t j = 0; j < total; ++j)
      dst[j] = static_cast<double>(src[j]);
    buffered_ += take;
    done += take;
    if (buffered_ == options_.block_rows) flush();
  }
}

void StatsAccumulator::add(const float* rows, int64_t n) {
  add_rows(rows, n);
}
void StatsAccumulator::add(const double* rows, int64_t n) {
  add_rows(rows, n);
}

// Chan et al.: combine (count_, mean_, scatter_) with a block of n_b rows whose centred
// scatter has already been added into scatter_ and whose mean is mean_b.
void StatsAccumulator::fold(int64_t n_b, const Eigen::VectorXd& mean_b) {
  const int64_t n_a = count_;
  const int64_t n = n_a + n_b;
  if (n_a == 0) {
    mean_ = mean_b;
  } else {
    const Eigen::VectorXd delta = mean_b - mean_;
    const double w = static_cast<double>(n_a) * static_cast<double>(n_b) / static_cast<double>(n);
    linalg::dsyr_lower(dim_, w, delta.data(), scatter_.data(), dim_);
    mean_ += delta * (static_cast<double>(n_b) / static_cast<double>(n));
  }
  count_ = n;
}

void StatsAccumulator::flush() {
  if (buffered_ == 0) return;
  const int64_t n = buffered_;
  Eigen::Map<Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>> block(
      buffer_.data(), n, dim_);
  const Eigen::VectorXd mean_b = block.colwise().sum().transpose() / static_cast<double>(n);
  center_rows(buffer_.data(), n, dim_, mean_b.data());
  // Row-major [n, D] is column-major (D x n): scatter += X_c^T X_c.
  linalg::dsyrk_lower(dim_, n, 1.0, buffer_.data(), dim_, 1.0, scatter_.data(), dim_);
  fold(n, mean_b);
  buffered_ = 0;
}

void StatsAccumulator::merge(const StatsAccumulator& other) {
  if (other.dim_ != dim_)
    fail("StatsAccumulator::merge: dimensions must match, got ", dim_, " and ", other.dim_);
  if (other.count_ > 0) {
    flush();
    scatter_ += other.scatter_;  // lower triangles; the cross term is added by fold()
    fold(other.count_, other.mean_);
  }
  if (other.buffered_ > 0) add(other.buffer_.data(), other.buffered_);
}

FeatureStats StatsAccumulator::finalize() const {
  StatsAccumulator copy = *this;
  copy.flush();
  return make_stats(copy.count_, copy.mean_, copy.scatter_, options_.ddof);
}

namespace {
// Column sums of a block are taken over fixed 64-row chunks and combined in order, so the
// result does not depend on the number of threads.
constexpr int64_t kChunk = 64;
}  // namespace

StreamingStats::StreamingStats(int64_t rows, int64_t dim, StatsOptions options, std::string what)
    : rows_(rows), dim_(dim), ddof_(options.ddof), what_(std::move(what)) {
  if (dim <= 0) fail(what_, ": feature dimension must be positive, got ", dim);
  if (options.block_rows <= 0) fail("StreamingStats: block_rows must be positive, got ", options.block_rows);
  if (options.ddof < 0) fail("StreamingStats: ddof must be >= 0, got ", options.ddof);
  if (rows - options.ddof < 1)
    fail(what_, ": need at least ", options.ddof + 1, " rows for a covariance with ddof ",
         options.ddof, ", got ", rows);
  block_rows_ = std::min<int64_t>(options.block_rows, rows);
  shift_ = Eigen::VectorXd::Zero(dim);
  delta_sum_ = Eigen::VectorXd::Zero(dim);
  scatter_ = Eigen::MatrixXd::Zero(dim, dim);
  chunk_sums_.resize(dim, (block_rows_ + kChunk - 1) / kChunk);
  block_.resize(static_cast<size_t>(block_rows_ * dim));
}

void StreamingStats::add(const float* rows, int64_t n) {
  if (n < 0) fail("StreamingStats::add: row count must be >= 0, got ", n);
  if (n > rows_ - added_)
    fail(what_, ": ", added_ + n, " rows added, expected ", rows_);
  added_ += n;
  while (n > 0) {
    const int64_t block = std::min(block_rows_, rows_ - processed_);
    if (pending_rows_ == 0 && n >= block) {  // a whole block in place
      process_block(rows, block);
      rows += block * dim_;
      n -= block;
      continue;
    }
    if (pending_.empty()) pending_.resize(static_cast<size_t>(block_rows_ * dim_));
    const int64_t take = std::min(n, block - pending_rows_);
    std::copy(rows, rows + take * dim_, pending_.data() + pending_rows_ * dim_);
    pending_rows_ += take;
    rows += take * dim_;
    n -= take;
    if (pending_rows_ == block) {
      pending_rows_ = 0;
      process_block(pending_.data(), block);
    }
  }
}

void StreamingStats::process_block(const float* rows, int64_t n) {
  const int64_t d = dim_;
  if (!have_shift_) {  // c: the mean of the first block, summed row by row in order
    for (int64_t i = 0; i < n; ++i)
      shift_ += Eigen::Map<const Eigen::VectorXf>(rows + i * d, d).cast<double>();
    shift_ /= static_cast<double>(n);
    have_shift_ = true;
  }
  const int64_t chunks = (n + kChunk - 1) / kChunk;
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < chunks; ++c) {
    // __restrict: without it the possible aliasing of dst and sum keeps this loop from
    // vectorising (measured: +0.2 s per 50,000 x 2048 set).
    double* __restrict sum = chunk_sums_.col(c).data();
    const double* __restrict c_shift = shift_.data();
    std::fill(sum, sum + d, 0.0);
    for (int64_t i = c * kChunk; i < std::min(n, (c + 1) * kChunk); ++i) {
      const float* __restrict src = rows + i * d;
      double* __restrict dst = block_.data() + i * d;
      for (int64_t j = 0; j < d; ++j) {
        dst[j] = static_cast<double>(src[j]) - c_shift[j];
        sum[j] += dst[j];
      }
    }
  }
  // A NaN or Inf anywhere in the block makes its column sums non-finite (finite floats
  // cannot overflow a double sum of a block): only then look for the row.
  for (int64_t c = 0; c < chunks; ++c)
    if (!chunk_sums_.col(c).allFinite()) check_finite({rows, n, d}, what_, processed_);
  for (int64_t c = 0; c < chunks; ++c)
    delta_sum_ += chunk_sums_.col(c);
  linalg::dsyrk_lower(d, n, 1.0, block_.data(), d, 1.0, scatter_.data(), d);
  processed_ += n;
}

FeatureStats StreamingStats::finalize() {
  if (processed_ != rows_)
    fail(what_, ": ", added_, " rows added, expected ", rows_);
  const Eigen::VectorXd delta = delta_sum_ / static_cast<double>(rows_);
  linalg::dsyr_lower(dim_, -static_cast<double>(rows_), delta.data(), scatter_.data(), dim_);
  return make_stats(rows_, shift_ + delta, scatter_, ddof_);
}

FeatureStats compute_stats(const FeatureView& features, StatsOptions options) {
  if (features.cols <= 0)
    fail("compute_stats: feature dimension must be positive, got ", features.cols);
  if (features.rows - options.ddof < 1)
    fail("compute_stats: need at least ", options.ddof + 1, " rows, got ", features.rows);
  StreamingStats stats(features.rows, features.cols, options, "features");
  stats.add(features.data, features.rows);
  return stats.finalize();
}

void check_stored_stats(const FeatureStats& stats, const std::string& mu_name,
                        const std::string& sigma_name) {
  const int64_t d = stats.mu.size();
  for (int64_t i = 0; i < d; ++i)
    if (!std::isfinite(stats.mu(i)))
      fail(mu_name, " holds NaN or Inf (entry ", i, "); statistics must be finite");
  const Eigen::MatrixXd& sigma = stats.sigma;
  for (int64_t i = 0; i < d; ++i)
    for (int64_t j = 0; j < d; ++j)
      if (!std::isfinite(sigma(i, j)))
        fail(sigma_name, " holds NaN or Inf (entry (", i, ", ", j,
             ")); statistics must be finite");
  for (int64_t i = 0; i < d; ++i)
    if (sigma(i, i) < 0)
      fail(sigma_name, " is not a covariance matrix: diagonal entry ", i, " is ", sigma(i, i));
  for (int64_t i = 0; i < d; ++i)
    for (int64_t j = 0; j < i; ++j) {
      const double scale = std::sqrt(sigma(i, i) * sigma(j, j));
      if (std::fabs(sigma(i, j) - sigma(j, i)) > 1e-6 * scale + 1e-300 ||
          std::fabs(sigma(i, j)) > scale * (1 + 1e-6) + 1e-300)
        fail(sigma_name, " is not a covariance matrix: entries (", i, ", ", j, ") and (", j, ", ",
             i, ") are ", sigma(i, j), " and ", sigma(j, i), " with variances ", sigma(i, i),
             " and ", sigma(j, j), " (it must be symmetric with |sigma_ij| <= "
             "sqrt(sigma_ii sigma_jj))");
    }
}

}  // namespace sit::metrics
