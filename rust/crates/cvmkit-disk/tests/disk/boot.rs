use std::path::Path;
use std::time::{Duration, Instant};

use cvmkit_disk::{DiskSpec, Format};

use crate::util::*;

/// Boots `disk` (raw) with OVMF under TCG, no `-kernel`: the firmware must find the ESP and
/// `\EFI\BOOT\BOOTX64.EFI` on its own. Returns the serial log once `marker` shows up, QEMU
/// exits, or `timeout` passes.
fn boot(dir: &Path, disk: &Path, marker: &str, timeout: Duration) -> String {
    cvmkit_testutil::boot_serial_log(dir, &input("OVMF"), disk, Some(marker), timeout)
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
