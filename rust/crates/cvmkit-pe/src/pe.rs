//! On-disk structures and constants of the PE/COFF format.
//!
//! Field names are the spec's (`SizeOfImage` becomes `size_of_image`) so that each one can be
//! looked up in the Microsoft "PE Format" document. All multi-byte fields are little-endian.

/// `e_magic` of an MS-DOS header.
pub const IMAGE_DOS_SIGNATURE: u16 = 0x5A4D; // "MZ"
/// Signature that `e_lfanew` points at.
pub const IMAGE_NT_SIGNATURE: [u8; 4] = *b"PE\0\0";
/// Offset of `e_lfanew` in the MS-DOS header.
pub const IMAGE_DOS_E_LFANEW_OFFSET: usize = 0x3c;

/// Optional header magic of a PE32 image.
pub const IMAGE_NT_OPTIONAL_HDR32_MAGIC: u16 = 0x10b;
/// Optional header magic of a PE32+ (64-bit) image.
pub const IMAGE_NT_OPTIONAL_HDR64_MAGIC: u16 = 0x20b;

/// `Machine`: x86.
pub const IMAGE_FILE_MACHINE_I386: u16 = 0x014c;
/// `Machine`: x86-64.
pub const IMAGE_FILE_MACHINE_AMD64: u16 = 0x8664;
/// `Machine`: 64-bit ARM.
pub const IMAGE_FILE_MACHINE_ARM64: u16 = 0xaa64;

/// File `Characteristics`: the image is executable.
pub const IMAGE_FILE_EXECUTABLE_IMAGE: u16 = 0x0002;
/// File `Characteristics`: COFF line numbers were removed (deprecated).
pub const IMAGE_FILE_LINE_NUMS_STRIPPED: u16 = 0x0004;
/// File `Characteristics`: COFF symbol table entries for local symbols were removed (deprecated).
pub const IMAGE_FILE_LOCAL_SYMS_STRIPPED: u16 = 0x0008;
/// File `Characteristics`: debugging information was removed.
pub const IMAGE_FILE_DEBUG_STRIPPED: u16 = 0x0200;

/// `Subsystem`: EFI application.
pub const IMAGE_SUBSYSTEM_EFI_APPLICATION: u16 = 10;
/// `Subsystem`: EFI boot service driver.
pub const IMAGE_SUBSYSTEM_EFI_BOOT_SERVICE_DRIVER: u16 = 11;
/// `Subsystem`: EFI runtime driver.
pub const IMAGE_SUBSYSTEM_EFI_RUNTIME_DRIVER: u16 = 12;

/// Data directory index of the certificate table (Authenticode signatures).
///
/// Unlike every other entry its `VirtualAddress` is a file offset, because the table is not
/// loaded into memory.
pub const IMAGE_DIRECTORY_ENTRY_SECURITY: usize = 4;
/// Data directory index of the base relocation table.
pub const IMAGE_DIRECTORY_ENTRY_BASERELOC: usize = 5;

/// Section `Characteristics`: the section contains executable code.
pub const IMAGE_SCN_CNT_CODE: u32 = 0x0000_0020;
/// Section `Characteristics`: the section contains initialized data.
pub const IMAGE_SCN_CNT_INITIALIZED_DATA: u32 = 0x0000_0040;
/// Section `Characteristics`: the section contains uninitialized data.
pub const IMAGE_SCN_CNT_UNINITIALIZED_DATA: u32 = 0x0000_0080;
/// Section `Characteristics`: the section can be discarded as needed.
pub const IMAGE_SCN_MEM_DISCARDABLE: u32 = 0x0200_0000;
/// Section `Characteristics`: the section can be executed as code.
pub const IMAGE_SCN_MEM_EXECUTE: u32 = 0x2000_0000;
/// Section `Characteristics`: the section can be read.
pub const IMAGE_SCN_MEM_READ: u32 = 0x4000_0000;
/// Section `Characteristics`: the section can be written to.
pub const IMAGE_SCN_MEM_WRITE: u32 = 0x8000_0000;

/// Size of the COFF file header.
pub const IMAGE_SIZEOF_FILE_HEADER: usize = 20;
/// Size of one section table entry.
pub const IMAGE_SIZEOF_SECTION_HEADER: usize = 40;
/// Size of one COFF symbol table record.
pub const IMAGE_SIZEOF_SYMBOL: usize = 18;
/// Size of one data directory entry.
pub const IMAGE_SIZEOF_DATA_DIRECTORY: usize = 8;
/// Size of the PE32 optional header without its data directories.
pub const IMAGE_SIZEOF_OPTIONAL_HEADER32: usize = 96;
/// Size of the PE32+ optional header without its data directories.
pub const IMAGE_SIZEOF_OPTIONAL_HEADER64: usize = 112;
/// Offset of `CheckSum` in both optional header formats.
pub const IMAGE_OPTIONAL_HEADER_CHECKSUM_OFFSET: usize = 64;

/// The two fields of the MS-DOS header that a PE loader reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageDosHeader {
    /// Magic number, [`IMAGE_DOS_SIGNATURE`].
    pub e_magic: u16,
    /// File offset of the `PE\0\0` signature.
    pub e_lfanew: u32,
}

/// The COFF file header that follows `PE\0\0`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageFileHeader {
    /// Target machine, e.g. [`IMAGE_FILE_MACHINE_AMD64`].
    pub machine: u16,
    /// Number of entries in the section table.
    pub number_of_sections: u16,
    /// Seconds since 1970 when the file was created (0 or `SOURCE_DATE_EPOCH` when reproducible).
    pub time_date_stamp: u32,
    /// File offset of the COFF symbol table, 0 if none (images should have none).
    pub pointer_to_symbol_table: u32,
    /// Number of records in the COFF symbol table.
    pub number_of_symbols: u32,
    /// Size of the optional header, including its data directories.
    pub size_of_optional_header: u16,
    /// `IMAGE_FILE_*` flags.
    pub characteristics: u16,
}

impl ImageFileHeader {
    /// Serializes the header as it appears in the file.
    pub fn to_bytes(&self) -> [u8; IMAGE_SIZEOF_FILE_HEADER] {
        let mut b = [0u8; IMAGE_SIZEOF_FILE_HEADER];
        b[0..2].copy_from_slice(&self.machine.to_le_bytes());
        b[2..4].copy_from_slice(&self.number_of_sections.to_le_bytes());
        b[4..8].copy_from_slice(&self.time_date_stamp.to_le_bytes());
        b[8..12].copy_from_slice(&self.pointer_to_symbol_table.to_le_bytes());
        b[12..16].copy_from_slice(&self.number_of_symbols.to_le_bytes());
        b[16..18].copy_from_slice(&self.size_of_optional_header.to_le_bytes());
        b[18..20].copy_from_slice(&self.characteristics.to_le_bytes());
        b
    }
}

/// The optional header of a PE32 or PE32+ image, without its data directories.
///
/// Fields that are 32 bits wide in PE32 and 64 bits in PE32+ are held as `u64`;
/// `base_of_data` exists only in PE32.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageOptionalHeader {
    /// [`IMAGE_NT_OPTIONAL_HDR32_MAGIC`] or [`IMAGE_NT_OPTIONAL_HDR64_MAGIC`].
    pub magic: u16,
    /// Linker major version.
    pub major_linker_version: u8,
    /// Linker minor version.
    pub minor_linker_version: u8,
    /// Sum of the sizes of all code sections.
    pub size_of_code: u32,
    /// Sum of the sizes of all initialized data sections.
    pub size_of_initialized_data: u32,
    /// Sum of the sizes of all uninitialized data sections.
    pub size_of_uninitialized_data: u32,
    /// Entry point RVA.
    pub address_of_entry_point: u32,
    /// RVA of the start of the code.
    pub base_of_code: u32,
    /// RVA of the start of the data (PE32 only).
    pub base_of_data: Option<u32>,
    /// Preferred load address.
    pub image_base: u64,
    /// Alignment of sections in memory.
    pub section_alignment: u32,
    /// Alignment of section raw data in the file.
    pub file_alignment: u32,
    /// Required OS major version.
    pub major_operating_system_version: u16,
    /// Required OS minor version.
    pub minor_operating_system_version: u16,
    /// Image major version (the Linux EFI stub stores its boot protocol version here).
    pub major_image_version: u16,
    /// Image minor version.
    pub minor_image_version: u16,
    /// Subsystem major version.
    pub major_subsystem_version: u16,
    /// Subsystem minor version.
    pub minor_subsystem_version: u16,
    /// Reserved, must be 0.
    pub win32_version_value: u32,
    /// Size of the image in memory, a multiple of `section_alignment`.
    pub size_of_image: u32,
    /// Size of all headers, rounded up to `file_alignment`; Authenticode hashes exactly this much.
    pub size_of_headers: u32,
    /// Image checksum, see [`crate::pe_checksum`].
    pub check_sum: u32,
    /// Subsystem, e.g. [`IMAGE_SUBSYSTEM_EFI_APPLICATION`].
    pub subsystem: u16,
    /// `IMAGE_DLLCHARACTERISTICS_*` flags.
    pub dll_characteristics: u16,
    /// Stack reserve size.
    pub size_of_stack_reserve: u64,
    /// Stack commit size.
    pub size_of_stack_commit: u64,
    /// Heap reserve size.
    pub size_of_heap_reserve: u64,
    /// Heap commit size.
    pub size_of_heap_commit: u64,
    /// Reserved, must be 0.
    pub loader_flags: u32,
    /// Number of data directory entries that follow.
    pub number_of_rva_and_sizes: u32,
}

impl ImageOptionalHeader {
    /// True for PE32+ (64-bit) images.
    pub fn is_pe32_plus(&self) -> bool {
        self.magic == IMAGE_NT_OPTIONAL_HDR64_MAGIC
    }

    /// Size of the fixed part, before the data directories.
    pub fn fixed_size(&self) -> usize {
        if self.is_pe32_plus() {
            IMAGE_SIZEOF_OPTIONAL_HEADER64
        } else {
            IMAGE_SIZEOF_OPTIONAL_HEADER32
        }
    }

    /// Serializes the fixed part (without data directories) as it appears in the file.
    ///
    /// PE32 fields that are narrower than the `u64` held here are truncated, as they were
    /// read from 32-bit fields in the first place.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(IMAGE_SIZEOF_OPTIONAL_HEADER64);
        let wide = self.is_pe32_plus();
        let word = |b: &mut Vec<u8>, v: u64| {
            if wide {
                b.extend_from_slice(&v.to_le_bytes());
            } else {
                b.extend_from_slice(&(v as u32).to_le_bytes());
            }
        };
        b.extend_from_slice(&self.magic.to_le_bytes());
        b.push(self.major_linker_version);
        b.push(self.minor_linker_version);
        b.extend_from_slice(&self.size_of_code.to_le_bytes());
        b.extend_from_slice(&self.size_of_initialized_data.to_le_bytes());
        b.extend_from_slice(&self.size_of_uninitialized_data.to_le_bytes());
        b.extend_from_slice(&self.address_of_entry_point.to_le_bytes());
        b.extend_from_slice(&self.base_of_code.to_le_bytes());
        if !wide {
            b.extend_from_slice(&self.base_of_data.unwrap_or(0).to_le_bytes());
        }
        word(&mut b, self.image_base);
        b.extend_from_slice(&self.section_alignment.to_le_bytes());
        b.extend_from_slice(&self.file_alignment.to_le_bytes());
        b.extend_from_slice(&self.major_operating_system_version.to_le_bytes());
        b.extend_from_slice(&self.minor_operating_system_version.to_le_bytes());
        b.extend_from_slice(&self.major_image_version.to_le_bytes());
        b.extend_from_slice(&self.minor_image_version.to_le_bytes());
        b.extend_from_slice(&self.major_subsystem_version.to_le_bytes());
        b.extend_from_slice(&self.minor_subsystem_version.to_le_bytes());
        b.extend_from_slice(&self.win32_version_value.to_le_bytes());
        b.extend_from_slice(&self.size_of_image.to_le_bytes());
        b.extend_from_slice(&self.size_of_headers.to_le_bytes());
        b.extend_from_slice(&self.check_sum.to_le_bytes());
        b.extend_from_slice(&self.subsystem.to_le_bytes());
        b.extend_from_slice(&self.dll_characteristics.to_le_bytes());
        word(&mut b, self.size_of_stack_reserve);
        word(&mut b, self.size_of_stack_commit);
        word(&mut b, self.size_of_heap_reserve);
        word(&mut b, self.size_of_heap_commit);
        b.extend_from_slice(&self.loader_flags.to_le_bytes());
        b.extend_from_slice(&self.number_of_rva_and_sizes.to_le_bytes());
        debug_assert_eq!(b.len(), self.fixed_size());
        b
    }
}

/// One data directory entry: an RVA and a size (a file offset for the certificate table).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ImageDataDirectory {
    /// RVA of the table, or its file offset for [`IMAGE_DIRECTORY_ENTRY_SECURITY`].
    pub virtual_address: u32,
    /// Size of the table in bytes.
    pub size: u32,
}

/// One section table entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ImageSectionHeader {
    /// Name, NUL-padded to 8 bytes (not NUL-terminated when exactly 8 bytes long).
    pub name: [u8; 8],
    /// Size of the section in memory (the spec's `Misc.VirtualSize`); may be smaller than
    /// `size_of_raw_data`, which is rounded up to `FileAlignment`.
    pub virtual_size: u32,
    /// RVA of the section when loaded.
    pub virtual_address: u32,
    /// Size of the section's data in the file, a multiple of `FileAlignment`.
    pub size_of_raw_data: u32,
    /// File offset of the section's data.
    pub pointer_to_raw_data: u32,
    /// File offset of COFF relocations (0 in images).
    pub pointer_to_relocations: u32,
    /// File offset of COFF line numbers (deprecated, 0).
    pub pointer_to_linenumbers: u32,
    /// Number of COFF relocations.
    pub number_of_relocations: u16,
    /// Number of COFF line numbers.
    pub number_of_linenumbers: u16,
    /// `IMAGE_SCN_*` flags.
    pub characteristics: u32,
}

impl ImageSectionHeader {
    /// Serializes the entry as it appears in the section table.
    pub fn to_bytes(&self) -> [u8; IMAGE_SIZEOF_SECTION_HEADER] {
        let mut b = [0u8; IMAGE_SIZEOF_SECTION_HEADER];
        b[0..8].copy_from_slice(&self.name);
        b[8..12].copy_from_slice(&self.virtual_size.to_le_bytes());
        b[12..16].copy_from_slice(&self.virtual_address.to_le_bytes());
        b[16..20].copy_from_slice(&self.size_of_raw_data.to_le_bytes());
        b[20..24].copy_from_slice(&self.pointer_to_raw_data.to_le_bytes());
        b[24..28].copy_from_slice(&self.pointer_to_relocations.to_le_bytes());
        b[28..32].copy_from_slice(&self.pointer_to_linenumbers.to_le_bytes());
        b[32..34].copy_from_slice(&self.number_of_relocations.to_le_bytes());
        b[34..36].copy_from_slice(&self.number_of_linenumbers.to_le_bytes());
        b[36..40].copy_from_slice(&self.characteristics.to_le_bytes());
        b
    }

    /// The name up to its first NUL, as raw bytes.
    pub fn name_bytes(&self) -> &[u8] {
        let end = self
            .name
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(self.name.len());
        &self.name[..end]
    }
}
