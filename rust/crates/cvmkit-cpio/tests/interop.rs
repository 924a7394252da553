//! The writer and reader checked against GNU cpio (the independent tool), and
//! the reader against truncated, random and corrupted input.
//!
//! GNU cpio must be installed (`apt-get install -y --no-install-recommends cpio`).

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

use cvmkit_cpio::{mode, Entry, Error, Format, Header, Reader, Writer};

/// Runs GNU cpio with `args`, feeding it `stdin`, in `dir`; returns stdout.
fn gnu_cpio(args: &[&str], stdin: &[u8], dir: &Path) -> Vec<u8> {
    let out = cvmkit_testutil::output_with_stdin(
        Command::new(cvmkit_testutil::require_tool("cpio", "cpio"))
            .args(args)
            .current_dir(dir)
            // Fixed time zone and locale: the listing prints dates.
            .env("TZ", "UTC")
            .env("LC_ALL", "C"),
        stdin,
        cvmkit_testutil::RUN_TIMEOUT,
    );
    assert!(
        out.status.success(),
        "cpio {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

const MTIME: u32 = 1_700_000_000; // 2023-11-14 22:13:20 UTC

/// An archive with every kind of entry the initramfs uses.
fn sample_archive() -> Vec<u8> {
    let mut w = Writer::new(Vec::new());
    let base = Header {
        mtime: MTIME,
        nlink: 1,
        ..Header::default()
    };
    let mut add = |name: &str, ino: u32, m: u32, data: &[u8], f: &dyn Fn(&mut Header)| {
        let mut h = Header {
            ino,
            mode: m,
            filesize: data.len() as u32,
            ..base
        };
        f(&mut h);
        w.write_entry(name.as_bytes(), &h, &mut &data[..]).unwrap();
    };
    add("bin", 1, mode::S_IFDIR | 0o755, b"", &|h| h.nlink = 2);
    add(
        "bin/busybox",
        2,
        mode::S_IFREG | 0o755,
        b"#!/bin/true\n",
        &|_| {},
    );
    add("bin/sh", 3, mode::S_IFLNK | 0o777, b"busybox", &|_| {});
    add("dev", 4, mode::S_IFDIR | 0o755, b"", &|h| h.nlink = 2);
    add("dev/console", 5, mode::S_IFCHR | 0o600, b"", &|h| {
        h.rdevmajor = 5;
        h.rdevminor = 1;
    });
    add("dev/vda", 6, mode::S_IFBLK | 0o660, b"", &|h| {
        h.rdevmajor = 254;
        h.gid = 6;
    });
    add("etc", 7, mode::S_IFDIR | 0o700, b"", &|h| {
        h.nlink = 2;
        h.uid = 1000;
        h.gid = 100;
    });
    // A hard link pair: data on the last name only.
    add("etc/a", 8, mode::S_IFREG | 0o640, b"", &|h| h.nlink = 2);
    add("etc/b", 8, mode::S_IFREG | 0o640, b"shared", &|h| {
        h.nlink = 2
    });
    add("run", 9, mode::S_IFIFO | 0o620, b"", &|_| {});
    w.finish().unwrap()
}

#[test]
fn gnu_cpio_lists_what_the_writer_wrote() {
    let tmp = tempfile::tempdir().unwrap();
    let archive = sample_archive();
    let listing = gnu_cpio(
        &["-itv", "--numeric-uid-gid", "--quiet"],
        &archive,
        tmp.path(),
    );
    // Expected listing as GNU cpio 2.13 prints it (mode, links, uid, gid,
    // size or "major, minor", date, name).
    let expected = "\
drwxr-xr-x   2 0        0               0 Nov 14  2023 bin
-rwxr-xr-x   1 0        0              12 Nov 14  2023 bin/busybox
lrwxrwxrwx   1 0        0               7 Nov 14  2023 bin/sh -> busybox
drwxr-xr-x   2 0        0               0 Nov 14  2023 dev
crw-------   1 0        0          5,   1 Nov 14  2023 dev/console
brw-rw----   1 0        6        254,   0 Nov 14  2023 dev/vda
drwx------   2 1000     100             0 Nov 14  2023 etc
-rw-r-----   2 0        0               0 Nov 14  2023 etc/a
-rw-r-----   2 0        0               6 Nov 14  2023 etc/b
prw--w----   1 0        0               0 Nov 14  2023 run
";
    assert_eq!(String::from_utf8_lossy(&listing), expected);
}

#[test]
fn gnu_cpio_extracts_what_the_writer_wrote() {
    let tmp = tempfile::tempdir().unwrap();
    let archive = sample_archive();
    // Device nodes are left out: creating them needs privileges a CI
    // container may not have. The listing test covers their numbers.
    gnu_cpio(
        &["-idm", "--quiet", "--no-absolute-filenames", "-f", "dev/*"],
        &archive,
        tmp.path(),
    );
    let root = tmp.path();
    assert_eq!(
        std::fs::read(root.join("bin/busybox")).unwrap(),
        b"#!/bin/true\n"
    );
    let busybox = std::fs::metadata(root.join("bin/busybox")).unwrap();
    assert_eq!(busybox.permissions().mode() & 0o7777, 0o755);
    assert_eq!(busybox.mtime(), i64::from(MTIME));
    assert_eq!(
        std::fs::read_link(root.join("bin/sh")).unwrap(),
        Path::new("busybox")
    );
    let a = std::fs::metadata(root.join("etc/a")).unwrap();
    let b = std::fs::metadata(root.join("etc/b")).unwrap();
    assert_eq!(a.ino(), b.ino(), "etc/a and etc/b must be one inode");
    assert_eq!(a.nlink(), 2);
    assert_eq!(std::fs::read(root.join("etc/a")).unwrap(), b"shared");
    assert_eq!(a.permissions().mode() & 0o7777, 0o640);
    use std::os::unix::fs::FileTypeExt;
    assert!(std::fs::symlink_metadata(root.join("run"))
        .unwrap()
        .file_type()
        .is_fifo());
}

#[test]
fn reader_round_trips_the_writer() {
    let archive = sample_archive();
    let entries: Vec<Entry> = Reader::new(&archive).collect::<Result<_, _>>().unwrap();
    let names: Vec<&[u8]> = entries.iter().map(|e| e.name).collect();
    assert_eq!(
        names,
        [
            &b"bin"[..],
            b"bin/busybox",
            b"bin/sh",
            b"dev",
            b"dev/console",
            b"dev/vda",
            b"etc",
            b"etc/a",
            b"etc/b",
            b"run"
        ]
    );
    // Writing the entries again gives the same bytes.
    let mut w = Writer::new(Vec::new());
    for e in &entries {
        w.write_entry(e.name, &e.header, &mut &e.data[..]).unwrap();
    }
    assert_eq!(w.finish().unwrap(), archive);
    let console = &entries[4];
    assert_eq!((console.header.rdevmajor, console.header.rdevminor), (5, 1));
    assert_eq!(console.header.file_type(), mode::S_IFCHR);
    assert_eq!(entries[2].data, b"busybox");
}

#[test]
fn reader_parses_gnu_cpio_archives_in_both_newc_formats() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    std::fs::create_dir(root.join("d")).unwrap();
    std::fs::write(root.join("d/f"), b"hello\n").unwrap();
    std::fs::hard_link(root.join("d/f"), root.join("d/g")).unwrap();
    std::os::unix::fs::symlink("d/f", root.join("l")).unwrap();
    std::fs::write(root.join("odd"), b"12345").unwrap();
    let names = b"d\nd/f\nd/g\nl\nodd\n";

    for (format, magic) in [("newc", Format::Newc), ("crc", Format::Crc)] {
        let archive = gnu_cpio(&["-o", "--quiet", "-H", format], names, root);
        let entries: Vec<Entry> = Reader::new(&archive).collect::<Result<_, _>>().unwrap();
        let got: Vec<(&[u8], u32, &[u8])> = entries
            .iter()
            .map(|e| (e.name, e.header.file_type(), e.data))
            .collect();
        // GNU cpio stores hard link data with the last name, like our writer.
        assert_eq!(
            got,
            [
                (&b"d"[..], mode::S_IFDIR, &b""[..]),
                (b"d/f", mode::S_IFREG, b""),
                (b"d/g", mode::S_IFREG, b"hello\n"),
                (b"l", mode::S_IFLNK, b"d/f"),
                (b"odd", mode::S_IFREG, b"12345"),
            ],
            "format {format}"
        );
        assert!(entries.iter().all(|e| e.format == magic));
        assert_eq!(entries[1].header.ino, entries[2].header.ino);
        assert_eq!(entries[2].header.nlink, 2);
        if magic == Format::Crc {
            // The crc format's check is the byte sum of the data.
            let sum: u32 = b"hello\n".iter().map(|&b| u32::from(b)).sum();
            assert_eq!(entries[2].check, sum);
        }
    }
}

#[test]
fn every_truncation_is_an_error_and_never_a_panic() {
    let archive = sample_archive();
    // Where the trailer entry ends: after that only the 512-byte padding follows.
    let mut r = Reader::new(&archive);
    r.by_ref().for_each(drop);
    let end = r.offset() as usize;
    assert!(end < archive.len() && archive[end..].iter().all(|&b| b == 0));
    for len in 0..=archive.len() {
        for concatenated in [false, true] {
            let results: Vec<_> = Reader::new(&archive[..len])
                .concatenated(concatenated)
                .collect();
            let failed = results.iter().any(|r| r.is_err());
            // Like the kernel, concatenated reading takes empty input as no archive.
            let expected = len < end && !(concatenated && len == 0);
            assert_eq!(
                failed, expected,
                "prefix of {len} bytes, concatenated {concatenated}"
            );
            if failed {
                // The error is the last item: the iterator stops after it. A cut archive is
                // reported as truncated, never as corrupt (bad magic, bad field, …).
                let last = results.last().unwrap();
                assert!(
                    matches!(
                        last,
                        Err(Error::TruncatedHeader { .. }
                            | Error::Truncated { .. }
                            | Error::MissingTrailer { .. })
                    ),
                    "prefix of {len} bytes, concatenated {concatenated}: {last:?}"
                );
            }
        }
    }
}

/// xorshift64*: a fixed, dependency-free stream of pseudo-random numbers.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Reads everything, checking what must hold for any input.
fn exercise(input: &[u8]) {
    for concatenated in [false, true] {
        let mut last_offset = None;
        let mut count = 0usize;
        for item in Reader::new(input)
            .concatenated(concatenated)
            .with_trailers(true)
        {
            count += 1;
            // Every entry takes at least 112 bytes, so this bounds the loop.
            assert!(count <= input.len() / 112 + 1);
            match item {
                Ok(e) => {
                    assert!(last_offset.is_none_or(|o| e.offset > o));
                    last_offset = Some(e.offset);
                    assert_eq!(e.data.len(), e.header.filesize as usize);
                    assert!(e.offset as usize + 110 + e.name.len() < input.len() + 1);
                }
                Err(e) => {
                    // Messages are bounded: they quote at most a few bytes.
                    assert!(e.to_string().len() < 400, "{e}");
                }
            }
        }
    }
}

#[test]
fn random_and_corrupted_input_never_panics() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    // Pure noise, and noise that starts like a header so parsing goes deeper.
    for _ in 0..5_000 {
        let len = rng.below(700);
        let mut buf: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        if rng.below(2) == 0 && len >= 110 {
            buf[..6].copy_from_slice(b"070701");
            const HEX: &[u8] = b"0123456789abcdefABCDEF";
            for b in &mut buf[6..110] {
                *b = if rng.below(4) == 0 {
                    b'0'
                } else {
                    HEX[rng.below(HEX.len())]
                };
            }
        }
        exercise(&buf);
    }
    // A valid archive (twice, to reach the concatenation code) with a few bytes
    // overwritten by noise, by hex digits or by zeros.
    let mut valid = sample_archive();
    valid.extend(sample_archive());
    for _ in 0..20_000 {
        let mut buf = valid.clone();
        for _ in 0..=rng.below(4) {
            let at = rng.below(buf.len());
            buf[at] = match rng.below(3) {
                0 => rng.next() as u8,
                1 => b"0123456789abcdef"[rng.below(16)],
                _ => 0,
            };
        }
        buf.truncate(rng.below(buf.len() + 1));
        exercise(&buf);
    }
}

#[test]
fn absurd_sizes_are_reported_without_allocating() {
    // A header claiming the largest name and file sizes, and nothing after it.
    let mut h = Vec::from(&b"070701"[..]);
    for field in 0..13 {
        h.extend_from_slice(if field == 6 || field == 11 {
            b"FFFFFFFF"
        } else {
            b"00000000"
        });
    }
    let err = Reader::new(&h).next().unwrap().unwrap_err();
    assert_eq!(
        err,
        Error::Truncated {
            offset: 0,
            part: "name",
            needed: 0xffff_ffff,
            available: 0
        }
    );
    assert_eq!(
        err.to_string(),
        "cpio entry at offset 0: its name needs 4294967295 bytes but only 0 remain (truncated archive, or a corrupt size in the header)"
    );
}
