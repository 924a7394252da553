//! Shared helpers: the real inputs, running the real `cvmkit` binary, staging the example image.

use std::collections::BTreeMap;
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

pub fn inputs() -> Inputs {
    let env_file = std::env::var_os("CVMKIT_INPUTS_ENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".cache/inputs/inputs.env"));
    let text = std::fs::read_to_string(&env_file).unwrap_or_else(|e| {
        panic!("cannot read {}: {e}; run scripts/setup.sh (or scripts/fetch-inputs.sh) first", env_file.display())
    });
    let vars: BTreeMap<&str, &str> = text.lines().filter_map(|l| l.split_once('=')).collect();
    let get = |k: &str| PathBuf::from(vars.get(k).unwrap_or_else(|| panic!("{k} missing in {}", env_file.display())));
    Inputs { kernel: get("KERNEL"), stub: get("STUB"), ovmf: get("OVMF"), busybox: get("BUSYBOX") }
}

/// A tool the tests need from the host; its absence fails the test with the fix.
pub fn require_tool(name: &str) -> PathBuf {
    for dir in std::env::var("PATH").unwrap_or_default().split(':') {
        let p = Path::new(dir).join(name);
        if p.is_file() {
            return p;
        }
    }
    panic!("{name} is not installed; run scripts/setup.sh")
}

/// The cvmkit binary under test, with a clean SOURCE_DATE_EPOCH.
pub fn cvmkit(cwd: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_cvmkit"));
    c.current_dir(cwd).env_remove("SOURCE_DATE_EPOCH");
    c
}

/// Runs a command; panics with its output when its success differs from `expect_ok`.
pub fn run(cmd: &mut Command, expect_ok: bool) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
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

/// The shared fixture tree (real event logs and quotes) beside the checkout, or $CVMKIT_FIXTURES.
pub fn fixtures() -> PathBuf {
    let dir = std::env::var_os("CVMKIT_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("../shared/fixtures"));
    assert!(dir.join("PROVENANCE.md").is_file(), "fixtures not found at {}; set CVMKIT_FIXTURES", dir.display());
    dir
}

/// A peer tool from the project's venv (scripts/setup.sh installs them).
pub fn venv_tool(name: &str) -> PathBuf {
    let venv = std::env::var_os("CVMKIT_VENV").map(PathBuf::from).unwrap_or_else(|| repo_root().join(".cache/venv"));
    let p = venv.join("bin").join(name);
    assert!(p.is_file(), "{} missing; run scripts/setup.sh", p.display());
    p
}
