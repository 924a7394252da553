//! Real inputs, the example UKI (built once per test run with cvmkit-initrd and cvmkit-uki),
//! host tools, and helpers to pick a disk apart.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

pub use cvmkit_testutil::{input, require_tool, workspace_root};

use cvmkit_disk::{write_disk_file, DiskReport, DiskSpec, Format};

/// Runs a command (bounded in time), panicking with its output if it fails.
pub fn run(cmd: &mut Command) -> Output {
    let out = cvmkit_testutil::output_deadline(cmd, cvmkit_testutil::RUN_TIMEOUT);
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// stdout and stderr of a successful command, as text.
pub fn run_text(cmd: &mut Command) -> String {
    let out = run(cmd);
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The kernel command line of the example UKI. `no_timer_check` (as in modules/qemu.nix): under TCG
/// on a busy host the kernel's IO-APIC timer probe can miss its ticks and panic, as it once did in CI.
pub const CMDLINE: &str = "console=ttyS0 panic=-1 no_timer_check";

/// The example UKI: the Debian kernel and systemd-stub with a busybox initramfs whose /init
/// (examples/minimal/init) prints `CVMKIT-BOOT-OK cmdline=[…]` and powers off. Built once per
/// test process into Cargo's scratch directory for integration tests.
pub fn example_uki() -> &'static Path {
    static UKI: OnceLock<PathBuf> = OnceLock::new();
    UKI.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("cvmkit-disk-example");
        std::fs::create_dir_all(&dir).unwrap();
        let init = workspace_root().join("examples/minimal/init");
        let spec_text = cvmkit_testutil::initrd_spec(&input("BUSYBOX"), &init);
        let spec_path = dir.join("initrd.spec");
        let spec = cvmkit_initrd::Spec::parse(&spec_text, &spec_path).expect("initrd spec");
        let mut initrd = Vec::new();
        cvmkit_initrd::build(
            None,
            Some(&spec),
            &cvmkit_initrd::Options::default(),
            cvmkit_initrd::Compression::zstd(),
            &mut initrd,
        )
        .expect("build initrd");
        let stub = std::fs::read(input("STUB")).unwrap();
        let kernel = std::fs::read(input("KERNEL")).unwrap();
        let parts = cvmkit_uki::UkiParts {
            linux: &kernel,
            initrds: vec![&initrd],
            cmdline: Some(CMDLINE),
            os_release: Some(b"ID=cvmkit-example\nNAME=\"cvmkit example\"\n"),
            uname: Some("6.1.0-example"),
            ..cvmkit_uki::UkiParts::default()
        };
        let uki = cvmkit_uki::build_uki(&stub, &parts, 0).expect("build UKI");
        // Written under a unique name, then renamed: another test process may be doing the same.
        let path = dir.join("uki.efi");
        let tmp = tempfile::NamedTempFile::new_in(&dir).unwrap();
        std::fs::write(tmp.path(), uki).unwrap();
        tmp.persist(&path).unwrap();
        path
    })
}

/// A file of `len` deterministic pseudo-random bytes with a zero hole in the middle, standing in
/// for a filesystem image.
pub fn fake_image(path: &Path, len: usize, seed: u32) -> PathBuf {
    let mut x = seed.wrapping_mul(2_654_435_761) | 1;
    let mut data: Vec<u8> = (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect();
    let hole = len / 4..len / 2;
    data[hole].fill(0);
    std::fs::write(path, data).unwrap();
    path.to_path_buf()
}

/// The spec most tests use: the example UKI, two root images (one not a multiple of 512), a
/// 16 MiB data partition.
pub fn full_spec(dir: &Path) -> DiskSpec {
    let roots = vec![
        fake_image(&dir.join("root-a.img"), 3 << 20, 1),
        fake_image(&dir.join("root-b.img"), 1_000_001, 2),
    ];
    DiskSpec {
        roots,
        data_size: Some(16 << 20),
        ..DiskSpec::new(example_uki(), "cvmkit-test", 1_700_000_000)
    }
}

/// Writes `spec` in `format` to `dir/name`.
pub fn build(spec: &DiskSpec, format: Format, dir: &Path, name: &str) -> (PathBuf, DiskReport) {
    let path = dir.join(name);
    let report = write_disk_file(spec, format, &path).unwrap_or_else(|e| panic!("{format}: {e}"));
    (path, report)
}

pub fn sha256(path: &Path) -> String {
    use sha2::{Digest, Sha256};
    let data = std::fs::read(path).unwrap();
    Sha256::digest(&data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
