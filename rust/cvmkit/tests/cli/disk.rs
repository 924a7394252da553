use std::process::Command;

use crate::util::*;

/// `cvmkit disk` writes every format, byte-identical under a perturbed clock, umask, TZ and
/// locale; the raw disk passes `sfdisk --verify` (util-linux) and its
/// ESP holds the UKI;
/// TDX disk-boot prediction reads the GPT of the written disk.
#[test]
fn disk_formats_reproducible_and_valid() {
    let inputs = inputs();
    let tmp = tempfile::tempdir().unwrap();
    let root = stage_example_root(tmp.path(), &inputs);
    let (_, uki) = build_example(tmp.path(), &root, &inputs, "zstd");
    for format in ["raw", "gcp", "vhd", "qcow2"] {
        // The second build runs under another clock (faketime), umask, TZ and locale.
        let build = |name: &str, perturb: bool| {
            let out = tmp.path().join(name);
            let mut cmd = if perturb {
                let mut c = Command::new(require_tool("faketime"));
                c.args(["2031-07-04 05:06:07", "sh", "-c", "umask 077; exec \"$0\" \"$@\"", env!("CARGO_BIN_EXE_cvmkit")])
                    .current_dir(tmp.path())
                    .env("TZ", "Asia/Kathmandu")
                    .env("LC_ALL", "C.UTF-8");
                c
            } else {
                cvmkit(tmp.path())
            };
            run(
                cmd.env("SOURCE_DATE_EPOCH", "1700000000")
                    .args(["disk", "--seed", "example", "--data-size", "16M", "--format", format, "--uki"])
                    .arg(&uki)
                    .arg("-o")
                    .arg(&out),
                true,
            );
            std::fs::read(out).unwrap()
        };
        let a = build(&format!("a.{format}"), false);
        let b = build(&format!("b.{format}"), true);
        assert!(a == b, "{format}: two builds differ");
    }
    // Past two 16 MiB gzip members per core: compressed on one core (taskset) or all, the same
    // GCP archive.
    let mut x: u32 = 0x9E37_79B9;
    let big: Vec<u8> = (0..40 << 20).map(|i: u32| { x ^= x << 13; x ^= x >> 17; x ^= x << 5; if i % 3 == 0 { x as u8 } else { b'a' + (i % 26) as u8 } }).collect();
    std::fs::write(tmp.path().join("big.img"), big).unwrap();
    let gcp = |name: &str, one_core: bool| {
        let mut cmd = if one_core {
            let mut c = Command::new(require_tool("taskset"));
            c.args(["-c", "0", env!("CARGO_BIN_EXE_cvmkit")]).current_dir(tmp.path());
            c
        } else {
            cvmkit(tmp.path())
        };
        run(cmd.args(["disk", "--format", "gcp", "--root", "big.img", "--uki"]).arg(&uki).args(["-o", name]), true);
        std::fs::read(tmp.path().join(name)).unwrap()
    };
    assert!(gcp("all.tar.gz", false) == gcp("one.tar.gz", true), "the GCP archive depends on the core count");

    let raw = tmp.path().join("a.raw");
    let verify = run(Command::new(require_tool("sfdisk")).arg("--verify").arg(&raw), true);
    assert!(stdout(&verify).contains("No errors detected"), "{}", stdout(&verify));
    let json: serde_json::Value = serde_json::from_slice(
        &run(Command::new(require_tool("sfdisk")).arg("--json").arg(&raw), true).stdout,
    )
    .unwrap();
    let parts = json["partitiontable"]["partitions"].as_array().unwrap();
    assert_eq!(parts[0]["type"], "C12A7328-F81F-11D2-BA4B-00A0C93EC93B", "ESP first");
    assert_eq!(parts.len(), 2, "ESP + data");

    // The disk-boot prediction measures this disk's GPT (EV_EFI_GPT_EVENT) in RTMR1.
    let doc: serde_json::Value = serde_json::from_slice(
        &run(
            cvmkit(tmp.path()).args(["measure", "tdx", "--json", "--firmware"]).arg(&inputs.ovmf).arg("--uki").arg(&uki).arg("--disk-gpt").arg(&raw),
            true,
        )
        .stdout,
    )
    .unwrap();
    let rtmr1 = doc["registers"].as_array().unwrap().iter().find(|r| r["name"] == "RTMR1").unwrap();
    assert!(rtmr1["events"].as_array().unwrap().iter().any(|e| e["event_type"] == "EV_EFI_GPT_EVENT"), "{rtmr1}");
}

/// A UKI too large for the requested ESP: one-line error, exit 2, no output file.
#[test]
fn disk_uki_too_big_for_esp() {
    let inputs = inputs();
    let tmp = tempfile::tempdir().unwrap();
    // A real EFI application (the stub) with 50 MiB of trailing data.
    let big = tmp.path().join("big.efi");
    let mut data = std::fs::read(&inputs.stub).unwrap();
    data.resize(data.len() + (50 << 20), 0);
    std::fs::write(&big, data).unwrap();
    let out2 = run(cvmkit(tmp.path()).args(["disk", "--esp-size", "40M", "--uki"]).arg(&big).args(["-o", "x.raw"]), false);
    // A missing UKI names the file.
    let out = run(cvmkit(tmp.path()).args(["disk", "--uki", "no-such.efi", "-o", "x.raw"]), false);
    assert!(stderr(&out).contains("no-such.efi"), "{}", stderr(&out));
    snapshot!(stderr(&out));
    let _ = &inputs;
    for o in [&out, &out2] {
        assert_eq!(o.status.code(), Some(2));
        assert_eq!(stderr(o).lines().count(), 1, "{}", stderr(o));
    }
    assert!(stderr(&out2).contains("does not fit"), "{}", stderr(&out2));
    assert!(!tmp.path().join("x.raw").exists());
}

/// A file that is not an EFI application is refused before anything is written (it used to
/// give exit 0 and a 69 MB disk whose firmware would refuse to boot it).
#[test]
fn disk_refuses_a_uki_that_is_not_an_efi_application() {
    let inputs = inputs();
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("garbage.bin"), vec![0x5au8; 1 << 20]).unwrap();
    let out = run(cvmkit(tmp.path()).args(["disk", "--uki", "garbage.bin", "-o", "x.raw"]), false);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("UKI garbage.bin: not a PE image"), "{err}");
    snapshot!(err);
    // A PE image of another subsystem: the stub with Subsystem (optional header +68) set to 3
    // (Windows console).
    let mut stub = std::fs::read(&inputs.stub).unwrap();
    let e_lfanew = u32::from_le_bytes(stub[0x3c..0x40].try_into().unwrap()) as usize;
    let at = e_lfanew + 4 + 20 + 68;
    stub[at..at + 2].copy_from_slice(&3u16.to_le_bytes());
    std::fs::write(tmp.path().join("console.exe"), stub).unwrap();
    let out = run(cvmkit(tmp.path()).args(["disk", "--uki", "console.exe", "-o", "x.raw"]), false);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("PE subsystem 3 is not an EFI application"), "{}", stderr(&out));
    let _ = &inputs;
    assert!(!tmp.path().join("x.raw").exists());
}
