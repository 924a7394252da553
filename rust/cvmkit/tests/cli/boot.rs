use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::util::*;

/// Puts `uki` on a fresh FAT ESP image as \EFI\BOOT\BOOTX64.EFI (the removable-media path OVMF
/// boots without any boot entry), using mkfs.vfat + mtools.
pub fn make_esp(dir: &Path, uki: &Path) -> std::path::PathBuf {
    let esp = dir.join("esp.img");
    let size_kib = std::fs::metadata(uki).unwrap().len() / 1024 + 8 * 1024;
    run(
        Command::new(require_tool("mkfs.vfat"))
            .arg("-C")
            .arg(&esp)
            .arg(size_kib.to_string()),
        true,
    );
    run(
        Command::new(require_tool("mmd"))
            .arg("-i")
            .arg(&esp)
            .args(["::/EFI", "::/EFI/BOOT"]),
        true,
    );
    run(
        Command::new(require_tool("mcopy"))
            .arg("-i")
            .arg(&esp)
            .arg(uki)
            .arg("::/EFI/BOOT/BOOTX64.EFI"),
        true,
    );
    esp
}

/// Boots `disk` with OVMF under TCG and returns the serial log. QEMU exits when the guest powers off.
pub fn boot_serial_log(dir: &Path, ovmf: &Path, disk: &Path, timeout: Duration) -> String {
    cvmkit_testutil::boot_serial_log(dir, ovmf, disk, None, timeout)
}

/// The example UKI built with `stub` boots under OVMF to the initrd's marker.
fn uki_boots_to_marker_under_ovmf(stub: std::path::PathBuf) {
    let mut inputs = inputs();
    inputs.stub = stub;
    let tmp = tempfile::tempdir().unwrap();
    let root = stage_example_root(tmp.path(), &inputs);
    let (_, uki) = build_example(tmp.path(), &root, &inputs, "zstd");
    let esp = make_esp(tmp.path(), &uki);
    let log = boot_serial_log(tmp.path(), &inputs.ovmf, &esp, Duration::from_secs(240));
    // The marker carries /proc/cmdline, which proves the stub passed our .cmdline to the kernel.
    assert!(
        log.contains("CVMKIT-BOOT-OK cmdline=[console=ttyS0 panic=-1"),
        "{}: marker not found; serial log tail:\n{}",
        inputs.stub.display(),
        &log[log.len().saturating_sub(3000)..]
    );
}

/// Debian bookworm's systemd-stub 252 (`STUB`).
#[test]
fn stub_252_uki_boots_to_marker_under_ovmf() {
    uki_boots_to_marker_under_ovmf(inputs().stub);
}

/// Debian trixie's systemd-stub 257 (`STUB_TRIXIE`), the generation of the flake's nixos-25.05
/// stub; fails naming scripts/fetch-inputs.sh when it was not fetched.
#[test]
fn stub_257_uki_boots_to_marker_under_ovmf() {
    uki_boots_to_marker_under_ovmf(cvmkit_testutil::stub_trixie());
}
