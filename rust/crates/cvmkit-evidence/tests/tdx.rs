//! TDX quotes from real machines (testdata/evidence/tdx; PROVENANCE.md there says where each
//! comes from). Expected values come from the origins' tests or from the evidence itself, as
//! noted at each; tampered copies must fail naming the check.

use cvmkit_evidence::tdx::{self, Options};
use cvmkit_evidence::{RegisterStatus, Report, Status};
use cvmkit_measure::{Bank, Measurements};

fn data(path: &str) -> Vec<u8> {
    let p = format!("{}/../../../testdata/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&p).unwrap_or_else(|e| panic!("{p}: {e}"))
}

fn at(text: &str) -> u64 {
    tdx::parse_time(text).unwrap()
}

const COS_QUOTE: &str = "evidence/tdx/go-tdx-guest/cos-113-tdx-quote.dat";
const COS_CCEL: &str = "go-tdx-guest/ccel/ccel_data.dat";
/// Inside the validity of the COS quote's PCK chain (read from its certificates).
const COS_AT: &str = "2025-01-01T00:00:00Z";

fn verify(quote: &[u8], opts: &Options) -> Report {
    tdx::verify(quote, opts).unwrap()
}

fn statuses(r: &Report) -> Vec<(String, Status)> {
    r.checks.iter().map(|c| (c.name.clone(), c.status)).collect()
}

fn assert_only_failed(r: &Report, names: &[&str]) {
    assert_eq!(r.failed(), names, "{}", r.to_json());
    assert!(!r.passed());
    assert_eq!(r.result, "invalid");
}

#[test]
fn gce_cos_quote_v4_with_its_ccel_verifies_without_collateral() {
    let quote = data(COS_QUOTE);
    let ccel = tdx::parse_ccel(&data(COS_CCEL)).unwrap();
    let mut o = Options::new(at(COS_AT));
    o.event_log = Some(&ccel);
    // go-tdx-guest's test quotes with a 64-byte all-zero nonce (nonce.dat).
    let nonce = data("evidence/tdx/go-tdx-guest/nonce.dat");
    o.report_data = Some(&nonce);
    let r = verify(&quote, &o);
    assert!(r.passed(), "{}", r.to_json());
    for name in ["quote-header", "quote-signature", "pck-chain", "qe-report-signature", "qe-report-binding", "td-attributes", "report-data", "event-log"] {
        assert_eq!(r.status(name), Some(Status::Pass), "{name}: {}", r.to_json());
    }
    // No collateral: said, not passed.
    assert_eq!(r.status("collateral"), Some(Status::Skipped));
    assert_eq!(r.status("tcb-status"), Some(Status::Skipped));
    // The TD report fields go-tdx-guest's tests assert (testdata PROVENANCE, go-tdx-guest/).
    assert_eq!(r.claims["mr_td"], "dae67181d3d65e073ad8f95b7907d5e927bfe9761c9ff3e9b89734a45d8954dba41394c7717cb2735396c1d04231f94a");
    assert_eq!(r.claims["rtmr1"], "f62dbc072bd5d3f3438b7b35c39a727f5aea2ffc2473f43723953f530daf62504f0a7944aa62c41a86e8a878c2b122c1");
    assert_eq!(r.claims["td_attributes"], "0000001000000000");
    assert_eq!(r.claims["xfam"], "e700060000000000");
    assert_eq!(r.claims["quote_version"], 4);
    assert_eq!(r.claims["debug"], false);
    // Registers carry the log's events where the log replays to them.
    let rtmr0 = r.registers.iter().find(|x| x.name == "RTMR0").unwrap();
    assert_eq!(rtmr0.status, RegisterStatus::NotPredicted);
}

#[test]
fn quote_v5_sample_verifies_once_its_pck_certificate_is_valid() {
    let quote = data("evidence/tdx/go-tdx-guest/quote_v5_sample.dat");
    // Its PCK certificate is valid from 2026-01-27 (read from the certificate).
    let early = verify(&quote, &Options::new(at("2025-06-01T00:00:00Z")));
    assert_only_failed(&early, &["pck-chain"]);
    assert!(early.checks.iter().any(|c| c.reason.contains("not valid before 2026-01-27")), "{}", early.to_json());
    let r = verify(&quote, &Options::new(at("2026-06-01T00:00:00Z")));
    assert!(r.passed(), "{}", r.to_json());
    assert_eq!(r.claims["quote_version"], 5);
    assert_eq!(r.claims["td_body"], "TD1.5");
}

#[test]
fn production_spr_quote_verifies() {
    let r = verify(&data("evidence/tdx/go-tdx-guest/tdx_prod_quote_SPR_E4.dat"), &Options::new(at(COS_AT)));
    assert!(r.passed(), "{}", r.to_json());
}

/// dcap-qvl's samples with the PCCS collateral captured with them. The evaluation times lie
/// inside each collateral's window (TCB info / QE identity issueDate..nextUpdate and the CRLs'
/// thisUpdate..nextUpdate, read from the collateral files).
#[test]
fn quotes_with_collateral_get_their_tcb_status() {
    // Status asserted by dcap-qvl's tests: could_parse_tdx_quote and td15_ex_quote_verifies.
    for (quote, when, status) in [("tdx_quote", "2025-07-01T00:00:00Z", "UpToDate"), ("tdx_quote_td15ex", "2026-10-20T00:00:00Z", "UpToDate")] {
        let raw = data(&format!("evidence/tdx/dcap-qvl/{quote}"));
        let collateral = tdx::parse_collateral(&data(&format!("evidence/tdx/dcap-qvl/{quote}_collateral.json"))).unwrap();
        let mut o = Options::new(at(when));
        o.collateral = Some(&collateral);
        let r = verify(&raw, &o);
        assert!(r.passed(), "{quote}: {}", r.to_json());
        assert_eq!(r.status("collateral"), Some(Status::Pass));
        assert_eq!(r.status("tcb-status"), Some(Status::Pass));
        assert_eq!(r.claims["tcb_status"], status);
    }
}

#[test]
fn an_out_of_date_platform_fails_unless_accepted() {
    // dcap-qvl ships this quote as "outdated"; its test must override the TCB info to get
    // UpToDate (verify_tcb_override.rs): no level of the real collateral matches.
    let raw = data("evidence/tdx/dcap-qvl/tdx_quote_outdated");
    let collateral = tdx::parse_collateral(&data("evidence/tdx/dcap-qvl/tdx_quote_outdated_collateral.json")).unwrap();
    let mut o = Options::new(at("2026-03-01T00:00:00Z"));
    o.collateral = Some(&collateral);
    let r = verify(&raw, &o);
    assert_only_failed(&r, &["tcb-status"]);
    assert!(r.checks.iter().any(|c| c.reason.contains("out of date")), "{}", r.to_json());
    // The accepted statuses are the caller's: UpToDate fails when only OutOfDate is accepted.
    let raw = data("evidence/tdx/dcap-qvl/tdx_quote");
    let collateral = tdx::parse_collateral(&data("evidence/tdx/dcap-qvl/tdx_quote_collateral.json")).unwrap();
    let mut o = Options::new(at("2025-07-01T00:00:00Z"));
    o.collateral = Some(&collateral);
    o.accepted_tcb = &["OutOfDate"];
    assert_only_failed(&verify(&raw, &o), &["tcb-status"]);
}

#[test]
fn expired_collateral_fails() {
    let raw = data("evidence/tdx/dcap-qvl/tdx_quote");
    let collateral = tdx::parse_collateral(&data("evidence/tdx/dcap-qvl/tdx_quote_collateral.json")).unwrap();
    let mut o = Options::new(at("2025-08-01T00:00:00Z"));
    o.collateral = Some(&collateral);
    let r = verify(&raw, &o);
    assert_only_failed(&r, &["collateral"]);
    assert_eq!(r.status("tcb-status"), Some(Status::Skipped));
}

/// Offsets in a v4 quote (Intel DCAP quote v4 layout): header 48 bytes, TD 1.0 report 584,
/// signature-data length 4, ECDSA signature 64, attestation key 64, certification data header
/// 6, QE report 384, QE report signature 64, QE authentication data (2 + n), PCK chain.
mod v4 {
    pub const BODY: usize = 48;
    pub const SIGNATURE: usize = 636;
    pub const ATTESTATION_KEY: usize = 700;
    pub const QE_REPORT: usize = 770;
    pub const QE_REPORT_SIGNATURE: usize = 1154;
}

fn flipped(raw: &[u8], offset: usize) -> Vec<u8> {
    let mut t = raw.to_vec();
    t[offset] ^= 0x01;
    t
}

#[test]
fn tampered_quotes_fail_naming_the_check() {
    let raw = data(COS_QUOTE);
    assert_eq!(&raw[v4::QE_REPORT - 6..v4::QE_REPORT - 4], &[6, 0], "certification data type 6 (QE report) where expected");
    let o = Options::new(at(COS_AT));
    // A reserved byte of the TD report is signed like every other.
    assert_only_failed(&verify(&flipped(&raw, v4::BODY + 300), &o), &["quote-signature"]);
    assert_only_failed(&verify(&flipped(&raw, v4::BODY + 583), &o), &["quote-signature"]);
    assert_only_failed(&verify(&flipped(&raw, v4::SIGNATURE + 7), &o), &["quote-signature"]);
    // Another attestation key: the quote no longer verifies, and the QE never vouched for it.
    let r = verify(&flipped(&raw, v4::ATTESTATION_KEY + 63), &o);
    assert_eq!(r.status("quote-signature"), Some(Status::Fail));
    assert_eq!(r.status("qe-report-binding"), Some(Status::Fail));
    assert_only_failed(&verify(&flipped(&raw, v4::QE_REPORT + 10), &o), &["qe-report-signature"]);
    assert_only_failed(&verify(&flipped(&raw, v4::QE_REPORT_SIGNATURE + 1), &o), &["qe-report-signature"]);
    // A changed bit inside the PCK leaf certificate's PEM: the chain no longer verifies.
    let pem_start = raw.windows(27).position(|w| w == b"-----BEGIN CERTIFICATE-----").unwrap();
    let r = verify(&flipped(&raw, pem_start + 400), &o);
    assert_eq!(r.status("pck-chain"), Some(Status::Fail), "{}", r.to_json());
    assert_eq!(r.status("qe-report-signature"), Some(Status::Skipped));
}

#[test]
fn a_debug_td_fails_unless_allowed() {
    let raw = data(COS_QUOTE);
    // TD_ATTRIBUTES is at 120 in the TD 1.0 report; bit 0 is DEBUG. The flip also breaks the
    // signature, as any change must.
    let debug = flipped(&raw, v4::BODY + 120);
    let mut o = Options::new(at(COS_AT));
    let r = verify(&debug, &o);
    assert_eq!(r.claims["debug"], true);
    assert_only_failed(&r, &["quote-signature", "td-attributes"]);
    o.allow_debug = true;
    assert_only_failed(&verify(&debug, &o), &["quote-signature"]);
}

#[test]
fn a_root_other_than_intels_is_not_trusted() {
    let raw = data(COS_QUOTE);
    // The PCK chain's own root, re-supplied as "the" root, is Intel's and passes; any other
    // root must fail. Use the quote's platform CA (an intermediate) and a foreign CA.
    let mut o = Options::new(at(COS_AT));
    let foreign = data("evidence/tdx/foreign-root.der");
    o.root = &foreign;
    let r = verify(&raw, &o);
    assert_eq!(r.status("pck-chain"), Some(Status::Fail), "{}", r.to_json());
    assert!(r.checks.iter().any(|c| c.reason.contains("issuer is unknown")), "{}", r.to_json());
}

#[test]
fn wrong_report_data_fails() {
    let raw = data(COS_QUOTE);
    let mut o = Options::new(at(COS_AT));
    o.report_data = Some(b"a nonce the verifier sent");
    assert_only_failed(&verify(&raw, &o), &["report-data"]);
}

#[test]
fn an_event_log_of_another_boot_fails() {
    let raw = data(COS_QUOTE);
    // The same VM image on firmware that logs a duplicate separator (go-eventlog): RTMR0 and
    // RTMR1 differ from this quote's.
    let other = tdx::parse_ccel(&data("go-eventlog/eventlogs/ccel/cos-113-intel-tdx-dupe-separator.bin")).unwrap();
    let mut o = Options::new(at(COS_AT));
    o.event_log = Some(&other);
    let r = verify(&raw, &o);
    assert_only_failed(&r, &["event-log"]);
    assert!(r.checks.iter().any(|c| c.reason.contains("RTMR0, RTMR1")), "{}", r.to_json());
}

/// A prediction: MATCH where it agrees, MISMATCH naming the first differing event where it
/// lists events, MISSING never happens for a quote (it reports every register).
#[test]
fn registers_are_judged_against_a_prediction() {
    let raw = data(COS_QUOTE);
    let ccel = tdx::parse_ccel(&data(COS_CCEL)).unwrap();
    // The expectation: the log itself, replayed independently of the quote.
    let mut expected = ccel.clone();
    expected.registers.retain(|r| r.name != "RTMR3");
    let mut o = Options::new(at(COS_AT));
    o.event_log = Some(&ccel);
    let r = verify(&raw, &o_with(&o, &expected));
    assert!(r.passed(), "{}", r.to_json());
    let by_name = |r: &Report, n: &str| r.registers.iter().find(|x| x.name == n).unwrap().clone();
    assert_eq!(by_name(&r, "RTMR1").status, RegisterStatus::Match);
    assert_eq!(by_name(&r, "MRTD").status, RegisterStatus::NotPredicted);
    assert_eq!(by_name(&r, "RTMR3").status, RegisterStatus::NotPredicted);

    // Change the 5th RTMR1 event of the prediction (and its value): the verdict names it.
    let reg = expected.registers.iter_mut().find(|x| x.name == "RTMR1" && x.bank == Bank::Sha384).unwrap();
    let mut events = std::mem::take(&mut reg.events);
    let mut d = events[4].digest.as_bytes().to_vec();
    d[0] ^= 0xff;
    events[4].digest = cvmkit_measure::Digest::new(cvmkit_measure::HashAlg::SHA384, d);
    let mut rebuilt = cvmkit_measure::Register::new("RTMR1", Bank::Sha384);
    for e in &events {
        rebuilt.push(e.label.clone(), e.event_type.as_deref(), e.digest.as_bytes()).unwrap();
    }
    *reg = rebuilt;
    let r = verify(&raw, &o_with(&o, &expected));
    assert!(!r.passed());
    let rtmr1 = by_name(&r, "RTMR1");
    assert_eq!(rtmr1.status, RegisterStatus::Mismatch);
    assert_eq!(rtmr1.first_difference.as_ref().unwrap().index, 4);
    assert!(r.failed().is_empty(), "every check passes; only the register differs");
}

fn o_with<'a>(o: &Options<'a>, expected: &'a Measurements) -> Options<'a> {
    let mut n = o.clone();
    n.expect = Some(expected);
    n
}

#[test]
fn unusable_input_is_an_error_not_a_verdict() {
    let raw = data(COS_QUOTE);
    for bad in [&raw[..40], &raw[..700], &[][..]] {
        assert!(tdx::verify(bad, &Options::new(0)).is_err());
    }
    // An SGX quote given as TDX evidence.
    let sgx = data("evidence/tdx/dcap-qvl/sgx_quote");
    let e = tdx::verify(&sgx, &Options::new(0)).unwrap_err().to_string();
    assert!(e.contains("an SGX quote"), "{e}");
    assert!(tdx::parse_collateral(b"{not json").unwrap_err().to_string().contains("collateral"));
    assert!(tdx::parse_ccel(b"not a log").is_err());
}

#[test]
fn the_pinned_root_is_intels() {
    use sha2::Digest;
    let sum = cvmkit_measure::hex(&sha2::Sha256::digest(cvmkit_evidence::roots::INTEL_SGX_ROOT_CA));
    assert_eq!(sum, cvmkit_evidence::roots::INTEL_SGX_ROOT_CA_SHA256);
}

#[test]
fn reports_are_byte_stable() {
    let raw = data(COS_QUOTE);
    let ccel = tdx::parse_ccel(&data(COS_CCEL)).unwrap();
    let mut o = Options::new(at(COS_AT));
    o.event_log = Some(&ccel);
    assert_eq!(verify(&raw, &o).to_json(), verify(&raw, &o).to_json());
    let _ = statuses;
}

/// Registers a prediction assigns to the cloud are reported as the cloud's, not judged.
#[test]
fn registers_the_prediction_gives_to_the_cloud_are_reported_as_such() {
    let raw = data(COS_QUOTE);
    let mut expected = Measurements::new(cvmkit_measure::Platform::Tdx);
    expected.cloud = vec!["MRTD".into(), "RTMR0".into()];
    let o = Options::new(at(COS_AT));
    let r = verify(&raw, &o_with(&o, &expected));
    let status = |n: &str| r.registers.iter().find(|x| x.name == n).unwrap().status;
    assert_eq!(status("MRTD"), RegisterStatus::Cloud);
    assert_eq!(status("RTMR0"), RegisterStatus::Cloud);
    assert_eq!(status("RTMR1"), RegisterStatus::NotPredicted);
    assert!(r.passed());
}

/// dstack's real quotes with their JSON event logs (testdata/dstack, PROVENANCE there): the
/// quote JSON as dstack's guest agent returns it, the log replayed (its "lite" RTMR3 digests
/// recomputed as dstack defines them) to all four RTMRs.
#[test]
fn dstack_quotes_with_their_event_logs() {
    let expected: serde_json::Value = serde_json::from_slice(&data("dstack/expected-values.derived.json")).unwrap();
    for file in ["quote-report.json", "tdx-lite-getquote.json"] {
        let (quote, log) = tdx::read_quote(&data(&format!("dstack/{file}"))).unwrap();
        let log = log.expect("the JSON carries its event log");
        assert_eq!(log.registers.len(), 4, "{file}");
        let json: serde_json::Value = serde_json::from_slice(&data(&format!("dstack/{file}"))).unwrap();
        let rd = cvmkit_measure::unhex(json["report_data"].as_str().unwrap()).unwrap();
        // After both quotes' PCK certificates were issued (2025-09-16 and 2026-04-15, read from
        // them).
        let mut o = Options::new(at("2026-06-01T00:00:00Z"));
        o.event_log = Some(&log);
        o.report_data = Some(&rd);
        let r = verify(&quote, &o);
        assert!(r.passed(), "{file}: {}", r.to_json());
        assert_eq!(r.status("event-log"), Some(Status::Pass));
        assert_eq!(r.status("report-data"), Some(Status::Pass));
        if let Some(td) = expected[file].get("quote_td_report") {
            assert_eq!(r.claims["mr_td"], td["mr_td"], "{file}");
            assert_eq!(r.claims["rtmr3"], td["rt_mr3"], "{file}");
        }
        // The JSON log is read the same whether given alone or inside the quote JSON.
        let alone = tdx::parse_event_log(json["event_log"].as_str().unwrap().as_bytes()).unwrap();
        assert_eq!(alone, log);
    }
}
