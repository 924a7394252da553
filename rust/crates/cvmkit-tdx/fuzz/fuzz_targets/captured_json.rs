//! Arbitrary text as captured TDX register values (`Captured::from_json`, what
//! `cvmkit measure tdx --rtmr0-captured` reads): every accepted shape, the event log given as a
//! JSON string included. A register with events must fold to its value. None of it may panic.
//!
//! Run with `cargo +nightly fuzz run captured_json` from this directory; seed the corpus with
//! captured values (`mkdir -p corpus/captured_json && cp ../../../../testdata/dstack/*.json corpus/captured_json/`).
#![no_main]

use cvmkit_tdx::{fold, Captured};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let captured = match Captured::from_json(text) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    for r in captured.rtmr.iter().flatten() {
        if !r.events.is_empty() {
            assert_eq!(r.value, fold(r.events.iter().map(|e| &e.digest)));
        }
    }
});
