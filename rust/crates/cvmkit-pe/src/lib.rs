//! Reader for PE/COFF images (EFI applications, the Linux EFI stub, UKIs), with the
//! Authenticode image hash and the PE checksum.
//!
//! - [`PeFile::parse`] reads the MS-DOS header, `PE\0\0`, the COFF file header, the PE32 or PE32+
//!   optional header with its data directories, and the section table. It validates every
//!   offset it later hands out, so the accessors and the hashes cannot go out of bounds. It
//!   never panics on untrusted bytes and never allocates according to a size read from them
//!   beyond the section table (at most 65535 entries).
//! - [`PeFile::authenticode`] computes the image hash that Secure Boot verifies and that
//!   firmware extends into PCR 4 / RTMR 1 (see [`PeFile::authenticode_ranges`] for the exact
//!   bytes and the padding rule).
//! - [`pe_checksum`] is the `CheckSumMappedFile` algorithm of `imagehlp.dll`.
//!
//! The structures in [`pe`] follow the Microsoft "PE Format" specification and keep its field
//! names in snake case.
//!
//! ```
//! use cvmkit_pe::{pe_checksum, Error, PeFile};
//!
//! let err = PeFile::parse(b"#!/bin/sh\n").unwrap_err();
//! assert_eq!(err, Error::MissingDosSignature);
//! assert_eq!(err.to_string(), "not a PE file: missing MZ signature");
//!
//! // Two 16-bit words 0x0201 + 0x0403, plus the length of the data.
//! assert_eq!(pe_checksum(&[1, 2, 3, 4], 100), 0x0201 + 0x0403 + 4);
//! ```
//!
//! Reading a real image:
//!
//! ```no_run
//! use sha2::Sha384;
//!
//! let data = std::fs::read("vmlinuz")?;
//! let pe = cvmkit_pe::PeFile::parse(&data)?;
//! for s in pe.sections() {
//!     println!("{:8} {:#x} {:#x}", s.name(), s.header.virtual_address, s.header.virtual_size);
//! }
//! let digest = pe.authenticode::<Sha384>();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod authenticode;
mod checksum;
mod error;
pub mod pe;

use std::borrow::Cow;
use std::ops::Range;

pub use authenticode::AuthenticodeDigests;
pub use checksum::pe_checksum;
pub use error::Error;
pub use sha2;

use pe::*;
use cvmkit_measure::Reader;

/// File offsets of the headers of a parsed image, for writers that patch them in place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderLayout {
    /// Offset of `PE\0\0` (`e_lfanew`).
    pub nt_headers: usize,
    /// Offset of the COFF file header.
    pub file_header: usize,
    /// Offset of the optional header.
    pub optional_header: usize,
    /// Offset of the `CheckSum` field.
    pub checksum: usize,
    /// Offset of the first data directory entry.
    pub data_directories: usize,
    /// Offset of the Security (certificate table) data directory entry, if the optional header
    /// has one (`NumberOfRvaAndSizes` > 4).
    pub security_directory: Option<usize>,
    /// Offset of the section table.
    pub section_table: usize,
    /// Offset just past the last section table entry.
    pub section_table_end: usize,
}

/// One section table entry with its position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Section {
    /// Index in the section table, from 0.
    pub index: usize,
    /// File offset of this entry in the section table.
    pub header_offset: usize,
    /// The entry.
    pub header: ImageSectionHeader,
}

impl Section {
    /// The name up to its first NUL, e.g. `.linux`; bytes that are not UTF-8 are replaced.
    pub fn name(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(self.header.name_bytes())
    }

    /// File range of the raw data (`PointerToRawData`, `SizeOfRawData`).
    pub fn raw_range(&self) -> Range<u64> {
        let start = u64::from(self.header.pointer_to_raw_data);
        start..start + u64::from(self.header.size_of_raw_data)
    }

    /// Number of zero bytes a loader appends after the raw data in memory
    /// (`VirtualSize` beyond `SizeOfRawData`).
    pub fn zero_fill(&self) -> u32 {
        self.header
            .virtual_size
            .saturating_sub(self.header.size_of_raw_data)
    }

    /// The name quoted for error messages: printable ASCII as is, anything else escaped.
    fn display_name(&self) -> String {
        self.header.name_bytes().escape_ascii().to_string()
    }
}

/// A parsed PE32 or PE32+ image borrowing its bytes.
#[derive(Debug, Clone)]
pub struct PeFile<'a> {
    data: &'a [u8],
    dos_header: ImageDosHeader,
    file_header: ImageFileHeader,
    optional_header: ImageOptionalHeader,
    data_directories: Vec<ImageDataDirectory>,
    sections: Vec<Section>,
    layout: HeaderLayout,
}

impl<'a> PeFile<'a> {
    /// Parses and validates the headers and section table of `data`.
    ///
    /// Besides the structures being present, this checks what the hashes and accessors rely
    /// on: the section table lies within `SizeOfHeaders`, `SizeOfHeaders` within the file, each
    /// section's raw data and the certificate table within the file.
    pub fn parse(data: &'a [u8]) -> Result<Self, Error> {
        let mut c = Reader::at(data, 0);
        let e_magic = c
            .u16_named("MS-DOS header")
            .map_err(|_| Error::MissingDosSignature)?;
        if e_magic != IMAGE_DOS_SIGNATURE {
            return Err(Error::MissingDosSignature);
        }
        let e_lfanew = Reader::at(data, IMAGE_DOS_E_LFANEW_OFFSET).u32_named("MS-DOS header e_lfanew")?;
        let dos_header = ImageDosHeader { e_magic, e_lfanew };

        let nt_headers = e_lfanew as usize;
        let mut c = Reader::at(data, nt_headers);
        let signature = c
            .array_named::<4>("PE signature")
            .map_err(|_| Error::MissingPeSignature {
                offset: e_lfanew.into(),
            })?;
        if signature != IMAGE_NT_SIGNATURE {
            return Err(Error::MissingPeSignature {
                offset: e_lfanew.into(),
            });
        }

        let file_header_offset = c.pos();
        let file_header = ImageFileHeader {
            machine: c.u16_named("COFF file header")?,
            number_of_sections: c.u16_named("COFF file header")?,
            time_date_stamp: c.u32_named("COFF file header")?,
            pointer_to_symbol_table: c.u32_named("COFF file header")?,
            number_of_symbols: c.u32_named("COFF file header")?,
            size_of_optional_header: c.u16_named("COFF file header")?,
            characteristics: c.u16_named("COFF file header")?,
        };

        let optional_header_offset = c.pos();
        let (optional_header, data_directories_offset) = parse_optional_header(&mut c)?;
        let kind = if optional_header.is_pe32_plus() {
            "PE32+"
        } else {
            "PE32"
        };
        let needed = optional_header.fixed_size() as u64
            + u64::from(optional_header.number_of_rva_and_sizes)
                * IMAGE_SIZEOF_DATA_DIRECTORY as u64;
        if needed > u64::from(file_header.size_of_optional_header) {
            return Err(Error::OptionalHeaderTooSmall {
                size: file_header.size_of_optional_header,
                kind,
                directories: optional_header.number_of_rva_and_sizes,
                needed,
            });
        }
        // Bounded by SizeOfOptionalHeader (u16), so at most 8191 entries.
        let mut data_directories = Vec::new();
        for _ in 0..optional_header.number_of_rva_and_sizes {
            data_directories.push(ImageDataDirectory {
                virtual_address: c.u32_named("data directory")?,
                size: c.u32_named("data directory")?,
            });
        }

        let section_table =
            optional_header_offset + usize::from(file_header.size_of_optional_header);
        let mut sections = Vec::with_capacity(usize::from(file_header.number_of_sections));
        for index in 0..usize::from(file_header.number_of_sections) {
            let header_offset = section_table + index * IMAGE_SIZEOF_SECTION_HEADER;
            let truncated = |_| Error::TruncatedSectionTable {
                index,
                offset: header_offset as u64,
                file_len: data.len(),
            };
            let mut c = Reader::at(data, header_offset);
            let header = ImageSectionHeader {
                name: c.array_named("section header").map_err(truncated)?,
                virtual_size: c.u32_named("section header").map_err(truncated)?,
                virtual_address: c.u32_named("section header").map_err(truncated)?,
                size_of_raw_data: c.u32_named("section header").map_err(truncated)?,
                pointer_to_raw_data: c.u32_named("section header").map_err(truncated)?,
                pointer_to_relocations: c.u32_named("section header").map_err(truncated)?,
                pointer_to_linenumbers: c.u32_named("section header").map_err(truncated)?,
                number_of_relocations: c.u16_named("section header").map_err(truncated)?,
                number_of_linenumbers: c.u16_named("section header").map_err(truncated)?,
                characteristics: c.u32_named("section header").map_err(truncated)?,
            };
            sections.push(Section {
                index,
                header_offset,
                header,
            });
        }
        let section_table_end = section_table
            + usize::from(file_header.number_of_sections) * IMAGE_SIZEOF_SECTION_HEADER;

        let size_of_headers = optional_header.size_of_headers;
        if section_table_end as u64 > u64::from(size_of_headers) {
            return Err(Error::SectionTablePastHeaders {
                table_end: section_table_end as u64,
                size_of_headers,
            });
        }
        if size_of_headers as usize > data.len() {
            return Err(Error::HeadersPastEnd {
                size_of_headers,
                file_len: data.len(),
            });
        }
        for s in &sections {
            if s.header.size_of_raw_data != 0 && s.raw_range().end > data.len() as u64 {
                return Err(Error::SectionPastEnd {
                    name: s.display_name(),
                    offset: s.header.pointer_to_raw_data,
                    size: s.header.size_of_raw_data,
                    file_len: data.len(),
                });
            }
        }
        if let Some(cert) = data_directories.get(IMAGE_DIRECTORY_ENTRY_SECURITY) {
            if cert.size != 0
                && u64::from(cert.virtual_address) + u64::from(cert.size) > data.len() as u64
            {
                return Err(Error::CertificateTablePastEnd {
                    offset: cert.virtual_address,
                    size: cert.size,
                    file_len: data.len(),
                });
            }
        }

        let security_directory = (data_directories.len() > IMAGE_DIRECTORY_ENTRY_SECURITY)
            .then_some(
                data_directories_offset
                    + IMAGE_DIRECTORY_ENTRY_SECURITY * IMAGE_SIZEOF_DATA_DIRECTORY,
            );
        let layout = HeaderLayout {
            nt_headers,
            file_header: file_header_offset,
            optional_header: optional_header_offset,
            checksum: optional_header_offset + IMAGE_OPTIONAL_HEADER_CHECKSUM_OFFSET,
            data_directories: data_directories_offset,
            security_directory,
            section_table,
            section_table_end,
        };
        Ok(PeFile {
            data,
            dos_header,
            file_header,
            optional_header,
            data_directories,
            sections,
            layout,
        })
    }

    /// The bytes this image was parsed from.
    pub fn data(&self) -> &'a [u8] {
        self.data
    }

    /// The MS-DOS header.
    pub fn dos_header(&self) -> &ImageDosHeader {
        &self.dos_header
    }

    /// The COFF file header.
    pub fn file_header(&self) -> &ImageFileHeader {
        &self.file_header
    }

    /// The optional header (fixed part).
    pub fn optional_header(&self) -> &ImageOptionalHeader {
        &self.optional_header
    }

    /// True for PE32+ (64-bit) images.
    pub fn is_pe32_plus(&self) -> bool {
        self.optional_header.is_pe32_plus()
    }

    /// All data directory entries (`NumberOfRvaAndSizes` of them).
    pub fn data_directories(&self) -> &[ImageDataDirectory] {
        &self.data_directories
    }

    /// Data directory entry `index`, e.g. [`IMAGE_DIRECTORY_ENTRY_SECURITY`].
    pub fn data_directory(&self, index: usize) -> Option<&ImageDataDirectory> {
        self.data_directories.get(index)
    }

    /// File offsets of the headers.
    pub fn layout(&self) -> &HeaderLayout {
        &self.layout
    }

    /// The section table.
    pub fn sections(&self) -> &[Section] {
        &self.sections
    }

    /// The first section called `name` (compared up to the first NUL, as EFI loaders do).
    pub fn section_by_name(&self, name: &str) -> Option<&Section> {
        self.sections
            .iter()
            .find(|s| s.header.name_bytes() == name.as_bytes())
    }

    /// The section's raw data in the file: `SizeOfRawData` bytes at `PointerToRawData`,
    /// including the padding to `FileAlignment`.
    pub fn section_data(&self, section: &Section) -> Result<&'a [u8], Error> {
        let h = &section.header;
        if h.size_of_raw_data == 0 {
            // PointerToRawData is meaningless then (bss-only sections set it to 0 or anything).
            return Ok(&[]);
        }
        cvmkit_measure::read::slice(
            self.data,
            h.pointer_to_raw_data as usize,
            h.size_of_raw_data as usize,
        )
        .ok_or_else(|| Error::SectionPastEnd {
            name: section.display_name(),
            offset: h.pointer_to_raw_data,
            size: h.size_of_raw_data,
            file_len: self.data.len(),
        })
    }

    /// The section's raw data truncated to `VirtualSize`: the bytes the section was built
    /// from, without the file alignment padding. This is what systemd-stub and ukify read as a
    /// section's content. When `VirtualSize` exceeds `SizeOfRawData` the loader appends
    /// [`Section::zero_fill`] zero bytes in memory, which are not part of this slice.
    pub fn section_virtual_data(&self, section: &Section) -> Result<&'a [u8], Error> {
        let raw = self.section_data(section)?;
        Ok(&raw[..raw.len().min(section.header.virtual_size as usize)])
    }

    /// File range of the certificate table (Security directory; a file offset, not an RVA),
    /// if the image is signed.
    pub fn certificate_table(&self) -> Option<Range<usize>> {
        let d = self.data_directory(IMAGE_DIRECTORY_ENTRY_SECURITY)?;
        // Validated against the file length by `parse`.
        (d.size != 0)
            .then(|| d.virtual_address as usize..d.virtual_address as usize + d.size as usize)
    }

    /// True if the Security directory entry is set (the image carries signatures, or claims to).
    pub fn is_signed(&self) -> bool {
        self.data_directory(IMAGE_DIRECTORY_ENTRY_SECURITY)
            .is_some_and(|d| d.virtual_address != 0 || d.size != 0)
    }

    /// File range of the COFF symbol table and the string table after it, when both lie
    /// within the file. Images should not have one; older systemd stubs do.
    pub fn coff_symbol_table(&self) -> Option<Range<usize>> {
        let start = self.file_header.pointer_to_symbol_table as usize;
        if start == 0 {
            return None;
        }
        let symbols =
            (self.file_header.number_of_symbols as usize).checked_mul(IMAGE_SIZEOF_SYMBOL)?;
        let strings_at = start.checked_add(symbols)?;
        // The string table starts with its own size, including that u32; absent means empty.
        let strings = Reader::at(self.data, strings_at)
            .u32()
            .map_or(0, |n| n as usize);
        let end = strings_at.checked_add(strings)?;
        (end <= self.data.len()).then_some(start..end)
    }

    /// The checksum of the file as [`pe_checksum`] computes it, to compare with
    /// `optional_header().check_sum`.
    pub fn computed_checksum(&self) -> u32 {
        pe_checksum(self.data, self.layout.checksum)
    }
}

/// Reads the fixed part of the optional header; returns it and the offset of the data directories.
fn parse_optional_header(c: &mut Reader<'_>) -> Result<(ImageOptionalHeader, usize), Error> {
    let offset = c.pos();
    let magic = c.u16_named("optional header")?;
    let wide = match magic {
        IMAGE_NT_OPTIONAL_HDR32_MAGIC => false,
        IMAGE_NT_OPTIONAL_HDR64_MAGIC => true,
        _ => {
            return Err(Error::UnknownOptionalHeaderMagic {
                magic,
                offset: offset as u64,
            })
        }
    };
    const WHAT: &str = "optional header";
    let word = |c: &mut Reader<'_>| -> Result<u64, Error> {
        if wide {
            Ok(c.u64_named(WHAT)?)
        } else {
            Ok(c.u32_named(WHAT).map(u64::from)?)
        }
    };
    let major_linker_version = c.u8_named(WHAT)?;
    let minor_linker_version = c.u8_named(WHAT)?;
    let size_of_code = c.u32_named(WHAT)?;
    let size_of_initialized_data = c.u32_named(WHAT)?;
    let size_of_uninitialized_data = c.u32_named(WHAT)?;
    let address_of_entry_point = c.u32_named(WHAT)?;
    let base_of_code = c.u32_named(WHAT)?;
    let base_of_data = if wide { None } else { Some(c.u32_named(WHAT)?) };
    let image_base = word(c)?;
    let h = ImageOptionalHeader {
        magic,
        major_linker_version,
        minor_linker_version,
        size_of_code,
        size_of_initialized_data,
        size_of_uninitialized_data,
        address_of_entry_point,
        base_of_code,
        base_of_data,
        image_base,
        section_alignment: c.u32_named(WHAT)?,
        file_alignment: c.u32_named(WHAT)?,
        major_operating_system_version: c.u16_named(WHAT)?,
        minor_operating_system_version: c.u16_named(WHAT)?,
        major_image_version: c.u16_named(WHAT)?,
        minor_image_version: c.u16_named(WHAT)?,
        major_subsystem_version: c.u16_named(WHAT)?,
        minor_subsystem_version: c.u16_named(WHAT)?,
        win32_version_value: c.u32_named(WHAT)?,
        size_of_image: c.u32_named(WHAT)?,
        size_of_headers: c.u32_named(WHAT)?,
        check_sum: c.u32_named(WHAT)?,
        subsystem: c.u16_named(WHAT)?,
        dll_characteristics: c.u16_named(WHAT)?,
        size_of_stack_reserve: word(c)?,
        size_of_stack_commit: word(c)?,
        size_of_heap_reserve: word(c)?,
        size_of_heap_commit: word(c)?,
        loader_flags: c.u32_named(WHAT)?,
        number_of_rva_and_sizes: c.u32_named(WHAT)?,
    };
    Ok((h, c.pos()))
}
