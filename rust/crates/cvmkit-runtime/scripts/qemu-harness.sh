#!/usr/bin/env bash
# Boots a cvmkit image with the static cvmkit-runtime under QEMU (TCG, OVMF, FAT ESP, swtpm vTPM)
# with user networking restricted to the host, serves a manifest + app from a metadata server on
# 127.0.0.1 (reached by the guest as 10.0.2.2:8090 through guestfwd), and checks that the workload
# answers through hostfwd 127.0.0.1:PORT -> guest:3001 with the expected PCR 15.
#
# It is the integration test `qemu::boots_and_serves_the_workload_through_hostfwd` (about 20 s once
# the static binary is built; the first run builds it, ~2-3 min on 2 cores). Needs scripts/setup.sh
# (inputs, qemu, ovmf, mtools, dosfstools, swtpm). Extra arguments go to the test binary.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../../../.." && pwd)
cd "$repo"
[ -f .cache/inputs/inputs.env ] || { echo "qemu-harness: run scripts/setup.sh first" >&2; exit 1; }
exec cargo test --locked -p cvmkit-runtime --test runtime qemu:: -- --nocapture "$@"
