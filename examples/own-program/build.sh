#!/usr/bin/env bash
# examples/own-program/build.sh OUT
#
# Builds the own-program image with documented commands only: stages OUT/stage (this directory's
# image.json, initrd.spec and os-release; a root tree with busybox, the static cvmkit-runtime,
# /init, runtime.conf and the e1000e module; the kernel and systemd-stub under the names image.json
# uses), then `cvmkit build --spec OUT/stage/image.json -o OUT/image`: initrd.img, uki.efi and
# measurements.json. Your program is not in the image: `cvmkit run-local OUT/image --app PROGRAM`
# (or a cloud's metadata) hands it to cvmkit-runtime, which checks its sha256 before running it.
#
# Inputs (environment; default: .cache/inputs/inputs.env from scripts/setup.sh):
#   KERNEL, STUB, BUSYBOX      a bzImage (Debian's vmlinuz), a systemd-stub, a static busybox
#   CVMKIT_RUNTIME             the static cvmkit-runtime (default: the README's cargo build output)
#   NIC_MODULE                 the e1000e.ko matching KERNEL (default: found in Debian's package
#                              layout next to KERNEL; none needed if the kernel has e1000e built in)
#   CVMKIT                     the cvmkit binary (default: cvmkit on PATH)
set -euo pipefail
export LC_ALL=C
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
die() { echo "own-program: error: $*" >&2; exit 2; }
[ $# = 1 ] || die "usage: $0 OUT"
out=$1
if [ -z "${KERNEL:-}" ] && [ -f "$repo/.cache/inputs/inputs.env" ]; then
  # shellcheck disable=SC1091
  . "$repo/.cache/inputs/inputs.env"
fi
for v in KERNEL STUB BUSYBOX; do
  [ -f "${!v:-}" ] || die "$v is not set to a file (run scripts/setup.sh, or export $v=PATH)"
done
runtime=${CVMKIT_RUNTIME:-$repo/target/x86_64-unknown-linux-gnu/release/cvmkit-runtime}
[ -f "$runtime" ] || die "no static cvmkit-runtime at $runtime: build it as the README says, or export CVMKIT_RUNTIME=PATH"
cvmkit=${CVMKIT:-$(command -v cvmkit)} || die "cvmkit not on PATH: cargo install --locked --path rust/cvmkit"
uname=$(basename "$KERNEL"); uname=${uname#vmlinuz-}
nic=${NIC_MODULE:-$(dirname "$(dirname "$KERNEL")")/lib/modules/$uname/kernel/drivers/net/ethernet/intel/e1000e/e1000e.ko}

stage=$out/stage
rm -rf "$stage"
mkdir -p "$stage/root/bin" "$stage/root/usr/bin" "$stage/root/etc/cvmkit" "$stage/root/lib/modules"
cp "$here/image.json" "$here/initrd.spec" "$here/os-release" "$stage/"
cp "$KERNEL" "$stage/vmlinuz"
cp "$STUB" "$stage/linuxx64.efi.stub"
install -m 0755 "$BUSYBOX" "$stage/root/bin/busybox"
install -m 0755 "$runtime" "$stage/root/usr/bin/cvmkit-runtime"
install -m 0755 "$here/init" "$stage/root/init"
install -m 0755 "$here/udhcpc.script" "$stage/root/etc/udhcpc.script"
install -m 0644 "$here/runtime.conf" "$stage/root/etc/cvmkit/runtime.conf"
if [ -f "$nic" ]; then
  install -m 0644 "$nic" "$stage/root/lib/modules/e1000e.ko"
else
  echo "own-program: no e1000e.ko at $nic: the kernel must have e1000e built in (NIC_MODULE=PATH to give one)" >&2
fi
"$cvmkit" build --spec "$stage/image.json" -o "$out/image"
echo "own-program: image in $out/image: $(cd "$out/image" && ls | tr '\n' ' ')" >&2
