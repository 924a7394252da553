#!/usr/bin/env bash
# Runs the whole test suite against the real inputs fetched by scripts/setup.sh. Every stage runs
# even when an earlier one failed, and the end lists every failed stage:
#   1. cargo test --workspace --no-fail-fast (unit, integration, peer comparisons, QEMU boots);
#      as root also the tests marked #[ignore = "needs root"];
#   2. checks/offline.sh: the Nix layer built and checked with Debian's nix-bin (sandboxed, no
#      nixpkgs), which needs root for Nix's single-user store;
#   3. checks/rust-tests-sandbox.sh (root): the flake's rust-tests check (nix/rust-tests.sh) with a
#      PATH shaped like nixpkgs' stdenv, busybox by path only, no network;
#   4. scripts/check-nginx-static.sh (run first: the run-local ACME test boots its nginx): the images' static nginx configured with exactly the flags of
#      nix/nginx-static.nix, built and run here;
#   5. examples/own-program/run.sh: the README's "Your own program, without Nix", step by step, to a
#      booted image whose workload answers.
# Extra arguments go to cargo test (e.g. `scripts/test.sh -p cvmkit-tdx`).
set -uo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo" || exit 2
[ -f .cache/inputs/inputs.env ] || { echo "test: run scripts/setup.sh first" >&2; exit 2; }
export CVMKIT_VENV=$repo/.cache/venv

failed=()
stage() { # NAME CMD...
  local name=$1
  shift
  echo "== test: $name" >&2
  "$@" || failed+=("$name")
}

# First: it builds .cache/nginx-static, which the run-local ACME test boots in a guest.
stage "nginx-static" bash scripts/check-nginx-static.sh
if [ "$(id -u)" = 0 ]; then
  stage "cargo test" cargo test --workspace --locked --no-fail-fast "$@" -- --include-ignored
  stage "checks/offline.sh" bash checks/offline.sh
  stage "rust-tests sandbox" bash checks/rust-tests-sandbox.sh
else
  stage "cargo test" cargo test --workspace --locked --no-fail-fast "$@"
  echo "test: not root: the #[ignore = \"needs root\"] tests and checks/offline.sh (Nix's single-user store) did not run; run: sudo scripts/test.sh" >&2
  failed+=("root-only stages (not run)")
fi
stage "own-program example" bash examples/own-program/run.sh

if [ ${#failed[@]} = 0 ]; then
  echo "test: every stage passed" >&2
  exit 0
fi
echo "test: FAILED stages: $(IFS=,; echo "${failed[*]}" | sed 's/,/, /g')" >&2
exit 1
