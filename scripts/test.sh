#!/usr/bin/env bash
# Installs missing Debian packages, builds into build/, runs the whole test suite.
# Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
sit_install_deps
sit_build
ctest --test-dir build --output-on-failure -j "${SIT_JOBS:-$(nproc)}"
