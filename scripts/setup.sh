#!/usr/bin/env bash
# One-time set-up of a Debian/Ubuntu host for cvmkit's example and tests:
#   - Debian packages for the boot test and the peer tools (QEMU, mtools, binutils, osslsigncode, …),
#   - a Python venv in .cache/venv with the PyPI peers (sev-snp-measure, signify, pefile),
#   - the real example inputs (kernel, systemd-boot stub, OVMF, busybox) via scripts/fetch-inputs.sh.
# Runs apt-get through sudo when not root. Needs a Rust toolchain (rustup) for the build itself.
set -euo pipefail
export LC_ALL=C DEBIAN_FRONTEND=noninteractive
repo=$(cd "$(dirname "$0")/.." && pwd)
sudo=; [ "$(id -u)" = 0 ] || sudo=sudo

debs=(
  ca-certificates
  build-essential pkg-config    # a C toolchain: ring, zstd-sys and libdeflate-sys compile C (pkg-config: pkgconf)
  libssl-dev                    # libcrypto for cvmkit's SHA-384 (the `openssl` feature, on by default)
  ovmf                          # boot test under TCG (QEMU itself: see below)
  mtools dosfstools             # the boot test's FAT ESP, written by standard tools
  cpio gzip zstd                # oracles for the initramfs
  binutils osslsigncode pesign  # oracles for PE/UKI (objdump, objcopy, Authenticode)
  faketime                      # reproducibility test moves the clock
  swtpm swtpm-tools             # a software TPM for the PCR boot test
  systemd                       # systemd-measure, the PCR 11 oracle
  python3 python3-venv          # PyPI peers
  hyperfine time                # benchmarks (GNU time: peak memory)
  nginx curl openssl            # runtime tests: generated configs under nginx -t, live HTTPS
  pebble                        # runtime ACME tests: Let's Encrypt's test CA (pebble, pebble-challtestsrv)
  nix-bin                       # checks/offline.sh: the Nix layer with Debian's Nix 2.8
  fdisk gdisk                   # oracles for disk images (sfdisk, sgdisk; qemu-img comes with QEMU)
  make flex bison               # checks/offline.sh: Kconfig's conf for kernel/mkconfig.sh
  gawk file patch bzip2 xz-utils iproute2  # checks/rust-tests-sandbox.sh: nixpkgs stdenv's tools, a netns
  debootstrap                   # scripts/fresh-root.sh (CI's brand-new Debian root)
)
# QEMU: on Debian 12 from bookworm-backports (10.0). Hosts of this kind ship qemu-utils from there, which
# Breaks bookworm's own qemu-system-x86 (7.2), and 10.x is also the QEMU the TDX tests model. The entry
# is a file of its own; the host's own sources are left as they are.
qemu_release=()
if grep -qs '^VERSION_CODENAME=bookworm' /etc/os-release; then
  bpo=/etc/apt/sources.list.d/cvmkit-bookworm-backports.sources
  if [ ! -e "$bpo" ] && ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
    printf '%s\n' 'Types: deb' 'URIs: http://deb.debian.org/debian' 'Suites: bookworm-backports' \
      'Components: main' 'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg' | $sudo tee "$bpo" >/dev/null
  fi
  qemu_release=(-t bookworm-backports)
fi
$sudo apt-get update -q >/dev/null
$sudo apt-get install -y -q --no-install-recommends "${qemu_release[@]}" qemu-system-x86 qemu-utils >/dev/null
$sudo apt-get install -y -q --no-install-recommends "${debs[@]}" >/dev/null

venv=$repo/.cache/venv
# The marker holds the requirements' hash, so a new peer is installed into an existing venv.
peers_sum=$(sha256sum "$repo/scripts/peers-requirements.txt" | cut -d' ' -f1)
if [ ! -x "$venv/bin/sev-snp-measure" ] || [ "$(cat "$venv/.cvmkit-peers" 2>/dev/null)" != "$peers_sum" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check -r "$repo/scripts/peers-requirements.txt"
  echo "$peers_sum" > "$venv/.cvmkit-peers"
fi

"$repo/scripts/fetch-inputs.sh" >/dev/null
command -v cargo >/dev/null || {
  echo "setup: cargo not found: install Rust with rustup (https://rustup.rs), then run the example/tests" >&2
  exit 1
}
echo "setup: done (inputs in $repo/.cache/inputs/inputs.env, peers in $venv)" >&2
