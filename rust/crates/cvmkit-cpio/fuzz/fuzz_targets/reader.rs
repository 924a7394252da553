//! Feeds arbitrary bytes to the cpio reader.
//!
//! ```text
//! cd rust/crates/cvmkit-cpio/fuzz && cargo +nightly fuzz run reader
//! ```
//!
//! Without nightly or cargo-fuzz, the same coverage-guided build (minus
//! AddressSanitizer, which the reader's `forbid(unsafe_code)` makes moot) works
//! on stable; `--target` keeps the flags away from build scripts:
//!
//! ```text
//! RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
//!   -Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
//!   -Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -Cdebug-assertions -Coverflow-checks" \
//!   cargo build --release --target x86_64-unknown-linux-gnu
//! target/x86_64-unknown-linux-gnu/release/reader -max_total_time=120 corpus/
//! ```
//!
//! Beyond "never panics", it checks that entries come in increasing offsets
//! with the data their header declares, and that whatever the reader accepts
//! the writer reproduces exactly.
#![no_main]

use cvmkit_cpio::{Reader, Writer};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for concatenated in [false, true] {
        let mut next_min = 0u64;
        for item in Reader::new(data)
            .concatenated(concatenated)
            .with_trailers(true)
        {
            let entry = match item {
                Ok(entry) => entry,
                Err(err) => {
                    // Messages quote only a bounded part of the input.
                    assert!(err.to_string().len() < 512);
                    break;
                }
            };
            assert!(entry.offset >= next_min, "entries go forward");
            assert_eq!(entry.data.len() as u64, u64::from(entry.header.filesize));
            next_min = entry.offset + 110 + entry.name.len() as u64 + 1 + entry.data.len() as u64;
            if entry.is_trailer() || entry.name.is_empty() {
                continue; // the writer refuses these names by design
            }
            let mut w = Writer::new(Vec::new());
            w.write_entry(entry.name, &entry.header, &mut &entry.data[..])
                .unwrap();
            let again = w.finish().unwrap();
            let back = Reader::new(&again).next().unwrap().unwrap();
            assert_eq!(
                (back.name, back.header, back.data),
                (entry.name, entry.header, entry.data)
            );
        }
    }
});
