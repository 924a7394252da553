//! Feeds arbitrary bytes to the parser of an extended SEV-SNP report's certificate table
//! (GUID, offset, length entries ended by an all-zero entry).
//!
//! ```text
//! cd rust/crates/cvmkit-evidence/fuzz && cargo +nightly fuzz run snp_cert_table
//! ```
//!
//! Beyond "never panics": every certificate returned lies within the table.
#![no_main]

use cvmkit_evidence::snp;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(entries) = snp::parse_cert_table(data) {
        for (guid, cert) in &entries {
            assert!(cert.len() <= data.len());
            let _ = snp::guid_name(guid);
        }
    }
});
