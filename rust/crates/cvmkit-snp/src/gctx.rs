//! The SNP guest context launch digest: a SHA-384 chain over `PAGE_INFO` structures
//! (SEV-SNP firmware ABI specification, §8.17.2 "SNP_LAUNCH_UPDATE", Table 67 "PAGE_INFO").

use cvmkit_measure::Bank;
use sha2::{Digest, Sha384};
use std::fmt;

/// Bytes in a page.
pub const PAGE_SIZE: usize = 4096;
/// Size of an SNP launch digest (SHA-384).
pub const LD_SIZE: usize = 48;
/// `PAGE_INFO.LENGTH`: the structure is 0x70 bytes.
pub const PAGE_INFO_LEN: usize = 0x70;
/// GPA recorded for VMSA pages: `(u64)-1`, page aligned, bits above 51 cleared.
pub const VMSA_GPA: u64 = 0xFFFF_FFFF_F000;

/// `PAGE_INFO.PAGE_TYPE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PageType {
    /// `PAGE_TYPE_NORMAL` = 1: contents measured.
    Normal,
    /// `PAGE_TYPE_VMSA` = 2: a vCPU save area, contents measured.
    Vmsa,
    /// `PAGE_TYPE_ZERO` = 3: zero page, contents digest all zero.
    Zero,
    /// `PAGE_TYPE_UNMEASURED` = 4: contents not measured.
    Unmeasured,
    /// `PAGE_TYPE_SECRETS` = 5: filled by the PSP.
    Secrets,
    /// `PAGE_TYPE_CPUID` = 6: CPUID table checked by the PSP.
    Cpuid,
}

impl PageType {
    /// The u8 encoding in `PAGE_INFO`.
    pub const fn raw(self) -> u8 {
        match self {
            PageType::Normal => 1,
            PageType::Vmsa => 2,
            PageType::Zero => 3,
            PageType::Unmeasured => 4,
            PageType::Secrets => 5,
            PageType::Cpuid => 6,
        }
    }
}

impl fmt::Display for PageType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PageType::Normal => "NORMAL",
            PageType::Vmsa => "VMSA",
            PageType::Zero => "ZERO",
            PageType::Unmeasured => "UNMEASURED",
            PageType::Secrets => "SECRETS",
            PageType::Cpuid => "CPUID",
        })
    }
}

/// The guest context's running launch digest (`GCTX.LD`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gctx {
    ld: [u8; LD_SIZE],
}

impl Default for Gctx {
    fn default() -> Self {
        Gctx::new()
    }
}

impl Gctx {
    /// A fresh context: the digest starts as 48 zero bytes.
    pub const fn new() -> Gctx {
        Gctx { ld: [0; LD_SIZE] }
    }

    /// A context resumed from a digest, e.g. a precomputed OVMF hash.
    pub const fn with_seed(ld: [u8; LD_SIZE]) -> Gctx {
        Gctx { ld }
    }

    /// The current launch digest.
    pub const fn ld(&self) -> &[u8; LD_SIZE] {
        &self.ld
    }

    /// Extends the digest with one `PAGE_INFO`: `LD = SHA-384(LD ‖ CONTENTS ‖ LENGTH ‖ PAGE_TYPE ‖
    /// IMI_PAGE ‖ VMPL3..1_PERMS ‖ 0 ‖ GPA)`, with `IMI_PAGE` and the VMPL permissions zero.
    pub fn update(&mut self, page_type: PageType, gpa: u64, contents: &[u8; LD_SIZE]) {
        let mut info = [0u8; PAGE_INFO_LEN];
        info[..48].copy_from_slice(&self.ld);
        info[48..96].copy_from_slice(contents);
        info[96..98].copy_from_slice(&(PAGE_INFO_LEN as u16).to_le_bytes());
        info[98] = page_type.raw();
        // 99: IMI_PAGE, 100..103: VMPL3/2/1 permissions, 103: reserved — all zero.
        info[104..112].copy_from_slice(&gpa.to_le_bytes());
        self.ld = Sha384::digest(info).into();
    }

    /// Measures `data` (a whole number of pages) as NORMAL pages from `gpa` up, hashing each page
    /// once. Returns the number of pages. A trailing partial page is ignored: callers check sizes.
    pub fn update_normal_pages(&mut self, gpa: u64, data: &[u8]) -> u64 {
        let contents = page_digests(data);
        for (i, c) in contents.iter().enumerate() {
            self.update(PageType::Normal, gpa.wrapping_add((i * PAGE_SIZE) as u64), c);
        }
        contents.len() as u64
    }

    /// Measures `len` bytes (a whole number of pages) from `gpa` as pages of `page_type` whose
    /// contents digest is zero (ZERO, UNMEASURED, SECRETS, CPUID).
    pub fn update_contentless_pages(&mut self, page_type: PageType, gpa: u64, len: u64) -> u64 {
        let pages = len / PAGE_SIZE as u64;
        for i in 0..pages {
            self.update(
                page_type,
                gpa.wrapping_add(i * PAGE_SIZE as u64),
                &[0; LD_SIZE],
            );
        }
        pages
    }

    /// Measures one VMSA page whose contents digest is `contents` (SHA-384 of the page).
    pub fn update_vmsa_page(&mut self, contents: &[u8; LD_SIZE]) {
        self.update(PageType::Vmsa, VMSA_GPA, contents);
    }
}

/// Pages at or above which [`page_digests`] spreads the work over the cores (a thread costs
/// tens of microseconds; 256 pages take about a millisecond).
const PARALLEL_PAGES: usize = 256;

/// The SHA-384 of each whole page of `data`, in order. The pages' digests are independent
/// (only the `PAGE_INFO` chain over them is sequential), so large runs are split over the
/// cores: the firmware's 4 MiB is most of a launch digest's work.
fn page_digests(data: &[u8]) -> Vec<[u8; LD_SIZE]> {
    let hash = |pages: &[u8]| -> Vec<[u8; LD_SIZE]> {
        // cvmkit_measure's SHA-384: OpenSSL's when the CLI has it (faster on x86-64).
        let digest = |p: &[u8]| -> [u8; LD_SIZE] { Bank::Sha384.hash(p).try_into().expect("48 bytes") };
        pages.chunks_exact(PAGE_SIZE).map(digest).collect()
    };
    let pages = data.len() / PAGE_SIZE;
    if pages < PARALLEL_PAGES {
        return hash(data);
    }
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(pages / (PARALLEL_PAGES / 2)).max(1);
    let per = pages.div_ceil(threads) * PAGE_SIZE;
    let whole = &data[..pages * PAGE_SIZE];
    std::thread::scope(|scope| {
        let mut parts = whole.chunks(per);
        let first = parts.next().unwrap_or_default();
        let rest: Vec<_> = parts.map(|part| scope.spawn(move || hash(part))).collect();
        let mut out = hash(first);
        for r in rest {
            out.extend(r.join().unwrap_or_else(|e| std::panic::resume_unwind(e)));
        }
        out
    })
}
