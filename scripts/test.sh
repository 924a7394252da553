#!/usr/bin/env bash
# Runs the whole test suite against the real inputs fetched by scripts/setup.sh:
#   1. cargo test --workspace (unit, integration, peer comparisons, QEMU boots);
#   2. checks/offline.sh: the Nix layer built and checked with Debian's nix-bin (sandboxed, no
#      nixpkgs), which needs root for Nix's single-user store.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
[ -f .cache/inputs/inputs.env ] || { echo "test: run scripts/setup.sh first" >&2; exit 1; }
export CVMKIT_VENV=$repo/.cache/venv
cargo test --workspace --locked "$@"
if [ "$(id -u)" = 0 ]; then
  bash checks/offline.sh
else
  echo "test: checks/offline.sh not run: it needs root (Nix's single-user store); run: sudo bash checks/offline.sh" >&2
fi
