//! The error every parser in this crate returns.

use crate::guid::Guid;

/// `" NAME"` when the caller named the firmware file, else nothing, so that messages read
/// "firmware OVMF.fd has no …" or "firmware has no …".
pub(crate) fn file_label(file: &Option<String>) -> String {
    match file {
        Some(name) => format!(" {name}"),
        None => String::new(),
    }
}

/// Why a firmware image's OVMF metadata could not be read.
///
/// Every message names the table or GUID concerned and, when the caller gave one (see
/// [`Firmware::parse_named`](crate::Firmware::parse_named)), the firmware file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OvmfError {
    /// The OVMF footer GUID is not 48 bytes before the end of the image.
    #[error(
        "firmware{} has no OVMF footer GUID table (GUID {}, 48 bytes before the end of the file): \
         not an OVMF firmware image (pass the whole OVMF.fd or OVMF_CODE.fd)",
        file_label(.file), crate::OVMF_TABLE_FOOTER_GUID
    )]
    NoFooterTable {
        /// The firmware file name, when known.
        file: Option<String>,
    },
    /// The footer GUID table is present but its lengths are inconsistent.
    #[error("firmware{}: OVMF footer GUID table is malformed: {reason}", file_label(.file))]
    MalformedFooterTable {
        /// The firmware file name, when known.
        file: Option<String>,
        /// What is inconsistent.
        reason: String,
    },
    /// A footer table entry the caller needs is absent.
    #[error("firmware{} has no {what} (GUID {guid}): {hint}", file_label(.file))]
    MissingEntry {
        /// The firmware file name, when known.
        file: Option<String>,
        /// What the entry describes, e.g. "SEV metadata".
        what: &'static str,
        /// The entry's GUID.
        guid: Guid,
        /// What its absence means.
        hint: &'static str,
    },
    /// A footer table entry is shorter than the fields it must hold.
    #[error(
        "firmware{}: {what} entry (GUID {guid}) in the OVMF footer table holds {len} bytes, \
         expected at least {needed}",
        file_label(.file)
    )]
    ShortEntry {
        /// The firmware file name, when known.
        file: Option<String>,
        /// What the entry describes.
        what: &'static str,
        /// The entry's GUID.
        guid: Guid,
        /// Bytes present.
        len: usize,
        /// Bytes needed.
        needed: usize,
    },
    /// The `"ASEV"` SEV metadata descriptor is malformed.
    #[error("firmware{}: SEV metadata (GUID {}) is malformed: {reason}", file_label(.file), crate::SEV_METADATA_GUID)]
    MalformedSevMetadata {
        /// The firmware file name, when known.
        file: Option<String>,
        /// What is wrong.
        reason: String,
    },
    /// The `"TDVF"` TDX metadata descriptor is malformed or fails validation.
    #[error(
        "firmware{}: TDX metadata (GUID {}) is malformed: {reason}",
        file_label(.file), crate::TDX_METADATA_OFFSET_GUID
    )]
    MalformedTdxMetadata {
        /// The firmware file name, when known.
        file: Option<String>,
        /// What is wrong.
        reason: String,
    },
}
