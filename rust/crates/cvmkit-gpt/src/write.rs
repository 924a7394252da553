//! Building a partition table: [`GptBuilder`] reserves every partition's LBAs first; the
//! finished [`Gpt`] then yields the three byte ranges to write, in disk order.

use std::io::{Seek, SeekFrom, Write};

use crate::structs::{
    encode_name, GptHeader, PartitionEntry, ENTRY_ARRAY_SECTORS, GPT_HEADER_SIZE, GPT_REVISION,
    GPT_SIGNATURE, MBR_PROTECTIVE_TYPE, MBR_SIGNATURE, PARTITION_ENTRY_COUNT, PARTITION_ENTRY_SIZE,
    SECTOR_SIZE,
};
use crate::{crc32, Guid, WriteError};

/// Partition alignment cvmkit uses: 1 MiB (2048 sectors), as `sfdisk`, `sgdisk` and
/// `systemd-repart` do.
pub const ALIGNMENT: u64 = 1 << 20;

/// First LBA a partition may use: after the MBR, the primary header and the 32-sector array.
pub const FIRST_USABLE_LBA: u64 = 2 + ENTRY_ARRAY_SECTORS;

/// Smallest disk the builder accepts: the first aligned MiB plus one MiB for a partition and
/// the backup table.
pub const MIN_DISK_SIZE: u64 = 2 * ALIGNMENT;

/// Lays out a GPT disk: its size and GUID are fixed first, then partitions are appended at
/// 1 MiB-aligned LBAs (or placed at given LBAs) and checked against each other.
#[derive(Debug, Clone)]
pub struct GptBuilder {
    disk_guid: Guid,
    disk_sectors: u64,
    partitions: Vec<PartitionEntry>,
}

impl GptBuilder {
    /// A table for a disk of `disk_size` bytes (a multiple of 512, at least [`MIN_DISK_SIZE`]).
    pub fn new(disk_guid: Guid, disk_size: u64) -> Result<GptBuilder, WriteError> {
        if disk_size % SECTOR_SIZE != 0 || disk_size < MIN_DISK_SIZE {
            return Err(WriteError::BadDiskSize {
                size: disk_size,
                min: MIN_DISK_SIZE,
            });
        }
        Ok(GptBuilder {
            disk_guid,
            disk_sectors: disk_size / SECTOR_SIZE,
            partitions: Vec::new(),
        })
    }

    /// `LastUsableLBA`: the sector before the backup entry array.
    pub fn last_usable_lba(&self) -> u64 {
        self.disk_sectors - 2 - ENTRY_ARRAY_SECTORS
    }

    /// The first 1 MiB-aligned LBA after every partition added so far.
    pub fn next_aligned_lba(&self) -> u64 {
        let end = self
            .partitions
            .iter()
            .map(|p| p.ending_lba + 1)
            .max()
            .unwrap_or(FIRST_USABLE_LBA);
        let align = ALIGNMENT / SECTOR_SIZE;
        end.div_ceil(align) * align
    }

    /// Appends a partition of `size` bytes (rounded up to whole sectors) at
    /// [`GptBuilder::next_aligned_lba`]; returns its entry.
    pub fn append(
        &mut self,
        partition_type_guid: Guid,
        unique_partition_guid: Guid,
        name: &str,
        size: u64,
        attributes: u64,
    ) -> Result<PartitionEntry, WriteError> {
        if size == 0 {
            return Err(WriteError::EmptyPartition {
                name: name.to_string(),
            });
        }
        let first = self.next_aligned_lba();
        let last = first.saturating_add(size.div_ceil(SECTOR_SIZE)) - 1;
        let entry = PartitionEntry {
            partition_type_guid,
            unique_partition_guid,
            starting_lba: first,
            ending_lba: last,
            attributes,
            partition_name: encode_name(name)?,
        };
        self.add(entry)?;
        Ok(entry)
    }

    /// Adds an entry at the LBAs it names, after checking that it lies within the usable LBAs,
    /// overlaps no other partition and does not reuse a unique GUID.
    pub fn add(&mut self, entry: PartitionEntry) -> Result<(), WriteError> {
        let name = entry.name();
        if self.partitions.len() >= PARTITION_ENTRY_COUNT as usize {
            return Err(WriteError::TableFull);
        }
        let (first, last) = (entry.starting_lba, entry.ending_lba);
        if first < FIRST_USABLE_LBA || last > self.last_usable_lba() || last < first {
            return Err(WriteError::OutsideUsable {
                name,
                first,
                last,
                usable_first: FIRST_USABLE_LBA,
                usable_last: self.last_usable_lba(),
            });
        }
        for p in &self.partitions {
            if first <= p.ending_lba && p.starting_lba <= last {
                return Err(WriteError::Overlap {
                    name,
                    first,
                    last,
                    other: p.name(),
                });
            }
            if p.unique_partition_guid == entry.unique_partition_guid {
                return Err(WriteError::DuplicateGuid {
                    name,
                    guid: entry.unique_partition_guid,
                    other: p.name(),
                });
            }
        }
        self.partitions.push(entry);
        Ok(())
    }

    /// The finished table.
    pub fn finish(self) -> Gpt {
        Gpt {
            disk_guid: self.disk_guid,
            disk_sectors: self.disk_sectors,
            partitions: self.partitions,
        }
    }
}

/// A complete GPT: protective MBR, primary header and entry array at the start of the disk,
/// backup entry array and header at its end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gpt {
    /// `DiskGUID`.
    pub disk_guid: Guid,
    /// Size of the disk in sectors.
    pub disk_sectors: u64,
    /// Entries 1.. of the array, in order; the rest of the 128 are unused.
    pub partitions: Vec<PartitionEntry>,
}

impl Gpt {
    /// The 128 × 128-byte partition entry array.
    pub fn entry_array(&self) -> Vec<u8> {
        let mut a = vec![0u8; (PARTITION_ENTRY_COUNT * PARTITION_ENTRY_SIZE) as usize];
        for (chunk, p) in a
            .chunks_exact_mut(PARTITION_ENTRY_SIZE as usize)
            .zip(&self.partitions)
        {
            chunk.copy_from_slice(&p.to_bytes());
        }
        a
    }

    /// The primary (`backup == false`, LBA 1) or backup (last LBA) header.
    pub fn header(&self, backup: bool) -> GptHeader {
        // Saturating: a hand-made `Gpt` below MIN_DISK_SIZE gives a bad table, not a panic.
        let last = self.disk_sectors.saturating_sub(1);
        let (my_lba, alternate_lba, partition_entry_lba) = if backup {
            (last, 1, last.saturating_sub(ENTRY_ARRAY_SECTORS))
        } else {
            (1, last, 2)
        };
        GptHeader {
            signature: GPT_SIGNATURE,
            revision: GPT_REVISION,
            header_size: GPT_HEADER_SIZE,
            header_crc32: 0,
            my_lba,
            alternate_lba,
            first_usable_lba: FIRST_USABLE_LBA,
            last_usable_lba: last.saturating_sub(1 + ENTRY_ARRAY_SECTORS),
            disk_guid: self.disk_guid,
            partition_entry_lba,
            number_of_partition_entries: PARTITION_ENTRY_COUNT,
            size_of_partition_entry: PARTITION_ENTRY_SIZE,
            partition_entry_array_crc32: crc32(&self.entry_array()),
        }
    }

    /// The protective MBR (UEFI spec table 5-4): no boot code, disk signature 0, one partition
    /// of type 0xEE from LBA 1 to the end of the disk (capped at 0xFFFFFFFF sectors).
    pub fn protective_mbr(&self) -> [u8; 512] {
        let mut s = [0u8; 512];
        let p = &mut s[446..462];
        p[0] = 0x00; // BootIndicator
        p[1..4].copy_from_slice(&[0x00, 0x02, 0x00]); // StartingCHS: 0x000200
        p[4] = MBR_PROTECTIVE_TYPE; // OSType
        p[5..8].copy_from_slice(&[0xFF, 0xFF, 0xFF]); // EndingCHS
        p[8..12].copy_from_slice(&1u32.to_le_bytes()); // StartingLBA
        let size = u32::try_from(self.disk_sectors.saturating_sub(1)).unwrap_or(u32::MAX);
        p[12..16].copy_from_slice(&size.to_le_bytes()); // SizeInLBA
        s[510..512].copy_from_slice(&MBR_SIGNATURE);
        s
    }

    /// LBA 0 through `FirstUsableLBA - 1`: protective MBR, primary header, entry array
    /// (17,408 bytes, written at byte 0).
    pub fn primary_bytes(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity((FIRST_USABLE_LBA * SECTOR_SIZE) as usize);
        v.extend_from_slice(&self.protective_mbr());
        v.extend_from_slice(&self.header(false).to_sector());
        v.extend_from_slice(&self.entry_array());
        v
    }

    /// Byte offset of the backup entry array: [`Gpt::backup_bytes`] go there.
    pub fn backup_offset(&self) -> u64 {
        self.disk_sectors.saturating_sub(1 + ENTRY_ARRAY_SECTORS) * SECTOR_SIZE
    }

    /// The backup entry array followed by the backup header, which ends the disk (16,896 bytes).
    pub fn backup_bytes(&self) -> Vec<u8> {
        let mut v = self.entry_array();
        v.extend_from_slice(&self.header(true).to_sector());
        v
    }

    /// Size of the disk in bytes.
    pub fn disk_size(&self) -> u64 {
        self.disk_sectors * SECTOR_SIZE
    }

    /// Writes [`Gpt::primary_bytes`] at 0 and [`Gpt::backup_bytes`] at [`Gpt::backup_offset`];
    /// everything else is left as it is.
    pub fn write_to<W: Write + Seek>(&self, out: &mut W) -> std::io::Result<()> {
        out.seek(SeekFrom::Start(0))?;
        out.write_all(&self.primary_bytes())?;
        out.seek(SeekFrom::Start(self.backup_offset()))?;
        out.write_all(&self.backup_bytes())
    }
}
