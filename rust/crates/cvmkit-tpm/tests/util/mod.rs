//! Real inputs, the UKI under test, and the peer tools shared by the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

#[allow(unused_imports)]
pub use cvmkit_testutil::{hex, initrd_spec, input, require_tool, run, unhex, workspace_root};

/// The guest's `/init`: mounts proc, sysfs and securityfs, prints the firmware event log
/// (base64) and the PCRs between markers on the serial console, then powers off.
pub const INIT: &str = r#"#!/bin/sh
B=/bin/busybox
$B mount -t proc proc /proc
$B mount -t sysfs sysfs /sys
$B mount -t securityfs securityfs /sys/kernel/security
# Keep kernel messages off the console while the log is printed.
$B dmesg -n 1
echo "CVMKIT-TPM-LOG-BEGIN"
$B base64 /sys/kernel/security/tpm0/binary_bios_measurements
echo "CVMKIT-TPM-LOG-END"
for bank in sha1 sha256 sha384 sha512; do
  for pcr in 4 11; do
    f=/sys/class/tpm/tpm0/pcr-$bank/$pcr
    [ -r $f ] && echo "CVMKIT-PCR $bank $pcr $($B cat $f)"
  done
done
echo "CVMKIT-TPM-DONE"
$B poweroff -f
"#;

/// The test initramfs (gzip) built with cvmkit-initrd in `dir`.
pub fn build_initrd(dir: &Path) -> Vec<u8> {
    let init = dir.join("init");
    std::fs::write(&init, INIT).unwrap();
    let spec_path = dir.join("initrd.spec");
    let spec_text = initrd_spec(&input("BUSYBOX"), &init);
    std::fs::write(&spec_path, &spec_text).unwrap();
    let spec = cvmkit_initrd::Spec::parse(&spec_text, &spec_path).expect("initrd spec");
    let mut out = Vec::new();
    cvmkit_initrd::build(
        None,
        Some(&spec),
        &cvmkit_initrd::Options::default(),
        cvmkit_initrd::Compression::gzip(),
        &mut out,
    )
    .expect("build initrd");
    out
}

/// The command line the boot test's UKI carries. The trailing newline (as in the example image
/// specs) is in `.cmdline`, and so in PCR 11; systemd-stub 257 drops it from the `LoadOptions` it
/// passes the kernel (`mangle_stub_cmdline()`), which the kernel measures into PCR 9.
/// `no_timer_check` keeps the TCG boot from panicking in the kernel's timer probe on a busy host.
pub const CMDLINE: &str = "console=ttyS0 panic=-1 no_timer_check\n";

/// os-release for the UKI's `.osrel`.
pub const OS_RELEASE: &str = "ID=cvmkit-test\nNAME=\"cvmkit TPM test\"\nVERSION_ID=1\n";

/// The real systemd-stubs the tests run against, each in tests of its own (`stub_252_…`,
/// `stub_257_…`) so that a failure names the stub.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stub {
    /// Debian bookworm's systemd-boot-efi 252 (`STUB`).
    V252,
    /// Debian trixie's systemd-boot-efi 257 (`STUB_TRIXIE`), the generation of the flake's
    /// nixos-25.05 stub.
    V257,
}

impl Stub {
    /// The stub's path (fails naming scripts/fetch-inputs.sh / scripts/setup.sh when missing).
    pub fn path(self) -> PathBuf {
        match self {
            Stub::V252 => input("STUB"),
            Stub::V257 => cvmkit_testutil::stub_trixie(),
        }
    }

    /// The systemd major version the stub must report in `.sdmagic`.
    pub fn major(self) -> u32 {
        match self {
            Stub::V252 => 252,
            Stub::V257 => 257,
        }
    }

    /// The stub's bytes, after checking that its `.sdmagic` names the expected major version
    /// (read with objcopy, not the crate under test).
    pub fn read(self) -> Vec<u8> {
        let path = self.path();
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("sdmagic");
        run(Command::new(require_tool("objcopy", "binutils"))
            .args(["-O", "binary", "--only-section=.sdmagic"])
            .arg(&path)
            .arg(&out));
        let text = String::from_utf8_lossy(&std::fs::read(&out).unwrap()).into_owned();
        let want = format!("#### LoaderInfo: systemd-stub {}.", self.major());
        assert!(
            text.starts_with(&want),
            "{} has .sdmagic {:?}, not systemd-stub {}: rerun scripts/fetch-inputs.sh (scripts/setup.sh)",
            path.display(),
            text.trim_end_matches('\0'),
            self.major()
        );
        std::fs::read(path).unwrap()
    }
}

/// A UKI from the real stub and kernel: `.osrel .cmdline .uname .initrd .linux`.
pub fn build_uki(
    stub: Stub,
    initrd: &[u8],
    linux_virtual_size: cvmkit_uki::LinuxVirtualSize,
) -> Vec<u8> {
    let stub = stub.read();
    let kernel = std::fs::read(input("KERNEL")).unwrap();
    let parts = cvmkit_uki::UkiParts {
        linux: &kernel,
        initrds: vec![initrd],
        cmdline: Some(CMDLINE),
        os_release: Some(OS_RELEASE.as_bytes()),
        uname: Some("6.1.0-cvmkit"),
        ..cvmkit_uki::UkiParts::default()
    };
    let opts = cvmkit_uki::UkiOptions::default().with_linux_virtual_size(linux_virtual_size);
    cvmkit_uki::build_uki_with(&stub, &parts, 0, &opts).expect("build UKI")
}

/// The content systemd-stub reads for `name` (raw data cut to VirtualSize, or zero-filled up to
/// it), written to `dir/name` for systemd-measure.
pub fn extract_section(uki: &[u8], name: &str, dir: &Path) -> Option<PathBuf> {
    let pe = cvmkit_pe::PeFile::parse(uki).unwrap();
    let s = pe.section_by_name(name)?;
    let mut data = pe.section_virtual_data(s).unwrap().to_vec();
    data.resize(s.header.virtual_size as usize, 0); // the loader's zero fill
    let path = dir.join(name.trim_start_matches('.'));
    std::fs::write(&path, data).unwrap();
    Some(path)
}

/// `systemd-measure calculate --phase=` (sections only) for the sections of `uki` that
/// systemd-measure 252 knows; returns (bank name, hex value) pairs.
pub fn systemd_measure(uki: &[u8], dir: &Path) -> Vec<(String, String)> {
    systemd_measure_with(uki, dir, &[])
}

/// [`systemd_measure`] with some sections taken from the given files instead of the UKI.
pub fn systemd_measure_with(
    uki: &[u8],
    dir: &Path,
    files: &[(&str, PathBuf)],
) -> Vec<(String, String)> {
    systemd_measure_phase(uki, dir, files, "")
}

/// `systemd-measure calculate --phase=PHASE` (`a:b:c`; empty for sections only).
pub fn systemd_measure_phase(
    uki: &[u8],
    dir: &Path,
    files: &[(&str, PathBuf)],
    phase: &str,
) -> Vec<(String, String)> {
    let tool = require_tool("systemd-measure", "systemd");
    let mut cmd = Command::new(tool);
    cmd.arg("calculate");
    for name in [
        ".linux", ".osrel", ".cmdline", ".initrd", ".splash", ".dtb", ".pcrpkey",
    ] {
        let path = match files.iter().find(|(n, _)| *n == name) {
            Some((_, p)) => Some(p.clone()),
            None => extract_section(uki, name, dir),
        };
        if let Some(p) = path {
            cmd.arg(format!(
                "--{}={}",
                name.trim_start_matches('.'),
                p.display()
            ));
        }
    }
    cmd.args([
        "--bank=sha1",
        "--bank=sha256",
        "--bank=sha384",
        "--json=short",
    ]);
    cmd.arg(format!("--phase={phase}"));
    let out = run(&mut cmd);
    let json: serde_json::Value = serde_json::from_str(&out).expect("systemd-measure JSON");
    let mut values = Vec::new();
    for (bank, entries) in json.as_object().expect("object") {
        let entries = entries.as_array().expect("array");
        assert_eq!(entries.len(), 1, "{out}");
        assert_eq!(entries[0]["pcr"], 11);
        values.push((
            bank.clone(),
            entries[0]["hash"].as_str().unwrap().to_string(),
        ));
    }
    values
}
