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
  qemu-system-x86 ovmf          # boot test under TCG
  mtools dosfstools             # the boot test's FAT ESP, written by standard tools
  cpio gzip zstd                # oracles for the initramfs
  binutils osslsigncode pesign  # oracles for PE/UKI (objdump, objcopy, Authenticode)
  faketime                      # reproducibility test moves the clock
  swtpm swtpm-tools             # a software TPM for the PCR boot test
  systemd                       # systemd-measure, the PCR 11 oracle
  python3 python3-venv          # PyPI peers
  hyperfine                     # benchmarks
  nginx curl openssl            # runtime tests: generated configs under nginx -t, live HTTPS
  nix-bin                       # checks/offline.sh: the Nix layer with Debian's Nix 2.8
  fdisk gdisk qemu-utils        # oracles for disk images (sfdisk, sgdisk, qemu-img)
  make flex bison               # checks/offline.sh: Kconfig's conf for kernel/mkconfig.sh
)
$sudo apt-get update -q
$sudo apt-get install -y -q --no-install-recommends "${debs[@]}" >/dev/null

venv=$repo/.cache/venv
if [ ! -x "$venv/bin/sev-snp-measure" ] || [ ! -f "$venv/.cvmkit-peers" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check -r "$repo/scripts/peers-requirements.txt"
  touch "$venv/.cvmkit-peers"
fi

"$repo/scripts/fetch-inputs.sh" >/dev/null
command -v cargo >/dev/null || {
  echo "setup: cargo not found: install Rust with rustup (https://rustup.rs), then run the example/tests" >&2
  exit 1
}
echo "setup: done (inputs in $repo/.cache/inputs/inputs.env, peers in $venv)" >&2
