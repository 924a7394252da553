//! Azure evidence from an untrusted host (HCL report or evidence JSON) through
//! `azure::parse_evidence` and `azure::verify`, and a vTPM quote JSON through
//! `azure::parse_tpm_quote`: nothing may panic.
#![no_main]

use cvmkit_evidence::azure;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(e) = azure::parse_evidence(data) {
        let mut o = azure::Options::new(1_748_736_000);
        o.nonce = Some(b"challenge");
        let _ = azure::verify(&e, &o);
    }
    let _ = azure::parse_tpm_quote(data);
});
