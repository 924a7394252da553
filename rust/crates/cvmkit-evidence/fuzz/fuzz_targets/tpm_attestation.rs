//! Arbitrary bytes as a go-tpm-tools `attest.Attestation` through `tpm::verify`: the protobuf
//! decoder, the TPM structure parsers, the signature and certificate checks and the event-log
//! replay of whatever decodes. None of it may panic; a report is always well-formed JSON.
//!
//! Run with `cargo +nightly fuzz run tpm_attestation` from this directory; seed the corpus with
//! the real attestations (`mkdir -p corpus/tpm_attestation && cp
//! ../../../../testdata/evidence/gce-vtpm/go-tpm-tools/attestations/*.pb corpus/tpm_attestation/`).
#![no_main]

use cvmkit_evidence::tpm::{self, AkPublic, Options};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut opts = Options::new(1_735_689_600);
    opts.nonce = Some(&[0x90, 0x09]);
    match tpm::verify(data, &opts) {
        Ok(report) => {
            let json = report.to_json();
            assert!(serde_json::from_str::<serde_json::Value>(&json).is_ok());
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
    // The same bytes as an `--ak` file (PEM, DER SubjectPublicKeyInfo or TPMT_PUBLIC).
    let _ = AkPublic::from_file(data);
});
