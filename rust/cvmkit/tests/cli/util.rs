//! Shared helpers: the real inputs, running the real `cvmkit` binary, staging the example image.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

/// The real example inputs from Debian packages (scripts/fetch-inputs.sh).
pub struct Inputs {
    pub kernel: PathBuf,
    pub stub: PathBuf,
    pub ovmf: PathBuf,
    pub busybox: PathBuf,
}

/// The example inputs, each from the environment variable of its name or else
/// `.cache/inputs/inputs.env` (`cvmkit_testutil::input`); a missing one fails naming it.
pub fn inputs() -> Inputs {
    Inputs {
        kernel: cvmkit_testutil::kernel(),
        stub: cvmkit_testutil::stub(),
        ovmf: cvmkit_testutil::ovmf(),
        busybox: cvmkit_testutil::busybox(),
    }
}

/// The Debian package of each tool the tests use (for the install hint).
fn package_of(tool: &str) -> &'static str {
    match tool.rsplit('/').next().unwrap_or(tool) {
        "systemd-measure" => "systemd",
        "mkfs.vfat" => "dosfstools",
        "mmd" | "mcopy" => "mtools",
        "objdump" | "objcopy" => "binutils",
        "qemu-system-x86_64" => "qemu-system-x86",
        "qemu-img" => "qemu-utils",
        "swtpm" => "swtpm swtpm-tools",
        "sfdisk" => "fdisk",
        "faketime" => "faketime",
        "pesign" => "pesign",
        "cpio" => "cpio",
        "gzip" => "gzip",
        "zstd" => "zstd",
        "nginx" => "nginx",
        "openssl" => "openssl",
        "curl" => "curl",
        "time" => "time",
        _ => "the package that has it",
    }
}

/// A tool the tests need from the host; its absence fails the test with the fix.
pub fn require_tool(name: &str) -> PathBuf {
    cvmkit_testutil::require_tool(name, package_of(name))
}

/// The cvmkit binary under test, with a clean SOURCE_DATE_EPOCH.
pub fn cvmkit(cwd: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_cvmkit"));
    c.current_dir(cwd).env_remove("SOURCE_DATE_EPOCH");
    c
}

/// Runs a command (stdin null, output captured, at most `cvmkit_testutil::RUN_TIMEOUT`); panics
/// with its output when its success differs from `expect_ok`.
pub fn run(cmd: &mut Command, expect_ok: bool) -> Output {
    let out = cvmkit_testutil::output_deadline(cmd, cvmkit_testutil::RUN_TIMEOUT);
    if out.status.success() != expect_ok {
        panic!(
            "{cmd:?} exited {:?}\nstdout:\n{}\nstderr:\n{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    out
}

/// `cmd`'s output whatever its exit status (stdin null, at most `cvmkit_testutil::RUN_TIMEOUT`).
pub fn output(cmd: &mut Command) -> Output {
    cvmkit_testutil::output_deadline(cmd, cvmkit_testutil::RUN_TIMEOUT)
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).unwrap()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8(out.stderr.clone()).unwrap()
}

/// The example image's root tree: busybox + /init, staged into `dir/root`.
pub fn stage_example_root(dir: &Path, inputs: &Inputs) -> PathBuf {
    let root = dir.join("root");
    std::fs::create_dir_all(root.join("bin")).unwrap();
    std::fs::copy(&inputs.busybox, root.join("bin/busybox")).unwrap();
    std::fs::copy(repo_root().join("examples/minimal/init"), root.join("init")).unwrap();
    root
}

pub fn example_file(name: &str) -> PathBuf {
    repo_root().join("examples/minimal").join(name)
}

/// Builds the example initrd and UKI in `dir` with the cvmkit binary; returns (initrd, uki).
pub fn build_example(dir: &Path, root: &Path, inputs: &Inputs, compress: &str) -> (PathBuf, PathBuf) {
    let initrd = dir.join("initrd.img");
    let uki = dir.join("uki.efi");
    run(
        cvmkit(dir)
            .arg("initrd")
            .arg(root)
            .arg("--spec")
            .arg(example_file("initrd.spec"))
            .args(["--compress", compress, "-o"])
            .arg(&initrd),
        true,
    );
    run(
        cvmkit(dir)
            .arg("uki")
            .arg("--stub")
            .arg(&inputs.stub)
            .arg("--linux")
            .arg(&inputs.kernel)
            .arg("--initrd")
            .arg(&initrd)
            .arg(format!("--cmdline=@{}", example_file("cmdline").display()))
            .arg("--os-release")
            .arg(example_file("os-release"))
            .args(["--uname", "6.1.0-example", "-o"])
            .arg(&uki),
        true,
    );
    (initrd, uki)
}

pub fn sha256_hex(path: &Path) -> String {
    use sha2::{Digest, Sha256};
    let data = std::fs::read(path).unwrap();
    Sha256::digest(&data).iter().map(|b| format!("{b:02x}")).collect()
}

/// The repository's `testdata/` (real event logs and quotes, see testdata/PROVENANCE.md).
pub fn fixtures() -> PathBuf {
    cvmkit_testutil::testdata_dir()
}

/// A peer tool from the project's venv (scripts/setup.sh installs them; `$CVMKIT_VENV` moves it).
pub fn venv_tool(name: &str) -> PathBuf {
    cvmkit_testutil::venv_tool(name)
}

/// `err` with what differs per run or checkout replaced: temporary directories by `[TMP]`, and
/// serde_json's position (`at line 1 column 138`, which moves with the input paths a test writes
/// into the JSON) by `at line L column C`; for a snapshot of the exact message.
pub fn redact(err: &str) -> String {
    let err = &redact_tmp(err);
    match err.rfind(" at line ") {
        Some(i) if err[i..].trim_end().trim_start_matches(" at line ").split(" column ").all(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())) => {
            format!("{} at line L column C{}", &err[..i], if err.ends_with('\n') { "\n" } else { "" })
        }
        _ => err.to_string(),
    }
}

fn redact_tmp(err: &str) -> String {
    let tmp = std::env::temp_dir().display().to_string();
    let mut out = String::new();
    let mut rest = err;
    while let Some(i) = rest.find(&format!("{tmp}/.tmp")) {
        out.push_str(&rest[..i]);
        out.push_str("[TMP]");
        let after = &rest[i + tmp.len() + 1..];
        let end = after.find(['/', ' ', ':', '\'', '"']).unwrap_or(after.len());
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

/// Pins a message the user reads with an insta snapshot (cvmkit's own output, recorded in
/// `snapshots/`; review a change with `cargo insta review` or `INSTA_UPDATE=always`). Only
/// messages about synthetic inputs are pinned: a Debian point release must not break them.
macro_rules! snapshot {
    ($err:expr) => {
        insta::assert_snapshot!(crate::util::redact(&$err))
    };
}
