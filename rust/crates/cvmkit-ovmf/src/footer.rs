//! The OVMF footer GUID table.
//!
//! Layout (edk2 `OvmfPkg/ResetVector/Ia16/ResetVectorVtf0.asm`), at the end of the firmware:
//!
//! ```text
//!   … | entry N | … | entry 1 | u16 table length | footer GUID (16) | 32 bytes (reset vector) |
//!                                                 ^ len - 48          ^ len - 32
//!   entry = data | u16 entry length (data + 18) | entry GUID (16)
//! ```
//!
//! The table length counts every entry plus the footer's own 18 bytes (u16 + GUID). Entries are
//! walked backwards from the footer.

use crate::error::OvmfError;
use cvmkit_measure::read;
use crate::guid::{Guid, OVMF_TABLE_FOOTER_GUID};

/// Size of an entry's trailer: u16 length + GUID.
pub const ENTRY_HEADER_SIZE: usize = 18;
/// The footer GUID ends this many bytes before the end of the firmware.
pub const FOOTER_END_FROM_END: usize = 32;

/// One entry of the footer GUID table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FooterEntry<'a> {
    /// The entry's GUID.
    pub guid: Guid,
    /// The entry's data (without the u16 length and GUID trailer).
    pub data: &'a [u8],
    /// File offset of `data`.
    pub offset: usize,
}

/// The OVMF footer GUID table of a firmware image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FooterTable<'a> {
    /// Entries in the order they are walked: from the footer backwards.
    entries: Vec<FooterEntry<'a>>,
    /// File offset of the first byte of the table (its lowest entry).
    offset: usize,
}

impl<'a> FooterTable<'a> {
    /// Parses the footer table of `firmware`.
    ///
    /// Fails with [`OvmfError::NoFooterTable`] when the footer GUID is absent and with
    /// [`OvmfError::MalformedFooterTable`] when a length is inconsistent.
    pub fn parse(firmware: &'a [u8]) -> Result<FooterTable<'a>, OvmfError> {
        Self::parse_inner(firmware, &None)?.ok_or(OvmfError::NoFooterTable { file: None })
    }

    /// `Ok(None)` when there is no footer GUID.
    pub(crate) fn parse_inner(
        firmware: &'a [u8],
        file: &Option<String>,
    ) -> Result<Option<FooterTable<'a>>, OvmfError> {
        let malformed = |reason: String| OvmfError::MalformedFooterTable {
            file: file.clone(),
            reason,
        };
        // The footer's own entry header (u16 length + GUID) sits just before the last 32 bytes.
        let Some(footer_start) = firmware
            .len()
            .checked_sub(FOOTER_END_FROM_END + ENTRY_HEADER_SIZE)
        else {
            return Ok(None);
        };
        let (Some(table_len), Some(guid)) = (
            read::le_u16(firmware, footer_start),
            read::array::<16>(firmware, footer_start + 2),
        ) else {
            return Ok(None);
        };
        if Guid::from_bytes_le(guid) != OVMF_TABLE_FOOTER_GUID {
            return Ok(None);
        }
        let table_len = usize::from(table_len);
        let Some(entries_len) = table_len.checked_sub(ENTRY_HEADER_SIZE) else {
            return Err(malformed(format!(
                "table length {table_len} is smaller than the footer's own {ENTRY_HEADER_SIZE} bytes"
            )));
        };
        let Some(table_start) = footer_start.checked_sub(entries_len) else {
            return Err(malformed(format!(
                "table length {table_len} reaches before the start of the {}-byte file",
                firmware.len()
            )));
        };
        let mut entries = Vec::new();
        let mut end = footer_start; // exclusive end of the part not yet walked
        while end - table_start >= ENTRY_HEADER_SIZE {
            let header = end - ENTRY_HEADER_SIZE;
            let (Some(size), Some(guid)) = (
                read::le_u16(firmware, header),
                read::array::<16>(firmware, header + 2),
            ) else {
                return Err(malformed(format!(
                    "entry header at offset {header:#x} is out of range"
                )));
            };
            let guid = Guid::from_bytes_le(guid);
            let size = usize::from(size);
            if size < ENTRY_HEADER_SIZE {
                return Err(malformed(format!(
                    "entry {guid} at offset {header:#x} has length {size}, less than its {ENTRY_HEADER_SIZE}-byte header"
                )));
            }
            if size > end - table_start {
                return Err(malformed(format!(
                    "entry {guid} at offset {header:#x} has length {size}, more than the {} bytes left in the table",
                    end - table_start
                )));
            }
            let start = end - size;
            let data = read::slice(firmware, start, size - ENTRY_HEADER_SIZE).ok_or_else(|| {
                malformed(format!("entry {guid} at offset {start:#x} is out of range"))
            })?;
            entries.push(FooterEntry {
                guid,
                data,
                offset: start,
            });
            end = start;
        }
        Ok(Some(FooterTable {
            entries,
            offset: table_start,
        }))
    }

    /// The data of the entry with `guid`.
    ///
    /// When a GUID occurs twice, the entry nearer the start of the file wins, as in
    /// sev-snp-measure, which fills a dictionary while walking backwards (QEMU's
    /// `pc_system_ovmf_table_find` would return the one nearer the footer; real builds have no
    /// duplicates).
    pub fn get(&self, guid: &Guid) -> Option<&'a [u8]> {
        self.entry(guid).map(|e| e.data)
    }

    /// The entry with `guid` (see [`get`](Self::get) for duplicates).
    pub fn entry(&self, guid: &Guid) -> Option<&FooterEntry<'a>> {
        self.entries.iter().rev().find(|e| e.guid == *guid)
    }

    /// All entries, from the footer backwards.
    pub fn entries(&self) -> &[FooterEntry<'a>] {
        &self.entries
    }

    /// File offset of the start of the table.
    pub fn offset(&self) -> usize {
        self.offset
    }
}
