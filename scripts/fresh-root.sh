#!/usr/bin/env bash
# Runs the README's commands on a brand-new Debian bookworm, as a new user's host would be:
#   1. debootstrap --variant=minbase bookworm into ROOT (nothing else installed);
#   2. this machine's package-manager settings (apt sources, apt.conf.d, preferences, keyrings; pip
#      and cargo configuration; extra CA certificates), as a user's network settings would be;
#   3. the Rust toolchain as rustup lays it out (~/.rustup + ~/.cargo/bin), nothing else of ~/.cargo;
#   4. a clone of this repository's HEAD in /root/cvmkit;
#   5. the README's two commands, exactly as written, as root, inside ROOT entered with pivot_root in a
#      private mount + PID namespace. (A plain chroot would do for most of it, but the kernel refuses
#      new user namespaces to a chrooted process, and Nix's sandbox in checks/offline.sh needs them.)
#
# Usage: scripts/fresh-root.sh [ROOT]        (default /var/tmp/cvmkit-fresh-root; needs root)
# Env:   CVMKIT_FRESH_KEEP=1 keeps ROOT afterwards; CVMKIT_FRESH_COMMANDS overrides step 5 (debugging).
set -euo pipefail
export LC_ALL=C
repo=$(cd "$(dirname "$0")/.." && pwd)
root=${1:-/var/tmp/cvmkit-fresh-root}
mirror=${CVMKIT_DEBIAN_MIRROR:-http://deb.debian.org/debian}

die() { echo "fresh-root: error: $*" >&2; exit 2; }
[ "$(id -u)" = 0 ] || die "needs root (debootstrap, mount namespaces, pivot_root)"
for t in debootstrap unshare pivot_root git mount; do
  command -v "$t" >/dev/null || die "needs '$t' (apt-get install debootstrap util-linux git mount)"
done
rustup_home=${RUSTUP_HOME:-$HOME/.rustup}
cargo_home=${CARGO_HOME:-$HOME/.cargo}
[ -x "$cargo_home/bin/cargo" ] || die "no rustup toolchain at $cargo_home/bin (install Rust with rustup)"

# Never follow a mount into the host: a leftover ROOT is only removed when nothing is mounted below it.
remove_root() {
  if [ -d "$root" ]; then
    if findmnt -rn -o TARGET | grep -q "^$root\(/\|$\)"; then die "something is still mounted under $root"; fi
    rm -rf --one-file-system "$root"
  fi
}
remove_root
trap '[ "${CVMKIT_FRESH_KEEP:-}" = 1 ] || remove_root' EXIT

t0=$(date +%s)
echo "fresh-root: debootstrap --variant=minbase bookworm $root" >&2
mkdir -p "$root"
debootstrap --variant=minbase bookworm "$root" "$mirror" >"$root.debootstrap.log" 2>&1 ||
  { tail -20 "$root.debootstrap.log" >&2; die "debootstrap failed (log: $root.debootstrap.log)"; }
rm -f "$root.debootstrap.log"

# (2) the machine's package-manager settings; files a cvmkit script or a helper added are left out, so
# the new root's own setup.sh has to create them itself.
for d in sources.list.d apt.conf.d preferences.d trusted.gpg.d keyrings; do
  [ -d "/etc/apt/$d" ] || continue
  mkdir -p "$root/etc/apt/$d"
  find "/etc/apt/$d" -maxdepth 1 -type f ! -name 'cvmkit-*' ! -name 'zz-*' -exec cp -a {} "$root/etc/apt/$d/" \;
done
rm -f "$root/etc/apt/sources.list"   # debootstrap's own; the host's (if any) replaces it
[ -f /etc/apt/sources.list ] && cp -a /etc/apt/sources.list "$root/etc/apt/sources.list"
cp -a /usr/share/keyrings/. "$root/usr/share/keyrings/"
[ -f /etc/pip.conf ] && cp -a /etc/pip.conf "$root/etc/pip.conf"
[ -d /usr/local/share/ca-certificates ] && { mkdir -p "$root/usr/local/share/ca-certificates"; cp -a /usr/local/share/ca-certificates/. "$root/usr/local/share/ca-certificates/"; }
# Until ca-certificates is installed in the root, its tools (cargo, pip) see the host's bundle.
[ -f /etc/ssl/certs/ca-certificates.crt ] && { mkdir -p "$root/etc/ssl/certs"; cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/"; }
cp /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
for f in config.toml config; do [ -f "$cargo_home/$f" ] && { mkdir -p "$root/root/.cargo"; cp -a "$cargo_home/$f" "$root/root/.cargo/"; }; done

# (3) the toolchain as rustup installs it: the default toolchain, settings, the proxies in ~/.cargo/bin.
# Hard links (same file system) make this a copy that costs no space.
default_tc=$(sed -n 's/^default_toolchain = "\(.*\)"/\1/p' "$rustup_home/settings.toml")
[ -n "$default_tc" ] || die "no default toolchain in $rustup_home/settings.toml"
mkdir -p "$root/root/.rustup/toolchains" "$root/root/.cargo/bin"
cp -a "$rustup_home/settings.toml" "$root/root/.rustup/"
tc_src=$(readlink -f "$rustup_home/toolchains/$default_tc")
cp -al "$tc_src" "$root/root/.rustup/toolchains/$default_tc" 2>/dev/null || cp -a "$tc_src" "$root/root/.rustup/toolchains/$default_tc"
cp -a "$cargo_home/bin/." "$root/root/.cargo/bin/"

# (4) the repository as a user clones it (committed files only).
git clone -q "$repo" "$root/root/cvmkit"
git -C "$root/root/cvmkit" log -1 --format='fresh-root: testing commit %H' >&2

# (5) the README's commands, read from the README itself so the two cannot drift.
readme_cmds=$(awk '/^```sh$/ { n++; next } /^```$/ { if (n == 1) exit; next } n == 1 { sub(/[ \t]+#.*/, ""); if ($0 != "") print }' "$repo/README.md")
[ "$(printf '%s\n' "$readme_cmds" | wc -l)" = 2 ] || die "README.md must open with a sh block of exactly two commands; found: $readme_cmds"
cmds=${CVMKIT_FRESH_COMMANDS:-$readme_cmds}
echo "fresh-root: running in $root as root:" >&2
printf '  %s\n' "$cmds" >&2

inner=$(mktemp /tmp/cvmkit-fresh-inner.XXXXXX)
cat >"$inner" <<'EOF'
set -euo pipefail
root=$1 cmds=$2
mount --make-rprivate /
mount --bind "$root" "$root"
mount -t proc proc "$root/proc"
mount -t sysfs sysfs "$root/sys"
mount --rbind /dev "$root/dev"
cd "$root"
mkdir -p .oldroot
pivot_root . .oldroot
cd /
umount -l /.oldroot
rmdir /.oldroot
exec env -i HOME=/root USER=root LOGNAME=root TERM=dumb CI="${CI:-}" LANG=C.UTF-8 \
  PATH=/root/.cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  CARGO_TERM_COLOR=never \
  bash -c "cd /root/cvmkit && set -e && $(printf '%s\n' "$cmds" | paste -sd ';' | sed 's/;/ \&\& /g')" </dev/null
EOF
status=0
unshare --mount --pid --fork bash "$inner" "$root" "$cmds" || status=$?
rm -f "$inner"
echo "fresh-root: exit $status after $(( $(date +%s) - t0 )) s" >&2
exit "$status"
