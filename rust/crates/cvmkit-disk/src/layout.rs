//! Planning a disk: sizes, the partition table, the ESP's FAT32 layout, and the sorted list of
//! extents that hold anything but zeros. Nothing is written here.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use cvmkit_fat::{Content, FatBuilder, FatOptions};
use cvmkit_gpt::{
    Gpt, GptBuilder, Guid, ALIGNMENT, ESP, LINUX_DATA, LINUX_ROOT_X86_64, SECTOR_SIZE,
};

use crate::Error;

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

/// Largest disk cvmkit writes: 64 TiB.
pub const MAX_DISK_SIZE: u64 = 64 << 40;
/// Largest fixed VHD: 2040 GiB (the VHD format's limit, as QEMU and Azure enforce).
pub const MAX_VHD_SIZE: u64 = 2040 * GIB;
/// Smallest ESP cvmkit picks by itself: 64 MiB.
pub const MIN_DEFAULT_ESP_SIZE: u64 = 64 * MIB;
/// Where the UKI goes in the ESP: the removable-media boot path firmware looks for without
/// any boot entry (UEFI 2.10 §3.5.1.1).
pub const UKI_PATH: &str = "EFI/BOOT/BOOTX64.EFI";
/// Label of the ESP's FAT volume.
pub const ESP_LABEL: &str = "ESP";

/// What goes on the disk.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DiskSpec {
    /// The Unified Kernel Image, stored as `\EFI\BOOT\BOOTX64.EFI` on the ESP.
    pub uki: PathBuf,
    /// Filesystem images, each copied into a root partition (UAPI Discoverable Partitions type
    /// `root-x86-64`), in this order, sized to the image rounded up to 1 MiB.
    pub roots: Vec<PathBuf>,
    /// Size of an empty Linux data partition after the roots (rounded up to 1 MiB); `None` for
    /// none.
    pub data_size: Option<u64>,
    /// Any non-empty text; every GUID, the FAT serial and the VHD unique id derive from it.
    pub seed: String,
    /// `SOURCE_DATE_EPOCH`: FAT timestamps, the tar member's mtime, the VHD timestamp.
    pub timestamp: u64,
    /// ESP size (rounded up to 1 MiB); `None` picks `max(64 MiB, 2 × UKI + 16 MiB)`, room for a
    /// second UKI of the same size during an update.
    pub esp_size: Option<u64>,
    /// Total disk size (rounded up to 1 MiB, or 1 GiB for [`Format::Gcp`]); `None` for just
    /// enough: the partitions plus 1 MiB at each end. Space after the last partition is left
    /// unpartitioned.
    pub disk_size: Option<u64>,
    /// The UKI's length, for a disk planned while the UKI is still being written (see
    /// [`DiskLayout::write_with_uki`]); `None`: the length of the file at `uki`.
    pub uki_len: Option<u64>,
}

impl DiskSpec {
    /// A spec with just the UKI, the seed and the timestamp.
    pub fn new(uki: impl Into<PathBuf>, seed: impl Into<String>, timestamp: u64) -> DiskSpec {
        DiskSpec {
            uki: uki.into(),
            seed: seed.into(),
            timestamp,
            ..DiskSpec::default()
        }
    }
}

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// The disk image as is, written sparsely (zero ranges are seeked over).
    Raw,
    /// Google Compute Engine image import: a `.tar.gz` holding `disk.raw` as a GNU sparse member;
    /// the disk size is rounded up to a whole GiB (GCE disks are sized in GB).
    Gcp,
    /// Azure: a fixed VHD, the raw disk followed by a 512-byte "conectix" footer.
    Vhd,
    /// A qcow2 (version 3) image with only the non-zero clusters allocated.
    Qcow2,
}

impl Format {
    /// All formats.
    pub const ALL: [Format; 4] = [Format::Raw, Format::Gcp, Format::Vhd, Format::Qcow2];

    /// The usual file extension: `raw`, `tar.gz`, `vhd`, `qcow2`.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Raw => "raw",
            Format::Gcp => "tar.gz",
            Format::Vhd => "vhd",
            Format::Qcow2 => "qcow2",
        }
    }

    /// The name used on the command line: `raw`, `gcp`, `vhd`, `qcow2`.
    pub fn name(self) -> &'static str {
        match self {
            Format::Raw => "raw",
            Format::Gcp => "gcp",
            Format::Vhd => "vhd",
            Format::Qcow2 => "qcow2",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A format name that is none of `raw`, `gcp`, `vhd`, `qcow2`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown disk format {0:?}: use raw, gcp, vhd or qcow2")]
pub struct ParseFormatError(pub String);

impl FromStr for Format {
    type Err = ParseFormatError;

    fn from_str(s: &str) -> Result<Format, ParseFormatError> {
        Format::ALL
            .into_iter()
            .find(|f| f.name() == s)
            .ok_or_else(|| ParseFormatError(s.to_string()))
    }
}

/// One partition of the planned disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionReport {
    /// 1-based entry number (`/dev/vda<number>`).
    pub number: u32,
    /// GPT partition name: `ESP`, `root-x86-64` (`root-x86-64-2`, …), `data`.
    pub name: String,
    /// Partition type GUID.
    pub type_guid: Guid,
    /// Unique partition GUID (from the seed).
    pub unique_guid: Guid,
    /// Byte offset in the disk.
    pub offset: u64,
    /// Size in bytes.
    pub size: u64,
    /// The image copied into it (the UKI for the ESP), if any.
    pub source: Option<PathBuf>,
}

/// The ESP of the planned disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EspReport {
    /// Size in bytes.
    pub size: u64,
    /// FAT32 cluster size.
    pub cluster_size: u32,
    /// FAT volume serial (`BS_VolID`), from the seed.
    pub volume_id: u32,
    /// Size of the UKI.
    pub uki_size: u64,
    /// Byte offset of the UKI's contents in the disk.
    pub uki_offset: u64,
}

/// What was built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskReport {
    /// Output format.
    pub format: Format,
    /// Size of the disk (the virtual size).
    pub disk_size: u64,
    /// Bytes of the output: the file length for raw, VHD and qcow2, the compressed size for GCP.
    pub output_size: u64,
    /// Non-zero bytes of the disk stored in the output (zeros are skipped in 4 KiB blocks; qcow2
    /// stores whole 64 KiB clusters).
    pub data_bytes: u64,
    /// `DiskGUID`.
    pub disk_guid: Guid,
    /// The partitions, in table order.
    pub partitions: Vec<PartitionReport>,
    /// The ESP.
    pub esp: EspReport,
}

/// Where a range of the disk comes from.
#[derive(Debug, Clone)]
pub(crate) enum Source {
    /// Metadata built in memory.
    Mem(Vec<u8>),
    /// The whole of input file `n`.
    Input(usize),
}

/// A range of the disk that holds anything but zeros.
#[derive(Debug, Clone)]
pub(crate) struct Extent {
    pub offset: u64,
    pub len: u64,
    pub source: Source,
}

/// An input file and its size when planned.
#[derive(Debug, Clone)]
pub(crate) struct Input {
    pub path: PathBuf,
    pub len: u64,
}

/// A planned disk: every partition placed and every metadata byte built; input files are
/// read only when written ([`DiskLayout::write`]).
#[derive(Debug, Clone)]
pub struct DiskLayout {
    pub(crate) format: Format,
    pub(crate) gpt: Gpt,
    pub(crate) extents: Vec<Extent>,
    pub(crate) inputs: Vec<Input>,
    pub(crate) partitions: Vec<PartitionReport>,
    pub(crate) esp: EspReport,
    pub(crate) seed: String,
    pub(crate) timestamp: u64,
}

fn input_len(what: &'static str, path: &Path) -> Result<u64, Error> {
    let meta = std::fs::metadata(path).map_err(|source| Error::Unreadable {
        what,
        path: path.to_path_buf(),
        source,
    })?;
    if !meta.is_file() {
        return Err(Error::NotAFile {
            what,
            path: path.to_path_buf(),
        });
    }
    if meta.len() == 0 {
        return Err(Error::EmptyInput {
            what,
            path: path.to_path_buf(),
        });
    }
    Ok(meta.len())
}

fn check_size(what: &'static str, size: u64, max: u64, limit: &'static str) -> Result<u64, Error> {
    if size == 0 {
        return Err(Error::ZeroSize { what });
    }
    if size > max {
        return Err(Error::TooLarge {
            what,
            size,
            max,
            limit,
        });
    }
    Ok(size.div_ceil(MIB) * MIB)
}

/// The FAT volume serial cvmkit derives from a seed: the first four bytes (big-endian) of
/// `cvmkit_gpt::seeded_guid(seed, "fat-volume-id")`.
pub fn fat_volume_id(seed: &str) -> u32 {
    let b = cvmkit_gpt::seeded_guid(seed, "fat-volume-id").to_bytes_be();
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

impl DiskLayout {
    /// Checks the spec and its input files and lays the disk out for `format`.
    pub fn plan(spec: &DiskSpec, format: Format) -> Result<DiskLayout, Error> {
        if spec.seed.is_empty() {
            return Err(Error::EmptySeed);
        }
        let max_disk = if format == Format::Vhd {
            MAX_VHD_SIZE
        } else {
            MAX_DISK_SIZE
        };
        let limit = if format == Format::Vhd {
            "a VHD can hold"
        } else {
            "cvmkit supports"
        };
        let uki_len = match spec.uki_len {
            Some(0) => return Err(Error::EmptyInput { what: "UKI", path: spec.uki.clone() }),
            Some(len) => len,
            None => input_len("UKI", &spec.uki)?,
        };
        if uki_len > u64::from(u32::MAX) {
            return Err(Error::UkiTooLargeForFat {
                path: spec.uki.clone(),
                size: uki_len,
            });
        }
        let mut inputs = vec![Input {
            path: spec.uki.clone(),
            len: uki_len,
        }];
        for root in &spec.roots {
            let len = input_len("root image", root)?;
            check_size("root image", len, max_disk, limit)?;
            inputs.push(Input {
                path: root.clone(),
                len,
            });
        }
        let data_size = spec
            .data_size
            .map(|s| check_size("data partition size", s, max_disk, limit))
            .transpose()?;

        // The ESP: FAT32 with the UKI at \EFI\BOOT\BOOTX64.EFI.
        let mut tree = FatBuilder::new();
        let uki_id = tree.add_file(UKI_PATH, uki_len)?;
        let esp_start = ALIGNMENT;
        let fat_options = |size: u64| FatOptions {
            volume_size: size,
            volume_id: fat_volume_id(&spec.seed),
            volume_label: ESP_LABEL.to_string(),
            timestamp: spec.timestamp,
            hidden_sectors: (esp_start / SECTOR_SIZE) as u32,
            cluster_size: None,
        };
        let esp_size = match spec.esp_size {
            Some(s) => check_size("ESP size", s, max_disk, limit)?,
            None => MIN_DEFAULT_ESP_SIZE.max((2 * uki_len + 16 * MIB).div_ceil(MIB) * MIB),
        };
        let fat = match tree.layout(&fat_options(esp_size)) {
            Ok(l) => l,
            Err(cvmkit_fat::WriteError::TooSmall { .. }) => {
                let min = cvmkit_fat::Geometry::min_size(512).div_ceil(MIB) * MIB;
                let needed = tree.min_volume_size(&fat_options(0), MIB)?;
                return Err(if needed > min {
                    Error::UkiDoesNotFit {
                        path: spec.uki.clone(),
                        size: uki_len,
                        esp_size,
                        needed,
                    }
                } else {
                    Error::EspTooSmall {
                        size: esp_size,
                        min,
                    }
                });
            }
            Err(cvmkit_fat::WriteError::NoSpace { .. }) => {
                let needed = tree.min_volume_size(&fat_options(0), MIB)?;
                return Err(Error::UkiDoesNotFit {
                    path: spec.uki.clone(),
                    size: uki_len,
                    esp_size,
                    needed,
                });
            }
            Err(e) => return Err(e.into()),
        };

        // Sizes, then the partition table.
        let root_sizes: Vec<u64> = inputs[1..]
            .iter()
            .map(|i| i.len.div_ceil(MIB) * MIB)
            .collect();
        let needed = [esp_start, esp_size, data_size.unwrap_or(0), ALIGNMENT]
            .into_iter()
            .chain(root_sizes.iter().copied())
            .fold(0u64, u64::saturating_add);
        if needed > max_disk {
            return Err(Error::TooLarge {
                what: "disk the partitions need",
                size: needed,
                max: max_disk,
                limit,
            });
        }
        let mut disk_size = match spec.disk_size {
            Some(s) => {
                let s = check_size("disk size", s, max_disk, limit)?;
                if s < needed {
                    return Err(Error::DiskTooSmall { size: s, needed });
                }
                s
            }
            None => needed,
        };
        if format == Format::Gcp {
            disk_size = disk_size.div_ceil(GIB) * GIB;
        }
        if disk_size > max_disk {
            return Err(Error::TooLarge {
                what: "disk size",
                size: disk_size,
                max: max_disk,
                limit,
            });
        }

        let seed = &spec.seed;
        let mut gpt = GptBuilder::new(cvmkit_gpt::seeded_guid(seed, "gpt-disk"), disk_size)?;
        let mut sizes = vec![("ESP".to_string(), ESP, esp_size, Some(spec.uki.clone()))];
        for (i, (root, size)) in spec.roots.iter().zip(&root_sizes).enumerate() {
            let name = if i == 0 {
                "root-x86-64".to_string()
            } else {
                format!("root-x86-64-{}", i + 1)
            };
            sizes.push((name, LINUX_ROOT_X86_64, *size, Some(root.clone())));
        }
        if let Some(size) = data_size {
            sizes.push(("data".to_string(), LINUX_DATA, size, None));
        }
        let mut partitions = Vec::new();
        for (i, (name, type_guid, size, source)) in sizes.into_iter().enumerate() {
            let number = i as u32 + 1;
            let unique = cvmkit_gpt::seeded_guid(seed, &format!("gpt-partition-{number}"));
            let e = gpt.append(type_guid, unique, &name, size, 0)?;
            partitions.push(PartitionReport {
                number,
                name,
                type_guid,
                unique_guid: unique,
                offset: e.offset(),
                size: e.size(),
                source,
            });
        }
        let gpt = gpt.finish();

        // Extents, in disk order: primary GPT, the ESP's metadata and UKI, the roots, the backup GPT.
        let mut extents = vec![Extent {
            offset: 0,
            len: 0,
            source: Source::Mem(gpt.primary_bytes()),
        }];
        for e in fat.extents() {
            let offset = esp_start + e.offset;
            let source = match &e.content {
                Content::Bytes(b) => Source::Mem(b.clone()),
                Content::File(id) if *id == uki_id => Source::Input(0),
                Content::File(_) => unreachable!("the ESP holds only the UKI"),
            };
            extents.push(Extent {
                offset,
                len: e.len,
                source,
            });
        }
        for (i, p) in partitions.iter().skip(1).take(spec.roots.len()).enumerate() {
            extents.push(Extent {
                offset: p.offset,
                len: inputs[i + 1].len,
                source: Source::Input(i + 1),
            });
        }
        extents.push(Extent {
            offset: gpt.backup_offset(),
            len: 0,
            source: Source::Mem(gpt.backup_bytes()),
        });
        for e in &mut extents {
            if let Source::Mem(b) = &e.source {
                e.len = b.len() as u64;
            }
        }
        extents.sort_by_key(|e| e.offset);
        debug_assert!(extents
            .windows(2)
            .all(|w| w[0].offset + w[0].len <= w[1].offset));

        let esp = EspReport {
            size: esp_size,
            cluster_size: fat.geometry().cluster_size(),
            volume_id: fat_volume_id(seed),
            uki_size: uki_len,
            uki_offset: esp_start + fat.file_offset(uki_id).unwrap_or(0),
        };
        Ok(DiskLayout {
            format,
            gpt,
            extents,
            inputs,
            partitions,
            esp,
            seed: spec.seed.clone(),
            timestamp: spec.timestamp,
        })
    }

    /// Size of the disk in bytes.
    pub fn disk_size(&self) -> u64 {
        self.gpt.disk_size()
    }

    /// The partition table.
    pub fn gpt(&self) -> &Gpt {
        &self.gpt
    }

    /// The report of the plan (`output_size` and `data_bytes` are 0 until written).
    pub fn report(&self) -> DiskReport {
        DiskReport {
            format: self.format,
            disk_size: self.disk_size(),
            output_size: 0,
            data_bytes: 0,
            disk_guid: self.gpt.disk_guid,
            partitions: self.partitions.clone(),
            esp: self.esp.clone(),
        }
    }
}
