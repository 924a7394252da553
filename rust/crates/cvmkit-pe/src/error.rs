/// Why a byte string is not a PE image this crate can work with.
///
/// Every message names what is wrong and at which file offset, in one line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The file does not start with `MZ`.
    #[error("not a PE file: missing MZ signature")]
    MissingDosSignature,
    /// `e_lfanew` does not point at `PE\0\0`.
    #[error("not a PE file: missing PE\\0\\0 signature at e_lfanew 0x{offset:x}")]
    MissingPeSignature {
        /// Value of `e_lfanew`.
        offset: u64,
    },
    /// A header field lies past the end of the file.
    #[error("truncated {what} at offset 0x{offset:x} (file is 0x{file_len:x} bytes)")]
    Truncated {
        /// The structure or field being read.
        what: &'static str,
        /// File offset of the read.
        offset: u64,
        /// Length of the file.
        file_len: usize,
    },
    /// A section table entry lies past the end of the file.
    #[error("truncated section table (section {index} at offset 0x{offset:x}, file is 0x{file_len:x} bytes)")]
    TruncatedSectionTable {
        /// Index of the first missing entry.
        index: usize,
        /// File offset of that entry.
        offset: u64,
        /// Length of the file.
        file_len: usize,
    },
    /// The optional header is neither PE32 nor PE32+.
    #[error("unknown optional header magic 0x{magic:x} at offset 0x{offset:x} (expected 0x10b for PE32 or 0x20b for PE32+)")]
    UnknownOptionalHeaderMagic {
        /// The magic found.
        magic: u16,
        /// File offset of the optional header.
        offset: u64,
    },
    /// `SizeOfOptionalHeader` cannot hold the fixed fields plus `NumberOfRvaAndSizes` entries.
    #[error("SizeOfOptionalHeader 0x{size:x} is too small for a {kind} optional header with {directories} data directories (needs 0x{needed:x})")]
    OptionalHeaderTooSmall {
        /// `SizeOfOptionalHeader`.
        size: u16,
        /// "PE32" or "PE32+".
        kind: &'static str,
        /// `NumberOfRvaAndSizes`.
        directories: u32,
        /// Bytes needed.
        needed: u64,
    },
    /// The section table does not fit within `SizeOfHeaders`, so Authenticode would not cover it.
    #[error("section table ends at 0x{table_end:x}, past SizeOfHeaders 0x{size_of_headers:x}")]
    SectionTablePastHeaders {
        /// End offset of the section table.
        table_end: u64,
        /// `SizeOfHeaders`.
        size_of_headers: u32,
    },
    /// `SizeOfHeaders` is larger than the file.
    #[error("SizeOfHeaders 0x{size_of_headers:x} extends past end of file (0x{file_len:x} bytes)")]
    HeadersPastEnd {
        /// `SizeOfHeaders`.
        size_of_headers: u32,
        /// Length of the file.
        file_len: usize,
    },
    /// A section's raw data lies (partly) past the end of the file.
    #[error("section {name} raw data 0x{offset:x}+0x{size:x} extends past end of file (0x{file_len:x} bytes)")]
    SectionPastEnd {
        /// Section name (escaped).
        name: String,
        /// `PointerToRawData`.
        offset: u32,
        /// `SizeOfRawData`.
        size: u32,
        /// Length of the file.
        file_len: usize,
    },
    /// The certificate table lies (partly) past the end of the file.
    #[error(
        "certificate table 0x{offset:x}+0x{size:x} extends past end of file (0x{file_len:x} bytes)"
    )]
    CertificateTablePastEnd {
        /// File offset from the Security data directory.
        offset: u32,
        /// Size from the Security data directory.
        size: u32,
        /// Length of the file.
        file_len: usize,
    },
}

impl From<cvmkit_measure::Truncated> for Error {
    fn from(t: cvmkit_measure::Truncated) -> Error {
        Error::Truncated { what: t.what, offset: t.offset, file_len: usize::try_from(t.end).unwrap_or(usize::MAX) }
    }
}
