use cvmkit_disk::{write_disk, write_disk_file, DiskLayout, DiskSpec, Error, Format};

use crate::util::*;

fn err(spec: &DiskSpec, format: Format) -> String {
    let e = DiskLayout::plan(spec, format).unwrap_err();
    let msg = e.to_string();
    assert!(!msg.contains('\n'), "multi-line message: {msg}");
    msg
}

#[test]
fn uki_larger_than_the_esp() {
    let tmp = tempfile::tempdir().unwrap();
    let uki = fake_image(&tmp.path().join("big.efi"), 50 << 20, 3);
    let spec = DiskSpec {
        esp_size: Some(40 << 20),
        ..DiskSpec::new(&uki, "s", 0)
    };
    assert_eq!(
        err(&spec, Format::Raw),
        format!(
            "UKI {} of 52428800 bytes does not fit in an ESP of 41943040 bytes; give an ESP of at least 53477376 bytes, or leave the ESP size unset",
            uki.display()
        )
    );
    // The size it names works, and one MiB less does not.
    DiskLayout::plan(
        &DiskSpec {
            esp_size: Some(53_477_376),
            ..spec.clone()
        },
        Format::Raw,
    )
    .unwrap();
    let less = DiskLayout::plan(
        &DiskSpec {
            esp_size: Some(53_477_376 - (1 << 20)),
            ..spec.clone()
        },
        Format::Raw,
    );
    assert!(
        matches!(
            less,
            Err(Error::UkiDoesNotFit {
                esp_size: 52_428_800,
                needed: 53_477_376,
                ..
            })
        ),
        "{less:?}"
    );
    // Unset, the ESP is sized to fit.
    let report = DiskLayout::plan(
        &DiskSpec {
            esp_size: None,
            ..spec
        },
        Format::Raw,
    )
    .unwrap()
    .report();
    assert_eq!(report.esp.size, (2 * 50 + 16) << 20);
}

#[test]
fn esp_below_the_fat32_minimum() {
    let spec = DiskSpec {
        esp_size: Some(16 << 20),
        ..DiskSpec::new(example_uki(), "s", 0)
    };
    assert_eq!(
        err(&spec, Format::Raw),
        "an ESP of 16777216 bytes is too small for FAT32; give at least 34603008 bytes"
    );
}

#[test]
fn missing_or_unusable_inputs() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("nope.img");
    let spec = DiskSpec {
        roots: vec![missing.clone()],
        ..DiskSpec::new(example_uki(), "s", 0)
    };
    assert_eq!(
        err(&spec, Format::Raw),
        format!(
            "cannot read root image {}: No such file or directory (os error 2)",
            missing.display()
        )
    );
    let spec = DiskSpec {
        roots: vec![tmp.path().to_path_buf()],
        ..DiskSpec::new(example_uki(), "s", 0)
    };
    assert_eq!(
        err(&spec, Format::Raw),
        format!(
            "root image {} is not a regular file; give the path of an image file",
            tmp.path().display()
        )
    );
    let empty = tmp.path().join("empty.img");
    std::fs::write(&empty, b"").unwrap();
    let spec = DiskSpec {
        roots: vec![empty.clone()],
        ..DiskSpec::new(example_uki(), "s", 0)
    };
    assert_eq!(
        err(&spec, Format::Raw),
        format!("root image {} is empty", empty.display())
    );
    let spec = DiskSpec::new(&missing, "s", 0);
    assert!(
        err(&spec, Format::Raw).starts_with(&format!("cannot read UKI {}: ", missing.display()))
    );
    // Nothing is created when the plan fails.
    let out = tmp.path().join("out.raw");
    let r = write_disk_file(&spec, Format::Raw, &out);
    assert!(
        matches!(r, Err(Error::Unreadable { what: "UKI", .. })),
        "{r:?}"
    );
    assert!(!out.exists());
}

#[test]
fn zero_and_absurd_sizes() {
    let base = DiskSpec::new(example_uki(), "s", 0);
    let spec = DiskSpec {
        data_size: Some(0),
        ..base.clone()
    };
    assert_eq!(
        err(&spec, Format::Raw),
        "data partition size is 0 bytes; give at least 1 MiB, or leave it unset"
    );
    let spec = DiskSpec {
        esp_size: Some(0),
        ..base.clone()
    };
    assert_eq!(
        err(&spec, Format::Raw),
        "ESP size is 0 bytes; give at least 1 MiB, or leave it unset"
    );
    let spec = DiskSpec {
        data_size: Some(u64::MAX),
        ..base.clone()
    };
    assert_eq!(
        err(&spec, Format::Raw),
        "data partition size of 18446744073709551615 bytes is larger than the 70368744177664 bytes cvmkit supports"
    );
    let spec = DiskSpec {
        data_size: Some(3 << 40),
        ..base.clone()
    };
    assert_eq!(
        err(&spec, Format::Vhd),
        "data partition size of 3298534883328 bytes is larger than the 2190433320960 bytes a VHD can hold"
    );
    DiskLayout::plan(&spec, Format::Qcow2).unwrap();
    let spec = DiskSpec {
        disk_size: Some(10 << 20),
        ..base.clone()
    };
    assert_eq!(
        err(&spec, Format::Raw),
        "a disk of 10485760 bytes cannot hold the partitions, which need 69206016 bytes; give at least 69206016, or leave the disk size unset"
    );
    let spec = DiskSpec {
        esp_size: Some(1 << 40),
        data_size: Some(63 << 40),
        ..base.clone()
    };
    assert_eq!(
        err(&spec, Format::Raw),
        "disk the partitions need of 70368746274816 bytes is larger than the 70368744177664 bytes cvmkit supports"
    );
    let spec = DiskSpec {
        esp_size: Some(3 << 40),
        ..base
    };
    assert_eq!(
        err(&spec, Format::Raw),
        "ESP: a FAT32 volume of 3298534883328 bytes is too large: the limit with 512-byte sectors is 2 TiB"
    );
}

#[test]
fn empty_seed() {
    let spec = DiskSpec::new(example_uki(), "", 0);
    assert_eq!(
        err(&spec, Format::Raw),
        "the seed is empty: give any non-empty text (e.g. the image name); the same seed gives the same GUIDs and serial numbers"
    );
}

#[test]
fn output_must_be_empty() {
    let spec = DiskSpec::new(example_uki(), "s", 0);
    let mut out = std::io::Cursor::new(vec![1u8; 10]);
    let e = write_disk(&spec, Format::Raw, &mut out).unwrap_err();
    assert!(matches!(e, Error::OutputNotEmpty { len: 10 }));
    assert_eq!(
        e.to_string(),
        "the output already holds 10 bytes; write to a new or truncated file (the disk is written sparsely and would keep old bytes)"
    );
}

#[test]
fn input_that_changes_after_planning() {
    let tmp = tempfile::tempdir().unwrap();
    let root = fake_image(&tmp.path().join("root.img"), 1 << 20, 5);
    let spec = DiskSpec {
        roots: vec![root.clone()],
        ..DiskSpec::new(example_uki(), "s", 0)
    };
    let layout = DiskLayout::plan(&spec, Format::Raw).unwrap();
    fake_image(&root, 512 << 10, 5);
    let e = layout
        .write(&mut std::io::Cursor::new(Vec::new()))
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "{} changed while the disk was written: it was 1048576 bytes when planned, then 524288",
            root.display()
        )
    );
}

#[test]
fn format_names() {
    for f in Format::ALL {
        assert_eq!(f.name().parse::<Format>().unwrap(), f);
    }
    assert_eq!(
        "vmdk".parse::<Format>().unwrap_err().to_string(),
        "unknown disk format \"vmdk\": use raw, gcp, vhd or qcow2"
    );
}
