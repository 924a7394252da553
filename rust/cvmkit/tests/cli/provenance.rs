//! Issue 17: sbom.cdx.json (checked with the CycloneDX Python library's strict JSON validator and
//! with GNU cpio's extraction of the initrd), the provenance statement (parsed by the in-toto
//! attestation library's protobuf types, which refuse unknown fields), and a planted change in
//! one initrd file named by `cvmkit diff` and by `cvmkit verify --candidate`.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::*;

/// The kernel/default.nix pin (SRI) and its hex, as kernel.org's sha256sums.asc spells it.
const KERNEL_SRC_SRI: &str = "sha256-GJ0fQJzvjQ0jQhDgRZUXLfOS+MspfhS0R+2Vcg4v2UA=";
const KERNEL_SRC_HEX: &str = "189d1f409cef8d0d234210e04595172df392f8cb297e14b447ed95720e2fd940";

/// A root tree with busybox, /init and an application file `usr/bin/app` holding `app`.
fn stage(dir: &Path, inputs: &Inputs, app: &str) -> PathBuf {
    let root = stage_example_root(dir, inputs);
    std::fs::create_dir_all(root.join("usr/bin")).unwrap();
    std::fs::write(root.join("usr/bin/app"), app).unwrap();
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::write(root.join("etc/hostname"), "cvm\n").unwrap();
    root
}

/// An image spec over `root` with a disk, TPM and TDX predictions and SBOM metadata for the
/// tree and the kernel (the shape the Nix library writes from derivations' `meta`).
fn spec(dir: &Path, root: &Path, inputs: &Inputs, compress: &str) -> PathBuf {
    let config = dir.join("kernel.config");
    std::fs::write(&config, "CONFIG_INTEL_TDX_GUEST=y\n").unwrap();
    let spec = serde_json::json!({
        "schema": "cvmkit.image/v1",
        "name": "sbom-example",
        "source_date_epoch": 1700000000,
        "initrd": { "trees": [root], "spec_files": [example_file("initrd.spec")], "compress": compress },
        "uki": { "stub": inputs.stub, "kernel": inputs.kernel, "cmdline": "console=ttyS0" },
        "disk": { "format": "raw" },
        "measure": [
            { "platform": "tpm" },
            { "platform": "tdx", "firmware": inputs.ovmf, "ovmf_profile": "edk2-202411" }
        ],
        "components": [
            { "path": root, "name": "example-root", "version": "1.0", "licenses": ["GPL-2.0-only", "Example Licence"] },
            { "path": inputs.kernel, "name": "linux", "version": "6.18.5", "licenses": ["GPL-2.0-only"],
              "source": { "url": "mirror://kernel/linux/kernel/v6.x/linux-6.18.5.tar.xz", "hash": KERNEL_SRC_SRI },
              "config": config }
        ]
    });
    let path = dir.join("image.json");
    std::fs::write(&path, spec.to_string()).unwrap();
    path
}

fn build(dir: &Path, spec: &Path, out: &str) -> PathBuf {
    run(cvmkit(dir).arg("build").arg("--spec").arg(spec).args(["-o", out]), true);
    dir.join(out)
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn python(script: &str, args: &[&Path]) -> String {
    let out = run(Command::new(cvmkit_testutil::python()).arg("-c").arg(script).args(args), true);
    stdout(&out)
}

const VALIDATE_CYCLONEDX: &str = r#"
import sys
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
errors = JsonStrictValidator(SchemaVersion.V1_6).validate_str(open(sys.argv[1]).read())
if errors is not None:
    sys.exit("invalid CycloneDX 1.6: %s" % errors)
print("valid")
"#;

#[test]
fn sbom_is_valid_cyclonedx_1_6_and_lists_every_initrd_file_as_gnu_cpio_extracts_it() {
    let inputs = inputs();
    let tmp = tempfile::tempdir().unwrap();
    let root = stage(tmp.path(), &inputs, "app v1\n");
    let out = build(tmp.path(), &spec(tmp.path(), &root, &inputs, "none"), "out");
    let sbom_path = out.join("sbom.cdx.json");
    assert_eq!(python(VALIDATE_CYCLONEDX, &[&sbom_path]).trim(), "valid");

    // A planted schema violation is caught, so the validator really runs.
    let mut broken = json(&sbom_path);
    broken["components"][0]["type"] = "no-such-type".into();
    let bad = tmp.path().join("broken.json");
    std::fs::write(&bad, broken.to_string()).unwrap();
    let r = output(Command::new(cvmkit_testutil::python()).arg("-c").arg(VALIDATE_CYCLONEDX).arg(&bad));
    assert!(!r.status.success(), "the validator accepted an invalid document");

    // Every regular file GNU cpio extracts from initrd.img, with its sha256, and nothing else.
    let x = tmp.path().join("x");
    std::fs::create_dir_all(&x).unwrap();
    // Through sh: `run` gives the command an empty stdin.
    let cpio = require_tool("cpio");
    run(Command::new("sh").arg("-c").arg(r#""$0" -idm --quiet --no-absolute-filenames < "$1""#).arg(&cpio).arg(out.join("initrd.img")).current_dir(&x), true);
    let mut extracted = std::collections::BTreeMap::new();
    let walk = run(Command::new("find").arg(".").args(["-type", "f"]).current_dir(&x), true);
    for f in stdout(&walk).lines() {
        extracted.insert(f.trim_start_matches('.').to_string(), sha256_hex(&x.join(f)));
    }
    let sbom = json(&sbom_path);
    let mut listed = std::collections::BTreeMap::new();
    for c in sbom["components"].as_array().unwrap() {
        for f in c["components"].as_array().into_iter().flatten() {
            listed.insert(f["name"].as_str().unwrap().to_string(), f["hashes"][0]["content"].as_str().unwrap().to_string());
        }
    }
    assert_eq!(listed, extracted);
    assert!(listed.contains_key("/usr/bin/app") && listed.contains_key("/bin/busybox"));

    let by_role = |role: &str| -> Vec<serde_json::Value> {
        sbom["components"].as_array().unwrap().iter().filter(|c| c["properties"].as_array().unwrap().iter().any(|p| p["name"] == "cvmkit:role" && p["value"] == role)).cloned().collect()
    };
    let prop = |c: &serde_json::Value, name: &str| c["properties"].as_array().unwrap().iter().find(|p| p["name"] == name).map(|p| p["value"].as_str().unwrap().to_string());
    let kernel = &by_role("kernel")[0];
    assert_eq!(kernel["name"], "linux");
    assert_eq!(kernel["version"], "6.18.5");
    assert_eq!(kernel["hashes"][0]["content"].as_str().unwrap(), sha256_hex(&inputs.kernel));
    assert_eq!(kernel["externalReferences"][0]["hashes"][0]["content"], KERNEL_SRC_HEX);
    assert_eq!(prop(kernel, "cvmkit:kernel-config-sha256").unwrap(), sha256_hex(&tmp.path().join("kernel.config")));
    // The release the bzImage itself names (Debian's kernel: `6.1.0-N-amd64`).
    assert!(prop(kernel, "cvmkit:kernel-release").unwrap().starts_with("6.1.0-"), "{kernel}");
    let stub = &by_role("stub")[0];
    assert_eq!(stub["hashes"][0]["content"].as_str().unwrap(), sha256_hex(&inputs.stub));
    assert!(stub["version"].as_str().unwrap().starts_with("25"), "{stub}");
    let firmware = by_role("firmware");
    assert_eq!(firmware.len(), 1);
    assert_eq!(firmware[0]["hashes"][0]["content"].as_str().unwrap(), sha256_hex(&inputs.ovmf));
    let tree = by_role("initrd").into_iter().find(|c| c["name"] == "example-root").unwrap();
    assert_eq!(tree["version"], "1.0");
    assert_eq!(tree["licenses"], serde_json::json!([{ "license": { "id": "GPL-2.0-only" } }, { "license": { "name": "Example Licence" } }]));
    // No path of this machine reaches the document (the tree is in a temporary directory).
    let text = std::fs::read_to_string(&sbom_path).unwrap();
    assert!(!text.contains(tmp.path().to_str().unwrap()));
    assert_eq!(sbom["metadata"]["timestamp"], "2023-11-14T22:13:20Z");
    let image = &sbom["metadata"]["component"];
    assert_eq!(prop(image, "cvmkit:output:uki.efi").unwrap(), sha256_hex(&out.join("uki.efi")));
}

const PARSE_STATEMENT: &str = r#"
import json, sys
from google.protobuf import json_format
from in_toto_attestation.v1 import statement_pb2
from in_toto_attestation.v1.statement import Statement
from in_toto_attestation.predicates.provenance.v1 import provenance_pb2
d = json.load(open(sys.argv[1]))
st = json_format.ParseDict(d, statement_pb2.Statement())
Statement.copy_from_pb(st).validate()
p = json_format.ParseDict(d["predicate"], provenance_pb2.Provenance())
assert d["predicateType"] == "https://slsa.dev/provenance/v1"
for s in st.subject:
    print(s.name, s.digest["sha256"])
for r in p.build_definition.resolved_dependencies:
    print("dep", r.name, r.uri, r.digest.get("gitCommit", "-"))
"#;

#[test]
fn provenance_statement_parses_as_in_toto_slsa_v1_with_the_outputs_and_locked_inputs() {
    let inputs = inputs();
    let tmp = tempfile::tempdir().unwrap();
    let root = stage(tmp.path(), &inputs, "app v1\n");
    let out = build(tmp.path(), &spec(tmp.path(), &root, &inputs, "zstd"), "out");
    let lock = repo_root().join("flake.lock");
    let rev = "0123456789abcdef0123456789abcdef01234567";
    run(
        cvmkit(tmp.path())
            .arg("provenance")
            .arg(&out)
            .args(["--image", "sbom-example", "--flake", "github:cvmkit/cvmkit", "--source-rev", rev, "--flake-lock"])
            .arg(&lock)
            .args(["-o", "statement.json"]),
        true,
    );
    let printed = python(PARSE_STATEMENT, &[&tmp.path().join("statement.json")]);
    let lock_json = json(&lock);
    let nixpkgs_rev = lock_json["nodes"]["nixpkgs"]["locked"]["rev"].as_str().unwrap();
    let expected = format!(
        "uki.efi {}\ndisk.raw {}\nmeasurements.json {}\nsbom.cdx.json {}\ndep source github:cvmkit/cvmkit {rev}\ndep nixpkgs git+https://github.com/NixOS/nixpkgs {nixpkgs_rev}\n",
        sha256_hex(&out.join("uki.efi")),
        sha256_hex(&out.join("disk.raw")),
        sha256_hex(&out.join("measurements.json")),
        sha256_hex(&out.join("sbom.cdx.json")),
    );
    assert_eq!(printed, expected);
    let st = json(&tmp.path().join("statement.json"));
    assert_eq!(st["predicate"]["buildDefinition"]["externalParameters"]["image"], "sbom-example");
    assert_eq!(st["predicate"]["runDetails"]["builder"]["version"]["cvmkit"], env!("CARGO_PKG_VERSION"));
    assert_eq!(st["predicate"]["buildDefinition"]["resolvedDependencies"][1]["annotations"]["narHash"], lock_json["nodes"]["nixpkgs"]["locked"]["narHash"]);

    // Not an image directory, a broken lock: one line naming the file, exit 2, nothing written.
    let bad_lock = tmp.path().join("bad.lock");
    std::fs::write(&bad_lock, "{").unwrap();
    for (args, words) in [
        (vec!["provenance".into(), tmp.path().join("root").display().to_string(), "--image".into(), "x".into()], "has no uki.efi"),
        (vec!["provenance".into(), out.display().to_string(), "--image".into(), "x".into(), "--flake-lock".into(), bad_lock.display().to_string()], "bad.lock: not JSON"),
    ] {
        let r = output(cvmkit(tmp.path()).args(&args).args(["-o", "none.json"]));
        assert_eq!(r.status.code(), Some(2), "{}", stderr(&r));
        let err = stderr(&r);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains(words), "{err}");
        assert!(!tmp.path().join("none.json").exists());
    }
}

/// The TDX registers of a measurements.json, by name.
fn tdx_registers(out: &Path) -> std::collections::BTreeMap<String, String> {
    let docs = json(&out.join("measurements.json"));
    let tdx = docs.as_array().unwrap().iter().find(|d| d["platform"] == "tdx").unwrap();
    tdx["registers"].as_array().unwrap().iter().map(|r| (r["name"].as_str().unwrap().to_string(), r["value"].as_str().unwrap().to_string())).collect()
}

#[test]
fn a_planted_change_in_one_initrd_file_is_named_by_diff_and_by_verify() {
    let inputs = inputs();
    let tmp = tempfile::tempdir().unwrap();
    let (da, db) = (tmp.path().join("a"), tmp.path().join("b"));
    std::fs::create_dir_all(&da).unwrap();
    std::fs::create_dir_all(&db).unwrap();
    let ra = stage(&da, &inputs, "app v1\n");
    let rb = stage(&db, &inputs, "app v2\n");
    let a = build(&da, &spec(&da, &ra, &inputs, "zstd"), "image");
    let b = build(&db, &spec(&db, &rb, &inputs, "zstd"), "image");
    let (ha, hb) = (sha256_hex(&ra.join("usr/bin/app")), sha256_hex(&rb.join("usr/bin/app")));
    let named = format!("initrd changed: /usr/bin/app (example-root) sha256 {} -> {}", &ha[..16], &hb[..16]);

    // The differ: through the layers, then the SBOM's component.
    let d = run(cvmkit(tmp.path()).arg("diff").arg(&a).arg(&b), false);
    assert_eq!(d.status.code(), Some(1));
    let text = stdout(&d);
    let components: Vec<&str> = text.lines().skip_while(|l| *l != "components (sbom.cdx.json):").skip(1).collect();
    assert_eq!(components, vec![format!("  {named}")], "{text}");
    let dj = run(cvmkit(tmp.path()).arg("diff").arg(&a).arg(&b).arg("--json"), false);
    let dj: serde_json::Value = serde_json::from_slice(&dj.stdout).unwrap();
    assert_eq!(dj["components"], serde_json::json!([{ "change": "file-changed", "component": "example-root", "role": "initrd", "path": "/usr/bin/app", "a": ha, "b": hb }]));

    // Evidence that reports image B's registers: a real TDX quote (COS 113 on GCE, testdata) with
    // B's predicted MRTD, RTMR1 and RTMR2 written over its own (RTMR0 is not predicted without a
    // capture: the firmware's configuration). Its signature no longer holds (the
    // verdict says so); the registers are what a VM booting B would report.
    let mut quote = std::fs::read(fixtures().join("evidence/tdx/go-tdx-guest/cos-113-tdx-quote.dat")).unwrap();
    assert_eq!(&quote[0..2], &[4, 0], "a v4 quote");
    let regs = tdx_registers(&b);
    let ra_regs = tdx_registers(&a);
    assert_eq!(regs["MRTD"], ra_regs["MRTD"]);
    assert_ne!(regs["RTMR1"], ra_regs["RTMR1"]);
    assert_ne!(regs["RTMR2"], ra_regs["RTMR2"]);
    // TD report body (Intel TDX DCAP Quote Library spec, Quote v4): after the 48-byte header,
    // MRTD at +136, RTMR0-3 at +328 + 48·i.
    for (name, offset) in [("MRTD", 48 + 136), ("RTMR1", 48 + 376), ("RTMR2", 48 + 424)] {
        let v: Vec<u8> = (0..48).map(|i| u8::from_str_radix(&regs[name][2 * i..2 * i + 2], 16).unwrap()).collect();
        quote[offset..offset + 48].copy_from_slice(&v);
    }
    let qpath = tmp.path().join("b-quote.dat");
    std::fs::write(&qpath, &quote).unwrap();
    let verify = |extra: &[&Path]| {
        let mut c = cvmkit(tmp.path());
        c.args(["verify", "tdx"]).arg(&qpath).arg("--at=2025-01-01T00:00:00Z").arg("--expect").arg(a.join("measurements.json")).arg("--json");
        for dir in extra {
            c.arg("--candidate").arg(dir);
        }
        let out = run(&mut c, false);
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        v["registers"].as_array().unwrap().iter().map(|r| (r["name"].as_str().unwrap().to_string(), (r["status"].as_str().unwrap().to_string(), r["explanation"].clone()))).collect::<std::collections::BTreeMap<_, _>>()
    };
    let with = verify(&[&b]);
    assert_eq!(with["MRTD"].0, "MATCH");
    for r in ["RTMR1", "RTMR2"] {
        assert_eq!(with[r].0, "MISMATCH");
        assert_eq!(with[r].1, serde_json::json!([format!("{r}: the reported value is {}'s prediction; what changed:", b.display()), named]), "{r}");
    }
    // Without a candidate: the components that feed the register, from A's SBOM.
    let without = verify(&[]);
    let line = without["RTMR2"].1[0].as_str().unwrap().to_string();
    assert!(line.starts_with("RTMR2 is fed by: kernel linux 6.18.5, initrd example-root 1.0 ("), "{line}");
    // A candidate that does not predict the reported value is not blamed.
    let other = verify(&[&a]);
    assert!(other["RTMR2"].1[0].as_str().unwrap().starts_with("RTMR2 is fed by:"));
}
