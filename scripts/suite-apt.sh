#!/usr/bin/env bash
# scripts/suite-apt.sh STATE_DIR SUITES COMMAND [ARGS...]
#
# Runs an apt command (apt-get download, apt-cache policy, apt-cache pkgnames, …) against other
# Debian suites than the host's, through a private apt configuration kept in STATE_DIR: its own
# sources list, package lists, cache and an empty dpkg status. The host's apt sources and state are
# never touched, so nothing from those suites can be installed by accident. SUITES is a
# space-separated list (e.g. "trixie trixie-updates trixie-security"); the lists are refreshed
# first when they are older than a day or missing (CVMKIT_SUITE_APT_UPDATE=1: always). Mirror: $CVMKIT_DEBIAN_MIRROR (default deb.debian.org); keys
# from the host's debian-archive-keyring. Needs no root.
#
#   scripts/suite-apt.sh .cache/apt-trixie "trixie trixie-backports" apt-cache pkgnames linux-source-
#   scripts/suite-apt.sh .cache/apt-trixie "trixie trixie-backports" apt-get download linux-source-7.2
set -euo pipefail
export LC_ALL=C
[ $# -ge 3 ] || { echo "usage: $0 STATE_DIR SUITES COMMAND [ARGS...]" >&2; exit 2; }
state=$1 suites=$2
shift 2
mirror=${CVMKIT_DEBIAN_MIRROR:-http://deb.debian.org/debian}
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
[ -r "$keyring" ] || { echo "suite-apt: $keyring missing: install debian-archive-keyring" >&2; exit 2; }
mkdir -p "$state/lists/partial" "$state/cache/archives/partial" "$state/preferences.d"
state=$(cd "$state" && pwd)
[ -f "$state/status" ] || : >"$state/status"

# Only the Packages indexes (no translations or AppStream data the host's apt.conf.d may ask for).
opts="[signed-by=$keyring target=Packages]"
# A SUITE-security suite lives on the security archive next to the main one.
want=$(for s in $suites; do
  case $s in
    *-security) echo "deb $opts ${mirror%/debian}/debian-security $s main" ;;
    *) echo "deb $opts $mirror $s main" ;;
  esac
done)
if [ "$(cat "$state/sources.list" 2>/dev/null)" != "$want" ]; then
  echo "$want" >"$state/sources.list.new"
  mv "$state/sources.list.new" "$state/sources.list"
  rm -f "$state/updated"
fi
aptopts=(
  -o Dir::Etc::SourceList="$state/sources.list" -o Dir::Etc::SourceParts=/dev/null
  -o Dir::Etc::Preferences=/dev/null -o Dir::Etc::PreferencesParts="$state/preferences.d"
  -o Dir::State::Lists="$state/lists" -o Dir::Cache="$state/cache" -o Dir::State::status="$state/status"
  -o APT::Default-Release= -o APT::Sandbox::User="$(id -un)" -q
)
if [ "${CVMKIT_SUITE_APT_UPDATE:-0}" = 1 ] || [ -z "$(find "$state/updated" -mmin -1440 2>/dev/null)" ]; then
  apt-get "${aptopts[@]}" update >"$state/update.log" 2>&1 ||
    { echo "suite-apt: apt-get update for '$suites' failed (log: $state/update.log)" >&2; exit 1; }
  touch "$state/updated"
fi
cmd=$1
shift
exec "$cmd" "${aptopts[@]}" "$@"
