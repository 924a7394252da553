//! Arbitrary bytes through `gcp`: the VMLaunchEndorsement / VMGoldenMeasurement decoder, the
//! endorsed values (48-byte digests checked), verification against the test endorsement's dev
//! root (chain, then signature) and the reference documents. None of it may panic.
//!
//! Run with `cargo +nightly fuzz run gcp_endorsement` from this directory; seed the corpus with
//! `testdata/evidence/gcp/devkeys-clean-example.binarypb`.
#![no_main]

use cvmkit_evidence::gcp;
use libfuzzer_sys::fuzz_target;

const DEV_ROOT: &[u8] = include_bytes!("../../../../../testdata/evidence/gcp/devkeys-root.crt");
/// 2025-01-01T00:00:00Z, inside the dev certificates' validity.
const AT: u64 = 1_735_689_600;

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = gcp::parse(data) {
        if let Ok(e) = gcp::Endorsement::from_golden(&p.golden) {
            for doc in gcp::reference_document(&e) {
                let _ = doc.to_json();
            }
        }
    }
    if let Ok((report, e)) = gcp::verify(data, &[DEV_ROOT], AT) {
        assert_eq!(report.passed(), e.is_some());
        let _ = report.to_json();
    }
});
