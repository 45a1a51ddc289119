#pragma once
/// Thin, typed wrappers over the Fortran BLAS/LAPACK routines the metrics need.
/// Matrices are column-major as BLAS sees them; a row-major [n, d] feature block is a
/// column-major (d x n) matrix with leading dimension d.

#include <cstdint>
#include <string>
#include <vector>

namespace sit::linalg {

/// Threads for BLAS (OpenBLAS API when present) and for our OpenMP loops.
/// n <= 0 selects the number of online cores.
void set_num_threads(int n);
int num_threads();
/// CPUs this process may run on (its affinity mask; online cores as a fallback).
int hardware_threads();
/// Which BLAS libraries and kernel sets are in use, e.g.
/// "BLIS 0.9.0 (skx kernels) + OpenBLAS (Prescott kernels), 2 threads".
std::string blas_description();

/// C(lower) = alpha * A A^T + beta * C, A column-major (n x k), lda >= n.
void dsyrk_lower(int64_t n, int64_t k, double alpha, const double* a, int64_t lda, double beta,
                 double* c, int64_t ldc);
/// C(lower) += alpha * x x^T.
void dsyr_lower(int64_t n, double alpha, const double* x, double* a, int64_t lda);
/// C = alpha * op(A) op(B) + beta * C in float, column-major.
void sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
           int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc);
/// Same in double.
void dgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, double alpha,
           const double* a, int64_t lda, const double* b, int64_t ldb, double beta, double* c,
           int64_t ldc);
/// Cholesky A = L L^T of the lower triangle, in place (blocked: LAPACK on 256-wide
/// diagonal blocks, level-3 BLAS for the panels and updates). Returns false when A is not
/// positive definite.
bool dpotrf_lower(int64_t n, double* a, int64_t lda);
/// A <- L^T A L for a full symmetric A and lower-triangular L (two dtrmm calls).
void congruence_lower(int64_t n, double* a, int64_t lda, const double* l, int64_t ldl);
/// Eigenvalues (ascending) of the symmetric matrix in the lower triangle of A; A is
/// overwritten. With vectors, A holds the orthonormal eigenvectors on return.
std::vector<double> dsyevd_lower(int64_t n, double* a, int64_t lda, bool vectors);

}  // namespace sit::linalg
