#!/usr/bin/env bash
# The whole test suite under AddressSanitizer and UndefinedBehaviorSanitizer (issue 18):
# configures BUILD_DIR (default build-asan) with -DSIT_SANITIZE=address,undefined (g++,
# RelWithDebInfo, no benchmarks), builds every target and runs ctest there. Any sanitizer
# report aborts the process that made it, so the test fails and its log holds the report.
#
#   scripts/sanitize.sh [BUILD_DIR] [CTEST_ARGS...]     e.g. scripts/sanitize.sh build-asan -R Npz
#   SIT_SANITIZE_CMAKE_ARGS="-DSIT_WITH_TORCH=OFF" ...   more configure options: this one is
#                       the LibTorch-free part alone (metrics, feature files, images,
#                       reports, the `metrics` command), which ctest's sanitize_core runs
#
# Leak reports name only our own code: LibTorch's and OpenBLAS's process-lifetime
# allocations are suppressed in scripts/lsan.supp. fuzz_smoke is left out (it builds
# its own sanitized fuzzers with clang).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
sit_install_deps
build="${1:-build-asan}"
shift || true
# shellcheck disable=SC2086
# -O1 -g1 (function names and line tables): as the sanitizers advise, and Eigen's solvers
# compile 4x faster than at -O2 -g under instrumentation
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1 -DNDEBUG" \
      -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O1 -g1 -DNDEBUG" \
      -DSIT_SANITIZE=address,undefined -DSIT_BUILD_BENCH=OFF ${SIT_SANITIZE_CMAKE_ARGS:-} >/dev/null
cmake --build "$build" -j "${SIT_JOBS:-$(nproc)}"
# verify_asan_link_order=0: the fault-injection tests LD_PRELOAD their shim before libasan;
# allocator_may_return_null=1: malloc fails for an impossible size as it does without ASan
# (libhdf5 asks for 2^59 bytes on a damaged header, a test; C++ `new` still throws);
# suppressions: libhdf5's own memory errors seen through its libc calls (see the file)
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:detect_odr_violation=0:verify_asan_link_order=0:allocator_may_return_null=1:suppressions=$PWD/scripts/asan.supp:${ASAN_OPTIONS:-}"
export LSAN_OPTIONS="suppressions=$PWD/scripts/lsan.supp:print_suppressions=0:${LSAN_OPTIONS:-}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:${UBSAN_OPTIONS:-}"
ctest --test-dir "$build" --output-on-failure -j "${SIT_JOBS:-$(nproc)}" -E '^fuzz_smoke$' "$@"
