//! Azure CVM evidence from real VMs (trustee's az-snp-vtpm / az-tdx-vtpm test data, see
//! testdata/evidence/PROVENANCE.md). Expected values are trustee's test assertions
//! (testdata/evidence/expected.derived.json); tampered copies fail naming the check.

use cvmkit_evidence::azure::{self, Options};
use cvmkit_evidence::{RegisterStatus, Report, Status};

fn read(path: &str) -> Vec<u8> {
    let p = format!("{}/../../../testdata/evidence/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&p).unwrap_or_else(|e| panic!("{p}: {e}"))
}

/// Inside the validity of every VCEK and PCK certificate involved (2023-05 … 2030-05).
fn at() -> u64 {
    cvmkit_evidence::tdx::parse_time("2025-06-01T00:00:00Z").unwrap()
}

fn verify(evidence: &[u8], nonce: &[u8]) -> Report {
    let mut o = Options::new(at());
    o.nonce = Some(nonce);
    azure::verify(&azure::parse_evidence(evidence).unwrap(), &o).unwrap()
}

fn pcr(r: &Report, n: u32) -> String {
    r.registers.iter().find(|x| x.name == format!("PCR{n}")).unwrap().actual.as_ref().unwrap().to_hex()
}

#[test]
fn snp_evidence_of_every_version_verifies() {
    // (file, the nonce trustee's test_evaluate* gives as report_data, its asserted tpm.pcr00)
    let cases: [(&str, Vec<u8>, &str); 4] = [
        ("az-snp-vtpm/evidence-v0.json", b"challenge".to_vec(), "e15c44796beabf46abcec7c57e590942041e47497e4ec27571c8b7664f48dced"),
        ("az-snp-vtpm/evidence-v1.json", b"challenge".to_vec(), "e15c44796beabf46abcec7c57e590942041e47497e4ec27571c8b7664f48dced"),
        (
            "az-snp-vtpm/evidence-v2.json",
            cvmkit_measure::unhex("982f5c6e45df0ed3f10b6f60b02f0c8390e281300f3805e2279c16168cd6ae9aa398f647caa2338748cd0fd9f5f819ef").unwrap(),
            "84275b2f4312cd4fc6cbe6b152ad3c3683e513d9f1e23c34fca160c8cca7a6a7",
        ),
        (
            "az-snp-vtpm/evidence-genoa.json",
            cvmkit_measure::unhex("0218488bae25d2509232bf676f1a66a30d7372add909109b36016ef136f2938ca05475f8b46094de6b64270ea35d950f").unwrap(),
            "afd689d0bb1c5f36f023fbaf574135f555a28a10c1f6b938d2a25e70c7783338",
        ),
    ];
    for (file, nonce, pcr0) in cases {
        let r = verify(&read(&format!("azure/trustee/{file}")), &nonce);
        assert!(r.passed(), "{file}: {}", r.to_json());
        for name in ["snp-report-signature", "snp-cert-chain", "hcl-report-data", "ak", "quote-signature", "pcr-digest", "nonce"] {
            assert_eq!(r.status(name), Some(Status::Pass), "{file} {name}: {}", r.to_json());
        }
        assert_eq!(pcr(&r, 0), pcr0, "{file}");
        assert_eq!(r.claims["hardware"], "snp");
        assert!(r.notes.iter().any(|n| n.contains("paravisor")), "{file}");
        // The paravisor's launch measurement is never a register judged against the image.
        assert!(r.registers.iter().all(|x| x.name.starts_with("PCR")));
    }
}

#[test]
fn v2_user_data_binds_the_report_data() {
    // trustee's test_verify_user_data: the HCL runtime claims' user-data equals report_data.
    let ev = read("azure/trustee/az-snp-vtpm/evidence-v2.json");
    let rd = cvmkit_measure::unhex("982f5c6e45df0ed3f10b6f60b02f0c8390e281300f3805e2279c16168cd6ae9aa398f647caa2338748cd0fd9f5f819ef").unwrap();
    let evidence = azure::parse_evidence(&ev).unwrap();
    let mut o = Options::new(at());
    o.nonce = Some(&rd);
    o.user_data = Some(&rd);
    let r = azure::verify(&evidence, &o).unwrap();
    assert_eq!(r.status("user-data"), Some(Status::Pass), "{}", r.to_json());
    o.user_data = Some(b"challenge");
    let r = azure::verify(&evidence, &o).unwrap();
    assert_eq!(r.failed(), ["user-data"]);
}

#[test]
fn hcl_report_with_separate_quote_and_vcek() {
    let hcl = read("azure/trustee/az-snp-vtpm/hcl-report.bin");
    let quote = azure::parse_tpm_quote(&read("azure/trustee/az-snp-vtpm/tpm-quote-v1.json")).unwrap();
    let certs = vec![("vcek.pem".to_string(), read("azure/trustee/az-snp-vtpm/vcek.pem"))];
    let mut o = Options::new(at());
    o.certs = &certs;
    o.tpm_quote = Some(&quote);
    o.nonce = Some(b"challenge");
    let evidence = azure::parse_evidence(&hcl).unwrap();
    let r = azure::verify(&evidence, &o).unwrap();
    assert!(r.passed(), "{}", r.to_json());

    // trustee's tamper offsets (az_snp_vtpm tests): inside the SNP report, inside the runtime
    // claims, and inside the AK's JWK.
    let tampered = |offset: usize, f: fn(u8) -> u8| {
        let mut t = hcl.clone();
        t[offset] = f(t[offset]);
        azure::verify(&azure::parse_evidence(&t).unwrap(), &o).unwrap()
    };
    let r = tampered(0x1a6, |_| 0);
    assert_eq!(r.status("snp-report-signature"), Some(Status::Fail), "{}", r.to_json());
    assert_eq!(r.status("hcl-report-data"), Some(Status::Skipped));
    let r = tampered(0x6e0, |b| b.wrapping_add(1));
    assert_eq!(r.status("hcl-report-data"), Some(Status::Fail), "{}", r.to_json());
    assert_eq!(r.status("snp-report-signature"), Some(Status::Pass));
    let r = tampered(0x540, |_| 0);
    assert_eq!(r.status("ak"), Some(Status::Fail), "{}", r.to_json());
    assert_eq!(r.status("hcl-report-data"), Some(Status::Fail));

    // A wrong nonce, a changed PCR value, a flipped signature bit.
    let mut o2 = o.clone();
    o2.nonce = Some(b"another");
    assert_eq!(azure::verify(&evidence, &o2).unwrap().failed(), ["nonce"]);
    let mut q = quote.clone();
    q.pcrs[7][0] ^= 1;
    o2 = o.clone();
    o2.tpm_quote = Some(&q);
    assert_eq!(azure::verify(&evidence, &o2).unwrap().failed(), ["pcr-digest"]);
    let mut q = quote.clone();
    q.signature[10] ^= 1;
    o2.tpm_quote = Some(&q);
    assert_eq!(azure::verify(&evidence, &o2).unwrap().failed(), ["quote-signature"]);
    // Without the VCEK the SNP report cannot be checked: a failure, not a pass.
    let mut o3 = o.clone();
    o3.certs = &[];
    let r = azure::verify(&evidence, &o3).unwrap();
    assert!(!r.passed());
    assert_eq!(r.status("hcl-report-data"), Some(Status::Skipped));
}

#[test]
fn tdx_evidence_verifies_through_its_td_quote() {
    // trustee's az-tdx-vtpm evidence; trustee's own test needs a collateral service, so only
    // the signatures and chain are checked here (collateral is skipped, and says so).
    for file in ["az-tdx-vtpm/evidence-v0.json", "az-tdx-vtpm/evidence-v1.json"] {
        let r = verify(&read(&format!("azure/trustee/{file}")), b"challenge");
        assert!(r.passed(), "{file}: {}", r.to_json());
        for name in ["tdx-quote-signature", "tdx-pck-chain", "tdx-qe-report-binding", "tdx-quote-matches-hcl", "hcl-report-data", "quote-signature", "nonce"] {
            assert_eq!(r.status(name), Some(Status::Pass), "{file} {name}");
        }
        assert_eq!(r.status("tdx-collateral"), Some(Status::Skipped));
        // trustee's asserted tpm.pcr00 for this evidence.
        assert_eq!(pcr(&r, 0), "782b20b10f55cc46e2142cc2145d548698073e5beb82752c8d7f9279f0d8a273");
    }
    // trustee: byte 0x880 of the HCL report += 1 → the runtime claims no longer hash to the
    // quote's report data.
    let hcl = read("azure/trustee/az-tdx-vtpm/hcl-report.bin");
    let quote = read("azure/trustee/az-tdx-vtpm/td-quote.bin");
    let tq = azure::parse_tpm_quote(&read("azure/trustee/az-tdx-vtpm/tpm-quote-v1.json")).unwrap();
    let mut o = Options::new(at());
    o.td_quote = Some(&quote);
    o.tpm_quote = Some(&tq);
    o.nonce = Some(b"challenge");
    assert!(azure::verify(&azure::parse_evidence(&hcl).unwrap(), &o).unwrap().passed());
    let mut t = hcl.clone();
    t[0x880] = t[0x880].wrapping_add(1);
    let r = azure::verify(&azure::parse_evidence(&t).unwrap(), &o).unwrap();
    assert!(r.failed().contains(&"hcl-report-data"), "{}", r.to_json());
    // No TD quote: nothing vouches for the TDREPORT.
    let mut o2 = o.clone();
    o2.td_quote = None;
    let r = azure::verify(&azure::parse_evidence(&hcl).unwrap(), &o2).unwrap();
    assert!(r.failed().contains(&"tdx-quote"));
}

#[test]
fn pcrs_are_judged_against_a_prediction() {
    let ev = read("azure/trustee/az-snp-vtpm/evidence-v1.json");
    let evidence = azure::parse_evidence(&ev).unwrap();
    let mut expected = cvmkit_measure::Measurements::new(cvmkit_measure::Platform::Tpm);
    let mut p0 = cvmkit_measure::Register::new("PCR0", cvmkit_measure::Bank::Sha256);
    p0.value = cvmkit_measure::Digest::from_hex(cvmkit_measure::HashAlg::SHA256, "e15c44796beabf46abcec7c57e590942041e47497e4ec27571c8b7664f48dced").unwrap();
    expected.registers.push(p0.clone());
    expected.cloud = vec!["PCR1".into()];
    let mut o = Options::new(at());
    o.nonce = Some(b"challenge");
    o.expect = Some(&expected);
    let r = azure::verify(&evidence, &o).unwrap();
    assert!(r.passed(), "{}", r.to_json());
    let status = |r: &Report, n: &str| r.registers.iter().find(|x| x.name == n).unwrap().status;
    assert_eq!(status(&r, "PCR0"), RegisterStatus::Match);
    assert_eq!(status(&r, "PCR1"), RegisterStatus::Cloud);
    assert_eq!(status(&r, "PCR4"), RegisterStatus::NotPredicted);
    let mut wrong = expected.clone();
    wrong.registers[0].value = cvmkit_measure::Digest::zero(cvmkit_measure::HashAlg::SHA256, 32);
    let mut o2 = o.clone();
    o2.expect = Some(&wrong);
    let r = azure::verify(&evidence, &o2).unwrap();
    assert_eq!(status(&r, "PCR0"), RegisterStatus::Mismatch);
    assert!(!r.passed());
}

#[test]
fn unusable_input_is_an_error() {
    assert!(azure::parse_evidence(b"{}").is_err());
    assert!(azure::parse_evidence(b"not json").is_err());
    let hcl = read("azure/trustee/az-snp-vtpm/hcl-report.bin");
    for n in [0, 3, 100, 0x4d0] {
        let e = azure::parse_evidence(&hcl[..n]).and_then(|e| azure::verify(&e, &Options::new(0)));
        assert!(e.is_err(), "{n}");
    }
    assert!(azure::parse_tpm_quote(b"{\"message\": \"zz\"}").is_err());
}
