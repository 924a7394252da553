//! Assembles a Unified Kernel Image: systemd-stub with the kernel, initrd, command line and
//! metadata added as PE sections, the way systemd's `ukify` does it, in pure Rust.
//!
//! [`build_uki`] follows `pe_add_sections()` and `merge_sbat()` of `src/ukify/ukify.py`:
//!
//! - New sections in ukify's order, `.osrel .cmdline .uname .initrd`, then the extra
//!   sections, then `.linux` last. Empty parts are left out, as ukify skips empty content.
//! - Each new section's raw data starts after the stub's file data, aligned to `FileAlignment`
//!   and zero-padded to it; its address follows the highest stub section, aligned to
//!   `SectionAlignment`. `VirtualSize` is the content length, except for `.linux`, which gets the
//!   kernel's `SizeOfImage` when asked (see [`LinuxVirtualSize`]; the default is the file size).
//! - `.linux` is `CNT_CODE | MEM_READ` (0x40000020), all others `CNT_INITIALIZED_DATA | MEM_READ`
//!   (0x40000040), exactly ukify's flags.
//! - A COFF symbol table at the end of the stub (systemd 252 stubs have one) is dropped and
//!   `IMAGE_FILE_LOCAL_SYMS_STRIPPED` set.
//! - `NumberOfSections`, `SizeOfImage`, `SizeOfInitializedData` (plus each new `VirtualSize`,
//!   as ukify) and `SizeOfHeaders` (rounded up to `FileAlignment` when that is free) are
//!   updated; unlike ukify, `TimeDateStamp` is set to the given timestamp and `CheckSum` is
//!   computed instead of zeroed.
//! - Given SBAT text is merged with the stub's (and the kernel's) `.sbat` into the stub's
//!   existing `.sbat` section, see [`merge_sbat`].
//!
//! The output depends only on the inputs and the timestamp. Each input byte is copied once.
//!
//! ```
//! use cvmkit_uki::{join_initrds, merge_sbat};
//!
//! // Several initrds are each padded to 4 bytes, as ukify and the kernel expect.
//! assert_eq!(join_initrds(&[b"abc", b"de"]), b"abc\0de\0\0");
//!
//! let stub_sbat = b"sbat,1,SBAT Version,sbat,1,https://github.com/rhboot/shim/blob/main/SBAT.md\n\
//!                   systemd,1,The systemd Developers,systemd,252,https://systemd.io/\n\0\0";
//! let merged = merge_sbat(&[stub_sbat], "sbat,1,SBAT Version,sbat,1,x\nuki,1,UKI,uki,1,https://uapi-group.org/\n")?;
//! assert_eq!(
//!     merged,
//!     "sbat,1,SBAT Version,sbat,1,https://github.com/rhboot/shim/blob/main/SBAT.md\n\
//!      systemd,1,The systemd Developers,systemd,252,https://systemd.io/\n\
//!      uki,1,UKI,uki,1,https://uapi-group.org/\n\0"
//! );
//! # Ok::<(), cvmkit_uki::Error>(())
//! ```
//!
//! Building a UKI:
//!
//! ```no_run
//! use cvmkit_uki::{build_uki, UkiParts};
//!
//! let stub = std::fs::read("linuxx64.efi.stub")?;
//! let kernel = std::fs::read("vmlinuz")?;
//! let initrd = std::fs::read("initrd.img")?;
//! let parts = UkiParts {
//!     linux: &kernel,
//!     initrds: vec![&initrd],
//!     cmdline: Some("console=ttyS0"),
//!     ..UkiParts::default()
//! };
//! let uki = build_uki(&stub, &parts, 0)?;
//! std::fs::write("uki.efi", uki)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod error;

use cvmkit_pe::pe::*;
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;

use cvmkit_pe::{pe_checksum, PeFile, Section};

pub use error::Error;

/// The generic first line of every SBAT section.
pub const SBAT_HEADER: &str =
    "sbat,1,SBAT Version,sbat,1,https://github.com/rhboot/shim/blob/main/SBAT.md";

/// `Characteristics` of data sections: `IMAGE_SCN_CNT_INITIALIZED_DATA | IMAGE_SCN_MEM_READ`.
pub const DATA_SECTION_CHARACTERISTICS: u32 = IMAGE_SCN_CNT_INITIALIZED_DATA | IMAGE_SCN_MEM_READ; // 0x40000040
/// `Characteristics` of `.linux`: `IMAGE_SCN_CNT_CODE | IMAGE_SCN_MEM_READ`, as ukify sets
/// ("old kernels that use EFI handover protocol will be executed inline"); no `MEM_EXECUTE`.
pub const LINUX_SECTION_CHARACTERISTICS: u32 = IMAGE_SCN_CNT_CODE | IMAGE_SCN_MEM_READ; // 0x40000020

/// The contents of a UKI besides the stub. Empty parts (`Some("")`, no initrds) are left out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UkiParts<'a> {
    /// The kernel, a PE image (`vmlinuz` with the EFI stub), possibly signed: `.linux`.
    pub linux: &'a [u8],
    /// Initrds, concatenated into `.initrd` by [`join_initrds`].
    pub initrds: Vec<&'a [u8]>,
    /// Kernel command line: `.cmdline` (stored as given, no NUL added, as ukify does).
    pub cmdline: Option<&'a str>,
    /// os-release file contents: `.osrel`.
    pub os_release: Option<&'a [u8]>,
    /// Kernel release (`uname -r`): `.uname`.
    pub uname: Option<&'a str>,
    /// SBAT entries to merge into the stub's `.sbat`; must start with a `sbat,` header line.
    pub sbat: Option<&'a str>,
    /// Further sections (name, content), placed after the standard ones and before `.linux`.
    pub extra: Vec<(String, &'a [u8])>,
}

/// The `VirtualSize` given to `.linux`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum LinuxVirtualSize {
    /// `max(len, kernel SizeOfImage)`, as current ukify (which uses `SizeOfImage`): lets newer
    /// stubs run the kernel in place. Stubs that measure a section's `VirtualSize` bytes from
    /// memory (systemd 252's `pe_memory_locate_sections()` does) then measure the kernel
    /// followed by zeros, which no `systemd-measure --linux=FILE` predicts.
    SizeOfImage,
    /// The kernel's file length, as older ukify and `objcopy --add-section` give. The default:
    /// every stub version measures `VirtualSize` bytes of each section (zero fill included), so
    /// with this choice PCR 11 covers exactly the kernel file, and `systemd-measure --linux=FILE`
    /// of any version predicts it (checked by a real boot with a software TPM in cvmkit-tpm).
    #[default]
    FileSize,
}

/// Options of [`build_uki_with`]; start from `UkiOptions::default()`.
///
/// ```
/// use cvmkit_uki::{LinuxVirtualSize, UkiOptions};
/// let opts = UkiOptions::default().with_linux_virtual_size(LinuxVirtualSize::FileSize);
/// assert_eq!(opts.linux_virtual_size, LinuxVirtualSize::FileSize);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct UkiOptions {
    /// `VirtualSize` of `.linux`.
    pub linux_virtual_size: LinuxVirtualSize,
}

impl UkiOptions {
    /// Sets [`UkiOptions::linux_virtual_size`].
    pub fn with_linux_virtual_size(mut self, v: LinuxVirtualSize) -> Self {
        self.linux_virtual_size = v;
        self
    }
}

/// Builds a UKI from `stub` (systemd-stub for x86-64, unsigned) and `parts`, with
/// `TimeDateStamp` = `timestamp` (pass `SOURCE_DATE_EPOCH`, or 0), and default [`UkiOptions`].
pub fn build_uki(stub: &[u8], parts: &UkiParts<'_>, timestamp: u32) -> Result<Vec<u8>, Error> {
    build_uki_with(stub, parts, timestamp, &UkiOptions::default())
}

/// Concatenates initrds as ukify's `join_initrds()`: a single initrd is used as is; several
/// are each padded with NULs to a multiple of 4 bytes (the last one too).
pub fn join_initrds(initrds: &[&[u8]]) -> Vec<u8> {
    initrd_chunks(initrds).concat()
}

/// The pieces of [`join_initrds`]'s result, borrowed, so that building does not copy twice.
fn initrd_chunks<'a>(initrds: &[&'a [u8]]) -> Vec<&'a [u8]> {
    const ZEROS: [u8; 3] = [0; 3];
    if initrds.len() == 1 {
        return initrds.to_vec();
    }
    let mut chunks = Vec::with_capacity(initrds.len() * 2);
    for i in initrds {
        chunks.push(*i);
        chunks.push(&ZEROS[..(4 - i.len() % 4) % 4]);
    }
    chunks
}

/// Merges SBAT data as ukify's `merge_sbat()`: [`SBAT_HEADER`], then the entries (all lines
/// but the first) of each existing `.sbat` section in `pe_sections` (raw section data;
/// trailing NULs are ignored, and sections whose first line does not start with `sbat,` are
/// skipped, as ukify does), then the entries of `text`, newline-joined, ending in `"\n\0"`.
///
/// `text` must start with a `sbat,` line (ukify skips it with a warning instead; here it is
/// an error so that a typo is not silently dropped).
pub fn merge_sbat(pe_sections: &[&[u8]], text: &str) -> Result<String, Error> {
    merge_sbat_from(pe_sections.iter().map(|d| ("stub", *d)), text)
}

fn merge_sbat_from<'a>(
    pe_sections: impl IntoIterator<Item = (&'static str, &'a [u8])>,
    text: &str,
) -> Result<String, Error> {
    let mut entries: Vec<&str> = Vec::new();
    for (origin, data) in pe_sections {
        let end = data.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
        let s = std::str::from_utf8(&data[..end]).map_err(|_| Error::SbatNotText { origin })?;
        let mut lines = s.lines();
        if lines.next().is_some_and(|l| l.starts_with("sbat,")) {
            entries.extend(lines);
        }
    }
    let mut lines = text.lines();
    match lines.next() {
        Some(first) if first.starts_with("sbat,") => entries.extend(lines),
        first => {
            return Err(Error::SbatMissingHeader {
                first_line: first.unwrap_or_default().to_string(),
            })
        }
    }
    Ok(format!("{SBAT_HEADER}\n{}\n\0", entries.join("\n")))
}

/// A piece of a new section's content.
#[derive(Debug, Clone)]
enum Chunk<'a> {
    Bytes(&'a [u8]),
    Owned(Vec<u8>),
    /// A file of this length, copied when the UKI is written ([`write_uki`]).
    File(&'a Path, u64),
}

impl Chunk<'_> {
    fn len(&self) -> u64 {
        match self {
            Chunk::Bytes(b) => b.len() as u64,
            Chunk::Owned(b) => b.len() as u64,
            Chunk::File(_, n) => *n,
        }
    }
}

/// A section to append: its content as borrowed pieces, and where it goes.
struct NewSection<'a> {
    name: String,
    chunks: Vec<Chunk<'a>>,
    len: u64,
    virtual_size: u64,
    characteristics: u32,
    // Filled in by the layout pass.
    pointer_to_raw_data: u64,
    size_of_raw_data: u64,
    virtual_address: u64,
}

impl<'a> NewSection<'a> {
    fn new(name: &str, chunks: Vec<Chunk<'a>>, characteristics: u32) -> Self {
        let len = chunks.iter().map(Chunk::len).sum();
        NewSection {
            name: name.to_string(),
            chunks,
            len,
            virtual_size: len,
            characteristics,
            pointer_to_raw_data: 0,
            size_of_raw_data: 0,
            virtual_address: 0,
        }
    }
}

fn align_up(x: u64, align: u64) -> u64 {
    // `align` is a power of two (checked) and `x` < 2^63 (sums of slice lengths).
    (x + align - 1) & !(align - 1)
}

fn to_u32(v: u64, what: &'static str) -> Result<u32, Error> {
    u32::try_from(v).map_err(|_| Error::TooLarge { what })
}

fn check_name(name: &str) -> Result<(), Error> {
    let bad = |reason| {
        Err(Error::BadSectionName {
            name: name.to_string(),
            reason,
        })
    };
    if name.is_empty() {
        return bad("empty");
    }
    if name.len() > 8 {
        // Longer names would need the COFF string table, which images do not have.
        return bad("longer than 8 bytes");
    }
    if !name.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return bad("not printable ASCII");
    }
    Ok(())
}

fn check_stub(pe: &PeFile<'_>) -> Result<(), Error> {
    if !pe.is_pe32_plus() {
        return Err(Error::StubNotPe32Plus);
    }
    let machine = pe.file_header().machine;
    if machine != IMAGE_FILE_MACHINE_AMD64 {
        return Err(Error::StubWrongMachine { machine });
    }
    let subsystem = pe.optional_header().subsystem;
    if subsystem != IMAGE_SUBSYSTEM_EFI_APPLICATION {
        return Err(Error::StubNotEfiApplication { subsystem });
    }
    if pe.is_signed() {
        let d = pe
            .data_directory(IMAGE_DIRECTORY_ENTRY_SECURITY)
            .copied()
            .unwrap_or_default();
        return Err(Error::StubSigned {
            offset: d.virtual_address,
            size: d.size,
        });
    }
    let oh = pe.optional_header();
    if !oh.file_alignment.is_power_of_two() || !oh.section_alignment.is_power_of_two() {
        return Err(Error::StubBadAlignment {
            file_alignment: oh.file_alignment,
            section_alignment: oh.section_alignment,
        });
    }
    for s in pe.sections() {
        let h = &s.header;
        if h.size_of_raw_data != 0
            && (h.pointer_to_raw_data % oh.file_alignment != 0
                || h.size_of_raw_data % oh.file_alignment != 0)
        {
            return Err(Error::StubUnaligned {
                name: s.name().into_owned(),
                offset: h.pointer_to_raw_data,
                size: h.size_of_raw_data,
                file_alignment: oh.file_alignment,
            });
        }
    }
    Ok(())
}

/// [`build_uki`] with options.
pub fn build_uki_with(
    stub: &[u8],
    parts: &UkiParts<'_>,
    timestamp: u32,
    options: &UkiOptions,
) -> Result<Vec<u8>, Error> {
    let plan = plan(stub, parts, &[], timestamp, options)?;
    let total = usize::try_from(plan.total).map_err(|_| Error::TooLarge {
        what: "the file size",
    })?;
    // Write, in the same order.
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(&plan.head);
    for (at, chunks) in &plan.sections {
        out.resize(*at as usize, 0);
        for c in chunks {
            match c {
                Chunk::Bytes(b) => out.extend_from_slice(b),
                Chunk::Owned(b) => out.extend_from_slice(b),
                Chunk::File(..) => unreachable!("plan() got no files"),
            }
        }
    }
    out.resize(total, 0);
    let checksum = pe_checksum(&out, plan.checksum_at);
    out[plan.checksum_at..plan.checksum_at + 4].copy_from_slice(&checksum.to_le_bytes());
    Ok(out)
}

/// [`build_uki_with`] written to `out` (at its current position) without holding the initrds
/// in memory: `initrd_files` follow `parts.initrds` in `.initrd` and are copied from their files
/// as the UKI is written; the PE checksum is summed on the way and written last, seeking back.
/// The bytes are those [`build_uki_with`] returns for the same parts with the files' bytes.
/// Returns the UKI's length.
pub fn write_uki<W: Write + Seek>(
    stub: &[u8],
    parts: &UkiParts<'_>,
    initrd_files: &[&Path],
    timestamp: u32,
    options: &UkiOptions,
    out: &mut W,
) -> Result<u64, Error> {
    let mut files = Vec::with_capacity(initrd_files.len());
    for p in initrd_files {
        let len = std::fs::metadata(p).map_err(|e| read_error(p, e))?.len();
        files.push((*p, len));
    }
    let plan = plan(stub, parts, &files, timestamp, options)?;
    let write_err = |e: std::io::Error| Error::Write { error: e.to_string() };
    let start = out.stream_position().map_err(write_err)?;
    let mut w = ChecksumWriter { inner: &mut *out, sum: 0, at: 0 };
    write_body(&plan, &mut w)?;
    let checksum = w.checksum();
    out.seek(SeekFrom::Start(start + plan.checksum_at as u64)).map_err(write_err)?;
    out.write_all(&checksum.to_le_bytes()).map_err(write_err)?;
    out.seek(SeekFrom::Start(start + plan.total)).map_err(write_err)?;
    Ok(plan.total)
}

/// A UKI laid out before any of it is written ([`prepare_uki`]): its length, its PE checksum
/// (every initrd file read once to sum it), and a view of the bytes a reader needs before the
/// rest passes by ([`PreparedUki::skeleton`]). [`PreparedUki::write`] then writes the file front
/// to back, the checksum already in place, so that every byte is final when written: what
/// `cvmkit build` needs to hash the UKI as it is written rather than read it back.
pub struct PreparedUki<'a> {
    plan: Plan<'a>,
    checksum: u32,
}

/// Lays out the UKI [`write_uki`] writes for the same arguments and sums it (see [`PreparedUki`]).
pub fn prepare_uki<'a>(
    stub: &'a [u8],
    parts: &UkiParts<'a>,
    initrd_files: &[&'a Path],
    timestamp: u32,
    options: &UkiOptions,
) -> Result<PreparedUki<'a>, Error> {
    let mut files = Vec::with_capacity(initrd_files.len());
    for p in initrd_files {
        let len = std::fs::metadata(p).map_err(|e| read_error(p, e))?.len();
        files.push((*p, len));
    }
    let plan = plan(stub, parts, &files, timestamp, options)?;
    // The checksum of exactly what `write_body` will write, the same code summing it.
    let mut sink = std::io::sink();
    let mut w = ChecksumWriter { inner: &mut sink, sum: 0, at: 0 };
    write_body(&plan, &mut w)?;
    let checksum = w.checksum();
    Ok(PreparedUki { plan, checksum })
}

impl PreparedUki<'_> {
    /// The UKI's length in bytes.
    pub fn len(&self) -> u64 {
        self.plan.total
    }

    /// Whether the UKI is empty (never: it has headers).
    pub fn is_empty(&self) -> bool {
        self.plan.total == 0
    }

    /// The UKI's bytes as far as a reader needs them before the rest passes by (zero elsewhere):
    /// the headers with the checksum, every section held in memory, of `.linux` the kernel's PE
    /// headers (at least 64 KiB), none of the initrd files. `None` when the length does not fit
    /// in memory's address space.
    pub fn skeleton(&self) -> Option<Vec<u8>> {
        let total = usize::try_from(self.plan.total).ok()?;
        // Zeroed: the pages under the initrd files are never touched, so never made resident.
        let mut out = vec![0u8; total];
        out[..self.plan.head.len()].copy_from_slice(&self.plan.head);
        self.put_checksum(&mut out[..self.plan.head.len()]);
        for (at, chunks) in &self.plan.sections {
            let mut at = *at as usize;
            for c in chunks {
                match c {
                    // The kernel's PE headers: what a reader of the UKI needs of `.linux`.
                    Chunk::Bytes(b) if std::ptr::eq(*b, self.plan.linux.0) => {
                        let n = self.plan.linux.1;
                        out[at..at + n].copy_from_slice(&b[..n]);
                    }
                    Chunk::Bytes(b) => out[at..at + b.len()].copy_from_slice(b),
                    Chunk::Owned(b) => out[at..at + b.len()].copy_from_slice(b),
                    Chunk::File(..) => {}
                }
                at += c.len() as usize;
            }
        }
        Some(out)
    }

    fn put_checksum(&self, head: &mut [u8]) {
        let at = self.plan.checksum_at;
        head[at..at + 4].copy_from_slice(&self.checksum.to_le_bytes());
    }

    /// Writes the UKI to `out` front to back (no seeking): the bytes of [`write_uki`]. Refuses an
    /// initrd file that changed since [`prepare_uki`] summed it. Returns the UKI's length.
    pub fn write<W: Write>(&self, out: &mut W) -> Result<u64, Error> {
        let mut head = self.plan.head.clone();
        self.put_checksum(&mut head);
        let mut w = ChecksumWriter { inner: out, sum: 0, at: 0 };
        w.write_all(&head).map_err(|e| Error::Write { error: e.to_string() })?;
        // Summed as `prepare_uki` summed it: with the checksum field zero.
        for (i, b) in self.checksum.to_le_bytes().into_iter().enumerate() {
            let shift = if (self.plan.checksum_at + i) % 2 == 1 { 8 } else { 0 };
            w.sum -= u64::from(b) << shift;
        }
        write_sections(&self.plan, &mut w)?;
        if w.checksum() != self.checksum {
            return Err(Error::InitrdBytesChanged);
        }
        Ok(self.plan.total)
    }
}

/// The headers (checksum zero), then [`write_sections`].
fn write_body<W: Write>(plan: &Plan<'_>, w: &mut ChecksumWriter<'_, W>) -> Result<(), Error> {
    w.write_all(&plan.head).map_err(|e| Error::Write { error: e.to_string() })?;
    write_sections(plan, w)
}

/// Every section at its offset, then zeros to the end of the file.
fn write_sections<W: Write>(plan: &Plan<'_>, w: &mut ChecksumWriter<'_, W>) -> Result<(), Error> {
    let write_err = |e: std::io::Error| Error::Write { error: e.to_string() };
    let mut buf = Vec::new();
    for (at, chunks) in &plan.sections {
        w.write_zeros(at - w.at).map_err(write_err)?;
        for c in chunks {
            match c {
                Chunk::Bytes(b) => w.write_all(b).map_err(write_err)?,
                Chunk::Owned(b) => w.write_all(b).map_err(write_err)?,
                Chunk::File(path, len) => copy_file(path, *len, w, &mut buf)?,
            }
        }
    }
    w.write_zeros(plan.total - w.at).map_err(write_err)
}

fn read_error(path: &Path, e: std::io::Error) -> Error {
    Error::ReadInitrd { path: path.display().to_string(), error: e.to_string() }
}

/// Copies exactly `len` bytes of the file at `path` into `w`, refusing a file whose size
/// changed since the layout.
fn copy_file<W: Write>(path: &Path, len: u64, w: &mut ChecksumWriter<'_, W>, buf: &mut Vec<u8>) -> Result<(), Error> {
    use std::io::Read;
    buf.resize(1 << 20, 0);
    let mut f = std::fs::File::open(path).map_err(|e| read_error(path, e))?;
    let mut done = 0u64;
    loop {
        let want = (buf.len() as u64).min(len - done).max(1) as usize;
        let n = match f.read(&mut buf[..want]) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(read_error(path, e)),
        };
        if n == 0 && done == len {
            return Ok(());
        }
        if n == 0 || done + n as u64 > len {
            let now = if n == 0 { format!("{done}") } else { "more".into() };
            return Err(Error::InitrdChanged { path: path.display().to_string(), expected: len, now });
        }
        w.write_all(&buf[..n]).map_err(|e| Error::Write { error: e.to_string() })?;
        done += n as u64;
    }
}

/// A writer summing what passes as the PE checksum does: 16-bit little-endian words (an odd
/// last byte as a low byte), the `CheckSum` field written as zero.
struct ChecksumWriter<'w, W: Write> {
    inner: &'w mut W,
    sum: u64,
    at: u64,
}

impl<W: Write> ChecksumWriter<'_, W> {
    fn write_zeros(&mut self, mut n: u64) -> std::io::Result<()> {
        static ZEROS: [u8; 65536] = [0; 65536];
        while n > 0 {
            let k = n.min(ZEROS.len() as u64) as usize;
            self.write_all(&ZEROS[..k])?;
            n -= k as u64;
        }
        Ok(())
    }

    /// `pe_checksum` of everything written (a u64 cannot overflow below 2^48 words).
    fn checksum(&self) -> u32 {
        let mut sum = self.sum;
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        (sum as u32).wrapping_add(self.at as u32)
    }
}

impl<W: Write> Write for ChecksumWriter<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        let mut data = &buf[..n];
        if self.at % 2 == 1 {
            if let Some((&b, rest)) = data.split_first() {
                self.sum += u64::from(b) << 8;
                data = rest;
            }
        }
        let mut words = data.chunks_exact(2);
        for w in &mut words {
            self.sum += u64::from(u16::from_le_bytes([w[0], w[1]]));
        }
        if let [last] = words.remainder() {
            self.sum += u64::from(*last);
        }
        self.at += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// A UKI laid out: the stub's bytes up to its end with the headers (and `.sbat`) rewritten
/// and `CheckSum` zero, then each new section's content at its file offset, zero-padded to
/// `total` bytes.
struct Plan<'a> {
    head: Vec<u8>,
    sections: Vec<(u64, Vec<Chunk<'a>>)>,
    total: u64,
    checksum_at: usize,
    /// The kernel, and how many of its first bytes hold its PE headers and section table.
    linux: (&'a [u8], usize),
}

fn plan<'a>(
    stub: &'a [u8],
    parts: &UkiParts<'a>,
    initrd_files: &[(&'a Path, u64)],
    timestamp: u32,
    options: &UkiOptions,
) -> Result<Plan<'a>, Error> {
    let pe = PeFile::parse(stub).map_err(Error::Stub)?;
    check_stub(&pe)?;
    let kernel = PeFile::parse(parts.linux).map_err(Error::LinuxNotPe)?;
    let linux_headers = (kernel.optional_header().size_of_headers as usize)
        .max(kernel.layout().section_table_end)
        .max(64 << 10)
        .min(parts.linux.len());
    let oh = pe.optional_header();
    let file_alignment = u64::from(oh.file_alignment);
    let section_alignment = u64::from(oh.section_alignment);

    // SBAT first: it borrows nothing from the new sections, and they may borrow it.
    let stub_sbat = pe.section_by_name(".sbat").copied();
    let sbat = match parts.sbat {
        None => None,
        Some(text) => {
            let mut sources = Vec::new();
            if let Some(s) = &stub_sbat {
                sources.push(("stub", pe.section_data(s).map_err(Error::Stub)?));
            }
            if let Some(s) = kernel.section_by_name(".sbat") {
                sources.push(("kernel", kernel.section_data(s).map_err(Error::LinuxNotPe)?));
            }
            Some(merge_sbat_from(sources, text)?)
        }
    };

    // The new sections, in ukify's order.
    let mut new: Vec<NewSection<'_>> = Vec::new();
    let data = DATA_SECTION_CHARACTERISTICS;
    let standard = [
        (".osrel", parts.os_release),
        (".cmdline", parts.cmdline.map(str::as_bytes)),
        (".uname", parts.uname.map(str::as_bytes)),
    ];
    for (name, content) in standard {
        if let Some(c) = content.filter(|c| !c.is_empty()) {
            new.push(NewSection::new(name, vec![Chunk::Bytes(c)], data));
        }
    }
    // As `initrd_chunks`, with the files after the in-memory initrds.
    let mut initrd: Vec<Chunk<'a>> = Vec::new();
    let count = parts.initrds.len() + initrd_files.len();
    const ZEROS: [u8; 3] = [0; 3];
    let pieces = parts.initrds.iter().map(|b| Chunk::Bytes(b)).chain(initrd_files.iter().map(|(p, n)| Chunk::File(p, *n)));
    for c in pieces {
        let pad = (4 - c.len() % 4) % 4;
        initrd.push(c);
        if count > 1 {
            initrd.push(Chunk::Bytes(&ZEROS[..pad as usize]));
        }
    }
    if initrd.iter().any(|c| c.len() != 0) {
        new.push(NewSection::new(".initrd", initrd, data));
    }
    for (name, content) in &parts.extra {
        check_name(name)?;
        if content.is_empty() {
            return Err(Error::EmptySection { name: name.clone() });
        }
        new.push(NewSection::new(name, vec![Chunk::Bytes(content)], data));
    }
    let sbat_in_stub = match (&sbat, &stub_sbat) {
        (Some(text), None) => {
            // Stubs without .sbat (older than systemd 250) get a new one, before .linux.
            new.push(NewSection::new(".sbat", vec![Chunk::Owned(text.as_bytes().to_vec())], data));
            false
        }
        (Some(_), Some(_)) => true,
        (None, _) => false,
    };
    let mut linux = NewSection::new(".linux", vec![Chunk::Bytes(parts.linux)], LINUX_SECTION_CHARACTERISTICS);
    if options.linux_virtual_size == LinuxVirtualSize::SizeOfImage {
        linux.virtual_size = linux
            .len
            .max(u64::from(kernel.optional_header().size_of_image));
    }
    new.push(linux);

    for (i, n) in new.iter().enumerate() {
        if new[..i].iter().any(|m| m.name == n.name) {
            return Err(Error::DuplicateSection {
                name: n.name.clone(),
            });
        }
        if pe.section_by_name(&n.name).is_some() {
            let hint = if n.name == ".sbat" {
                "; pass SBAT entries as `sbat` to merge them into it"
            } else {
                ""
            };
            return Err(Error::SectionInStub {
                name: n.name.clone(),
                hint,
            });
        }
    }

    // The stub's .sbat, replaced in place (ukify: "It should be small enough to fit in the
    // existing section, so just swap the data").
    let mut sbat_header = None;
    if let (true, Some(text), Some(s)) = (sbat_in_stub, &sbat, &stub_sbat) {
        let len = text.len();
        if len > s.header.size_of_raw_data as usize {
            return Err(Error::SbatTooLarge {
                len,
                size_of_raw_data: s.header.size_of_raw_data,
            });
        }
        // ukify does not check this, but a longer VirtualSize would overlap the next section
        // in memory (systemd 252 puts .sdmagic 0x100 bytes after .sbat), which makes an
        // invalid image.
        let next = pe
            .sections()
            .iter()
            .filter(|o| o.header.virtual_address > s.header.virtual_address)
            .min_by_key(|o| o.header.virtual_address);
        if let Some(next) = next {
            let room = next.header.virtual_address - s.header.virtual_address;
            if len as u64 > u64::from(room) {
                return Err(Error::SbatOverlaps {
                    len,
                    virtual_address: s.header.virtual_address,
                    next: next.name().into_owned(),
                    next_virtual_address: next.header.virtual_address,
                    room,
                });
            }
        }
        let mut h = s.header;
        h.virtual_size = len as u32;
        sbat_header = Some((*s, h));
    }

    // Layout: reserve every file range and address first.
    let sections_end = pe
        .sections()
        .iter()
        .map(|s| s.raw_range().end)
        .max()
        .unwrap_or(0);
    let symbols = pe.coff_symbol_table().filter(|r| {
        r.end == stub.len() && r.start as u64 >= sections_end.max(u64::from(oh.size_of_headers))
    });
    let stub_end = symbols.as_ref().map_or(stub.len(), |r| r.start);

    let first_raw_data = pe
        .sections()
        .iter()
        .filter(|s| s.header.size_of_raw_data != 0)
        .map(|s| u64::from(s.header.pointer_to_raw_data))
        .min()
        .unwrap_or(stub_end as u64);
    let rounded = align_up(u64::from(oh.size_of_headers), file_alignment);
    let size_of_headers = if rounded <= first_raw_data {
        rounded
    } else {
        u64::from(oh.size_of_headers)
    };
    let table_end = pe.layout().section_table_end;
    let available =
        (size_of_headers as usize).saturating_sub(table_end) / IMAGE_SIZEOF_SECTION_HEADER;
    if new.len() > available {
        return Err(Error::NoHeaderSpace {
            needed: new.len(),
            available,
            table_end,
            size_of_headers: size_of_headers as u32,
        });
    }
    let header_area = stub
        .get(table_end..table_end + new.len() * IMAGE_SIZEOF_SECTION_HEADER)
        .unwrap_or_default();
    if let Some(i) = header_area.iter().position(|&b| b != 0) {
        return Err(Error::HeaderSpaceInUse {
            offset: table_end + i,
        });
    }

    let mut virtual_end = 0u64;
    for s in pe.sections() {
        let vs = match &sbat_header {
            Some((old, h)) if old.index == s.index => h.virtual_size,
            _ => s.header.virtual_size,
        };
        virtual_end = virtual_end.max(u64::from(s.header.virtual_address) + u64::from(vs));
    }
    let mut file_offset = align_up(stub_end as u64, file_alignment);
    let mut virtual_address = align_up(virtual_end, section_alignment);
    let mut size_of_initialized_data = u64::from(oh.size_of_initialized_data);
    for n in &mut new {
        n.pointer_to_raw_data = file_offset;
        n.size_of_raw_data = align_up(n.len, file_alignment);
        n.virtual_address = virtual_address;
        file_offset += n.size_of_raw_data;
        virtual_address = align_up(virtual_address + n.virtual_size, section_alignment);
        size_of_initialized_data += n.virtual_size;
    }
    let size_of_image = virtual_address;
    // The usual way to get here is a huge initrd: say which section and what to do, rather than
    // which 32-bit field overflowed.
    if size_of_image > u64::from(u32::MAX) {
        if let Some(big) = new.iter().max_by_key(|n| n.virtual_size) {
            return Err(Error::ImageTooLarge {
                size: size_of_image,
                section: big.name.clone(),
                section_size: big.virtual_size,
            });
        }
    }

    let mut headers = Vec::with_capacity(new.len());
    for n in &new {
        let mut name = [0u8; 8];
        name[..n.name.len()].copy_from_slice(n.name.as_bytes());
        headers.push(ImageSectionHeader {
            name,
            virtual_size: to_u32(n.virtual_size, "a section's VirtualSize")?,
            virtual_address: to_u32(n.virtual_address, "a section's VirtualAddress")?,
            size_of_raw_data: to_u32(n.size_of_raw_data, "a section's SizeOfRawData")?,
            pointer_to_raw_data: to_u32(n.pointer_to_raw_data, "a section's PointerToRawData")?,
            characteristics: n.characteristics,
            ..ImageSectionHeader::default()
        });
    }
    let mut file_header = *pe.file_header();
    file_header.number_of_sections = u16::try_from(new.len())
        .ok()
        .and_then(|n| file_header.number_of_sections.checked_add(n))
        .ok_or(Error::TooLarge {
            what: "NumberOfSections",
        })?;
    file_header.time_date_stamp = timestamp;
    if symbols.is_some() {
        file_header.pointer_to_symbol_table = 0;
        file_header.number_of_symbols = 0;
        file_header.characteristics |= IMAGE_FILE_LOCAL_SYMS_STRIPPED;
    }
    let mut optional_header = *oh;
    optional_header.size_of_image = to_u32(size_of_image, "SizeOfImage")?;
    optional_header.size_of_initialized_data =
        to_u32(size_of_initialized_data, "SizeOfInitializedData")?;
    optional_header.size_of_headers = size_of_headers as u32;
    optional_header.check_sum = 0;

    // Everything rewritten lies in the stub's headers and sections, before `stub_end`; new
    // section headers past it would land in the first new section's data.
    if table_end + new.len() * IMAGE_SIZEOF_SECTION_HEADER > stub_end {
        return Err(Error::NoHeaderSpace {
            needed: new.len(),
            available: stub_end.saturating_sub(table_end) / IMAGE_SIZEOF_SECTION_HEADER,
            table_end,
            size_of_headers: size_of_headers as u32,
        });
    }
    let mut out = stub[..stub_end].to_vec();
    let layout = pe.layout();
    out[layout.file_header..layout.file_header + IMAGE_SIZEOF_FILE_HEADER]
        .copy_from_slice(&file_header.to_bytes());
    let oh_bytes = optional_header.to_bytes();
    out[layout.optional_header..layout.optional_header + oh_bytes.len()].copy_from_slice(&oh_bytes);
    for (i, h) in headers.iter().enumerate() {
        let at = table_end + i * IMAGE_SIZEOF_SECTION_HEADER;
        out[at..at + IMAGE_SIZEOF_SECTION_HEADER].copy_from_slice(&h.to_bytes());
    }
    if let (Some((old, h)), Some(text)) = (&sbat_header, &sbat) {
        write_sbat(&mut out, old, h, text.as_bytes());
    }
    out[layout.checksum..layout.checksum + 4].fill(0);
    Ok(Plan {
        head: out,
        sections: new.into_iter().map(|n| (n.pointer_to_raw_data, n.chunks)).collect(),
        total: file_offset,
        checksum_at: layout.checksum,
        linux: (parts.linux, linux_headers),
    })
}

/// Replaces the stub's `.sbat` data (zero-padded to its `SizeOfRawData`) and its header.
fn write_sbat(out: &mut [u8], old: &Section, header: &ImageSectionHeader, text: &[u8]) {
    let start = old.header.pointer_to_raw_data as usize;
    let raw = &mut out[start..start + old.header.size_of_raw_data as usize];
    raw.fill(0);
    raw[..text.len()].copy_from_slice(text);
    out[old.header_offset..old.header_offset + IMAGE_SIZEOF_SECTION_HEADER]
        .copy_from_slice(&header.to_bytes());
}
