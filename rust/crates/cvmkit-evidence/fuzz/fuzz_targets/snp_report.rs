//! Feeds arbitrary bytes to the SEV-SNP report parser and verifier (with no certificates
//! given, so a certificate table appended to the report is the only source of certificates:
//! its X.509 parsing is reached too).
//!
//! ```text
//! cd rust/crates/cvmkit-evidence/fuzz && cargo +nightly fuzz run snp_report
//! ```
//!
//! Seed corpus: the 1184-byte reports under testdata/evidence/sev-snp, and one with its VCEK
//! appended as an extended report's certificate table.
//!
//! Beyond "never panics": whatever parses is the report's first 1184 bytes (or the decoded hex
//! text's), and a verdict is always a complete document.
#![no_main]

use cvmkit_evidence::snp;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match snp::parse(data) {
        Ok(report) => assert_eq!(report.raw.len(), snp::REPORT_LEN),
        Err(err) => assert!(err.to_string().len() < 512),
    }
    if let Ok(verdict) = snp::verify(data, &snp::Options::new(1_700_000_000)) {
        assert!(!verdict.checks.is_empty());
        let _ = verdict.to_json();
    }
});
