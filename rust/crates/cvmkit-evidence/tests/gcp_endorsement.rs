//! Google GCE launch endorsements (`VMLaunchEndorsement`, google/gce-tcb-verifier): the test
//! endorsement in `testdata/evidence/gcp/` is signed with gce-tcb-verifier's committed dev key
//! (`testing/devkeys/`) and holds the measurements gce-tcb-verifier's own tests assert
//! (`verify/verifytest/verifytest.go`); see testdata/evidence/PROVENANCE.md.

use cvmkit_evidence::{gcp, roots, Status};
use cvmkit_measure::{hex, Bank, Platform};
use cvmkit_testutil::read_testdata as read;

const ENDORSEMENT: &str = "evidence/gcp/devkeys-clean-example.binarypb";
const DEV_ROOT: &str = "evidence/gcp/devkeys-root.crt";
/// 2025-01-01T00:00:00Z: inside the dev certificates' validity (2024-09-03 – 2029-09-03).
const AT: u64 = 1_735_689_600;
/// verifytest.CleanExampleMeasurement: the SEV-SNP launch digest of the 2 MiB CleanExample
/// firmware with 1 VMSA.
const SNP_1: &str = "20ec0dbd1c0a26d184a6f11ec5a796d68ec03c9d101bdd84c03f3d9cbbc4a292a9fad098edacfa04da0da58f20be885e";
/// verifytest.CleanTdxExampleMeasurement: the MRTD of the CleanExample firmware, default launch.
const MRTD: &str = "6e540be4917f24f74cc3292b59803d06dc7c38eb4a3c1fd6be9c735ba74bb7a23e25f98da94779d17508b243e4fb582b";

fn verify_with(raw: &[u8], root: &[u8], at: u64) -> (cvmkit_evidence::Report, Option<gcp::Endorsement>) {
    gcp::verify(raw, &[root], at).expect("the endorsement decodes")
}

fn find(hay: &[u8], needle: &[u8]) -> usize {
    hay.windows(needle.len()).position(|w| w == needle).expect("present")
}

#[test]
fn the_endorsement_verifies_against_its_root() {
    let (report, e) = verify_with(&read(ENDORSEMENT), &read(DEV_ROOT), AT);
    assert!(report.passed(), "{}", report.to_json());
    assert_eq!(report.status("endorsement-chain"), Some(Status::Pass));
    assert_eq!(report.status("endorsement-signature"), Some(Status::Pass));
    let e = e.expect("an endorsement when the checks pass");
    assert_eq!(e.tdx.len(), 1);
    assert_eq!((e.tdx[0].ram_gib, e.tdx[0].early_accept, hex(&e.tdx[0].mrtd)), (0, false, MRTD.to_string()));
    assert_eq!(e.snp.len(), 1);
    assert_eq!(hex(&e.snp[&1]), SNP_1);
    assert_eq!(e.commit.as_deref(), Some("988881adc9fc3655077dc2d4d757d480b5ea0e11"));
    assert_eq!(e.timestamp.as_deref(), Some("2024-09-05T00:00:00Z"));
    assert_eq!(e.snp_policy, Some(0x70000));
    assert_eq!(e.firmware_sha384.len(), 48);
}

#[test]
fn a_pem_or_der_root_is_accepted() {
    let pem = read(DEV_ROOT);
    let der = rustls_pki_types::pem::PemObject::from_pem_slice(&pem).map(|c: rustls_pki_types::CertificateDer| c.to_vec()).unwrap();
    assert!(verify_with(&read(ENDORSEMENT), &der, AT).0.passed());
}

#[test]
fn a_flipped_bit_in_the_golden_bytes_fails_the_signature() {
    let mut raw = read(ENDORSEMENT);
    let at = find(&raw, &cvmkit_measure::unhex(MRTD).unwrap());
    raw[at + 7] ^= 0x10;
    let (report, e) = verify_with(&raw, &read(DEV_ROOT), AT);
    assert!(!report.passed());
    assert_eq!(report.status("endorsement-chain"), Some(Status::Pass));
    assert_eq!(report.failed(), vec!["endorsement-signature"]);
    assert!(e.is_none());
}

#[test]
fn a_flipped_bit_in_the_signature_fails_the_signature() {
    let mut raw = read(ENDORSEMENT);
    let last = raw.len() - 1;
    raw[last] ^= 1;
    let (report, e) = verify_with(&raw, &read(DEV_ROOT), AT);
    assert_eq!(report.failed(), vec!["endorsement-signature"]);
    assert!(e.is_none());
}

#[test]
fn a_flipped_bit_in_the_certificate_fails_the_chain() {
    let cert = read("evidence/gcp/devkeys-primarySigningKey.crt");
    let mut raw = read(ENDORSEMENT);
    // The last byte of the certificate is in its signature.
    let at = find(&raw, &cert) + cert.len() - 1;
    raw[at] ^= 1;
    let (report, e) = verify_with(&raw, &read(DEV_ROOT), AT);
    assert_eq!(report.failed(), vec!["endorsement-chain"]);
    assert_eq!(report.status("endorsement-signature"), Some(Status::Skipped));
    assert!(e.is_none());
}

#[test]
fn a_foreign_root_fails_the_chain() {
    for root in [roots::GCE_TPM_EK_ROOT_1, roots::GCE_EK_AK_CA_ROOT] {
        let (report, e) = verify_with(&read(ENDORSEMENT), root, AT);
        assert_eq!(report.failed(), vec!["endorsement-chain"], "{}", report.to_json());
        assert!(e.is_none());
    }
    let (report, _) = gcp::verify(&read(ENDORSEMENT), &[], AT).unwrap();
    assert_eq!(report.failed(), vec!["endorsement-chain"]);
}

#[test]
fn outside_the_certificate_validity_fails_the_chain() {
    // 2024-01-01, before the dev certificates' notBefore.
    let (report, _) = verify_with(&read(ENDORSEMENT), &read(DEV_ROOT), 1_704_067_200);
    assert_eq!(report.failed(), vec!["endorsement-chain"]);
}

#[test]
fn reference_documents_list_the_endorsed_values_as_alternatives() {
    let (_, e) = verify_with(&read(ENDORSEMENT), &read(DEV_ROOT), AT);
    let docs = gcp::reference_document(&e.unwrap());
    assert_eq!(docs.len(), 2);
    let tdx = &docs[0];
    assert_eq!(tdx.platform, Platform::Tdx);
    assert_eq!(tdx.registers.len(), 1);
    assert_eq!((tdx.registers[0].name.as_str(), tdx.registers[0].bank), ("MRTD", Bank::Sha384));
    assert_eq!(hex(tdx.registers[0].value.as_bytes()), MRTD);
    assert!(tdx.registers[0].source.as_deref().unwrap().contains("ram_gib: 0"));
    let snp = &docs[1];
    assert_eq!(snp.platform, Platform::Snp);
    assert_eq!(snp.registers.len(), 1);
    assert_eq!(snp.registers[0].name, "LAUNCH_DIGEST");
    assert_eq!(hex(snp.registers[0].value.as_bytes()), SNP_1);
    assert!(snp.registers[0].source.as_deref().unwrap().contains("sev_snp.measurements[1]"));
    // The documents round-trip through the reader, source included.
    for d in &docs {
        let back = cvmkit_measure::Measurements::from_json(&d.to_json()).expect("a valid document");
        assert_eq!(&back, d);
    }
}

#[test]
fn garbage_is_an_error_not_a_panic() {
    assert!(gcp::parse(b"").is_err());
    assert!(gcp::parse(&[0x0a, 0x05, 1, 2]).is_err());
    let raw = read(ENDORSEMENT);
    for n in 0..raw.len() {
        let _ = gcp::verify(&raw[..n], &[&read(DEV_ROOT)], AT);
    }
}
