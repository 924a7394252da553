//! Parse arbitrary bytes as an event log, in every mode, and replay whatever parses.
//!
//! `cargo +nightly fuzz run parse_replay` from `rust/crates/cvmkit-tcg-log`; seed the corpus with
//! real logs (the CCEL and TPM logs of the fixture tree) for a head start.
#![no_main]

use cvmkit_tcg_log::{EventLog, LogKind};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for kind in [None, Some(LogKind::Tpm), Some(LogKind::Ccel)] {
        let parsed = match kind {
            None => EventLog::parse(data),
            Some(kind) => EventLog::parse_as(data, kind),
        };
        match parsed {
            Ok(log) => {
                let replay = log.replay();
                for event in log.events() {
                    let _ = event.label();
                    let _ = event.to_string();
                }
                for finding in log.findings() {
                    let _ = finding.to_string();
                }
                for alg in replay.banks() {
                    for (_, value) in replay.values(*alg) {
                        let _ = value.to_string();
                    }
                }
                assert!(log.bytes_used() <= data.len());
            }
            Err(error) => {
                let _ = error.to_string();
                assert!(error.offset() <= data.len());
            }
        }
    }
});
