#!/usr/bin/env bash
# Fetch the real example inputs (kernel, systemd-boot stub, OVMF, busybox) from the host's Debian/Ubuntu
# archive with `apt-get download`, by package name, into a cache; no package version is hard-coded, so a
# point release that replaces a version does not break this script.
#
# Usage: scripts/fetch-inputs.sh [CACHE_DIR]     (default: $CVMKIT_INPUTS or <repo>/.cache/inputs)
# Writes CACHE_DIR/inputs.env with KERNEL, STUB, OVMF, BUSYBOX, STUB_TRIXIE (absolute paths) and the
# package versions (PKG_*).
# Needs no root: apt-get download works as any user once the package lists exist (`apt-get update`).
#
# STUB_TRIXIE is systemd-boot-efi from Debian trixie (systemd 257, the stub generation of the flake's
# nixpkgs), fetched next to the host's own stub (252 on bookworm) so that UKI assembly and the PCR
# 4/11 predictions are tested against both. It comes through a private apt configuration under
# CACHE_DIR/trixie (its own sources list, package lists, cache and an empty dpkg status); the host's
# apt sources and state are never touched. Mirror: $CVMKIT_DEBIAN_MIRROR (default deb.debian.org);
# the trixie keys come from the host's debian-archive-keyring. The stub's version is in its .sdmagic.
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

# systemd-boot-efi from Debian trixie, through a private apt configuration (see the header):
# scripts/suite-apt.sh keeps its lists, cache and empty dpkg status in CACHE_DIR/trixie.
tx=$cache/trixie
mkdir -p "$tx/debs"
tapt() { CVMKIT_SUITE_APT_UPDATE=1 "$repo/scripts/suite-apt.sh" "$tx" "trixie trixie-updates trixie-security" "$@"; }
tpkg=systemd-boot-efi
tdir=$cache/$tpkg-trixie
tv=$(tapt apt-cache policy "$tpkg" 2>"$tx/policy.log" | awk '/Candidate:/ { if ($2 != "(none)") print $2 }') || true
if [ -z "$tv" ]; then
  # No network or no lists: keep the stub fetched before, if any.
  [ -e "$tdir/.version" ] || die "no candidate for $tpkg in trixie (see $tx/policy.log and $tx/update.log)"
  tv=$(cat "$tdir/.version")
  echo "fetch-inputs: warning: trixie's lists could not be read (see $tx/policy.log); keeping $tpkg $tv" >&2
fi
if [ "$(cat "$tdir/.version" 2>/dev/null)" != "$tv" ]; then
  echo "fetch-inputs: downloading $tpkg $tv (trixie)" >&2
  rm -rf "$tdir" "$tdir.partial" "$tx/debs/${tpkg}_"*.deb
  (cd "$tx/debs" && tapt apt-get download "$tpkg=$tv" >/dev/null) || die "apt-get download $tpkg=$tv (trixie) failed"
  deb=$(ls "$tx/debs/${tpkg}_"*.deb | head -n1)
  mkdir -p "$tdir.partial"
  dpkg-deb -x "$deb" "$tdir.partial"
  echo "$tv" > "$tdir.partial/.version"
  mv "$tdir.partial" "$tdir"
fi
stub_trixie=$(first "$tdir/usr/lib/systemd/boot/efi/linuxx64.efi.stub")
[ -n "$stub_trixie" ] || die "$tpkg $tv (trixie) did not contain linuxx64.efi.stub"
echo "PKG_SYSTEMD_BOOT_EFI_TRIXIE=$tpkg=$tv" >> "$tmp_env"

{
  echo "KERNEL=$kernel"
  echo "STUB=$stub"
  echo "OVMF=$ovmf"
  echo "BUSYBOX=$busybox"
  echo "STUB_TRIXIE=$stub_trixie"
} >> "$tmp_env"
mv "$tmp_env" "$env_file"
trap - EXIT
echo "fetch-inputs: inputs ready in $env_file" >&2
cat "$env_file"
