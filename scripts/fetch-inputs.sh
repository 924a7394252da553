#!/usr/bin/env bash
# Fetch the real example inputs (kernel, systemd-boot stub, OVMF, busybox) from the host's Debian/Ubuntu
# archive with `apt-get download`, by package name, into a cache; no package version is hard-coded, so a
# point release that replaces a version does not break this script.
#
# Usage: scripts/fetch-inputs.sh [CACHE_DIR]     (default: $CVMKIT_INPUTS or <repo>/.cache/inputs)
# Writes CACHE_DIR/inputs.env with KERNEL, STUB, OVMF, BUSYBOX (absolute paths) and the package versions.
# Needs no root: apt-get download works as any user once the package lists exist (`apt-get update`).
set -euo pipefail
export LC_ALL=C

repo=$(cd "$(dirname "$0")/.." && pwd)
cache=${1:-${CVMKIT_INPUTS:-$repo/.cache/inputs}}
mkdir -p "$cache/debs"
cache=$(cd "$cache" && pwd)

die() { echo "fetch-inputs: error: $*" >&2; exit 1; }
command -v apt-get >/dev/null || die "apt-get not found; this script needs a Debian or Ubuntu host"
command -v dpkg-deb >/dev/null || die "dpkg-deb not found"

# The candidate version of a package name, or empty.
candidate() { apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ { if ($2 != "(none)") print $2 }'; }

# Resolve a kernel meta package (linux-image-amd64 on Debian, linux-image-generic on Ubuntu) to the real
# image package it depends on: that one ships /boot/vmlinuz-* (signed, on both distributions).
kernel_pkg() {
  local meta dep
  for meta in linux-image-amd64 linux-image-generic; do
    [ -n "$(candidate "$meta")" ] || continue
    dep=$(apt-cache depends "$meta" 2>/dev/null | awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
    [ -n "$dep" ] && { echo "$dep"; return; }
  done
}

[ -n "$(candidate busybox-static)" ] || die "the package lists know no busybox-static; run 'apt-get update' first"
kpkg=$(kernel_pkg)
[ -n "$kpkg" ] || die "could not resolve linux-image-amd64 (or linux-image-generic) to a kernel package"

pkgs=("$kpkg" systemd-boot-efi ovmf busybox-static)
env_file=$cache/inputs.env
tmp_env=$(mktemp "$cache/.inputs.env.XXXXXX")
trap 'rm -f "$tmp_env"' EXIT

for p in "${pkgs[@]}"; do
  v=$(candidate "$p")
  [ -n "$v" ] || die "no installable candidate for package $p"
  dir=$cache/$p
  stamp=$dir/.version
  if [ "$(cat "$stamp" 2>/dev/null)" != "$v" ]; then
    echo "fetch-inputs: downloading $p $v" >&2
    rm -rf "$dir" "$cache/debs/${p}_"*.deb
    (cd "$cache/debs" && apt-get download -q -o APT::Sandbox::User="$(id -un)" "$p=$v" >/dev/null) || die "apt-get download $p=$v failed"
    deb=$(ls "$cache/debs/${p}_"*.deb | head -n1)
    mkdir -p "$dir.partial"
    dpkg-deb -x "$deb" "$dir.partial"
    echo "$v" > "$dir.partial/.version"
    mv "$dir.partial" "$dir"
  fi
  echo "PKG_$(echo "$p" | tr -c 'A-Za-z0-9\n' _ | tr a-z A-Z | sed 's/^LINUX_IMAGE_.*/KERNEL/')=$p=$v" >> "$tmp_env"
done

first() { for f in "$@"; do [ -e "$f" ] && { echo "$f"; return; }; done; }
kernel=$(first "$cache/$kpkg"/boot/vmlinuz-*)
stub=$(first "$cache/systemd-boot-efi/usr/lib/systemd/boot/efi/linuxx64.efi.stub")
ovmf=$(first "$cache/ovmf/usr/share/ovmf/OVMF.fd" "$cache/ovmf/usr/share/OVMF/OVMF.fd")
busybox=$(first "$cache/busybox-static/bin/busybox" "$cache/busybox-static/usr/bin/busybox")
for v in kernel stub ovmf busybox; do [ -n "${!v}" ] || die "package for $v did not contain the expected file"; done

{
  echo "KERNEL=$kernel"
  echo "STUB=$stub"
  echo "OVMF=$ovmf"
  echo "BUSYBOX=$busybox"
} >> "$tmp_env"
mv "$tmp_env" "$env_file"
trap - EXIT
echo "fetch-inputs: inputs ready in $env_file" >&2
cat "$env_file"
