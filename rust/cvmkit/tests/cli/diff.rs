use crate::util::*;

/// `cvmkit diff` on two disks built by cvmkit whose initramfs differ in one file's content names
/// that file through every layer (disk › ESP › UKI › .initrd › zstd › cpio › file); identical
/// builds exit 0 and say nothing; --output writes the report; bad input exits 2.
#[test]
fn diff_names_the_changed_file_through_every_layer() {
    let inputs = inputs();
    let tmp = tempfile::tempdir().unwrap();
    let mut disks = Vec::new();
    for (name, hostname) in [("a", "cvm-a\n"), ("b", "cvm-b\n"), ("c", "cvm-a\n")] {
        let dir = tmp.path().join(name);
        std::fs::create_dir(&dir).unwrap();
        let root = stage_example_root(&dir, &inputs);
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::write(root.join("etc/hostname"), hostname).unwrap();
        let (_, uki) = build_example(&dir, &root, &inputs, "zstd");
        let disk = dir.join("disk.raw");
        run(cvmkit(&dir).args(["disk", "--seed", "s", "--uki"]).arg(&uki).arg("-o").arg(&disk), true);
        disks.push(disk);
    }
    // a vs c: same inputs in other directories, identical.
    let same = run(cvmkit(tmp.path()).arg("diff").arg(&disks[0]).arg(&disks[2]), true);
    assert_eq!(stdout(&same).trim(), "", "{}", stdout(&same));

    let out = run(cvmkit(tmp.path()).arg("diff").arg(&disks[0]).arg(&disks[1]).args(["--json", "-o", "report.json"]), false);
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let paths: Vec<String> = report["differences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["path"].as_array().unwrap().iter().map(|p| p.as_str().unwrap()).collect::<Vec<_>>().join(" › "))
        .collect();
    assert!(
        paths.iter().any(|p| p.ends_with("part 1 (ESP) › EFI/BOOT/BOOTX64.EFI › .initrd › zstd › cpio › etc/hostname")),
        "{paths:#?}"
    );
    assert!(tmp.path().join("report.json").exists());

    let human = run(cvmkit(tmp.path()).arg("diff").arg(&disks[0]).arg(&disks[1]), false);
    assert!(stdout(&human).contains("etc/hostname: content differs at byte 4"), "{}", stdout(&human));

    let missing = run(cvmkit(tmp.path()).arg("diff").arg(&disks[0]).arg("no-such-disk"), false);
    assert_eq!(missing.status.code(), Some(2));
    assert_eq!(stderr(&missing).lines().count(), 1, "{}", stderr(&missing));
}
