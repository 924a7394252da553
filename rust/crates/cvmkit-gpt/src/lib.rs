//! GUID Partition Tables (UEFI 2.10 chapter 5) for 512-byte-sector disk images: a writer
//! that lays out partitions at 1 MiB alignment, and a reader for untrusted images.
//!
//! - [`GptBuilder`] fixes the disk size and `DiskGUID`, then reserves each partition's LBAs
//!   ([`GptBuilder::append`] at the next 1 MiB boundary); the finished [`Gpt`] yields the bytes
//!   to write: the protective MBR, primary header and 128 × 128-byte entry array at the start
//!   ([`Gpt::primary_bytes`]) and the backup array and header that end the disk
//!   ([`Gpt::backup_bytes`] at [`Gpt::backup_offset`]), each with its CRC32.
//! - [`GptDisk::read`] validates a whole image (protective MBR, both headers and their CRC32s,
//!   usable range, entries within it and not overlapping, backup equal to the primary) and
//!   then hands out entries and partition contents as sub-slices of the image. Every read is
//!   bounds checked: corrupt input gives a [`ReadError`] naming the structure, never a panic
//!   (`fuzz/` throws arbitrary bytes at it).
//! - [`Guid`] has the partition types cvmkit uses ([`ESP`], [`LINUX_ROOT_X86_64`] of the UAPI
//!   Discoverable Partitions Specification, [`LINUX_DATA`]) and [`seeded_guid`]: an
//!   RFC 9562 version 8 (SHA-256 name-based, appendix B.2) GUID of a purpose and a seed, so
//!   that the same seed always gives the same disk.
//!
//! ```
//! use cvmkit_gpt::{seeded_guid, GptBuilder, GptDisk, ESP, LINUX_ROOT_X86_64};
//!
//! let mut b = GptBuilder::new(seeded_guid("demo", "gpt-disk"), 8 << 20)?;
//! let esp = b.append(ESP, seeded_guid("demo", "gpt-partition-1"), "ESP", 3 << 20, 0)?;
//! b.append(LINUX_ROOT_X86_64, seeded_guid("demo", "gpt-partition-2"), "root-x86-64", 1 << 20, 0)?;
//! let gpt = b.finish();
//! assert_eq!(esp.starting_lba, 2048); // 1 MiB
//!
//! let mut disk = vec![0u8; 8 << 20];
//! disk[..17408].copy_from_slice(&gpt.primary_bytes());
//! let at = gpt.backup_offset() as usize;
//! disk[at..].copy_from_slice(&gpt.backup_bytes());
//!
//! let read = GptDisk::read(&disk)?;
//! let parts: Vec<_> = read.partitions().collect();
//! assert_eq!(parts.len(), 2);
//! assert_eq!(parts[1].entry.name(), "root-x86-64");
//! assert_eq!(parts[1].entry.starting_lba, 4 * 2048);
//! assert_eq!(read.partition_data(&parts[0].entry).unwrap().len(), 3 << 20);
//!
//! disk[600] ^= 1; // corrupt the primary header
//! assert_eq!(
//!     GptDisk::read(&disk).unwrap_err().to_string(),
//!     format!("primary GPT header at LBA 1 fails its CRC32: stored 0x{:08x}, computed 0x{:08x}",
//!         u32::from_le_bytes(disk[528..532].try_into().unwrap()),
//!         cvmkit_gpt::crc32(&{ let mut h = disk[512..604].to_vec(); h[16..20].fill(0); h })),
//! );
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod error;
mod guid;
mod read;
mod structs;
mod write;

pub use error::{ReadError, WriteError};
pub use guid::{seeded_guid, Guid, ParseGuidError, CVMKIT_NAMESPACE, ESP, LINUX_DATA, LINUX_ROOT_X86_64};
pub use read::{check_protective_mbr, read_header, GptDisk, Partition};
pub use structs::{
    crc32, encode_name, GptHeader, PartitionEntry, ENTRY_ARRAY_SECTORS, GPT_HEADER_SIZE,
    GPT_REVISION, GPT_SIGNATURE, MAX_ENTRY_ARRAY_BYTES, MBR_PROTECTIVE_TYPE, MBR_SIGNATURE,
    PARTITION_ENTRY_COUNT, PARTITION_ENTRY_SIZE, SECTOR_SIZE,
};
pub use write::{Gpt, GptBuilder, ALIGNMENT, FIRST_USABLE_LBA, MIN_DISK_SIZE};
