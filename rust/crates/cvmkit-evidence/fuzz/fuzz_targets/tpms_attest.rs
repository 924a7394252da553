//! Arbitrary bytes through the TPM 2.0 structure parsers of `tpm`: TPMS_ATTEST (quote),
//! TPMT_PUBLIC (RSA/ECC key, then its normalized AK public key) and TPMT_SIGNATURE, and a
//! parsed signature checked against a parsed key over the same bytes. None of it may panic.
//!
//! Run with `cargo +nightly fuzz run tpms_attest` from this directory; seed the corpus with the
//! `quote`, `raw_sig` and `ak_pub` fields of the real attestations in
//! `testdata/evidence/gce-vtpm/go-tpm-tools/attestations/`.
#![no_main]

use cvmkit_evidence::tpm::{AkPublic, TpmsAttest, TpmtPublic, TpmtSignature};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(a) = TpmsAttest::parse(data) {
        for s in &a.pcr_select {
            assert!(s.pcrs().len() <= s.select.len() * 8);
        }
    }
    let sig = TpmtSignature::parse(data);
    let key = TpmtPublic::parse(data).ok().and_then(|p| AkPublic::from_tpmt_public(&p).ok());
    // Split the input: a key from the first part, a signature from the rest.
    let mid = data.len() / 2;
    let key2 = TpmtPublic::parse(&data[..mid]).ok().and_then(|p| AkPublic::from_tpmt_public(&p).ok());
    let sig2 = TpmtSignature::parse(&data[mid..]);
    for (k, s) in [(key, sig), (key2, sig2)] {
        if let (Some(k), Ok(s)) = (k, s) {
            let _ = k.verify(data, &s);
            let _ = k.describe();
        }
    }
    let _ = AkPublic::from_spki_der(data);
    let _ = AkPublic::from_certificate(data);
});
