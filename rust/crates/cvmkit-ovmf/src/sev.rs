//! AMD SEV metadata (edk2 `OvmfPkg/ResetVector/X64/OvmfSevMetadata.asm`).
//!
//! The footer entry [`SEV_METADATA_GUID`](crate::SEV_METADATA_GUID) holds a u32 offset from the end
//! of the firmware to this descriptor:
//!
//! ```text
//! OVMF_SEV_METADATA      { Signature "ASEV", u32 Length, u32 Version (1), u32 NumberOfItems }
//! OVMF_SEV_METADATA_DESC { u32 Base (GPA), u32 Size, u32 Type } × NumberOfItems
//! ```

use std::fmt;

/// `"ASEV"`, the SEV metadata signature.
pub const SEV_METADATA_SIGNATURE: [u8; 4] = *b"ASEV";
/// Size of the descriptor header.
pub const SEV_METADATA_HEADER_SIZE: usize = 16;
/// Size of one section descriptor.
pub const SEV_METADATA_SECTION_SIZE: usize = 12;

/// `OVMF_SECTION_TYPE_*`: how the VMM populates (and SNP measures) a metadata section.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SevSectionType {
    /// `OVMF_SECTION_TYPE_SNP_SEC_MEM` = 1: memory the SEC phase uses, pre-validated.
    SnpSecMem,
    /// `OVMF_SECTION_TYPE_SNP_SECRETS` = 2: the SNP secrets page.
    SnpSecrets,
    /// `OVMF_SECTION_TYPE_CPUID` = 3: the SNP CPUID page.
    Cpuid,
    /// `OVMF_SECTION_TYPE_SVSM_CAA` = 4: the SVSM calling area.
    SvsmCaa,
    /// `OVMF_SECTION_TYPE_KERNEL_HASHES` = 0x10: the page QEMU fills with kernel/initrd/cmdline hashes.
    SnpKernelHashes,
    /// Any other value.
    Unknown(u32),
}

impl SevSectionType {
    /// The type from its u32 encoding.
    pub const fn from_raw(raw: u32) -> SevSectionType {
        match raw {
            1 => SevSectionType::SnpSecMem,
            2 => SevSectionType::SnpSecrets,
            3 => SevSectionType::Cpuid,
            4 => SevSectionType::SvsmCaa,
            0x10 => SevSectionType::SnpKernelHashes,
            other => SevSectionType::Unknown(other),
        }
    }

    /// The u32 encoding.
    pub const fn raw(self) -> u32 {
        match self {
            SevSectionType::SnpSecMem => 1,
            SevSectionType::SnpSecrets => 2,
            SevSectionType::Cpuid => 3,
            SevSectionType::SvsmCaa => 4,
            SevSectionType::SnpKernelHashes => 0x10,
            SevSectionType::Unknown(raw) => raw,
        }
    }
}

impl fmt::Display for SevSectionType {
    /// The names sev-snp-measure uses (`SNP_SEC_MEM`, …).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SevSectionType::SnpSecMem => f.write_str("SNP_SEC_MEM"),
            SevSectionType::SnpSecrets => f.write_str("SNP_SECRETS"),
            SevSectionType::Cpuid => f.write_str("CPUID"),
            SevSectionType::SvsmCaa => f.write_str("SVSM_CAA"),
            SevSectionType::SnpKernelHashes => f.write_str("SNP_KERNEL_HASHES"),
            SevSectionType::Unknown(raw) => write!(f, "unknown type {raw:#x}"),
        }
    }
}

/// One `OVMF_SEV_METADATA_DESC`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SevMetadataSection {
    /// `Base`: guest physical address.
    pub gpa: u32,
    /// `Size` in bytes.
    pub size: u32,
    /// `Type`.
    pub section_type: SevSectionType,
}

/// The `"ASEV"` descriptor and its sections, in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SevMetadata {
    /// File offset of the descriptor.
    pub offset: usize,
    /// `Length` of the descriptor in bytes (header + sections).
    pub length: u32,
    /// `Version` (always 1).
    pub version: u32,
    /// The sections, in file order (the order SNP measures them).
    pub sections: Vec<SevMetadataSection>,
}

impl SevMetadata {
    /// Whether a section of `section_type` is present.
    pub fn has_section(&self, section_type: SevSectionType) -> bool {
        self.sections.iter().any(|s| s.section_type == section_type)
    }
}

/// A footer entry of the form `{u32 gpa, u32 size}` (SEV hash table, SEV secret block).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GpaRange {
    /// Guest physical address (0 when the build does not provide the area).
    pub gpa: u32,
    /// Size in bytes.
    pub size: u32,
}
