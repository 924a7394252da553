use std::process::Command;

use crate::util::*;

fn json(out: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).expect("inspect --json prints JSON")
}

/// The example UKI as objdump (binutils, an independent PE reader) sees it: the stub's sections
/// unchanged, then ours in ukify's order, each with the bytes we put in.
#[test]
fn uki_sections_as_objdump_sees_them() {
    let inputs = inputs();
    let tmp = tempfile::tempdir().unwrap();
    let root = stage_example_root(tmp.path(), &inputs);
    let (initrd, uki) = build_example(tmp.path(), &root, &inputs, "gzip");

    let dump = run(Command::new(require_tool("objdump")).arg("-h").arg(&uki), true);
    let names: Vec<String> = stdout(&dump)
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() >= 7 && f[0].parse::<u32>().is_ok()).then(|| f[1].to_string())
        })
        .collect();
    let stub_dump = run(Command::new(require_tool("objdump")).arg("-h").arg(&inputs.stub), true);
    let stub_sections = stdout(&stub_dump).lines().filter(|l| l.trim_start().starts_with(char::is_numeric)).count();
    assert_eq!(names.len(), stub_sections + 5, "{names:?}");
    assert_eq!(names[stub_sections..], [".osrel", ".cmdline", ".uname", ".initrd", ".linux"]);

    let report = json(&run(cvmkit(tmp.path()).arg("inspect").arg("--json").arg(&uki), true));
    let sections = report["sections"].as_array().unwrap();
    let by_name = |n: &str| sections.iter().find(|s| s["name"] == n).unwrap_or_else(|| panic!("no {n}"));
    assert_eq!(by_name(".initrd")["sha256"], sha256_hex(&initrd));
    assert_eq!(by_name(".linux")["sha256"], sha256_hex(&inputs.kernel));
    assert_eq!(report["uki"]["uname"], "6.1.0-example");
    assert!(report["uki"]["cmdline"].as_str().unwrap().starts_with("console=ttyS0 panic=-1"));
    assert!(report["uki"]["osrel"].as_str().unwrap().contains("ID=cvmkit-example"));
    assert_eq!(report["time_date_stamp"], 0);
    assert_eq!(report["signed"], false);
}

/// `cvmkit inspect` Authenticode sha256 equals pesign's (Debian's pesign, a C implementation) for
/// the signed Debian kernel, the stub and our UKI.
#[test]
fn authenticode_matches_pesign() {
    let inputs = inputs();
    let tmp = tempfile::tempdir().unwrap();
    let root = stage_example_root(tmp.path(), &inputs);
    let (_, uki) = build_example(tmp.path(), &root, &inputs, "zstd");
    for file in [&inputs.kernel, &inputs.stub, &uki] {
        let ours = json(&run(cvmkit(tmp.path()).arg("inspect").arg("--json").arg(file), true));
        let peer = run(Command::new(require_tool("pesign")).args(["-h", "-d", "sha256", "-i"]).arg(file), true);
        let peer = stdout(&peer);
        let peer = peer.trim().strip_prefix("hash: ").unwrap_or_else(|| panic!("pesign said {peer:?}"));
        assert_eq!(ours["authenticode"]["sha256"], peer, "{}", file.display());
    }
}

/// The human output names each section and the Authenticode digests.
#[test]
fn inspect_human_output() {
    let inputs = inputs();
    let tmp = tempfile::tempdir().unwrap();
    let out = run(cvmkit(tmp.path()).arg("inspect").arg(&inputs.kernel), true);
    let text = stdout(&out);
    assert!(text.contains("authenticode sha256 ") && text.contains("authenticode sha384 "), "{text}");
    assert!(text.contains(" signed"), "Debian's vmlinuz carries a signature: {text}");
    assert!(text.lines().any(|l| l.trim_start().starts_with(".text")), "{text}");
}

/// `cvmkit inspect` reads a UKI assembled by objcopy (the pre-ukify recipe, sections at fixed
/// VMAs): the .linux and .cmdline bytes are the inputs, and pesign agrees on Authenticode.
#[test]
fn inspect_reads_objcopy_built_uki() {
    let inputs = inputs();
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("cmdline"), "console=ttyS0 quiet").unwrap();
    let uki = tmp.path().join("objcopy.efi");
    run(
        Command::new(require_tool("objcopy"))
            .arg("--add-section")
            .arg(format!(".cmdline={}", tmp.path().join("cmdline").display()))
            .args(["--change-section-vma", ".cmdline=0x30000", "--add-section"])
            .arg(format!(".linux={}", inputs.kernel.display()))
            .args(["--change-section-vma", ".linux=0x2000000"])
            .arg(&inputs.stub)
            .arg(&uki),
        true,
    );
    let report = json(&run(cvmkit(tmp.path()).arg("inspect").arg("--json").arg(&uki), true));
    let sections = report["sections"].as_array().unwrap();
    let linux = sections.iter().find(|s| s["name"] == ".linux").unwrap();
    assert_eq!(linux["virtual_address"], 0x2000000);
    assert_eq!(linux["sha256"], sha256_hex(&inputs.kernel));
    assert_eq!(report["uki"]["cmdline"], "console=ttyS0 quiet");
    let peer = run(Command::new(require_tool("pesign")).args(["-h", "-d", "sha256", "-i"]).arg(&uki), true);
    assert_eq!(format!("hash: {}", report["authenticode"]["sha256"].as_str().unwrap()), stdout(&peer).trim());
}

/// `cvmkit uki` streams its initrds instead of holding them: a 512 MiB initrd (a sparse file)
/// makes a UKI of that size at a peak RSS far below it (GNU time's `%M`; it was ~1 GiB when the
/// initrd and the image were both in memory), and the sha256 it prints is the file's.
#[test]
fn uki_streams_its_initrd_in_bounded_memory() {
    use sha2::{Digest, Sha256};
    let inputs = inputs();
    let tmp = tempfile::tempdir().unwrap();
    let initrd = tmp.path().join("big.cpio");
    std::fs::File::create(&initrd).unwrap().set_len(512 << 20).unwrap();
    let uki = tmp.path().join("big.efi");
    let rss = tmp.path().join("rss");
    let out = run(
        Command::new(require_tool("time"))
            .current_dir(tmp.path())
            .env_remove("SOURCE_DATE_EPOCH")
            .args(["-f", "%M", "-o"])
            .arg(&rss)
            .arg(env!("CARGO_BIN_EXE_cvmkit"))
            .arg("uki")
            .arg("--stub")
            .arg(&inputs.stub)
            .arg("--linux")
            .arg(&inputs.kernel)
            .arg("--initrd")
            .arg(&initrd)
            .args(["--cmdline", "console=ttyS0", "-o"])
            .arg(&uki),
        true,
    );
    let kib: u64 = std::fs::read_to_string(&rss).unwrap().trim().parse().unwrap();
    assert!(kib < 128 << 10, "peak RSS {kib} KiB for a 512 MiB initrd");
    let len = std::fs::metadata(&uki).unwrap().len();
    assert!(len > 512 << 20, "{len}");
    let mut sha = Sha256::new();
    std::io::copy(&mut std::fs::File::open(&uki).unwrap(), &mut sha).unwrap();
    let first = stdout(&out).lines().next().unwrap().to_string();
    let hex: String = sha.finalize().iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(first, format!("{}: {len} bytes, sha256 {hex}", uki.display()));
}
