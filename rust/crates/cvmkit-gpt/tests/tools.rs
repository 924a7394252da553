//! The writer checked by `sgdisk -v` and `sfdisk --verify`/`--json` (gdisk, fdisk), and the
//! reader checked on a table `sfdisk` wrote and against corruptions of each structure.
//! Fails (does not skip) when a tool is missing, naming the package.

use std::path::{Path, PathBuf};
use std::process::Command;

use cvmkit_gpt::{
    Gpt, GptBuilder, GptDisk, ReadError, WriteError, ESP, LINUX_DATA, LINUX_ROOT_X86_64,
};

fn require_tool(tool: &str, package: &str) -> PathBuf {
    cvmkit_testutil::require_tool(tool, package)
}

fn run(cmd: &mut Command) -> String {
    let out = cvmkit_testutil::output_deadline(cmd, cvmkit_testutil::RUN_TIMEOUT);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{text}",
        out.status
    );
    text
}

const SIZE: u64 = 64 << 20;

fn sample() -> Gpt {
    let mut b = GptBuilder::new(cvmkit_gpt::seeded_guid("t", "gpt-disk"), SIZE).unwrap();
    b.append(
        ESP,
        cvmkit_gpt::seeded_guid("t", "gpt-partition-1"),
        "ESP",
        20 << 20,
        0,
    )
    .unwrap();
    b.append(
        LINUX_ROOT_X86_64,
        cvmkit_gpt::seeded_guid("t", "gpt-partition-2"),
        "root-x86-64",
        10_000_000,
        1 << 60,
    )
    .unwrap();
    b.append(
        LINUX_DATA,
        cvmkit_gpt::seeded_guid("t", "gpt-partition-3"),
        "dätä ✓",
        1 << 20,
        0,
    )
    .unwrap();
    b.finish()
}

fn image(gpt: &Gpt) -> Vec<u8> {
    let mut disk = std::io::Cursor::new(vec![0u8; gpt.disk_size() as usize]);
    gpt.write_to(&mut disk).unwrap();
    disk.into_inner()
}

fn write_file(dir: &Path, gpt: &Gpt) -> PathBuf {
    let path = dir.join("disk.img");
    std::fs::write(&path, image(gpt)).unwrap();
    path
}

#[test]
fn sgdisk_and_sfdisk_accept_the_table() {
    let tmp = tempfile::tempdir().unwrap();
    let gpt = sample();
    let disk = write_file(tmp.path(), &gpt);
    let v = run(Command::new(require_tool("sgdisk", "gdisk"))
        .arg("-v")
        .arg(&disk));
    assert!(v.contains("No problems found"), "{v}");
    let v = run(Command::new(require_tool("sfdisk", "fdisk"))
        .arg("--verify")
        .arg(&disk));
    assert!(v.contains("No errors detected"), "{v}");

    let info = run(Command::new(require_tool("sgdisk", "gdisk"))
        .args(["-i", "2"])
        .arg(&disk));
    assert!(
        info.contains("Partition GUID code: 4F68BCE3-E8CD-4C1D-AF4F-D4A87B7C6F8B"),
        "{info}"
    );
    assert!(
        info.contains(&format!(
            "Partition unique GUID: {:X}",
            cvmkit_gpt::seeded_guid("t", "gpt-partition-2")
        )),
        "{info}"
    );
    assert!(info.contains("First sector: 43008"), "{info}"); // 21 MiB: after the 20 MiB ESP at 1 MiB
    assert!(info.contains("Partition size: 19532 sectors"), "{info}"); // 10,000,000 bytes rounded up
    assert!(info.contains("Attribute flags: 1000000000000000"), "{info}");
    assert!(info.contains("Partition name: 'root-x86-64'"), "{info}");
    let json = run(Command::new(require_tool("sfdisk", "fdisk"))
        .arg("--json")
        .arg(&disk));
    assert!(json.contains("\"name\": \"dätä ✓\""), "{json}");
    assert!(
        json.contains(&format!("\"id\": \"{:X}\"", cvmkit_gpt::seeded_guid("t", "gpt-disk"))),
        "{json}"
    );
}

#[test]
fn reader_reads_what_sfdisk_wrote() {
    let tmp = tempfile::tempdir().unwrap();
    let disk = tmp.path().join("sfdisk.img");
    std::fs::write(&disk, vec![0u8; SIZE as usize]).unwrap();
    let script = "label: gpt\n\
                  label-id: 01234567-89AB-CDEF-0123-456789ABCDEF\n\
                  start=2048, size=40960, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name=\"EFI System\"\n\
                  type=4F68BCE3-E8CD-4C1D-AF4F-D4A87B7C6F8B, name=root\n";
    let out = cvmkit_testutil::output_with_stdin(
        Command::new(require_tool("sfdisk", "fdisk"))
            .arg("--quiet")
            .arg(&disk),
        script.as_bytes(),
        cvmkit_testutil::RUN_TIMEOUT,
    );
    assert!(
        out.status.success(),
        "sfdisk: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let bytes = std::fs::read(&disk).unwrap();
    let gpt = GptDisk::read(&bytes).unwrap();
    assert_eq!(
        format!("{:X}", gpt.primary.disk_guid),
        "01234567-89AB-CDEF-0123-456789ABCDEF"
    );
    assert_eq!(gpt.backup.unwrap().my_lba, SIZE / 512 - 1);
    let parts: Vec<_> = gpt.partitions().collect();
    assert_eq!(parts.len(), 2);
    assert_eq!(
        (
            parts[0].entry.partition_type_guid,
            parts[0].entry.name().as_str()
        ),
        (ESP, "EFI System")
    );
    assert_eq!(
        (parts[0].entry.starting_lba, parts[0].entry.sectors()),
        (2048, 40960)
    );
    assert_eq!(parts[1].entry.partition_type_guid, LINUX_ROOT_X86_64);
    assert!(parts[1].entry.ending_lba <= gpt.primary.last_usable_lba);
    assert_eq!(
        gpt.partition_data(&parts[1].entry).unwrap().len() as u64,
        parts[1].entry.size()
    );
}

#[test]
fn reader_names_what_is_corrupt() {
    let gpt = sample();
    let good = image(&gpt);
    GptDisk::read(&good).unwrap();
    let last = SIZE / 512 - 1;
    let err = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut d = good.clone();
        f(&mut d);
        GptDisk::read(&d).unwrap_err()
    };
    // Re-seal a header after editing it, so that only the intended check fails.
    let reseal = |d: &mut Vec<u8>, at: usize| {
        d[at + 16..at + 20].fill(0);
        let crc = cvmkit_gpt::crc32(&d[at..at + 92]);
        d[at + 16..at + 20].copy_from_slice(&crc.to_le_bytes());
    };
    assert_eq!(err(&|d| d[510] = 0).to_string(), "no MBR at LBA 0 (boot signature is [00, aa], expected [55, aa]): not a partitioned disk image");
    assert_eq!(err(&|d| d[450] = 0x83), ReadError::NoProtectivePartition);
    assert!(matches!(
        err(&|d| d[512] = b'X'),
        ReadError::BadSignature {
            which: "primary",
            lba: 1,
            ..
        }
    ));
    assert!(matches!(
        err(&|d| d[600] ^= 1),
        ReadError::HeaderCrcMismatch {
            which: "primary",
            ..
        }
    ));
    assert!(matches!(
        err(&|d| d[1024 + 40] ^= 1),
        ReadError::EntriesCrcMismatch {
            which: "primary",
            ..
        }
    ));
    let backup = (last * 512) as usize;
    assert!(matches!(
        err(&|d| d[backup + 8] ^= 1),
        ReadError::HeaderCrcMismatch {
            which: "backup",
            ..
        }
    ));
    // A truncated image: the backup header's LBA is past the end.
    let cut = GptDisk::read(&good[..good.len() - 4096]).unwrap_err();
    assert_eq!(
        cut.to_string(),
        format!("primary GPT header: AlternateLBA {last} is beyond the last LBA {} of the image; was the image truncated or resized?", last - 8)
    );
    assert_eq!(
        GptDisk::read_primary(&good[..good.len() - 4096])
            .unwrap()
            .partitions()
            .count(),
        3
    );
    // Just the first 34 sectors are enough for the primary table.
    let head = GptDisk::read_primary(&good[..34 * 512]).unwrap();
    assert_eq!(head.partitions().count(), 3);
    assert!(head
        .partition_data(&head.partitions().next().unwrap().entry)
        .is_none());
    // Entries beyond the disk.
    let e = err(&|d| {
        d[512 + 72..512 + 80].copy_from_slice(&(last - 2).to_le_bytes()); // PartitionEntryLBA near the end
        reseal(d, 512);
    });
    assert!(
        matches!(
            e,
            ReadError::BadUsableRange { .. } | ReadError::EntriesBeyondDisk { .. }
        ),
        "{e}"
    );
    let e = err(&|d| {
        d[512 + 80..512 + 84].copy_from_slice(&100_000u32.to_le_bytes()); // NumberOfPartitionEntries
        reseal(d, 512);
    });
    assert_eq!(e.to_string(), "primary GPT header: 100000 partition entries of 128 bytes (expected entries of 128 × 2^n bytes, at most 1 MiB in all)");
    // Overlapping partitions, with both CRCs right.
    let mut bad = gpt.clone();
    bad.partitions[1].starting_lba = bad.partitions[0].ending_lba;
    assert_eq!(
        GptDisk::read(&image(&bad)).unwrap_err().to_string(),
        format!(
            "partitions 1 and 2 overlap (LBA {0}..={0} is in both)",
            bad.partitions[0].ending_lba
        )
    );
    let mut bad = gpt.clone();
    bad.partitions[2].ending_lba = last;
    assert!(matches!(
        GptDisk::read(&image(&bad)).unwrap_err(),
        ReadError::PartitionOutsideUsable { index: 3, .. }
    ));
    // Backup disagreeing with the primary.
    let e = err(&|d| {
        d[backup + 56] ^= 1; // DiskGUID
        reseal(d, backup);
    });
    assert_eq!(e.to_string(), format!("backup GPT header at LBA {last} disagrees with the primary on DiskGUID; repair with `sgdisk -e` or rewrite the table"));
    // Every prefix and single-byte corruption of the first sectors: errors, no panics.
    for len in (0..good.len()).step_by(4093) {
        let _ = GptDisk::read(&good[..len]);
    }
    for i in 0..2048 {
        let mut d = good[..34 * 512].to_vec();
        d[i] ^= 0xFF;
        let _ = GptDisk::read(&d);
    }
}

#[test]
fn builder_refuses_bad_layouts() {
    let g = |s| cvmkit_gpt::seeded_guid("t", s);
    assert_eq!(
        GptBuilder::new(g("d"), 1000).unwrap_err().to_string(),
        "disk size 1000 bytes cannot hold a GPT: it must be a multiple of 512 and at least 2097152 bytes"
    );
    let mut b = GptBuilder::new(g("d"), 4 << 20).unwrap();
    b.append(ESP, g("1"), "ESP", 1 << 20, 0).unwrap();
    assert_eq!(
        b.append(ESP, g("2"), "big", 2 << 20, 0).unwrap_err(),
        WriteError::OutsideUsable {
            name: "big".into(),
            first: 4096,
            last: 8191,
            usable_first: 34,
            usable_last: 8158
        }
    );
    assert!(matches!(
        b.append(ESP, g("1"), "dup", 1 << 19, 0),
        Err(WriteError::DuplicateGuid { .. })
    ));
    assert!(matches!(
        b.append(ESP, g("3"), &"n".repeat(37), 512, 0),
        Err(WriteError::NameTooLong { units: 37, .. })
    ));
    assert_eq!(
        b.append(ESP, g("3"), "zero", 0, 0).unwrap_err().to_string(),
        "partition \"zero\" has size 0; give it at least one sector"
    );
    let mut e = b.clone().finish().partitions[0];
    e.unique_partition_guid = g("4");
    assert!(matches!(b.add(e), Err(WriteError::Overlap { .. })));
}
