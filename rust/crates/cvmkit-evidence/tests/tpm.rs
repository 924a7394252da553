//! vTPM attestations (go-tpm-tools `attest.Attestation`), real evidence only: two attestations
//! recorded on a GCE COS 85 VM (google/go-tpm-tools `internal/test/attestations/`), copied to
//! `testdata/evidence/gce-vtpm/go-tpm-tools/` (see testdata/evidence/PROVENANCE.md).
//!
//! What must pass comes from go-tpm-tools' own tests (`server/verify_test.go`,
//! `TestVerifyAttestationWithCerts`: `gce-cos-85-no-nonce.pb` verifies with nonce nil and
//! `gce-cos-85-nonce9009.pb` with nonce `90 09`, both with roots `tpm_ek_root_1` and
//! intermediates `tpm_ek_intermediate_2`). Tampered copies flip one bit of the real file at a
//! place the TPM 2.0 structures (or the evidence's own bytes) locate, never one this code reports.

use cvmkit_evidence::roots::{self, GCE_EK_AK_CA_ROOT, GCE_TPM_EK_ROOT_1, INTEL_SGX_ROOT_CA};
use cvmkit_evidence::tpm::{self, AkPublic, Options, TpmsAttest, TpmtPublic, TpmtSignature};
use cvmkit_evidence::{Report, Status};
use cvmkit_measure::Bank;
use cvmkit_testutil::read_testdata as read;

const NO_NONCE: &str = "evidence/gce-vtpm/go-tpm-tools/attestations/gce-cos-85-no-nonce.pb";
const NONCE_9009: &str = "evidence/gce-vtpm/go-tpm-tools/attestations/gce-cos-85-nonce9009.pb";
/// The nonce `TestVerifyAttestationWithCerts` gives for `gce-cos-85-nonce9009.pb`.
const NONCE: &[u8] = &[0x90, 0x09];
/// 2025-01-01T00:00:00Z: inside every certificate's validity (the AK certificate's runs from
/// 2021-08-31 to 2051-08-24, as its DER says).
const AT: u64 = 1_735_689_600;

fn verify(raw: &[u8], nonce: Option<&[u8]>) -> Report {
    let mut opts = Options::new(AT);
    opts.nonce = nonce;
    tpm::verify(raw, &opts).expect("the attestation parses")
}

fn reason<'a>(r: &'a Report, name: &str) -> &'a str {
    &r.checks.iter().find(|c| c.name == name).unwrap_or_else(|| panic!("no check {name}")).reason
}

/// The offset of `needle` in `hay`, which must occur exactly once.
fn find(hay: &[u8], needle: &[u8]) -> usize {
    let hits: Vec<usize> = hay.windows(needle.len()).enumerate().filter(|(_, w)| *w == needle).map(|(i, _)| i).collect();
    assert_eq!(hits.len(), 1, "expected exactly one occurrence");
    hits[0]
}

fn flipped(raw: &[u8], at: usize) -> Vec<u8> {
    let mut out = raw.to_vec();
    out[at] ^= 0x01;
    out
}

fn hex(s: &str) -> Vec<u8> {
    cvmkit_measure::unhex(s).unwrap()
}

#[test]
fn pinned_gce_roots_are_the_published_files() {
    use sha2::{Digest, Sha256};
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("roots");
    for (file, sum) in roots::GCE_VTPM_SHA256 {
        let data = std::fs::read(dir.join(file)).unwrap();
        assert_eq!(cvmkit_measure::hex(&Sha256::digest(&data)), *sum, "{file}");
    }
    // And the copies in testdata (as go-tpm-tools ships them) are the same bytes.
    assert_eq!(GCE_TPM_EK_ROOT_1, read("evidence/gce-vtpm/go-tpm-tools/ca-certs/tpm_ek_root_1.cer"));
    assert_eq!(GCE_EK_AK_CA_ROOT, read("evidence/gce-vtpm/go-tpm-tools/ca-certs/gcp_ek_ak_ca_root.crt"));
}

#[test]
fn cos85_with_nonce_verifies() {
    let r = verify(&read(NONCE_9009), Some(NONCE));
    assert!(r.passed(), "{}", r.to_json());
    for name in ["ak-attributes", "ak-certificate", "quote-format", "quote-signature", "pcr-selection", "pcr-digest", "nonce", "event-log"] {
        assert_eq!(r.status(name), Some(Status::Pass), "{name}: {}", reason(&r, name));
    }
    assert_eq!(r.status("ak-pin"), Some(Status::Skipped));
    // The file holds SHA-1, SHA-256 and SHA-384 quotes (go-tpm-tools' test: SHA256 and SHA384
    // verify, SHA1 with AllowSHA1 — each including the event log's replay, so the log is
    // crypto-agile with all three banks).
    assert!(reason(&r, "quote-signature").contains("sha1, sha256, sha384 quotes"), "{}", reason(&r, "quote-signature"));
    assert!(reason(&r, "event-log").contains("sha1, sha256, sha384 quotes"), "{}", reason(&r, "event-log"));
    assert!(!reason(&r, "event-log").contains("not in the log"), "{}", reason(&r, "event-log"));
    // 24 PCRs per bank, each with the value the attestation's PCRs map holds.
    assert_eq!(r.registers.len(), 72);
    let pcr0 = r.registers.iter().find(|g| g.name == "PCR0" && g.bank == Bank::Sha256).unwrap();
    assert_eq!(
        pcr0.actual.as_ref().unwrap().as_bytes(),
        hex("0f35c214608d93c7a6e68ae7359b4a8be5a0e99eea9107ece427c4dea4e439cf").as_slice()
    );
    // The AK certificate names the GCE instance (go-tpm-tools' TestGetGCEInstanceInfo reads
    // the same extension from certificates of this project).
    assert!(r.claims.contains_key("gce_instance_info_der"));
    assert_eq!(r.claims["ak_key"], "RSA-2048");
}

#[test]
fn cos85_without_nonce_verifies_with_the_nonce_skipped() {
    let r = verify(&read(NO_NONCE), None);
    assert!(r.passed(), "{}", r.to_json());
    assert_eq!(r.status("nonce"), Some(Status::Skipped));
    assert_eq!(r.status("ak-certificate"), Some(Status::Pass));
    assert_eq!(r.status("event-log"), Some(Status::Pass));
}

#[test]
fn a_wrong_nonce_fails_the_nonce_check_only() {
    let r = verify(&read(NONCE_9009), Some(&[0x90, 0x08]));
    assert_eq!(r.failed(), ["nonce"], "{}", r.to_json());
    assert!(reason(&r, "nonce").contains("9009"), "{}", reason(&r, "nonce"));
    // The attestation made without a nonce has an empty extraData.
    let r = verify(&read(NO_NONCE), Some(NONCE));
    assert_eq!(r.failed(), ["nonce"], "{}", r.to_json());
}

/// The first quote's TPMS_ATTEST: magic (4), type (2), qualifiedSigner (2 + 34: SHA-256 name),
/// extraData (2 + 2: the nonce), then clockInfo.clock (8) at offset 46 (Part 2 §10.12.12).
#[test]
fn a_flipped_bit_in_a_quote_fails_its_signature() {
    let raw = read(NONCE_9009);
    let att = tpm::parse(&raw).unwrap();
    let quote = &att.quotes[0].quote;
    assert_eq!(&quote[..6], &[0xff, 0x54, 0x43, 0x47, 0x80, 0x18]);
    let at = find(&raw, quote) + 46 + 7;
    let r = verify(&flipped(&raw, at), Some(NONCE));
    assert_eq!(r.failed(), ["quote-signature"], "{}", r.to_json());
    assert!(reason(&r, "quote-signature").starts_with("sha1 quote:"), "{}", reason(&r, "quote-signature"));
}

/// TPMT_SIGNATURE: sigAlg (2), hash (2), size (2), then the RSA signature (Part 2 §11.3).
#[test]
fn a_flipped_bit_in_a_signature_fails() {
    let raw = read(NONCE_9009);
    let att = tpm::parse(&raw).unwrap();
    let sig = &att.quotes[1].raw_sig;
    let at = find(&raw, sig) + 6 + 100;
    let r = verify(&flipped(&raw, at), Some(NONCE));
    assert_eq!(r.failed(), ["quote-signature"], "{}", r.to_json());
    assert!(reason(&r, "quote-signature").starts_with("sha256 quote:"), "{}", reason(&r, "quote-signature"));
}

#[test]
fn a_flipped_bit_in_a_pcr_value_fails_the_pcr_digest() {
    let raw = read(NONCE_9009);
    // SHA-256 PCR0 as the attestation's PCRs map holds it (once in the file).
    let pcr0 = hex("0f35c214608d93c7a6e68ae7359b4a8be5a0e99eea9107ece427c4dea4e439cf");
    let r = verify(&flipped(&raw, find(&raw, &pcr0) + 31), Some(NONCE));
    let failed = r.failed();
    assert!(failed.contains(&"pcr-digest"), "{}", r.to_json());
    assert_eq!(r.status("quote-signature"), Some(Status::Pass));
    assert!(reason(&r, "pcr-digest").starts_with("sha256 quote:"), "{}", reason(&r, "pcr-digest"));
    // The changed value no longer matches the log either.
    assert!(failed.contains(&"event-log"));
    assert!(reason(&r, "event-log").contains("sha256 PCR0"), "{}", reason(&r, "event-log"));
}

/// The SHA-256 of an EV_SEPARATOR's 4 zero bytes (df3f6198…), as the log records it for PCR0-7:
/// its first occurrence is a separator event's SHA-256 digest.
#[test]
fn a_flipped_bit_in_the_event_log_fails_the_replay() {
    let raw = read(NONCE_9009);
    let att = tpm::parse(&raw).unwrap();
    let log_at = find(&raw, &att.event_log);
    let sep = hex("df3f619804a92fdb4057192dc43dd748ea778adc52bc498ce80524c014b81119");
    let first = att.event_log.windows(32).position(|w| w == sep.as_slice()).expect("a separator");
    let r = verify(&flipped(&raw, log_at + first + 31), Some(NONCE));
    assert_eq!(r.failed(), ["event-log"], "{}", r.to_json());
    let why = reason(&r, "event-log");
    assert!(why.contains("first: sha256 PCR"), "{why}");
    // The separator closes the pre-OS PCRs 0-7.
    let n: u32 = why.split("sha256 PCR").nth(1).unwrap().split(':').next().unwrap().parse().unwrap();
    assert!(n <= 7, "{why}");
}

#[test]
fn a_flipped_bit_in_the_ak_certificate_fails_it() {
    let raw = read(NONCE_9009);
    let att = tpm::parse(&raw).unwrap();
    // The last byte of the DER is in the issuer's signature.
    let at = find(&raw, &att.ak_cert) + att.ak_cert.len() - 1;
    let r = verify(&flipped(&raw, at), Some(NONCE));
    assert_eq!(r.failed(), ["ak-certificate"], "{}", r.to_json());
    assert!(reason(&r, "ak-certificate").contains("signature"), "{}", reason(&r, "ak-certificate"));
}

#[test]
fn a_foreign_root_fails_the_ak_certificate() {
    let raw = read(NONCE_9009);
    // Intel's SGX root, and Google's other (CA Service) root, which did not issue this chain.
    for root in [INTEL_SGX_ROOT_CA, GCE_EK_AK_CA_ROOT] {
        let roots = [root];
        let mut opts = Options::new(AT);
        opts.nonce = Some(NONCE);
        opts.roots = &roots;
        let r = tpm::verify(&raw, &opts).unwrap();
        assert_eq!(r.failed(), ["ak-certificate"], "{}", r.to_json());
    }
}

#[test]
fn the_ak_certificate_is_not_valid_before_it_was_issued() {
    let mut opts = Options::new(1_609_459_200); // 2021-01-01, before 2021-08-31
    opts.nonce = Some(NONCE);
    let r = tpm::verify(&read(NONCE_9009), &opts).unwrap();
    assert_eq!(r.failed(), ["ak-certificate"], "{}", r.to_json());
    assert!(reason(&r, "ak-certificate").contains("not valid before 2021-08-31"), "{}", reason(&r, "ak-certificate"));
}

#[test]
fn a_pinned_ak_must_be_the_attestations() {
    let raw = read(NONCE_9009);
    let att = tpm::parse(&raw).unwrap();
    // The attestation's own TPMT_PUBLIC, as `--ak` would read it from `tpm2_readpublic`.
    let mut opts = Options::new(AT);
    opts.nonce = Some(NONCE);
    opts.ak = Some(&att.ak_pub);
    let r = tpm::verify(&raw, &opts).unwrap();
    assert_eq!(r.status("ak-pin"), Some(Status::Pass), "{}", r.to_json());
    assert!(r.passed());
    // Another real AK: the Azure vTPM's of azure-cvm-tooling's test data (PEM).
    let foreign = read("evidence/azure/azure-cvm-tooling/akpub.pem");
    opts.ak = Some(&foreign);
    let r = tpm::verify(&raw, &opts).unwrap();
    assert_eq!(r.failed(), ["ak-pin"], "{}", r.to_json());
}

#[test]
fn the_ak_certificate_certifies_ak_pub() {
    let att = tpm::parse(&read(NO_NONCE)).unwrap();
    let from_cert = AkPublic::from_certificate(&att.ak_cert).unwrap();
    let from_tpm = AkPublic::from_tpmt_public(&TpmtPublic::parse(&att.ak_pub).unwrap()).unwrap();
    assert_eq!(from_cert, from_tpm);
}

/// The GCE AK (`*_sign_*`) and EK (`*_enc_*`) certificates of go-tpm-tools'
/// `internal/test/certificates/`: `TestValidateAKGCEAndGetGCEInstanceInfo` verifies `uca_*`
/// with `tpm_ek_root_1` + `tpm_ek_intermediate_3` and `pca_*` with `gcp_ek_ak_ca_root` +
/// `gcp_ek_ak_ca_intermediate_v3`; the RSA ones hold RSA keys and the ECC ones P-256 keys.
#[test]
fn gce_certificates_chain_to_their_roots() {
    for kind in ["rsa", "ecc"] {
        for usage in ["sign", "enc"] {
            for (ca, root, other) in [("uca", GCE_TPM_EK_ROOT_1, GCE_EK_AK_CA_ROOT), ("pca", GCE_EK_AK_CA_ROOT, GCE_TPM_EK_ROOT_1)] {
                let pem = read(&format!("evidence/gce-vtpm/go-tpm-tools/certificates/{ca}_tpm_{kind}_{usage}_cert.pem"));
                let der = pem_to_der(&pem);
                let key = tpm::verify_ak_certificate(&der, &[], &[root], AT).unwrap_or_else(|e| panic!("{ca} {kind} {usage}: {e}"));
                match (kind, &key) {
                    ("rsa", AkPublic::Rsa { .. }) => {}
                    ("ecc", AkPublic::Ecc { curve: tpm::TPM_ECC_NIST_P256, .. }) => {}
                    _ => panic!("{ca} {kind} {usage}: {key:?}"),
                }
                assert!(tpm::verify_ak_certificate(&der, &[], &[other], AT).is_err(), "{ca} {kind} {usage} with the other root");
            }
        }
    }
}

fn pem_to_der(pem: &[u8]) -> Vec<u8> {
    use rustls_pki_types::pem::PemObject;
    rustls_pki_types::CertificateDer::from_pem_slice(pem).unwrap().to_vec()
}

/// The structures of the real quotes, read field by field (Part 2 §10.12.12, §11.3.4, §12.2.4):
/// values from the evidence's bytes.
#[test]
fn tpm_structures_of_a_real_attestation() {
    let att = tpm::parse(&read(NONCE_9009)).unwrap();
    let ak = TpmtPublic::parse(&att.ak_pub).unwrap();
    assert_eq!(ak.key_type, tpm::alg::RSA);
    assert_eq!(ak.name_alg, tpm::alg::SHA256);
    // fixedTPM | fixedParent | sensitiveDataOrigin | userWithAuth | restricted | sign
    assert_eq!(ak.attributes, 0x0005_0072);
    assert_eq!(ak.scheme, tpm::Scheme { scheme: tpm::alg::RSASSA, hash: tpm::alg::SHA256 });
    for (q, bank) in att.quotes.iter().zip([tpm::alg::SHA1, tpm::alg::SHA256, tpm::alg::SHA384]) {
        let a = TpmsAttest::parse(&q.quote).unwrap();
        assert_eq!(a.extra_data, NONCE);
        assert_eq!(a.pcr_select.len(), 1);
        assert_eq!(a.pcr_select[0].hash, bank);
        assert_eq!(a.pcr_select[0].pcrs(), (0..24).collect::<Vec<u32>>());
        assert_eq!(a.pcr_digest.len(), 32);
        match TpmtSignature::parse(&q.raw_sig).unwrap() {
            TpmtSignature::Rsa { scheme, hash, sig } => {
                assert_eq!((scheme, hash, sig.len()), (tpm::alg::RSASSA, tpm::alg::SHA256, 256));
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn unreadable_input_is_an_error() {
    let raw = read(NONCE_9009);
    assert!(tpm::verify(&raw[..200], &Options::new(AT)).is_err());
    assert!(tpm::verify(b"not a protobuf \xff\xff\xff", &Options::new(AT)).is_err());
    // Truncated structures are parse errors, never panics.
    let att = tpm::parse(&raw).unwrap();
    for n in 0..att.quotes[0].quote.len() {
        assert!(TpmsAttest::parse(&att.quotes[0].quote[..n]).is_err());
    }
    for n in 0..att.ak_pub.len() {
        assert!(TpmtPublic::parse(&att.ak_pub[..n]).is_err());
    }
    for n in 0..att.quotes[0].raw_sig.len() {
        assert!(TpmtSignature::parse(&att.quotes[0].raw_sig[..n]).is_err());
    }
}

/// The piece the Azure verifier reuses, on real Azure evidence: trustee's
/// `az-snp-vtpm/tpm-quote-v1.json` (TPMS_ATTEST, bare RSASSA signature, SHA-256 PCR0-23) and the
/// AK in its HCL report's runtime claims (JWK `HCLAkPub`). trustee's tests
/// (`deps/verifier/src/az_snp_vtpm/mod.rs`) verify it with the nonce `challenge`;
/// azure-cvm-tooling's reject a reversed signature and the nonce `[1, 2, 3, 4]`.
#[test]
fn verify_quotes_with_an_azure_hcl_ak() {
    let hcl = read("evidence/azure/trustee/az-snp-vtpm/hcl-report.bin");
    let start = hcl.windows(7).position(|w| w == b"{\"keys\"").expect("runtime claims");
    let claims: serde_json::Value = serde_json::Deserializer::from_slice(&hcl[start..]).into_iter().next().unwrap().unwrap();
    let jwk = claims["keys"].as_array().unwrap().iter().find(|k| k["kid"] == "HCLAkPub").unwrap();
    let ak = AkPublic::rsa(&b64url(jwk["n"].as_str().unwrap()), &b64url(jwk["e"].as_str().unwrap()));
    assert_eq!(ak.describe(), "RSA-2048");

    let q: serde_json::Value = serde_json::from_slice(&read("evidence/azure/trustee/az-snp-vtpm/tpm-quote-v1.json")).unwrap();
    let sig = hex(q["signature"].as_str().unwrap());
    let pcrs = q["pcrs"].as_array().unwrap().iter().enumerate().map(|(i, v)| (i as u32, hex(v.as_str().unwrap()))).collect();
    let quote = |sig: &[u8]| tpm::Quote {
        attest: hex(q["message"].as_str().unwrap()),
        signature: TpmtSignature::Rsa { scheme: tpm::alg::RSASSA, hash: tpm::alg::SHA256, sig: sig.to_vec() }.encode(),
        bank: tpm::alg::SHA256,
        pcrs: std::collections::BTreeMap::clone(&pcrs),
    };

    let mut r = Report::new("azure");
    let ok = tpm::verify_quotes(&mut r, &ak, &[quote(&sig)], Some(b"challenge"));
    assert!(r.passed(), "{}", r.to_json());
    assert_eq!(r.failed(), Vec::<&str>::new());
    assert_eq!(ok.len(), 1);
    assert_eq!(ok[0].bank, Bank::Sha256);

    let mut r = Report::new("azure");
    tpm::verify_quotes(&mut r, &ak, &[quote(&sig)], Some(&[1, 2, 3, 4]));
    assert_eq!(r.failed(), ["nonce"], "{}", r.to_json());

    let reversed: Vec<u8> = sig.iter().rev().copied().collect();
    let mut r = Report::new("azure");
    assert!(tpm::verify_quotes(&mut r, &ak, &[quote(&reversed)], Some(b"challenge")).is_empty());
    assert_eq!(r.failed(), ["quote-signature"], "{}", r.to_json());
}

/// Base64url without padding (RFC 4648 §5), as JWKs write `n` and `e`.
fn b64url(s: &str) -> Vec<u8> {
    const ABC: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for c in s.bytes().filter(|&c| c != b'=') {
        acc = acc << 6 | ABC.iter().position(|&a| a == c).expect("base64url") as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}
