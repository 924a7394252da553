use std::path::Path;
use std::process::Command;

use crate::util::*;

/// Asserts exit status 2, a single `error: …` line on stderr containing every `needles`, and no
/// output file (nor a leftover temporary) in `dir`; returns the line.
fn assert_clean_failure(cmd: &mut Command, dir: &Path, out_name: &str, needles: &[&str]) -> String {
    let before: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name()).collect();
    let out = run(cmd, false);
    assert_eq!(out.status.code(), Some(2), "exit status");
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "want one line, got:\n{err}");
    assert!(err.starts_with("error: "), "{err}");
    for n in needles {
        assert!(err.contains(n), "error {err:?} does not mention {n:?}");
    }
    assert!(!dir.join(out_name).exists(), "{out_name} was left behind");
    let after: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(before, after, "a temporary file was left behind");
    err
}

fn uki_cmd(dir: &Path, stub: &Path, linux: &Path) -> Command {
    let mut c = cvmkit(dir);
    c.arg("uki").arg("--stub").arg(stub).arg("--linux").arg(linux).args(["-o", "out.efi"]);
    c
}

#[test]
fn garbage_and_truncated_pe() {
    let inputs = inputs();
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path().join("work");
    std::fs::create_dir(&work).unwrap();
    let garbage = tmp.path().join("garbage.efi");
    std::fs::write(&garbage, b"this is not a PE file at all, just text\n".repeat(50)).unwrap();
    let stub = std::fs::read(&inputs.stub).unwrap();
    let truncated = tmp.path().join("truncated.efi");
    std::fs::write(&truncated, &stub[..0x300]).unwrap();

    snapshot!(assert_clean_failure(&mut uki_cmd(&work, &garbage, &inputs.kernel), &work, "out.efi", &["garbage.efi"]));
    let _ = assert_clean_failure(&mut uki_cmd(&work, &truncated, &inputs.kernel), &work, "out.efi", &["truncated.efi"]);
    // A kernel that is not a PE: the error names the kernel, not the stub.
    let _ = assert_clean_failure(&mut uki_cmd(&work, &inputs.stub, &garbage), &work, "out.efi", &["garbage.efi"]);
    // Debian's vmlinuz is signed: refused as a stub (a signature would be invalidated).
    let _ = assert_clean_failure(&mut uki_cmd(&work, &inputs.kernel, &inputs.kernel), &work, "out.efi", &["signed"]);
    let mut c = cvmkit(&work);
    c.arg("inspect").arg(&truncated);
    let _ = assert_clean_failure(&mut c, &work, "none", &["truncated.efi"]);
}

#[test]
fn missing_files() {
    let inputs = inputs();
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("no-such-kernel");
    snapshot!(assert_clean_failure(&mut uki_cmd(tmp.path(), &inputs.stub, &missing), tmp.path(), "out.efi", &["no-such-kernel"]));
    let mut c = uki_cmd(tmp.path(), &inputs.stub, &inputs.kernel);
    c.args(["--initrd", "no-such-initrd"]);
    snapshot!(assert_clean_failure(&mut c, tmp.path(), "out.efi", &["no-such-initrd"]));
    let mut c = cvmkit(tmp.path());
    c.args(["initrd", "no-such-root", "-o", "out.cpio"]);
    snapshot!(assert_clean_failure(&mut c, tmp.path(), "out.cpio", &["no-such-root"]));
    let mut c = cvmkit(tmp.path());
    c.args(["initrd", "--spec", "no-such.spec", "-o", "out.cpio"]);
    snapshot!(assert_clean_failure(&mut c, tmp.path(), "out.cpio", &["no-such.spec"]));
}

#[test]
fn root_that_is_not_a_directory() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("plain-file"), "x").unwrap();
    let mut c = cvmkit(tmp.path());
    c.args(["initrd", "plain-file", "-o", "out.cpio"]);
    snapshot!(assert_clean_failure(&mut c, tmp.path(), "out.cpio", &["plain-file", "not a directory"]));
}

#[test]
fn file_too_large_for_newc() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    std::fs::create_dir(&root).unwrap();
    std::fs::write(root.join("small"), "x").unwrap();
    // Sparse: 4 GiB of apparent size, no disk blocks.
    std::fs::File::create(root.join("huge")).unwrap().set_len(1 << 32).unwrap();
    let mut c = cvmkit(tmp.path());
    c.args(["initrd", "root", "-o", "out.cpio"]);
    snapshot!(assert_clean_failure(&mut c, tmp.path(), "out.cpio", &["huge", "4294967296"]));
}

#[test]
fn dangling_symlink() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    std::fs::create_dir_all(root.join("sbin")).unwrap();
    std::os::unix::fs::symlink("/bin/nope", root.join("sbin/init")).unwrap();
    let mut c = cvmkit(tmp.path());
    c.args(["initrd", "root", "-o", "out.cpio"]);
    snapshot!(assert_clean_failure(&mut c, tmp.path(), "out.cpio", &["sbin/init", "/bin/nope"]));
    // The escape hatch keeps it.
    run(cvmkit(tmp.path()).args(["initrd", "root", "--allow-dangling-symlinks", "-o", "out.cpio"]), true);
    assert!(tmp.path().join("out.cpio").exists());
}

#[test]
fn bad_source_date_epoch() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir(tmp.path().join("root")).unwrap();
    let mut c = cvmkit(tmp.path());
    c.env("SOURCE_DATE_EPOCH", "yesterday").args(["initrd", "root", "-o", "out.cpio"]);
    snapshot!(assert_clean_failure(&mut c, tmp.path(), "out.cpio", &["SOURCE_DATE_EPOCH", "yesterday"]));
}

#[test]
fn failed_build_keeps_previous_output() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("out.cpio"), "previous").unwrap();
    let out = run(cvmkit(tmp.path()).args(["initrd", "no-such-root", "-o", "out.cpio"]), false);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(std::fs::read_to_string(tmp.path().join("out.cpio")).unwrap(), "previous");
}

/// A closed stdout ends cvmkit quietly (killed by SIGPIPE, or exit 0 if it was done first),
/// never with "failed printing to stdout: Broken pipe" and exit 101. The reading end is closed
/// before cvmkit writes, so every write fails with EPIPE (the old panic showed in 14-19 of 20
/// runs of `… | head -1`; here it would show every time).
#[test]
fn a_closed_stdout_pipe_ends_quietly() {
    use std::os::unix::process::ExitStatusExt as _;
    use std::process::Stdio;
    const SIGPIPE: i32 = 13; // Linux
    let inputs = inputs();
    let tmp = tempfile::tempdir().unwrap();
    let ovmf = inputs.ovmf.to_str().unwrap();
    let commands: [&[&str]; 3] = [
        &["debloat-default-config"],
        &["measure", "snp", "--firmware", ovmf, "--vcpus", "1", "--vcpu-type", "EPYC-v4", "--json"],
        &["inspect", inputs.stub.to_str().unwrap()],
    ];
    for args in commands {
        for _ in 0..5 {
            let mut child = cvmkit(tmp.path())
                .args(args)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            drop(child.stdout.take());
            let out = child.wait_with_output().unwrap();
            let quiet = out.status.success() || out.status.signal() == Some(SIGPIPE);
            assert!(quiet, "{args:?}: {:?}, stderr: {}", out.status, String::from_utf8_lossy(&out.stderr));
            assert!(out.stderr.is_empty(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        }
    }
}

/// A truncated UKI's error names the problem once (the TPM crate's error shows its PE cause
/// inline and also returns it as its source; the CLI used to print it twice).
#[test]
fn an_error_names_its_cause_once() {
    let inputs = inputs();
    let tmp = tempfile::tempdir().unwrap();
    let stub = std::fs::read(&inputs.stub).unwrap();
    std::fs::write(tmp.path().join("trunc.efi"), &stub[..5000]).unwrap();
    let out = run(cvmkit(tmp.path()).args(["measure", "tpm", "--uki", "trunc.efi"]), false);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert_eq!(err.matches("extends past end of file").count(), 1, "{err}");
    assert!(err.starts_with("error: UKI trunc.efi: the UKI is not a valid PE image: section .text"), "{err}");
}
