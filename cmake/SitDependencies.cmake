# Finds every third-party dependency and, on failure, says what to install.
# Debian package names are given; for official LibTorch pass -DCMAKE_PREFIX_PATH.

macro(sit_require_package pkg debian_pkg)
  find_package(${pkg} ${ARGN} QUIET)
  if(NOT ${pkg}_FOUND)
    message(FATAL_ERROR
      "sit-eval: ${pkg} not found. On Debian/Ubuntu: apt-get install ${debian_pkg} "
      "(or run scripts/test.sh, which installs every dependency). If it is installed "
      "elsewhere, pass -DCMAKE_PREFIX_PATH=<its prefix>.")
  endif()
endmacro()

find_package(OpenMP REQUIRED)
find_package(Threads REQUIRED)

sit_require_package(Eigen3 libeigen3-dev NO_MODULE)
sit_require_package(CLI11 libcli11-dev CONFIG)
sit_require_package(nlohmann_json nlohmann-json3-dev CONFIG)
sit_require_package(ZLIB zlib1g-dev)
sit_require_package(PNG libpng-dev)
sit_require_package(JPEG libjpeg-dev)
sit_require_package(tomlplusplus libtomlplusplus-dev CONFIG)

set(HDF5_PREFER_PARALLEL OFF)
find_package(HDF5 COMPONENTS C QUIET)
if(NOT HDF5_FOUND)
  message(FATAL_ERROR "sit-eval: HDF5 (C library) not found. On Debian/Ubuntu: "
                      "apt-get install libhdf5-dev, or pass -DHDF5_ROOT=<prefix>.")
endif()

# BLAS + LAPACK.
# - LAPACK (dpotrf, dsygst, dsyevd) comes from the system LAPACK; on Debian that is
#   OpenBLAS's (libopenblas-dev).
# - The level-3 BLAS hot paths (dsyrk, dgemm, sgemm) come from BLIS when it is present
#   (SIT_BLAS=auto or blis): Debian's OpenBLAS 0.3.21 does not recognise recent Xeons and
#   falls back to SSE3 kernels there (measured 16 vs 100 GFLOP/s for dsyrk; see README).
#   BLIS is linked first, so its BLAS symbols take precedence in the process.
# - SIT_BLAS=system uses the system BLAS alone (any FindBLAS vendor via -DBLA_VENDOR).
set(SIT_BLAS "auto" CACHE STRING "BLAS for the hot paths: auto, blis or system")
set_property(CACHE SIT_BLAS PROPERTY STRINGS auto blis system)
if(NOT DEFINED BLA_VENDOR)
  set(BLA_VENDOR OpenBLAS)
endif()
find_package(BLAS QUIET)
find_package(LAPACK QUIET)
if(NOT BLAS_FOUND OR NOT LAPACK_FOUND)
  message(FATAL_ERROR "sit-eval: BLAS/LAPACK (vendor '${BLA_VENDOR}') not found. On "
                      "Debian/Ubuntu: apt-get install libopenblas-dev; or choose another "
                      "vendor with -DBLA_VENDOR=<name> (see CMake's FindBLAS).")
endif()
if(NOT SIT_BLAS STREQUAL "system")
  find_library(SIT_BLIS_LIBRARY NAMES blis)
  if(NOT SIT_BLIS_LIBRARY AND SIT_BLAS STREQUAL "blis")
    message(FATAL_ERROR "sit-eval: SIT_BLAS=blis but BLIS was not found. On Debian/Ubuntu: "
                        "apt-get install libblis-dev; or pass -DSIT_BLAS=system.")
  endif()
endif()
add_library(sit_blas INTERFACE)
if(SIT_BLIS_LIBRARY)
  set(SIT_BLAS_NAME "BLIS + ${BLA_VENDOR} LAPACK")
  target_link_libraries(sit_blas INTERFACE ${SIT_BLIS_LIBRARY})
else()
  set(SIT_BLAS_NAME "${BLA_VENDOR}")
endif()
target_link_libraries(sit_blas INTERFACE ${LAPACK_LIBRARIES} ${BLAS_LIBRARIES})
add_library(sit::blas ALIAS sit_blas)

# LibTorch: Debian's libtorch-dev (1.13, CPU) or official LibTorch 2.x (CUDA) through
# -DCMAKE_PREFIX_PATH=/path/to/libtorch. Located here so a broken install fails at
# configure time; targets that run networks link ${TORCH_LIBRARIES}.
set(SIT_TORCH_VERSION "not used")
if(SIT_WITH_TORCH)
  find_package(Torch CONFIG QUIET)
  if(NOT Torch_FOUND)
    message(FATAL_ERROR
      "sit-eval: LibTorch not found. On Debian/Ubuntu: apt-get install libtorch-dev. "
      "For official LibTorch 2.x (CUDA), unpack it and pass "
      "-DCMAKE_PREFIX_PATH=/path/to/libtorch (the folder holding share/cmake/Torch). "
      "Or configure with -DSIT_WITH_TORCH=OFF to build only the metrics and file tools.")
  endif()
  set(SIT_TORCH_VERSION ${Torch_VERSION})
endif()

if(SIT_BUILD_TESTS)
  sit_require_package(GTest libgtest-dev)
endif()
if(SIT_BUILD_BENCH)
  sit_require_package(benchmark libbenchmark-dev CONFIG)
endif()
