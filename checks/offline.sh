#!/usr/bin/env bash
# checks/offline.sh: verifies cvmkit's Nix layer with Debian's nix-bin (Nix 2.8), without nixpkgs,
# a binary cache or network. Run as root on Debian/Ubuntu (CI: `bash checks/offline.sh`, CI=true,
# no stdin); idempotent; a few minutes (the first run also compiles cvmkit and downloads Debian's
# linux-source package).
#
# What it does: builds a static cvmkit with cargo and adds it to the Nix store; adds Debian's
# kernel, systemd-stub, OVMF, busybox-static (scripts/fetch-inputs.sh) and a few kernel modules
# as fixed-output paths; then, with the sandbox on and NO /bin/sh in it, builds images through
# the same nix/ library the flake uses (checks/offline.nix) and checks:
#   - every .nix file parses; the Nix library's unit tests pass; its errors read well;
#   - the example image builds, rebuilds bit-identically (`nix-build --check`), and a salted twin
#     (another derivation) gives the same bytes;
#   - its outputs equal `cvmkit build` run outside Nix on the same spec, and the UKI and initrd
#     that `cvmkit initrd` + `cvmkit uki` make from examples/minimal as scripts/example.sh does;
#   - images of the base module boot under QEMU + OVMF (TCG): mounts, DHCP, static ip=,
#     commands, services, workload, power-off;
#   - the flake itself (flake.nix) evaluates, builds an image, runs `nix run .#measure -- --help`
#     and passes `nix flake check`, with a stand-in for nixpkgs (checks/stub-nixpkgs) that hands
#     it the same Debian inputs;
#   - kernel/guest.config survives `make olddefconfig` on Debian's oldest linux-source >= 6.16
#     (the flake's kernel is 6.18; Debian has no 6.16..6.18 source).
# Prints one line per check and ends with "offline: N passed, M failed[, K skipped]".
#
# Environment: CARGO_TARGET_DIR (default <repo>/target), CVMKIT_OFFLINE_DIR (work directory,
# default <repo>/.cache/offline), CVMKIT_OFFLINE_SKIP_BOOT=1, CVMKIT_OFFLINE_SKIP_KERNEL=1.
set -uo pipefail
export LC_ALL=C
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo" || exit 2
work=${CVMKIT_OFFLINE_DIR:-$repo/.cache/offline}
mkdir -p "$work/logs"
work=$(cd "$work" && pwd)
sudo=
[ "$(id -u)" = 0 ] || sudo=sudo

passed=0
failed=0
skipped=0
pass() {
  passed=$((passed + 1))
  echo "ok    $1"
}
fail() { # NAME [LOG]
  failed=$((failed + 1))
  echo "FAIL  $1"
  if [ -n "${2:-}" ] && [ -s "$2" ]; then tail -n 40 "$2" | sed 's/^/      | /'; fi
}
skip() {
  skipped=$((skipped + 1))
  echo "skip  $1 ($2)"
}
# check NAME CMD...: runs CMD with its output in logs/NAME.log ($last_log); pass or fail.
last_log=
check() {
  local name=$1
  shift
  last_log="$work/logs/$(echo "$name" | tr -c 'A-Za-z0-9\n' _ | cut -c1-60).log"
  if "$@" >"$last_log" 2>&1; then pass "$name"; else fail "$name" "$last_log"; fi
}
summary() {
  echo "offline: $passed passed, $failed failed$([ "$skipped" = 0 ] || echo ", $skipped skipped")"
}
die() {
  echo "offline: error: $*" >&2
  failed=$((failed + 1))
  summary
  exit 1
}
apt_install() {
  command -v apt-get >/dev/null || return 1
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "$@" >/dev/null 2>&1 ||
    { $sudo apt-get update -q >/dev/null 2>&1 &&
      DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "$@" >/dev/null 2>&1; }
}

# --- Set-up (a failure here stops everything) --------------------------------------------------

command -v nix-build >/dev/null || apt_install nix-bin || die "nix-bin is not installed and apt-get could not install it"
command -v cargo >/dev/null || die "cargo not found (install Rust with rustup)"
command -v python3 >/dev/null || apt_install python3 || die "python3 not found"
command -v readelf >/dev/null || apt_install binutils || die "readelf (binutils) not found"

if [ ! -f "$repo/.cache/inputs/inputs.env" ]; then
  "$repo/scripts/fetch-inputs.sh" >/dev/null || die "scripts/fetch-inputs.sh failed"
fi
# shellcheck disable=SC1091 # KERNEL STUB OVMF BUSYBOX
. "$repo/.cache/inputs/inputs.env"
# shellcheck disable=SC2153
: "${KERNEL:?}" "${STUB:?}" "${OVMF:?}" "${BUSYBOX:?}"
for v in KERNEL STUB OVMF BUSYBOX; do [ -f "${!v}" ] || die "input $v=${!v} is missing; run scripts/fetch-inputs.sh"; done

# Debian's nix-bin, used directly by root on the local store; the sandbox on, without fallback and
# without any extra path (no /bin/sh: image builds must not need a shell); no binary cache.
export NIX_CONFIG="experimental-features = nix-command flakes
substituters =
sandbox = true
sandbox-fallback = false
sandbox-paths =
build-users-group =
warn-dirty = false"
unset NIX_PATH
echo "offline: $(nix --version), sandbox on, no substituters; work directory $work"

# A static cvmkit: the sandbox has no /lib, so a dynamically linked one could not run there. It is
# built without the default `openssl` feature (libcrypto is linked dynamically): RustCrypto's
# SHA-1/SHA-2 instead, the same digests (cvmkit-measure's test openssl_digests_are_rustcrypto_digests).
target_dir=${CARGO_TARGET_DIR:-$repo/target}
echo "offline: building a static cvmkit (cargo, $target_dir)"
static_build() {
  RUSTFLAGS='-C target-feature=+crt-static' CARGO_TARGET_DIR=$target_dir \
    cargo build -q --release --locked --target x86_64-unknown-linux-gnu "$@" >>"$work/logs/cargo.log" 2>&1 ||
    { tail -n 30 "$work/logs/cargo.log" >&2; die "cargo build of a static $* failed"; }
}
static_build -p cvmkit --no-default-features
static_build -p cvmkit-runtime
cvmkit_bin=$target_dir/x86_64-unknown-linux-gnu/release/cvmkit
runtime_bin=$target_dir/x86_64-unknown-linux-gnu/release/cvmkit-runtime
version=$("$cvmkit_bin" --version | awk '{ print $2 }')

# Puts FILE in the store as a flat fixed-output path; prints its JSON for inputs.json.
add_flat() { # FILE
  local hash path
  hash=$(sha256sum "$1" | cut -d' ' -f1)
  path=$(nix-store --add-fixed sha256 "$1") || return 1
  printf '{ "name": "%s", "sha256": "%s", "path": "%s" }' "$(basename "$1")" "$hash" "$path"
}
# Puts DIR in the store as a recursive fixed-output path; prints its JSON.
add_tree() { # DIR
  local hash path
  hash=$(nix-hash --type sha256 "$1")
  path=$(nix-store --add-fixed --recursive sha256 "$1") || return 1
  printf '{ "name": "%s", "sha256": "%s", "path": "%s" }' "$(basename "$1")" "$hash" "$path"
}

stage=$work/stage
chmod -R u+w "$stage" 2>/dev/null
rm -rf "$stage"
mkdir -p "$stage/cvmkit-$version/bin" "$stage/cvmkit-runtime-$version/bin" "$stage/busybox-static/bin"
cp "$cvmkit_bin" "$stage/cvmkit-$version/bin/cvmkit"
chmod 0555 "$stage/cvmkit-$version/bin/cvmkit"
cp "$runtime_bin" "$stage/cvmkit-runtime-$version/bin/cvmkit-runtime"
chmod 0555 "$stage/cvmkit-runtime-$version/bin/cvmkit-runtime"
# busybox as nixpkgs lays it out, for checks/stub-nixpkgs (a builder must be called busybox).
cp "$BUSYBOX" "$stage/busybox-static/bin/busybox"
chmod 0555 "$stage/busybox-static/bin/busybox"

uname=$(basename "$KERNEL")
uname=${uname#vmlinuz-}
moddir=$(dirname "$(dirname "$KERNEL")")/lib/modules/$uname/kernel
# virtio-net and what it needs, in load order (Debian builds them as modules).
kmods="net/core/failover.ko drivers/net/net_failover.ko drivers/virtio/virtio_ring.ko drivers/virtio/virtio.ko
drivers/virtio/virtio_pci_modern_dev.ko drivers/virtio/virtio_pci_legacy_dev.ko drivers/virtio/virtio_pci.ko
drivers/net/virtio_net.ko"

cvmkit_json=$(add_tree "$stage/cvmkit-$version") || die "cannot add cvmkit to the store"
runtime_json=$(add_tree "$stage/cvmkit-runtime-$version") || die "cannot add cvmkit-runtime to the store"
kmods_json=
for m in $kmods; do
  [ -f "$moddir/$m" ] || die "kernel module $moddir/$m not found"
  kmods_json="$kmods_json${kmods_json:+, }$(add_flat "$moddir/$m")" || die "cannot add $m to the store"
done
inputs_json="{
  \"cvmkit\": $cvmkit_json,
  \"runtime\": $runtime_json,
  \"kernel\": $(add_flat "$KERNEL"),
  \"stub\": $(add_flat "$STUB"),
  \"ovmf\": $(add_flat "$OVMF"),
  \"ovmfAmdSev\": $(add_flat "$repo/rust/crates/cvmkit-ovmf/tests/fixtures/ovmf_AmdSev_suffix.bin"),
  \"busybox\": $(add_flat "$BUSYBOX"),
  \"busyboxTree\": $(add_tree "$stage/busybox-static"),
  \"kernelModules\": [ $kmods_json ],
  \"uname\": \"$uname\"
}"
echo "$inputs_json" >"$work/inputs.json"
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]), end='')" "$1"; }
store_cvmkit=$(json 'd["cvmkit"]["path"]' <"$work/inputs.json")/bin/cvmkit

# nix-build of an attribute of checks/offline.nix; prints the output path.
obuild() { # ATTR [nix-build options]
  local attr=$1
  shift
  nix-build "$repo/checks/offline.nix" --argstr inputsJSON "$inputs_json" -A "$attr" --no-out-link "$@"
}
oeval() { # EXPR-ON-offline.nix (JSON out)
  nix-instantiate --eval --strict --json --readonly-mode \
    --expr "let o = import $repo/checks/offline.nix { inputsJSON = builtins.readFile $work/inputs.json; }; in $1"
}

# --- Checks ------------------------------------------------------------------------------------

static_cvmkit() {
  local b
  for b in "$cvmkit_bin" "$runtime_bin"; do
    readelf -l "$b" | grep -q 'Requesting program interpreter' && { echo "$b has an ELF interpreter: not static"; return 1; }
    readelf -d "$b" | grep -q '(NEEDED)' && { echo "$b needs shared libraries: not static"; return 1; }
  done
  echo "$store_cvmkit"
  "$store_cvmkit" --version
  cmp "$cvmkit_bin" "$store_cvmkit"
}
check "cvmkit and cvmkit-runtime are statically linked, cvmkit is in the store" static_cvmkit

parse_all() {
  local n=0 f
  while IFS= read -r f; do
    nix-instantiate --parse "$f" >/dev/null || { echo "$f does not parse"; return 1; }
    n=$((n + 1))
  done < <(find "$repo" \( -path "$repo/.git" -o -path "$repo/.cache" -o -path "$repo/target" -o -name 'target*' \) -prune -o -name '*.nix' -print | sort)
  echo "$n files parsed"
  [ "$n" -gt 10 ]
}
check "every .nix file parses (nix-instantiate --parse)" parse_all

unit_tests() {
  nix-instantiate --eval --strict --json --readonly-mode "$repo/nix/tests.nix" >"$work/tests.json" || return 1
  python3 - "$work/tests.json" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
for f in r["failed"]:
    print("failed:", f["name"], "\n  got:", json.dumps(f["got"]), "\n  expected:", json.dumps(f["expected"]))
print(f'{r["passed"]} of {r["total"]} tests passed')
sys.exit(0 if not r["failed"] and r["passed"] == r["total"] > 0 else 1)
EOF
}
check "Nix library unit tests (nix/tests.nix)" unit_tests
echo "      $(tail -n1 "$last_log")"

error_messages() {
  local out
  out=$(nix-instantiate --eval --strict --readonly-mode --expr "(import $repo/nix {}).evalModules { modules = [
      { _file = \"a.nix\"; files.\"/etc/x\".text = \"a\"; } { _file = \"b.nix\"; files.\"/etc/x\".text = \"b\"; } ]; }" 2>&1)
  echo "$out"
  # shellcheck disable=SC2016 # backquotes are part of the message
  echo "$out" | grep -qF 'error: cvmkit: files."/etc/x" is defined by a.nix and again, differently, by b.nix; set `force = true` in the later definition to replace the earlier one' || return 1
  out=$(nix-instantiate --eval --strict --readonly-mode --expr "(import $repo/nix {}).evalModules { modules = [ { init.comands = [ ]; } ]; }" 2>&1)
  echo "$out"
  echo "$out" | grep -qF 'error: cvmkit: module modules[0] sets unknown option init.comands; init has commands' || return 1
}
check "library errors name the modules and the fix" error_messages

example_out=
build_example() {
  example_out=$(obuild example) || return 1
  echo "$example_out"
  ls -l "$example_out"
  # The builder is cvmkit itself, and the sandbox had no /bin/sh.
  local drv
  drv=$(nix-instantiate "$repo/checks/offline.nix" --argstr inputsJSON "$inputs_json" -A example 2>/dev/null)
  nix show-derivation "$drv" | python3 -c '
import json, sys
d = next(iter(json.load(sys.stdin).values()))
assert d["builder"].endswith("/bin/cvmkit"), d["builder"]
assert d["args"][:2] == ["build", "--spec-json"], d["args"]
print("builder", d["builder"], "args", d["args"][0], d["args"][1], "…")'
}
check "example image builds in the sandbox, builder = cvmkit, no shell" build_example

if [ -n "$example_out" ]; then
  check "example image rebuilds bit-identically (nix-build --check)" obuild example --check

  salted() {
    local twin
    twin=$(obuild exampleSalted) || return 1
    [ "$twin" != "$example_out" ] || { echo "the salted twin has the same output path"; return 1; }
    cmp "$example_out/uki.efi" "$twin/uki.efi" && cmp "$example_out/initrd.img" "$twin/initrd.img"
  }
  check "a salted twin (another derivation) builds the same bytes" salted

  # Scale beyond one machine (issue 16) with Nix's own machinery, nothing home-made: the built
  # image goes into a signed file:// binary cache (`nix copy`), and a second, empty store gets
  # it by substitution — `--max-jobs 0` forbids building — bit-identical, signature checked; with
  # another key trusted it is refused. Remote builders and a real cache (S3, cachix, attic) are
  # the same commands with other URLs (README "Nix").
  binary_cache() {
    local bc=$work/binary-cache drv store2=$work/store2 store3=$work/store3 sub
    rm -rf "$bc" "$store2" "$store3"
    nix-store --generate-binary-cache-key cvmkit-offline-1 "$work/cache.sec" "$work/cache.pub" || return 1
    nix-store --generate-binary-cache-key cvmkit-offline-1 "$work/other.sec" "$work/other.pub" || return 1
    nix copy --to "file://$bc?secret-key=$work/cache.sec" "$example_out" || return 1
    drv=$(nix-instantiate "$repo/checks/offline.nix" --argstr inputsJSON "$inputs_json" -A example 2>/dev/null) || return 1
    nix copy --derivation --to "$store2" "$drv" || return 1
    sub=(--option substituters "file://$bc" --max-jobs 0)
    nix-store --store "$store2" --realise "$drv" "${sub[@]}" --option trusted-public-keys "$(cat "$work/cache.pub")" >/dev/null || return 1
    for f in uki.efi initrd.img; do
      cmp "$store2$example_out/$f" "$example_out/$f" || return 1
    done
    echo "substituted from file://$bc into $store2, signed by $(cut -d: -f1 "$work/cache.pub"): bit-identical"
    nix copy --derivation --to "$store3" "$drv" || return 1
    if nix-store --store "$store3" --realise "$drv" "${sub[@]}" --option trusted-public-keys "$(cat "$work/other.pub")" >"$work/logs/untrusted.log" 2>&1; then
      echo "a cache signed with an untrusted key was accepted"
      return 1
    fi
    grep -q "not signed by any of the keys" "$work/logs/untrusted.log" || { cat "$work/logs/untrusted.log"; return 1; }
    echo "with another key trusted: refused (not signed by any of the keys in trusted-public-keys)"
    rm -rf "$store2" "$store3"
  }
  check "the image substitutes from a signed binary cache into a second store, bit-identically; an untrusted signature is refused" binary_cache

  direct_build() {
    local d spec name
    d=$(mktemp -d "$work/direct.XXXXXX")
    spec=$(oeval 'o.example.specJSON' | json 'd') || return 1
    name=$(echo "$spec" | json 'd["initrd"]["spec_files"][0]')
    oeval 'o.example.initrdSpec' | json 'd' >"$d/$name"
    (cd "$d" && "$cvmkit_bin" build --spec-json "$spec" --out out) || return 1
    cmp "$d/out/uki.efi" "$example_out/uki.efi" && cmp "$d/out/initrd.img" "$example_out/initrd.img" || return 1
    cmp "$d/out/sbom.cdx.json" "$example_out/sbom.cdx.json" || return 1
    rm -rf "$d"
  }
  check "cvmkit build outside Nix on the same spec gives the same bytes (initrd, UKI, SBOM)" direct_build

  classic() {
    local d ex=$repo/examples/minimal
    d=$(mktemp -d "$work/classic.XXXXXX")
    mkdir -p "$d/root/bin"
    cp "$BUSYBOX" "$d/root/bin/busybox"
    cp "$ex/init" "$d/root/init"
    (
      export SOURCE_DATE_EPOCH=0
      "$cvmkit_bin" initrd "$d/root" --spec "$ex/initrd.spec" --compress zstd -o "$d/initrd.img" &&
        "$cvmkit_bin" uki --stub "$STUB" --linux "$KERNEL" --initrd "$d/initrd.img" \
          --cmdline "@$ex/cmdline" --os-release "$ex/os-release" --uname "$uname" -o "$d/uki.efi"
    ) || return 1
    cmp "$d/initrd.img" "$example_out/initrd.img" && cmp "$d/uki.efi" "$example_out/uki.efi" || return 1
    sha256sum "$example_out/uki.efi"
    rm -rf "$d"
  }
  check "the Nix example equals scripts/example.sh's way (cvmkit initrd + cvmkit uki), bit for bit" classic

  # The image with its disk and measurements.json, as the flake's images are built: it rebuilds
  # bit-identically, and its disk and measurements equal the standalone commands on its UKI.
  full() {
    local out d
    out=$(obuild example-full) || return 1
    obuild example-full --check >/dev/null || { echo "example-full does not rebuild bit-identically"; return 1; }
    ls -l "$out"
    d=$(mktemp -d "$work/full.XXXXXX")
    (cd "$d" && SOURCE_DATE_EPOCH=0 "$cvmkit_bin" disk --seed cvmkit-example-full --uki "$out/uki.efi" -o disk.raw) || return 1
    cmp "$d/disk.raw" "$out/disk.raw" || return 1
    "$cvmkit_bin" measure tpm --json --uki "$out/uki.efi" >"$d/tpm.json" || return 1
    "$cvmkit_bin" measure tdx --json --qemu-version 9.2 --firmware "$OVMF" --uki "$out/uki.efi" --disk-gpt "$out/disk.raw" >"$d/tdx.json" || return 1
    python3 - "$out/measurements.json" "$d/tpm.json" "$d/tdx.json" <<'PY' || return 1
import json, sys
docs = json.load(open(sys.argv[1]))
want = [json.load(open(p)) for p in sys.argv[2:]]
assert [d["platform"] for d in docs] == ["tpm", "tdx"], [d["platform"] for d in docs]
for d, w in zip(docs, want):
    assert d["registers"] == w["registers"], d["platform"]
    print(d["platform"], [(r["name"], r["bank"], r["value"][:16]) for r in d["registers"]][:4])
PY
    rm -rf "$d"
  }
  check "example with disk + measurements.json: rebuilds identically, equals cvmkit disk / measure" full

  # Issue 17: the image's SBOM names the store paths and Nix metadata of what is in it (checked
  # with the CycloneDX library's strict validator), and mkProvenance's statement parses with the
  # in-toto attestation library and names the image's outputs.
  sbom_provenance() {
    local out prov py=$repo/.cache/venv/bin/python
    [ -x "$py" ] || { echo "needs $py (scripts/setup.sh installs the PyPI peers)"; return 1; }
    out=$(obuild example-full) || return 1
    prov=$(obuild example-provenance) || return 1
    "$py" - "$out" "$prov" "$KERNEL" <<'PY' || return 1
import hashlib, json, os, sys
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
from google.protobuf import json_format
from in_toto_attestation.v1 import statement_pb2
from in_toto_attestation.predicates.provenance.v1 import provenance_pb2
out, prov, kernel = sys.argv[1:]
text = open(os.path.join(out, "sbom.cdx.json")).read()
errors = JsonStrictValidator(SchemaVersion.V1_6).validate_str(text)
assert errors is None, errors
bom = json.loads(text)
props = lambda c: {p["name"]: p["value"] for p in c.get("properties", [])}
by_name = {c["name"]: c for c in bom["components"]}
k = by_name["linux"]
assert props(k)["cvmkit:nix-store-path"].startswith("/nix/store/"), k
assert k["licenses"] == [{"license": {"id": "GPL-2.0-only"}}], k
assert k["hashes"][0]["content"] == hashlib.sha256(open(kernel, "rb").read()).hexdigest()
bb = by_name["busybox"]
assert [f["name"] for f in bb["components"]] == ["/bin/busybox"], bb
assert "OVMF" in by_name and "systemd-stub" in by_name, sorted(by_name)
st = json.load(open(prov))
json_format.ParseDict(st, statement_pb2.Statement())
json_format.ParseDict(st["predicate"], provenance_pb2.Provenance())
subjects = {s["name"]: s["digest"]["sha256"] for s in st["subject"]}
for name in ["uki.efi", "disk.raw", "measurements.json", "sbom.cdx.json"]:
    assert subjects[name] == hashlib.sha256(open(os.path.join(out, name), "rb").read()).hexdigest(), name
deps = {d["name"]: d for d in st["predicate"]["buildDefinition"]["resolvedDependencies"]}
assert deps["nixpkgs"]["uri"] == "git+https://github.com/NixOS/nixpkgs" and deps["source"]["digest"]["gitCommit"].startswith("0123"), deps
print("sbom:", len(bom["components"]), "components,", sum(len(c.get("components", [])) for c in bom["components"]), "files; provenance:", sorted(subjects))
PY
  }
  check "the image's SBOM (valid CycloneDX 1.6, Nix store paths and licences) and mkProvenance's in-toto statement" sbom_provenance

  # The building blocks, each a cvmkit subcommand as a derivation, equal mkImage's outputs.
  blocks() {
    local b full
    full=$(obuild example-full) || return 1
    for b in initrd uki disk tpm tdx; do
      eval "blk_$b=\$(obuild blocks.$b)" || { echo "blocks.$b does not build"; return 1; }
    done
    # shellcheck disable=SC2154 # set by eval above
    cmp "$blk_initrd" "$example_out/initrd.img" && cmp "$blk_uki" "$example_out/uki.efi" &&
      cmp "$blk_uki" "$full/uki.efi" && cmp "$blk_disk" "$full/disk.raw" || return 1
    python3 - "$full/measurements.json" "$blk_tpm" "$blk_tdx" <<'PY' || return 1
import json, sys
docs = json.load(open(sys.argv[1]))
for doc, path in zip(docs, sys.argv[2:]):
    block = json.load(open(path))
    assert block["platform"] == doc["platform"], (block["platform"], doc["platform"])
    assert block["registers"] == doc["registers"], doc["platform"]
    print(doc["platform"], "registers equal:", [r["name"] + "/" + r["bank"] for r in doc["registers"]])
PY
    obuild blocks.uki --check >/dev/null && obuild blocks.disk --check >/dev/null ||
      { echo "a block does not rebuild bit-identically"; return 1; }
  }
  check "building blocks mkInitrd, mkUki, mkDisk, measure equal mkImage's initrd, UKI, disk, measurements" blocks
else
  skip "rebuild, salted twin, direct and classic comparisons" "the example did not build"
fi

boot_dhcp_out=
boot_static_out=
build_boot() {
  boot_dhcp_out=$(obuild boot-dhcp) && boot_static_out=$(obuild boot-static) && obuild all-modules &&
    obuild boot-dhcp --check >/dev/null
}
check "base-module images build (base+qemu+tdx, +snp +static ip=, +azure+devtools) and rebuild identically" build_boot

# Boots UKI under QEMU + OVMF with TCG and a user-mode NIC restricted to the guest (QEMU's own DHCP
# server, no traffic leaves QEMU); the serial console goes to LOG. QEMU exits when the guest powers off.
boot() { # UKI LOG
  local d esp kib
  d=$(mktemp -d "$work/boot.XXXXXX")
  esp=$d/esp.img
  kib=$(($(stat -c %s "$1") / 1024 + 8192))
  mkfs.vfat -C "$esp" "$kib" >/dev/null &&
    mmd -i "$esp" ::/EFI ::/EFI/BOOT &&
    mcopy -i "$esp" "$1" ::/EFI/BOOT/BOOTX64.EFI || return 1
  timeout 300 qemu-system-x86_64 -machine q35 -accel tcg -m 512 -smp 1 -bios "$OVMF" \
    -drive if=none,id=esp,format=raw,file="$esp" -device virtio-blk-pci,drive=esp,bootindex=0 \
    -netdev user,id=n0,restrict=on -device virtio-net-pci,netdev=n0,romfile= \
    -display none -monitor none -no-reboot -serial file:"$2" </dev/null
  local rc=$?
  rm -rf "$d"
  return $rc
}
expect() { # LOG LINE...
  local log=$1 missing=0
  shift
  for l in "$@"; do grep -qF -- "$l" "$log" || { echo "missing in the serial console: $l"; missing=1; }; done
  [ "$missing" = 0 ] || { echo "--- serial console:"; tail -n 60 "$log"; }
  return $missing
}
if [ "${CVMKIT_OFFLINE_SKIP_BOOT:-0}" = 1 ]; then
  skip "boot tests" "CVMKIT_OFFLINE_SKIP_BOOT=1"
elif [ -z "$boot_dhcp_out" ] || [ -z "$boot_static_out" ]; then
  skip "boot tests" "the images did not build"
elif ! command -v qemu-system-x86_64 >/dev/null || ! command -v mcopy >/dev/null || ! command -v mkfs.vfat >/dev/null; then
  skip "boot tests" "needs qemu-system-x86, mtools, dosfstools (scripts/setup.sh installs them)"
else
  # Both at once: TCG uses one core each.
  boot "$boot_dhcp_out/uki.efi" "$work/logs/serial-dhcp.log" >"$work/logs/qemu-dhcp.log" 2>&1 &
  pid_dhcp=$!
  boot "$boot_static_out/uki.efi" "$work/logs/serial-static.log" >"$work/logs/qemu-static.log" 2>&1
  rc_static=$?
  wait "$pid_dhcp"
  rc_dhcp=$?
  common=("CVMKIT-COMMANDS-OK" "CVMKIT-SERVICE-OK" "CVMKIT-MOUNTS-OK" "inet addr:10.0.2.15"
    "CVMKIT-WORKLOAD-OK" "cvmkit-init: workload exited with status 0" "cvmkit-init: powering off")
  boot_dhcp_ok() {
    [ "$rc_dhcp" = 0 ] || { echo "qemu exited with $rc_dhcp (124: the guest did not power off)"; cat "$work/logs/qemu-dhcp.log"; }
    # QEMU's DHCP server sends no router with restrict=on.
    expect "$work/logs/serial-dhcp.log" "cvmkit-init: network: DHCP on eth0" \
      "cvmkit-init: network: eth0 10.0.2.15 netmask 255.255.255.0 (DHCP)" \
      "CVMKIT-HOSTNAME=cvmkit-boot-dhcp" "${common[@]}" && [ "$rc_dhcp" = 0 ]
  }
  boot_static_ok() {
    [ "$rc_static" = 0 ] || { echo "qemu exited with $rc_static (124: the guest did not power off)"; cat "$work/logs/qemu-static.log"; }
    expect "$work/logs/serial-static.log" "cvmkit-init: network: eth0 10.0.2.15 netmask 255.255.255.0 via 10.0.2.2" \
      "CVMKIT-HOSTNAME=cvmstatic" "0.0.0.0         10.0.2.2        0.0.0.0         UG" "nameserver 10.0.2.3" \
      "${common[@]}" && [ "$rc_static" = 0 ]
  }
  check "boot (QEMU+OVMF): base init mounts, DHCP via udhcpc, commands, service, workload, power-off" boot_dhcp_ok
  check "boot (QEMU+OVMF): static ip= from the kernel command line" boot_static_ok

  # The runtime module in an image of the library, through the harness: `cvmkit run-local` boots
  # it with `-nic user,restrict=on` and a vTPM (swtpm, tpm-crb), serves a manifest + app from its
  # metadata server on 127.0.0.1 (guestfwd 10.0.2.2:8090), and waits for the app through a hostfwd
  # port. The app serves PCR 15 as the guest kernel reports it (sysfs), which must equal what
  # `cvmkit-runtime events` predicts on the host from the app's sha256: the promise that
  # measurements.json's note makes, read back from a booted image.
  runtime_boot() {
    local out d app_sha manifest pcr15
    out=$(obuild runtime-qemu) || return 1
    obuild runtime-qemu --check >/dev/null || { echo "runtime-qemu does not rebuild bit-identically"; return 1; }
    d=$(mktemp -d "$work/run-local.XXXXXX")
    printf '%s\n' '#!/bin/sh' 'mkdir -p /tmp/www' \
      'pcr=$(tr A-F a-f < /sys/class/tpm/tpm0/pcr-sha256/15)' \
      'echo "CVMKIT-RUNTIME-IMAGE-OK port=$PORT pcr15=$pcr" > /tmp/www/index.html' \
      'exec /bin/busybox httpd -f -p "0.0.0.0:$PORT" -h /tmp/www' >"$d/app.sh"
    app_sha=$(sha256sum "$d/app.sh" | cut -d' ' -f1)
    manifest=$(printf '{"app": "http://10.0.2.2:8090/apps/0", "sha256": "%s"}' "$app_sha" | base64 -w0)
    pcr15=$("$runtime_bin" events --manifest "$manifest" | awk '$1 == "pcr15-sha256" { print $2 }')
    [ -n "$pcr15" ] || { echo "cvmkit-runtime events printed no PCR 15"; return 1; }
    echo "expected PCR 15 (cvmkit-runtime events): $pcr15"
    "$cvmkit_bin" run-local "$out" --accel tcg --tpm --nic-model virtio-net-pci --firmware "$OVMF" --app "$d/app.sh" \
      --expect "CVMKIT-RUNTIME-IMAGE-OK port=3001 pcr15=$pcr15" \
      --timeout 400 --serial "$work/logs/serial-runtime.log" --json >"$d/result.json" || {
      cat "$d/result.json"
      tail -n 60 "$work/logs/serial-runtime.log"
      return 1
    }
    cat "$d/result.json"
    python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
assert r["answered"] is True, r
assert "/manifest" in r["metadata_requests"] and "/apps/0" in r["metadata_requests"], r["metadata_requests"]' "$d/result.json" || return 1
    expect "$work/logs/serial-runtime.log" "cvmkit-init: starting service cvmkit-runtime" \
      "cvmkit-runtime: metadata source qemu: answered with 1 workload(s)" \
      "cvmkit-runtime: app-0: fetched http://10.0.2.2:8090/apps/0 and verified sha256" || return 1
    rm -rf "$d"
  }
  check "boot (cvmkit run-local --tpm): the runtime module fetches, verifies and serves a workload; PCR 15 read back equals cvmkit-runtime events" runtime_boot
fi

# The flake itself, with checks/stub-nixpkgs standing in for nixpkgs.
flake_checks() {
  local src=$work/flake-src stub=$work/stub-nixpkgs
  chmod -R u+w "$src" "$stub" "$work/downstream-src" 2>/dev/null
  rm -rf "$src" "$stub" "$work/downstream-src"
  mkdir -p "$src" "$stub"
  # The flake as Git would see it (only what the flake reads: no target/, no .cache/).
  cp -r "$repo/flake.nix" "$repo/flake.lock" "$repo/nix" "$repo/modules" "$repo/kernel" "$repo/checks" "$repo/examples" "$src/"
  cp "$repo/checks/stub-nixpkgs/flake.nix" "$stub/"
  cp "$work/inputs.json" "$stub/inputs.json"
  local f=(--override-input nixpkgs "path:$stub" --no-write-lock-file)
  # Golden measurements: committed files hold real-nixpkgs values, which the stand-in's Debian
  # inputs cannot reproduce; so the copy gets its own through the refresh app, and must pass
  # with them, and fail when a value is changed or a file is missing.
  rm -rf "$src/checks/golden"
  echo "--- a missing golden file fails its check, naming the refresh command"
  if nix build "path:$src#checks.x86_64-linux.golden-tdx-qemu" "${f[@]}" --no-link -L >"$work/logs/golden-missing.log" 2>&1; then
    echo "golden-tdx-qemu passed without checks/golden/tdx-qemu.json"
    return 1
  fi
  grep -F 'checks/golden/tdx-qemu.json does not exist' "$work/logs/golden-missing.log" | tail -n1
  grep -qF 'nix run .#update-golden' "$work/logs/golden-missing.log" || { cat "$work/logs/golden-missing.log"; return 1; }
  echo "--- nix run .#update-golden"
  (cd "$src" && nix run "path:$src#update-golden" "${f[@]}") || return 1
  [ "$(find "$src/checks/golden" -name '*.json' | wc -l)" = 7 ] || { echo "expected 7 golden files"; return 1; }
  echo "--- nix flake check"
  nix flake check "path:$src" "${f[@]}" -L || return 1
  echo "--- a changed golden value fails its check, naming the register"
  python3 "$repo/checks/flip-golden.py" "$src/checks/golden/snp-qemu.json" snp || return 1
  if nix build "path:$src#checks.x86_64-linux.golden-snp-qemu" "${f[@]}" --no-link -L >"$work/logs/golden-changed.log" 2>&1; then
    echo "golden-snp-qemu passed with a changed value"
    return 1
  fi
  grep -E 'MISMATCH +snp ' "$work/logs/golden-changed.log" || { cat "$work/logs/golden-changed.log"; return 1; }
  echo "--- nix build .#tdx-qemu"
  local out
  out=$(nix build "path:$src#tdx-qemu" "${f[@]}" --no-link --json | json 'd[0]["outputs"]["out"]') || return 1
  ls -l "$out"
  [ -s "$out/uki.efi" ] && [ -s "$out/initrd.img" ] && [ -s "$out/sbom.cdx.json" ] || return 1
  echo "--- nix build .#tdx-qemu.provenance"
  local prov
  prov=$(nix build "path:$src#tdx-qemu.provenance" "${f[@]}" --no-link --json | json 'd[0]["outputs"]["out"]') || return 1
  python3 - "$prov" "$out" <<'PY' || return 1
import hashlib, json, os, sys
st = json.load(open(sys.argv[1]))
subjects = {s["name"]: s["digest"]["sha256"] for s in st["subject"]}
assert subjects["uki.efi"] == hashlib.sha256(open(os.path.join(sys.argv[2], "uki.efi"), "rb").read()).hexdigest()
deps = {d["name"]: d for d in st["predicate"]["buildDefinition"]["resolvedDependencies"]}
assert "narHash" in deps["source"]["annotations"] and "nixpkgs" in deps, deps
print("tdx-qemu.provenance:", sorted(subjects), "source narHash", deps["source"]["annotations"]["narHash"][:20])
PY
  echo "--- nix run .#measure -- --help"
  nix run "path:$src#measure" "${f[@]}" -- --help | tee "$work/logs/measure-help.txt" || return 1
  grep -q 'Usage: cvmkit measure' "$work/logs/measure-help.txt" || return 1
  # (Booting the flake's image here would need network drivers that Debian's kernel only has as
  # modules; the run-local boot check above boots a library image with them.)
  echo "--- nix run .#run-local -- --help"
  nix run "path:$src#run-local" "${f[@]}" -- --help | tee "$work/logs/run-local-help.txt" || return 1
  grep -q 'Usage: cvmkit run-local' "$work/logs/run-local-help.txt" || return 1
  echo "--- nix run .#inspect -- uki.efi"
  nix run "path:$src#inspect" "${f[@]}" -- "$out/uki.efi" | tee "$work/logs/inspect.txt" || return 1
  grep -q '.linux' "$work/logs/inspect.txt" || return 1
  echo "--- examples/downstream: nix build (cvmkit = this checkout, its nixpkgs = the stand-in)"
  cp -r "$repo/examples/downstream" "$work/downstream-src"
  out=$(nix build "path:$work/downstream-src" --override-input cvmkit "path:$src" \
    --override-input cvmkit/nixpkgs "path:$stub" --no-write-lock-file --no-link --json |
    json 'd[0]["outputs"]["out"]') || return 1
  ls -l "$out"
  [ -s "$out/uki.efi" ] || return 1
  nix-store --query --references "$(nix-store --query --deriver "$out")" | grep -q -- '-hello\.drv$' ||
    { echo "the downstream image does not depend on its workload package"; return 1; }
  # Its module's tree, files, directories, owners, modes and users, as GNU cpio reads them.
  zstd -dc "$out/initrd.img" | (cd "$work" && rm -rf downstream-x && mkdir downstream-x && cd downstream-x &&
    cpio -i --quiet --make-directories --no-absolute-filenames etc/passwd etc/group etc/motd 2>/dev/null)
  zstd -dc "$out/initrd.img" | cpio -t -v --quiet --numeric-uid-gid >"$work/logs/downstream-initrd.txt" || return 1
  local want
  for want in '-rw-r----- +1 1000 +1000 .* etc/hello/config$' 'drwx------ +[0-9]+ 1000 +1000 .* var/lib/hello$' \
    '-rw-r--r-- +1 0 +0 .* etc/motd$' '-rw-r--r-- +1 0 +0 .* usr/share/hello/index.txt$' '-rwxr-xr-x +1 0 +0 .* bin/hello$'; do
    grep -Eq -- "$want" "$work/logs/downstream-initrd.txt" || { echo "not in the downstream initrd: $want"; cat "$work/logs/downstream-initrd.txt"; return 1; }
  done
  grep -qx 'hello:x:1000:1000:hello:/var/lib/hello:/bin/sh' "$work/downstream-x/etc/passwd" &&
    grep -qx 'hello:x:1000:' "$work/downstream-x/etc/group" &&
    grep -q 'Welcome to hello-cvm' "$work/downstream-x/etc/motd" || { echo "users or the tree are missing"; return 1; }
  echo "downstream initrd: tree, owned files and dirs, users as the module says"
}
check "flake.nix with stand-in nixpkgs: golden refresh + checks, nix flake check, nix build .#tdx-qemu, nix run .#measure/.#run-local -- --help, .#inspect, examples/downstream" flake_checks

kernel_config() {
  # The flake's kernel is 6.18 (kernel/default.nix), and its own derivation runs mkconfig.sh on that
  # tree on a real host. Debian has no linux-source-6.16..6.18, so here the fragment is checked on
  # the oldest linux-source of Debian's newer suites that is at least 6.16 (the first kernel with
  # the RTMR sysfs interface the fragment relies on): every option must survive olddefconfig there.
  local ksrc=$repo/.cache/kernel-src deb tree pkg suites="trixie trixie-backports sid"
  mkdir -p "$ksrc"
  command -v flex >/dev/null && command -v bison >/dev/null && command -v gcc >/dev/null && command -v make >/dev/null ||
    apt_install flex bison gcc make libc6-dev || { echo "cannot install flex, bison, gcc, make"; return 1; }
  pkg=$("$repo/scripts/suite-apt.sh" "$ksrc/apt" "$suites" apt-cache pkgnames linux-source- |
    grep -E '^linux-source-[0-9]+\.[0-9]+$' | sort -V |
    awk -F- '{ split($3, v, "."); if (v[1] > 6 || (v[1] == 6 && v[2] >= 16)) { print; exit } }')
  [ -n "$pkg" ] || { echo "no linux-source >= 6.16 in $suites"; return 1; }
  echo "checking against $pkg ($("$repo/scripts/suite-apt.sh" "$ksrc/apt" "$suites" apt-cache policy "$pkg" | awk '/Candidate:/ { print $2 }'))"
  tree=$ksrc/src/$pkg
  if [ ! -f "$tree/.cvmkit-extracted" ]; then
    (cd "$ksrc" && rm -f linux-source-*.deb && "$repo/scripts/suite-apt.sh" "$ksrc/apt" "$suites" apt-get download "$pkg" >/dev/null 2>&1) ||
      { echo "apt-get download $pkg failed"; return 1; }
    deb=$(find "$ksrc" -maxdepth 1 -name "${pkg}_*.deb" | head -n1)
    rm -rf "$ksrc/src"
    mkdir -p "$ksrc/src"
    # Only what Kconfig reads: every Kconfig file, the Makefiles, scripts/, x86 defconfigs.
    dpkg-deb --fsys-tarfile "$deb" | tar -xO "./usr/src/$pkg.tar.xz" |
      tar -xJ -C "$ksrc/src" --wildcards '*Kconfig*' '*/scripts/*' '*Makefile*' '*/arch/x86/configs/*' \
        '*/arch/x86/tools/*' '*/include/*' || return 1
    touch "$tree/.cvmkit-extracted"
    rm -f "$deb"
  fi
  bash "$repo/kernel/mkconfig.sh" "$tree" "$repo/kernel/guest.config" "$work/guest-kernel.config"
}
if [ "${CVMKIT_OFFLINE_SKIP_KERNEL:-0}" = 1 ]; then
  skip "kernel config" "CVMKIT_OFFLINE_SKIP_KERNEL=1"
else
  check "kernel/guest.config survives olddefconfig (Debian's oldest linux-source >= 6.16)" kernel_config
  grep -h '^checking against\|^mkconfig: all' "$last_log" | sed 's/^/      /'
fi

summary
[ "$failed" = 0 ]
