//! The QEMU version at which a TDX guest's kernel stops being patched before OVMF measures it
//! (QEMU commit a7542a38f399, first released in 10.2.0; see `QemuProfile` in cvmkit-tdx).
//! Both sides are checked against signify's Authenticode SHA-384 of the kernel file, computed
//! live on whatever kernel Debian ships (no recorded value to go stale).

use crate::util::*;

fn rtmr1_kernel_digest(dir: &std::path::Path, inputs: &Inputs, qemu: &str) -> String {
    let out = run(
        cvmkit(dir)
            .args(["measure", "tdx", "--json", "--ovmf-profile", "edk2-202411", "--qemu-version", qemu, "--firmware"])
            .arg(&inputs.ovmf)
            .arg("--kernel")
            .arg(&inputs.kernel)
            .args(["--cmdline", "console=ttyS0"]),
        true,
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rtmr1 = doc["registers"].as_array().unwrap().iter().find(|r| r["name"] == "RTMR1").expect("RTMR1");
    let first = &rtmr1["events"][0];
    assert_eq!(first["event_type"], "EV_EFI_BOOT_SERVICES_APPLICATION", "{first}");
    first["digest"].as_str().unwrap().to_string()
}

#[test]
fn kernel_is_measured_as_the_file_from_qemu_10_2_and_patched_before() {
    let inputs = inputs();
    let tmp = tempfile::tempdir().unwrap();
    let (_, file_sha384) = cvmkit_testutil::signify(&[&inputs.kernel]).remove(0);
    for qemu in ["10.2", "10.3", "11.0"] {
        assert_eq!(rtmr1_kernel_digest(tmp.path(), &inputs, qemu), file_sha384, "QEMU {qemu} measures the file as it is");
    }
    let patched = rtmr1_kernel_digest(tmp.path(), &inputs, "10.1");
    assert_ne!(patched, file_sha384, "QEMU 10.1 patches the setup header, so the digest differs from the file's");
    for qemu in ["9.2", "10.0"] {
        assert_eq!(rtmr1_kernel_digest(tmp.path(), &inputs, qemu), patched, "QEMU {qemu} patches like 10.1");
    }
    // The default is the current behaviour.
    let out = run(cvmkit(tmp.path()).args(["measure", "tdx", "--help"]), true);
    assert!(stdout(&out).contains("[default: 10.2]"), "{}", stdout(&out));
}
