//! Test support shared by cvmkit's crates (a dev-dependency, not published):
//!
//! - the real data in `<workspace>/testdata` (event logs and quotes from peer projects, see
//!   testdata/PROVENANCE.md), the one place every test reads them from;
//! - the example inputs (Debian's kernel, systemd-stub, OVMF and busybox): each from the
//!   environment variable of its name (`KERNEL`, `STUB`, `OVMF`, `BUSYBOX`, …), else from
//!   `.cache/inputs/inputs.env` (written by scripts/fetch-inputs.sh, or `$CVMKIT_INPUTS_ENV`), so a
//!   sandbox without the cache can pass them by environment;
//! - host tools that must be installed: tests fail, never skip, naming the package;
//! - child processes with bounded waits, killed by syscall (no `kill` binary needed);
//! - the peer tools used as oracles (signify, pefile, pesign, osslsigncode).
#![allow(missing_docs, clippy::missing_panics_doc)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

/// The signals of `signal_group` and `signal_process`.
pub use rustix::process::Signal;

/// Root of the workspace (three levels above this crate).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../..")
}

/// `<workspace>/testdata`: real event logs, quotes and expected values copied from peer projects
/// (testdata/PROVENANCE.md says where each file comes from and what it was checked against).
pub fn testdata_dir() -> PathBuf {
    let dir = workspace_root().join("testdata");
    assert!(
        dir.join("PROVENANCE.md").is_file(),
        "{} has no PROVENANCE.md: the checkout is incomplete (testdata/ is part of the repository)",
        dir.display()
    );
    dir
}

/// The path of `rel` under `testdata/`, which must exist.
pub fn testdata(rel: &str) -> PathBuf {
    let path = testdata_dir().join(rel);
    assert!(
        path.exists(),
        "test data {} missing: every file the tests read is in the repository's testdata/",
        path.display()
    );
    path
}

/// The bytes of `testdata/<rel>`.
pub fn read_testdata(rel: &str) -> Vec<u8> {
    let path = testdata(rel);
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// `.cache/inputs/inputs.env`, or `$CVMKIT_INPUTS_ENV`.
pub fn inputs_env_file() -> PathBuf {
    std::env::var_os("CVMKIT_INPUTS_ENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join(".cache/inputs/inputs.env"))
}

/// The value of `key` in the inputs file, if the file is readable and has it.
fn inputs_env_value(key: &str) -> Option<PathBuf> {
    let text = std::fs::read_to_string(inputs_env_file()).ok()?;
    text.lines()
        .filter_map(|l| l.split_once('='))
        .find(|(k, _)| k.trim() == key)
        .map(|(_, v)| PathBuf::from(v.trim()))
}

/// Where the input `key` is named: the environment variable `key`, else the inputs file; `None`
/// when neither names it. The path is not checked.
pub fn input_source(key: &str) -> Option<(PathBuf, String)> {
    if let Some(v) = std::env::var_os(key).filter(|v| !v.is_empty()) {
        return Some((PathBuf::from(v), format!("${key}")));
    }
    inputs_env_value(key).map(|p| (p, inputs_env_file().display().to_string()))
}

/// The path of the example input `key` (`KERNEL`, `STUB`, `OVMF`, `BUSYBOX`, …): the environment
/// variable of that name, else `.cache/inputs/inputs.env`. Fails at once, naming the input and the
/// fix, when neither names it or the file does not exist.
pub fn input(key: &str) -> PathBuf {
    let Some((path, from)) = input_source(key) else {
        panic!(
            "needs the example input {key}: set ${key} to its path, or run scripts/fetch-inputs.sh \
             (scripts/setup.sh) to write {}",
            inputs_env_file().display()
        )
    };
    assert!(
        path.is_file(),
        "needs the example input {key}: {} (from {from}) does not exist; run scripts/fetch-inputs.sh \
         or set ${key}",
        path.display()
    );
    path
}

/// `input(key)` if the environment or the inputs file names it (the file must then exist), else
/// `None`: for a test that has a fallback of its own (e.g. a busybox on PATH).
pub fn try_input(key: &str) -> Option<PathBuf> {
    input_source(key).map(|_| input(key))
}

/// Debian's signed vmlinuz (a PE32+ with a certificate table).
pub fn kernel() -> PathBuf {
    input("KERNEL")
}

/// systemd-boot-efi 252 `linuxx64.efi.stub` (PE32+, with a COFF symbol table, odd length).
pub fn stub() -> PathBuf {
    input("STUB")
}

/// Debian's OVMF.fd.
pub fn ovmf() -> PathBuf {
    input("OVMF")
}

/// Debian's static busybox.
pub fn busybox() -> PathBuf {
    input("BUSYBOX")
}

/// The project's venv (`$CVMKIT_VENV`, default `.cache/venv`).
pub fn venv() -> PathBuf {
    std::env::var_os("CVMKIT_VENV")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join(".cache/venv"))
}

/// A program of the venv (`bin/<name>`), which must exist.
pub fn venv_tool(name: &str) -> PathBuf {
    let p = venv().join("bin").join(name);
    assert!(
        p.is_file(),
        "needs {} (the PyPI peers): run scripts/setup.sh, or set $CVMKIT_VENV",
        p.display()
    );
    p
}

/// The Python of the project's venv, which has signify and pefile.
pub fn python() -> PathBuf {
    venv_tool("python")
}

/// The path of a host tool: `tool` itself when it is a path, else the first match on PATH (then
/// /usr/sbin, /sbin, /usr/lib/systemd). Fails (never skips) when it is missing, saying which
/// Debian package has it.
pub fn require_tool(tool: &str, package: &str) -> PathBuf {
    if tool.contains('/') {
        let p = PathBuf::from(tool);
        assert!(
            p.is_file(),
            "needs `{tool}` (apt-get install -y --no-install-recommends {package}; scripts/setup.sh lists it)"
        );
        return p;
    }
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
        "needs `{tool}` on PATH (apt-get install -y --no-install-recommends {package}; scripts/setup.sh lists it)"
    );
}

/// Sends SIGKILL to the process group `pgid` (a child started with `process_group(0)`) by the
/// kill(2) syscall; a group that is already gone is fine.
pub fn kill_group(pgid: u32) {
    signal_group(pgid, rustix::process::Signal::KILL);
}

/// Sends `signal` to the process group `pgid`; a group that is already gone is fine.
pub fn signal_group(pgid: u32, signal: rustix::process::Signal) {
    let Some(pid) = i32::try_from(pgid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    else {
        return;
    };
    match rustix::process::kill_process_group(pid, signal) {
        Ok(()) | Err(rustix::io::Errno::SRCH) => {}
        Err(e) => eprintln!("cannot signal process group {pgid}: {e}"),
    }
}

/// Sends `signal` to the process `pid`; a process that is already gone is fine.
pub fn signal_process(pid: u32, signal: rustix::process::Signal) {
    let Some(p) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    else {
        return;
    };
    match rustix::process::kill_process(p, signal) {
        Ok(()) | Err(rustix::io::Errno::SRCH) => {}
        Err(e) => eprintln!("cannot signal process {pid}: {e}"),
    }
}

/// Whether `pid` leads its own process group (was started with `process_group(0)`).
///
/// Read from /proc/PID/stat, not getpgid(2): in a PID namespace whose processes belong to a group
/// led from outside it (e.g. under `unshare --pid --fork`, as CI's fresh root runs), getpgid
/// returns 0, which rustix's getpgid asserts against.
fn leads_group(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // "pid (comm) state ppid pgrp …": comm may hold spaces and parentheses, so split after the last ')'.
    stat.rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().nth(2))
        .and_then(|pgrp| pgrp.parse::<u32>().ok())
        == Some(pid)
}

/// SIGKILLs `child` (and its process group if it leads one) and reaps it, waiting at most 10 s;
/// returns whether it was reaped. Never blocks forever and never panics (usable in `Drop`).
pub fn kill_and_reap(child: &mut Child) -> bool {
    if let Ok(Some(_)) = child.try_wait() {
        return true;
    }
    if leads_group(child.id()) {
        kill_group(child.id());
    }
    let _ = child.kill();
    let end = Instant::now() + Duration::from_secs(10);
    while Instant::now() < end {
        match child.try_wait() {
            Ok(Some(_)) | Err(_) => return true,
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
    eprintln!("process {} did not exit 10 s after SIGKILL", child.id());
    false
}

/// Waits for `child` at most `timeout`; past it the child (and its process group, if it leads
/// one) is killed and the test fails naming `what`.
pub fn wait_deadline(child: &mut Child, timeout: Duration, what: &str) -> ExitStatus {
    let end = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return status,
            Ok(None) if Instant::now() < end => std::thread::sleep(Duration::from_millis(20)),
            Ok(None) => {
                kill_and_reap(child);
                panic!("{what} did not exit within {timeout:?}: killed");
            }
            Err(e) => panic!("waiting for {what}: {e}"),
        }
    }
}

/// A child killed (with its process group, if it leads one) and reaped when dropped, without
/// ever blocking for long: for servers a test starts and leaves running.
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        kill_and_reap(&mut self.0);
    }
}

/// Like `cmd.output()` (stdin null, stdout and stderr captured) but for at most `timeout`: past it
/// the child (and its process group, if it leads one) is killed and the test fails with what it
/// printed so far. A process it leaves holding its output open fails the test too, after 10 s.
pub fn output_deadline(cmd: &mut Command, timeout: Duration) -> Output {
    collect(cmd, None, timeout)
}

/// `output_deadline` with `input` fed to the child's stdin (from a thread, so a child that
/// writes before it has read everything cannot deadlock).
pub fn output_with_stdin(cmd: &mut Command, input: &[u8], timeout: Duration) -> Output {
    collect(cmd, Some(input.to_vec()), timeout)
}

fn collect(cmd: &mut Command, input: Option<Vec<u8>>, timeout: Duration) -> Output {
    let stdin = if input.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    };
    let mut child = cmd
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e} (is it installed?)"));
    if let (Some(input), Some(mut pipe)) = (input, child.stdin.take()) {
        // A child that exits without reading it all makes this fail with EPIPE: not an error here.
        std::thread::spawn(move || {
            use std::io::Write as _;
            let _ = pipe.write_all(&input);
        });
    }
    let (tx, rx) = std::sync::mpsc::channel();
    let read = |pipe: Option<Box<dyn std::io::Read + Send>>, which: u8| {
        let tx = tx.clone();
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut buf);
            }
            let _ = tx.send((which, buf));
        });
    };
    read(child.stdout.take().map(|p| Box::new(p) as _), 1);
    read(child.stderr.take().map(|p| Box::new(p) as _), 2);
    drop(tx);
    let end = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() < end => std::thread::sleep(Duration::from_millis(20)),
            Ok(None) => {
                kill_and_reap(&mut child);
                break None;
            }
            Err(e) => panic!("waiting for {cmd:?}: {e}"),
        }
    };
    // The pipes close when the child (and anything it left holding them) is gone.
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    let grace = Instant::now() + Duration::from_secs(10);
    for _ in 0..2 {
        let left = grace.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok((1, b)) => stdout = b,
            Ok((_, b)) => stderr = b,
            Err(_) => panic!(
                "{cmd:?} exited ({status:?}) but its stdout/stderr stayed open for 10 s: a process \
                 it started is still running"
            ),
        }
    }
    let Some(status) = status else {
        panic!(
            "{cmd:?} did not exit within {timeout:?}: killed\nstdout:\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&stdout),
            String::from_utf8_lossy(&stderr)
        );
    };
    Output {
        status,
        stdout,
        stderr,
    }
}

/// The bound of `run`: generous for any one tool a test runs, short of a hung CI job.
pub const RUN_TIMEOUT: Duration = Duration::from_secs(600);

/// Runs a command, panicking with its stderr if it fails; returns stdout.
/// Bounded by `RUN_TIMEOUT`.
pub fn run(cmd: &mut Command) -> String {
    let out = output_deadline(cmd, RUN_TIMEOUT);
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub use cvmkit_measure::hex;

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
    let mut cmd = Command::new(require_tool("pesign", "pesign"));
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
        run(Command::new(require_tool("openssl", "openssl"))
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
    let mut cmd = Command::new(require_tool("osslsigncode", "osslsigncode"));
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
    let v = output_deadline(
        Command::new(require_tool("osslsigncode", "osslsigncode"))
            .arg("verify")
            .arg("-in")
            .arg(&out),
        RUN_TIMEOUT,
    );
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
    run(Command::new(require_tool("as", "binutils"))
        .arg("--32")
        .arg("-o")
        .arg(&o)
        .arg(&s));
    run(Command::new(require_tool("ld", "binutils"))
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

pub mod pebble;

/// systemd-boot-efi 257 `linuxx64.efi.stub` from Debian trixie (the stub generation of the
/// flake's nixpkgs), fetched beside the bookworm one by scripts/fetch-inputs.sh: `$STUB_TRIXIE`,
/// else `STUB_TRIXIE` in the inputs file. Fails (never skips) naming the fix when it is missing.
pub fn stub_trixie() -> PathBuf {
    input("STUB_TRIXIE")
}

/// Boots the raw disk `disk` with the firmware `ovmf` under QEMU's TCG (q35, 512 MiB, one vCPU,
/// no network, no `-kernel`: the firmware must find the ESP and `\EFI\BOOT\BOOTX64.EFI` itself),
/// and returns the serial log once `marker` shows up (`None`: until QEMU exits), QEMU exits, or
/// `timeout` passes; QEMU is killed and reaped in every case.
pub fn boot_serial_log(dir: &Path, ovmf: &Path, disk: &Path, marker: Option<&str>, timeout: Duration) -> String {
    let log = dir.join("serial.log");
    let mut child = Command::new(require_tool("qemu-system-x86_64", "qemu-system-x86"))
        .args(["-machine", "q35", "-accel", "tcg", "-m", "512", "-smp", "1"])
        .arg("-bios")
        .arg(ovmf)
        .arg("-drive")
        .arg(format!("if=virtio,format=raw,file={}", disk.display()))
        .args(["-display", "none", "-monitor", "none", "-no-reboot", "-nic", "none"])
        .arg("-serial")
        .arg(format!("file:{}", log.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("cannot start qemu-system-x86_64");
    let start = Instant::now();
    loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let exited = child.try_wait().ok().flatten().is_some();
        if marker.is_some_and(|m| text.contains(m)) || exited || start.elapsed() > timeout {
            kill_and_reap(&mut child);
            return std::fs::read_to_string(&log).unwrap_or_default();
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::CommandExt as _;

    fn sleeper(secs: &str) -> Command {
        let mut c = Command::new(require_tool("sleep", "coreutils"));
        c.arg(secs);
        c
    }

    #[test]
    fn kill_group_needs_no_kill_binary() {
        // A group of two sleepers: the shell and its child both go with the group.
        let mut child = Command::new(require_tool("sh", "dash"))
            .args(["-c", "sleep 60 & exec sleep 60"])
            .process_group(0)
            .spawn()
            .unwrap();
        let start = Instant::now();
        kill_group(child.id());
        let status = wait_deadline(&mut child, Duration::from_secs(10), "the sleeper");
        assert!(!status.success());
        assert!(start.elapsed() < Duration::from_secs(10));
        kill_group(child.id()); // gone already: no error
    }

    #[test]
    #[should_panic(expected = "did not exit within")]
    fn wait_deadline_kills_and_fails() {
        let mut child = sleeper("60").spawn().unwrap();
        wait_deadline(&mut child, Duration::from_millis(300), "the sleeper");
    }

    #[test]
    #[should_panic(expected = "did not exit within")]
    fn output_deadline_kills_and_fails() {
        output_deadline(sleeper("60").process_group(0), Duration::from_millis(300));
    }

    #[test]
    fn output_with_stdin_feeds_the_child() {
        let input: Vec<u8> = (0..1u32 << 20).map(|i| i as u8).collect();
        let out = output_with_stdin(
            &mut Command::new(require_tool("cat", "coreutils")),
            &input,
            Duration::from_secs(30),
        );
        assert!(out.status.success());
        assert!(out.stdout == input);
    }

    #[test]
    fn output_deadline_captures_both_streams() {
        let out = output_deadline(
            Command::new(require_tool("sh", "dash")).args(["-c", "echo out; echo err >&2; exit 3"]),
            Duration::from_secs(10),
        );
        assert_eq!(out.status.code(), Some(3));
        assert_eq!(out.stdout, b"out\n");
        assert_eq!(out.stderr, b"err\n");
    }

    #[test]
    #[should_panic(expected = "needs `no-such-tool-cvmkit` on PATH (apt-get install")]
    fn a_missing_tool_fails_naming_its_package() {
        require_tool("no-such-tool-cvmkit", "nothing");
    }

    #[test]
    fn an_input_comes_from_the_environment_first() {
        // A key no inputs file has, so only the variable can name it.
        let key = "CVMKIT_TESTUTIL_SELF_TEST_INPUT";
        assert!(input_source(key).is_none());
        std::env::set_var(key, env!("CARGO_MANIFEST_DIR").to_string() + "/Cargo.toml");
        assert!(input(key).ends_with("Cargo.toml"));
        std::env::set_var(key, "/nonexistent/cvmkit");
        let missing = std::panic::catch_unwind(|| input(key)).unwrap_err();
        let msg = missing.downcast_ref::<String>().unwrap();
        assert!(
            msg.contains(&format!("needs the example input {key}")),
            "{msg}"
        );
        std::env::remove_var(key);
    }

    #[test]
    fn testdata_is_in_the_repository() {
        assert!(testdata("go-tdx-guest/ccel/ccel_data.dat").is_file());
        assert!(testdata_dir().starts_with(workspace_root()));
    }
}
