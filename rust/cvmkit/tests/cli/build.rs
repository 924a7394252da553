use crate::util::*;

fn write_spec(dir: &std::path::Path, root: &std::path::Path, inputs: &Inputs, extra: &str) -> std::path::PathBuf {
    let spec = serde_json::json!({
        "schema": "cvmkit.image/v1",
        "name": "example",
        "source_date_epoch": 0,
        "initrd": { "trees": [root], "spec_files": [example_file("initrd.spec")], "compress": "zstd" },
        "uki": {
            "stub": inputs.stub, "kernel": inputs.kernel, "cmdline": "console=ttyS0 panic=-1\n",
            "os_release": example_file("os-release"), "uname": "6.1.0-example"
        }
    });
    let mut text = spec.to_string();
    if !extra.is_empty() {
        text = text.replacen("\"name\"", &format!("{extra}, \"name\""), 1);
    }
    let path = dir.join("image.json");
    std::fs::write(&path, text).unwrap();
    path
}

/// `cvmkit build --spec` gives exactly the bytes of the step-by-step commands (`initrd`, `uki`)
/// on the same inputs: one implementation, two front doors.
#[test]
fn build_spec_equals_step_by_step() {
    let inputs = inputs();
    let tmp = tempfile::tempdir().unwrap();
    let root = stage_example_root(tmp.path(), &inputs);
    let (initrd, uki) = build_example(tmp.path(), &root, &inputs, "zstd");
    let spec = write_spec(tmp.path(), &root, &inputs, "");
    run(cvmkit(tmp.path()).arg("build").arg("--spec").arg(&spec).args(["--out", "out"]), true);
    assert_eq!(std::fs::read(tmp.path().join("out/initrd.img")).unwrap(), std::fs::read(initrd).unwrap());
    assert_eq!(std::fs::read(tmp.path().join("out/uki.efi")).unwrap(), std::fs::read(uki).unwrap());
}

/// A misspelt key is an error naming the spec, not a silently ignored setting.
#[test]
fn build_spec_rejects_unknown_keys() {
    let inputs = inputs();
    let tmp = tempfile::tempdir().unwrap();
    let root = stage_example_root(tmp.path(), &inputs);
    let spec = write_spec(tmp.path(), &root, &inputs, "\"sorce_date_epoch\": 5");
    let out = run(cvmkit(tmp.path()).arg("build").arg("--spec").arg(&spec).args(["--out", "out"]), false);
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("image.json") && err.contains("sorce_date_epoch"), "{err}");
    assert!(!tmp.path().join("out/uki.efi").exists());
}
