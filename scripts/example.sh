#!/usr/bin/env bash
# The built-in example: build a minimal initramfs (busybox + an /init that prints a marker) and a UKI
# from real Debian inputs, then show what was built. Output goes to ${1:-.cache/example}.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$repo/.cache/example}
# shellcheck disable=SC1091
. "$repo/.cache/inputs/inputs.env" 2>/dev/null || { echo "example: run scripts/setup.sh first" >&2; exit 1; }
cargo build -q --release --locked --manifest-path "$repo/Cargo.toml" -p cvmkit
cvmkit=$repo/target/release/cvmkit
ex=$repo/examples/minimal

mkdir -p "$out"
stage=$(mktemp -d); trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/root/bin"
cp "$BUSYBOX" "$stage/root/bin/busybox"
cp "$ex/init" "$stage/root/init"

export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-0}
"$cvmkit" initrd "$stage/root" --spec "$ex/initrd.spec" --compress zstd -o "$out/initrd.img"
uname=$(basename "$KERNEL"); uname=${uname#vmlinuz-}
"$cvmkit" uki --stub "$STUB" --linux "$KERNEL" --initrd "$out/initrd.img" \
  --cmdline "@$ex/cmdline" --os-release "$ex/os-release" --uname "$uname" -o "$out/uki.efi"

echo
echo "== TPM PCRs for OVMF booting this UKI from an ESP (vTPM: QEMU+swtpm; GCP and Azure: see README, What cvmkit predicts where)"
"$cvmkit" measure tpm --uki "$out/uki.efi" --banks sha256 | tee "$out/measure-tpm.txt"
"$cvmkit" measure tpm --uki "$out/uki.efi" --json > "$out/measurements-tpm.json"
echo
echo "== SEV-SNP launch digest of Debian's OVMF.fd (1 vCPU EPYC-v4; Debian's build has no kernel-hashes table,"
echo "   so the UKI itself is covered by the vTPM/RTMR values, not by the launch digest)"
"$cvmkit" measure snp --firmware "$OVMF" --vcpus 1 --vcpu-type EPYC-v4 --json > "$out/measurements-snp.json"
"$cvmkit" measure snp --firmware "$OVMF" --vcpus 1 --vcpu-type EPYC-v4 | grep LAUNCH_DIGEST
echo
echo "example: outputs and measurements (JSON) in $out"
