#!/usr/bin/env bash
# examples/own-program/run.sh [OUT]: the README's "Your own program, without Nix", step by step,
# from a clone after scripts/setup.sh (scripts/test.sh runs it). Each step is a command the README
# shows; cvmkit is installed into OUT/cargo instead of ~/.cargo so the test leaves nothing behind.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
cd "$repo"
out=${1:-$repo/.cache/own-program}
mkdir -p "$out"
out=$(cd "$out" && pwd)
target=x86_64-unknown-linux-gnu

# 1. The cvmkit CLI (the README: `cargo install --locked --path rust/cvmkit`).
cargo install --quiet --locked --path rust/cvmkit --root "$out/cargo" --target-dir "$repo/target"
export PATH=$out/cargo/bin:$PATH
# 2. The in-image runtime and your program, both static.
RUSTFLAGS='-C target-feature=+crt-static' cargo build --quiet --locked --release -p cvmkit-runtime --target $target
RUSTFLAGS='-C target-feature=+crt-static' cargo build --quiet --release \
  --manifest-path examples/own-program/hello/Cargo.toml --target $target --target-dir "$out/hello-target"
program=$out/hello-target/$target/release/hello-cvm
file "$program" 2>/dev/null | grep -q 'static' || ldd "$program" 2>&1 | grep -qE 'not a dynamic|statically linked' ||
  { echo "own-program: $program is not static" >&2; exit 1; }
# 3. The image: initrd.img, uki.efi, measurements.json.
examples/own-program/build.sh "$out"
# 4. Boot it with a vTPM, hand it the program through the metadata server, wait for the answer.
cvmkit run-local "$out/image" --app "$program" --expect "hello from your program" --tpm --json >"$out/run.json"
cat "$out/run.json"
