//! Test support shared by cvmkit's crates (a dev-dependency, not published): where the real
//! inputs are (`.cache/inputs/inputs.env`, written by scripts/fetch-inputs.sh), host tools that
//! must be installed (tests fail, never skip, with the package to install), and the peer tools
//! used as oracles (signify, pefile, pesign, osslsigncode).
#![allow(missing_docs, clippy::missing_panics_doc)]

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
    let env = std::env::var_os("CVMKIT_INPUTS_ENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join(".cache/inputs/inputs.env"));
    let text = std::fs::read_to_string(&env).unwrap_or_else(|e| {
        panic!(
            "cannot read {} ({e}): run scripts/fetch-inputs.sh to download the test inputs",
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

/// Debian's signed vmlinuz (a PE32+ with a certificate table).
pub fn kernel() -> PathBuf {
    input("KERNEL")
}

/// systemd-boot-efi 252 `linuxx64.efi.stub` (PE32+, with a COFF symbol table, odd length).
pub fn stub() -> PathBuf {
    input("STUB")
}

/// The Python of the project's venv, which has signify and pefile.
pub fn python() -> PathBuf {
    let p = workspace_root().join(".cache/venv/bin/python");
    assert!(
        p.exists(),
        "{} missing: create the venv and `pip install signify pefile` into it",
        p.display()
    );
    p
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

/// signify's Authenticode fingerprints (sha256, sha384) of each file, hex.
pub fn signify(paths: &[&Path]) -> Vec<(String, String)> {
    // oscrypto 1.3.0 cannot parse the version string of OpenSSL 3.0.1x and fails on import;
    // signify only needs it to verify signatures, not to hash, so a stub module stands in.
    const SCRIPT: &str = r#"
import sys, hashlib, importlib.abc, importlib.machinery
from unittest import mock
class _Stub(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, name, path, target=None):
        if name == 'oscrypto' or name.startswith('oscrypto.'):
            return importlib.machinery.ModuleSpec(name, self, is_package=True)
    def create_module(self, spec):
        m = mock.MagicMock(); m.__path__ = []; m.__name__ = spec.name; return m
    def exec_module(self, m): pass
sys.meta_path.insert(0, _Stub())
from signify.authenticode.signed_file.pe import SignedPEFile
for p in sys.argv[1:]:
    with open(p, 'rb') as f:
        fp = SignedPEFile(f).get_fingerprints(hashlib.sha256, hashlib.sha384)
        print(fp['sha256'].hex(), fp['sha384'].hex())
"#;
    let out = run(Command::new(python()).arg("-c").arg(SCRIPT).args(paths));
    out.lines()
        .map(|l| {
            let (a, b) = l.split_once(' ').expect("signify output");
            (a.to_string(), b.to_string())
        })
        .collect()
}

/// pefile's (header CheckSum, generate_checksum()) of a file.
pub fn pefile_checksum(path: &Path) -> (u32, u32) {
    const SCRIPT: &str = r#"
import sys, pefile
pe = pefile.PE(sys.argv[1], fast_load=True)
print(pe.OPTIONAL_HEADER.CheckSum, pe.generate_checksum())
"#;
    let out = run(Command::new(python()).arg("-c").arg(SCRIPT).arg(path));
    let mut it = out
        .split_whitespace()
        .map(|v| v.parse::<u32>().expect("pefile output"));
    (it.next().unwrap(), it.next().unwrap())
}

/// `pesign -h` (sha256 only: pesign 116 has no other digest); `padded` adds `-P`.
pub fn pesign_sha256(path: &Path, padded: bool) -> String {
    let mut cmd = Command::new("pesign");
    cmd.arg("-h").arg("-i").arg(path);
    if padded {
        cmd.arg("-P");
    }
    let out = run(&mut cmd);
    out.trim()
        .strip_prefix("hash: ")
        .expect("pesign output")
        .to_string()
}

/// Signs a copy of `path` with a throwaway key using `osslsigncode sign -h <hash>` (nested if
/// the file is already signed) and returns the "Current message digest" of each signature of
/// the result, lowercase hex, after checking each equals the digest osslsigncode recalculates.
pub fn osslsigncode_digests(path: &Path, hash: &str, dir: &Path) -> Vec<String> {
    let key = dir.join("key.pem");
    let cert = dir.join("cert.pem");
    if !cert.exists() {
        run(Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            ])
            .args(["-subj", "/CN=cvmkit test", "-keyout"])
            .arg(&key)
            .arg("-out")
            .arg(&cert));
    }
    let out = dir.join(format!("signed-{hash}.efi"));
    let _ = std::fs::remove_file(&out);
    let mut cmd = Command::new("osslsigncode");
    cmd.arg("sign")
        .args(["-h", hash])
        .arg("-certs")
        .arg(&cert)
        .arg("-key")
        .arg(&key);
    if has_certificate_table(&std::fs::read(path).unwrap()) {
        cmd.arg("-nest");
    }
    run(cmd.arg("-in").arg(path).arg("-out").arg(&out));
    // verify exits non-zero because the throwaway certificate is not trusted.
    let v = Command::new("osslsigncode")
        .arg("verify")
        .arg("-in")
        .arg(&out)
        .output()
        .expect("osslsigncode");
    let text = String::from_utf8_lossy(&v.stdout);
    let pick = |label: &str| -> Vec<String> {
        text.lines()
            .filter_map(|l| l.strip_prefix(label))
            .map(|l| l.trim_start_matches([' ', ':']).trim().to_lowercase())
            .collect()
    };
    let current = pick("Current message digest");
    assert_eq!(
        current,
        pick("Calculated message digest"),
        "osslsigncode verify:\n{text}"
    );
    assert!(
        !current.is_empty(),
        "no digest in osslsigncode output:\n{text}"
    );
    current
}

/// A PE32 EFI application built by GNU ld (`i386pe`), with data and a COFF symbol table.
pub fn build_pe32(dir: &Path) -> PathBuf {
    let s = dir.join("pe32.s");
    std::fs::write(&s, ".text\n.globl _start\n_start:\n ret\n.data\n.long 1,2,3\n.section .rodata\n.ascii \"cvmkit\"\n")
        .unwrap();
    let o = dir.join("pe32.o");
    let efi = dir.join("pe32.efi");
    run(Command::new("as").arg("--32").arg("-o").arg(&o).arg(&s));
    run(Command::new("ld")
        .args(["-m", "i386pe", "--subsystem", "10", "-e", "_start", "-o"])
        .arg(&efi)
        .arg(&o));
    efi
}

/// Whether a PE file has a non-empty Security (certificate) directory, read independently of
/// cvmkit-pe (the crate under test): e_lfanew at 0x3c, optional header magic, data directory 4.
pub fn has_certificate_table(pe: &[u8]) -> bool {
    let u16_at = |o: usize| u16::from_le_bytes([pe[o], pe[o + 1]]) as usize;
    let u32_at = |o: usize| u32::from_le_bytes([pe[o], pe[o + 1], pe[o + 2], pe[o + 3]]) as usize;
    let opt = u32_at(0x3c) + 24;
    let dirs = opt + if u16_at(opt) == 0x20b { 112 } else { 96 };
    u32_at(dirs + 4 * 8 + 4) != 0
}

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
