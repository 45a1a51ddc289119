#include "metrics/frechet.h"

#include <strings.h>

#include <unsupported/Eigen/MatrixFunctions>

#include <Eigen/Eigenvalues>
#include <cmath>
#include <complex>

#include "common/error.h"
#include "metrics/linalg.h"

namespace sit::metrics {
namespace {

constexpr const char* kRouteNames[] = {"eigen", "sqrtm"};

double sum_sqrt_clipped(const std::vector<double>& eigenvalues) {
  // Tiny negative eigenvalues of a PSD product are rounding; sqrtm's real part is 0 there.
  double total = 0;
  for (double v : eigenvalues)
    total += std::sqrt(std::max(v, 0.0));
  return total;
}

// tr sqrt(A B) = sum sqrt(eig(L^T A L)) with B = L L^T: L^T A L is similar to B A (and
// has the eigenvalues of A B) but is symmetric. Returns false when B is not positive
// definite.
bool trace_sqrt_cholesky(const Eigen::MatrixXd& a, const Eigen::MatrixXd& b, double* out) {
  const int64_t n = a.rows();
  Eigen::MatrixXd l = b;
  if (!linalg::dpotrf_lower(n, l.data(), n)) return false;
  Eigen::MatrixXd m = a;
  linalg::congruence_lower(n, m.data(), n, l.data(), n);
  *out = sum_sqrt_clipped(linalg::dsyevd_lower(n, m.data(), n, /*vectors=*/false));
  return true;
}

// Semidefinite fallback: B = V diag(lam) V^T, W = V diag(sqrt(max(lam, 0))), then the
// eigenvalues of W^T A W.
double trace_sqrt_eigen_factor(const Eigen::MatrixXd& a, const Eigen::MatrixXd& b) {
  const int64_t n = a.rows();
  Eigen::MatrixXd v = b;
  const std::vector<double> lam = linalg::dsyevd_lower(n, v.data(), n, /*vectors=*/true);
  for (int64_t j = 0; j < n; ++j)
    v.col(j) *= std::sqrt(std::max(lam[j], 0.0));
  Eigen::MatrixXd aw(n, n), m(n, n);
  linalg::dgemm(false, false, n, n, n, 1.0, a.data(), n, v.data(), n, 0.0, aw.data(), n);
  linalg::dgemm(true, false, n, n, n, 1.0, v.data(), n, aw.data(), n, 0.0, m.data(), n);
  return sum_sqrt_clipped(linalg::dsyevd_lower(n, m.data(), n, /*vectors=*/false));
}

}  // namespace

const char* to_string(FrechetRoute route) {
  return kRouteNames[static_cast<int>(route)];
}

FrechetRoute parse_frechet_route(const std::string& name) {
  for (int i = 0; i < 2; ++i)
    if (strcasecmp(name.c_str(), kRouteNames[i]) == 0) return static_cast<FrechetRoute>(i);
  fail("frechet route must be one of eigen, sqrtm; got '", name, "'");
}

double trace_sqrt_product_eigen(const Eigen::MatrixXd& s1, const Eigen::MatrixXd& s2) {
  double out = 0;
  // The reference side is usually full rank (e.g. ImageNet statistics): factor it first.
  if (trace_sqrt_cholesky(s1, s2, &out)) return out;
  if (trace_sqrt_cholesky(s2, s1, &out)) return out;
  return trace_sqrt_eigen_factor(s1, s2);
}

double trace_sqrt_product_sqrtm(const Eigen::MatrixXd& s1, const Eigen::MatrixXd& s2,
                                double* max_diag_imag) {
  const int64_t n = s1.rows();
  Eigen::MatrixXd product(n, n);
  linalg::dgemm(false, false, n, n, n, 1.0, s1.data(), n, s2.data(), n, 0.0, product.data(), n);
  *max_diag_imag = 0;

  // scipy.linalg.sqrtm: real Schur form; it switches to the complex Schur form when the
  // real one is not triangular (complex eigenvalue pairs) or has a negative diagonal.
  Eigen::RealSchur<Eigen::MatrixXd> real_schur(product);
  const Eigen::MatrixXd& t = real_schur.matrixT();
  bool stay_real = true;
  for (int64_t i = 0; i < n && stay_real; ++i) {
    if (t(i, i) < 0) stay_real = false;
    if (i + 1 < n && t(i + 1, i) != 0) stay_real = false;
  }
  if (stay_real) {
    Eigen::MatrixXd sqrt_t = Eigen::MatrixXd::Zero(n, n);
    Eigen::matrix_sqrt_triangular(t, sqrt_t);
    const Eigen::MatrixXd& u = real_schur.matrixU();
    const Eigen::MatrixXd covmean = u * sqrt_t.triangularView<Eigen::Upper>() * u.transpose();
    if (!covmean.allFinite()) return std::numeric_limits<double>::quiet_NaN();
    return covmean.trace();
  }
  Eigen::ComplexSchur<Eigen::MatrixXcd> complex_schur(product.cast<std::complex<double>>());
  Eigen::MatrixXcd sqrt_t = Eigen::MatrixXcd::Zero(n, n);
  Eigen::matrix_sqrt_triangular(complex_schur.matrixT(), sqrt_t);
  const Eigen::MatrixXcd& u = complex_schur.matrixU();
  const Eigen::MatrixXcd covmean = u * sqrt_t.triangularView<Eigen::Upper>() * u.adjoint();
  if (!covmean.allFinite()) return std::numeric_limits<double>::quiet_NaN();
  for (int64_t i = 0; i < n; ++i)
    *max_diag_imag = std::max(*max_diag_imag, std::abs(covmean(i, i).imag()));
  return covmean.real().trace();
}

FrechetResult frechet_distance(const FeatureStats& samples, const FeatureStats& reference,
                               const FrechetOptions& options) {
  const int64_t d = samples.mu.size();
  if (reference.mu.size() != d)
    fail("frechet_distance: mean dimensions must match, got ", d, " (samples) and ",
         reference.mu.size(), " (reference)");
  if (samples.sigma.rows() != d || samples.sigma.cols() != d)
    fail("frechet_distance: sample covariance must be (", d, ", ", d, "), got (",
         samples.sigma.rows(), ", ", samples.sigma.cols(), ")");
  if (reference.sigma.rows() != d || reference.sigma.cols() != d)
    fail("frechet_distance: reference covariance must be (", d, ", ", d, "), got (",
         reference.sigma.rows(), ", ", reference.sigma.cols(), ")");
  if (!samples.mu.allFinite() || !samples.sigma.allFinite())
    fail("frechet_distance: sample statistics must be finite, got NaN or Inf");
  if (!reference.mu.allFinite() || !reference.sigma.allFinite())
    fail("frechet_distance: reference statistics must be finite, got NaN or Inf");

  FrechetResult r;
  for (const auto* s : {&samples, &reference}) {
    if (s->count > 0 && s->count <= d)
      r.warnings.push_back(cat("frechet_distance: ", s == &samples ? "sample" : "reference",
                               " covariance is rank-deficient (N = ", s->count, " <= D = ", d,
                               "); the distance is biased, use N > D"));
  }
  r.mean_term = (samples.mu - reference.mu).squaredNorm();
  r.trace_1 = samples.sigma.trace();
  r.trace_2 = reference.sigma.trace();

  auto trace_sqrt = [&](const Eigen::MatrixXd& s1, const Eigen::MatrixXd& s2) {
    if (options.route == FrechetRoute::kEigen) return trace_sqrt_product_eigen(s1, s2);
    double imag = 0;
    const double t = trace_sqrt_product_sqrtm(s1, s2, &imag);
    if (std::isfinite(t) && imag > options.max_imaginary)
      fail("frechet_distance: imaginary component ", imag,
           " of sqrtm(S1 S2)'s diagonal must be <= ", options.max_imaginary,
           " (ADM raises here too); the covariances are numerically unstable");
    return t;
  };
  r.trace_sqrt = trace_sqrt(samples.sigma, reference.sigma);
  if (!std::isfinite(r.trace_sqrt)) {
    // ADM: "fid calculation produces singular product; adding eps to diagonal of cov".
    r.eps_retry = true;
    r.warnings.push_back(cat("frechet_distance: singular product; adding ", options.eps,
                             " to the diagonal of both covariances (as ADM does)"));
    const Eigen::MatrixXd offset = Eigen::MatrixXd::Identity(d, d) * options.eps;
    r.trace_sqrt = trace_sqrt(samples.sigma + offset, reference.sigma + offset);
    if (!std::isfinite(r.trace_sqrt))
      fail("frechet_distance: tr sqrt(S1 S2) is not finite even with the ", options.eps,
           " diagonal offset");
  }
  r.distance = r.mean_term + r.trace_1 + r.trace_2 - 2.0 * r.trace_sqrt;
  return r;
}

FrechetReference::FrechetReference(const FeatureStats& reference) : reference_(reference) {
  const int64_t n = reference.sigma.rows();
  if (reference.sigma.cols() != n || reference.mu.size() != n)
    fail("frechet_distance: reference covariance must be (", reference.mu.size(), ", ",
         reference.mu.size(), "), got (", n, ", ", reference.sigma.cols(), ")");
  if (!reference.mu.allFinite() || !reference.sigma.allFinite())
    fail("frechet_distance: reference statistics must be finite, got NaN or Inf");
  factor_ = reference.sigma;
  cholesky_ = linalg::dpotrf_lower(n, factor_.data(), n);
  if (cholesky_) return;
  factor_ = reference.sigma;
  const std::vector<double> lam = linalg::dsyevd_lower(n, factor_.data(), n, /*vectors=*/true);
  for (int64_t j = 0; j < n; ++j)
    factor_.col(j) *= std::sqrt(std::max(lam[j], 0.0));
}

double FrechetReference::distance(const FeatureStats& samples) const {
  const int64_t n = factor_.rows();
  if (samples.mu.size() != n || samples.sigma.rows() != n || samples.sigma.cols() != n ||
      !samples.mu.allFinite() || !samples.sigma.allFinite())
    return frechet_distance(samples, reference_).distance;  // its checks and messages
  Eigen::MatrixXd m(n, n);
  if (cholesky_) {
    m = samples.sigma;
    linalg::congruence_lower(n, m.data(), n, factor_.data(), n);
  } else {
    Eigen::MatrixXd aw(n, n);
    linalg::dgemm(false, false, n, n, n, 1.0, samples.sigma.data(), n, factor_.data(), n, 0.0,
                  aw.data(), n);
    linalg::dgemm(true, false, n, n, n, 1.0, factor_.data(), n, aw.data(), n, 0.0, m.data(), n);
  }
  const double trace_sqrt = sum_sqrt_clipped(linalg::dsyevd_lower(n, m.data(), n, false));
  if (!std::isfinite(trace_sqrt)) return frechet_distance(samples, reference_).distance;
  return (samples.mu - reference_.mu).squaredNorm() + samples.sigma.trace() +
         reference_.sigma.trace() - 2.0 * trace_sqrt;
}

}  // namespace sit::metrics
