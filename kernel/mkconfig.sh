#!/usr/bin/env bash
# kernel/mkconfig.sh SRC FRAGMENT OUT
#
# Writes the guest kernel's .config to OUT: x86_64 `defconfig` of the kernel source tree SRC, the
# FRAGMENT's lines appended (later assignments win in Kconfig), then `make olddefconfig`. Fails,
# listing each one, if an option the fragment sets did not survive olddefconfig (a missing
# dependency or a symbol this kernel version does not have), so the fragment never silently loses
# an option. Used by kernel/default.nix (in the Nix build) and by checks/offline.sh (against
# Debian's linux-source package). Needs make, a C compiler, flex and bison.
set -euo pipefail
export LC_ALL=C
[ $# -eq 3 ] || { echo "usage: $0 SRC FRAGMENT OUT" >&2; exit 2; }
src=$1 frag=$2 out=$3
[ -f "$src/Makefile" ] || { echo "mkconfig: $src is not a kernel source tree (no Makefile)" >&2; exit 2; }
[ -f "$frag" ] || { echo "mkconfig: fragment $frag not found" >&2; exit 2; }

build=$(mktemp -d "${TMPDIR:-/tmp}/cvmkit-kconfig.XXXXXX")
trap 'rm -rf "$build"' EXIT
kmake() {
  make -s -C "$src" O="$build" ARCH=x86_64 "$@" >"$build/make.log" 2>&1 || {
    cat "$build/make.log" >&2
    echo "mkconfig: make $* failed" >&2
    exit 1
  }
}
kmake defconfig
cat "$frag" >>"$build/.config"
kmake olddefconfig # "override: reassigning to symbol" warnings in make.log are expected

status=0
checked=0
while IFS= read -r line; do
  case "$line" in
    CONFIG_*=*)
      checked=$((checked + 1))
      name=${line%%=*}
      if ! grep -qxF -- "$line" "$build/.config"; then
        got=$(grep -E "^($name=|# $name is not set)" "$build/.config" || echo "absent (dependencies not met, or no such option)")
        echo "mkconfig: $line did not survive olddefconfig: got $got" >&2
        status=1
      fi
      ;;
    "# CONFIG_"*" is not set")
      checked=$((checked + 1))
      name=${line#\# }
      name=${name%% *}
      if grep -q "^$name=" "$build/.config"; then
        echo "mkconfig: $line did not survive olddefconfig: got $(grep "^$name=" "$build/.config")" >&2
        status=1
      fi
      ;;
  esac
done <"$frag"
[ "$status" = 0 ] || exit 1
cp "$build/.config" "$out"
echo "mkconfig: all $checked options of $(basename "$frag") survive olddefconfig ($(make -s -C "$src" kernelversion 2>/dev/null || echo "unknown version"))"
