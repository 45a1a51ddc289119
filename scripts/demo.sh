#!/usr/bin/env bash
# The main job on the embedded default: installs what is missing, builds, then sweeps every
# sampler configuration of configs/demo.toml on the exact analytic model gmm:demo and
# writes the comparison tables. Rerunning continues an interrupted sweep.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
sit_install_deps
sit_build
build/eval/sit-eval sweep configs/demo.toml "$@"
echo "Pivot table of FD (interpolant x prediction vs sampler): runs/demo/report.md"
