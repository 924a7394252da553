use std::os::unix::fs::MetadataExt;
use std::process::Command;

use cvmkit_disk::{chs_geometry, DiskSpec, Format};

use crate::util::*;

fn qemu_img() -> Command {
    Command::new(require_tool("qemu-img", "qemu-utils"))
}

/// A top-level number of `qemu-img info --output=json` (QEMU 10 also nests a `children` list
/// whose entries repeat keys such as `virtual-size` for the protocol layer).
fn json_u64(json: &str, key: &str) -> u64 {
    let v: serde_json::Value = serde_json::from_str(json).unwrap_or_else(|e| panic!("qemu-img JSON: {e}: {json}"));
    v.get(key)
        .and_then(serde_json::Value::as_u64)
        .unwrap_or_else(|| panic!("no top-level number {key} in {json}"))
}

fn cmp(a: &std::path::Path, b: &std::path::Path) {
    run(Command::new("cmp").arg(a).arg(b));
}

#[test]
fn gcp_tar_gz_is_a_gnu_sparse_disk_raw() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = full_spec(tmp.path());
    let (targz, report) = build(&spec, Format::Gcp, tmp.path(), "image.tar.gz");
    assert_eq!(
        report.disk_size,
        1 << 30,
        "GCP disks are rounded up to a whole GiB"
    );
    assert_eq!(report.output_size, std::fs::metadata(&targz).unwrap().len());

    // gzip header: no FNAME/FEXTRA/FCOMMENT flags, MTIME 0, OS Unix.
    let gz = std::fs::read(&targz).unwrap();
    assert_eq!(&gz[..10], &[0x1F, 0x8B, 8, 0, 0, 0, 0, 0, 0, 3]);
    run(Command::new("gzip").arg("-t").arg(&targz));

    let tar = require_tool("tar", "tar");
    let listing = run_text(Command::new(&tar).arg("-tvzf").arg(&targz));
    let line = listing.trim();
    assert!(
        line.starts_with("-rw-r--r-- root/root 1073741824 2023-11-14 22:13 disk.raw"),
        "{listing}"
    );
    assert_eq!(listing.lines().count(), 1, "{listing}");
    let numeric = run_text(
        Command::new(&tar)
            .args(["--numeric-owner", "-tvzf"])
            .arg(&targz),
    );
    assert!(numeric.contains(" 0/0 "), "{numeric}");

    // Extract (sparse) and compare with the raw disk of the same size.
    let out = tmp.path().join("x");
    std::fs::create_dir(&out).unwrap();
    run(Command::new(&tar)
        .args(["--sparse", "-xzf"])
        .arg(&targz)
        .arg("-C")
        .arg(&out));
    let extracted = out.join("disk.raw");
    let raw_spec = DiskSpec {
        disk_size: Some(report.disk_size),
        ..spec.clone()
    };
    let (raw, raw_report) = build(&raw_spec, Format::Raw, tmp.path(), "disk.raw");
    assert_eq!(raw_report.partitions, report.partitions);
    cmp(&raw, &extracted);
    let meta = std::fs::metadata(&extracted).unwrap();
    assert!(
        meta.blocks() * 512 < meta.len() / 8,
        "tar did not restore the holes"
    );
    let sg = run_text(
        Command::new(require_tool("sgdisk", "gdisk"))
            .arg("-v")
            .arg(&extracted),
    );
    assert!(sg.contains("No problems found"), "{sg}");
}

#[test]
fn gcp_member_with_many_holes_and_a_large_disk() {
    // A root image with many separate data blocks needs sparse extension headers; a 10 GiB
    // disk needs base-256 numbers in the header (sizes past 8 GiB).
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("holes.img");
    let mut data = vec![0u8; 4 << 20];
    for i in 0..60 {
        data[i * 65536 + 100] = i as u8 + 1;
    }
    std::fs::write(&root, &data).unwrap();
    let spec = DiskSpec {
        roots: vec![root],
        disk_size: Some(9 << 30),
        ..DiskSpec::new(example_uki(), "holes", 86_400 * 365 * 40)
    };
    let (targz, report) = build(&spec, Format::Gcp, tmp.path(), "image.tar.gz");
    assert_eq!(report.disk_size, 9 << 30);
    let out = tmp.path().join("x");
    std::fs::create_dir(&out).unwrap();
    let tar = require_tool("tar", "tar");
    let listing = run_text(Command::new(&tar).arg("-tvzf").arg(&targz));
    assert!(listing.contains(&format!(" {} ", 9u64 << 30)), "{listing}");
    run(Command::new(&tar)
        .args(["--sparse", "-xzf"])
        .arg(&targz)
        .arg("-C")
        .arg(&out));
    let raw_spec = DiskSpec {
        disk_size: Some(9 << 30),
        ..spec.clone()
    };
    let (raw, _) = build(&raw_spec, Format::Raw, tmp.path(), "disk.raw");
    // qemu-img compare skips holes; cmp would read 18 GiB of zeros.
    let same = run_text(
        qemu_img()
            .args(["compare", "-f", "raw", "-F", "raw"])
            .arg(&raw)
            .arg(out.join("disk.raw")),
    );
    assert!(same.contains("Images are identical."), "{same}");
}

#[test]
fn vhd_is_fixed_and_qemu_reads_its_exact_size() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = full_spec(tmp.path());
    let (vhd, report) = build(&spec, Format::Vhd, tmp.path(), "disk.vhd");
    let size = report.disk_size;
    assert_eq!(size % (1 << 20), 0, "Azure wants a whole number of MiB");
    assert_eq!(std::fs::metadata(&vhd).unwrap().len(), size + 512);

    let info = run_text(
        qemu_img()
            .args(["info", "-f", "vpc", "--output=json"])
            .arg(&vhd),
    );
    assert_eq!(json_u64(&info, "virtual-size"), size, "{info}");
    let info = run_text(qemu_img().args(["info", "-f", "vpc"]).arg(&vhd));
    assert!(info.contains("file format: vpc"), "{info}");
    let back = tmp.path().join("back.raw");
    run(qemu_img()
        .args(["convert", "-f", "vpc", "-O", "raw"])
        .arg(&vhd)
        .arg(&back));
    let (raw, _) = build(&spec, Format::Raw, tmp.path(), "disk.raw");
    cmp(&raw, &back);

    // The footer, field by field, against the VHD specification.
    let bytes = std::fs::read(&vhd).unwrap();
    let f = &bytes[bytes.len() - 512..];
    let be32 = |at: usize| u32::from_be_bytes(f[at..at + 4].try_into().unwrap());
    let be64 = |at: usize| u64::from_be_bytes(f[at..at + 8].try_into().unwrap());
    assert_eq!(&f[0..8], b"conectix");
    assert_eq!(be32(8), 2, "Features");
    assert_eq!(be32(12), 0x0001_0000, "File Format Version");
    assert_eq!(be64(16), u64::MAX, "Data Offset");
    assert_eq!(
        be32(24) as u64,
        1_700_000_000 - 946_684_800,
        "Time Stamp: seconds since 2000-01-01"
    );
    assert_eq!(&f[28..32], b"qem2");
    assert_eq!(&f[36..40], b"Wi2k");
    assert_eq!((be64(40), be64(48)), (size, size), "Original/Current Size");
    let (c, h, s) = (u16::from_be_bytes([f[56], f[57]]), f[58], f[59]);
    assert_eq!((c, h, s), chs_geometry(size));
    assert!(u64::from(c) * u64::from(h) * u64::from(s) * 512 <= size);
    assert_eq!(be32(60), 2, "Disk Type: fixed");
    let sum: u32 = f
        .iter()
        .enumerate()
        .filter(|(i, _)| !(64..68).contains(i))
        .map(|(_, &b)| u32::from(b))
        .sum();
    assert_eq!(be32(64), !sum, "Checksum");
    assert_eq!(
        &f[68..84],
        &cvmkit_gpt::seeded_guid("cvmkit-test", "vhd-unique-id").to_bytes_be()
    );
    assert_eq!(f[84], 0, "Saved State");
    assert!(f[85..].iter().all(|&b| b == 0));
}

#[test]
fn vhd_time_stamp_clamps_to_the_vhd_epoch() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = DiskSpec::new(example_uki(), "old", 0);
    let (vhd, _) = build(&spec, Format::Vhd, tmp.path(), "disk.vhd");
    let bytes = std::fs::read(&vhd).unwrap();
    let f = &bytes[bytes.len() - 512..];
    assert_eq!(&f[24..28], &[0, 0, 0, 0]);
}

#[test]
fn qcow2_passes_qemu_img_check_and_matches_the_raw_disk() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = DiskSpec {
        disk_size: Some(2 << 30),
        ..full_spec(tmp.path())
    };
    let (qcow2, report) = build(&spec, Format::Qcow2, tmp.path(), "disk.qcow2");
    assert_eq!(report.output_size, std::fs::metadata(&qcow2).unwrap().len());
    assert!(
        report.output_size < 32 << 20,
        "{} bytes for a 2 GiB disk",
        report.output_size
    );

    let check = run_text(qemu_img().args(["check", "-f", "qcow2"]).arg(&qcow2));
    assert!(
        check.contains("No errors were found on the image."),
        "{check}"
    );
    let info = run_text(
        qemu_img()
            .args(["info", "-f", "qcow2", "--output=json"])
            .arg(&qcow2),
    );
    assert_eq!(json_u64(&info, "virtual-size"), 2 << 30, "{info}");
    assert_eq!(json_u64(&info, "cluster-size"), 65536, "{info}");
    assert!(info.contains("\"compat\": \"1.1\""), "{info}");

    let (raw, _) = build(&spec, Format::Raw, tmp.path(), "disk.raw");
    let same = run_text(
        qemu_img()
            .args(["compare", "-f", "raw", "-F", "qcow2"])
            .arg(&raw)
            .arg(&qcow2),
    );
    assert!(same.contains("Images are identical."), "{same}");
    let back = tmp.path().join("back.raw");
    run(qemu_img()
        .args(["convert", "-f", "qcow2", "-O", "raw"])
        .arg(&qcow2)
        .arg(&back));
    cmp(&raw, &back);
}

/// Real, compressible bytes for a root image: the Debian kernel's module files (the inputs of
/// scripts/fetch-inputs.sh), concatenated in name order up to `len` bytes.
fn modules_image(path: &std::path::Path, len: usize) -> std::path::PathBuf {
    let kernel = input("KERNEL");
    let modules = kernel.parent().unwrap().parent().unwrap().join("lib/modules");
    let mut files = Vec::new();
    let mut stack = vec![modules.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}: run scripts/fetch-inputs.sh", d.display())) {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                files.push(p);
            }
        }
    }
    files.sort();
    let mut data = Vec::with_capacity(len);
    for f in files {
        if data.len() >= len {
            break;
        }
        data.extend_from_slice(&std::fs::read(f).unwrap());
    }
    assert!(data.len() >= len, "only {} bytes of modules under {}", data.len(), modules.display());
    data.truncate(len);
    std::fs::write(path, data).unwrap();
    path.to_path_buf()
}

/// Past one member (1 MiB of tar stream each): the archive is several gzip members that gzip and
/// GNU tar read as one stream, and it is no larger than GNU `gzip -6` of the same tar stream,
/// with compressible members (kernel modules) and members deflate cannot shrink (random bytes,
/// as a compressed initrd is), which are stored. (That the bytes do not depend on the core
/// count: the CLI's disk test, under `taskset`.)
#[test]
fn gcp_members_decompress_as_one_stream_no_larger_than_gzip_6() {
    let tmp = tempfile::tempdir().unwrap();
    let random = tmp.path().join("random.img");
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let bytes: Vec<u8> = (0..12 << 20)
        .map(|_| {
            // xorshift64*: incompressible to deflate, the same on every run.
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            (state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 56) as u8
        })
        .collect();
    std::fs::write(&random, bytes).unwrap();
    let spec = DiskSpec {
        roots: vec![modules_image(&tmp.path().join("modules.img"), 40 << 20), random],
        ..DiskSpec::new(example_uki(), "members", 1_700_000_000)
    };
    let (targz, _) = build(&spec, Format::Gcp, tmp.path(), "image.tar.gz");
    run(Command::new("gzip").arg("-t").arg(&targz));
    let gz = std::fs::read(&targz).unwrap();
    let members = gz.windows(10).filter(|w| *w == [0x1F, 0x8B, 8, 0, 0, 0, 0, 0, 0, 3]).count();
    assert!(members >= 3, "{members} gzip member(s)");

    let stream = tmp.path().join("stream.tar");
    let out = Command::new("gzip").arg("-dc").arg(&targz).output().unwrap();
    assert!(out.status.success());
    std::fs::write(&stream, &out.stdout).unwrap();
    let gnu = Command::new("gzip").args(["-6", "-n", "-c"]).arg(&stream).output().unwrap();
    assert!(gnu.status.success());
    assert!(gz.len() <= gnu.stdout.len(), "cvmkit {} bytes, gzip -6 {} bytes", gz.len(), gnu.stdout.len());

    let x = tmp.path().join("x");
    std::fs::create_dir(&x).unwrap();
    run(Command::new(require_tool("tar", "tar")).args(["--sparse", "-xzf"]).arg(&targz).arg("-C").arg(&x));
    let (raw, _) = build(&DiskSpec { disk_size: Some(1 << 30), ..spec.clone() }, Format::Raw, tmp.path(), "disk.raw");
    let same = run_text(qemu_img().args(["compare", "-f", "raw", "-F", "raw"]).arg(&raw).arg(x.join("disk.raw")));
    assert!(same.contains("Images are identical."), "{same}");

}
