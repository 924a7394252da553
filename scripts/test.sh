#!/usr/bin/env bash
# Runs the whole test suite against the real inputs fetched by scripts/setup.sh.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
[ -f .cache/inputs/inputs.env ] || { echo "test: run scripts/setup.sh first" >&2; exit 1; }
export CVMKIT_VENV=$repo/.cache/venv
exec cargo test --workspace --locked "$@"
