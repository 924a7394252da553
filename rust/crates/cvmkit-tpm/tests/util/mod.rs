//! Real inputs, the UKI under test, and the peer tools shared by the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// Root of the workspace (three levels above this crate).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../..")
}

/// The path of an input named in `.cache/inputs/inputs.env` (or the environment variable of
/// the same name, which wins).
pub fn input(key: &str) -> PathBuf {
    if let Some(v) = std::env::var_os(key) {
        return PathBuf::from(v);
    }
    let env = workspace_root().join(".cache/inputs/inputs.env");
    let text = std::fs::read_to_string(&env).unwrap_or_else(|e| {
        panic!(
            "cannot read {} ({e}): run scripts/setup.sh (or scripts/fetch-inputs.sh) to download the test inputs",
            env.display()
        )
    });
    let path = text
        .lines()
        .filter_map(|l| l.split_once('='))
        .find(|(k, _)| k.trim() == key)
        .map(|(_, v)| PathBuf::from(v.trim()))
        .unwrap_or_else(|| {
            panic!(
                "{key} missing from {}: run scripts/fetch-inputs.sh",
                env.display()
            )
        });
    assert!(
        path.exists(),
        "{key}={} does not exist: run scripts/fetch-inputs.sh",
        path.display()
    );
    path
}

/// Fails (not skips) when a host tool is missing, saying which package has it.
pub fn require_tool(tool: &str, package: &str) -> PathBuf {
    let candidates = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .chain([
            "/usr/sbin".into(),
            "/sbin".into(),
            "/usr/lib/systemd".into(),
        ]);
    for dir in candidates {
        let p = dir.join(tool);
        if p.is_file() {
            return p;
        }
    }
    panic!(
        "{tool} not found: install it with `apt-get install -y --no-install-recommends {package}` (scripts/setup.sh lists it)"
    );
}

/// Runs a command, panicking with its stderr if it fails; returns stdout.
pub fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e} (is it installed?)"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn unhex(s: &str) -> Vec<u8> {
    let s = s.trim();
    assert!(s.len() % 2 == 0, "odd-length hex {s:?}");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap_or_else(|_| panic!("bad hex {s:?}")))
        .collect()
}

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

/// Device nodes and directories an unprivileged user cannot create, in gen_init_cpio format
/// (as examples/minimal/initrd.spec), plus the files.
pub fn initrd_spec(busybox: &Path, init: &Path) -> String {
    format!(
        "dir /bin 0755 0 0\n\
         file /bin/busybox {} 0755 0 0\n\
         slink /bin/sh busybox 0777 0 0\n\
         file /init {} 0755 0 0\n\
         dir /dev 0755 0 0\n\
         nod /dev/console 0600 0 0 c 5 1\n\
         nod /dev/null 0666 0 0 c 1 3\n\
         dir /proc 0555 0 0\n\
         dir /sys 0555 0 0\n\
         dir /tmp 1777 0 0\n",
        busybox.display(),
        init.display()
    )
}

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

/// The command line the boot test's UKI carries.
pub const CMDLINE: &str = "console=ttyS0 panic=-1";

/// os-release for the UKI's `.osrel`.
pub const OS_RELEASE: &str = "ID=cvmkit-test\nNAME=\"cvmkit TPM test\"\nVERSION_ID=1\n";

/// A UKI from the real stub and kernel: `.osrel .cmdline .uname .initrd .linux`.
pub fn build_uki(initrd: &[u8], linux_virtual_size: cvmkit_uki::LinuxVirtualSize) -> Vec<u8> {
    let stub = std::fs::read(input("STUB")).unwrap();
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
