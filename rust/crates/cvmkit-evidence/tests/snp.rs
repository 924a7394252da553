//! SEV-SNP reports from public projects' test data (testdata/evidence/sev-snp, see
//! PROVENANCE.md there and expected.derived.json), verified offline; tampered copies must fail
//! at the step that names the tampering.
//!
//! Each evaluation time (`at`) is inside the validity of the VCEK/VLEK certificate that signs
//! the report (read from the certificate, or given by the origin's test), since the checks
//! include certificate validity.

use std::path::PathBuf;

use cvmkit_evidence::snp::{self, Options};
use cvmkit_evidence::{Report, Status};

fn data(rel: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../testdata/evidence/sev-snp").join(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn unhex(s: &str) -> Vec<u8> {
    cvmkit_measure::unhex(s).expect("hex")
}

fn time(s: &str) -> u64 {
    cvmkit_evidence::tdx::parse_time(s).unwrap()
}

fn certs(files: &[&str]) -> Vec<(String, Vec<u8>)> {
    files.iter().map(|f| (f.to_string(), data(f))).collect()
}

fn run<'a>(report: &[u8], certs: &'a [(String, Vec<u8>)], at: &str, tweak: impl FnOnce(&mut Options<'a>)) -> Report {
    let mut o: Options<'a> = Options::new(time(at));
    o.certs = certs;
    tweak(&mut o);
    snp::verify(report, &o).expect("parses")
}

#[track_caller]
fn assert_valid(r: &Report) {
    assert!(r.passed(), "expected valid:\n{}", r.to_json());
}

#[track_caller]
fn assert_fails(r: &Report, check: &str) {
    assert_eq!(r.status(check), Some(Status::Fail), "expected {check} to fail:\n{}", r.to_json());
    assert!(!r.passed());
}

#[track_caller]
fn claim(r: &Report, name: &str) -> String {
    match r.claims.get(name) {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
        None => panic!("no claim {name}"),
    }
}

// ---- go-sev-guest: verify/testdata/attestation.bin + vcek.testcer, Milan, version 2 ----

/// 2022-09-24T01:00:00Z: the time go-sev-guest's TestVerifyVcekCert verifies this chain at.
const GO_AT: &str = "2022-09-24T01:00:00Z";
/// report_data as go-sev-guest's tools/check test expects it (expected.derived.json).
const GO_REPORT_DATA: &str = "01020304050000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000";

#[test]
fn go_sev_guest_verifies_with_debug_allowed() {
    let c = certs(&["go-sev-guest/vcek.testcer", "go-sev-guest/trust/ask_ark_milan.pem"]);
    let rd = unhex(GO_REPORT_DATA);
    let r = run(&data("go-sev-guest/attestation.bin"), &c, GO_AT, |o| {
        o.allow_debug = true; // the origin's policy check accepts Debug: true for this report
        o.report_data = Some(&rd);
    });
    assert_valid(&r);
    for check in ["report-version", "report-signature", "cert-chain", "product", "tcb", "chip-id", "guest-policy", "report-data"] {
        assert_eq!(r.status(check), Some(Status::Pass), "{check}:\n{}", r.to_json());
    }
    // Values from go-sev-guest's tests (expected.derived.json).
    assert_eq!(claim(&r, "measurement"), "b07af9620f3b839b47996422ddec6058338951d984e312115131ea82705eaf5b6bdf8a9ece31a5a608eb0cf2e4872b01");
    assert_eq!(
        claim(&r, "chip_id"),
        "3ac3fe21e13fb0990eb28a802e3fb6a29483a6b0753590c951bdd3b8e53786184ca39e359669a2b76a1936776b564ea464cdce40c05f63c9b610c5068b006b5d"
    );
    assert_eq!(claim(&r, "report_id"), "8edc638e1857c555d21f6b11bda3c8b1b5a09dba4852b4c8ee7aa2f16f22cc0a");
    assert_eq!(claim(&r, "report_id_ma"), "ff".repeat(32));
    assert_eq!(claim(&r, "host_data"), "00".repeat(32));
    assert_eq!(claim(&r, "vmpl"), "0");
    assert_eq!(claim(&r, "platform_info"), "0x1");
    assert_eq!(claim(&r, "policy_debug"), "true");
    assert_eq!(claim(&r, "policy_smt_allowed"), "true");
    assert_eq!(claim(&r, "chain_generation"), "Milan");
    // The VCEK's KDS URL in the origin's test: blSPL=2&teeSPL=0&snpSPL=5&ucodeSPL=68.
    let tcb = &r.claims["reported_tcb"];
    assert_eq!((tcb["bootloader"].as_u64(), tcb["tee"].as_u64(), tcb["snp"].as_u64(), tcb["microcode"].as_u64()), (Some(2), Some(0), Some(5), Some(68)));
    // The register is the report's MEASUREMENT.
    assert_eq!(r.registers.len(), 1);
    assert_eq!(r.registers[0].name, "LAUNCH_DIGEST");
}

#[test]
fn go_sev_guest_debug_policy_fails_by_default() {
    // The report's own policy (0xb0000) has DEBUG set (the origin accepts "Debug: true").
    let c = certs(&["go-sev-guest/vcek.testcer"]);
    let r = run(&data("go-sev-guest/attestation.bin"), &c, GO_AT, |_| {});
    assert_fails(&r, "guest-policy");
    assert_eq!(r.failed(), vec!["guest-policy"], "only the policy fails:\n{}", r.to_json());
    assert!(r.checks.iter().any(|c| c.name == "guest-policy" && c.reason.contains("debugging")));
}

#[test]
fn policy_check_alone_on_a_parsed_report() {
    let ar = snp::parse(&data("virtee-sev/report_milan.hex")).unwrap();
    assert!(!ar.debug_allowed());
    let mut debug = ar.clone();
    debug.policy |= 1 << 19;
    let mut rep = Report::new("snp");
    snp::policy_check(&mut rep, &debug, false, false);
    assert_fails(&rep, "guest-policy");
    let mut rep = Report::new("snp");
    snp::policy_check(&mut rep, &debug, true, false);
    assert_eq!(rep.status("guest-policy"), Some(Status::Pass));
    let mut ma = ar.clone();
    ma.policy |= 1 << 18;
    let mut rep = Report::new("snp");
    snp::policy_check(&mut rep, &ma, false, false);
    assert_fails(&rep, "guest-policy");
    let mut rep = Report::new("snp");
    snp::policy_check(&mut rep, &ma, false, true);
    assert_eq!(rep.status("guest-policy"), Some(Status::Pass));
}

#[test]
fn go_sev_guest_wrong_report_data_fails() {
    let c = certs(&["go-sev-guest/vcek.testcer"]);
    let r = run(&data("go-sev-guest/attestation.bin"), &c, GO_AT, |o| {
        o.allow_debug = true;
        o.report_data = Some(b"\x01\x02\x03\x04\x06");
    });
    assert_fails(&r, "report-data");
    assert_eq!(r.failed(), vec!["report-data"]);
}

#[test]
fn go_sev_guest_certificate_validity() {
    let c = certs(&["go-sev-guest/vcek.testcer"]);
    // The VCEK is valid 2022-09-24T00:55:28Z – 2029-09-24T00:55:28Z (read from the certificate).
    let r = run(&data("go-sev-guest/attestation.bin"), &c, "2022-09-23T00:00:00Z", |o| o.allow_debug = true);
    assert_fails(&r, "cert-chain");
    let r = run(&data("go-sev-guest/attestation.bin"), &c, "2029-09-25T00:00:00Z", |o| o.allow_debug = true);
    assert_fails(&r, "cert-chain");
}

// ---- virtee/sev: tests/certs.rs milan_report ----

/// Inside the VCEK's validity, 2023-04-03 – 2030-04-03 (read from vcek_milan.der); virtee/sev
/// does not check time.
const VIRTEE_AT: &str = "2024-01-01T00:00:00Z";

#[test]
fn virtee_milan_hex_report_verifies() {
    let c = certs(&["virtee-sev/vcek_milan.der"]);
    let r = run(&data("virtee-sev/report_milan.hex"), &c, VIRTEE_AT, |_| {});
    assert_valid(&r);
    assert_eq!(r.status("chip-id"), Some(Status::Pass));
}

#[test]
fn virtee_milan_tampered_byte_21_fails_signature() {
    // virtee/sev milan_report_invalid: flipping bit 0x80 of byte 21 must fail verification.
    let mut bytes = snp::parse(&data("virtee-sev/report_milan.hex")).unwrap().raw;
    bytes[21] ^= 0x80;
    let r = run(&bytes, &certs(&["virtee-sev/vcek_milan.der"]), VIRTEE_AT, |_| {});
    assert_fails(&r, "report-signature");
}

#[test]
fn tampered_reserved_bytes_fail_signature() {
    let raw = snp::parse(&data("virtee-sev/report_milan.hex")).unwrap().raw;
    let c = certs(&["virtee-sev/vcek_milan.der"]);
    // 0x4C: reserved word after the flags; 0x18B: reserved after CPUID; 0x208: reserved
    // before the signature. The signature covers the bytes as received, reserved ones too.
    for at in [0x4C, 0x18B, 0x208, 0x29F] {
        let mut bytes = raw.clone();
        bytes[at] ^= 0x01;
        let r = run(&bytes, &c, VIRTEE_AT, |_| {});
        assert_fails(&r, "report-signature");
    }
    // The signature itself: R's low byte, S's high used byte.
    for at in [0x2A0, 0x2E8 + 47] {
        let mut bytes = raw.clone();
        bytes[at] ^= 0x01;
        let r = run(&bytes, &c, VIRTEE_AT, |_| {});
        assert_fails(&r, "report-signature");
    }
    // A report's unsigned tail (reserved bytes after R and S) is outside the signed part:
    // changing it does not change what is attested, and the report still verifies.
    let mut bytes = raw.clone();
    bytes[0x4A0 - 1] ^= 0x01;
    assert_valid(&run(&bytes, &c, VIRTEE_AT, |_| {}));
}

#[test]
fn virtee_milan_report_extended_with_cert_table() {
    // The same report followed by an extended report's certificate table holding the VCEK.
    let raw = snp::parse(&data("virtee-sev/report_milan.hex")).unwrap().raw;
    let vcek = data("virtee-sev/vcek_milan.der");
    let mut table = Vec::new();
    table.extend_from_slice(&snp::GUID_VCEK);
    table.extend_from_slice(&48u32.to_le_bytes());
    table.extend_from_slice(&(vcek.len() as u32).to_le_bytes());
    table.extend_from_slice(&[0u8; 24]);
    table.extend_from_slice(&vcek);
    table.extend_from_slice(&[0u8; 100]); // page padding
    let mut ext = raw.clone();
    ext.extend_from_slice(&table);
    let ar = snp::parse(&ext).unwrap();
    assert_eq!(ar.cert_table.len(), 1);
    assert_eq!(snp::guid_name(&ar.cert_table[0].0), "VCEK");
    assert_valid(&run(&ext, &[], VIRTEE_AT, |_| {}));
    // A table whose entry points past its end is not usable input.
    let mut bad = raw.clone();
    let mut t = table.clone();
    t[16..20].copy_from_slice(&10_000u32.to_le_bytes());
    bad.extend_from_slice(&t);
    assert!(snp::parse(&bad).is_err());
}

#[test]
fn virtee_milan_without_vcek_fails_signature() {
    let r = run(&data("virtee-sev/report_milan.hex"), &[], VIRTEE_AT, |_| {});
    assert_fails(&r, "report-signature");
}

// ---- trustee: deps/verifier/test_data/snp ----

/// Inside test-vcek.der's validity, 2023-01-24 – 2030-01-24 (read from the certificate).
const TRUSTEE_AT: &str = "2024-01-01T00:00:00Z";

#[test]
fn trustee_vcek_report_verifies() {
    let c = certs(&["trustee/test-vcek.der", "trustee/certs/milan_ask_ark_asvk.pem"]);
    let r = run(&data("trustee/test-report.bin"), &c, TRUSTEE_AT, |_| {});
    assert_valid(&r);
}

#[test]
fn trustee_byte_42_fails_signature_and_byte_384_fails_tcb() {
    // trustee check_report_signature_failure: +1 on byte 42 must fail the signature.
    let c = certs(&["trustee/test-vcek.der"]);
    let mut bytes = data("trustee/test-report.bin");
    bytes[42] = bytes[42].wrapping_add(1);
    assert_fails(&run(&bytes, &c, TRUSTEE_AT, |_| {}), "report-signature");
    // trustee: +1 on byte 384 (0x180, REPORTED_TCB's boot loader SPL) must fail the TCB check.
    let mut bytes = data("trustee/test-report.bin");
    bytes[384] = bytes[384].wrapping_add(1);
    let r = run(&bytes, &c, TRUSTEE_AT, |_| {});
    assert_fails(&r, "tcb");
    assert_fails(&r, "report-signature");
}

#[test]
fn trustee_vlek_report_verifies() {
    // test-vlek.der is valid 2024-12-10 – 2025-12-10 (read from the certificate).
    let c = certs(&["trustee/test-vlek.der"]);
    let r = run(&data("trustee/test-vlek-report.bin"), &c, "2025-06-01T00:00:00Z", |_| {});
    assert_valid(&r);
    assert_eq!(claim(&r, "signing_key"), "VLEK");
    assert_eq!(r.status("chip-id"), Some(Status::Skipped));
    assert!(r.checks.iter().any(|c| c.name == "cert-chain" && c.reason.contains("SEV-VLEK-Milan")));
    // With the origin's chain file (ASK, ARK, ASVK) given too.
    let c = certs(&["trustee/test-vlek.der", "trustee/certs/milan_ask_ark_asvk.pem"]);
    assert_valid(&run(&data("trustee/test-vlek-report.bin"), &c, "2025-06-01T00:00:00Z", |_| {}));
    // trustee: +1 on byte 42 fails the signature, +1 on byte 384 the TCB.
    let mut bytes = data("trustee/test-vlek-report.bin");
    bytes[42] = bytes[42].wrapping_add(1);
    assert_fails(&run(&bytes, &c, "2025-06-01T00:00:00Z", |_| {}), "report-signature");
    let mut bytes = data("trustee/test-vlek-report.bin");
    bytes[384] = bytes[384].wrapping_add(1);
    assert_fails(&run(&bytes, &c, "2025-06-01T00:00:00Z", |_| {}), "tcb");
    // Expired at the end of 2025.
    assert_fails(&run(&data("trustee/test-vlek-report.bin"), &c, "2025-12-11T00:00:00Z", |_| {}), "cert-chain");
}

#[test]
fn trustee_vcek_body_byte_fails_chain() {
    // trustee check_vcek_signature_failure: +1 on byte 42 of the VCEK, which still parses.
    let mut vcek = data("trustee/test-vcek.der");
    vcek[42] = vcek[42].wrapping_add(1);
    let c = vec![("test-vcek.der (byte 42 +1)".to_string(), vcek)];
    let r = run(&data("trustee/test-report.bin"), &c, TRUSTEE_AT, |_| {});
    assert_fails(&r, "cert-chain");
    // A byte of the VCEK's subject name (the "Engineering" OU): the report's signature still
    // verifies with the key, and the chain breaks.
    let orig = data("trustee/test-vcek.der");
    let pos = orig.windows(11).rposition(|w| w == b"Engineering").unwrap();
    let mut vcek = orig.clone();
    vcek[pos] ^= 0x20;
    let c = vec![("test-vcek.der (subject OU)".to_string(), vcek)];
    let r = run(&data("trustee/test-report.bin"), &c, TRUSTEE_AT, |_| {});
    assert_eq!(r.status("report-signature"), Some(Status::Pass), "{}", r.to_json());
    assert_fails(&r, "cert-chain");
}

#[test]
fn ask_of_the_wrong_generation_fails_chain() {
    // Without the bundled ASKs, a Genoa ASK cannot stand in for the Milan one.
    let c = certs(&["trustee/test-vcek.der", "go-sev-guest/trust/ask_ark_genoa.pem"]);
    let r = run(&data("trustee/test-report.bin"), &c, TRUSTEE_AT, |o| o.intermediates = &[]);
    assert_fails(&r, "cert-chain");
    assert!(r.checks.iter().any(|c| c.name == "cert-chain" && c.reason.contains("SEV-Genoa")), "{}", r.to_json());
    // With the right one given, it verifies.
    let c = certs(&["trustee/test-vcek.der", "go-sev-guest/trust/ask_ark_milan.pem"]);
    assert_valid(&run(&data("trustee/test-report.bin"), &c, TRUSTEE_AT, |o| o.intermediates = &[]));
}

#[test]
fn only_pinned_roots_are_trusted() {
    // The Milan chain with only the Genoa ARK pinned: the given ARK-Milan is not trusted.
    let genoa_only: &[&[u8]] = &cvmkit_evidence::roots::AMD_ARKS[1..2];
    let c = certs(&["trustee/test-vcek.der", "trustee/certs/milan_ask_ark_asvk.pem"]);
    let r = run(&data("trustee/test-report.bin"), &c, TRUSTEE_AT, |o| o.roots = genoa_only);
    assert_fails(&r, "cert-chain");
    assert!(r.notes.iter().any(|n| n.contains("not one of the pinned")), "{}", r.to_json());
    // A look-alike ARK-Milan (one bit of its key changed) given as a certificate is ignored.
    let mut ark = cvmkit_evidence::roots::AMD_ARKS[0].to_vec();
    let n = ark.len();
    ark[n - 600] ^= 0x01;
    let c = vec![("fake-ark.der".to_string(), ark), ("test-vcek.der".to_string(), data("trustee/test-vcek.der"))];
    let r = run(&data("trustee/test-report.bin"), &c, TRUSTEE_AT, |_| {});
    assert_valid(&r);
    assert!(r.notes.iter().any(|n| n.contains("fake-ark.der")), "{}", r.to_json());
}

// ---- dstack: dstack-attest tests/sev_snp_verify.rs, a Milan version 3 report ----

#[test]
fn dstack_report_verifies() {
    // Captured 2026-06-17 (README); the VCEK is valid from 2026-06-17T01:05:04Z.
    let c = certs(&["dstack/sev_snp_vcek.pem", "dstack/sev_snp_ask.pem"]);
    let rd = b"attest-test-fixture-2026"; // the origin's report data, zero-padded
    let r = run(&data("dstack/sev_snp_report.derived.bin"), &c, "2026-06-18T00:00:00Z", |o| o.report_data = Some(rd));
    assert_valid(&r);
    assert_eq!(claim(&r, "version"), "3");
    assert_eq!(claim(&r, "generation"), "Milan");
    // README values (informational there).
    assert!(claim(&r, "chip_id").starts_with("38d174589d2dff97a6d40cb9f9d90b9507c027491219083cef3ce73ed18f7289"));
    assert!(claim(&r, "measurement").starts_with("7f51e17f72a04d5422cb2c00998166536019a217376f3aa45a630e59c805a599"));
    assert_eq!(claim(&r, "host_data"), "783f0057820acb99249af56cc3b07b4e8d80f65183167cba9cf437bb680f742f");
    // Before the VCEK was issued.
    assert_fails(&run(&data("dstack/sev_snp_report.derived.bin"), &c, "2026-06-16T00:00:00Z", |_| {}), "cert-chain");
}

// ---- teekit: GCP, version 5 reports ----

/// The teekit VCEKs are valid from 2025-12-05 (read from the certificates).
const TEEKIT_AT: &str = "2025-12-06T00:00:00Z";

#[test]
fn teekit_gcp_reports_verify() {
    let c = certs(&["teekit/sev-gcp-vcek.pem"]);
    let rd = unhex("32fc4f6c1971cbf91566231f8d6153eeb9d093aa94306cb48d39bcc4861a3d395f149876a37bc91332fe493f46294fd135d5b95d363ae96352b8c45f906079f5");
    let r = run(&data("teekit/sev-gcp-reportdata.bin"), &c, TEEKIT_AT, |o| o.report_data = Some(&rd));
    assert_valid(&r);
    // teekit quote-sev-snp.test.ts.
    assert_eq!(claim(&r, "version"), "5");
    assert_eq!(claim(&r, "guest_svn"), "0");
    assert_eq!(claim(&r, "vmpl"), "1");
    assert_eq!(claim(&r, "signature_algo"), "1");
    assert_eq!(claim(&r, "policy_debug"), "false");
    assert_eq!((claim(&r, "policy_abi_major"), claim(&r, "policy_abi_minor")), ("0".into(), "0".into()));
    assert_eq!(claim(&r, "measurement"), "b747d55452e0b9e9079770a49e397c5e6d9573581e246da7baac4f28b5cdc5b1b6d19251b8ee600fd16a3708f58406f3");
    assert!(r.claims.contains_key("launch_mit_vector"));

    assert_valid(&run(&data("teekit/sev-gcp.bin"), &c, TEEKIT_AT, |_| {}));
}

#[test]
fn teekit_x25519_bound_report_verifies_with_its_binding() {
    // report_data == SHA-512(nonce || x25519 key), the values from sev-gcp-x25519-bound.txt.
    use sha2::Digest;
    let mut h = sha2::Sha512::new();
    h.update(unhex("df82306ff38a9da023854af947d02a878cfab1b40a793823ff41dc51213b96aa"));
    h.update(unhex("03a8107030fabeac06b0df4ef865763918b5e2a9fa030e20025a4315dab4b2a6"));
    let rd = h.finalize().to_vec();
    let c = certs(&["teekit/sev-gcp-x25519-vcek.pem", "go-sev-guest/trust/ask_ark_milan.pem"]);
    let r = run(&data("teekit/sev-gcp-x25519-bound.bin"), &c, TEEKIT_AT, |o| o.report_data = Some(&rd));
    assert_valid(&r);
    // Another chip's VCEK (trustee's) does not verify it.
    let c = certs(&["trustee/test-vcek.der"]);
    assert_fails(&run(&data("teekit/sev-gcp-x25519-bound.bin"), &c, TEEKIT_AT, |_| {}), "report-signature");
}

// ---- predictions ----

#[test]
fn launch_digest_compared_with_a_prediction() {
    use cvmkit_measure::{Bank, Digest, HashAlg, Measurements, Platform, Register};
    let c = certs(&["virtee-sev/vcek_milan.der"]);
    let raw = data("virtee-sev/report_milan.hex");
    let ar = snp::parse(&raw).unwrap();
    let mut doc = Measurements::new(Platform::Snp);
    let mut reg = Register::new("LAUNCH_DIGEST", Bank::Sha384);
    reg.value = Digest::new(HashAlg::SHA384, ar.measurement.to_vec());
    doc.registers.push(reg);
    let r = run(&raw, &c, VIRTEE_AT, |o| o.expect = Some(&doc));
    assert_valid(&r);
    assert_eq!(r.registers[0].status, cvmkit_evidence::RegisterStatus::Match);
    doc.registers[0].value = Digest::new(HashAlg::SHA384, vec![0; 48]);
    let r = run(&raw, &c, VIRTEE_AT, |o| o.expect = Some(&doc));
    assert!(!r.passed());
    assert_eq!(r.registers[0].status, cvmkit_evidence::RegisterStatus::Mismatch);
}

// ---- input that is not a report ----

#[test]
fn unusable_input_is_an_error_not_a_panic() {
    assert!(snp::parse(&[]).is_err());
    assert!(snp::parse(&[0u8; 100]).is_err());
    let raw = data("go-sev-guest/attestation.bin");
    assert!(snp::parse(&raw[..0x49F]).is_err());
    let mut v1 = raw.clone();
    v1[0] = 1;
    assert!(snp::parse(&v1).is_err());
    // A --cert that is not a certificate.
    let c = vec![("junk.pem".to_string(), b"hello".to_vec())];
    assert!(snp::verify(&raw, &Options { certs: &c, ..Options::new(0) }).is_err());
    // Every truncation of an extended report and every single-byte corruption of the report's
    // header region parses or errs, never panics.
    for n in 0..raw.len() {
        let _ = snp::verify(&raw[..n], &Options::new(0));
    }
    for i in 0..0x60 {
        let mut b = raw.clone();
        b[i] = 0xFF;
        let _ = snp::verify(&b, &Options::new(0));
    }
}

#[test]
fn corrupted_certificate_table_never_panics() {
    // The virtee report with its VCEK in an extended report's table; every 5th byte of the
    // table and the certificate set to 0xff and to 0x00 in turn: a verdict or an error, and
    // never a pass with a changed certificate.
    let raw = snp::parse(&data("virtee-sev/report_milan.hex")).unwrap().raw;
    let vcek = data("virtee-sev/vcek_milan.der");
    let mut ext = raw.clone();
    ext.extend_from_slice(&snp::GUID_VCEK);
    ext.extend_from_slice(&48u32.to_le_bytes());
    ext.extend_from_slice(&(vcek.len() as u32).to_le_bytes());
    ext.extend_from_slice(&[0u8; 24]);
    ext.extend_from_slice(&vcek);
    let at = time(VIRTEE_AT);
    for i in (raw.len()..ext.len()).step_by(5) {
        for v in [0xFF, 0x00] {
            let mut b = ext.clone();
            if b[i] == v {
                continue;
            }
            b[i] = v;
            if let Ok(r) = snp::verify(&b, &Options::new(at)) {
                let _ = r.to_json();
                if r.passed() {
                    // Only a change outside the certificate (its GUID) can leave it passing.
                    let ar = snp::parse(&b).unwrap();
                    assert!(ar.cert_table.iter().any(|(_, c)| *c == vcek), "byte {i} = {v:#x} passed:\n{}", r.to_json());
                }
            }
        }
    }
}

#[test]
fn pinned_roots_have_their_recorded_fingerprints() {
    use sha2::Digest;
    let sha = |d: &[u8]| cvmkit_measure::hex(&sha2::Sha256::digest(d));
    for (der, fp) in cvmkit_evidence::roots::AMD_ARKS.iter().zip(cvmkit_evidence::roots::AMD_ARKS_SHA256) {
        assert_eq!(&sha(der), fp);
    }
    for (der, fp) in cvmkit_evidence::roots::AMD_SEV_KEYS.iter().zip(cvmkit_evidence::roots::AMD_SEV_KEYS_SHA256) {
        assert_eq!(&sha(der), fp);
    }
    // The pinned ARKs equal the ARKs in go-sev-guest's trust files (a second source).
    for (i, f) in ["go-sev-guest/trust/ask_ark_milan.pem", "go-sev-guest/trust/ask_ark_genoa.pem", "go-sev-guest/trust/ask_ark_turin_vcek.pem"].iter().enumerate() {
        let pem = data(f);
        let ders: Vec<Vec<u8>> = rustls_pki_types::pem::PemObject::pem_slice_iter(&pem[..])
            .map(|c: Result<rustls_pki_types::CertificateDer, _>| c.unwrap().to_vec())
            .collect();
        assert_eq!(ders[1], cvmkit_evidence::roots::AMD_ARKS[i], "{f}");
        assert_eq!(ders[0], cvmkit_evidence::roots::AMD_SEV_KEYS[i], "{f}");
    }
}

// ---- a self-made root ----

fn forged(name: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/snp-forged").join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn self_made_root_fails_chain_only() {
    // tests/data/snp-forged/make.sh: an attacker's own ARK-Milan → SEV-Milan → SEV-VCEK, the
    // VCEK carrying virtee's TCB and chip ID, signing virtee's report with report_data
    // "forged". Everything but the root is consistent.
    let c = vec![("forged/vcek.pem".to_string(), forged("vcek.pem")), ("forged/chain.pem".to_string(), forged("chain.pem"))];
    let report = forged("forged-report.bin");
    let r = run(&report, &c, "2030-01-01T00:00:00Z", |o| o.report_data = Some(b"forged"));
    assert_fails(&r, "cert-chain");
    assert_eq!(r.failed(), vec!["cert-chain"], "{}", r.to_json());
    assert_eq!(r.status("report-signature"), Some(Status::Pass));
    assert_eq!(r.status("tcb"), Some(Status::Pass));
    assert_eq!(r.status("chip-id"), Some(Status::Pass));
    assert!(r.notes.iter().any(|n| n.contains("forged/chain.pem") && n.contains("not one of the pinned")), "{}", r.to_json());
    // Only because the root is not pinned: with the forged ARK as the trusted root, it passes.
    let ark: Vec<u8> = rustls_pki_types::pem::PemObject::from_pem_slice(&forged("ark.pem")[..])
        .map(|c: rustls_pki_types::CertificateDer| c.to_vec())
        .unwrap();
    let roots: &[&[u8]] = &[&ark];
    let r = run(&report, &c, "2030-01-01T00:00:00Z", |o| {
        o.report_data = Some(b"forged");
        o.roots = roots;
    });
    assert_valid(&r);
}

/// `smt`: shown for every real report; `deny_smt` refuses a host with SMT on. Which reports come
/// from such hosts is read from their PLATFORM_INFO, not assumed.
#[test]
fn smt_is_shown_and_can_be_refused() {
    let mut on = 0;
    for f in ["sev-snp/trustee/test-vlek-report.bin", "sev-snp/teekit/sev-gcp.bin", "sev-snp/go-sev-guest/attestation.bin", "sev-snp/trustee/test-report.bin"] {
        let raw = std::fs::read(format!("{}/../../../testdata/evidence/{f}", env!("CARGO_MANIFEST_DIR"))).unwrap();
        let ar = snp::parse(&raw).unwrap();
        let mut r = cvmkit_evidence::Report::new("snp");
        snp::smt_check(&mut r, &ar, false);
        assert_eq!(r.status("smt"), Some(cvmkit_evidence::Status::Pass), "{f}: {}", r.to_json());
        let mut r = cvmkit_evidence::Report::new("snp");
        snp::smt_check(&mut r, &ar, true);
        let expect = if ar.platform_smt_enabled() { on += 1; Some(cvmkit_evidence::Status::Fail) } else { Some(cvmkit_evidence::Status::Pass) };
        assert_eq!(r.status("smt"), expect, "{f}");
    }
    assert!(on > 0, "no real report from an SMT host: the refusal was never exercised");
}
