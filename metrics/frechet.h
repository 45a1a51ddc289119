#pragma once
/// Frechet distance between two Gaussians (FID on pool_3, sFID on spatial features):
///   FD = |mu1 - mu2|^2 + tr S1 + tr S2 - 2 tr sqrt(S1 S2),
/// with ADM's conventions: side 1 = samples, side 2 = reference.

#include <string>
#include <vector>

#include "metrics/feature_stats.h"

namespace sit::metrics {

enum class FrechetRoute {
  /// tr sqrt(S1 S2) = sum sqrt(eig(L^T S1 L)) with S2 = L L^T (blocked Cholesky, two
  /// dtrmm, LAPACK dsyevd without vectors). Falls back to S1's Cholesky factor, then to an
  /// eigen factor of S2 when neither is positive definite. Fast and symmetric-exact.
  kEigen,
  /// scipy.linalg.sqrtm semantics via Eigen MatrixFunctions (real Schur, complex Schur
  /// when the real one has 2x2 blocks or negative eigenvalues): for parity checks.
  kSqrtm,
};

/// "eigen" / "sqrtm"; parse errors list the valid names.
const char* to_string(FrechetRoute route);
FrechetRoute parse_frechet_route(const std::string& name);

struct FrechetOptions {
  FrechetRoute route = FrechetRoute::kEigen;
  /// Diagonal offset of ADM's retry when the square root is not finite.
  double eps = 1e-6;
  /// ADM raises when a diagonal imaginary part of sqrtm(S1 S2) exceeds this.
  double max_imaginary = 1e-3;
};

struct FrechetResult {
  double distance = 0;     ///< FD
  double mean_term = 0;    ///< |mu1 - mu2|^2
  double trace_1 = 0;      ///< tr S1
  double trace_2 = 0;      ///< tr S2
  double trace_sqrt = 0;   ///< tr sqrt(S1 S2)
  bool eps_retry = false;  ///< the 1e-6 diagonal offset was needed
  std::vector<std::string> warnings;
};

/// Throws sit::Error on mismatched shapes, non-finite inputs, or (sqrtm route) a
/// significant imaginary component.
FrechetResult frechet_distance(const FeatureStats& samples, const FeatureStats& reference,
                               const FrechetOptions& options = {});

/// Many Frechet distances against one reference (a bootstrap's replicates): the reference
/// covariance is factored once, S2 = W W^T (Cholesky, or an eigen factor when S2 is only
/// semidefinite), and each distance takes tr sqrt(S1 S2) = sum sqrt(eig(W^T S1 W)) — one
/// congruence and one eigenvalue solve. The eigen route of frechet_distance; a result
/// that is not finite is recomputed by frechet_distance (ADM's eps retry and its errors).
/// Holds a copy of the reference statistics and the factor (2 D^2 doubles).
class FrechetReference {
 public:
  explicit FrechetReference(const FeatureStats& reference);
  double distance(const FeatureStats& samples) const;

 private:
  FeatureStats reference_;
  Eigen::MatrixXd factor_;  ///< lower-triangular L (cholesky_) or W = V diag(sqrt(lam))
  bool cholesky_ = false;
};

/// tr sqrt(S1 S2) for symmetric PSD S1, S2 by the eigen route (exposed for tests and
/// benchmarks).
double trace_sqrt_product_eigen(const Eigen::MatrixXd& s1, const Eigen::MatrixXd& s2);
/// The same by scipy's sqrtm semantics; `max_diag_imag` receives max |Im diag(sqrtm)|.
double trace_sqrt_product_sqrtm(const Eigen::MatrixXd& s1, const Eigen::MatrixXd& s2,
                                double* max_diag_imag);

}  // namespace sit::metrics
