//! The writer checked by real tools (dosfstools' `fsck.fat`, mtools' `mdir`/`mtype`/`minfo`), and
//! the reader checked against volumes those tools made (`mkfs.fat -F 12/16/32` + `mcopy`).
//! Fails (does not skip) when a tool is missing, naming the package.

use std::path::Path;
use std::process::{Command, Output};

use cvmkit_fat::{FatBuilder, FatOptions, FatType, FatVolume, FileId, WriteError};

use cvmkit_testutil::require_tool;

/// Runs `cmd` (bounded in time) and fails the test if it fails.
fn run(cmd: &mut Command) -> Output {
    let out = cvmkit_testutil::output_deadline(cmd, cvmkit_testutil::RUN_TIMEOUT);
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn mtools(tool: &str, image: &Path) -> Command {
    let mut c = Command::new(require_tool(tool, "mtools"));
    // mtools prints long names in the locale's charset: without a UTF-8 locale (a Nix build
    // sandbox, `env -i`) "Ünïcödé ✓.txt" comes out as "_n_c_d_ _.txt". C.UTF-8 is built into
    // glibc (>= 2.35), so it needs no locale files.
    c.env("LC_ALL", "C.UTF-8");
    c.arg("-i").arg(image);
    c
}

/// Deterministic pseudo-random contents.
fn bytes(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

struct Tree {
    builder: FatBuilder,
    contents: Vec<(String, Vec<u8>)>,
}

/// A tree with long and short names, nesting, an empty file, a file of exactly one cluster and
/// a directory large enough to need several clusters.
fn sample_tree() -> Tree {
    let mut builder = FatBuilder::new();
    let mut contents = Vec::new();
    let mut add = |b: &mut FatBuilder, path: &str, data: Vec<u8>| {
        let id = b.add_file(path, data.len() as u64).unwrap();
        assert_eq!(id, FileId(contents.len()));
        contents.push((path.to_string(), data));
    };
    add(&mut builder, "EFI/BOOT/BOOTX64.EFI", bytes(3_000_001, 1));
    add(
        &mut builder,
        "EFI/Linux/cvmkit-6.1.0 (signed).efi",
        bytes(70_000, 2),
    );
    add(&mut builder, "loader/loader.conf", b"timeout 0\n".to_vec());
    add(&mut builder, "empty", Vec::new());
    add(&mut builder, "one-cluster.bin", bytes(512, 3));
    add(&mut builder, "Ünïcödé ✓.txt", b"utf-16 names\n".to_vec());
    builder.add_dir("EFI/empty dir").unwrap();
    for i in 0..40 {
        add(
            &mut builder,
            &format!("many/a rather long file name number {i:03}.data"),
            bytes(100 + i, 10 + i as u32),
        );
    }
    Tree { builder, contents }
}

fn write_image(tree: &Tree, options: &FatOptions, path: &Path) -> Vec<u8> {
    let layout = tree.builder.layout(options).unwrap();
    let mut image = Vec::new();
    layout
        .write_to(&mut image, |id| Ok(&tree.contents[id.0].1[..]))
        .unwrap();
    std::fs::write(path, &image).unwrap();
    image
}

fn options(size: u64) -> FatOptions {
    FatOptions {
        volume_label: "CVMKIT ESP".into(),
        hidden_sectors: 2048,
        ..FatOptions::new(size, 0xC0FF_EE42, 1_700_000_001)
    }
}

#[test]
fn fsck_and_mtools_accept_the_writer_output() {
    let tmp = tempfile::tempdir().unwrap();
    let tree = sample_tree();
    // 40 MiB: 512-byte clusters; 300 MiB: 4 KiB clusters.
    for size in [40u64 << 20, 300 << 20] {
        let img = tmp.path().join(format!("esp-{size}.img"));
        let image = write_image(&tree, &options(size), &img);
        assert_eq!(image.len() as u64, size);

        let fsck = run(Command::new(require_tool("fsck.fat", "dosfstools"))
            .args(["-n", "-v"])
            .arg(&img));
        let report = String::from_utf8_lossy(&fsck.stdout);
        assert!(report.contains("2 FATs, 32 bit entries"), "{report}");
        let cluster = if size == 40 << 20 {
            "512 bytes per cluster"
        } else {
            "4096 bytes per cluster"
        };
        assert!(report.contains(cluster), "{report}");
        assert!(
            !report.contains("wrong") && !report.contains("Free cluster summary"),
            "{report}"
        );

        let info = String::from_utf8_lossy(&run(&mut mtools("minfo", &img)).stdout).into_owned();
        assert!(info.contains("serial number: C0FFEE42"), "{info}");
        assert!(info.contains("disk label=\"CVMKIT ESP \""), "{info}");

        let listing =
            String::from_utf8_lossy(&run(mtools("mdir", &img).args(["-/", "-a", "::/"])).stdout)
                .into_owned();
        for name in [
            "BOOTX64  EFI   3000001",
            "cvmkit-6.1.0 (signed).efi",
            "Ünïcödé ✓.txt",
            "empty dir",
            "a rather long file name number 039.data",
        ] {
            assert!(
                listing.contains(name),
                "{name} missing from mdir:\n{listing}"
            );
        }
        assert!(
            listing.contains("2023-11-14  22:13"),
            "timestamp missing from mdir:\n{listing}"
        );
        for (path, data) in &tree.contents {
            let out = run(mtools("mtype", &img).arg(format!("::/{path}")));
            assert!(
                out.stdout == *data,
                "mtype {path}: {} bytes differ",
                data.len()
            );
        }
    }
}

#[test]
fn reader_walks_what_the_writer_wrote() {
    let tmp = tempfile::tempdir().unwrap();
    let tree = sample_tree();
    let image = write_image(&tree, &options(40 << 20), &tmp.path().join("esp.img"));
    let vol = FatVolume::parse(&image).unwrap();
    assert_eq!(vol.fat_type(), FatType::Fat32);
    assert_eq!(vol.bpb().bs_vol_id, 0xC0FF_EE42);
    assert_eq!(vol.bpb().hidd_sec, 2048);
    let walked = vol.walk().unwrap();
    for (path, data) in &tree.contents {
        let hit = walked
            .iter()
            .find(|w| &w.path == path)
            .unwrap_or_else(|| panic!("{path} not walked"));
        assert_eq!(&vol.read_file(&hit.entry).unwrap(), data, "{path}");
        assert_eq!(hit.entry.modified.ymd_hms(), (2023, 11, 14, 22, 13, 20));
        assert_eq!(hit.entry.created.tenths, 100);
    }
    assert!(walked
        .iter()
        .any(|w| w.path == "EFI/empty dir" && w.entry.is_dir()));
    // BOOTX64.EFI is a plain 8.3 name: no long-name entries.
    let boot = vol.lookup("EFI/BOOT/BOOTX64.EFI").unwrap();
    assert!(!boot.has_long_name);
    assert_eq!(&boot.short_name, b"BOOTX64 EFI");
    // Large files start 4 KiB-aligned in the volume.
    assert_eq!(vol.cluster_offset(boot.first_cluster) % 4096, 0);
}

#[test]
fn same_inputs_same_bytes_and_timestamp_only_changes_times() {
    let tmp = tempfile::tempdir().unwrap();
    let tree = sample_tree();
    let a = write_image(&tree, &options(40 << 20), &tmp.path().join("a.img"));
    let b = write_image(
        &sample_tree(),
        &options(40 << 20),
        &tmp.path().join("b.img"),
    );
    assert!(a == b, "two builds of the same tree differ");
    let later = FatOptions {
        timestamp: 1_800_000_000,
        ..options(40 << 20)
    };
    let c = write_image(&tree, &later, &tmp.path().join("c.img"));
    let diff: Vec<usize> = (0..a.len()).filter(|&i| a[i] != c[i]).collect();
    assert!(!diff.is_empty());
    // Only bytes of directory entries' time fields (offsets 13..26 of a 32-byte entry) change.
    let vol = FatVolume::parse(&a).unwrap();
    let data = vol.cluster_offset(2) as usize;
    for &i in &diff {
        assert!(
            i >= data && (13..26).contains(&((i - data) % 32)),
            "byte {i} changed"
        );
    }
    // The serial is exactly what was given.
    let d = write_image(
        &tree,
        &FatOptions {
            volume_id: 1,
            ..options(40 << 20)
        },
        &tmp.path().join("d.img"),
    );
    assert_eq!((0..a.len()).filter(|&i| a[i] != d[i]).count(), 8); // BS_VolID in the boot sector and its backup
}

#[test]
fn reader_reads_volumes_made_by_mkfs_fat_and_mcopy() {
    let tmp = tempfile::tempdir().unwrap();
    let files: Vec<(&str, Vec<u8>)> = vec![
        ("BOOTX64.EFI", bytes(200_000, 7)),
        ("Long File Name With Spaces.txt", b"hello\n".to_vec()),
        ("lower.txt", b"lower case short name\n".to_vec()),
        ("empty.bin", Vec::new()),
    ];
    for (fat, size_kib, expect) in [
        ("12", 2048u64, FatType::Fat12),
        ("16", 32768, FatType::Fat16),
        ("32", 65536, FatType::Fat32),
    ] {
        let img = tmp.path().join(format!("fat{fat}.img"));
        run(Command::new(require_tool("mkfs.fat", "dosfstools"))
            .args(["-F", fat, "-n", "MKFS", "-i", "12345678", "-C"])
            .arg(&img)
            .arg(size_kib.to_string()));
        run(mtools("mmd", &img).args(["::/EFI", "::/EFI/BOOT", "::/EFI/A Long Directory"]));
        for (name, data) in &files {
            let src = tmp.path().join(name);
            std::fs::write(&src, data).unwrap();
            run(mtools("mcopy", &img)
                .arg(&src)
                .arg(format!("::/EFI/BOOT/{name}")));
        }
        run(mtools("mdeltree", &img).arg("::/EFI/A Long Directory"));
        let image = std::fs::read(&img).unwrap();
        let vol = FatVolume::parse(&image).unwrap();
        assert_eq!(vol.fat_type(), expect, "FAT{fat}");
        assert_eq!(vol.bpb().bs_vol_id, 0x1234_5678);
        assert_eq!(vol.volume_label().as_deref(), Some("MKFS"));
        let walked = vol.walk().unwrap();
        let paths: Vec<&str> = walked.iter().map(|w| w.path.as_str()).collect();
        assert!(
            !paths.iter().any(|p| p.contains("A Long Directory")),
            "deleted entry listed: {paths:?}"
        );
        for (name, data) in &files {
            let path = format!("EFI/BOOT/{name}");
            let hit = walked
                .iter()
                .find(|w| w.path == path)
                .unwrap_or_else(|| panic!("FAT{fat}: {path} not in {paths:?}"));
            assert_eq!(&vol.read_file(&hit.entry).unwrap(), data, "FAT{fat} {path}");
            let runs: usize = vol.file_data(&hit.entry).map(|r| r.unwrap().len()).sum();
            assert_eq!(runs, data.len());
        }
    }
}

#[test]
fn bad_inputs_give_clear_errors() {
    let mut b = FatBuilder::new();
    b.add_file("EFI/BOOT/BOOTX64.EFI", 10).unwrap();
    let msg = |e: WriteError| e.to_string();
    assert_eq!(
        msg(b.add_file("efi/boot/bootx64.efi", 1).unwrap_err()),
        "cannot add \"efi/boot/bootx64.efi\": the name exists already (names ignore case)"
    );
    assert_eq!(
        msg(b.add_file("EFI/BOOT/BOOTX64.EFI/x", 1).unwrap_err()),
        "cannot add \"EFI/BOOT/BOOTX64.EFI/x\": a parent is a file"
    );
    assert_eq!(
        msg(b.add_file("a:b", 1).unwrap_err()),
        "cannot put \"a:b\" on a FAT volume: FAT names cannot contain control characters or any of \" * / : < > ? \\ |"
    );
    assert!(msg(b.add_file("x//y", 1).unwrap_err()).contains("a path component is empty"));
    assert!(
        msg(b.add_file("trailing.", 1).unwrap_err()).contains("cannot end in a space or a period")
    );
    assert!(msg(b.add_file(&"n".repeat(256), 1).unwrap_err()).contains("at most 255"));
    assert_eq!(
        msg(b.add_file("huge", 1 << 32).unwrap_err()),
        "\"huge\" is 4294967296 bytes; a FAT32 file holds at most 4294967295"
    );
    let too_small = b.layout(&FatOptions::new(16 << 20, 1, 0)).unwrap_err();
    assert!(
        matches!(too_small, WriteError::TooSmall { .. }),
        "{too_small}"
    );
    assert!(
        too_small
            .to_string()
            .contains("fewer than the 65525 FAT32 needs; make it at least"),
        "{too_small}"
    );
    let min = match too_small {
        WriteError::TooSmall { min, .. } => min,
        _ => unreachable!(),
    };
    b.layout(&FatOptions::new(min, 1, 0)).unwrap();
    let bad_label = FatOptions {
        volume_label: "esp".into(),
        ..FatOptions::new(64 << 20, 1, 0)
    };
    assert!(b
        .layout(&bad_label)
        .unwrap_err()
        .to_string()
        .starts_with("volume label \"esp\" is invalid"));

    let mut big = FatBuilder::new();
    big.add_file("EFI/BOOT/BOOTX64.EFI", 50 << 20).unwrap();
    let e = big.layout(&FatOptions::new(48 << 20, 1, 0)).unwrap_err();
    assert!(e.to_string().contains("make the volume larger"), "{e}");
    let need = big
        .min_volume_size(&FatOptions::new(0, 1, 0), 1 << 20)
        .unwrap();
    assert!(need > 50 << 20 && need < 52 << 20, "{need}");
    big.layout(&FatOptions::new(need, 1, 0)).unwrap();
    // One MiB less is out of space for the files, not too small for FAT32.
    let less = big.layout(&FatOptions::new(need - (1 << 20), 1, 0));
    assert!(
        matches!(less, Err(WriteError::NoSpace { size, .. }) if size == need - (1 << 20)),
        "{less:?}"
    );

    // A reader that gives the wrong number of bytes.
    let layout = big.layout(&FatOptions::new(need, 1, 0)).unwrap();
    let err = layout
        .write_to(&mut std::io::sink(), |_| Ok(&b"short"[..]))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "\"EFI/BOOT/BOOTX64.EFI\" was added as 52428800 bytes but its reader gave 5; did the file change?"
    );
}

#[test]
fn reader_rejects_corrupt_volumes_without_panicking() {
    let tree = sample_tree();
    let layout = tree.builder.layout(&options(40 << 20)).unwrap();
    let mut image = Vec::new();
    layout
        .write_to(&mut image, |id| Ok(&tree.contents[id.0].1[..]))
        .unwrap();

    assert!(matches!(
        FatVolume::parse(&image[..100]),
        Err(cvmkit_fat::ReadError::Truncated { .. })
    ));
    let mut bad = image.clone();
    bad[510] = 0;
    assert_eq!(
        FatVolume::parse(&bad).unwrap_err().to_string(),
        "no FAT boot sector: signature at byte 510 is [00, aa], expected [55, aa]"
    );
    let mut bad = image.clone();
    bad[11] = 3;
    assert_eq!(
        FatVolume::parse(&bad).unwrap_err().to_string(),
        "not a FAT volume: BPB BPB_BytsPerSec is 515, expected 512, 1024, 2048 or 4096"
    );
    // A loop in the root directory's chain.
    let vol = FatVolume::parse(&image).unwrap();
    let fat = vol.bpb().rsvd_sec_cnt as usize * 512;
    let mut bad = image.clone();
    bad[fat + 8..fat + 12].copy_from_slice(&2u32.to_le_bytes());
    let vol = FatVolume::parse(&bad).unwrap();
    assert_eq!(
        vol.walk().unwrap_err().to_string(),
        "cluster chain from 2 loops"
    );
    // A file whose chain is cut short: truncate the image in the middle of BOOTX64.EFI.
    let vol = FatVolume::parse(&image).unwrap();
    let boot = vol.lookup("EFI/BOOT/BOOTX64.EFI").unwrap();
    let cut = &image[..vol.cluster_offset(boot.first_cluster) as usize + 1000];
    let vol = FatVolume::parse(cut).unwrap();
    let boot = vol.lookup("EFI/BOOT/BOOTX64.EFI").unwrap();
    assert!(matches!(
        vol.read_file(&boot),
        Err(cvmkit_fat::ReadError::Truncated {
            what: "file data",
            ..
        })
    ));
    // Truncating every prefix of the metadata never panics.
    for len in (0..vol.cluster_offset(3) as usize).step_by(509) {
        if let Ok(v) = FatVolume::parse(&image[..len]) {
            let _ = v.walk();
            let _ = v.volume_label();
        }
    }
}
