#!/bin/sh
# The CI regression gate example: run the small analytic sweep and check it against the
# committed baseline. Exit 0 when within tolerance, 2 on a regression, 1 on errors.
#
#   scripts/ci_gate.sh [SIT_EVAL] [RUN_DIR]
#   scripts/ci_gate.sh --update [SIT_EVAL]    # rewrite the baseline from a fresh run
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
update=0
if [ "${1:-}" = "--update" ]; then update=1; shift; fi
sit_eval=${1:-$here/build/eval/sit-eval}
run_dir=${2:-$(mktemp -d)/ci-gate}
baseline=$here/configs/ci_gate_baseline.json
rm -rf "$run_dir"  # a stale run would hide a regression
"$sit_eval" sweep "$here/configs/ci_gate.toml" --out "$run_dir" --quiet
if [ "$update" = 1 ]; then
  /usr/bin/python3 - "$run_dir/results.jsonl" "$baseline" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
keep = ("id", "label", "fid", "precision", "recall")
out = {"note": "expected values of configs/ci_gate.toml (scripts/ci_gate.sh --update)",
       "configurations": [{k: r[k] for k in keep if k in r} for r in rows if r["status"] == "ok"]}
json.dump(out, open(sys.argv[2], "w"), indent=2)
open(sys.argv[2], "a").write("\n")
PY
  echo "baseline written to $baseline"
  exit 0
fi
exec "$sit_eval" gate "$run_dir" --baseline "$baseline" --metrics fid,precision,recall \
  --max-fid-increase 0.05 --tolerance precision=0.02 --tolerance recall=0.02
