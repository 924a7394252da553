use cvmkit_disk::{DiskSpec, Format};
use cvmkit_fat::FatVolume;
use cvmkit_gpt::GptDisk;

use crate::util::*;

#[test]
fn same_inputs_give_the_same_bytes_in_every_format() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    // Inputs at different paths with the same bytes: paths do not leak into the output.
    let spec_a = full_spec(a.path());
    let spec_b = full_spec(b.path());
    for format in Format::ALL {
        let name = format!("disk.{}", format.extension());
        let (pa, ra) = build(&spec_a, format, a.path(), &name);
        let (pb, rb) = build(&spec_b, format, b.path(), &name);
        assert_eq!(
            sha256(&pa),
            sha256(&pb),
            "{format} differs between two builds"
        );
        assert_eq!(
            (ra.disk_guid, ra.output_size, ra.data_bytes),
            (rb.disk_guid, rb.output_size, rb.data_bytes)
        );
        // And a third time into a fresh buffer through the Write + Seek API.
        let mut buf = std::io::Cursor::new(Vec::new());
        cvmkit_disk::write_disk(&spec_a, format, &mut buf).unwrap();
        assert!(
            buf.into_inner() == std::fs::read(&pa).unwrap(),
            "{format}: write_disk differs from write_disk_file"
        );
    }
}

#[test]
fn timestamp_changes_only_times_and_seed_changes_only_ids() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = full_spec(tmp.path());
    let (base, _) = build(&spec, Format::Raw, tmp.path(), "base.raw");
    let later = DiskSpec {
        timestamp: 1_800_000_000,
        ..spec.clone()
    };
    let (t, _) = build(&later, Format::Raw, tmp.path(), "later.raw");
    let other_seed = DiskSpec {
        seed: "another seed".into(),
        ..spec.clone()
    };
    let (s, rs) = build(&other_seed, Format::Raw, tmp.path(), "seed.raw");

    let base = std::fs::read(base).unwrap();
    let gpt = GptDisk::read(&base).unwrap();
    let esp = gpt.partitions().next().unwrap().entry;
    let fat = FatVolume::parse(gpt.partition_data(&esp).unwrap()).unwrap();
    let data_start = esp.offset() + fat.cluster_offset(2);

    // Timestamp: only the time fields (bytes 13..26) of directory entries in the ESP.
    let t = std::fs::read(t).unwrap();
    let diff: Vec<u64> = (0..base.len())
        .filter(|&i| base[i] != t[i])
        .map(|i| i as u64)
        .collect();
    assert!(!diff.is_empty());
    for &i in &diff {
        assert!(
            i >= data_start && (13..26).contains(&((i - data_start) % 32)),
            "timestamp changed byte {i}"
        );
    }

    // Seed: only the GPT (both copies: GUIDs and CRCs) and the FAT serial (boot sector + backup).
    let s = std::fs::read(s).unwrap();
    let gpt_s = GptDisk::read(&s).unwrap();
    assert_ne!(gpt_s.primary.disk_guid, gpt.primary.disk_guid);
    assert_eq!(rs.disk_guid, gpt_s.primary.disk_guid);
    let backup = base.len() as u64 - 33 * 512;
    for i in (0..base.len())
        .filter(|&i| base[i] != s[i])
        .map(|i| i as u64)
    {
        let in_gpt = i < 34 * 512 || i >= backup;
        let in_serial = [0, 6 * 512]
            .iter()
            .any(|&o| (esp.offset() + o + 67..esp.offset() + o + 71).contains(&i));
        assert!(in_gpt || in_serial, "seed changed byte {i}");
    }
}

/// A disk planned from the UKI's length and written from a reader of the UKI's bytes (as `cvmkit
/// build` writes it while the UKI is still being written) is the disk written from the file, in
/// every format; a reader that gives fewer or more bytes than planned is an error, not a disk.
#[test]
fn uki_from_a_reader_gives_the_files_bytes() {
    use std::cell::Cell;
    use std::io::{Cursor, Read};

    let dir = tempfile::tempdir().unwrap();
    let uki = std::fs::read(example_uki()).unwrap();
    let spec = DiskSpec {
        data_size: Some(8 << 20),
        ..DiskSpec::new(example_uki(), "stream", 1_700_000_000)
    };
    // Planned from the length alone: the path names a file that does not exist.
    let planned = DiskSpec {
        uki: dir.path().join("not-written-yet.efi"),
        uki_len: Some(uki.len() as u64),
        ..spec.clone()
    };
    for format in Format::ALL {
        let (from_file, report) = build(&spec, format, dir.path(), &format!("file.{}", format.extension()));
        let layout = cvmkit_disk::DiskLayout::plan(&planned, format).unwrap();
        let opens = Cell::new(0);
        let open = || -> std::io::Result<Box<dyn Read + '_>> {
            opens.set(opens.get() + 1);
            Ok(Box::new(Cursor::new(&uki[..])))
        };
        let mut out = Cursor::new(Vec::new());
        let streamed = layout.write_with_uki(&mut out, &open).unwrap_or_else(|e| panic!("{format}: {e}"));
        let mut bytes = out.into_inner();
        bytes.resize(streamed.output_size as usize, 0); // the file's trailing hole
        assert_eq!(bytes, std::fs::read(&from_file).unwrap(), "{format}");
        assert_eq!(streamed.output_size, report.output_size, "{format}");
        // Raw and VHD read the UKI once; GCP and qcow2 map its zero blocks first.
        let want = if matches!(format, Format::Raw | Format::Vhd) { 1 } else { 2 };
        assert_eq!(opens.get(), want, "{format}");

        for wrong in [&uki[..uki.len() - 1], &[&uki[..], &[0u8][..]].concat()[..]] {
            let open = || -> std::io::Result<Box<dyn Read + '_>> { Ok(Box::new(Cursor::new(wrong))) };
            let err = layout.write_with_uki(&mut Cursor::new(Vec::new()), &open).unwrap_err().to_string();
            assert!(err.contains("changed"), "{format}, {} bytes: {err}", wrong.len());
        }
    }
}

/// An input file's zero blocks are found in parts read at once (one per 16 MiB, up to 8): the
/// GCP and qcow2 archives are the same as from one reader of the same bytes in order, with
/// zero runs and data runs across every place where parts may meet, and an input that grew or
/// shrank after planning is still an error.
#[test]
fn zero_blocks_found_in_parts_give_the_same_archives() {
    use std::io::{Cursor, Read};

    let dir = tempfile::tempdir().unwrap();
    let len = (40 << 20) + 12345;
    let mut state = 7u64;
    let mut uki: Vec<u8> = (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 32) as u8 | 1
        })
        .collect();
    for mib in 0..40usize {
        let at = (mib << 20) + mib * 4096 * 7 % (1 << 20);
        uki[at..at + (64 << 10)].fill(0);
        let one = (mib << 20) + (512 << 10) + mib * 512;
        uki[one..one + 4096].fill(0);
    }
    // Around a third and two thirds of the file (where three parts meet, give or take the
    // 4 KiB alignment), zero runs start at every offset within a block: 2,000 data bytes, then
    // 5,001 zeros, over and over.
    for third in [len / 3, len * 2 / 3] {
        for (i, b) in uki[third - (256 << 10)..third + (256 << 10)].iter_mut().enumerate() {
            if i % 7001 >= 2000 {
                *b = 0;
            }
        }
    }
    uki[len - 5000..].fill(0);
    let path = dir.path().join("big.efi");
    std::fs::write(&path, &uki).unwrap();
    let spec = DiskSpec {
        data_size: Some(8 << 20),
        ..DiskSpec::new(&path, "parts", 1_700_000_000)
    };
    for format in [Format::Gcp, Format::Qcow2] {
        let (from_file, report) = build(&spec, format, dir.path(), &format!("file.{}", format.extension()));
        let layout = cvmkit_disk::DiskLayout::plan(&spec, format).unwrap();
        let open = || -> std::io::Result<Box<dyn Read + '_>> { Ok(Box::new(Cursor::new(&uki[..]))) };
        let mut out = Cursor::new(Vec::new());
        let streamed = layout.write_with_uki(&mut out, &open).unwrap();
        let mut bytes = out.into_inner();
        bytes.resize(streamed.output_size as usize, 0);
        assert_eq!(bytes, std::fs::read(&from_file).unwrap(), "{format}");
        assert_eq!(report.data_bytes, streamed.data_bytes, "{format}");
        // GCP leaves the zero runs out (their whole 4 KiB disk blocks; the count includes the
        // GPT and FAT metadata); qcow2 only whole 64 KiB clusters.
        if format == Format::Gcp {
            assert!(report.data_bytes < len as u64 - 40 * (32 << 10), "{}", report.data_bytes);
        }
    }
    // Planned at one size, then shorter or longer.
    for wrong in [len - 1, len + 1] {
        let mut changed = uki.clone();
        changed.resize(wrong, 0);
        let layout = cvmkit_disk::DiskLayout::plan(&spec, Format::Gcp).unwrap();
        std::fs::write(&path, &changed).unwrap();
        let err = layout.write(&mut Cursor::new(Vec::new())).unwrap_err().to_string();
        assert!(err.contains("changed while the disk was written"), "{wrong}: {err}");
        std::fs::write(&path, &uki).unwrap();
    }
}
