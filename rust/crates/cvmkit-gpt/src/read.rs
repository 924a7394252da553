//! Reading and validating the partition table of a disk image held in memory (or mapped).

use crate::structs::{
    crc32, slice, GptHeader, PartitionEntry, MAX_ENTRY_ARRAY_BYTES, MBR_PROTECTIVE_TYPE,
    MBR_SIGNATURE, PARTITION_ENTRY_SIZE, SECTOR_SIZE,
};
use crate::ReadError;

/// A validated GPT over the bytes of a whole disk image. Borrowing: partition entries are
/// decoded on demand from the image, and [`GptDisk::partition_data`] hands out sub-slices.
#[derive(Debug, Clone, Copy)]
pub struct GptDisk<'a> {
    disk: &'a [u8],
    /// The primary header (LBA 1).
    pub primary: GptHeader,
    /// The backup header, when it was read ([`GptDisk::read`]); `None` from
    /// [`GptDisk::read_primary`].
    pub backup: Option<GptHeader>,
    entries: &'a [u8],
}

/// One used partition entry and its 1-based index in the entry array.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Partition {
    /// 1-based index in the entry array, as `/dev/vda<index>` numbers it.
    pub index: u32,
    /// The entry.
    pub entry: PartitionEntry,
}

fn last_lba(disk: &[u8]) -> Result<u64, ReadError> {
    let sectors = disk.len() as u64 / SECTOR_SIZE;
    if sectors < 3 {
        return Err(ReadError::Truncated {
            what: "GPT disk (3 sectors at least)",
            offset: 0,
            len: disk.len() as u64,
        });
    }
    Ok(sectors - 1)
}

/// Checks LBA 0 for a protective MBR: the `55 AA` signature and a partition of type 0xEE.
pub fn check_protective_mbr(disk: &[u8]) -> Result<(), ReadError> {
    let mbr = slice(disk, 0, SECTOR_SIZE).ok_or(ReadError::Truncated {
        what: "MBR",
        offset: 0,
        len: disk.len() as u64,
    })?;
    let sig = [mbr[510], mbr[511]];
    if sig != MBR_SIGNATURE {
        return Err(ReadError::NoMbrSignature { found: sig });
    }
    if !(0..4).any(|i| mbr[446 + 16 * i + 4] == MBR_PROTECTIVE_TYPE) {
        return Err(ReadError::NoProtectivePartition);
    }
    Ok(())
}

/// Reads the header at `lba` and checks it on its own (signature, revision, size, CRC, `MyLBA`)
/// and against the disk (LBA fields within it, sane usable range and entry array), then
/// returns it with its entry array, whose CRC is checked too.
pub fn read_header<'a>(
    disk: &'a [u8],
    lba: u64,
    which: &'static str,
) -> Result<(GptHeader, &'a [u8]), ReadError> {
    read_header_at(disk, lba, which, true)
}

/// [`read_header`]; with `whole_disk` false, `AlternateLBA` and `LastUsableLBA` may point past
/// the end of the image (whose tail is missing).
fn read_header_at<'a>(
    disk: &'a [u8],
    lba: u64,
    which: &'static str,
    whole_disk: bool,
) -> Result<(GptHeader, &'a [u8]), ReadError> {
    let last = if whole_disk {
        last_lba(disk)?
    } else {
        u64::MAX
    };
    last_lba(disk)?;
    let offset = lba.saturating_mul(SECTOR_SIZE);
    let sector = slice(disk, offset, SECTOR_SIZE).ok_or(ReadError::Truncated {
        what: "GPT header",
        offset,
        len: disk.len() as u64,
    })?;
    let h = GptHeader::parse(sector, offset)?;
    h.validate(sector, lba, which)?;
    for (field, value) in [
        ("AlternateLBA", h.alternate_lba),
        ("LastUsableLBA", h.last_usable_lba),
        ("PartitionEntryLBA", h.partition_entry_lba),
    ] {
        if value > last {
            return Err(ReadError::LbaBeyondDisk {
                which,
                field,
                lba: value,
                last_lba: last,
            });
        }
    }
    let entry_size = h.size_of_partition_entry;
    let bytes = h.entry_array_bytes().unwrap_or(u64::MAX);
    if entry_size < PARTITION_ENTRY_SIZE
        || !(entry_size / PARTITION_ENTRY_SIZE).is_power_of_two()
        || entry_size % PARTITION_ENTRY_SIZE != 0
        || bytes > MAX_ENTRY_ARRAY_BYTES
    {
        return Err(ReadError::BadEntryArray {
            which,
            count: h.number_of_partition_entries,
            size: entry_size,
        });
    }
    let array_sectors = bytes.div_ceil(SECTOR_SIZE);
    let array_end = h.partition_entry_lba.saturating_add(array_sectors); // exclusive
    let overlaps_array = |first: u64, last: u64| first < array_end && h.partition_entry_lba <= last;
    if h.first_usable_lba > h.last_usable_lba
        || h.first_usable_lba < 2
        || h.first_usable_lba <= lba.min(h.alternate_lba)
        || h.last_usable_lba >= lba.max(h.alternate_lba)
        || overlaps_array(h.first_usable_lba, h.last_usable_lba)
        || overlaps_array(lba, lba)
    {
        return Err(ReadError::BadUsableRange {
            which,
            first: h.first_usable_lba,
            last: h.last_usable_lba,
        });
    }
    let array_offset = h.partition_entry_lba.saturating_mul(SECTOR_SIZE);
    let entries = slice(disk, array_offset, bytes).ok_or(ReadError::EntriesBeyondDisk {
        which,
        lba: h.partition_entry_lba,
        bytes,
        len: disk.len() as u64,
    })?;
    let computed = crc32(entries);
    if computed != h.partition_entry_array_crc32 {
        return Err(ReadError::EntriesCrcMismatch {
            which,
            stored: h.partition_entry_array_crc32,
            computed,
        });
    }
    Ok((h, entries))
}

impl<'a> GptDisk<'a> {
    /// Reads and validates the whole table: protective MBR, primary header and entry array,
    /// every used entry (within the usable LBAs, no overlaps), and the backup header at
    /// `AlternateLBA` with its own entry array, which must describe the same table.
    pub fn read(disk: &'a [u8]) -> Result<GptDisk<'a>, ReadError> {
        let mut gpt = GptDisk::read_primary_at(disk, true)?;
        let p = gpt.primary;
        let (b, backup_entries) = read_header(disk, p.alternate_lba, "backup")?;
        let lba = p.alternate_lba;
        let mismatch = |field| Err(ReadError::BackupMismatch { lba, field });
        if b.alternate_lba != p.my_lba {
            return mismatch("AlternateLBA");
        }
        if b.disk_guid != p.disk_guid {
            return mismatch("DiskGUID");
        }
        if (b.first_usable_lba, b.last_usable_lba) != (p.first_usable_lba, p.last_usable_lba) {
            return mismatch("FirstUsableLBA/LastUsableLBA");
        }
        if (b.number_of_partition_entries, b.size_of_partition_entry)
            != (p.number_of_partition_entries, p.size_of_partition_entry)
        {
            return mismatch("NumberOfPartitionEntries/SizeOfPartitionEntry");
        }
        if backup_entries != gpt.entries {
            return mismatch("partition entry array");
        }
        gpt.backup = Some(b);
        Ok(gpt)
    }

    /// Like [`GptDisk::read`] without looking at the backup header, and allowing
    /// `AlternateLBA` and `LastUsableLBA` past the end of `disk`: for an image whose end is
    /// missing or damaged, or for just its first sectors. [`GptDisk::partition_data`] is `None`
    /// for partitions that are not all there.
    pub fn read_primary(disk: &'a [u8]) -> Result<GptDisk<'a>, ReadError> {
        GptDisk::read_primary_at(disk, false)
    }

    fn read_primary_at(disk: &'a [u8], whole_disk: bool) -> Result<GptDisk<'a>, ReadError> {
        check_protective_mbr(disk)?;
        let (primary, entries) = read_header_at(disk, 1, "primary", whole_disk)?;
        let gpt = GptDisk {
            disk,
            primary,
            backup: None,
            entries,
        };
        gpt.check_partitions()?;
        Ok(gpt)
    }

    fn check_partitions(&self) -> Result<(), ReadError> {
        let h = &self.primary;
        let mut seen: Vec<(u32, u64, u64)> = Vec::new();
        for p in self.partitions() {
            let (first, last) = (p.entry.starting_lba, p.entry.ending_lba);
            if last < first {
                return Err(ReadError::PartitionReversed {
                    index: p.index,
                    first,
                    last,
                });
            }
            if first < h.first_usable_lba || last > h.last_usable_lba {
                return Err(ReadError::PartitionOutsideUsable {
                    index: p.index,
                    first,
                    last,
                    usable_first: h.first_usable_lba,
                    usable_last: h.last_usable_lba,
                });
            }
            seen.push((p.index, first, last));
        }
        // Sort by start so overlaps are found in O(n log n) even for 8192 entries.
        seen.sort_by_key(|&(i, f, _)| (f, i));
        for w in seen.windows(2) {
            let ((a, _, a_last), (b, b_first, b_last)) = (w[0], w[1]);
            if b_first <= a_last {
                let (a, b) = (a.min(b), a.max(b));
                return Err(ReadError::PartitionsOverlap {
                    a,
                    b,
                    first: b_first,
                    last: a_last.min(b_last),
                });
            }
        }
        Ok(())
    }

    /// The raw entry array of the primary table.
    pub fn entry_array(&self) -> &'a [u8] {
        self.entries
    }

    /// The used entries (non-zero type GUID), in array order. Entries larger than 128 bytes
    /// are read from their first 128 bytes.
    pub fn partitions(&self) -> impl Iterator<Item = Partition> + 'a {
        let size = self
            .primary
            .size_of_partition_entry
            .max(PARTITION_ENTRY_SIZE) as usize;
        let base = self.primary.partition_entry_lba.saturating_mul(SECTOR_SIZE);
        self.entries
            .chunks_exact(size)
            .enumerate()
            .filter_map(move |(i, chunk)| {
                let entry = PartitionEntry::parse(chunk, base + (i * size) as u64).ok()?;
                (!entry.is_unused()).then_some(Partition {
                    index: i as u32 + 1,
                    entry,
                })
            })
    }

    /// The bytes of a partition, or `None` if the image ends before it does.
    pub fn partition_data(&self, entry: &PartitionEntry) -> Option<&'a [u8]> {
        slice(self.disk, entry.offset(), entry.size())
    }

    /// The whole image.
    pub fn disk(&self) -> &'a [u8] {
        self.disk
    }
}
