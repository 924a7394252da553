//! MRTD: the build-time measurement of the TD's initial memory, computed from the TDVF metadata.
//!
//! The TDX module hashes, with one running SHA-384, a 128-byte record per `TDH.MEM.PAGE.ADD`
//! (`"MEM.PAGE.ADD"`, GPA as u64 LE at byte 16, zeros) and, per `TDH.MR.EXTEND` of a 256-byte
//! chunk, a 128-byte `"MR.EXTEND"` record with the chunk's GPA followed by the 256 bytes (two more
//! 128-byte blocks) — Intel TDX Module ABI, `TDH.MEM.PAGE.ADD` / `TDH.MR.EXTEND`.
//!
//! Every page of every TDVF section is added (sections with `PAGE_AUG` are skipped, as the TDVF
//! design guide says and dstack-mr and tinfoil tdx-measure do; upstream QEMU 10.1 does not look at
//! the attribute, but no OVMF build sets it); the pages of `MR_EXTEND` sections are also
//! extended, 16 chunks per page. The source of a BFV or CFV page is the firmware image itself,
//! `MemoryDataSize` bytes from `DataOffset` (QEMU's `tdx_finalize_vm` points the section at the
//! flash image, so bytes past `RawDataSize` are the image's next bytes, not zeros); `TEMP_MEM` is
//! zeroed RAM. An extended `TD_HOB` (its contents are the HOB QEMU writes) is refused.
//!
//! Which order the VMM issues these calls in changes MRTD ([`PageOrder`]).

use cvmkit_ovmf::{Firmware, TdvfSection, TdvfSectionType, TdxMetadata};
use cvmkit_measure::{Bank, Hasher};

use crate::error::{label, TdxError};
use crate::event::Digest384;

/// 4 KiB, the unit of `TDH.MEM.PAGE.ADD`.
pub const PAGE_SIZE: u64 = 4096;
/// 256 bytes, the unit of `TDH.MR.EXTEND`.
pub const MR_EXTEND_CHUNK: usize = 256;
/// At most this many pages are added in all (1 GiB; OVMF adds about 600): more is not a firmware
/// this crate spends its time hashing.
const MAX_PAGES: u64 = 1 << 18;

/// The order in which the VMM adds and extends the pages of a TDVF section.
///
/// | VMM | order |
/// |---|---|
/// | QEMU 8.x with the Intel/Canonical TDX patches (older KVM `KVM_TDX_INIT_MEM_REGION`) | [`TwoPass`](PageOrder::TwoPass) |
/// | QEMU 9.x TDX trees (e.g. dstack's 9.2) and upstream QEMU ≥ 10.1 (KVM populates page by page: `TDH.MEM.PAGE.ADD`, then `TDH.MR.EXTEND` of its 16 chunks) | [`Interleaved`](PageOrder::Interleaved), the default |
///
/// The split at QEMU 9 is the one dstack-mr (`Machine::versioned_options`) and tinfoil
/// tdx-measure use; both peers produce the same MRTD as this crate for both orders.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum PageOrder {
    /// Per section: every page added, then every 256-byte chunk of the section extended.
    TwoPass,
    /// Per page: the page added, then its 16 chunks extended (current QEMU/KVM).
    #[default]
    Interleaved,
}

impl PageOrder {
    /// The order QEMU `major.minor` uses (see the table above).
    pub fn for_qemu(major: u32, _minor: u32) -> PageOrder {
        if major < 9 {
            PageOrder::TwoPass
        } else {
            PageOrder::Interleaved
        }
    }
}

/// MRTD of `firmware` (which must carry TDX metadata).
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let data = cvmkit_tdx::testing::tiny_tdvf();
/// let firmware = cvmkit_ovmf::Firmware::parse_named(&data, "OVMF.fd")?;
/// let interleaved = cvmkit_tdx::mrtd(&firmware, cvmkit_tdx::PageOrder::Interleaved)?;
/// let two_pass = cvmkit_tdx::mrtd(&firmware, cvmkit_tdx::PageOrder::TwoPass)?;
/// assert_ne!(interleaved, two_pass);
/// # Ok(()) }
/// ```
pub fn mrtd(firmware: &Firmware<'_>, order: PageOrder) -> Result<Digest384, TdxError> {
    let metadata = firmware.require_tdx_metadata()?;
    mrtd_with_metadata(firmware.data(), firmware.name(), &metadata, order)
}

/// MRTD from already parsed metadata. `data` is the image `metadata` was read from; `name`
/// names it in errors.
pub fn mrtd_with_metadata(
    data: &[u8],
    name: Option<&str>,
    metadata: &TdxMetadata,
    order: PageOrder,
) -> Result<Digest384, TdxError> {
    let unsupported =
        |index: usize, section: &TdvfSection, reason: String| TdxError::UnsupportedSection {
            file: label(name),
            index,
            section: section.section_type.to_string(),
            reason,
        };
    // Check every section before hashing anything.
    let mut sources = Vec::with_capacity(metadata.sections.len());
    let mut total_pages = 0u64;
    for (index, section) in metadata.sections.iter().enumerate() {
        total_pages = total_pages.saturating_add(section.pages());
        if total_pages > MAX_PAGES {
            return Err(unsupported(
                index,
                section,
                format!("brings the TD's initial memory past {MAX_PAGES} pages: not a plausible firmware"),
            ));
        }
        let source: &[u8] = if !section.attributes.mr_extend() || section.attributes.page_aug() {
            &[]
        } else {
            match section.section_type {
                TdvfSectionType::Bfv | TdvfSectionType::Cfv => {
                    let start = usize::try_from(section.data_offset).unwrap_or(usize::MAX);
                    let len = usize::try_from(section.memory_data_size).unwrap_or(usize::MAX);
                    data.get(start..start.saturating_add(len)).ok_or_else(|| {
                        unsupported(
                            index,
                            section,
                            format!(
                                "is extended from image bytes {:#x}+{:#x}, past the end of the {}-byte                                  image (QEMU reads MemoryDataSize bytes from DataOffset)",
                                section.data_offset,
                                section.memory_data_size,
                                data.len()
                            ),
                        )
                    })?
                }
                TdvfSectionType::TempMem => &[], // zeroed RAM
                _ => {
                    return Err(unsupported(
                        index,
                        section,
                        "has MR_EXTEND, but its contents are not known before launch".to_owned(),
                    ))
                }
            }
        };
        sources.push(source);
    }
    // cvmkit_measure::Hasher: OpenSSL's SHA-384 when the CLI has it (see its docs).
    let mut h = Hasher::new(Bank::Sha384);
    for (section, raw) in metadata.sections.iter().zip(sources) {
        if section.attributes.page_aug() {
            continue;
        }
        let pages = section.pages();
        match order {
            PageOrder::TwoPass => {
                for page in 0..pages {
                    page_add(&mut h, section, page);
                }
                if section.attributes.mr_extend() {
                    for page in 0..pages {
                        page_extend(&mut h, section, raw, page);
                    }
                }
            }
            PageOrder::Interleaved => {
                for page in 0..pages {
                    page_add(&mut h, section, page);
                    if section.attributes.mr_extend() {
                        page_extend(&mut h, section, raw, page);
                    }
                }
            }
        }
    }
    Ok(h.finalize().try_into().expect("a SHA-384 digest is 48 bytes"))
}

/// The 128-byte record `op` with `gpa` at byte 16.
fn record(op: &[u8], gpa: u64) -> [u8; 128] {
    let mut r = [0u8; 128];
    r[..op.len()].copy_from_slice(op);
    r[16..24].copy_from_slice(&gpa.to_le_bytes());
    r
}

fn gpa_of(section: &TdvfSection, page: u64) -> u64 {
    // No overflow: the metadata parser checked MemoryAddress + MemoryDataSize.
    section.memory_address + page * PAGE_SIZE
}

fn page_add(h: &mut Hasher, section: &TdvfSection, page: u64) {
    h.update(&record(b"MEM.PAGE.ADD", gpa_of(section, page)));
}

fn page_extend(h: &mut Hasher, section: &TdvfSection, raw: &[u8], page: u64) {
    let base = gpa_of(section, page);
    let start = usize::try_from(page * PAGE_SIZE).unwrap_or(usize::MAX);
    for chunk in 0..(PAGE_SIZE as usize / MR_EXTEND_CHUNK) {
        let offset = start.saturating_add(chunk * MR_EXTEND_CHUNK);
        h.update(&record(
            b"MR.EXTEND",
            base + (chunk * MR_EXTEND_CHUNK) as u64,
        ));
        // `raw` is the section's whole memory, or empty for zeroed memory.
        let mut bytes = [0u8; MR_EXTEND_CHUNK];
        if let Some(tail) = raw.get(offset..) {
            let n = tail.len().min(MR_EXTEND_CHUNK);
            bytes[..n].copy_from_slice(&tail[..n]);
        }
        h.update(&bytes);
    }
}
