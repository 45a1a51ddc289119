#!/usr/bin/env bash
# Fuzzing (issue 18): builds the libFuzzer targets of fuzz/ with Debian's clang and
# AddressSanitizer + UndefinedBehaviorSanitizer, then runs each for SECONDS (default 600)
# from a seed corpus of the test fixtures. Prints per target the executions, the coverage
# and the findings (crash-/leak-/timeout-/oom- files); exits 1 when there is a finding.
#
#   scripts/fuzz.sh [SECONDS] [OUT_DIR]        (OUT_DIR default: build-fuzz)
#   SIT_FUZZ_RUNS=N scripts/fuzz.sh 0 DIR       N inputs per target from seed 1: the same
#                                               inputs on every machine (ctest fuzz_smoke)
#   SIT_FUZZ_TARGETS="npz checkpoint" ...       only these targets (default: all)
#
# A finding is reproduced with OUT_DIR/fuzz_TARGET FILE; each fixed one becomes a test.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-600}"
out="${2:-build-fuzz}"
command -v clang++ >/dev/null || { echo "fuzz.sh: needs clang++ (Debian: clang)" >&2; exit 1; }
mkdir -p "$out"

flags=(-std=c++17 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -I.)
# toml++ 3.3 asserts on some malformed files ("[[[") in its debug checks, an upstream
# bug; sit-eval's builds define NDEBUG, where the same input is a clean parse error
# (tests/test_samplers.cpp), so the fuzzers compile its checks as the builds do
flags+=("-DTOML_ASSERT(expr)=static_cast<void>(0)")
# toml++ 3.3 also reaches its TOML_UNREACHABLE for characters U+FC7F..U+FEFE outside strings
# (is_non_ascii_horizontal_whitespace misses one table bit; upstream bug, still a clean parse
# error in sit-eval's builds, tested): the "unreachable" check is left out
flags+=(-fno-sanitize=unreachable)
# target -> its sources beside fuzz/fuzz_TARGET.cpp, its libraries, its seed files
declare -A sources=(
  [npz]="reference_stats/npy.cpp reference_stats/zip.cpp common/atomic_file.cpp common/format.cpp"
  [image]="reference_stats/image_reader.cpp reference_stats/npy.cpp reference_stats/zip.cpp common/atomic_file.cpp common/format.cpp"
)
# checkpoint: LibTorch itself is not instrumented; our pickle machine, zip and checkpoint
# readers are (only with LibTorch installed, as the sit-eval build)
if [ -f /usr/include/ATen/ATen.h ]; then
  sources[checkpoint]="models/checkpoint.cpp models/pickle.cpp reference_stats/zip.cpp common/atomic_file.cpp common/format.cpp"
  sources[mixture]="models/gmm.cpp $(echo samplers/*.cpp) common/format.cpp"
fi
declare -A libs=([npz]="-lz" [image]="-lpng -ljpeg -lz" [checkpoint]="-ltorch_cpu -lc10 -lz"
                 [mixture]="-ltorch_cpu -lc10")
declare -A seeds=([npz]="tests/fixtures/*.npz tests/fixtures/*.npy" [image]="fuzz/seeds_image/*"
                  [checkpoint]="fuzz/seeds_checkpoint/*" [mixture]="fuzz/seeds_mixture/*")

status=0
for t in ${SIT_FUZZ_TARGETS:-${!sources[@]}}; do
  bin="$out/fuzz_$t"
  if [ ! -x "$bin" ] || [ -n "$(find fuzz/fuzz_$t.cpp ${sources[$t]} scripts/fuzz.sh -newer "$bin" 2>/dev/null)" ]; then
    # shellcheck disable=SC2086
    clang++ "${flags[@]}" "fuzz/fuzz_$t.cpp" ${sources[$t]} ${libs[$t]} -o "$bin"
  fi
  corpus="$out/corpus_$t"
  mkdir -p "$corpus" "$out/findings_$t"
  # shellcheck disable=SC2086
  cp -n ${seeds[$t]} "$corpus"/ 2>/dev/null || true
  log="$out/fuzz_$t.log"
  set +e
  if [ -n "${SIT_FUZZ_RUNS:-}" ]; then
    budget=(-runs="$SIT_FUZZ_RUNS" -seed=1)
    # a fixed input sequence: start from the seeds alone, not from an earlier run's corpus
    corpus="$out/corpus_${t}_seeds"
    rm -rf "$corpus" && mkdir -p "$corpus"
    # shellcheck disable=SC2086
    cp ${seeds[$t]} "$corpus"/
  else
    budget=(-max_total_time="$seconds")
  fi
  corpus_abs="$(realpath "$corpus")"
  (cd "$out/findings_$t" && "../fuzz_$t" "${budget[@]}" -max_len=65536 \
      -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 "$corpus_abs") >"$log" 2>&1
  rc=$?
  set -e
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*' || echo "?")
  findings=$(ls "$out/findings_$t" | wc -l)
  budget_text="${seconds} s"
  if [ -n "${SIT_FUZZ_RUNS:-}" ]; then budget_text="$SIT_FUZZ_RUNS seeded inputs"; fi
  echo "fuzz_$t: $budget_text, $runs executions, coverage $cov edges, $findings findings (exit $rc; log $log)"
  if [ "$rc" -ne 0 ] || [ "$findings" -ne 0 ]; then status=1; fi
done
exit $status
