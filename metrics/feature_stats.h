#pragma once
/// Mean and covariance of feature vectors in double precision, from a whole matrix
/// (two-pass) or streamed in batches (blockwise centred dsyrk + Chan's parallel merge).

#include <Eigen/Core>
#include <cstdint>
#include <string>
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

/// Statistics of `rows` x `dim` float rows arriving in order, in pieces of any size, in one
/// pass: each row is converted to double, shifted by c (the mean of the first block) and
/// folded into a centred dsyrk block; scatter = sum (x - c)(x - c)^T - n delta delta^T,
/// mean = c + delta with delta = mean(x - c). The result is bit for bit the same whatever
/// the pieces (and the thread count): blocks of `block_rows` rows from the first row, column
/// sums in fixed 64-row chunks. Only the first block is held (block_rows * dim floats) until
/// the shift is known; a piece that starts a block is read in place. Memory:
/// block_rows * dim doubles + dim^2 doubles.
class StreamingStats {
 public:
  /// `what` names the rows in errors ("FILE 'pool'").
  StreamingStats(int64_t rows, int64_t dim, StatsOptions options, std::string what);
  /// Adds row-major rows [n, dim]. Throws sit::Error naming `what`, the row (counted from
  /// the first row added) and column of the first non-finite value of a block, or when more
  /// than `rows` rows arrive.
  void add(const float* rows, int64_t n);
  /// Mean and covariance; throws unless exactly `rows` rows were added, or when
  /// rows < ddof + 1.
  FeatureStats finalize();
  /// The block size pieces should come in to be read in place: min(block_rows, rows).
  int64_t block_rows() const { return block_rows_; }

 private:
  void process_block(const float* rows, int64_t n);

  int64_t rows_, dim_, block_rows_;
  int ddof_;
  std::string what_;
  int64_t added_ = 0;      // rows passed to add()
  int64_t processed_ = 0;  // rows folded into scatter_
  bool have_shift_ = false;
  Eigen::VectorXd shift_, delta_sum_;
  Eigen::MatrixXd scatter_, chunk_sums_;
  std::vector<double> block_;   // block_rows x dim, shifted rows
  std::vector<float> pending_;  // a block's rows not yet complete
  int64_t pending_rows_ = 0;
};

/// Checks statistics read from a file (npz / HDF5 mu and sigma, EDM2 reference pickles)
/// before they are used: every entry finite, and sigma a covariance matrix as far as O(D^2)
/// can tell: a non-negative diagonal, symmetric, |sigma_ij| <= sqrt(sigma_ii sigma_jj) (each
/// within 1e-6 of the scale, for rounding). Otherwise FID comes out negative or complex (ADM's
/// evaluator does not check). `mu_name` / `sigma_name` name the arrays in the errors
/// ("FILE: 'mu'"). Throws sit::Error naming the first bad entry.
void check_stored_stats(const FeatureStats& stats, const std::string& mu_name,
                        const std::string& sigma_name);

/// Statistics of a whole matrix, numpy's np.mean(axis=0) / np.cov(rowvar=False) in double:
/// StreamingStats over the rows in place.
FeatureStats compute_stats(const FeatureView& features, StatsOptions options = {});

}  // namespace sit::metrics
