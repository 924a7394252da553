//! Errors of the reader ([`ReadError`]) and the writer ([`WriteError`]).

/// Why a byte string is not a valid GPT disk. Every message is one line that names the
/// structure, the LBA or entry at fault and what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// A structure lies (partly) past the end of the image.
    #[error("truncated {what} at byte 0x{offset:x}: the image is only 0x{len:x} bytes; is it cut short?")]
    Truncated {
        /// The structure being read.
        what: &'static str,
        /// Byte offset of the read.
        offset: u64,
        /// Length of the image.
        len: u64,
    },
    /// LBA 0 does not end in `55 AA`.
    #[error("no MBR at LBA 0 (boot signature is {found:02x?}, expected [55, aa]): not a partitioned disk image")]
    NoMbrSignature {
        /// The two bytes found at offset 510.
        found: [u8; 2],
    },
    /// The MBR has no partition of type 0xEE.
    #[error("the MBR at LBA 0 has no protective (type 0xEE) partition: an MBR-only disk, not GPT")]
    NoProtectivePartition,
    /// A header does not start with `"EFI PART"`.
    #[error("{which} GPT header at LBA {lba} has signature {found:02x?}, expected \"EFI PART\"")]
    BadSignature {
        /// "primary" or "backup".
        which: &'static str,
        /// LBA read.
        lba: u64,
        /// The 8 bytes found.
        found: [u8; 8],
    },
    /// `Revision` has a major version other than 1.
    #[error("{which} GPT header at LBA {lba} has revision 0x{revision:08x}, expected 0x00010000")]
    BadRevision {
        /// "primary" or "backup".
        which: &'static str,
        /// LBA read.
        lba: u64,
        /// `Revision`.
        revision: u32,
    },
    /// `HeaderSize` is below 92 or above the sector size.
    #[error("{which} GPT header at LBA {lba} has HeaderSize {size}, expected 92..=512")]
    BadHeaderSize {
        /// "primary" or "backup".
        which: &'static str,
        /// LBA read.
        lba: u64,
        /// `HeaderSize`.
        size: u32,
    },
    /// `HeaderCRC32` does not match the header.
    #[error("{which} GPT header at LBA {lba} fails its CRC32: stored 0x{stored:08x}, computed 0x{computed:08x}")]
    HeaderCrcMismatch {
        /// "primary" or "backup".
        which: &'static str,
        /// LBA read.
        lba: u64,
        /// `HeaderCRC32`.
        stored: u32,
        /// CRC32 of the header with that field zeroed.
        computed: u32,
    },
    /// `MyLBA` is not the LBA the header was read from.
    #[error("{which} GPT header read at LBA {lba} says MyLBA is {my_lba}")]
    WrongMyLba {
        /// "primary" or "backup".
        which: &'static str,
        /// LBA read.
        lba: u64,
        /// `MyLBA`.
        my_lba: u64,
    },
    /// An LBA field points past the end of the disk.
    #[error("{which} GPT header: {field} {lba} is beyond the last LBA {last_lba} of the image; was the image truncated or resized?")]
    LbaBeyondDisk {
        /// "primary" or "backup".
        which: &'static str,
        /// The field, e.g. "AlternateLBA".
        field: &'static str,
        /// Its value.
        lba: u64,
        /// Last LBA of the image.
        last_lba: u64,
    },
    /// `FirstUsableLBA` > `LastUsableLBA`, or the usable range overlaps the headers.
    #[error(
        "{which} GPT header: usable LBAs {first}..={last} are empty or overlap the GPT structures"
    )]
    BadUsableRange {
        /// "primary" or "backup".
        which: &'static str,
        /// `FirstUsableLBA`.
        first: u64,
        /// `LastUsableLBA`.
        last: u64,
    },
    /// `SizeOfPartitionEntry` is not 128 × 2ⁿ or `NumberOfPartitionEntries` is absurd.
    #[error("{which} GPT header: {count} partition entries of {size} bytes (expected entries of 128 × 2^n bytes, at most 1 MiB in all)")]
    BadEntryArray {
        /// "primary" or "backup".
        which: &'static str,
        /// `NumberOfPartitionEntries`.
        count: u32,
        /// `SizeOfPartitionEntry`.
        size: u32,
    },
    /// The partition entry array extends past the end of the image.
    #[error("{which} GPT partition entry array at LBA {lba} ({bytes} bytes) extends beyond the image ({len} bytes)")]
    EntriesBeyondDisk {
        /// "primary" or "backup".
        which: &'static str,
        /// `PartitionEntryLBA`.
        lba: u64,
        /// Size of the array.
        bytes: u64,
        /// Length of the image.
        len: u64,
    },
    /// `PartitionEntryArrayCRC32` does not match the array.
    #[error("{which} GPT partition entry array fails its CRC32: stored 0x{stored:08x}, computed 0x{computed:08x}")]
    EntriesCrcMismatch {
        /// "primary" or "backup".
        which: &'static str,
        /// `PartitionEntryArrayCRC32`.
        stored: u32,
        /// CRC32 of the array.
        computed: u32,
    },
    /// A partition ends before it starts.
    #[error("partition {index} ends (LBA {last}) before it starts (LBA {first})")]
    PartitionReversed {
        /// 1-based entry index.
        index: u32,
        /// `StartingLBA`.
        first: u64,
        /// `EndingLBA`.
        last: u64,
    },
    /// A partition lies outside the usable LBAs.
    #[error("partition {index} (LBA {first}..={last}) lies outside the usable LBAs {usable_first}..={usable_last}")]
    PartitionOutsideUsable {
        /// 1-based entry index.
        index: u32,
        /// `StartingLBA`.
        first: u64,
        /// `EndingLBA`.
        last: u64,
        /// `FirstUsableLBA`.
        usable_first: u64,
        /// `LastUsableLBA`.
        usable_last: u64,
    },
    /// Two partitions share sectors.
    #[error("partitions {a} and {b} overlap (LBA {first}..={last} is in both)")]
    PartitionsOverlap {
        /// 1-based index of the earlier entry.
        a: u32,
        /// 1-based index of the later entry.
        b: u32,
        /// First shared LBA.
        first: u64,
        /// Last shared LBA.
        last: u64,
    },
    /// The backup header does not describe the same table as the primary.
    #[error("backup GPT header at LBA {lba} disagrees with the primary on {field}; repair with `sgdisk -e` or rewrite the table")]
    BackupMismatch {
        /// LBA of the backup header.
        lba: u64,
        /// The field that differs.
        field: &'static str,
    },
}

/// Why a partition table cannot be built as asked. One line each, naming the value at fault
/// and what would fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WriteError {
    /// The disk size is not a whole number of 512-byte sectors or too small for a GPT.
    #[error("disk size {size} bytes cannot hold a GPT: it must be a multiple of 512 and at least {min} bytes")]
    BadDiskSize {
        /// The size asked for.
        size: u64,
        /// Smallest size accepted.
        min: u64,
    },
    /// All 128 entries are in use.
    #[error("partition table is full: a GPT written by cvmkit holds at most 128 partitions")]
    TableFull,
    /// A partition lies outside the usable LBAs or ends before it starts.
    #[error("partition {name:?} at LBA {first}..={last} does not fit the usable LBAs {usable_first}..={usable_last}; make the disk larger or the partition smaller")]
    OutsideUsable {
        /// Partition name.
        name: String,
        /// First LBA asked for.
        first: u64,
        /// Last LBA asked for.
        last: u64,
        /// `FirstUsableLBA`.
        usable_first: u64,
        /// `LastUsableLBA`.
        usable_last: u64,
    },
    /// A partition overlaps one added before.
    #[error("partition {name:?} at LBA {first}..={last} overlaps partition {other:?}")]
    Overlap {
        /// Partition name.
        name: String,
        /// First LBA asked for.
        first: u64,
        /// Last LBA asked for.
        last: u64,
        /// Name of the partition it overlaps.
        other: String,
    },
    /// The name does not fit in 36 UTF-16 code units.
    #[error(
        "partition name {name:?} is {units} UTF-16 code units long; GPT names hold at most 36"
    )]
    NameTooLong {
        /// The name.
        name: String,
        /// Its length in UTF-16 code units.
        units: usize,
    },
    /// The name contains U+0000, which would end it early.
    #[error("partition name {name:?} contains a NUL character")]
    NameHasNul {
        /// The name.
        name: String,
    },
    /// A size of zero bytes.
    #[error("partition {name:?} has size 0; give it at least one sector")]
    EmptyPartition {
        /// Partition name.
        name: String,
    },
    /// Two partitions were given the same unique GUID.
    #[error("partition {name:?} reuses the unique GUID {guid} of partition {other:?}")]
    DuplicateGuid {
        /// Partition name.
        name: String,
        /// The GUID.
        guid: crate::Guid,
        /// The partition that has it already.
        other: String,
    },
}

impl From<cvmkit_measure::Truncated> for ReadError {
    fn from(t: cvmkit_measure::Truncated) -> ReadError {
        ReadError::Truncated { what: t.what, offset: t.offset, len: t.end }
    }
}
