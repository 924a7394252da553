use std::path::Path;
use std::process::Command;

use crate::util::*;

fn json(out: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", stdout(out)))
}

/// `cvmkit measure snp` prints the same launch digest as sev-snp-measure (PyPI 0.0.13, run here)
/// for Debian's OVMF.fd; the library's own tests cover the full peer matrix.
#[test]
fn snp_launch_digest_equals_sev_snp_measure() {
    let inputs = inputs();
    let tmp = tempfile::tempdir().unwrap();
    for (vcpus, vcpu, features, vmm) in [("1", "EPYC-v4", "0x1", "qemu"), ("4", "EPYC-Milan", "0x21", "qemu"), ("2", "EPYC-Genoa", "0x1", "ec2")] {
        let ours = json(&run(
            cvmkit(tmp.path())
                .args(["measure", "snp", "--json", "--firmware"])
                .arg(&inputs.ovmf)
                .args(["--vcpus", vcpus, "--vcpu-type", vcpu, "--guest-features", features, "--vmm-type", vmm]),
            true,
        ));
        let peer = run(
            Command::new(venv_tool("sev-snp-measure"))
                .args(["--mode", "snp", "--vcpus", vcpus, "--vcpu-type", vcpu, "--guest-features", features, "--vmm-type", if vmm == "qemu" { "QEMU" } else { vmm }, "--ovmf"])
                .arg(&inputs.ovmf),
            true,
        );
        assert_eq!(ours["schema"], "cvmkit.measurements/v1");
        assert_eq!(ours["registers"][0]["name"], "LAUNCH_DIGEST");
        assert_eq!(ours["registers"][0]["value"], stdout(&peer).trim(), "{vcpus} {vcpu} {features} {vmm}");
    }
    // Debian's OVMF.fd has no kernel-hashes section: the peer's error, as one line.
    let out = run(
        cvmkit(tmp.path())
            .args(["measure", "snp", "--firmware"])
            .arg(&inputs.ovmf)
            .args(["--vcpus", "1", "--vcpu-type", "EPYC-v4", "--kernel"])
            .arg(&inputs.kernel),
        false,
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("Kernel specified but OVMF metadata doesn't include SNP_KERNEL_HASHES section"), "{err}");
}

/// `cvmkit replay` reproduces the RTMRs of a real GCE TDX quote from the CCEL of the same boot
/// (go-tdx-guest fixtures; the values are the quote's TD report fields).
#[test]
fn replay_reproduces_real_quote_and_checks_expectations() {
    let fx = fixtures();
    let tmp = tempfile::tempdir().unwrap();
    let quote: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fx.join("go-tdx-guest/expected.derived.json")).unwrap()).unwrap();
    let report = &quote["ccel/cos-113-tdx-quote.dat"];
    let log = fx.join("go-tdx-guest/ccel/ccel_data.dat");
    let doc = json(&run(cvmkit(tmp.path()).arg("replay").arg("--json").arg(&log), true));
    let regs = doc["registers"].as_array().unwrap();
    for (i, key) in ["rt_mr0", "rt_mr1", "rt_mr2"].iter().enumerate() {
        let r = regs.iter().find(|r| r["name"] == format!("RTMR{i}")).unwrap();
        assert_eq!(r["value"], report[key], "RTMR{i}");
        assert!(!r["events"].as_array().unwrap().is_empty());
    }

    // An expectation holding the quote's values matches; one changed digit is a MISMATCH, exit 1.
    let mut expect = serde_json::json!({"schema": "cvmkit.measurements/v1", "platform": "tdx", "inputs": {}, "registers": []});
    for i in 0..3 {
        expect["registers"].as_array_mut().unwrap().push(serde_json::json!({
            "name": format!("RTMR{i}"), "bank": "sha384", "value": report[format!("rt_mr{i}")], "events": []
        }));
    }
    std::fs::write(tmp.path().join("good.json"), expect.to_string()).unwrap();
    let ok = run(cvmkit(tmp.path()).arg("replay").arg(&log).args(["--expect", "good.json"]), true);
    assert!(stdout(&ok).lines().last() == Some("MATCH"), "{}", stdout(&ok));
    expect["registers"][1]["value"] = serde_json::Value::String(format!("0{}", &report["rt_mr1"].as_str().unwrap()[1..]));
    std::fs::write(tmp.path().join("bad.json"), expect.to_string()).unwrap();
    let bad = run(cvmkit(tmp.path()).arg("replay").arg(&log).args(["--expect", "bad.json"]), false);
    assert_eq!(bad.status.code(), Some(1));
    assert!(stdout(&bad).contains("MISMATCH  RTMR1"), "{}", stdout(&bad));

    // A prediction document replayed against itself matches event by event.
    std::fs::write(tmp.path().join("self.json"), serde_json::to_string(&doc).unwrap()).unwrap();
    let same = run(cvmkit(tmp.path()).arg("replay").arg(&log).args(["--expect", "self.json", "--json"]), true);
    assert_eq!(json(&same)["result"], "MATCH");
}

/// The known duplicate-separator log (go-eventlog) is flagged; --strict makes it an exit 1.
#[test]
fn replay_flags_duplicate_separator() {
    let fx = fixtures();
    let tmp = tempfile::tempdir().unwrap();
    let log = fx.join("go-eventlog/eventlogs/ccel/cos-113-intel-tdx-dupe-separator.bin");
    let out = run(cvmkit(tmp.path()).arg("replay").arg(&log), true);
    assert!(stdout(&out).contains("warning: event 16") && stdout(&out).contains("duplicate separator"), "{}", stdout(&out));
    let strict = run(cvmkit(tmp.path()).arg("replay").arg("--strict").arg(&log), false);
    assert_eq!(strict.status.code(), Some(1));
}

/// A malformed log is a one-line error with exit 2, never a panic.
#[test]
fn replay_rejects_garbage() {
    let tmp = tempfile::tempdir().unwrap();
    let inputs = inputs();
    let bytes = std::fs::read(fixtures().join("go-tdx-guest/ccel/ccel_data.dat")).unwrap();
    std::fs::write(tmp.path().join("cut.bin"), &bytes[..100]).unwrap();
    for file in [tmp.path().join("cut.bin"), inputs.stub.clone()] {
        let out = run(cvmkit(tmp.path()).arg("replay").arg(&file), false);
        assert_eq!(out.status.code(), Some(2));
        let err = stderr(&out);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains(&file.display().to_string()), "{err}");
    }
}

/// `cvmkit measure tpm` PCR 11 equals Debian's `systemd-measure calculate` (systemd 252) for the
/// same section files; the cvmkit-tpm crate's tests also boot the UKI with swtpm and compare
/// against the TPM's real PCR 4 and PCR 11.
#[test]
fn tpm_pcr11_equals_systemd_measure() {
    let inputs = inputs();
    let tmp = tempfile::tempdir().unwrap();
    let root = stage_example_root(tmp.path(), &inputs);
    let (initrd, uki) = build_example(tmp.path(), &root, &inputs, "zstd");
    let ours = json(&run(cvmkit(tmp.path()).args(["measure", "tpm", "--json", "--banks", "sha256,sha384", "--uki"]).arg(&uki), true));
    for bank in ["sha256", "sha384"] {
        let peer = run(
            Command::new(require_tool("/usr/lib/systemd/systemd-measure"))
                .arg("calculate")
                .arg(format!("--linux={}", inputs.kernel.display()))
                .arg(format!("--osrel={}", example_file("os-release").display()))
                .arg(format!("--cmdline={}", example_file("cmdline").display()))
                .arg(format!("--initrd={}", initrd.display()))
                .args([&format!("--bank={bank}"), "--phase=", "--json=short"]),
            true,
        );
        let peer: serde_json::Value = serde_json::from_slice(&peer.stdout).unwrap();
        let pcr11 = ours["registers"].as_array().unwrap().iter().find(|r| r["name"] == "PCR11" && r["bank"] == bank).unwrap();
        assert_eq!(pcr11["value"], peer[bank][0]["hash"], "{bank}");
        assert_eq!(pcr11["events"].as_array().unwrap().len(), 8, ".linux .osrel .cmdline .initrd: name + content each");
    }
}

/// `cvmkit measure tdx` MRTD for Debian's OVMF.fd equals dstack-mr's (Dstack-TEE/dstack @ 312dc605,
/// `dstack-mr measure --memory 2G --two-pass-add-pages {false,true}`, run by hand here; the
/// cvmkit-tdx tests hold the full peer comparison), for both page-add orders; without ACPI
/// blobs RTMR0 is left out with a note rather than printed as zeros.
#[test]
fn tdx_mrtd_equals_dstack_mr() {
    let inputs = inputs();
    let tmp = tempfile::tempdir().unwrap();
    let fw_sha = sha256_hex(&inputs.ovmf);
    if fw_sha != "7b456907dd0786d415999e801a1ac4637b8ed4d7cf5378cfc6edbe5e574dd773" {
        panic!("Debian's OVMF.fd changed (sha256 {fw_sha}): re-run dstack-mr on it and update the expected MRTDs here and in cvmkit-tdx/tests/peers.rs");
    }
    for (order, expected) in [
        ("interleaved", "4c7206f0f483c524f12c366c711e9049030a8d47c471ee5aa9c4999a08de4057fb887fed0744d5631a212967fb231c47"),
        ("two-pass", "acccbcc870a381adab0d3919d90a7f268ac3b0364771f202ed4bb4e892d045b33db3b32e6924cba830a724eed443f7e1"),
    ] {
        let doc = json(&run(
            cvmkit(tmp.path())
                .args(["measure", "tdx", "--json", "--page-order", order, "--firmware"])
                .arg(&inputs.ovmf)
                .arg("--kernel")
                .arg(&inputs.kernel)
                .args(["--cmdline", "console=ttyS0"]),
            true,
        ));
        let regs = doc["registers"].as_array().unwrap();
        assert_eq!(regs[0]["name"], "MRTD");
        assert_eq!(regs[0]["value"], expected, "{order}");
        assert!(regs.iter().all(|r| r["name"] != "RTMR0"));
        assert!(doc["notes"].as_array().unwrap().iter().any(|n| n.as_str().unwrap().contains("RTMR0 not computed")));
    }
    // Firmware without TDX metadata names the missing table.
    let out = run(cvmkit(tmp.path()).args(["measure", "tdx", "--firmware"]).arg(&inputs.stub).arg("--kernel").arg(&inputs.kernel), false);
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("TDX") || err.contains("e47a6535"), "{err}");
}

/// `cvmkit measure check` (the builder of the flake's golden checks) on real predictions: equal
/// measurements pass and write the report; a UKI with another command line fails, naming PCR 4
/// and PCR 11 and the one event of each that differs, with both digests, and writes nothing; a missing golden file is an
/// error carrying the refresh hint.
#[test]
fn measure_check_compares_against_golden_values() {
    let inputs = inputs();
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let root = stage_example_root(d, &inputs);
    let (initrd, uki) = build_example(d, &root, &inputs, "zstd");
    let tpm = |uki: &Path, out: &str| {
        let o = run(cvmkit(d).args(["measure", "tpm", "--json", "--banks", "sha256", "--uki"]).arg(uki), true);
        // As measurements.json: an array of documents.
        std::fs::write(d.join(out), format!("[{}]", String::from_utf8(o.stdout).unwrap())).unwrap();
        d.join(out)
    };
    let golden = tpm(&uki, "golden.json");
    let same = tpm(&uki, "same.json");

    let report = d.join("report.json");
    let o = run(cvmkit(d).args(["measure", "check"]).arg(&golden).arg(&same).arg("-o").arg(&report), true);
    assert!(stdout(&o).contains("golden: all 2 registers of tpm match"), "{}", stdout(&o));
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert_eq!(r["match"], true);

    // The same kernel and initrd with another command line.
    std::fs::write(d.join("cmdline2"), "console=ttyS0 quiet\n").unwrap();
    let uki2 = d.join("uki2.efi");
    run(
        cvmkit(d)
            .args(["uki", "--stub"])
            .arg(&inputs.stub)
            .arg("--linux")
            .arg(&inputs.kernel)
            .arg("--initrd")
            .arg(&initrd)
            .arg(format!("--cmdline=@{}", d.join("cmdline2").display()))
            .arg("--os-release")
            .arg(example_file("os-release"))
            .args(["--uname", "6.1.0-example", "-o"])
            .arg(&uki2),
        true,
    );
    let changed = tpm(&uki2, "changed.json");
    let report2 = d.join("report2.json");
    let o = output(
        cvmkit(d)
            .args(["measure", "check"])
            .arg(&golden)
            .arg(&changed)
            .arg("-o")
            .arg(&report2)
            .args(["--refresh-hint", "refresh with: make golden"]),
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let text = stdout(&o);
    // PCR 4 through the UKI's Authenticode hash, PCR 11 through the .cmdline section; the events
    // before them still match.
    assert!(text.contains("MISMATCH   tpm PCR4 sha256"), "{text}");
    assert!(text.contains("MISMATCH   tpm PCR11 sha256"), "{text}");
    let events: Vec<&str> = text.lines().filter(|l| l.trim_start().starts_with("event")).collect();
    assert_eq!(events.len(), 2, "{text}");
    assert!(events[0].contains("\"UKI (Authenticode)\""), "{text}");
    assert!(events[1].contains("\".cmdline content\""), "{text}");
    assert!(stderr(&o).contains("refresh with: make golden"), "{}", stderr(&o));
    assert!(!report2.exists(), "no report is written on a mismatch");

    // Another set of platforms is a difference, not a partial pass.
    let both = d.join("both.json");
    let snp = run(cvmkit(d).args(["measure", "snp", "--json", "--vcpus", "1", "--vcpu-type", "EPYC-v4", "--firmware"]).arg(&inputs.ovmf), true);
    let one: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&golden).unwrap()).unwrap();
    let snp: serde_json::Value = serde_json::from_slice(&snp.stdout).unwrap();
    std::fs::write(&both, serde_json::to_string(&serde_json::json!([one[0], snp])).unwrap()).unwrap();
    let o = output(cvmkit(d).args(["measure", "check", "--json"]).arg(&golden).arg(&both));
    assert_eq!(o.status.code(), Some(1));
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["match"], false);
    assert!(r["problems"][0].as_str().unwrap().contains("platforms differ"), "{r}");

    let o = output(
        cvmkit(d)
            .args(["measure", "check", "missing.json"])
            .arg(&same)
            .args(["--refresh-hint", "run nix run .#update-golden"]),
    );
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        stderr(&o).trim(),
        "error: golden file missing.json does not exist; run nix run .#update-golden"
    );
}

/// `-o FILE` writes the same JSON document `--json` prints (the Nix `measure` block's $out),
/// and nothing when the command fails.
#[test]
fn measure_output_file_equals_json_stdout() {
    let inputs = inputs();
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let root = stage_example_root(d, &inputs);
    let (_, uki) = build_example(d, &root, &inputs, "zstd");
    let o = run(cvmkit(d).args(["measure", "tpm", "--json", "-o", "m.json", "--uki"]).arg(&uki), true);
    assert_eq!(std::fs::read(d.join("m.json")).unwrap(), o.stdout);
    let o = output(cvmkit(d).args(["measure", "tpm", "-o", "bad.json", "--uki", "missing.efi"]));
    assert_eq!(o.status.code(), Some(2));
    assert!(!d.join("bad.json").exists());
}
