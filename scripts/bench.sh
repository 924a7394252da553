#!/usr/bin/env bash
# Benchmarks cvmkit against the tools people use today, on the same inputs in one run, and prints a
# Markdown report (BENCHMARKS.md is this script's output plus commentary).
#
#   initrd: `find | sort | cpio --reproducible | gzip -9n` vs `cvmkit initrd --compress gzip|zstd`
#   uki:    `objcopy --add-section …` vs `cvmkit uki`
#   verify: `cvmkit verify` on real evidence; dcap-qvl (Python) on the same TDX quote
#
# The tree is a fixed selection of the Debian kernel's modules (real binaries, ~55 MB, ~1,100 files).
# Needs scripts/setup.sh first (hyperfine, cpio, binutils, the inputs).
set -euo pipefail
export LC_ALL=C
repo=$(cd "$(dirname "$0")/.." && pwd)
. "$repo/.cache/inputs/inputs.env"
runs=${BENCH_RUNS:-5}
cargo build -q --release --locked --manifest-path "$repo/Cargo.toml" -p cvmkit
cvmkit=$repo/target/release/cvmkit
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT

modules=$(dirname "$(dirname "$KERNEL")")/lib/modules
kdir=$(ls -d "$modules"/*/kernel | head -n1)
tree=$work/tree
mkdir -p "$tree"
for d in drivers/media drivers/iio drivers/hid drivers/hwmon; do
  mkdir -p "$tree/$(dirname "$d")"
  cp -a "$kdir/$d" "$tree/$d"
done
files=$(find "$tree" -type f | wc -l)
mb=$(du -sbm "$tree" | cut -f1)

size() { stat -c %s "$1"; }
# Medians: this 2-core VM has slow spells that a mean takes in whole.
mean() { python3 -c 'import json,sys; print("%.3f" % json.load(open(sys.argv[1]))["results"][0]["median"])' "$1"; }
# The ratios the issue-16 targets name: both commands run in turn, round after round (one
# warm-up each), so a slow spell of the machine falls on both; prints each one's median (s).
interleaved() { # rounds command...
  python3 - "$@" <<'PY'
import statistics, subprocess, sys, time
rounds, cmds = int(sys.argv[1]), sys.argv[2:]
run = lambda c: subprocess.run(c, shell=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
for c in cmds:
    run(c)
times = [[] for _ in cmds]
for _ in range(rounds):
    for t, c in zip(times, cmds):
        start = time.perf_counter(); run(c); t.append(time.perf_counter() - start)
print(" ".join("%.3f" % statistics.median(t) for t in times))
PY
}
ratio_rounds=$((runs * 3))
ratio() { python3 -c "print('%.1f' % ($1 / $2))"; }

cat > "$work/pipeline.sh" <<EOF
cd "$tree" && find . -mindepth 1 | sort | cpio -o -H newc --reproducible --quiet | gzip -9n > "$work/pipe.cpio.gz"
EOF
hyperfine -N -r "$runs" -w 1 --export-json "$work/h1.json" "sh $work/pipeline.sh" >/dev/null
hyperfine -N -r "$runs" -w 1 --export-json "$work/h2.json" "$cvmkit initrd $tree --compress gzip -o $work/cvm.cpio.gz" >/dev/null
hyperfine -N -r "$runs" -w 1 --export-json "$work/h3.json" "$cvmkit initrd $tree --compress zstd -o $work/cvm.cpio.zst" >/dev/null
hyperfine -N -r "$runs" -w 1 --export-json "$work/h4.json" "$cvmkit initrd $tree --compress none -o $work/cvm.cpio" >/dev/null
t1=$(mean "$work/h1.json"); t2=$(mean "$work/h2.json"); t3=$(mean "$work/h3.json"); t4=$(mean "$work/h4.json")

# UKI: ~60 MB (kernel + the uncompressed cpio above as initrd).
printf 'console=ttyS0\n' > "$work/cmdline"
cp "$repo/examples/minimal/os-release" "$work/osrel"
cat > "$work/objcopy.sh" <<EOF
rm -f "$work/objcopy.efi"
objcopy --add-section .osrel="$work/osrel" --change-section-vma .osrel=0x20000 \
  --add-section .cmdline="$work/cmdline" --change-section-vma .cmdline=0x30000 \
  --add-section .linux="$KERNEL" --change-section-vma .linux=0x2000000 \
  --add-section .initrd="$work/cvm.cpio" --change-section-vma .initrd=0x3000000 \
  "$STUB" "$work/objcopy.efi"
EOF
hyperfine -N -r "$runs" -w 1 --export-json "$work/u1.json" "sh $work/objcopy.sh" >/dev/null
hyperfine -N -r "$runs" -w 1 --export-json "$work/u2.json" \
  "$cvmkit uki --stub $STUB --linux $KERNEL --initrd $work/cvm.cpio --cmdline @$work/cmdline --os-release $work/osrel -o $work/cvm.efi" >/dev/null
u1=$(mean "$work/u1.json"); u2=$(mean "$work/u2.json")

# Measurements (issue 3): the 60 MB UKI above, a 4 MiB firmware.
# SNP with kernel hashes needs an AmdSev OVMF: the peer's own AmdSev fixture (last 4 KiB of a real
# build) zero-padded in front to 4 MiB, with the UKI's bytes as the kernel and the cpio as initrd.
fx=$repo/testdata/sev-snp-measure/ovmf_AmdSev_suffix.bin
python3 -c "import sys; d=open(sys.argv[1],'rb').read(); open(sys.argv[2],'wb').write(bytes(4*1024*1024-len(d))+d)" "$fx" "$work/amdsev.fd"
venv=$repo/.cache/venv
hyperfine -N -r "$runs" -w 1 --export-json "$work/m1.json" \
  "$venv/bin/sev-snp-measure --mode snp --vcpus 4 --vcpu-type EPYC-v4 --ovmf $work/amdsev.fd --kernel $work/cvm.efi --initrd $work/cvm.cpio --append console=ttyS0" >/dev/null
hyperfine -N -r "$runs" -w 1 --export-json "$work/m2.json" \
  "$cvmkit measure snp --vcpus 4 --vcpu-type EPYC-v4 --firmware $work/amdsev.fd --kernel $work/cvm.efi --initrd $work/cvm.cpio --append console=ttyS0" >/dev/null
hyperfine -N -r "$runs" -w 1 --export-json "$work/m3.json" "$cvmkit measure tpm --uki $work/cvm.efi" >/dev/null
hyperfine -N -r "$runs" -w 1 --export-json "$work/m4.json" \
  "$cvmkit measure tdx --firmware $OVMF --kernel $KERNEL --initrd $work/cvm.cpio --cmdline console=ttyS0" >/dev/null
# One pass (issue 16): every document of an image (TPM 3 banks, TDX from the disk, SNP) against
# the hashing floor, one SHA-384 pass over the UKI with openssl; the TDX UKI prediction alone;
# the SNP firmware-only digest against the peer.
"$cvmkit" disk --uki "$work/cvm.efi" -o "$work/m.raw" >/dev/null
pair=$(interleaved "$ratio_rounds" "openssl dgst -sha384 $work/cvm.efi" \
  "$cvmkit measure all --uki $work/cvm.efi --disk $work/m.raw --tdx-firmware $OVMF --snp-firmware $work/amdsev.fd")
read -r m5 m6 <<< "$pair"
hyperfine -N -r "$runs" -w 1 --export-json "$work/m7.json" \
  "$cvmkit measure tdx --firmware $OVMF --uki $work/cvm.efi --disk $work/m.raw" >/dev/null
hyperfine -N -r "$runs" -w 1 --export-json "$work/m8.json" \
  "$venv/bin/sev-snp-measure --mode snp --vcpus 4 --vcpu-type EPYC-v4 --ovmf $work/amdsev.fd" >/dev/null
hyperfine -N -r "$runs" -w 1 --export-json "$work/m9.json" \
  "$cvmkit measure snp --vcpus 4 --vcpu-type EPYC-v4 --firmware $work/amdsev.fd" >/dev/null
m1=$(mean "$work/m1.json"); m2=$(mean "$work/m2.json"); m3=$(mean "$work/m3.json"); m4=$(mean "$work/m4.json")
m7=$(mean "$work/m7.json"); m8=$(mean "$work/m8.json"); m9=$(mean "$work/m9.json")
sep=$(python3 -c "print('%.3f' % ($m3 + $m7 + $m9))")
a=$("$venv/bin/sev-snp-measure" --mode snp --vcpus 4 --vcpu-type EPYC-v4 --ovmf "$work/amdsev.fd" --kernel "$work/cvm.efi" --initrd "$work/cvm.cpio" --append console=ttyS0)
b=$("$cvmkit" measure snp --vcpus 4 --vcpu-type EPYC-v4 --firmware "$work/amdsev.fd" --kernel "$work/cvm.efi" --initrd "$work/cvm.cpio" --append console=ttyS0 --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["registers"][0]["value"])')
[ "$a" = "$b" ] || { echo "bench: SNP digests differ: peer $a, cvmkit $b" >&2; exit 1; }

# Bounded memory (issue 16): `cvmkit build` of an image whose uncompressed initrd holds a random
# file of 0.25-2 GiB (initrd written as built, the UKI written from the initrd file, the raw disk
# from the UKI file, the measurements from one pass over the UKI file), then `cvmkit measure all`
# on that UKI: wall time and peak RSS (GNU time), one run each. Files are deleted after each size.
stage_root() {
  mkdir -p "$1/bin"; cp "$BUSYBOX" "$1/bin/busybox"; cp "$repo/examples/minimal/init" "$1/init"
}
image_spec() { # root compress disk-format measure-json
  cat <<JSON
{"schema": "cvmkit.image/v1", "name": "bench", "source_date_epoch": 0,
 "initrd": {"trees": ["$1"], "spec_files": ["$repo/examples/minimal/initrd.spec"], "compress": "$2"},
 "uki": {"stub": "$STUB", "kernel": "$KERNEL", "cmdline": "console=ttyS0 panic=-1\n",
         "os_release": "$repo/examples/minimal/os-release", "uname": "$(basename "$KERNEL" | sed 's/^vmlinuz-//')"},
 "disk": {"format": "$3"}, "measure": $4}
JSON
}
measure_items='[{"platform": "tpm"}, {"platform": "tdx", "firmware": "'$OVMF'"}, {"platform": "snp", "firmware": "'$OVMF'", "vcpus": 1, "vcpu_type": "EPYC-v4"}]'
timed() { # output-file command...: "seconds peak-KiB user-seconds system-seconds"
  local f=$1; shift
  /usr/bin/time -f '%e %M %U %S' -o "$f" "$@" >/dev/null
}
# This VM hands free memory back to its host at once (virtio-balloon free page reporting), so
# every GiB the page cache takes faults on the host, at a cost that depends on timing, not on
# the program writing (BENCHMARKS.md). Where the kernel lets us (root), reporting is paused for
# these runs (an order above the largest the buddy allocator has) and restored after.
fpr=/sys/module/page_reporting/parameters/page_reporting_order
fpr_note="free page reporting: not present"
if [ -w "$fpr" ]; then
  fpr_was=$(cat "$fpr")
  if echo 11 > "$fpr" 2>/dev/null; then
    trap 'echo "$fpr_was" > "$fpr"; rm -rf "$work"' EXIT
    fpr_note="free page reporting paused for these runs (page_reporting_order $fpr_was → 11)"
  else
    fpr_note="free page reporting on (could not pause it)"
  fi
fi
bigrows=""
for mib in 256 512 1024 2048; do
  big=$work/big; rm -rf "$big"; mkdir -p "$big"; stage_root "$big/root"
  head -c $((mib << 20)) /dev/urandom > "$big/root/big.bin"
  image_spec "$big/root" none raw "$measure_items" > "$big/image.json"
  # Three builds into a fresh directory each, the median by wall time. Each starts with no
  # dirty pages and the previous outputs' blocks freed: GiBs left to write back (or to discard,
  # on a file system mounted with `discard`) would slow whichever command comes next.
  for r in 1 2 3; do
    rm -rf "$big/out"; sync
    timed "$work/tb$r" "$cvmkit" build --spec "$big/image.json" -o "$big/out"
  done
  read -r bt bm bu bs < <(sort -n "$work/tb1" "$work/tb2" "$work/tb3" | sed -n 2p)
  # The floor: dd writing as many bytes as the build's outputs hold (the disk's allocated
  # blocks only) into one fresh file, under the same conditions, median of 3.
  written=$(du -B1M -c "$big/out"/* | tail -n1 | cut -f1)
  for r in 1 2 3; do
    rm -f "$big/floor"; sync
    timed "$work/tf$r" dd if=/dev/zero of="$big/floor" bs=1M count="$written" status=none
  done
  read -r ft _ < <(sort -n "$work/tf1" "$work/tf2" "$work/tf3" | sed -n 2p)
  rm -f "$big/floor"; sync
  timed "$work/tm" "$cvmkit" measure all --uki "$big/out/uki.efi" --disk "$big/out/disk.raw" --tdx-firmware "$OVMF" --snp-firmware "$work/amdsev.fd"
  read -r mt mm mu ms < "$work/tm"
  bigrows+="| $(python3 -c "print('%.2f' % ($mib / 1024))") GiB | $(( $(size "$big/out/uki.efi") >> 20 )) MiB | $bt | $(python3 -c "print('%.1f' % ($bt * 1024 / $mib))") | $(( written >> 10 )).$(( (written & 1023) * 10 >> 10 )) GiB: $ft | $bu | $bs | $(( bm >> 10 )) | $mt | $(python3 -c "print('%.2f' % ($mu + $ms))") | $(( mm >> 10 )) |"$'\n'
  rm -rf "$big"
done
[ -z "${fpr_was:-}" ] || echo "$fpr_was" > "$fpr"

# `cvmkit build` of the example image (examples/minimal: busybox + /init, zstd initrd, UKI, raw
# disk, TPM + TDX + SNP documents); with BENCH_OLD=<an older cvmkit binary>, that one too.
ex=$work/ex; mkdir -p "$ex"; stage_root "$ex/root"
image_spec "$ex/root" zstd raw "$measure_items" > "$ex/image.json"
# Written back first: the GiBs the bounded-memory runs wrote would otherwise be flushed by the
# kernel's threads on the two cores the builds compare on.
sync
b0=""
if [ -n "${BENCH_OLD:-}" ]; then
  pair=$(interleaved "$ratio_rounds" "$cvmkit build --spec $ex/image.json -o $ex/out" \
    "$BENCH_OLD build --spec $ex/image.json -o $ex/old")
  read -r b1 b0 <<< "$pair"
  cmp -s "$ex/out/uki.efi" "$ex/old/uki.efi" && cmp -s "$ex/out/measurements.json" "$ex/old/measurements.json" \
    || { echo "bench: BENCH_OLD builds other bytes" >&2; exit 1; }
else
  b1=$(interleaved "$ratio_rounds" "$cvmkit build --spec $ex/image.json -o $ex/out")
fi

bigrows=${bigrows%$'\n'}
buildrows="| cvmkit build | $b1 | |"
[ -z "$b0" ] || buildrows="| BENCH_OLD: $(basename "$BENCH_OLD") build | $b0 | 1.0× |"$'\n'"| cvmkit build | $b1 | $(python3 -c "print('%.1f' % ($b0 / $b1))")× |"

# Disks (issue 5): a 2 GiB sparse raw disk holding the 60 MB UKI, and its GCP tar.gz, vs the
# usual pipeline (truncate, sfdisk, mkfs.vfat, mmd/mcopy, dd into the disk, tar --sparse | gzip).
cat > "$work/disk.sh" <<DISK
set -e
cd "$work"; rm -f p.raw esp.img p.tar.gz
truncate -s 2G p.raw
printf 'label: gpt\nstart=2048, size=262144, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B\n' | sfdisk -q p.raw
mkfs.vfat -F 32 -C esp.img 131072 >/dev/null
mmd -i esp.img ::/EFI ::/EFI/BOOT
mcopy -i esp.img cvm.efi ::/EFI/BOOT/BOOTX64.EFI
dd if=esp.img of=p.raw bs=1M seek=1 conv=notrunc,sparse status=none
cp --sparse=always p.raw disk.raw && tar --format=oldgnu --sparse -czf p.tar.gz disk.raw && rm disk.raw
DISK
hyperfine -N -r "$runs" -w 1 --export-json "$work/d1.json" "bash $work/disk.sh" >/dev/null
cat > "$work/cdisk.sh" <<DISK
set -e
cd "$work"; rm -f c.raw c.tar.gz
"$cvmkit" disk --uki cvm.efi --disk-size 2G --esp-size 128M -o c.raw >/dev/null
"$cvmkit" disk --uki cvm.efi --disk-size 2G --esp-size 128M --format gcp -o c.tar.gz >/dev/null
DISK
hyperfine -N -r "$runs" -w 1 --export-json "$work/d2.json" "bash $work/cdisk.sh" >/dev/null
d1=$(mean "$work/d1.json"); d2=$(mean "$work/d2.json")

# The GCP archive alone (issue 16), for the UKI above (its initrd an uncompressed cpio, which
# deflate shrinks) and for the same kernel with that cpio zstd-compressed, as cvmkit builds
# images (deflate gains nothing on it); GNU tar + gzip -6 of the same raw disk for the size;
# with BENCH_OLD, that binary's `disk --format gcp` too.
"$cvmkit" uki --stub "$STUB" --linux "$KERNEL" --initrd "$work/cvm.cpio.zst" --cmdline "@$work/cmdline" --os-release "$work/osrel" -o "$work/zst.efi" >/dev/null
gcprows=""
for u in cvm zst; do
  "$cvmkit" disk --uki "$work/$u.efi" --disk-size 2G --esp-size 128M -o "$work/$u.raw" >/dev/null
  (cd "$work" && cp --sparse=always "$u.raw" disk.raw && tar --format=oldgnu --sparse -cf - disk.raw | gzip -6 -n > "$u.gnu.tar.gz" && rm disk.raw "$u.raw")
  gcp="disk --uki $work/$u.efi --disk-size 2G --esp-size 128M --format gcp"
  label="$(( $(size "$work/$u.efi") / 1000000 )) MB UKI, initrd $([ $u = cvm ] && echo "uncompressed cpio" || echo "zstd")"
  if [ -n "${BENCH_OLD:-}" ]; then
    pair=$(interleaved "$ratio_rounds" "$cvmkit $gcp -o $work/$u.tar.gz" "$BENCH_OLD $gcp -o $work/$u.old.tar.gz")
    read -r g1 g0 <<< "$pair"
    gcprows+="| $label | $g0 | $g1 | $(ratio "$g0" "$g1")× | $(size "$work/$u.tar.gz") | $(size "$work/$u.gnu.tar.gz") |"$'\n'
  else
    g1=$(interleaved "$ratio_rounds" "$cvmkit $gcp -o $work/$u.tar.gz")
    gcprows+="| $label | | $g1 | | $(size "$work/$u.tar.gz") | $(size "$work/$u.gnu.tar.gz") |"$'\n'
  fi
  [ "$(size "$work/$u.tar.gz")" -le "$(size "$work/$u.gnu.tar.gz")" ] \
    || { echo "bench: the GCP archive of $u.efi is larger than GNU tar + gzip -6" >&2; exit 1; }
done
gcprows=${gcprows%$'\n'}

# Evidence (issue 13): real evidence from testdata/evidence, whole processes (start-up included),
# and dcap-qvl's Python build on the same quote and collateral (process, and in-process per call).
ev=$repo/testdata/evidence
vr=$(( runs * 4 ))
hyperfine -N -r "$vr" -w 2 --export-json "$work/v1.json" \
  "$cvmkit verify tdx $ev/tdx/dcap-qvl/tdx_quote --collateral $ev/tdx/dcap-qvl/tdx_quote_collateral.json --at 2025-07-01T00:00:00Z --json" >/dev/null
hyperfine -N -r "$vr" -w 2 --export-json "$work/v2.json" \
  "$cvmkit verify tdx $repo/testdata/evidence/tdx/go-tdx-guest/cos-113-tdx-quote.dat --event-log $repo/testdata/go-tdx-guest/ccel/ccel_data.dat --at 2025-01-01T00:00:00Z --json" >/dev/null
hyperfine -N -r "$vr" -w 2 --export-json "$work/v3.json" \
  "$cvmkit verify snp $ev/sev-snp/trustee/test-vlek-report.bin --cert $ev/sev-snp/trustee/test-vlek.der --at 2025-06-01T00:00:00Z --json" >/dev/null
hyperfine -N -r "$vr" -w 2 --export-json "$work/v4.json" \
  "$cvmkit verify tpm $ev/gce-vtpm/go-tpm-tools/attestations/gce-cos-85-nonce9009.pb --nonce 9009 --at 2025-06-01T00:00:00Z --json" >/dev/null
hyperfine -N -r "$vr" -w 2 --export-json "$work/v5.json" \
  "$cvmkit verify azure $ev/azure/trustee/az-snp-vtpm/evidence-v1.json --nonce 6368616c6c656e6765 --at 2025-06-01T00:00:00Z --json" >/dev/null
cat > "$work/qvl.py" <<PY
import sys, time, dcap_qvl
quote = open("$ev/tdx/dcap-qvl/tdx_quote", "rb").read()
coll = dcap_qvl.QuoteCollateralV3.from_json(open("$ev/tdx/dcap-qvl/tdx_quote_collateral.json").read())
n = int(sys.argv[1])
t = time.perf_counter()
for _ in range(n):
    status = dcap_qvl.verify(quote, coll, 1751328000).status
if n > 1:
    print("%.4f" % ((time.perf_counter() - t) / n))
PY
hyperfine -N -r "$vr" -w 2 --export-json "$work/v6.json" "$venv/bin/python $work/qvl.py 1" >/dev/null
v1=$(mean "$work/v1.json"); v2=$(mean "$work/v2.json"); v3=$(mean "$work/v3.json"); v4=$(mean "$work/v4.json"); v5=$(mean "$work/v5.json"); v6=$(mean "$work/v6.json")
v7=$("$venv/bin/python" "$work/qvl.py" 50)
cat <<EOF
Inputs: $files files, $mb MB (modules of $(basename "$KERNEL")); UKI of $(( $(size "$work/cvm.efi") / 1000000 )) MB. Median of $runs runs (hyperfine); the ratios of issue 16 (one pass, example build, GCP archive) from the commands run in turn ($ratio_rounds rounds each), medians; $(nproc) cores.

| job | tool | time (s) | output bytes | speed-up |
|---|---|---:|---:|---:|
| initrd | find \| sort \| cpio --reproducible \| gzip -9n | $t1 | $(size "$work/pipe.cpio.gz") | 1.0× |
| initrd | cvmkit initrd --compress gzip | $t2 | $(size "$work/cvm.cpio.gz") | $(ratio "$t1" "$t2")× |
| initrd | cvmkit initrd --compress zstd | $t3 | $(size "$work/cvm.cpio.zst") | $(ratio "$t1" "$t3")× |
| initrd | cvmkit initrd --compress none | $t4 | $(size "$work/cvm.cpio") | $(ratio "$t1" "$t4")× |
| uki | objcopy --add-section … | $u1 | $(size "$work/objcopy.efi") | 1.0× |
| uki | cvmkit uki | $u2 | $(size "$work/cvm.efi") | $(ratio "$u1" "$u2")× |

| measurement (60 MB kernel/UKI + initrd, 4 MiB firmware) | tool | time (s) | speed-up |
|---|---|---:|---:|
| SNP launch digest, kernel hashes | sev-snp-measure 0.0.13 | $m1 | 1.0× |
| SNP launch digest, kernel hashes (same digest) | cvmkit measure snp | $m2 | $(ratio "$m1" "$m2")× |
| SNP launch digest, firmware only | sev-snp-measure 0.0.13 | $m8 | 1.0× |
| SNP launch digest, firmware only (same digest) | cvmkit measure snp | $m9 | $(ratio "$m8" "$m9")× |
| TPM PCR 4 + PCR 11, 3 banks | cvmkit measure tpm | $m3 | |
| TDX MRTD + RTMR1/2, direct boot | cvmkit measure tdx | $m4 | |
| TDX MRTD + RTMR1/2, the UKI from its disk | cvmkit measure tdx | $m7 | |

| one pass: every document of the image (TPM 3 banks + TDX + SNP), 60 MB UKI, its disk, 4 MiB firmware | tool | time (s) | × the SHA-384 floor |
|---|---|---:|---:|
| the floor: one SHA-384 pass over the UKI | openssl dgst -sha384 | $m5 | 1.0× |
| three commands, one after another | cvmkit measure tpm; tdx; snp | $sep | $(ratio "$sep" "$m5")× |
| one pass, shared digests, both cores | cvmkit measure all | $m6 | $(ratio "$m6" "$m5")× |

| bounded memory: \`cvmkit build\` (uncompressed initrd with a random file, UKI, raw disk, TPM + TDX + SNP) and \`cvmkit measure all\` on its UKI; $fpr_note | UKI | build (s), median of 3 | build s per GiB | the floor: dd writing the outputs' bytes (s) | build user CPU (s) | build system CPU (s) | build peak RSS (MiB) | measure all (s) | measure all CPU (s) | measure all peak RSS (MiB) |
|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|
$bigrows

| \`cvmkit build\` of the example image (busybox, zstd initrd, UKI, raw disk, 3 documents) | time (s) | speed-up |
|---|---:|---:|
$buildrows

| disk: 2 GiB sparse raw + GCP tar.gz with the 60 MB UKI | tool | time (s) | tar.gz bytes | speed-up |
|---|---|---:|---:|---:|
| truncate + sfdisk + mkfs.vfat + mtools + dd + tar --sparse -z | shell | $d1 | $(size "$work/p.tar.gz") | 1.0× |
| cvmkit disk (raw, then gcp) | cvmkit | $d2 | $(size "$work/c.tar.gz") | $(ratio "$d1" "$d2")× |

| \`cvmkit disk --format gcp\` alone, 2 GiB disk | BENCH_OLD (s) | cvmkit (s) | speed-up | tar.gz bytes | GNU tar + gzip -6 bytes |
|---|---:|---:|---:|---:|---:|
$gcprows

| verification (real evidence, whole process) | tool | time (s) |
|---|---|---:|
| TDX quote v4 + PCCS collateral: signatures, PCK chain, TCB status | cvmkit verify tdx | $v1 |
| the same quote + collateral | dcap-qvl 0.7.0 (Python), process | $v6 |
| the same quote + collateral, one call in-process | dcap-qvl 0.7.0 (Python) | $v7 |
| GCE TDX quote v4 + its CCEL (43 events replayed and matched) | cvmkit verify tdx | $v2 |
| SEV-SNP report + VLEK → ASVK → ARK (RSA-PSS 4096) | cvmkit verify snp | $v3 |
| GCE vTPM attestation: AK certificate chain, 3 quotes, 72 PCRs, event log | cvmkit verify tpm | $v4 |
| Azure: SNP report + chain, runtime claims, AK, vTPM quote | cvmkit verify azure | $v5 |
EOF
