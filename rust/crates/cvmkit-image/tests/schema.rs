//! The committed JSON Schema (nix/cvmkit.image.v1.schema.json, read by the Nix library tests)
//! is the one the Rust types generate.

use std::path::PathBuf;

fn committed() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../nix/cvmkit.image.v1.schema.json")
}

/// Fails when the types changed and the file did not; `UPDATE=1 cargo test -p cvmkit-image
/// --test schema` (or `cvmkit build --print-schema > nix/cvmkit.image.v1.schema.json`) rewrites it.
#[test]
fn committed_schema_is_generated_from_the_types() {
    let generated = cvmkit_image::schema_json();
    let path = committed();
    if std::env::var_os("UPDATE").is_some_and(|v| v == "1") {
        std::fs::write(&path, &generated).unwrap();
    }
    let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        on_disk == generated,
        "{} differs from the schema of the Rust types in cvmkit-image; regenerate it with \
         `UPDATE=1 cargo test -p cvmkit-image --test schema` (or `cvmkit build --print-schema > nix/cvmkit.image.v1.schema.json`) and commit it",
        path.display()
    );
}

/// Every example the README and the Nix library write parses; unknown keys and values do not.
#[test]
fn spec_round_trips_and_refuses_unknowns() {
    let text = r#"{"schema": "cvmkit.image/v1", "name": "x", "initrd": {"compress": "zstd:19"},
        "uki": {"stub": "/s", "kernel": "/k"}, "disk": {"format": "qcow2", "data_size": "8M"},
        "measure": [{"platform": "tpm"}, {"platform": "tdx", "firmware": "f", "ovmf_profile": "no-cc"}]}"#;
    let spec = cvmkit_image::Spec::parse(text, "t", "/base".as_ref()).unwrap();
    assert_eq!(
        spec.disk.as_ref().unwrap().format,
        cvmkit_image::DiskFormat::Qcow2
    );
    assert_eq!(
        spec.disk.as_ref().unwrap().data_size,
        Some(cvmkit_image::Size(8 << 20))
    );
    let items = spec.measure.as_ref().unwrap().as_slice();
    assert_eq!(items[1].firmware.as_deref(), Some("/base/f".as_ref()));
    assert_eq!(items[1].ovmf_profile, Some(cvmkit_image::OvmfProfile::NoCc));
    let again: cvmkit_image::Spec =
        serde_json::from_str(&serde_json::to_string(&spec).unwrap()).unwrap();
    assert_eq!(again, spec);

    for (bad, want) in [
        (
            text.replace("\"qcow2\"", "\"vmdk\""),
            "unknown variant `vmdk`",
        ),
        (
            text.replace("\"no-cc\"", "\"edk3\""),
            "item 1: unknown variant `edk3`",
        ),
        (text.replace("\"name\"", "\"nmae\""), "unknown field `nmae`"),
        (text.replace("zstd:19", "lz4"), "lz4"),
        (text.replace("8M", "8Q"), "unknown unit"),
        (
            text.replace("cvmkit.image/v1", "cvmkit.image/v2"),
            "is not \"cvmkit.image/v1\"",
        ),
    ] {
        let err = cvmkit_image::Spec::parse(&bad, "t", "/".as_ref()).unwrap_err();
        let text = format!(
            "{err}: {}",
            std::error::Error::source(&err)
                .map(|e| e.to_string())
                .unwrap_or_default()
        );
        assert!(text.contains(want), "{want}: {text}");
    }
}

/// The hand-written spec of examples/own-program follows the types.
#[test]
fn the_examples_spec_parses() {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../examples/own-program/image.json");
    if !path.exists() {
        return; // a source set without examples/ (the flake's rust-tests check)
    }
    let spec = cvmkit_image::Spec::load(&path).unwrap();
    assert_eq!(spec.schema, cvmkit_image::SCHEMA);
}

/// The enums parse from their spellings (and aliases), as the spec and the command line give them.
#[test]
fn enums_parse_from_their_spellings() {
    use cvmkit_image::{DiskFormat, OvmfProfile, SevMode};
    assert_eq!("sev-es".parse::<SevMode>().unwrap(), SevMode::Seves);
    assert_eq!("no-cc".parse::<OvmfProfile>().unwrap(), OvmfProfile::NoCc);
    for f in DiskFormat::ALL {
        assert_eq!(f.name().parse::<DiskFormat>().unwrap(), *f);
    }
    assert_eq!(
        "vmdk".parse::<DiskFormat>().unwrap_err().to_string(),
        "\"vmdk\" is not one of raw, gcp, vhd, qcow2"
    );
}
