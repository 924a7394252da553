//! FAT for EFI System Partitions: a deterministic FAT32 writer and a FAT12/16/32 reader for
//! untrusted images, after Microsoft's FAT specification 1.03 (the one UEFI 2.10 §13.3 adopts).
//!
//! **Writer.** [`FatBuilder`] collects directories and files *by size*; [`FatBuilder::layout`]
//! then reserves everything before writing anything: the [`Geometry`] (cluster size by volume
//! size, at least 65,541 clusters so the volume is FAT32 to every reader, data region aligned
//! to 4 KiB), one contiguous cluster run per directory and per file (root first, directories
//! breadth first, then files, each file 4 KiB-aligned), two FATs, directory entries with VFAT
//! long names and generated 8.3 short names, the boot sector with its backup at sector 6, and
//! FSInfo with exact free counts. Timestamps are a fixed DOS time from `SOURCE_DATE_EPOCH`
//! (clamped to 1980), the volume serial is given by the caller: the same tree and options give
//! the same bytes. The [`FatLayout`] is a sorted list of [`Extent`]s, metadata bytes or "file N
//! here"; file contents are streamed from readers only when written, so a 60 MB UKI is copied
//! once, straight into the output ([`FatLayout::write_to`]), or placed by a caller (such as
//! `cvmkit-disk`) into a sparse disk image.
//!
//! **Reader.** [`FatVolume::parse`] checks the BPB of a volume held in memory; directories
//! ([`FatVolume::root`], [`FatVolume::read_dir`], [`FatVolume::walk`], [`FatVolume::lookup`])
//! and file contents ([`FatVolume::file_data`], borrowed runs of clusters) are read lazily. Every
//! access is bounds checked and chains and directory trees are bounded, so corrupt input gives a
//! [`ReadError`], never a panic or an endless loop (`fuzz/` exercises this).
//!
//! ```
//! use cvmkit_fat::{FatBuilder, FatOptions, FatVolume, FileId};
//!
//! let uki = b"MZ... a UKI ...".to_vec();
//! let mut tree = FatBuilder::new();
//! let id = tree.add_file("EFI/BOOT/BOOTX64.EFI", uki.len() as u64)?;
//! tree.add_file("loader/entries/Linux 6.1 (cvmkit).conf", 5)?;
//! let mut options = FatOptions::new(40 << 20, 0x1234_5678, 1_700_000_000);
//! options.volume_label = "ESP".into();
//! let layout = tree.layout(&options)?;
//! assert_eq!(layout.geometry().cluster_size(), 512);
//!
//! let mut image = Vec::new();
//! layout.write_to(&mut image, |f: FileId| {
//!     Ok(if f == id { &uki[..] } else { &b"title"[..] })
//! })?;
//! assert_eq!(image.len(), 40 << 20);
//!
//! let vol = FatVolume::parse(&image)?;
//! assert_eq!(vol.volume_label().as_deref(), Some("ESP"));
//! let paths: Vec<String> = vol.walk()?.into_iter().map(|e| e.path).collect();
//! assert_eq!(paths, ["EFI", "EFI/BOOT", "EFI/BOOT/BOOTX64.EFI", "loader", "loader/entries",
//!                    "loader/entries/Linux 6.1 (cvmkit).conf"]);
//! let entry = vol.lookup(r"\efi\boot\bootx64.efi")?;
//! assert_eq!(vol.read_file(&entry)?, uki);
//! assert_eq!(entry.modified.ymd_hms(), (2023, 11, 14, 22, 13, 20));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod error;
mod name;
mod read;
mod structs;
mod time;
mod write;

pub use error::{ReadError, WriteError};
pub use name::{lfn_checksum, LFN_CHARS_PER_ENTRY, MAX_LONG_NAME};
pub use read::{Chain, DirEntry, DirIter, FatVolume, FileData, WalkEntry, MAX_DEPTH};
pub use structs::{
    Bpb, FatType, ATTR_ARCHIVE, ATTR_DIRECTORY, ATTR_HIDDEN, ATTR_LONG_NAME, ATTR_READ_ONLY,
    ATTR_SYSTEM, ATTR_VOLUME_ID, FAT32_MAX_CLUSTERS, FAT32_MIN_CLUSTERS,
};
pub use time::{DosDateTime, DOS_EPOCH, DOS_MAX};
pub use write::{Content, Extent, FatBuilder, FatLayout, FatOptions, FileId, Geometry};
