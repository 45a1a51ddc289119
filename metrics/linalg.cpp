#include "metrics/linalg.h"

#include <omp.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <string>

#include "common/error.h"

// Fortran interfaces (every BLAS/LAPACK exports these); declared here so no vendor
// header is needed.
extern "C" {
void dsyrk_(const char* uplo, const char* trans, const int* n, const int* k, const double* alpha,
            const double* a, const int* lda, const double* beta, double* c, const int* ldc);
void dsyr_(const char* uplo, const int* n, const double* alpha, const double* x, const int* incx,
           double* a, const int* lda);
void sgemm_(const char* ta, const char* tb, const int* m, const int* n, const int* k,
            const float* alpha, const float* a, const int* lda, const float* b, const int* ldb,
            const float* beta, float* c, const int* ldc);
void dgemm_(const char* ta, const char* tb, const int* m, const int* n, const int* k,
            const double* alpha, const double* a, const int* lda, const double* b, const int* ldb,
            const double* beta, double* c, const int* ldc);
void dpotrf_(const char* uplo, const int* n, double* a, const int* lda, int* info);
void dtrsm_(const char* side, const char* uplo, const char* transa, const char* diag, const int* m,
            const int* n, const double* alpha, const double* a, const int* lda, double* b,
            const int* ldb);
void dtrmm_(const char* side, const char* uplo, const char* transa, const char* diag, const int* m,
            const int* n, const double* alpha, const double* a, const int* lda, double* b,
            const int* ldb);
void dsyevd_(const char* jobz, const char* uplo, const int* n, double* a, const int* lda, double* w,
             double* work, const int* lwork, int* iwork, const int* liwork, int* info);
// Vendor extensions, weak so that any BLAS links: OpenBLAS and BLIS thread control, BLIS
// kernel-set queries.
void openblas_set_num_threads(int n) __attribute__((weak));
int openblas_get_num_threads(void) __attribute__((weak));
char* openblas_get_corename(void) __attribute__((weak));
void bli_init(void) __attribute__((weak));
void bli_thread_set_num_threads(int64_t n) __attribute__((weak));
int64_t bli_thread_get_num_threads(void) __attribute__((weak));
int bli_arch_query_id(void) __attribute__((weak));
const char* bli_arch_string(int id) __attribute__((weak));
const char* bli_info_get_version_str(void) __attribute__((weak));
}

namespace sit::linalg {
namespace {

// BLIS 0.9 chooses its AVX-512 ("skx") kernels only on CPU models whose FMA-unit count it
// knows; on newer Xeons it falls back to its AVX2 ("haswell") kernels at half the speed
// (measured here: dsyrk 53 vs 102 GFLOP/s). Before BLIS initialises, select "skx" when
// the CPU has the AVX-512 subsets those kernels use. A user's BLIS_ARCH_TYPE wins.
const bool kBlisKernelsChosen = [] {
  if (!bli_arch_string || std::getenv("BLIS_ARCH_TYPE")) return false;
  __builtin_cpu_init();
  if (!(__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
        __builtin_cpu_supports("avx512cd") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl")))
    return false;
  for (int id = 0; id < 64; ++id) {
    const char* name = bli_arch_string(id);
    if (!name) break;
    if (std::strcmp(name, "skx") == 0) {
      ::setenv("BLIS_ARCH_TYPE", std::to_string(id).c_str(), 0);
      return true;
    }
  }
  return false;
}();

// With BLIS linked first, OpenBLAS serves only LAPACK, whose level-3 calls reach BLIS and
// its threads. OpenBLAS's own threads, woken for one of its natively threaded routines
// (dpotrf), then spin against BLIS's: a blocked Cholesky of 2048^2 took 0.08 s instead of
// 0.027 s, and the FID distance 0.45 s instead of 0.38 s. LAPACK calls run with OpenBLAS
// serial for their duration; without BLIS, OpenBLAS keeps every thread.
class SerialOpenBlas {
 public:
  SerialOpenBlas() {
    if (!bli_thread_set_num_threads || !openblas_set_num_threads || !openblas_get_num_threads)
      return;
    saved_ = openblas_get_num_threads();
    if (saved_ > 1) openblas_set_num_threads(1);
  }
  ~SerialOpenBlas() {
    if (saved_ > 1) openblas_set_num_threads(saved_);
  }
  SerialOpenBlas(const SerialOpenBlas&) = delete;
  SerialOpenBlas& operator=(const SerialOpenBlas&) = delete;

 private:
  int saved_ = 0;
};

int to_int(int64_t v, const char* what) {
  if (v < 0 || v > INT_MAX) fail("linalg: ", what, " = ", v, " exceeds the 32-bit BLAS interface");
  return static_cast<int>(v);
}

}  // namespace

int hardware_threads() {
  // The CPUs this process may run on: a launcher that binds ranks to cores (mpirun, srun)
  // gets one thread per bound core instead of spinning threads fighting for one core.
  cpu_set_t set;
  if (::sched_getaffinity(0, sizeof(set), &set) == 0) {
    const int n = CPU_COUNT(&set);
    if (n > 0) return n;
  }
  const long n = ::sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? static_cast<int>(n) : 1;
}

void set_num_threads(int n) {
  if (n <= 0) n = hardware_threads();
  if (openblas_set_num_threads) openblas_set_num_threads(n);
  if (bli_thread_set_num_threads) bli_thread_set_num_threads(n);
  omp_set_num_threads(n);
}

int num_threads() {
  // BLIS reports -1 until a count is set: it then follows OpenMP's.
  if (bli_thread_get_num_threads && bli_thread_get_num_threads() > 0)
    return static_cast<int>(bli_thread_get_num_threads());
  if (openblas_get_num_threads) return openblas_get_num_threads();
  return omp_get_max_threads();
}

std::string blas_description() {
  std::string out;
  if (bli_info_get_version_str && bli_arch_query_id && bli_arch_string) {
    if (bli_init) bli_init();
    out = std::string("BLIS ") + bli_info_get_version_str() + " (" +
          bli_arch_string(bli_arch_query_id()) + " kernels" +
          (kBlisKernelsChosen ? ", chosen by sit-eval for this AVX-512 CPU" : "") + ")";
  }
  if (openblas_get_corename) {
    if (!out.empty()) out += " + ";
    out += std::string("OpenBLAS (") + openblas_get_corename() + " kernels)";
  }
  if (out.empty()) out = "system BLAS";
  return out + ", " + std::to_string(num_threads()) + " threads";
}

void dsyrk_lower(int64_t n, int64_t k, double alpha, const double* a, int64_t lda, double beta,
                 double* c, int64_t ldc) {
  const int n_ = to_int(n, "n"), k_ = to_int(k, "k"), lda_ = to_int(lda, "lda"),
            ldc_ = to_int(ldc, "ldc");
  dsyrk_("L", "N", &n_, &k_, &alpha, a, &lda_, &beta, c, &ldc_);
}

void dsyr_lower(int64_t n, double alpha, const double* x, double* a, int64_t lda) {
  const int n_ = to_int(n, "n"), lda_ = to_int(lda, "lda"), one = 1;
  dsyr_("L", &n_, &alpha, x, &one, a, &lda_);
}

void sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
           int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  const int m_ = to_int(m, "m"), n_ = to_int(n, "n"), k_ = to_int(k, "k"),
            lda_ = to_int(lda, "lda"), ldb_ = to_int(ldb, "ldb"), ldc_ = to_int(ldc, "ldc");
  sgemm_(trans_a ? "T" : "N", trans_b ? "T" : "N", &m_, &n_, &k_, &alpha, a, &lda_, b, &ldb_, &beta,
         c, &ldc_);
}

void dgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, double alpha,
           const double* a, int64_t lda, const double* b, int64_t ldb, double beta, double* c,
           int64_t ldc) {
  const int m_ = to_int(m, "m"), n_ = to_int(n, "n"), k_ = to_int(k, "k"),
            lda_ = to_int(lda, "lda"), ldb_ = to_int(ldb, "ldb"), ldc_ = to_int(ldc, "ldc");
  dgemm_(trans_a ? "T" : "N", trans_b ? "T" : "N", &m_, &n_, &k_, &alpha, a, &lda_, b, &ldb_, &beta,
         c, &ldc_);
}

bool dpotrf_lower(int64_t n, double* a, int64_t lda) {
  // Right-looking blocked Cholesky. The level-3 work (dtrsm, dsyrk) goes to the fast BLAS;
  // LAPACK only factors the small diagonal blocks.
  constexpr int64_t kBlock = 256;
  const int lda_ = to_int(lda, "lda");
  const double one = 1.0, minus_one = -1.0;
  for (int64_t k = 0; k < n; k += kBlock) {
    const int kb = static_cast<int>(std::min(kBlock, n - k));
    double* a11 = a + k + k * lda;
    int info = 0;
    {
      SerialOpenBlas serial;
      dpotrf_("L", &kb, a11, &lda_, &info);
    }
    if (info < 0) fail("linalg: dpotrf argument ", -info, " is invalid");
    if (info > 0) return false;
    const int rest = static_cast<int>(n - k - kb);
    if (rest == 0) break;
    double* a21 = a + (k + kb) + k * lda;
    double* a22 = a + (k + kb) + (k + kb) * lda;
    dtrsm_("R", "L", "T", "N", &rest, &kb, &one, a11, &lda_, a21, &lda_);  // A21 L11^-T
    dsyrk_("L", "N", &rest, &kb, &minus_one, a21, &lda_, &one, a22, &lda_);
  }
  return true;
}

void congruence_lower(int64_t n, double* a, int64_t lda, const double* l, int64_t ldl) {
  const int n_ = to_int(n, "n"), lda_ = to_int(lda, "lda"), ldl_ = to_int(ldl, "ldl");
  const double one = 1.0;
  dtrmm_("R", "L", "N", "N", &n_, &n_, &one, l, &ldl_, a, &lda_);  // A L
  dtrmm_("L", "L", "T", "N", &n_, &n_, &one, l, &ldl_, a, &lda_);  // L^T (A L)
}

std::vector<double> dsyevd_lower(int64_t n, double* a, int64_t lda, bool vectors) {
  const int n_ = to_int(n, "n"), lda_ = to_int(lda, "lda");
  const char* jobz = vectors ? "V" : "N";
  std::vector<double> w(static_cast<size_t>(n));
  SerialOpenBlas serial;
  int info = 0, lwork = -1, liwork = -1, iwork_query = 0;
  double work_query = 0;
  dsyevd_(jobz, "L", &n_, a, &lda_, w.data(), &work_query, &lwork, &iwork_query, &liwork, &info);
  if (info != 0) fail("linalg: dsyevd workspace query failed with info ", info);
  lwork = std::max(1, static_cast<int>(work_query));
  liwork = std::max(1, iwork_query);
  std::vector<double> work(static_cast<size_t>(lwork));
  std::vector<int> iwork(static_cast<size_t>(liwork));
  dsyevd_(jobz, "L", &n_, a, &lda_, w.data(), work.data(), &lwork, iwork.data(), &liwork, &info);
  if (info != 0) fail("linalg: dsyevd did not converge (info ", info, ")");
  return w;
}

}  // namespace sit::linalg
