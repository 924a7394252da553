//! Assembles a bootable GPT disk for a confidential VM without root, loop devices or `mkfs`:
//! a FAT32 EFI System Partition holding a Unified Kernel Image at `\EFI\BOOT\BOOTX64.EFI` (the
//! path firmware boots with no boot entry), optional root partitions copied from filesystem
//! images, and an optional empty data partition; written as raw, GCP `tar.gz`, Azure VHD or
//! qcow2.
//!
//! **Layout** ([`DiskLayout::plan`]): 1 MiB alignment throughout. The ESP starts at 1 MiB
//! (`max(64 MiB, 2 × UKI + 16 MiB)` unless given), then each root image in a partition of type
//! `root-x86-64` (UAPI Discoverable Partitions: `4F68BCE3-…`) rounded up to 1 MiB, then the data
//! partition (`0FC63DAF-…`), then 1 MiB holding the backup GPT. Partitions are named `ESP`,
//! `root-x86-64` (`root-x86-64-2`, …) and `data`.
//!
//! **Determinism.** Output bytes depend only on the inputs' bytes, the [`DiskSpec`] and the
//! format. The disk GUID, each partition GUID (RFC 9562 version 8 SHA-256 name-based UUIDs of
//! `"gpt-disk"`, `"gpt-partition-N"`), the FAT serial ([`fat_volume_id`]) and the VHD unique
//! id derive from [`DiskSpec::seed`]; FAT times, the tar mtime and the VHD time stamp from
//! [`DiskSpec::timestamp`] (`SOURCE_DATE_EPOCH`). The library reads neither clock nor
//! environment.
//!
//! **Streaming.** Metadata (GPT, boot sectors, FATs, directories) is built in memory, a few MiB
//! at most; inputs are read in 1 MiB chunks straight into the output, once for raw and VHD,
//! twice for GCP and qcow2 (once to find the non-zero 4 KiB blocks for the sparse map, once to
//! write them). Zero blocks are never written: raw and VHD seek over them (a 2 GiB disk with a
//! 10 MB UKI takes ~10 MB of disk space), the GCP member lists only data in its sparse map,
//! qcow2 allocates only clusters with data.
//!
//! **Formats** ([`Format`]):
//! - `raw`: the disk, sparse.
//! - `gcp`: gzip (no name, mtime 0) of a tar with one old-GNU sparse member `disk.raw` (type `S`,
//!   mode 0644, owner 0/0 `root`/`root`, mtime = timestamp); disk size rounded up to a GiB.
//! - `vhd`: fixed VHD, the raw disk (1 MiB-aligned size) and a 512-byte footer: features 2,
//!   version 1.0, data offset `0xFFFFFFFFFFFFFFFF`, time stamp from the timestamp, creator
//!   `qem2` 5.3 `Wi2k` (so QEMU reports the exact size), CHS by the spec's algorithm, type 2,
//!   checksum, unique id from the seed.
//! - `qcow2`: version 3, 64 KiB clusters, 16-bit refcounts, one L1 table, written directly.
//!
//! ```
//! use cvmkit_disk::{write_disk, DiskSpec, Format};
//! use cvmkit_fat::FatVolume;
//! use cvmkit_gpt::{GptDisk, ESP};
//!
//! let dir = tempfile::tempdir()?;
//! let uki = dir.path().join("uki.efi");
//! std::fs::write(&uki, b"MZ not really a UKI")?;
//! let spec = DiskSpec { data_size: Some(8 << 20), ..DiskSpec::new(&uki, "example", 1_700_000_000) };
//!
//! let mut disk = std::io::Cursor::new(Vec::new());
//! let report = write_disk(&spec, Format::Raw, &mut disk)?;
//! assert_eq!(report.disk_size, (1 + 64 + 8 + 1) << 20);
//!
//! // Read it back with the GPT and FAT readers.
//! let disk = disk.into_inner();
//! let gpt = GptDisk::read(&disk)?;
//! let esp = gpt.partitions().find(|p| p.entry.partition_type_guid == ESP).unwrap();
//! let fat = FatVolume::parse(gpt.partition_data(&esp.entry).unwrap())?;
//! let file = fat.lookup(r"\EFI\BOOT\BOOTX64.EFI")?;
//! assert_eq!(fat.read_file(&file)?, b"MZ not really a UKI");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod content;
mod error;
mod gcp;
mod layout;
mod qcow2;
mod vhd;
mod write;

pub use content::OpenUki;
pub use error::Error;
pub use gcp::{GCP_GZIP_LEVEL, GCP_MEMBER_NAME};
pub use layout::{
    fat_volume_id, DiskLayout, DiskReport, DiskSpec, EspReport, Format, ParseFormatError,
    PartitionReport, ESP_LABEL, MAX_DISK_SIZE, MAX_VHD_SIZE, MIN_DEFAULT_ESP_SIZE, UKI_PATH,
};
pub use qcow2::{QCOW2_CLUSTER_BITS, QCOW2_HEADER_LENGTH, QCOW2_MAGIC, QCOW2_REFCOUNT_ORDER};
pub use vhd::{
    chs_geometry, vhd_checksum, vhd_footer, VHD_COOKIE, VHD_CREATOR_APP, VHD_CREATOR_HOST_OS,
    VHD_CREATOR_VERSION, VHD_DISK_TYPE_FIXED, VHD_EPOCH, VHD_FEATURES, VHD_FIXED_DATA_OFFSET,
    VHD_FOOTER_SIZE, VHD_VERSION,
};
pub use write::{write_disk, write_disk_file};
