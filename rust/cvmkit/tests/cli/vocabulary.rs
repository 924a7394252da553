//! One name and one unit per concept across subcommands; old spellings stay as aliases.

use crate::util::*;

fn help(args: &[&str]) -> String {
    let tmp = tempfile::tempdir().unwrap();
    stdout(&run(cvmkit(tmp.path()).args(args).arg("--help"), true))
}

#[test]
fn outputs_vcpus_and_memory_have_one_name_each() {
    // -o/--output everywhere a file or directory is written (build kept --out as an alias).
    for cmd in [&["build"][..], &["initrd"], &["uki"], &["disk"]] {
        let h = help(cmd);
        assert!(h.contains("-o, --output"), "{cmd:?}:\n{h}");
    }
    assert!(help(&["build"]).contains("[alias: --out]"), "{}", help(&["build"]));
    // --vcpus for every vCPU count (tdx had --cpus, run-local --smp: aliases now).
    for (cmd, alias) in [(&["measure", "snp"][..], None), (&["measure", "tdx"], Some("--cpus")), (&["run-local"], Some("--smp"))] {
        let h = help(cmd);
        assert!(h.contains("--vcpus"), "{cmd:?}:\n{h}");
        if let Some(a) = alias {
            assert!(h.contains(&format!("[alias: {a}]")), "{cmd:?}:\n{h}");
        }
    }
    // Memory is a size with a unit in both (a plain number is MiB, as for QEMU's -m).
    assert!(help(&["run-local"]).contains("--memory <SIZE>"), "{}", help(&["run-local"]));
    assert!(help(&["measure", "tdx"]).contains("--memory <MEMORY>"));
    // run-local's IMAGE is required, and its usage says so.
    assert!(help(&["run-local"]).contains("Usage: cvmkit run-local [OPTIONS] --app <FILE> <IMAGE>")
        || help(&["run-local"]).contains("<IMAGE>"), "{}", help(&["run-local"]));
    assert!(!help(&["run-local"]).contains("[IMAGE]"), "{}", help(&["run-local"]));
    // The stub version is a flag of both UKI predictions.
    assert!(help(&["measure", "tdx"]).contains("--stub-version"));
    assert!(help(&["measure", "tpm"]).contains("--stub-version"));
}

#[test]
fn tdx_memory_and_vcpus_spellings_agree() {
    let inputs = inputs();
    let tmp = tempfile::tempdir().unwrap();
    let doc = |extra: &[&str]| -> serde_json::Value {
        let out = run(
            cvmkit(tmp.path())
                .args(["measure", "tdx", "--json", "--firmware"])
                .arg(&inputs.ovmf)
                .arg("--kernel")
                .arg(&inputs.kernel)
                .args(extra),
            true,
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let a = doc(&["--memory", "2G", "--vcpus", "2"]);
    assert_eq!(a, doc(&["--memory", "2048", "--cpus", "2"]));
    assert_eq!(a, doc(&["--memory", "2048M", "--vcpus=2"]));
    assert_eq!(a["inputs"]["vcpus"]["value"], "2", "{}", a["inputs"]);
}
