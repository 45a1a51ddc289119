#pragma once
/// Mean and covariance of feature vectors in double precision, from a whole matrix
/// (two-pass) or streamed in batches (blockwise centred dsyrk + Chan's parallel merge).

#include <Eigen/Core>
#include <cstdint>
#include <vector>

#include "metrics/features.h"

namespace sit::metrics {

/// Gaussian summary of a feature set. `count` is 0 for statistics read from a file that
/// did not record it (e.g. ADM reference batches).
struct FeatureStats {
  int64_t count = 0;
  Eigen::VectorXd mu;     ///< (D)
  Eigen::MatrixXd sigma;  ///< (D, D), symmetric
  int64_t dim() const { return mu.size(); }
};

struct StatsOptions {
  /// Divide the scatter matrix by N - ddof. ADM / numpy np.cov use ddof = 1; NVIDIA's
  /// tools (StyleGAN2-ADA, EDM) use ddof = 0.
  int ddof = 1;
  /// Rows per centred dsyrk block. Larger blocks run BLAS closer to peak; the buffer
  /// costs block_rows * D * 8 bytes.
  int64_t block_rows = 2048;
};

/// Streaming accumulator. Rows are grouped into blocks of exactly `block_rows` whatever
/// the sizes passed to add(), so the result depends only on the row sequence.
class StatsAccumulator {
 public:
  explicit StatsAccumulator(int64_t dim, StatsOptions options = {});

  /// Adds row-major rows [n, dim].
  void add(const float* rows, int64_t n);
  void add(const double* rows, int64_t n);
  void add(const FeatureView& rows) { add(rows.data, rows.rows); }
  /// Folds in another accumulator of the same dimension (order-independent up to
  /// rounding: merging partial accumulators equals one pass to ~1e-12 relative).
  void merge(const StatsAccumulator& other);

  int64_t count() const { return count_ + buffered_; }
  int64_t dim() const { return dim_; }
  /// Mean and covariance of everything added so far; throws when count() < ddof + 1.
  FeatureStats finalize() const;

 private:
  template <class T>
  void add_rows(const T* rows, int64_t n);
  void flush();
  void fold(int64_t n_b, const Eigen::VectorXd& mean_b);

  int64_t dim_;
  StatsOptions options_;
  int64_t count_ = 0;           // rows folded into mean_/scatter_
  Eigen::VectorXd mean_;        // (D)
  Eigen::MatrixXd scatter_;     // (D, D), lower triangle: sum of centred outer products
  std::vector<double> buffer_;  // block_rows x D, row-major
  int64_t buffered_ = 0;
};

/// Two-pass statistics of a whole matrix: exact double mean, then centred blocks through
/// dsyrk. This is numpy's np.mean(axis=0) / np.cov(rowvar=False) in double.
FeatureStats compute_stats(const FeatureView& features, StatsOptions options = {});

}  // namespace sit::metrics
