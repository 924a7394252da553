//! Intel TDX firmware (TDVF) metadata, from the TDVF Design Guide §11 ("TDVF Metadata").
//!
//! The footer entry [`TDX_METADATA_OFFSET_GUID`](crate::TDX_METADATA_OFFSET_GUID) holds a u32 offset
//! from the end of the firmware to this descriptor:
//!
//! ```text
//! TDX_METADATA_DESCRIPTOR { Signature "TDVF", u32 Length, u32 Version (1), u32 NumberOfSectionEntry }
//! TDX_METADATA_SECTION    { u32 DataOffset, u32 RawDataSize, u64 MemoryAddress, u64 MemoryDataSize,
//!                           u32 Type, u32 Attributes } × NumberOfSectionEntry
//! ```

use std::fmt;

/// `"TDVF"`, the TDX metadata signature.
pub const TDVF_SIGNATURE: [u8; 4] = *b"TDVF";
/// Size of `TDX_METADATA_DESCRIPTOR` without its sections.
pub const TDVF_DESCRIPTOR_SIZE: usize = 16;
/// Size of one `TDX_METADATA_SECTION`.
pub const TDVF_SECTION_SIZE: usize = 32;
/// Page size TDVF sections are aligned to.
pub const TDVF_ALIGNMENT: u64 = 4096;

/// `TDX_METADATA_SECTION_TYPE_*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TdvfSectionType {
    /// `BFV` = 0: boot firmware volume (code), copied from the image.
    Bfv,
    /// `CFV` = 1: configuration firmware volume (variable store), copied from the image.
    Cfv,
    /// `TD_HOB` = 2: memory where the VMM builds the TD HOB list.
    TdHob,
    /// `TEMP_MEM` = 3: temporary memory, zero filled.
    TempMem,
    /// `PERM_MEM` = 4: permanent memory, accepted by the VMM.
    PermMem,
    /// `PAYLOAD` = 5: memory for the payload (kernel) image.
    Payload,
    /// `PAYLOAD_PARAM` = 6: memory for the payload parameters (command line).
    PayloadParam,
}

impl TdvfSectionType {
    /// The type from its u32 encoding, `None` for values the TDVF design guide does not define.
    pub const fn from_raw(raw: u32) -> Option<TdvfSectionType> {
        Some(match raw {
            0 => TdvfSectionType::Bfv,
            1 => TdvfSectionType::Cfv,
            2 => TdvfSectionType::TdHob,
            3 => TdvfSectionType::TempMem,
            4 => TdvfSectionType::PermMem,
            5 => TdvfSectionType::Payload,
            6 => TdvfSectionType::PayloadParam,
            _ => return None,
        })
    }

    /// The u32 encoding.
    pub const fn raw(self) -> u32 {
        match self {
            TdvfSectionType::Bfv => 0,
            TdvfSectionType::Cfv => 1,
            TdvfSectionType::TdHob => 2,
            TdvfSectionType::TempMem => 3,
            TdvfSectionType::PermMem => 4,
            TdvfSectionType::Payload => 5,
            TdvfSectionType::PayloadParam => 6,
        }
    }

    /// Whether the section's bytes come from the firmware image (`RawDataSize` must be non-zero).
    pub const fn has_raw_data(self) -> bool {
        matches!(self, TdvfSectionType::Bfv | TdvfSectionType::Cfv)
    }
}

impl fmt::Display for TdvfSectionType {
    /// The design guide's names (`BFV`, `TD_HOB`, …).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TdvfSectionType::Bfv => "BFV",
            TdvfSectionType::Cfv => "CFV",
            TdvfSectionType::TdHob => "TD_HOB",
            TdvfSectionType::TempMem => "TEMP_MEM",
            TdvfSectionType::PermMem => "PERM_MEM",
            TdvfSectionType::Payload => "PAYLOAD",
            TdvfSectionType::PayloadParam => "PAYLOAD_PARAM",
        })
    }
}

/// `Attributes` bits of a TDVF section.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TdvfAttributes(pub u32);

impl TdvfAttributes {
    /// `MR_EXTEND` (bit 0): the VMM extends the section's contents into MRTD (`TDH.MR.EXTEND`).
    pub const MR_EXTEND: u32 = 1 << 0;
    /// `PAGE_AUG` (bit 1): the pages are added after launch (`TDH.MEM.PAGE.AUG`), not measured.
    pub const PAGE_AUG: u32 = 1 << 1;
    /// All bits the design guide defines.
    pub const KNOWN: u32 = Self::MR_EXTEND | Self::PAGE_AUG;

    /// Whether `MR_EXTEND` is set.
    pub const fn mr_extend(self) -> bool {
        self.0 & Self::MR_EXTEND != 0
    }

    /// Whether `PAGE_AUG` is set.
    pub const fn page_aug(self) -> bool {
        self.0 & Self::PAGE_AUG != 0
    }
}

impl fmt::Display for TdvfAttributes {
    /// `MR_EXTEND|PAGE_AUG`, or `0`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names = Vec::new();
        if self.mr_extend() {
            names.push("MR_EXTEND");
        }
        if self.page_aug() {
            names.push("PAGE_AUG");
        }
        if names.is_empty() {
            f.write_str("0")
        } else {
            f.write_str(&names.join("|"))
        }
    }
}

/// One `TDX_METADATA_SECTION`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TdvfSection {
    /// `DataOffset`: file offset of the section's bytes in the firmware image.
    pub data_offset: u32,
    /// `RawDataSize`: bytes taken from the image (0 for memory-only sections).
    pub raw_data_size: u32,
    /// `MemoryAddress`: guest physical address, page aligned.
    pub memory_address: u64,
    /// `MemoryDataSize`: bytes of guest memory, page aligned, at least `raw_data_size`.
    pub memory_data_size: u64,
    /// `Type`.
    pub section_type: TdvfSectionType,
    /// `Attributes`.
    pub attributes: TdvfAttributes,
}

impl TdvfSection {
    /// The section's bytes in `firmware` (empty for memory-only sections). Validation in
    /// [`Firmware::tdx_metadata`](crate::Firmware::tdx_metadata) guarantees the range is inside the
    /// firmware it was parsed from; for any other slice this returns `None` when out of range.
    pub fn raw_data<'a>(&self, firmware: &'a [u8]) -> Option<&'a [u8]> {
        if self.raw_data_size == 0 {
            return Some(&[]); // memory-only sections: DataOffset is meaningless
        }
        cvmkit_measure::read::slice(
            firmware,
            usize::try_from(self.data_offset).ok()?,
            usize::try_from(self.raw_data_size).ok()?,
        )
    }

    /// Number of 4 KiB pages of guest memory.
    pub const fn pages(&self) -> u64 {
        self.memory_data_size / TDVF_ALIGNMENT
    }
}

/// The `"TDVF"` descriptor and its sections, in file order, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TdxMetadata {
    /// File offset of the descriptor.
    pub offset: usize,
    /// `Length` of the descriptor (16 + 32 × sections).
    pub length: u32,
    /// `Version` (always 1).
    pub version: u32,
    /// The sections, in file order.
    pub sections: Vec<TdvfSection>,
}
