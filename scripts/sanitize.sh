#!/usr/bin/env bash
# The whole test suite under AddressSanitizer and UndefinedBehaviorSanitizer (issue 18):
# configures BUILD_DIR (default build-asan) with -DSIT_SANITIZE=address,undefined (g++,
# RelWithDebInfo, no benchmarks), builds every target and runs ctest there. Any sanitizer
# report aborts the process that made it, so the test fails and its log holds the report.
#
#   scripts/sanitize.sh [BUILD_DIR] [CTEST_ARGS...]     e.g. scripts/sanitize.sh build-asan -R Npz
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
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      -DSIT_SANITIZE=address,undefined -DSIT_BUILD_BENCH=OFF >/dev/null
cmake --build "$build" -j "${SIT_JOBS:-$(nproc)}"
# verify_asan_link_order=0: the fault-injection tests LD_PRELOAD their shim before libasan
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:detect_odr_violation=0:verify_asan_link_order=0:${ASAN_OPTIONS:-}"
export LSAN_OPTIONS="suppressions=$PWD/scripts/lsan.supp:print_suppressions=0:${LSAN_OPTIONS:-}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:${UBSAN_OPTIONS:-}"
ctest --test-dir "$build" --output-on-failure -j "${SIT_JOBS:-$(nproc)}" -E '^fuzz_smoke$' "$@"
