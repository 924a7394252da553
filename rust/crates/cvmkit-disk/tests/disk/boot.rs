use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cvmkit_disk::{DiskSpec, Format};

use crate::util::*;

/// Kills and reaps QEMU when dropped (the test may fail half-way).
struct Reaper(Option<Child>);

impl Drop for Reaper {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Boots `disk` (raw) with OVMF under TCG, no `-kernel`: the firmware must find the ESP and
/// `\EFI\BOOT\BOOTX64.EFI` on its own. Returns the serial log once `marker` shows up, QEMU
/// exits, or `timeout` passes.
fn boot(dir: &Path, disk: &Path, marker: &str, timeout: Duration) -> String {
    let log = dir.join("serial.log");
    let child = Command::new(require_tool("qemu-system-x86_64", "qemu-system-x86"))
        .args(["-machine", "q35", "-accel", "tcg", "-m", "512", "-smp", "1"])
        .arg("-bios")
        .arg(input("OVMF"))
        .arg("-drive")
        .arg(format!("if=virtio,format=raw,file={}", disk.display()))
        .args([
            "-display",
            "none",
            "-monitor",
            "none",
            "-no-reboot",
            "-nic",
            "none",
        ])
        .arg("-serial")
        .arg(format!("file:{}", log.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("cannot start qemu-system-x86_64");
    let mut qemu = Reaper(Some(child));
    let start = Instant::now();
    loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let exited = qemu.0.as_mut().unwrap().try_wait().unwrap().is_some();
        if text.contains(marker) || exited || start.elapsed() > timeout {
            drop(qemu);
            return std::fs::read_to_string(&log).unwrap_or_default();
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn raw_disk_boots_to_the_marker_under_ovmf() {
    let tmp = tempfile::tempdir().unwrap();
    // A data partition too, so the firmware has to pick the ESP out of several partitions.
    let spec = DiskSpec {
        data_size: Some(8 << 20),
        ..DiskSpec::new(example_uki(), "boot-test", 1_700_000_000)
    };
    let (disk, _) = build(&spec, Format::Raw, tmp.path(), "disk.raw");
    let start = Instant::now();
    let marker = format!("CVMKIT-BOOT-OK cmdline=[{CMDLINE}");
    let log = boot(tmp.path(), &disk, &marker, Duration::from_secs(240));
    assert!(
        log.contains(&marker),
        "marker not found after {:?}; serial log tail:\n{}",
        start.elapsed(),
        &log[log.len().saturating_sub(3000)..]
    );
    eprintln!(
        "booted to the marker in {:.1} s",
        start.elapsed().as_secs_f64()
    );
}
