use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::*;

/// Copies the example tree to `dir` creating entries in `order`, then sets every mtime to `stamp`.
fn staged_copy(dir: &Path, inputs: &Inputs, reverse: bool, stamp: &str) -> PathBuf {
    let root = dir.join("in/some/deeper/root");
    std::fs::create_dir_all(&root).unwrap();
    let mut steps: Vec<Box<dyn Fn()>> = vec![
        Box::new(|| {
            std::fs::create_dir_all(root.join("bin")).unwrap();
            std::fs::copy(&inputs.busybox, root.join("bin/busybox")).unwrap();
        }),
        Box::new(|| {
            std::fs::copy(example_file("init"), root.join("init")).unwrap();
        }),
        Box::new(|| {
            std::fs::create_dir_all(root.join("etc/app")).unwrap();
            std::fs::write(root.join("etc/app/b.conf"), "b\n").unwrap();
            std::fs::write(root.join("etc/app/a.conf"), "a\n").unwrap();
            std::fs::write(root.join("etc/hostname"), "cvm\n").unwrap();
        }),
    ];
    if reverse {
        steps.reverse();
    }
    for s in &steps {
        s();
    }
    drop(steps);
    run(Command::new("find").arg(&root).args(["-exec", "touch", "-h", "-d", stamp, "{}", "+"]), true);
    root
}

/// Runs the example build in `dir` through `sh` so the umask, clock, TZ and locale can be set.
fn build_perturbed(dir: &Path, root: &Path, inputs: &Inputs, umask: &str, clock: &str, tz: &str, lang: &str) -> (Vec<u8>, Vec<u8>) {
    let bin = env!("CARGO_BIN_EXE_cvmkit");
    let script = format!(
        "umask {umask}; set -e; \
         \"$CVMKIT\" initrd \"$ROOT\" --spec \"$SPEC\" --compress gzip -o out/initrd.img; \
         \"$CVMKIT\" uki --stub \"$STUB\" --linux \"$KERNEL\" --initrd out/initrd.img --cmdline 'console=ttyS0' \
           --os-release \"$OSREL\" --uname 6.1.0 -o out/uki.efi"
    );
    std::fs::create_dir_all(dir.join("out")).unwrap();
    run(
        Command::new(require_tool("faketime"))
            .arg(clock)
            .args(["sh", "-c", &script])
            .current_dir(dir)
            .env("CVMKIT", bin)
            .env("ROOT", root)
            .env("SPEC", example_file("initrd.spec"))
            .env("STUB", &inputs.stub)
            .env("KERNEL", &inputs.kernel)
            .env("OSREL", example_file("os-release"))
            .env("TZ", tz)
            .env("LC_ALL", lang)
            .env("LANG", lang)
            .env("SOURCE_DATE_EPOCH", "1700000000"),
        true,
    );
    (std::fs::read(dir.join("out/initrd.img")).unwrap(), std::fs::read(dir.join("out/uki.efi")).unwrap())
}

#[test]
fn outputs_are_byte_identical_under_perturbation() {
    let inputs = inputs();
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::Builder::new().prefix("other-place-").tempdir().unwrap();
    let root_a = staged_copy(a.path(), &inputs, false, "2001-02-03 04:05:06");
    let root_b = staged_copy(b.path(), &inputs, true, "2029-12-31 23:59:59");
    let (ia, ua) = build_perturbed(a.path(), &root_a, &inputs, "022", "2020-01-01 00:00:00", "UTC", "C");
    let (ib, ub) = build_perturbed(b.path(), &root_b, &inputs, "077", "2034-06-15 12:34:56", "Pacific/Chatham", "C.UTF-8");
    assert!(ia == ib, "initramfs differs between perturbed builds");
    assert!(ua == ub, "UKI differs between perturbed builds");
    assert!(ia.len() > 100_000 && ua.len() > 1_000_000, "outputs suspiciously small");
}

/// SOURCE_DATE_EPOCH is the one timestamp that reaches the output, so changing it must change both.
#[test]
fn source_date_epoch_is_the_only_clock() {
    let inputs = inputs();
    let tmp = tempfile::tempdir().unwrap();
    let root = stage_example_root(tmp.path(), &inputs);
    let build = |sde: &str, name: &str| {
        let initrd = tmp.path().join(format!("{name}.cpio"));
        let uki = tmp.path().join(format!("{name}.efi"));
        run(cvmkit(tmp.path()).env("SOURCE_DATE_EPOCH", sde).arg("initrd").arg(&root).arg("-o").arg(&initrd), true);
        run(
            cvmkit(tmp.path())
                .env("SOURCE_DATE_EPOCH", sde)
                .arg("uki")
                .arg("--stub")
                .arg(&inputs.stub)
                .arg("--linux")
                .arg(&inputs.kernel)
                .arg("--initrd")
                .arg(&initrd)
                .arg("-o")
                .arg(&uki),
            true,
        );
        (std::fs::read(initrd).unwrap(), std::fs::read(uki).unwrap())
    };
    let (i0, u0) = build("0", "zero");
    let (i1, u1) = build("1700000000", "later");
    assert_ne!(i0, i1);
    assert_ne!(u0, u1);
    // 1700000000 = 0x6553f100: the cpio header spells mtime as 8 hex digits (GNU cpio agrees, see initrd tests).
    assert!(i1.windows(8).any(|w| w == b"6553F100" || w == b"6553f100"));
}

/// `cvmkit build --spec` then `cvmkit provenance` in `dir` under a perturbed umask, clock, TZ
/// and locale; returns (sbom.cdx.json, the statement, measurements.json).
fn build_spec_perturbed(dir: &Path, root: &Path, inputs: &Inputs, umask: &str, clock: &str, tz: &str, lang: &str) -> [Vec<u8>; 3] {
    let spec = serde_json::json!({
        "schema": "cvmkit.image/v1",
        "name": "repro",
        "source_date_epoch": 1700000000,
        "initrd": { "trees": [root], "spec_files": [example_file("initrd.spec")] },
        "uki": { "stub": inputs.stub, "kernel": inputs.kernel, "cmdline": "console=ttyS0" },
        "disk": { "format": "raw" },
        "measure": [{ "platform": "tpm" }, { "platform": "tdx", "firmware": inputs.ovmf }],
        "components": [{ "path": root, "name": "root", "version": "1", "licenses": ["MIT"] }]
    });
    std::fs::write(dir.join("image.json"), spec.to_string()).unwrap();
    let script = format!(
        "umask {umask}; set -e; \"$CVMKIT\" build --spec image.json -o out >/dev/null; \
         \"$CVMKIT\" provenance out --image repro --flake github:cvmkit/cvmkit --flake-lock \"$LOCK\" -o statement.json"
    );
    run(
        Command::new(require_tool("faketime"))
            .arg(clock)
            .args(["sh", "-c", &script])
            .current_dir(dir)
            .env("CVMKIT", env!("CARGO_BIN_EXE_cvmkit"))
            .env("LOCK", repo_root().join("flake.lock"))
            .env("TZ", tz)
            .env("LC_ALL", lang)
            .env("LANG", lang),
        true,
    );
    ["out/sbom.cdx.json", "statement.json", "out/measurements.json"].map(|f| std::fs::read(dir.join(f)).unwrap())
}

/// Issue 17: the SBOM and the provenance statement are the same bytes wherever, whenever and
/// however the image is built (tree created in another order, other mtimes, paths, umask,
/// clock, TZ, locale).
#[test]
fn sbom_and_provenance_are_byte_identical_under_perturbation() {
    let inputs = inputs();
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::Builder::new().prefix("other-place-").tempdir().unwrap();
    let root_a = staged_copy(a.path(), &inputs, false, "2001-02-03 04:05:06");
    let root_b = staged_copy(b.path(), &inputs, true, "2029-12-31 23:59:59");
    let x = build_spec_perturbed(a.path(), &root_a, &inputs, "022", "2020-01-01 00:00:00", "UTC", "C");
    let y = build_spec_perturbed(b.path(), &root_b, &inputs, "077", "2034-06-15 12:34:56", "Pacific/Chatham", "C.UTF-8");
    for (i, name) in ["sbom.cdx.json", "the provenance statement", "measurements.json"].iter().enumerate() {
        assert!(x[i] == y[i], "{name} differs between perturbed builds");
    }
    let sbom = String::from_utf8(x[0].clone()).unwrap();
    assert!(sbom.contains("\"/etc/app/a.conf\"") && sbom.contains("\"/bin/busybox\""), "files missing from the SBOM");
}
