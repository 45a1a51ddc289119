#!/usr/bin/env bash
# The test suite under other BLAS kernels than this CPU's own: BLIS forced to other
# kernel sets (BLIS_ARCH_TYPE: 3 haswell, 6 zen3, 8 zen, 25 generic; 0 is skx) and a
# build with the system BLAS alone (-DSIT_BLAS=system: OpenBLAS as Debian ships it). No
# test verdict may depend on which kernels run. One full ctest per variant (about 8
# minutes each on 2 cores, plus one build for the system-BLAS variant), so CI does not
# run it; README's "Tests" section reports the last run.
#
# usage: scripts/test_blas_variants.sh            (SIT_BLIS_ARCHS="3 8" to choose)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
sit_install_deps
sit_build
jobs="${SIT_JOBS:-$(nproc)}"
status=0
for arch in ${SIT_BLIS_ARCHS:-3 6 8 25}; do
  echo "== BLIS_ARCH_TYPE=$arch: $(BLIS_ARCH_DEBUG=1 BLIS_ARCH_TYPE=$arch build/eval/sit-eval version 2>&1 | grep -o "sub-configuration '[a-z0-9]*'")"
  BLIS_ARCH_TYPE=$arch ctest --test-dir build -j "$jobs" --output-on-failure || status=1
done
echo "== -DSIT_BLAS=system"
if [ ! -f build-system/CMakeCache.txt ]; then
  cmake -S . -B build-system -G Ninja -DCMAKE_BUILD_TYPE=Release -DSIT_BLAS=system
fi
cmake --build build-system -j "$jobs"
build-system/eval/sit-eval version | grep '^blas'
ctest --test-dir build-system -j "$jobs" --output-on-failure || status=1
exit $status
