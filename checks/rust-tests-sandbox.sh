#!/usr/bin/env bash
# checks/rust-tests-sandbox.sh: runs nix/rust-tests.sh (the flake's `rust-tests` check) the way
# nixpkgs' builder would: a PATH of only the tools nixpkgs' stdenv and the check's
# nativeCheckInputs give (Debian's builds of the same programs, linked into one directory), busybox
# by path in BUSYBOX and not on PATH, STUB and KERNEL by environment (Debian's standing in for
# nixpkgs' systemd stub and kernel), no other example inputs, no network (a new network namespace with
# only loopback), an empty HOME. Needs root for the network namespace.
set -euo pipefail
export LC_ALL=C
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
die() { echo "rust-tests-sandbox: error: $*" >&2; exit 2; }
[ "$(id -u)" = 0 ] || die "needs root (a network namespace with only loopback)"
# shellcheck disable=SC1091
. .cache/inputs/inputs.env 2>/dev/null || die "run scripts/setup.sh first (busybox-static)"

# nixpkgs stdenv's common path (pkgs/stdenv/generic/common-path.nix) and its C compiler, then the
# check's nativeBuildInputs and buildInputs (pkg-config, openssl: the CLI's `openssl` feature) and
# nativeCheckInputs (nix/rust-tests.nix), as the Debian packages that ship them.
stdenv_debs=(coreutils findutils diffutils sed grep gawk tar gzip bzip2 xz-utils make bash patch file
  gcc-12 cpp-12 binutils binutils-x86-64-linux-gnu gcc pkgconf pkgconf-bin)
check_debs=(cpio dosfstools mtools util-linux fdisk gdisk nginx openssl curl swtpm swtpm-tools zstd pebble)
# Headers and libraries only (openssl's buildInputs): installed, nothing to put on PATH.
lib_debs=(libssl-dev)
missing=()
for p in "${stdenv_debs[@]}" "${check_debs[@]}" "${lib_debs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
[ ${#missing[@]} = 0 ] || die "missing Debian packages: ${missing[*]} (apt-get install them)"

farm=$(mktemp -d /tmp/cvmkit-rust-tests-path.XXXXXX)
home=$(mktemp -d /tmp/cvmkit-rust-tests-home.XXXXXX)
trap 'rm -rf "$farm" "$home"' EXIT
for p in "${stdenv_debs[@]}" "${check_debs[@]}"; do
  # Under pipefail a package with nothing in bin/ would end the script without a word: named.
  bins=$(dpkg -L "$p" | grep -E '^/(usr/)?s?bin/[^/]+$') || die "$p puts nothing in bin/: list it in lib_debs"
  while read -r f; do
    [ -e "$farm/$(basename "$f")" ] || ln -s "$f" "$farm/$(basename "$f")"
  done <<< "$bins"
done
for t in cargo rustc; do ln -s "$(command -v $t)" "$farm/$t"; done
ln -sf gcc "$farm/cc"
ln -sf bash "$farm/sh" # nixpkgs' bash has bin/sh; Debian's sh comes from dash
[ ! -e "$farm/busybox" ] || die "busybox ended up on PATH"

echo "rust-tests-sandbox: PATH holds $(ls "$farm" | wc -l) programs; BUSYBOX=$BUSYBOX; no network but loopback" >&2
unshare --net -- bash -c '
  ip link set lo up
  exec env -i PATH="$1" HOME="$2" CARGO_HOME="$3" RUSTUP_HOME="$4" \
    CARGO_TARGET_DIR="$5" BUSYBOX="$6" STUB="$7" KERNEL="$8" NIX_BUILD_CORES=2 TERM=dumb CARGO_TERM_COLOR=never \
    bash nix/rust-tests.sh' _ \
  "$farm" "$home" "${CARGO_HOME:-$HOME/.cargo}" "${RUSTUP_HOME:-$HOME/.rustup}" \
  "${CARGO_TARGET_DIR:-$repo/target}" "$BUSYBOX" "$STUB" "$KERNEL"
