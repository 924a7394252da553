/// Why a UKI cannot be built from the given stub and parts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The stub does not parse as a PE image.
    #[error("the stub is not a PE image")]
    Stub(#[source] cvmkit_pe::Error),
    /// The stub is PE32, not PE32+.
    #[error(
        "the stub is a PE32 image, not PE32+: use the x86-64 systemd-stub (linuxx64.efi.stub)"
    )]
    StubNotPe32Plus,
    /// The stub is built for another machine.
    #[error("the stub is for machine 0x{machine:04x}, not x86-64 (0x8664): use linuxx64.efi.stub")]
    StubWrongMachine {
        /// `Machine` of the stub.
        machine: u16,
    },
    /// The stub is not an EFI application.
    #[error("the stub's subsystem is {subsystem}, not 10 (EFI application): use systemd-stub's linuxx64.efi.stub")]
    StubNotEfiApplication {
        /// `Subsystem` of the stub.
        subsystem: u16,
    },
    /// The stub already has a certificate table.
    #[error(
        "the stub is already signed (certificate table at 0x{offset:x}, 0x{size:x} bytes): adding sections \
         would invalidate the signature; use the unsigned stub and sign the finished UKI"
    )]
    StubSigned {
        /// File offset from the Security data directory.
        offset: u32,
        /// Size from the Security data directory.
        size: u32,
    },
    /// `FileAlignment` or `SectionAlignment` is not a power of two.
    #[error("the stub's FileAlignment 0x{file_alignment:x} or SectionAlignment 0x{section_alignment:x} is not a power of two")]
    StubBadAlignment {
        /// `FileAlignment`.
        file_alignment: u32,
        /// `SectionAlignment`.
        section_alignment: u32,
    },
    /// A stub section's raw data is not aligned to `FileAlignment` (stubs stripped with old tools).
    #[error(
        "the stub's section {name} raw data 0x{offset:x}+0x{size:x} is not aligned to its FileAlignment \
         0x{file_alignment:x}; realigning such stubs is not supported, use an unstripped systemd-stub"
    )]
    StubUnaligned {
        /// Section name.
        name: String,
        /// `PointerToRawData`.
        offset: u32,
        /// `SizeOfRawData`.
        size: u32,
        /// `FileAlignment`.
        file_alignment: u32,
    },
    /// The section table cannot grow by the number of new sections.
    #[error(
        "not enough header space for {needed} new section headers: the stub's section table ends at \
         0x{table_end:x} and SizeOfHeaders is 0x{size_of_headers:x}, which leaves room for {available}; \
         drop {} section(s)", needed - available
    )]
    NoHeaderSpace {
        /// Section headers to add.
        needed: usize,
        /// Section headers that fit.
        available: usize,
        /// End of the stub's section table.
        table_end: usize,
        /// `SizeOfHeaders` (rounded up to `FileAlignment` when the first section allows).
        size_of_headers: u32,
    },
    /// The bytes after the section table are not zero, so new headers would overwrite them.
    #[error("the stub's header area after its section table is not empty (non-zero byte at 0x{offset:x}); refusing to overwrite it")]
    HeaderSpaceInUse {
        /// Offset of the first non-zero byte.
        offset: usize,
    },
    /// The kernel is not a PE image.
    #[error("the .linux payload is not a PE image: the kernel must be built with an EFI stub (CONFIG_EFI_STUB)")]
    LinuxNotPe(#[source] cvmkit_pe::Error),
    /// A section name is unusable.
    #[error("bad section name {name:?}: {reason}")]
    BadSectionName {
        /// The name as given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Two new sections have the same name.
    #[error("section {name} is given twice")]
    DuplicateSection {
        /// The name.
        name: String,
    },
    /// A new section has the name of a section of the stub.
    #[error("section {name} already exists in the stub; pick another name{hint}")]
    SectionInStub {
        /// The name.
        name: String,
        /// Extra advice.
        hint: &'static str,
    },
    /// An extra section has no content.
    #[error("section {name} is empty")]
    EmptySection {
        /// The name.
        name: String,
    },
    /// SBAT text that does not start with the `sbat,` header line.
    #[error("SBAT data must begin with a \"sbat,\" header line, found {first_line:?}")]
    SbatMissingHeader {
        /// The first line found.
        first_line: String,
    },
    /// An existing `.sbat` section is not text.
    #[error("the {origin}'s .sbat section is not UTF-8 text")]
    SbatNotText {
        /// "stub" or "kernel".
        origin: &'static str,
    },
    /// The merged SBAT data is larger than the stub's `.sbat` section in the file.
    #[error(
        "not enough space in the stub's .sbat section for the merged SBAT data: it needs 0x{len:x} bytes, \
         the section holds 0x{size_of_raw_data:x}; shorten the SBAT entries"
    )]
    SbatTooLarge {
        /// Length of the merged data.
        len: usize,
        /// `SizeOfRawData` of the stub's `.sbat`.
        size_of_raw_data: u32,
    },
    /// The merged SBAT data would run into the next section in memory.
    #[error(
        "the merged SBAT data (0x{len:x} bytes) does not fit the stub's .sbat section in memory: it starts at \
         RVA 0x{virtual_address:x} and {next} starts at RVA 0x{next_virtual_address:x}, leaving 0x{room:x} bytes; \
         shorten the SBAT entries"
    )]
    SbatOverlaps {
        /// Length of the merged data.
        len: usize,
        /// RVA of `.sbat`.
        virtual_address: u32,
        /// Name of the next section.
        next: String,
        /// Its RVA.
        next_virtual_address: u32,
        /// Bytes available.
        room: u32,
    },
    /// An initrd file given to [`crate::write_uki`] cannot be read.
    #[error("cannot read initrd {path}: {error}")]
    ReadInitrd {
        /// The file.
        path: String,
        /// Why (the I/O error, as text: this type is `Clone` and `Eq`).
        error: String,
    },
    /// An initrd file changed size while [`crate::write_uki`] copied it.
    #[error("initrd {path} changed while the UKI was written: it had {expected} bytes, now {now}")]
    InitrdChanged {
        /// The file.
        path: String,
        /// Its size when the UKI was laid out.
        expected: u64,
        /// What was read.
        now: String,
    },
    /// An initrd file's bytes changed between [`crate::prepare_uki`] and
    /// [`crate::PreparedUki::write`] (the PE checksum summed first no longer holds).
    #[error("an initrd file changed between laying out the UKI and writing it: its PE checksum no longer holds")]
    InitrdBytesChanged,
    /// The output of [`crate::write_uki`] cannot be written.
    #[error("cannot write the UKI: {error}")]
    Write {
        /// The I/O error, as text.
        error: String,
    },
    /// The image would span more than the 4 GiB a PE image's 32-bit sizes and addresses describe.
    #[error(
        "the UKI is too large: it would span {size} bytes in memory, and a PE image holds at most 4 GiB; \
         its largest section, {section}, is {section_size} bytes: compress the initrd (zstd) or keep large files out of it"
    )]
    ImageTooLarge {
        /// The image's size in memory (`SizeOfImage`).
        size: u64,
        /// The largest section's name.
        section: String,
        /// Its size in memory.
        section_size: u64,
    },
    /// An address, size or offset of the result does not fit 32 bits.
    #[error("the UKI is too large: {what} does not fit in 32 bits")]
    TooLarge {
        /// Which field overflowed.
        what: &'static str,
    },
}
