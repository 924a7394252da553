#!/usr/bin/env bash
# The test commands of the flake's `rust-tests` check: nix/rust-tests.nix runs this as its
# checkPhase, and checks/rust-tests-sandbox.sh runs it here with a PATH shaped like nixpkgs'
# (stdenv's common path plus the oracle tools, busybox NOT on PATH), so both run the same thing.
#
# Environment: BUSYBOX (a static busybox, by path: on PATH its applets would shadow GNU find/sed/
# sort, whose options the tests use), STUB and KERNEL (a systemd-stub and an EFI-stub kernel, for
# the differ's UKI tests), NIX_BUILD_CORES (jobs, default 2). CVMKIT_INPUTS_ENV=/nonexistent makes
# a test that wants any other input fail, naming it, instead of finding a host's .cache.
set -euo pipefail
: "${BUSYBOX:?set BUSYBOX to a static busybox binary}" "${STUB:?set STUB to a systemd-stub}" "${KERNEL:?set KERNEL to a kernel image}"
[ -x "$BUSYBOX" ] || { echo "rust-tests: BUSYBOX=$BUSYBOX is not executable" >&2; exit 2; }
for f in "$STUB" "$KERNEL"; do [ -f "$f" ] || { echo "rust-tests: $f does not exist" >&2; exit 2; }; done
jobs=${NIX_BUILD_CORES:-2}
export CVMKIT_INPUTS_ENV=/nonexistent

cargo test --workspace --offline --locked --lib --bins -j "$jobs"
# package, integration test target, arguments after `--`
while read -r package test args; do
  [ -n "$package" ] || continue
  # shellcheck disable=SC2086
  cargo test --offline --locked -p "$package" --test "$test" -j "$jobs" -- $args
done <<'TARGETS'
cvmkit-cpio interop
cvmkit-debloat debloat
cvmkit-diff diff
cvmkit-fat tools
cvmkit-gpt tools
cvmkit-initrd build
cvmkit-snp expected
cvmkit-tcg-log synthetic
cvmkit-tpm synthetic
cvmkit-runtime runtime --skip qemu::
TARGETS
echo "rust-tests: unit tests and 10 self-contained integration test targets passed"
