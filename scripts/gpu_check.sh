#!/usr/bin/env bash
# The GPU check, for a machine with an NVIDIA GPU and official LibTorch 2.x (CUDA build).
# Nothing else depends on it. It
#   1. builds sit-eval against that LibTorch into build-cuda/ (the Debian packages of
#      scripts/deps.sh provide everything else),
#   2. runs the CUDA-marked tests (ctest -L cuda: analytic samples and a SiT forward on the
#      GPU against the CPU, in fp32, tf32 and bf16; a missing device index refused),
#   3. prints SiT-XL/2 random-weight sampling throughput (one guided evaluation of a batch of
#      125 samples, 250 rows) in fp32, tf32 and bf16 with the projected FID-50K time, and
#      Inception-v3 throughput when an export is given.
#
#   scripts/gpu_check.sh [LIBTORCH_DIR]     (default: $LIBTORCH, else /opt/libtorch)
#   SIT_GPU_INCEPTION=inception.pt scripts/gpu_check.sh   # also time Inception
#
# Without a random-weight Inception export at hand: /usr/bin/python3
# tools/export_inception.py --random-weights 0 --out /tmp/inception.pt (needs python3-torch).
set -euo pipefail
cd "$(dirname "$0")/.."
libtorch="${1:-${LIBTORCH:-/opt/libtorch}}"

command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L || {
  echo "gpu_check: no NVIDIA GPU here (nvidia-smi missing or failing)" >&2
  exit 1
}
if [ ! -f "$libtorch/share/cmake/Torch/TorchConfig.cmake" ]; then
  echo "gpu_check: no LibTorch at '$libtorch' (expected share/cmake/Torch/TorchConfig.cmake);" \
       "unpack the CUDA build of LibTorch 2.x there or pass its directory" >&2
  exit 1
fi

source scripts/deps.sh
sit_install_deps
jobs="${SIT_JOBS:-$(nproc)}"
cmake -S . -B build-cuda -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$libtorch"
cmake --build build-cuda -j "$jobs" --target sit-eval test_cuda bench_gpu
build-cuda/eval/sit-eval version

echo "== CUDA tests"
ctest --test-dir build-cuda -L cuda --output-on-failure -j 1
if ctest --test-dir build-cuda -L cuda -V 2>&1 | grep -q "no CUDA device"; then
  echo "gpu_check: the CUDA tests skipped: this LibTorch or machine has no usable GPU" >&2
  exit 1
fi

echo "== Throughput"
inception_args=()
if [ -n "${SIT_GPU_INCEPTION:-}" ]; then inception_args=(--inception "$SIT_GPU_INCEPTION"); fi
build-cuda/bench/bench_gpu --device cuda:0 --batch 125 "${inception_args[@]}"
