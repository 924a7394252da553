//! `cvmkit reference capture` on real GCE logs, and `cvmkit verify --reference`. Expected values
//! are the origins' (go-tdx-guest, go-eventlog, go-tpm-tools tests; testdata/PROVENANCE.md).

use std::path::Path;

use crate::util::*;

fn fixture_json(rel: &str) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(fixtures().join(rel)).unwrap()).unwrap()
}

fn registers(path: &Path) -> Vec<(String, String, String)> {
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    v["registers"].as_array().unwrap().iter().map(|r| (r["name"].as_str().unwrap().into(), r["bank"].as_str().unwrap().into(), r["value"].as_str().unwrap().into())).collect()
}

#[test]
fn capture_reproduces_the_recorded_platform_registers_of_real_gce_vms() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // COS 113 on GCE with its quote: MRTD and RTMR0 as go-tdx-guest's tests assert them.
    let quote = fixtures().join("evidence/tdx/go-tdx-guest/cos-113-tdx-quote.dat");
    run(cvmkit(d).args(["reference", "capture", "--at=2025-01-01T00:00:00Z", "--machine-type", "c3-standard-4", "-o", "cos.json"]).arg(fixtures().join("go-tdx-guest/ccel/ccel_data.dat")).arg("--quote").arg(&quote), true);
    let want = &fixture_json("go-tdx-guest/expected.derived.json")["ccel/cos-113-tdx-quote.dat"];
    let got = registers(&d.join("cos.json"));
    assert_eq!(got[0], ("MRTD".into(), "sha384".into(), want["mr_td"].as_str().unwrap().into()));
    assert_eq!(got[1], ("RTMR0".into(), "sha384".into(), want["rt_mr0"].as_str().unwrap().into()));
    // Ubuntu 24.04 on GCE (16 failed boot attempts in the log): RTMR0 as go-eventlog asserts it.
    run(cvmkit(d).args(["reference", "capture", "-o", "ubuntu.json"]).arg(fixtures().join("go-eventlog-jkl73/ccel/ubuntu-2404-intel-tdx.bin")), true);
    let want = fixture_json("go-eventlog-jkl73/expected.derived.json")["ccel/ubuntu-2404-intel-tdx.bin"]["rtmr"]["0"].clone();
    assert_eq!(registers(&d.join("ubuntu.json")), [("RTMR0".into(), "sha384".into(), want.as_str().unwrap().to_string())]);
    // A GCE vTPM log: PCR 0-7 of each bank, as go-tpm-tools' tests give them.
    run(cvmkit(d).args(["reference", "capture", "-o", "tpm.json"]).arg(fixtures().join("go-tpm-tools/eventlogs/rhel8-uefi.bin")), true);
    let want = &fixture_json("go-tpm-tools/expected_pcrs.derived.json")["logs"]["Rhel8GCE"]["pcrs"];
    let got = registers(&d.join("tpm.json"));
    assert!(!got.is_empty());
    for (name, bank, value) in &got {
        let i = name.trim_start_matches("PCR");
        assert!(i.parse::<u32>().unwrap() < 8);
        if let Some(w) = want[bank.as_str()][i].as_str() {
            assert_eq!(value, w, "{bank} {name}");
        }
    }
    assert!(got.iter().any(|(n, b, _)| n == "PCR0" && b == "sha256"));
}

#[test]
fn capture_refuses_a_quote_the_log_does_not_belong_to() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // The duplicate-separator log is another boot: its RTMR0/1 differ from the COS quote's.
    let out = output(cvmkit(d).args(["reference", "capture", "--at=2025-01-01T00:00:00Z", "-o", "x.json"]).arg(fixtures().join("go-eventlog/eventlogs/ccel/cos-113-intel-tdx-dupe-separator.bin")).arg("--quote").arg(fixtures().join("evidence/tdx/go-tdx-guest/cos-113-tdx-quote.dat")));
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("event-log"), "{}", stderr(&out));
    assert!(!d.join("x.json").exists());
}

#[test]
fn verify_judges_cloud_registers_by_references() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let quote = fixtures().join("evidence/tdx/go-tdx-guest/cos-113-tdx-quote.dat");
    run(cvmkit(d).args(["reference", "capture", "--at=2025-01-01T00:00:00Z", "-o", "cos.json"]).arg(fixtures().join("go-tdx-guest/ccel/ccel_data.dat")).arg("--quote").arg(&quote), true);
    // Another VM shape's RTMR0 (Ubuntu's capture) as a second alternative: still a MATCH.
    run(cvmkit(d).args(["reference", "capture", "-o", "ubuntu.json"]).arg(fixtures().join("go-eventlog-jkl73/ccel/ubuntu-2404-intel-tdx.bin")), true);
    std::fs::write(d.join("pred.json"), r#"{"schema": "cvmkit.measurements/v1", "platform": "tdx", "inputs": {}, "registers": [], "cloud": ["MRTD", "RTMR0"]}"#).unwrap();
    let verify = |refs: &[&str]| {
        let mut c = cvmkit(d);
        c.args(["verify", "tdx", "--json", "--at=2025-01-01T00:00:00Z", "--expect", "pred.json"]).arg(&quote);
        for r in refs {
            c.args(["--reference", r]);
        }
        output(&mut c)
    };
    let status = |out: &std::process::Output, n: &str| {
        let v: serde_json::Value = serde_json::from_str(&stdout(out)).unwrap();
        v["registers"].as_array().unwrap().iter().find(|r| r["name"] == n).unwrap()["status"].as_str().unwrap().to_string()
    };
    let out = verify(&["ubuntu.json", "cos.json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert_eq!(status(&out, "MRTD"), "MATCH");
    assert_eq!(status(&out, "RTMR0"), "MATCH");
    // Only the Ubuntu VM's RTMR0: this quote's does not match it.
    let out = verify(&["ubuntu.json"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(status(&out, "RTMR0"), "MISMATCH");
    assert_eq!(status(&out, "MRTD"), "CLOUD");
    // Without references the cloud's registers are shown, not judged.
    let out = verify(&[]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(status(&out, "RTMR0"), "CLOUD");
}

/// A GCE launch endorsement signed with gce-tcb-verifier's committed dev key (testdata/evidence/
/// gcp, PROVENANCE there): written as references against its root, refused against another root
/// or with one flipped bit; the MRTD is gce-tcb-verifier's `CleanTdxExampleMeasurement`.
#[test]
fn reference_gcp_endorsement() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let e = fixtures().join("evidence/gcp/devkeys-clean-example.binarypb");
    let root = fixtures().join("evidence/gcp/devkeys-root.crt");
    run(cvmkit(d).args(["reference", "gcp", "-o", "refs.json", "--root"]).arg(&root).arg(&e), true);
    let docs: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(d.join("refs.json")).unwrap()).unwrap();
    let tdx = docs.as_array().unwrap().iter().find(|x| x["platform"] == "tdx").unwrap();
    assert!(tdx["registers"][0]["value"].as_str().unwrap().starts_with("6e540be4"));
    assert!(tdx["registers"][0]["source"].as_str().unwrap().contains("endorsement"));

    let foreign = fixtures().join("evidence/tdx/foreign-root.der");
    let out = output(cvmkit(d).args(["reference", "gcp", "-o", "x.json", "--root"]).arg(&foreign).arg(&e));
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("endorsement-chain"), "{}", stderr(&out));
    let mut raw = std::fs::read(&e).unwrap();
    let n = raw.len();
    raw[n / 3] ^= 0x01;
    std::fs::write(d.join("t.binarypb"), raw).unwrap();
    let out = output(cvmkit(d).args(["reference", "gcp", "-o", "x.json", "--root"]).arg(&root).arg(d.join("t.binarypb")));
    assert_ne!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!d.join("x.json").exists());
    // The references judge a quote's MRTD: this COS VM ran other firmware than the example's.
    std::fs::write(d.join("pred.json"), r#"{"schema": "cvmkit.measurements/v1", "platform": "tdx", "inputs": {}, "registers": [], "cloud": ["MRTD", "RTMR0"]}"#).unwrap();
    let out = output(cvmkit(d).args(["verify", "tdx", "--json", "--at=2025-01-01T00:00:00Z", "--expect", "pred.json", "--reference", "refs.json"]).arg(fixtures().join("evidence/tdx/go-tdx-guest/cos-113-tdx-quote.dat")));
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let mrtd = v["registers"].as_array().unwrap().iter().find(|r| r["name"] == "MRTD").unwrap().clone();
    assert_eq!(mrtd["status"], "MISMATCH");
}
