use std::process::Command;

use crate::util::*;

/// The example's command line (examples/minimal/cmdline), which the step-by-step build reads too.
fn example_cmdline() -> String {
    std::fs::read_to_string(example_file("cmdline")).unwrap()
}

fn write_spec(dir: &std::path::Path, root: &std::path::Path, inputs: &Inputs, extra: &str) -> std::path::PathBuf {
    let spec = serde_json::json!({
        "schema": "cvmkit.image/v1",
        "name": "example",
        "source_date_epoch": 0,
        "initrd": { "trees": [root], "spec_files": [example_file("initrd.spec")], "compress": "zstd" },
        "uki": {
            "stub": inputs.stub, "kernel": inputs.kernel, "cmdline": example_cmdline(),
            "os_release": example_file("os-release"), "uname": "6.1.0-example"
        }
    });
    let mut text = spec.to_string();
    if !extra.is_empty() {
        text = text.replacen("\"name\"", &format!("{extra}, \"name\""), 1);
    }
    let path = dir.join("image.json");
    std::fs::write(&path, text).unwrap();
    path
}

/// `cvmkit build --spec` gives exactly the bytes of the step-by-step commands (`initrd`, `uki`)
/// on the same inputs: one implementation, two front doors.
#[test]
fn build_spec_equals_step_by_step() {
    let inputs = inputs();
    let tmp = tempfile::tempdir().unwrap();
    let root = stage_example_root(tmp.path(), &inputs);
    let (initrd, uki) = build_example(tmp.path(), &root, &inputs, "zstd");
    let spec = write_spec(tmp.path(), &root, &inputs, "");
    run(cvmkit(tmp.path()).arg("build").arg("--spec").arg(&spec).args(["--out", "out"]), true);
    assert_eq!(std::fs::read(tmp.path().join("out/initrd.img")).unwrap(), std::fs::read(initrd).unwrap());
    assert_eq!(std::fs::read(tmp.path().join("out/uki.efi")).unwrap(), std::fs::read(uki).unwrap());
}

/// A misspelt key is an error naming the spec, not a silently ignored setting.
#[test]
fn build_spec_rejects_unknown_keys() {
    let inputs = inputs();
    let tmp = tempfile::tempdir().unwrap();
    let root = stage_example_root(tmp.path(), &inputs);
    let spec = write_spec(tmp.path(), &root, &inputs, "\"sorce_date_epoch\": 5");
    let out = run(cvmkit(tmp.path()).arg("build").arg("--spec").arg(&spec).args(["--out", "out"]), false);
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("image.json") && err.contains("sorce_date_epoch"), "{err}");
    snapshot!(err);
    assert!(!tmp.path().join("out/uki.efi").exists());

    // Inside a `measure` list, the misspelt key and the item are named too.
    let spec = write_spec(tmp.path(), &root, &inputs, "\"measure\": [{\"platform\": \"tpm\"}, {\"platform\": \"tpm\", \"note\": []}]");
    let out = run(cvmkit(tmp.path()).arg("build").arg("--spec").arg(&spec).args(["--out", "out"]), false);
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("item 1: unknown field `note`"), "{err}");
    snapshot!(err);
}

/// With `disk` and `measure`, `cvmkit build` also writes the disk and measurements.json; each
/// equals what the standalone commands (`cvmkit disk`, `cvmkit measure …`) give for the same
/// inputs, so the Nix outputs and the CLI agree by construction and by test.
#[test]
fn build_spec_with_disk_and_measurements() {
    let inputs = inputs();
    let tmp = tempfile::tempdir().unwrap();
    let root = stage_example_root(tmp.path(), &inputs);
    let spec = write_spec(tmp.path(), &root, &inputs, "");
    let mut v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&spec).unwrap()).unwrap();
    v["disk"] = serde_json::json!({"format": "raw", "seed": "s1", "data_size": "8M"});
    v["measure"] = serde_json::json!([
        {"platform": "tpm", "notes": ["runtime: PCR 15 holds the manifest events"]},
        {"platform": "tdx", "firmware": inputs.ovmf, "qemu_version": "9.2"},
        {"platform": "snp", "firmware": inputs.ovmf, "vcpus": 2, "vcpu_type": "EPYC-Milan"}
    ]);
    std::fs::write(&spec, v.to_string()).unwrap();
    run(cvmkit(tmp.path()).arg("build").arg("--spec").arg(&spec).args(["--out", "out"]), true);
    let out = tmp.path().join("out");

    run(cvmkit(tmp.path()).args(["disk", "--seed", "s1", "--data-size", "8M", "--uki", "out/uki.efi", "-o", "disk.raw"]), true);
    assert!(std::fs::read(out.join("disk.raw")).unwrap() == std::fs::read(tmp.path().join("disk.raw")).unwrap(), "disk differs");

    let docs: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("measurements.json")).unwrap()).unwrap();
    let docs = docs.as_array().unwrap();
    assert_eq!(docs.len(), 3);
    let cli = |args: &[&str]| -> serde_json::Value {
        serde_json::from_slice(&run(cvmkit(tmp.path()).args(args), true).stdout).unwrap()
    };
    let ovmf = inputs.ovmf.to_str().unwrap();
    let expect = [
        cli(&["measure", "tpm", "--json", "--uki", "out/uki.efi"]),
        cli(&["measure", "tdx", "--json", "--qemu-version", "9.2", "--firmware", ovmf, "--uki", "out/uki.efi", "--disk-gpt", "out/disk.raw"]),
        cli(&["measure", "snp", "--json", "--vcpus", "2", "--vcpu-type", "EPYC-Milan", "--firmware", ovmf]),
    ];
    // A spec's notes follow the computed ones; other documents keep theirs alone.
    let mut tpm_notes = expect[0]["notes"].as_array().cloned().unwrap_or_default();
    tpm_notes.push("runtime: PCR 15 holds the manifest events".into());
    assert_eq!(docs[0]["notes"], serde_json::Value::Array(tpm_notes));
    assert_eq!(docs[1]["notes"], expect[1]["notes"]);
    // Both UKI documents name the systemd-stub they were predicted for (the version decides
    // what the stub measures).
    for d in &docs[..2] {
        let stub = d["notes"].as_array().unwrap().iter().filter_map(|n| n.as_str()).any(|n| n.contains("systemd-stub 25"));
        assert!(stub, "no stub version in {}", d["notes"]);
    }
    for (doc, want) in docs.iter().zip(&expect) {
        assert_eq!(doc["platform"], want["platform"]);
        assert_eq!(doc["registers"], want["registers"], "{}", doc["platform"]);
        // The output directory's own path does not leak into measurements.json.
        if doc["platform"] != "snp" {
            assert_eq!(doc["inputs"]["uki"]["path"], "uki.efi");
        }
    }
    // `cvmkit measure all`: one pass over the UKI for every platform, the same documents as
    // the separate commands, in measurements.json's shape.
    let all = cli(&["measure", "all", "--uki", "out/uki.efi", "--disk", "out/disk.raw", "--tdx-firmware", ovmf, "--snp-firmware", ovmf, "--vcpus", "2", "--vcpu-type", "EPYC-Milan"]);
    let all = all.as_array().unwrap();
    assert_eq!(all.len(), 3);
    assert_eq!(all[0], expect[0]);
    assert_eq!(all[1], cli(&["measure", "tdx", "--json", "--firmware", ovmf, "--uki", "out/uki.efi", "--disk", "out/disk.raw"]));
    assert_eq!(all[2], expect[2]);
    // Built again into another directory: the same measurements.json, byte for byte.
    run(cvmkit(tmp.path()).arg("build").arg("--spec").arg(&spec).args(["--out", "elsewhere/out2"]), true);
    assert_eq!(
        std::fs::read(out.join("measurements.json")).unwrap(),
        std::fs::read(tmp.path().join("elsewhere/out2/measurements.json")).unwrap()
    );
    // Built again into the same directory: every output replaced by the same bytes, and nothing
    // else left there (the files replaced are removed on threads of their own).
    let names = |dir: &std::path::Path| {
        let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap())
            .map(|e| (e.file_name().to_string_lossy().into_owned(), std::fs::read(e.path()).unwrap()))
            .collect();
        files.sort();
        files
    };
    let before = names(&out);
    run(cvmkit(tmp.path()).arg("build").arg("--spec").arg(&spec).args(["--out", "out"]), true);
    let after = names(&out);
    assert_eq!(
        after.iter().map(|f| f.0.as_str()).collect::<Vec<_>>(),
        ["disk.raw", "initrd.img", "measurements.json", "sbom.cdx.json", "uki.efi"]
    );
    assert!(before == after, "a rebuild changed an output");
}

/// `"kernel_hashes": true` on the snp item predicts QEMU's direct boot of the image's own kernel,
/// built initrd and command line: the same LAUNCH_DIGEST as sev-snp-measure (PyPI, run here) on
/// those files, with the AmdSev OVMF suffix that sev-snp-measure's own tests use (cvmkit-ovmf's
/// fixture: the last 4 KiB of an edk2-stable202405 OvmfPkg/AmdSev OVMF.fd, with the
/// SNP_KERNEL_HASHES page; Debian's OVMF.fd has none).
#[test]
fn build_spec_snp_kernel_hashes_equals_sev_snp_measure() {
    let inputs = inputs();
    let tmp = tempfile::tempdir().unwrap();
    let root = stage_example_root(tmp.path(), &inputs);
    let amdsev = repo_root().join("rust/crates/cvmkit-ovmf/tests/fixtures/ovmf_AmdSev_suffix.bin");
    let spec = write_spec(tmp.path(), &root, &inputs, "");
    let mut v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&spec).unwrap()).unwrap();
    v["measure"] = serde_json::json!([
        {"platform": "snp", "firmware": amdsev, "vcpus": 2, "vcpu_type": "EPYC-Milan", "kernel_hashes": true},
        {"platform": "snp", "firmware": amdsev, "vcpus": 2, "vcpu_type": "EPYC-Milan"}
    ]);
    std::fs::write(&spec, v.to_string()).unwrap();
    run(cvmkit(tmp.path()).arg("build").arg("--spec").arg(&spec).args(["--out", "out"]), true);
    let docs: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(tmp.path().join("out/measurements.json")).unwrap()).unwrap();
    let doc = &docs[0];
    let cmdline = example_cmdline();
    let cmdline = cmdline.as_str();
    assert_eq!(doc["inputs"]["initrd"]["path"], "initrd.img");
    assert_eq!(doc["inputs"]["kernel"]["path"], inputs.kernel.to_str().unwrap());
    assert_eq!(doc["inputs"]["append"]["value"], cmdline, "{}", doc["inputs"]);
    assert!(doc["notes"].as_array().unwrap().iter().any(|n| n.as_str().unwrap().contains("kernel-hashes=on")), "{}", doc["notes"]);

    let peer = |direct: bool| {
        let mut cmd = Command::new(venv_tool("sev-snp-measure"));
        cmd.args(["--mode", "snp", "--vcpus", "2", "--vcpu-type", "EPYC-Milan", "--ovmf"]).arg(&amdsev);
        if direct {
            cmd.arg("--kernel").arg(&inputs.kernel).arg("--initrd").arg(tmp.path().join("out/initrd.img")).args(["--append", cmdline]);
        }
        stdout(&run(&mut cmd, true)).trim().to_owned()
    };
    let with_hashes = peer(true);
    assert_eq!(doc["registers"][0]["name"], "LAUNCH_DIGEST");
    assert_eq!(doc["registers"][0]["value"], with_hashes.as_str());
    // Without kernel_hashes, the firmware alone: another digest, again the peer's.
    assert_eq!(docs[1]["registers"][0]["value"], peer(false).as_str());
    assert_ne!(with_hashes, peer(false));

    // Debian's OVMF.fd has no kernel-hashes table; and kernel_hashes is for snp only.
    for (item, want) in [
        (serde_json::json!({"platform": "snp", "firmware": inputs.ovmf, "kernel_hashes": true}), "SNP_KERNEL_HASHES"),
        (serde_json::json!({"platform": "tdx", "firmware": inputs.ovmf, "kernel_hashes": true}), "is for snp only"),
        (serde_json::json!({"platform": "tpm", "tee": "tdx"}), "is for a tpm item with target gcp"),
        (serde_json::json!([{"platform": "tpm", "target": "gcp"}, {"platform": "tdx", "target": "gcp"}, {"platform": "snp", "target": "gcp"}]), "needs \"tee\""),
    ] {
        v["measure"] = item;
        std::fs::write(&spec, v.to_string()).unwrap();
        let out = run(cvmkit(tmp.path()).arg("build").arg("--spec").arg(&spec).args(["--out", "bad"]), false);
        assert!(stderr(&out).contains(want), "{}", stderr(&out));
    }
}

/// `--print-schema` prints the committed JSON Schema (nix/cvmkit.image.v1.schema.json, which the
/// Nix library tests validate mkSpec against); a value outside one of the spec's enums is a
/// one-line error naming the spec and the value, before anything is written; a qcow2 disk is
/// built like the others.
#[test]
fn build_schema_enums_and_qcow2() {
    let inputs = inputs();
    let tmp = tempfile::tempdir().unwrap();
    let out = run(cvmkit(tmp.path()).args(["build", "--print-schema"]), true);
    let committed = std::fs::read_to_string(repo_root().join("nix/cvmkit.image.v1.schema.json")).unwrap();
    assert!(stdout(&out) == committed, "cvmkit build --print-schema differs from nix/cvmkit.image.v1.schema.json");

    let root = stage_example_root(tmp.path(), &inputs);
    let spec = write_spec(tmp.path(), &root, &inputs, "");
    let mut v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&spec).unwrap()).unwrap();
    v["disk"] = serde_json::json!({"format": "vmdk"});
    std::fs::write(&spec, v.to_string()).unwrap();
    let bad = run(cvmkit(tmp.path()).arg("build").arg("--spec").arg(&spec).args(["--out", "out"]), false);
    assert_eq!(bad.status.code(), Some(2));
    let err = stderr(&bad);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("image.json") && err.contains("unknown variant `vmdk`") && err.contains("qcow2"), "{err}");
    snapshot!(err);
    assert!(!tmp.path().join("out").exists());

    v["disk"] = serde_json::json!({"format": "qcow2", "data_size": "8M"});
    std::fs::write(&spec, v.to_string()).unwrap();
    run(cvmkit(tmp.path()).arg("build").arg("--spec").arg(&spec).args(["--out", "out"]), true);
    let disk = std::fs::read(tmp.path().join("out/disk.qcow2")).unwrap();
    assert_eq!(&disk[..4], b"QFI\xfb");
}

/// On a cloud, a document predicts only what the image decides and names the rest under
/// `cloud`: nothing is computed from the build's firmware (none is given: the cloud does not
/// boot it). What it does predict equals the QEMU prediction of the same image where the boot
/// path is the same: RTMR1/RTMR2 (the UKI from the disk, as the GCE logs show: tests of
/// cvmkit-tdx), PCR 11 (systemd-stub), PCR 4 on GCE without TDX; in a GCE TD the UKI's event
/// moves to PCR 2 (cvmkit-tpm's tests/gce.rs against real GCE logs).
#[test]
fn build_spec_cloud_targets_predict_only_the_image() {
    let inputs = inputs();
    let tmp = tempfile::tempdir().unwrap();
    let root = stage_example_root(tmp.path(), &inputs);
    let spec = write_spec(tmp.path(), &root, &inputs, "");
    let mut v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&spec).unwrap()).unwrap();
    v["disk"] = serde_json::json!({"format": "raw", "seed": "s1"});
    v["measure"] = serde_json::json!([
        {"platform": "tpm"},
        {"platform": "tdx", "firmware": inputs.ovmf},
        {"platform": "tpm", "target": "gcp", "tee": "tdx"},
        {"platform": "tdx", "target": "gcp"},
        {"platform": "snp", "target": "gcp", "kernel_hashes": true},
        {"platform": "tpm", "target": "azure"},
        {"platform": "tdx", "target": "azure"},
        {"platform": "snp", "target": "azure"},
        {"platform": "tpm", "target": "gcp", "tee": "snp"}
    ]);
    std::fs::write(&spec, v.to_string()).unwrap();
    run(cvmkit(tmp.path()).arg("build").arg("--spec").arg(&spec).args(["--out", "out"]), true);
    let docs: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(tmp.path().join("out/measurements.json")).unwrap()).unwrap();
    let docs = docs.as_array().unwrap();
    let names = |d: &serde_json::Value| {
        let mut n = d["registers"].as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap().to_string()).collect::<Vec<_>>();
        n.dedup();
        n
    };
    let reg = |d: &serde_json::Value, n: &str| d["registers"].as_array().unwrap().iter().find(|r| r["name"] == n && r["bank"] != "sha1").cloned().unwrap();
    let (qemu_tpm, qemu_tdx) = (&docs[0], &docs[1]);
    for d in &docs[2..] {
        assert!(d["inputs"].get("firmware").is_none(), "a cloud document names no firmware: {d}");
        assert!(!d["cloud"].as_array().unwrap().is_empty(), "{d}");
        assert_eq!(d["inputs"]["target"]["value"].as_str().map(|t| t != "qemu"), Some(true));
        assert!(!d["notes"].as_array().unwrap().is_empty());
    }
    // Azure TPM: PCR 11 only, equal to QEMU's; PCR 0-7 the cloud's.
    assert_eq!(names(&docs[5]), ["PCR11"]);
    assert_eq!(reg(&docs[5], "PCR11"), reg(qemu_tpm, "PCR11"));
    assert_eq!(docs[5]["cloud"], serde_json::json!(["PCR0", "PCR1", "PCR2", "PCR3", "PCR4", "PCR5", "PCR6", "PCR7"]));
    // GCP TPM in a TD: PCR 2 (GPT, UKI, .linux), PCR 4 and 5 (fixed), PCR 11; without TDX PCR 4
    // is QEMU's (no failed boot option in either), PCR 5 holds the GPT.
    let (td, vm) = (&docs[2], &docs[8]);
    assert_eq!(names(td), ["PCR2", "PCR4", "PCR5", "PCR11"]);
    assert_eq!(td["cloud"], serde_json::json!(["PCR0", "PCR1", "PCR3", "PCR6", "PCR7"]));
    assert_eq!(names(vm), ["PCR4", "PCR5", "PCR11"]);
    assert_eq!(vm["cloud"], serde_json::json!(["PCR0", "PCR1", "PCR2", "PCR3", "PCR6", "PCR7"]));
    assert_eq!(reg(vm, "PCR4"), reg(qemu_tpm, "PCR4"));
    let events = |r: serde_json::Value| r["events"].as_array().unwrap().iter().map(|e| e["digest"].clone()).collect::<Vec<_>>();
    assert_eq!(events(reg(td, "PCR2"))[2..], events(reg(qemu_tpm, "PCR4"))[2..], "the UKI and .linux, moved to PCR 2");
    assert_eq!(events(reg(td, "PCR2"))[1], events(reg(vm, "PCR5"))[1], "the GPT");
    assert_eq!(events(reg(td, "PCR4")).len(), 2);
    for d in [td, vm] {
        assert_eq!(reg(d, "PCR11"), reg(qemu_tpm, "PCR11"));
    }
    // `cvmkit measure tpm --firmware-model … --disk` gives the same registers.
    for (model, doc) in [("gce-td", td), ("gce", vm)] {
        let out = run(cvmkit(tmp.path()).args(["measure", "tpm", "--json", "--uki", "out/uki.efi", "--disk", "out/disk.raw", "--firmware-model", model]), true);
        let cli: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(cli["registers"], doc["registers"], "{model}");
    }
    let out = run(cvmkit(tmp.path()).args(["measure", "tpm", "--uki", "out/uki.efi", "--disk", "out/disk.raw"]), false);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--disk is for --firmware-model gce"), "{}", stderr(&out));
    // GCP TDX: RTMR1/RTMR2 as QEMU's prediction of the same disk boot; MRTD/RTMR0 the cloud's.
    assert_eq!(names(&docs[3]), ["RTMR1", "RTMR2"]);
    assert_eq!(reg(&docs[3], "RTMR1"), reg(qemu_tdx, "RTMR1"));
    assert_eq!(reg(&docs[3], "RTMR2"), reg(qemu_tdx, "RTMR2"));
    assert_eq!(docs[3]["cloud"], serde_json::json!(["MRTD", "RTMR0"]));
    // SNP anywhere but QEMU, TDX on Azure: nothing of the image in the launch measurement.
    for d in [&docs[4], &docs[6], &docs[7]] {
        assert!(names(d).is_empty(), "{d}");
    }
}

/// The GCP TD vTPM profile rests on a real GCE TDX boot of a systemd-stub UKI (dstack's
/// "GCE Virtual Firmware v2" log, testdata/dstack/tpm_eventlog.bin): Google's firmware in a TD
/// puts the GPT and the UKI's (and the kernel's) Authenticode into PCR 2, not PCR 4/5 as OVMF
/// does (and as it does itself without TDX: cvmkit-tpm's tests/gce.rs); PCR 11 holds
/// systemd-stub's section events.
#[test]
fn gcp_vtpm_profile_matches_a_real_gce_uki_boot() {
    let tmp = tempfile::tempdir().unwrap();
    let out = run(cvmkit(tmp.path()).args(["replay", "--json"]).arg(fixtures().join("dstack/tpm_eventlog.bin")), true);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let types = |pcr: &str| -> Vec<String> {
        let r = v["registers"].as_array().unwrap().iter().find(|r| r["name"] == pcr && r["bank"] == "sha256").unwrap();
        r["events"].as_array().unwrap().iter().map(|e| e["event_type"].as_str().unwrap_or("").to_string()).collect()
    };
    assert_eq!(types("PCR2"), ["EV_SEPARATOR", "EV_EFI_GPT_EVENT", "EV_EFI_BOOT_SERVICES_APPLICATION", "EV_EFI_BOOT_SERVICES_APPLICATION"]);
    assert_eq!(types("PCR4"), ["EV_EFI_ACTION", "EV_SEPARATOR"]);
    assert!(!types("PCR5").iter().any(|t| t == "EV_EFI_GPT_EVENT"));
    let pcr11 = types("PCR11");
    assert!(!pcr11.is_empty() && pcr11.iter().all(|t| t == "EV_IPL"), "{pcr11:?}");
}
