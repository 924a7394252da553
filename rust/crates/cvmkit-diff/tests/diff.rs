//! Pairs built with cvmkit's own crates, each with one planted change at one layer; the test
//! asserts the exact path the differ reports. Identical pairs must report nothing, and bad
//! input (truncated, corrupt, too deep, too large) must be reported, never panic.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use cvmkit_cpio::{mode, Header, Writer};
use cvmkit_diff::{diff_bytes, diff_paths, DiffKind, Difference, Options, Report, Side};
use cvmkit_initrd::{Compression, Initrd, Node, Options as InitrdOptions};

// ---------------------------------------------------------------- helpers

/// The path of an input: the environment variable `key`, else `.cache/inputs/inputs.env`.
fn input(key: &str) -> PathBuf {
    cvmkit_testutil::input(key)
}

/// An initramfs with a few entries; `hostname` is the content of `etc/hostname`.
fn initrd(hostname: &[u8], compression: Compression) -> Vec<u8> {
    let mut i = Initrd::new();
    i.insert("bin/busybox", Node::file_bytes(vec![0x7f; 5000], 0o755))
        .unwrap();
    i.insert("etc/hostname", Node::file_bytes(hostname.to_vec(), 0o644))
        .unwrap();
    i.insert(
        "etc/os-release",
        Node::file_bytes(b"ID=cvmkit\n".to_vec(), 0o644),
    )
    .unwrap();
    i.insert("bin/sh", Node::symlink("busybox")).unwrap();
    let mut cpio = Vec::new();
    i.write_cpio(&InitrdOptions::default(), &mut cpio).unwrap();
    let mut out = Vec::new();
    compression.compress(&cpio, &mut out).unwrap();
    out
}

/// A newc archive written with `cvmkit-cpio`: (name, mtime, contents) per file.
fn cpio(files: &[(&str, u32, &[u8])]) -> Vec<u8> {
    let mut w = Writer::new(Vec::new());
    for (i, (name, mtime, data)) in files.iter().enumerate() {
        let h = Header {
            ino: i as u32 + 1,
            mode: mode::S_IFREG | 0o644,
            nlink: 1,
            mtime: *mtime,
            filesize: data.len() as u32,
            ..Header::default()
        };
        w.write_entry(name.as_bytes(), &h, &mut &data[..]).unwrap();
    }
    w.finish().unwrap()
}

/// A UKI from the real stub and kernel.
fn uki(initrd: &[u8], cmdline: &str, timestamp: u32) -> Vec<u8> {
    let stub = std::fs::read(input("STUB")).unwrap();
    let kernel = std::fs::read(input("KERNEL")).unwrap();
    let parts = cvmkit_uki::UkiParts {
        linux: &kernel,
        initrds: vec![initrd],
        cmdline: Some(cmdline),
        os_release: Some(b"ID=cvmkit\n"),
        uname: Some("6.1.0-56-amd64"),
        ..Default::default()
    };
    cvmkit_uki::build_uki(&stub, &parts, timestamp).unwrap()
}

/// A disk image written by `cvmkit-disk` around `uki` bytes, as a file in `dir`.
fn disk(
    dir: &Path,
    name: &str,
    uki: &[u8],
    format: cvmkit_disk::Format,
    timestamp: u64,
) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let uki_path = dir.join(format!("{name}.uki"));
    std::fs::write(&uki_path, uki).unwrap();
    let spec = cvmkit_disk::DiskSpec {
        disk_size: Some(128 << 20),
        ..cvmkit_disk::DiskSpec::new(&uki_path, "test", timestamp)
    };
    let out = dir.join(name);
    cvmkit_disk::write_disk_file(&spec, format, &out).unwrap();
    out
}

fn paths(r: &Report) -> Vec<String> {
    r.differences.iter().map(Difference::path_string).collect()
}

/// The (path, field) of every field difference.
fn fields(r: &Report) -> Vec<(String, String)> {
    r.differences
        .iter()
        .filter_map(|d| match &d.kind {
            DiffKind::Field { field, .. } => Some((d.path_string(), field.clone())),
            _ => None,
        })
        .collect()
}

fn contents(r: &Report) -> Vec<(String, u64)> {
    r.differences
        .iter()
        .filter_map(|d| match &d.kind {
            DiffKind::Content { offset, .. } => Some((d.path_string(), *offset)),
            _ => None,
        })
        .collect()
}

fn opts() -> Options {
    Options::default()
}

// ---------------------------------------------------------------- cpio and compression

#[test]
fn identical_inputs_report_nothing() {
    let a = initrd(b"cvm\n", Compression::gzip());
    assert!(diff_bytes("initrd.img", &a, &a.clone(), &opts()).is_identical());
    assert!(diff_bytes("empty", b"", b"", &opts()).is_identical());
    let u = uki(&a, "console=ttyS0", 0);
    assert!(diff_bytes("uki.efi", &u, &u.clone(), &opts()).is_identical());
}

#[test]
fn cpio_entry_content_in_a_gzip_initrd() {
    let a = initrd(b"cvm\n", Compression::gzip());
    let b = initrd(b"cvx\n", Compression::gzip());
    let r = diff_bytes("initrd.img", &a, &b, &opts());
    assert_eq!(
        contents(&r),
        [("initrd.img › gzip › cpio › etc/hostname".to_string(), 2)]
    );
    assert_eq!(r.differences.len(), 1, "{}", r.render());
    let text = r.render();
    assert!(
        text.starts_with("initrd.img › gzip › cpio › etc/hostname: content differs at byte 2\n"),
        "{text}"
    );
    assert!(text.contains("    -cvm\n    +cvx\n"), "{text}");
}

#[test]
fn cpio_entry_content_in_a_zstd_initrd_is_found_while_streaming() {
    let a = initrd(b"cvm\n", Compression::zstd());
    let b = initrd(b"cvm-longer\n", Compression::zstd());
    let r = diff_bytes("initrd.img", &a, &b, &opts());
    assert_eq!(
        contents(&r),
        [("initrd.img › zstd › cpio › etc/hostname".to_string(), 3)]
    );
    assert_eq!(r.differences.len(), 1, "{}", r.render());
}

#[test]
fn cpio_mtime_is_a_field_difference() {
    let a = cpio(&[("etc/hostname", 0, b"cvm\n"), ("init", 0, b"#!/bin/sh\n")]);
    let b = cpio(&[
        ("etc/hostname", 1_700_000_000, b"cvm\n"),
        ("init", 0, b"#!/bin/sh\n"),
    ]);
    let r = diff_bytes("initrd.cpio", &a, &b, &opts());
    assert_eq!(r.differences.len(), 1, "{}", r.render());
    assert_eq!(
        r.differences[0].kind,
        DiffKind::Field {
            field: "mtime".into(),
            a: "1970-01-01 00:00:00 UTC (0)".into(),
            b: "2023-11-14 22:13:20 UTC (1700000000)".into(),
        }
    );
    assert_eq!(
        r.differences[0].path_string(),
        "initrd.cpio › cpio › etc/hostname"
    );
    // The same through the streaming path for compressed archives.
    let mut za = Vec::new();
    Compression::zstd().compress(&a, &mut za).unwrap();
    let mut zb = Vec::new();
    Compression::zstd().compress(&b, &mut zb).unwrap();
    let r = diff_bytes("initrd.img", &za, &zb, &opts());
    assert_eq!(
        fields(&r),
        [(
            "initrd.img › zstd › cpio › etc/hostname".to_string(),
            "mtime".to_string()
        )]
    );
}

#[test]
fn cpio_members_on_one_side_and_in_another_order_are_named() {
    let a = cpio(&[("a", 0, b"1"), ("b", 0, b"2"), ("c", 0, b"3")]);
    let b = cpio(&[("b", 0, b"2"), ("a", 0, b"1"), ("d", 0, b"4")]);
    let r = diff_bytes("x.cpio", &a, &b, &opts());
    let kinds: Vec<(String, DiffKind)> = r
        .differences
        .iter()
        .map(|d| (d.path_string(), d.kind.clone()))
        .collect();
    assert!(kinds.contains(&(
        "x.cpio › cpio › c".into(),
        DiffKind::OnlyIn {
            side: Side::A,
            what: "file".into()
        }
    )));
    assert!(kinds.contains(&(
        "x.cpio › cpio › d".into(),
        DiffKind::OnlyIn {
            side: Side::B,
            what: "file".into()
        }
    )));
    assert!(kinds.contains(&(
        "x.cpio › cpio".into(),
        DiffKind::Field {
            field: "entry order".into(),
            a: "#1 is a".into(),
            b: "#1 is b".into()
        }
    )));
    assert_eq!(r.differences.len(), 3, "{}", r.render());
}

#[test]
fn differences_per_container_are_capped_and_counted() {
    let names: Vec<String> = (0..30).map(|i| format!("f{i:02}")).collect();
    let a: Vec<(&str, u32, &[u8])> = names.iter().map(|n| (n.as_str(), 0, &b"a"[..])).collect();
    let b: Vec<(&str, u32, &[u8])> = names.iter().map(|n| (n.as_str(), 0, &b"b"[..])).collect();
    let r = diff_bytes(
        "x.cpio",
        &cpio(&a),
        &cpio(&b),
        &opts().with_max_diffs_per_container(10),
    );
    assert_eq!(r.differences.len(), 11, "{}", r.render());
    assert_eq!(r.differences[10].kind, DiffKind::More { count: 20 });
    assert!(r
        .render()
        .ends_with("x.cpio › cpio: 20 more differing entries not shown\n"));
}

#[test]
fn recompressed_identical_data_is_a_note() {
    let c = cpio(&[("a", 0, b"1")]);
    let (mut x, mut y) = (Vec::new(), Vec::new());
    Compression::Gzip { level: 1 }
        .compress(&[c.clone(), vec![0; 100_000]].concat(), &mut x)
        .unwrap();
    Compression::Gzip { level: 9 }
        .compress(&[c, vec![0; 100_000]].concat(), &mut y)
        .unwrap();
    assert_ne!(x, y);
    let r = diff_bytes("i.img", &x, &y, &opts());
    assert_eq!(r.differences.len(), 1, "{}", r.render());
    assert!(
        matches!(&r.differences[0].kind, DiffKind::Note { message } if message.contains("identical"))
    );
}

#[test]
fn a_compressed_archive_after_an_early_cpio_is_followed() {
    let early = cpio(&[("kernel/x86/microcode/GenuineIntel.bin", 0, b"ucode")]);
    let (a, b) = (
        initrd(b"cvm\n", Compression::zstd()),
        initrd(b"cvx\n", Compression::zstd()),
    );
    let r = diff_bytes(
        "initrd.img",
        &[early.clone(), a].concat(),
        &[early, b].concat(),
        &opts(),
    );
    assert_eq!(
        paths(&r),
        ["initrd.img › cpio › archive #2 › zstd › cpio › etc/hostname"]
    );
}

// ---------------------------------------------------------------- PE / UKI

#[test]
fn pe_time_date_stamp_and_the_checksum_it_changes() {
    let i = initrd(b"cvm\n", Compression::gzip());
    let r = diff_bytes(
        "uki.efi",
        &uki(&i, "console=ttyS0", 0),
        &uki(&i, "console=ttyS0", 1),
        &opts(),
    );
    assert_eq!(
        fields(&r),
        [
            ("uki.efi".to_string(), "TimeDateStamp".to_string()),
            ("uki.efi".to_string(), "CheckSum".to_string())
        ]
    );
    assert_eq!(r.differences.len(), 2, "{}", r.render());
    assert!(r.render().contains(
        "uki.efi: TimeDateStamp differs: 1970-01-01 00:00:00 UTC (0) vs 1970-01-01 00:00:01 UTC (1)\n"
    ));
}

#[test]
fn uki_cmdline_section_gets_a_text_diff() {
    let i = initrd(b"cvm\n", Compression::gzip());
    let r = diff_bytes(
        "uki.efi",
        &uki(&i, "console=ttyS0", 0),
        &uki(&i, "console=ttyS1", 0),
        &opts(),
    );
    assert_eq!(contents(&r), [("uki.efi › .cmdline".to_string(), 12)]);
    assert_eq!(
        fields(&r),
        [("uki.efi".to_string(), "CheckSum".to_string())]
    );
    assert!(
        r.render().contains("    -console=ttyS0\n"),
        "{}",
        r.render()
    );
}

#[test]
fn uki_initrd_file_is_found_through_every_layer() {
    let (a, b) = (
        initrd(b"cvm\n", Compression::gzip()),
        initrd(b"cvx\n", Compression::gzip()),
    );
    let r = diff_bytes(
        "uki.efi",
        &uki(&a, "console=ttyS0", 0),
        &uki(&b, "console=ttyS0", 0),
        &opts(),
    );
    assert!(
        contents(&r).contains(&(
            "uki.efi › .initrd › gzip › cpio › etc/hostname".to_string(),
            2
        )),
        "{}",
        r.render()
    );
    // The kernel did not change, whatever moved around it.
    assert!(
        !paths(&r).iter().any(|p| p.contains(".linux ›")),
        "{}",
        r.render()
    );
}

// ---------------------------------------------------------------- disks: GPT, FAT, VHD, tar

fn gpt_disk(part1_guid: &str) -> Vec<u8> {
    use cvmkit_gpt::{GptBuilder, ESP, LINUX_DATA};
    let mut b = GptBuilder::new(cvmkit_gpt::seeded_guid("t", "disk"), 8 << 20).unwrap();
    b.append(ESP, cvmkit_gpt::seeded_guid("t", part1_guid), "ESP", 3 << 20, 0)
        .unwrap();
    b.append(LINUX_DATA, cvmkit_gpt::seeded_guid("t", "p2"), "data", 1 << 20, 0)
        .unwrap();
    let gpt = b.finish();
    let mut disk = vec![0u8; 8 << 20];
    let primary = gpt.primary_bytes();
    disk[..primary.len()].copy_from_slice(&primary);
    let at = gpt.backup_offset() as usize;
    let backup = gpt.backup_bytes();
    disk[at..at + backup.len()].copy_from_slice(&backup);
    disk[(1 << 20) + 100] = 42; // some partition content
    disk
}

#[test]
fn gpt_partition_guid_is_a_field_of_the_partition() {
    let r = diff_bytes("disk.raw", &gpt_disk("p1"), &gpt_disk("p1-other"), &opts());
    assert!(
        fields(&r).contains(&(
            "disk.raw › part 1 (ESP)".into(),
            "unique partition GUID".into()
        )),
        "{}",
        r.render()
    );
    // Only the GUID and the CRCs that cover it differ; no partition content.
    assert!(contents(&r).is_empty(), "{}", r.render());
    for (p, f) in fields(&r) {
        assert!(
            f == "unique partition GUID" || f.ends_with("CRC32"),
            "unexpected {p}: {f}\n{}",
            r.render()
        );
    }
    assert!(diff_bytes("disk.raw", &gpt_disk("p1"), &gpt_disk("p1"), &opts()).is_identical());
}

#[test]
fn fat_file_inside_the_esp_of_a_raw_disk() {
    let dir = tempfile::tempdir().unwrap();
    let a = disk(
        &dir.path().join("a"),
        "disk.raw",
        b"MZ fake UKI one",
        cvmkit_disk::Format::Raw,
        1_700_000_000,
    );
    let b = disk(
        &dir.path().join("b"),
        "disk.raw",
        b"MZ fake UKI two",
        cvmkit_disk::Format::Raw,
        1_700_000_000,
    );
    let r = diff_paths(&a, &b, &opts()).unwrap();
    assert_eq!(
        contents(&r),
        [(
            "disk.raw › part 1 (ESP) › EFI/BOOT/BOOTX64.EFI".to_string(),
            12
        )],
        "{}",
        r.render()
    );
    assert_eq!(r.differences.len(), 1, "{}", r.render());
    let same = disk(
        &dir.path().join("c"),
        "disk.raw",
        b"MZ fake UKI one",
        cvmkit_disk::Format::Raw,
        1_700_000_000,
    );
    assert!(diff_paths(&a, &same, &opts()).unwrap().is_identical());
}

#[test]
fn fat_timestamps_are_field_differences() {
    let dir = tempfile::tempdir().unwrap();
    let a = disk(
        &dir.path().join("a"),
        "disk.raw",
        b"MZ x",
        cvmkit_disk::Format::Raw,
        1_700_000_000,
    );
    let b = disk(
        &dir.path().join("b"),
        "disk.raw",
        b"MZ x",
        cvmkit_disk::Format::Raw,
        1_700_000_100,
    );
    let r = diff_paths(&a, &b, &opts()).unwrap();
    let f = fields(&r);
    assert!(
        f.contains(&(
            "disk.raw › part 1 (ESP) › EFI/BOOT/BOOTX64.EFI".into(),
            "FAT modified time".into()
        )),
        "{}",
        r.render()
    );
    assert!(contents(&r).is_empty(), "{}", r.render());
}

#[test]
fn the_changed_initrd_file_is_named_from_a_disk() {
    let dir = tempfile::tempdir().unwrap();
    let (ia, ib) = (
        initrd(b"cvm\n", Compression::zstd()),
        initrd(b"cvx\n", Compression::zstd()),
    );
    let a = disk(
        &dir.path().join("a"),
        "disk.raw",
        &uki(&ia, "console=ttyS0", 0),
        cvmkit_disk::Format::Raw,
        0,
    );
    let b = disk(
        &dir.path().join("b"),
        "disk.raw",
        &uki(&ib, "console=ttyS0", 0),
        cvmkit_disk::Format::Raw,
        0,
    );
    let r = diff_paths(&a, &b, &opts()).unwrap();
    assert!(
        contents(&r).contains(&(
            "disk.raw › part 1 (ESP) › EFI/BOOT/BOOTX64.EFI › .initrd › zstd › cpio › etc/hostname"
                .into(),
            2
        )),
        "{}",
        r.render()
    );
}

#[test]
fn vhd_footer_fields_then_the_disk_inside() {
    let dir = tempfile::tempdir().unwrap();
    let a = disk(
        &dir.path().join("a"),
        "disk.vhd",
        b"MZ one",
        cvmkit_disk::Format::Vhd,
        1_700_000_000,
    );
    let mut b = std::fs::read(disk(
        &dir.path().join("b"),
        "disk.vhd",
        b"MZ two",
        cvmkit_disk::Format::Vhd,
        1_700_000_000,
    ))
    .unwrap();
    // Plant a change in the footer's unique id, with a valid checksum.
    let at = b.len() - 512;
    let mut footer: [u8; 512] = b[at..].try_into().unwrap();
    footer[68] ^= 0xff;
    footer[64..68].fill(0);
    let sum = cvmkit_disk::vhd_checksum(&footer);
    footer[64..68].copy_from_slice(&sum.to_be_bytes());
    b[at..].copy_from_slice(&footer);
    let bp = dir.path().join("b/disk.vhd");
    std::fs::write(&bp, &b).unwrap();
    let r = diff_paths(&a, &bp, &opts()).unwrap();
    let f = fields(&r);
    assert!(
        f.contains(&("disk.vhd".into(), "VHD Unique Id".into())),
        "{}",
        r.render()
    );
    assert!(
        f.contains(&("disk.vhd".into(), "VHD Checksum".into())),
        "{}",
        r.render()
    );
    assert_eq!(
        contents(&r),
        [(
            "disk.vhd › part 1 (ESP) › EFI/BOOT/BOOTX64.EFI".to_string(),
            3
        )],
        "{}",
        r.render()
    );
}

fn gunzip(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(b)
        .read_to_end(&mut out)
        .unwrap();
    out
}

fn gzip(b: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(b).unwrap();
    e.finish().unwrap()
}

#[test]
fn tar_header_field_of_a_gcp_image() {
    let dir = tempfile::tempdir().unwrap();
    let a = std::fs::read(disk(
        dir.path(),
        "disk.tar.gz",
        b"MZ one",
        cvmkit_disk::Format::Gcp,
        1_700_000_000,
    ))
    .unwrap();
    // Plant a change in the member's uid (header offset 108, 8 octal digits), fix the checksum.
    let mut tar = gunzip(&a);
    tar[108..116].copy_from_slice(b"0001750\0");
    tar[148..156].fill(b' ');
    let sum: u32 = tar[..512].iter().map(|&b| u32::from(b)).sum();
    tar[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    let b = gzip(&tar);
    let r = diff_bytes("disk.tar.gz", &gzip(&gunzip(&a)), &b, &opts());
    assert_eq!(
        fields(&r),
        [(
            "disk.tar.gz › gzip › tar › disk.raw".to_string(),
            "uid".to_string()
        )],
        "{}",
        r.render()
    );
    assert_eq!(r.differences.len(), 1, "{}", r.render());
}

#[test]
fn gcp_sparse_member_is_expanded_into_the_disk() {
    let dir = tempfile::tempdir().unwrap();
    let a = disk(
        &dir.path().join("a"),
        "disk.tar.gz",
        b"MZ one",
        cvmkit_disk::Format::Gcp,
        1_700_000_000,
    );
    let b = disk(
        &dir.path().join("b"),
        "disk.tar.gz",
        b"MZ two",
        cvmkit_disk::Format::Gcp,
        1_700_000_000,
    );
    let r = diff_paths(&a, &b, &opts()).unwrap();
    assert_eq!(
        contents(&r),
        [(
            "disk.tar.gz › gzip › tar › disk.raw › part 1 (ESP) › EFI/BOOT/BOOTX64.EFI".to_string(),
            3
        )],
        "{}",
        r.render()
    );
}

// ---------------------------------------------------------------- NAR and directories

/// A NAR writer, after Nix's `dumpPath`.
fn nar(entries: &[(&str, bool, &[u8])]) -> Vec<u8> {
    fn s(out: &mut Vec<u8>, b: &[u8]) {
        out.extend_from_slice(&(b.len() as u64).to_le_bytes());
        out.extend_from_slice(b);
        out.resize(out.len().div_ceil(8) * 8, 0);
    }
    let mut o = Vec::new();
    for t in ["nix-archive-1", "(", "type", "directory"] {
        s(&mut o, t.as_bytes());
    }
    for (name, exec, data) in entries {
        for t in ["entry", "(", "name"] {
            s(&mut o, t.as_bytes());
        }
        s(&mut o, name.as_bytes());
        for t in ["node", "(", "type", "regular"] {
            s(&mut o, t.as_bytes());
        }
        if *exec {
            s(&mut o, b"executable");
            s(&mut o, b"");
        }
        s(&mut o, b"contents");
        s(&mut o, data);
        s(&mut o, b")");
        s(&mut o, b")");
    }
    s(&mut o, b")");
    o
}

#[test]
fn nar_members_and_executable_bits() {
    let a = nar(&[
        ("hello", true, b"#!/bin/sh\necho hi\n"),
        ("readme", false, b"x"),
    ]);
    let b = nar(&[
        ("hello", false, b"#!/bin/sh\necho hello\n"),
        ("readme", false, b"x"),
    ]);
    let r = diff_bytes("p.nar", &a, &b, &opts());
    assert_eq!(
        fields(&r),
        [("p.nar › nar › hello".to_string(), "executable".to_string())]
    );
    assert_eq!(contents(&r), [("p.nar › nar › hello".to_string(), 16)]);
    assert!(diff_bytes("p.nar", &a, &a, &opts()).is_identical());
    // Truncated: reported, and the bytes compared.
    let r = diff_bytes("p.nar", &a, &a[..a.len() - 9], &opts());
    assert!(r
        .differences
        .iter()
        .any(|d| matches!(d.kind, DiffKind::Unreadable { side: Side::B, .. })));
}

#[test]
fn directories_compare_entries_modes_links_and_contents() {
    use std::os::unix::fs::{symlink, PermissionsExt};
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a/out"), dir.path().join("b/out"));
    for (root, host, target) in [(&a, "cvm\n", "busybox"), (&b, "cvx\n", "toybox")] {
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::write(root.join("etc/hostname"), host).unwrap();
        std::fs::write(
            root.join("initrd.img"),
            initrd(host.as_bytes(), Compression::gzip()),
        )
        .unwrap();
        symlink(target, root.join("sh")).unwrap();
    }
    std::fs::write(a.join("only-a"), "x").unwrap();
    std::fs::set_permissions(b.join("etc"), std::fs::Permissions::from_mode(0o700)).unwrap();
    let r = diff_paths(&a, &b, &opts()).unwrap();
    let p = paths(&r);
    assert!(
        p.contains(&"out › etc/hostname".to_string()),
        "{}",
        r.render()
    );
    assert!(
        p.contains(&"out › initrd.img › gzip › cpio › etc/hostname".to_string()),
        "{}",
        r.render()
    );
    assert!(
        fields(&r).contains(&("out › sh".into(), "symlink target".into())),
        "{}",
        r.render()
    );
    assert!(
        fields(&r).contains(&("out › etc".into(), "mode".into())),
        "{}",
        r.render()
    );
    assert!(r
        .differences
        .iter()
        .any(|d| d.path_string() == "out › only-a"
            && d.kind
                == DiffKind::OnlyIn {
                    side: Side::A,
                    what: "file".into()
                }));
    assert!(diff_paths(&a, &a, &opts()).unwrap().is_identical());
    let missing = dir.path().join("missing");
    let r = diff_paths(&a, &missing, &opts());
    assert!(
        matches!(&r, Err(cvmkit_diff::Error::Read { path, error })
            if *path == missing && error.kind() == std::io::ErrorKind::NotFound),
        "{r:?}"
    );
}

// ---------------------------------------------------------------- bad input

#[test]
fn truncated_and_corrupt_inputs_are_reported_not_fatal() {
    let a = initrd(b"cvm\n", Compression::gzip());
    let t = &a[..a.len() / 2];
    let r = diff_bytes("initrd.img", &a, t, &opts());
    assert!(r.differences.iter().any(|d| matches!(&d.kind, DiffKind::Unreadable { side: Side::B, format, .. } if format == "gzip")), "{}", r.render());
    assert!(r
        .differences
        .iter()
        .any(|d| matches!(d.kind, DiffKind::Content { .. })));

    let c = cpio(&[("a", 0, b"hello")]);
    let r = diff_bytes("x.cpio", &c, &c[..130], &opts());
    assert!(r.differences.iter().any(|d| matches!(&d.kind, DiffKind::Unreadable { side: Side::B, format, .. } if format == "cpio")), "{}", r.render());

    // A corrupt primary GPT header.
    let good = gpt_disk("p1");
    let mut bad = good.clone();
    bad[600] ^= 1;
    let r = diff_bytes("disk.raw", &good, &bad, &opts());
    assert!(r.differences.iter().any(|d| matches!(&d.kind, DiffKind::Unreadable { side: Side::B, format, .. } if format == "GPT")), "{}", r.render());
    assert!(contents(&r).contains(&("disk.raw".into(), 600)));

    // A PE whose section table points past its end.
    let u = uki(&a, "x", 0);
    let r = diff_bytes("uki.efi", &u, &u[..u.len() - 4096], &opts());
    assert!(r.differences.iter().any(|d| matches!(&d.kind, DiffKind::Unreadable { side: Side::B, format, .. } if format == "PE")), "{}", r.render());
}

#[test]
fn depth_limit_is_reported() {
    let (a, b) = (
        initrd(b"cvm\n", Compression::gzip()),
        initrd(b"cvx\n", Compression::gzip()),
    );
    let r = diff_bytes("initrd.img", &a, &b, &opts().with_max_depth(1));
    assert_eq!(r.differences[0].path_string(), "initrd.img › gzip");
    assert!(
        matches!(&r.differences[0].kind, DiffKind::Limit { reason } if reason.contains("maximum depth 1"))
    );
    assert!(matches!(r.differences[1].kind, DiffKind::Content { .. }));
}

#[test]
fn decompression_bombs_stop_at_the_limit() {
    let mut zeros = vec![0u8; 64 << 20];
    let a = gzip(&zeros);
    zeros[1000] = 1;
    let b = gzip(&zeros);
    let r = diff_bytes("bomb.gz", &a, &b, &opts().with_max_decompressed(1 << 20));
    assert!(r.differences.iter().any(|d| matches!(&d.kind, DiffKind::Limit { reason } if reason.contains("decompresses to more than 1048576 bytes"))), "{}", r.render());
    // A cpio bomb through the streaming path falls back the same way.
    let big = cpio(&[("a", 0, &vec![0u8; 4 << 20]), ("b", 0, b"1")]);
    let big2 = cpio(&[("a", 0, &vec![0u8; 4 << 20]), ("b", 0, b"2")]);
    let r = diff_bytes(
        "i.img",
        &gzip(&big),
        &gzip(&big2),
        &opts().with_max_decompressed(1 << 20),
    );
    assert!(
        r.differences
            .iter()
            .any(|d| matches!(d.kind, DiffKind::Limit { .. })),
        "{}",
        r.render()
    );
}

#[test]
fn json_form_carries_path_and_kind() {
    let (a, b) = (
        initrd(b"cvm\n", Compression::gzip()),
        initrd(b"cvx\n", Compression::gzip()),
    );
    let r = diff_bytes("initrd.img", &a, &b, &opts());
    let v: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
    let d = &v["differences"][0];
    assert_eq!(
        d["path"],
        serde_json::json!(["initrd.img", "gzip", "cpio", "etc/hostname"])
    );
    assert_eq!(d["kind"], "content");
    assert_eq!(d["offset"], 2);
    assert_eq!(d["detail"]["type"], "text");
}

#[test]
fn deeply_nested_layers_stop_at_the_depth_limit_without_overflowing() {
    // Stored blocks: each layer adds a few bytes (compressing would grow them by a factor).
    let stored = |b: &[u8]| {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::none());
        e.write_all(b).unwrap();
        e.finish().unwrap()
    };
    let (mut a, mut b) = (b"x".to_vec(), b"y".to_vec());
    for _ in 0..300 {
        a = stored(&a);
        b = stored(&b);
    }
    let r = diff_bytes("deep", &a, &b, &opts().with_max_depth(usize::MAX));
    assert!(
        r.differences.iter().any(|d| matches!(&d.kind, DiffKind::Limit { reason } if reason.contains("maximum depth 256"))),
        "{}",
        r.render()
    );
    assert_eq!(r.differences[0].path.len(), 257);
}
