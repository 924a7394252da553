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

# One cargo invocation for the whole workspace: features unify as in `cargo test --workspace`, so
# nothing is compiled twice with another feature set. The integration targets that need nothing
# outside the source (a name selects that target in every crate that has one, all wanted): cpio
# interop, debloat, diff, FAT and GPT tools, initrd build, SNP expected values, TCG-log and TPM
# synthetic vectors, the runtime over loopback without its QEMU boot, and the image spec's
# committed JSON Schema against its Rust types.
targets=(interop debloat diff tools build expected synthetic runtime schema)
cargo test --workspace --offline --locked -j "$jobs" --lib --bins "${targets[@]/#/--test=}" -- --skip qemu::
echo "rust-tests: unit tests and the integration targets ${targets[*]} passed"
