//! Metadata of OVMF (edk2) firmware images, as a VMM reads it before launching a confidential VM.
//!
//! - The **footer GUID table** at the end of the image ([`FooterTable`]): entries walked backwards
//!   from the footer GUID `96b582de-1fb2-45f7-baea-a366c55a082d`.
//! - **AMD SEV metadata** ([`SevMetadata`], `"ASEV"`): the memory sections SEV-SNP measures, plus the
//!   SEV hash table area, SEV-ES AP reset EIP and secret block from the footer table.
//! - **Intel TDX metadata** ([`TdxMetadata`], `"TDVF"`): the sections a TDX VMM adds to the TD and
//!   extends into MRTD, validated as QEMU does.
//!
//! Parsing never panics on malformed input: every read is bounds checked, and a `fuzz/` target
//! throws arbitrary bytes at [`Firmware`]. Errors name what is missing and, when given one, the
//! file.
//!
//! ```
//! use cvmkit_ovmf::{Firmware, SevSectionType, SEV_METADATA_GUID};
//!
//! // A minimal image: an "ASEV" descriptor with one CPUID section, the footer table, the reset vector.
//! let mut fw = vec![0u8; 4096 - 32];
//! let asev_at = 0x100;
//! fw[asev_at..asev_at + 16].copy_from_slice(&[b'A', b'S', b'E', b'V', 28, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0]);
//! fw[asev_at + 16..asev_at + 28].copy_from_slice(&[0, 0xe0, 0x80, 0, 0, 0x10, 0, 0, 3, 0, 0, 0]);
//! let offset_from_end = (4096 - asev_at) as u32;
//! let mut table = offset_from_end.to_le_bytes().to_vec();          // entry data
//! table.extend_from_slice(&22u16.to_le_bytes());                    // entry length: 4 + 18
//! table.extend_from_slice(&SEV_METADATA_GUID.to_bytes_le());
//! table.extend_from_slice(&(22u16 + 18).to_le_bytes());             // table length
//! table.extend_from_slice(&cvmkit_ovmf::OVMF_TABLE_FOOTER_GUID.to_bytes_le());
//! let end = fw.len();
//! fw[end - table.len()..].copy_from_slice(&table);
//! fw.extend_from_slice(&[0u8; 32]);
//!
//! let firmware = Firmware::parse_named(&fw, "tiny.fd")?;
//! let sev = firmware.require_sev_metadata()?;
//! assert_eq!(sev.sections[0].section_type, SevSectionType::Cpuid);
//! assert_eq!(sev.sections[0].gpa, 0x80e000);
//! let err = firmware.require_tdx_metadata().unwrap_err();
//! assert_eq!(
//!     err.to_string(),
//!     "firmware tiny.fd has no TDX metadata (GUID e47a6535-984a-4798-865e-4685a7bf8ec2): \
//!      not a TDX-capable OVMF (TDVF) build"
//! );
//! # Ok::<(), cvmkit_ovmf::OvmfError>(())
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs)]

use cvmkit_measure::read;

mod error;
mod footer;
mod guid;
mod sev;
mod tdx;

pub use error::OvmfError;
pub use footer::{FooterEntry, FooterTable, ENTRY_HEADER_SIZE, FOOTER_END_FROM_END};
pub use guid::{
    Guid, ParseGuidError, OVMF_TABLE_FOOTER_GUID, SEV_ES_RESET_BLOCK_GUID, SEV_HASH_TABLE_RV_GUID,
    SEV_METADATA_GUID, SEV_SECRET_BLOCK_GUID, TDX_METADATA_OFFSET_GUID,
};
pub use sev::{
    GpaRange, SevMetadata, SevMetadataSection, SevSectionType, SEV_METADATA_HEADER_SIZE,
    SEV_METADATA_SECTION_SIZE, SEV_METADATA_SIGNATURE,
};
pub use tdx::{
    TdvfAttributes, TdvfSection, TdvfSectionType, TdxMetadata, TDVF_ALIGNMENT,
    TDVF_DESCRIPTOR_SIZE, TDVF_SECTION_SIZE, TDVF_SIGNATURE,
};

/// An OVMF firmware image with its footer GUID table parsed.
///
/// The SEV and TDX descriptors are parsed on request; each accessor comes in an `Option` form
/// (absent is fine) and a `require_` form (absent is an error naming the GUID).
#[derive(Debug, Clone)]
pub struct Firmware<'a> {
    data: &'a [u8],
    name: Option<String>,
    footer: Option<FooterTable<'a>>,
}

impl<'a> Firmware<'a> {
    /// Parses the footer table of `data`. An image without a footer GUID is accepted (its table is
    /// empty); a footer table with inconsistent lengths is an error.
    pub fn parse(data: &'a [u8]) -> Result<Firmware<'a>, OvmfError> {
        Self::parse_inner(data, None)
    }

    /// Like [`parse`](Self::parse); errors name the firmware `name` (e.g. its file name).
    pub fn parse_named(data: &'a [u8], name: impl Into<String>) -> Result<Firmware<'a>, OvmfError> {
        Self::parse_inner(data, Some(name.into()))
    }

    fn parse_inner(data: &'a [u8], name: Option<String>) -> Result<Firmware<'a>, OvmfError> {
        let footer = FooterTable::parse_inner(data, &name)?;
        Ok(Firmware { data, name, footer })
    }

    /// The whole image.
    pub fn data(&self) -> &'a [u8] {
        self.data
    }

    /// The name given to [`parse_named`](Self::parse_named).
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// The footer table, `None` when the image has no footer GUID.
    pub fn footer_table(&self) -> Option<&FooterTable<'a>> {
        self.footer.as_ref()
    }

    /// The footer table, or [`OvmfError::NoFooterTable`].
    pub fn require_footer_table(&self) -> Result<&FooterTable<'a>, OvmfError> {
        self.footer
            .as_ref()
            .ok_or_else(|| OvmfError::NoFooterTable {
                file: self.name.clone(),
            })
    }

    /// The data of footer table entry `guid`, if any.
    pub fn table_entry(&self, guid: &Guid) -> Option<&'a [u8]> {
        self.footer.as_ref().and_then(|t| t.get(guid))
    }

    /// The data of footer table entry `guid`, or an error naming `what` it is and `hint`.
    fn require_entry(
        &self,
        guid: Guid,
        what: &'static str,
        hint: &'static str,
        needed: usize,
    ) -> Result<&'a [u8], OvmfError> {
        let table = self.require_footer_table()?;
        let data = table.get(&guid).ok_or_else(|| OvmfError::MissingEntry {
            file: self.name.clone(),
            what,
            guid,
            hint,
        })?;
        if data.len() < needed {
            return Err(OvmfError::ShortEntry {
                file: self.name.clone(),
                what,
                guid,
                len: data.len(),
                needed,
            });
        }
        Ok(data)
    }

    /// Resolves a u32 "offset from the end of the file" held by a footer entry.
    fn offset_from_end(&self, entry: &[u8]) -> Option<usize> {
        let from_end = usize::try_from(read::le_u32(entry, 0)?).ok()?;
        self.data.len().checked_sub(from_end)
    }

    /// The `{signature, length, version = 1, count}` header both the SEV ("ASEV") and the TDX
    /// ("TDVF") metadata start with, at the offset from the end of the file that `entry` holds.
    /// Returns (offset, length, count).
    fn metadata_header(
        &self,
        entry: &[u8],
        expected: [u8; 4],
        header_size: usize,
        bad: &dyn Fn(String) -> OvmfError,
    ) -> Result<(usize, u32, u32), OvmfError> {
        let len = self.data.len();
        let start = self.offset_from_end(entry).ok_or_else(|| {
            bad(format!(
                "offset {:#x} from the end points before the start of the {len}-byte file",
                read::le_u32(entry, 0).unwrap_or(0)
            ))
        })?;
        let (Some(signature), Some(length), Some(version), Some(count)) = (
            read::array::<4>(self.data, start),
            read::le_u32(self.data, start.saturating_add(4)),
            read::le_u32(self.data, start.saturating_add(8)),
            read::le_u32(self.data, start.saturating_add(12)),
        ) else {
            return Err(bad(format!(
                "the {header_size}-byte descriptor at offset {start:#x} runs past the end of the {len}-byte file"
            )));
        };
        if signature != expected {
            return Err(bad(format!(
                "signature at offset {start:#x} is {:?}, expected {:?}",
                String::from_utf8_lossy(&signature),
                String::from_utf8_lossy(&expected)
            )));
        }
        if version != 1 {
            return Err(bad(format!("version is {version}, only version 1 is defined")));
        }
        Ok((start, length, count))
    }

    /// The SEV metadata, `None` when the footer table has no [`SEV_METADATA_GUID`] entry.
    pub fn sev_metadata(&self) -> Result<Option<SevMetadata>, OvmfError> {
        if self.table_entry(&SEV_METADATA_GUID).is_none() {
            return Ok(None);
        }
        self.require_sev_metadata().map(Some)
    }

    /// The SEV metadata, or an error when it is absent or malformed.
    pub fn require_sev_metadata(&self) -> Result<SevMetadata, OvmfError> {
        let entry = self.require_entry(
            SEV_METADATA_GUID,
            "SEV metadata",
            "not an SEV-capable OVMF build",
            4,
        )?;
        let bad = |reason: String| OvmfError::MalformedSevMetadata {
            file: self.name.clone(),
            reason,
        };
        let len = self.data.len();
        let (start, length, count) =
            self.metadata_header(entry, SEV_METADATA_SIGNATURE, SEV_METADATA_HEADER_SIZE, &bad)?;
        // Checked to be 1 by metadata_header.
        let version = 1;
        let needed =
            u64::from(count) * SEV_METADATA_SECTION_SIZE as u64 + SEV_METADATA_HEADER_SIZE as u64;
        if u64::from(length) < needed {
            return Err(bad(format!(
                "descriptor length {length} cannot hold its {count} sections of {SEV_METADATA_SECTION_SIZE} bytes"
            )));
        }
        let items_len = usize::try_from(needed - SEV_METADATA_HEADER_SIZE as u64).ok();
        let items = items_len
            .and_then(|n| read::slice(self.data, start.checked_add(SEV_METADATA_HEADER_SIZE)?, n))
            .ok_or_else(|| {
                bad(format!(
                    "its {count} sections run past the end of the {len}-byte file"
                ))
            })?;
        let sections = items
            .chunks_exact(SEV_METADATA_SECTION_SIZE)
            .map(|item| {
                let field = |i: usize| read::le_u32(item, 4 * i).unwrap_or(0);
                SevMetadataSection {
                    gpa: field(0),
                    size: field(1),
                    section_type: SevSectionType::from_raw(field(2)),
                }
            })
            .collect();
        Ok(SevMetadata {
            offset: start,
            length,
            version,
            sections,
        })
    }

    /// A `{u32 gpa, u32 size}` footer entry, `None` when absent.
    fn gpa_range(&self, guid: Guid, what: &'static str) -> Result<Option<GpaRange>, OvmfError> {
        if self.table_entry(&guid).is_none() {
            return Ok(None);
        }
        let data = self.require_entry(guid, what, "", 8)?;
        Ok(Some(GpaRange {
            gpa: read::le_u32(data, 0).unwrap_or(0),
            size: read::le_u32(data, 4).unwrap_or(0),
        }))
    }

    /// The area QEMU fills with the SEV kernel/initrd/cmdline hashes table
    /// ([`SEV_HASH_TABLE_RV_GUID`]); `None` when the entry is absent. Builds without measured
    /// direct boot carry the entry with GPA 0 (see [`GpaRange`]).
    pub fn sev_hash_table(&self) -> Result<Option<GpaRange>, OvmfError> {
        self.gpa_range(SEV_HASH_TABLE_RV_GUID, "SEV hash table")
    }

    /// The SEV launch secret area ([`SEV_SECRET_BLOCK_GUID`]), `None` when absent.
    pub fn sev_secret_block(&self) -> Result<Option<GpaRange>, OvmfError> {
        self.gpa_range(SEV_SECRET_BLOCK_GUID, "SEV secret block")
    }

    /// The reset EIP of application processors under SEV-ES/SNP ([`SEV_ES_RESET_BLOCK_GUID`]).
    pub fn sev_es_reset_eip(&self) -> Result<u32, OvmfError> {
        let data = self.require_entry(
            SEV_ES_RESET_BLOCK_GUID,
            "SEV-ES reset block",
            "not an SEV-ES-capable OVMF build (no AP reset vector)",
            4,
        )?;
        Ok(read::le_u32(data, 0).unwrap_or(0))
    }

    /// The TDX metadata, `None` when the footer table has no [`TDX_METADATA_OFFSET_GUID`] entry.
    pub fn tdx_metadata(&self) -> Result<Option<TdxMetadata>, OvmfError> {
        if self.table_entry(&TDX_METADATA_OFFSET_GUID).is_none() {
            return Ok(None);
        }
        self.require_tdx_metadata().map(Some)
    }

    /// The TDX metadata, or an error when it is absent, malformed or fails the checks QEMU makes
    /// (`hw/i386/tdvf.c`): signature, version 1, `Length` = 16 + 32 × sections and inside the file,
    /// page-aligned `MemoryAddress`/`MemoryDataSize`, `MemoryDataSize ≥ RawDataSize`, raw data only
    /// (and always) for BFV/CFV. It also checks that raw data lies inside the file and that only
    /// defined types and attribute bits are used. (QEMU further requires at least two sections
    /// and does not implement types PERM_MEM, PAYLOAD and PAYLOAD_PARAM.)
    pub fn require_tdx_metadata(&self) -> Result<TdxMetadata, OvmfError> {
        let entry = self.require_entry(
            TDX_METADATA_OFFSET_GUID,
            "TDX metadata",
            "not a TDX-capable OVMF (TDVF) build",
            4,
        )?;
        let bad = |reason: String| OvmfError::MalformedTdxMetadata {
            file: self.name.clone(),
            reason,
        };
        let len = self.data.len();
        let (start, length, count) =
            self.metadata_header(entry, TDVF_SIGNATURE, TDVF_DESCRIPTOR_SIZE, &bad)?;
        // Checked to be 1 by metadata_header.
        let version = 1;
        if count == 0 {
            return Err(bad("it declares no sections".to_owned()));
        }
        let expected = u64::from(count) * TDVF_SECTION_SIZE as u64 + TDVF_DESCRIPTOR_SIZE as u64;
        if u64::from(length) != expected {
            return Err(bad(format!(
                "descriptor length {length} does not match its {count} sections (expected {expected})"
            )));
        }
        let body = usize::try_from(length)
            .ok()
            .and_then(|n| read::slice(self.data, start, n))
            .ok_or_else(|| {
                bad(format!(
                    "the {length}-byte descriptor at offset {start:#x} runs past the end of the {len}-byte file"
                ))
            })?;
        let mut sections = Vec::new();
        for (i, raw) in body
            .get(TDVF_DESCRIPTOR_SIZE..)
            .unwrap_or(&[])
            .chunks_exact(TDVF_SECTION_SIZE)
            .enumerate()
        {
            let u32_at = |o: usize| read::le_u32(raw, o).unwrap_or(0);
            let u64_at = |o: usize| read::le_u64(raw, o).unwrap_or(0);
            let (data_offset, raw_data_size) = (u32_at(0), u32_at(4));
            let (memory_address, memory_data_size) = (u64_at(8), u64_at(16));
            let (type_raw, attributes) = (u32_at(24), TdvfAttributes(u32_at(28)));
            let Some(section_type) = TdvfSectionType::from_raw(type_raw) else {
                return Err(bad(format!("section {i} has undefined type {type_raw}")));
            };
            let what = format!("section {i} ({section_type})");
            if attributes.0 & !TdvfAttributes::KNOWN != 0 {
                return Err(bad(format!(
                    "{what} has undefined attribute bits {:#x}",
                    attributes.0
                )));
            }
            if memory_data_size < u64::from(raw_data_size) {
                return Err(bad(format!(
                    "{what} has MemoryDataSize {memory_data_size:#x} < RawDataSize {raw_data_size:#x}"
                )));
            }
            if memory_address % TDVF_ALIGNMENT != 0 || memory_data_size % TDVF_ALIGNMENT != 0 {
                return Err(bad(format!(
                    "{what} at MemoryAddress {memory_address:#x} size {memory_data_size:#x} is not 4 KiB aligned"
                )));
            }
            if memory_address.checked_add(memory_data_size).is_none() {
                return Err(bad(format!(
                    "{what} at MemoryAddress {memory_address:#x} size {memory_data_size:#x} wraps around"
                )));
            }
            if section_type.has_raw_data() != (raw_data_size != 0) {
                return Err(bad(if section_type.has_raw_data() {
                    format!("{what} has RawDataSize 0, but its bytes must come from the image")
                } else {
                    format!("{what} has RawDataSize {raw_data_size:#x}, but it is memory only")
                }));
            }
            let end = u64::from(data_offset) + u64::from(raw_data_size);
            if raw_data_size != 0 && end > len as u64 {
                return Err(bad(format!(
                    "{what} raw data {data_offset:#x}..{end:#x} runs past the end of the {len}-byte file"
                )));
            }
            sections.push(TdvfSection {
                data_offset,
                raw_data_size,
                memory_address,
                memory_data_size,
                section_type,
                attributes,
            });
        }
        Ok(TdxMetadata {
            offset: start,
            length,
            version,
            sections,
        })
    }
}
