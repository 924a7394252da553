//! `cvmkit verify` on real evidence (testdata/evidence, see its PROVENANCE.md): exit 0 valid,
//! 1 invalid or mismatching, 2 unusable input with one line naming the file.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::*;

fn evidence(rel: &str) -> PathBuf {
    fixtures().join(rel)
}

const COS_QUOTE: &str = "evidence/tdx/go-tdx-guest/cos-113-tdx-quote.dat";
const COS_CCEL: &str = "go-tdx-guest/ccel/ccel_data.dat";
/// Inside the validity of the COS quote's PCK certificates.
const COS_AT: &str = "--at=2025-01-01T00:00:00Z";

fn verify_tdx(dir: &Path, quote: &Path) -> Command {
    let mut c = cvmkit(dir);
    c.args(["verify", "tdx"]).arg(quote).arg(COS_AT);
    c
}

#[test]
fn verify_tdx_real_quote_with_its_event_log() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(verify_tdx(dir.path(), &evidence(COS_QUOTE)).arg("--event-log").arg(evidence(COS_CCEL)), true);
    // Snapshot of cvmkit's own output (the values in it are the quote's, which go-tdx-guest's
    // tests assert: testdata/PROVENANCE.md).
    snapshot!(stdout(&out));
    let out = run(verify_tdx(dir.path(), &evidence(COS_QUOTE)).arg("--json"), true);
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["schema"], "cvmkit.verdict/v1");
    assert_eq!(v["result"], "valid");
    assert_eq!(v["claims"]["mr_td"], "dae67181d3d65e073ad8f95b7907d5e927bfe9761c9ff3e9b89734a45d8954dba41394c7717cb2735396c1d04231f94a");
    let checks = v["checks"].as_array().unwrap();
    assert!(checks.iter().all(|c| c["status"] != "fail"));
    assert!(checks.iter().any(|c| c["name"] == "tcb-status" && c["status"] == "skipped" && c["reason"] == "no collateral"));
}

#[test]
fn verify_tdx_tampered_quote_exits_1_naming_the_check() {
    let dir = tempfile::tempdir().unwrap();
    let mut raw = std::fs::read(evidence(COS_QUOTE)).unwrap();
    raw[48 + 200] ^= 0x80; // inside the TD report
    let q = dir.path().join("tampered.dat");
    std::fs::write(&q, &raw).unwrap();
    let out = output(verify_tdx(dir.path(), &q).arg("--json"));
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["result"], "invalid");
    let failed: Vec<_> = v["checks"].as_array().unwrap().iter().filter(|c| c["status"] == "fail").map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(failed, ["quote-signature"]);
    let out = output(&mut verify_tdx(dir.path(), &q));
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).ends_with("TDX quote: INVALID\n"), "{}", stdout(&out));
    assert!(stdout(&out).contains("FAIL     quote-signature"), "{}", stdout(&out));
}

#[test]
fn verify_tdx_against_a_prediction() {
    let dir = tempfile::tempdir().unwrap();
    // The CCEL replayed by `cvmkit replay` is the prediction: every RTMR it names matches.
    let out = run(cvmkit(dir.path()).arg("replay").arg(evidence(COS_CCEL)).arg("--json"), true);
    let pred = dir.path().join("pred.json");
    std::fs::write(&pred, &out.stdout).unwrap();
    let out = run(verify_tdx(dir.path(), &evidence(COS_QUOTE)).arg("--event-log").arg(evidence(COS_CCEL)).arg("--expect").arg(&pred).arg("--json"), true);
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let status = |n: &str| v["registers"].as_array().unwrap().iter().find(|r| r["name"] == n).unwrap()["status"].clone();
    assert_eq!(status("RTMR1"), "MATCH");
    assert_eq!(status("MRTD"), "NOT_PREDICTED");

    // A workload manifest predicts RTMR3, which this quote (a GCE COS VM) left at zero.
    let manifest = "eyJhcHAiOiAiaHR0cDovLzEwLjAuMi4yOjgwOTAvYXBwcy8wIiwgInNoYTI1NiI6ICJhYmFiYWJhYmFiYWJhYmFiYWJhYmFiYWJhYmFiYWJhYmFiYWJhYmFiYWJhYmFiYWJhYmFiYWJhYmFiYWJhYmFiIn0=";
    let out = output(verify_tdx(dir.path(), &evidence(COS_QUOTE)).args(["--manifest", manifest, "--hostname", "app.example"]));
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(stdout(&out).contains("MISMATCH      RTMR3"), "{}", stdout(&out));
}

#[test]
fn verify_unusable_input_is_one_line_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let truncated = d.join("short.dat");
    std::fs::write(&truncated, &std::fs::read(evidence(COS_QUOTE)).unwrap()[..600]).unwrap();
    let notjson = d.join("collateral.json");
    std::fs::write(&notjson, "{").unwrap();
    let quote = evidence(COS_QUOTE);
    let tpm_doc = d.join("tpm.json");
    std::fs::write(&tpm_doc, r#"[{"schema": "cvmkit.measurements/v1", "platform": "tpm", "inputs": {}, "registers": []}]"#).unwrap();
    let cases: Vec<(Command, &[&str])> = vec![
        ({ let mut c = verify_tdx(d, &d.join("missing.dat")); c.arg("--json"); c }, &["missing.dat"]),
        (verify_tdx(d, &truncated), &["short.dat", "not a valid DCAP quote"]),
        ({ let mut c = verify_tdx(d, &quote); c.arg("--collateral").arg(&notjson); c }, &["collateral.json", "collateral JSON"]),
        ({ let mut c = verify_tdx(d, &quote); c.arg("--event-log").arg(&notjson); c }, &["collateral.json", "event log"]),
        ({ let mut c = verify_tdx(d, &quote); c.args(["--report-data", "xyz"]); c }, &["--report-data", "hexadecimal"]),
        ({ let mut c = verify_tdx(d, &quote); c.args(["--report-data", &"00".repeat(65)]); c }, &["--report-data", "65 bytes"]),
        ({ let mut c = cvmkit(d); c.args(["verify", "tdx"]).arg(&quote).arg("--at=yesterday"); c }, &["--at", "RFC 3339"]),
        ({ let mut c = verify_tdx(d, &quote); c.args(["--manifest", "not base64!"]); c }, &["--manifest"]),
        ({ let mut c = verify_tdx(d, &quote); c.arg("--expect").arg(&notjson); c }, &["prediction", "collateral.json"]),
        ({ let mut c = verify_tdx(d, &quote); c.arg("--expect").arg(&tpm_doc); c }, &["prediction", "tpm.json", "no tdx document among the prediction's (tpm)"]),
    ];
    for (mut c, needles) in cases {
        let out = output(&mut c);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{c:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{c:?}: {err}");
        assert!(stdout(&out).is_empty(), "{c:?}");
        for n in needles {
            assert!(err.contains(n), "{c:?}: {err:?} lacks {n:?}");
        }
    }
}

#[test]
fn verify_output_is_the_same_under_tz_locale_and_cwd() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let base = run(verify_tdx(a.path(), &evidence(COS_QUOTE)).arg("--event-log").arg(evidence(COS_CCEL)).arg("--json"), true).stdout;
    let other = run(
        verify_tdx(b.path(), &evidence(COS_QUOTE)).arg("--event-log").arg(evidence(COS_CCEL)).arg("--json").env("TZ", "Asia/Kolkata").env("LC_ALL", "de_DE.UTF-8").env("LANG", "de_DE.UTF-8"),
        true,
    )
    .stdout;
    assert_eq!(base, other);
}

/// The quote signature as Python `cryptography` sees it, and the TCB status as dcap-qvl's
/// Python build gives it (scripts/oracles/tdx_quote.py), on real quotes and tampered copies.
#[test]
fn verify_tdx_agrees_with_independent_checks() {
    let dir = tempfile::tempdir().unwrap();
    let python = venv_tool("python");
    let oracle = repo_root().join("scripts/oracles/tdx_quote.py");
    let peer = |args: &[&Path]| -> serde_json::Value {
        let out = run(Command::new(&python).arg(&oracle).args(args), true);
        serde_json::from_str(&stdout(&out)).unwrap()
    };
    let ours = |quote: &Path, extra: &[&str]| -> serde_json::Value {
        let out = output(cvmkit(dir.path()).args(["verify", "tdx", "--json"]).arg(quote).args(extra));
        serde_json::from_str(&stdout(&out)).unwrap()
    };
    let check = |v: &serde_json::Value, name: &str| v["checks"].as_array().unwrap().iter().find(|c| c["name"] == name).unwrap()["status"].clone();

    let mut n = 0;
    for q in ["evidence/tdx/go-tdx-guest/cos-113-tdx-quote.dat", "evidence/tdx/go-tdx-guest/quote_v5_sample.dat", "evidence/tdx/dcap-qvl/tdx_quote_td15ex"] {
        let raw = std::fs::read(evidence(q)).unwrap();
        for flip in [None, Some(10), Some(48 + 7), Some(48 + 500), Some(640)] {
            let mut t = raw.clone();
            if let Some(i) = flip {
                t[i] ^= 0x04;
            }
            let p = dir.path().join(format!("q{n}.dat"));
            n += 1;
            std::fs::write(&p, &t).unwrap();
            let Ok(_) = dcap_parse_ok(&t) else { continue };
            let want = if peer(&[&p])["quote_signature"] == true { "pass" } else { "fail" };
            assert_eq!(check(&ours(&p, &["--at=2026-10-20T00:00:00Z"]), "quote-signature"), want, "{q} flip {flip:?}");
        }
    }
    // Collateral windows: read from each collateral (TCB info / QE identity / CRL dates).
    for (q, when, secs) in [("tdx_quote", "2025-07-01T00:00:00Z", "1751328000"), ("tdx_quote_td15ex", "2026-10-20T00:00:00Z", "1792454400"), ("tdx_quote_outdated", "2026-03-01T00:00:00Z", "1772323200")] {
        let quote = evidence(&format!("evidence/tdx/dcap-qvl/{q}"));
        let coll = evidence(&format!("evidence/tdx/dcap-qvl/{q}_collateral.json"));
        let p = peer(&[&quote, &coll, Path::new(secs)]);
        let v = ours(&quote, &["--collateral", coll.to_str().unwrap(), &format!("--at={when}")]);
        match p.get("tcb_status") {
            Some(status) => assert_eq!(&v["claims"]["tcb_status"], status, "{q}"),
            None => {
                assert!(p["error"].as_str().unwrap().contains("No matching TCB level"), "{q}: {p}");
                assert_eq!(check(&v, "tcb-status"), "fail", "{q}");
            }
        }
    }
}

/// Whether the quote still parses (a flipped length makes it unusable input, exit 2).
fn dcap_parse_ok(raw: &[u8]) -> Result<(), ()> {
    cvmkit_evidence::tdx::parse(raw).map(|_| ()).map_err(|_| ())
}

fn json_of(out: &std::process::Output) -> serde_json::Value {
    serde_json::from_str(&stdout(out)).unwrap_or_else(|e| panic!("{e}: {}", stdout(out)))
}

fn failed_checks(v: &serde_json::Value) -> Vec<String> {
    v["checks"].as_array().unwrap().iter().filter(|c| c["status"] == "fail").map(|c| c["name"].as_str().unwrap().to_string()).collect()
}

/// Every kind of evidence end to end: a real one verifies (exit 0), a copy with one flipped
/// bit fails naming the check (exit 1). Times are inside each certificate's validity.
#[test]
fn verify_snp_tpm_and_azure_real_evidence() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let flip = |src: &str, offset: usize, name: &str| -> PathBuf {
        let mut raw = std::fs::read(evidence(src)).unwrap();
        raw[offset] ^= 0x01;
        let p = d.join(name);
        std::fs::write(&p, raw).unwrap();
        p
    };
    // SNP: trustee's VLEK-signed report (valid 2024-12-10 … 2025-12-10).
    let vlek = evidence("evidence/sev-snp/trustee/test-vlek.der");
    let snp = |report: &Path| {
        let mut c = cvmkit(d);
        c.args(["verify", "snp", "--json", "--at=2025-06-01T00:00:00Z"]).arg(report).arg("--cert").arg(&vlek);
        c
    };
    let out = run(&mut snp(&evidence("evidence/sev-snp/trustee/test-vlek-report.bin")), true);
    assert_eq!(json_of(&out)["evidence"], "snp");
    let out = output(&mut snp(&flip("evidence/sev-snp/trustee/test-vlek-report.bin", 0x90, "snp.bin")));
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(failed_checks(&json_of(&out)), ["report-signature"]);

    // vTPM: go-tpm-tools' GCE attestation made with nonce 0x9009 (server/verify_test.go).
    let tpm = |att: &Path, nonce: &str| {
        let mut c = cvmkit(d);
        c.args(["verify", "tpm", "--json", "--at=2025-06-01T00:00:00Z", "--nonce", nonce]).arg(att);
        c
    };
    let att = evidence("evidence/gce-vtpm/go-tpm-tools/attestations/gce-cos-85-nonce9009.pb");
    run(&mut tpm(&att, "9009"), true);
    let out = output(&mut tpm(&att, "9010"));
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(failed_checks(&json_of(&out)), ["nonce"]);

    // Azure: trustee's az-snp-vtpm evidence (nonce "challenge").
    let az = |ev: &Path| {
        let mut c = cvmkit(d);
        c.args(["verify", "azure", "--json", "--at=2025-06-01T00:00:00Z", "--nonce", "6368616c6c656e6765"]).arg(ev);
        c
    };
    let out = run(&mut az(&evidence("evidence/azure/trustee/az-snp-vtpm/evidence-v1.json")), true);
    let v = json_of(&out);
    assert_eq!(v["registers"][0]["name"], "PCR0");
    assert_eq!(v["registers"][0]["actual"], "e15c44796beabf46abcec7c57e590942041e47497e4ec27571c8b7664f48dced");
    let hcl = d.join("hcl.bin");
    let mut raw = std::fs::read(evidence("evidence/azure/trustee/az-snp-vtpm/hcl-report.bin")).unwrap();
    raw[0x6e0] = raw[0x6e0].wrapping_add(1); // inside the runtime claims (trustee's offset)
    std::fs::write(&hcl, raw).unwrap();
    let out = output(az(&hcl).arg("--quote").arg(evidence("evidence/azure/trustee/az-snp-vtpm/tpm-quote-v1.json")).arg("--cert").arg(evidence("evidence/azure/trustee/az-snp-vtpm/vcek.pem")));
    assert_eq!(out.status.code(), Some(1));
    assert!(failed_checks(&json_of(&out)).contains(&"hcl-report-data".to_string()));
}

#[test]
fn verify_snp_tpm_and_azure_unusable_input() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let junk = d.join("junk.bin");
    std::fs::write(&junk, b"junk").unwrap();
    let report = evidence("evidence/sev-snp/trustee/test-vlek-report.bin");
    let cases: Vec<(Vec<std::ffi::OsString>, &[&str])> = vec![
        (vec!["snp".into(), junk.clone().into()], &["junk.bin"]),
        (vec!["snp".into(), report.clone().into(), "--cert".into(), junk.clone().into()], &["junk.bin"]),
        (vec!["snp".into(), report.clone().into(), "--manifest".into(), "e30=".into()], &["--manifest", "snp"]),
        (vec!["tpm".into(), junk.clone().into()], &["junk.bin", "Attestation"]),
        (vec!["tpm".into(), evidence("evidence/gce-vtpm/go-tpm-tools/attestations/gce-cos-85-nonce9009.pb").into(), "--ak".into(), junk.clone().into()], &["attestation key", "junk.bin"]),
        (vec!["tpm".into(), junk.clone().into(), "--nonce".into(), "nothex".into()], &["--nonce"]),
        (vec!["azure".into(), junk.clone().into()], &["junk.bin", "Azure"]),
        (vec!["azure".into(), evidence("evidence/azure/trustee/az-snp-vtpm/hcl-report.bin").into(), "--quote".into(), junk.clone().into()], &["junk.bin", "quote"]),
    ];
    for (args, needles) in cases {
        let out = output(cvmkit(d).arg("verify").args(&args));
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        for n in needles {
            assert!(err.contains(n), "{args:?}: {err:?} lacks {n:?}");
        }
    }
}

/// dstack's quote JSON as its guest agent returns it: quote and event log in one file.
#[test]
fn verify_tdx_dstack_quote_json() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(cvmkit(dir.path()).args(["verify", "tdx", "--json", "--at=2026-06-01T00:00:00Z"]).arg(fixtures().join("dstack/quote-report.json")), true);
    let v = json_of(&out);
    let ev = v["checks"].as_array().unwrap().iter().find(|c| c["name"] == "event-log").unwrap().clone();
    assert_eq!(ev["status"], "pass");
}
