//! Constants and the BIOS Parameter Block, with the field names of Microsoft's FAT
//! specification ("Microsoft Extensible Firmware Initiative FAT32 File System Specification",
//! version 1.03, as adopted by UEFI 2.10 §13.3).

use crate::ReadError;

/// Bytes per sector written (and the only size the writer supports).
pub(crate) const SECTOR: u64 = 512;
/// `BPB_NumFATs` written.
pub(crate) const NUM_FATS: u64 = 2;
/// `BPB_Media` written: fixed disk.
pub(crate) const MEDIA: u8 = 0xF8;
/// `BPB_RootClus` written.
pub(crate) const ROOT_CLUSTER: u32 = 2;
/// `BPB_FSInfo` written.
pub(crate) const FSINFO_SECTOR: u64 = 1;
/// `BPB_BkBootSec` written.
pub(crate) const BACKUP_BOOT_SECTOR: u64 = 6;
/// End-of-chain mark written in FAT32 entries.
pub(crate) const FAT32_EOC: u32 = 0x0FFF_FFFF;
/// Largest volume the writer makes: 2^32 − 1 sectors of 512 bytes.
pub(crate) const MAX_VOLUME: u64 = u32::MAX as u64 * SECTOR;
/// Directory entries per directory at most (2 MiB of entries).
pub(crate) const MAX_DIR_ENTRIES: u64 = 65536;
/// Size of a directory entry.
pub(crate) const DIR_ENTRY_SIZE: u64 = 32;
/// `55 AA` at offset 510 of the boot sector.
pub(crate) const BOOT_SIGNATURE: [u8; 2] = [0x55, 0xAA];
/// `FSI_LeadSig`, "RRaA".
pub(crate) const FSI_LEAD_SIG: u32 = 0x4161_5252;
/// `FSI_StrucSig`, "rrAa".
pub(crate) const FSI_STRUC_SIG: u32 = 0x6141_7272;
/// `FSI_TrailSig`.
pub(crate) const FSI_TRAIL_SIG: u32 = 0xAA55_0000;

/// Fewest clusters the writer accepts: FAT32 starts at 65,525 clusters (below that a volume
/// is FAT16 whatever its BPB says); 16 more keep clear of tools that count slightly differently,
/// as the spec advises.
pub const FAT32_MIN_CLUSTERS: u32 = 65_525 + 16;
/// Most clusters a FAT32 volume can have.
pub const FAT32_MAX_CLUSTERS: u32 = 0x0FFF_FFF5;

/// `DIR_Attr` bits.
pub const ATTR_READ_ONLY: u8 = 0x01;
/// Hidden.
pub const ATTR_HIDDEN: u8 = 0x02;
/// System.
pub const ATTR_SYSTEM: u8 = 0x04;
/// The volume label entry of the root directory.
pub const ATTR_VOLUME_ID: u8 = 0x08;
/// Directory.
pub const ATTR_DIRECTORY: u8 = 0x10;
/// Archive (set on files written).
pub const ATTR_ARCHIVE: u8 = 0x20;
/// The attribute value of a long-name entry.
pub const ATTR_LONG_NAME: u8 = 0x0F;

/// FAT type, determined (as the spec demands) by the count of clusters alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FatType {
    /// Fewer than 4085 clusters; 12-bit entries.
    Fat12,
    /// Fewer than 65525 clusters; 16-bit entries.
    Fat16,
    /// 65525 clusters or more; 28-bit entries in 32 bits.
    Fat32,
}

/// The BIOS Parameter Block and the extended boot record fields of a boot sector
/// (`BPB_*`, `BS_*`; the FAT32-only fields are 0 on FAT12/16).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bpb {
    /// `BS_OEMName`.
    pub bs_oem_name: [u8; 8],
    /// `BPB_BytsPerSec`.
    pub byts_per_sec: u16,
    /// `BPB_SecPerClus`.
    pub sec_per_clus: u8,
    /// `BPB_RsvdSecCnt`.
    pub rsvd_sec_cnt: u16,
    /// `BPB_NumFATs`.
    pub num_fats: u8,
    /// `BPB_RootEntCnt` (0 on FAT32).
    pub root_ent_cnt: u16,
    /// `BPB_TotSec16`.
    pub tot_sec16: u16,
    /// `BPB_Media`.
    pub media: u8,
    /// `BPB_FATSz16`.
    pub fat_sz16: u16,
    /// `BPB_SecPerTrk`.
    pub sec_per_trk: u16,
    /// `BPB_NumHeads`.
    pub num_heads: u16,
    /// `BPB_HiddSec`.
    pub hidd_sec: u32,
    /// `BPB_TotSec32`.
    pub tot_sec32: u32,
    /// `BPB_FATSz32` (FAT32).
    pub fat_sz32: u32,
    /// `BPB_ExtFlags` (FAT32): bit 7 set means only FAT number `bits 0–3` is active.
    pub ext_flags: u16,
    /// `BPB_FSVer` (FAT32).
    pub fs_ver: u16,
    /// `BPB_RootClus` (FAT32).
    pub root_clus: u32,
    /// `BPB_FSInfo` (FAT32).
    pub fs_info: u16,
    /// `BPB_BkBootSec` (FAT32).
    pub bk_boot_sec: u16,
    /// `BS_DrvNum`.
    pub bs_drv_num: u8,
    /// `BS_BootSig`: 0x29 when the next three fields are valid.
    pub bs_boot_sig: u8,
    /// `BS_VolID`.
    pub bs_vol_id: u32,
    /// `BS_VolLab`.
    pub bs_vol_lab: [u8; 11],
    /// `BS_FilSysType` (informational only).
    pub bs_fil_sys_type: [u8; 8],
}

fn le16(s: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([s[at], s[at + 1]])
}

fn le32(s: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([s[at], s[at + 1], s[at + 2], s[at + 3]])
}

impl Bpb {
    /// Decodes the BPB from a boot sector (at least 512 bytes; shorter input is an error).
    /// Which layout (FAT12/16 or FAT32) applies is decided by `BPB_FATSz16 == 0`, as the spec's
    /// type determination needs `BPB_FATSz32` only then.
    pub fn parse(sector: &[u8]) -> Result<Bpb, ReadError> {
        let s = sector.get(..512).ok_or(ReadError::Truncated {
            what: "boot sector",
            offset: 0,
            len: sector.len() as u64,
        })?;
        let fat32 = le16(s, 22) == 0;
        let ext = if fat32 { 64 } else { 36 }; // where BS_DrvNum starts
        let mut oem = [0u8; 8];
        oem.copy_from_slice(&s[3..11]);
        let mut lab = [0u8; 11];
        lab.copy_from_slice(&s[ext + 7..ext + 18]);
        let mut fst = [0u8; 8];
        fst.copy_from_slice(&s[ext + 18..ext + 26]);
        Ok(Bpb {
            bs_oem_name: oem,
            byts_per_sec: le16(s, 11),
            sec_per_clus: s[13],
            rsvd_sec_cnt: le16(s, 14),
            num_fats: s[16],
            root_ent_cnt: le16(s, 17),
            tot_sec16: le16(s, 19),
            media: s[21],
            fat_sz16: le16(s, 22),
            sec_per_trk: le16(s, 24),
            num_heads: le16(s, 26),
            hidd_sec: le32(s, 28),
            tot_sec32: le32(s, 32),
            fat_sz32: if fat32 { le32(s, 36) } else { 0 },
            ext_flags: if fat32 { le16(s, 40) } else { 0 },
            fs_ver: if fat32 { le16(s, 42) } else { 0 },
            root_clus: if fat32 { le32(s, 44) } else { 0 },
            fs_info: if fat32 { le16(s, 48) } else { 0 },
            bk_boot_sec: if fat32 { le16(s, 50) } else { 0 },
            bs_drv_num: s[ext],
            bs_boot_sig: s[ext + 2],
            bs_vol_id: le32(s, ext + 3),
            bs_vol_lab: lab,
            bs_fil_sys_type: fst,
        })
    }
}
