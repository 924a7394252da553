//! AMD SEV-SNP, SEV-ES and SEV launch digests, computed ahead of boot from the firmware, the vCPU
//! shape and (for measured direct boot) the kernel, initrd and command line.
//!
//! This is what a verifier pins: the `MEASUREMENT` of an SNP attestation report
//! ([`snp_launch_digest`], 48 bytes), or the SEV/SEV-ES launch measurement digest
//! ([`seves_launch_digest`], [`sev_launch_digest`], 32 bytes). Semantics follow the reference tool
//! sev-snp-measure 0.0.13 (modes `snp`, `snp:ovmf-hash`, `seves`, `sev`; VMM types QEMU, ec2, gce)
//! and reproduce its results:
//!
//! 1. SNP: the firmware's pages as NORMAL pages ending at 4 GiB (or a precomputed
//!    [`ovmf_hash`]), then each SEV metadata section in firmware order (SEC memory as ZERO pages,
//!    UNMEASURED on GCE; the secrets page; the CPUID page, last on EC2; the kernel hashes page,
//!    holding the [`SevHashes`] table when a kernel is given, else ZERO), then one VMSA per vCPU.
//! 2. SEV-ES: SHA-256 over the firmware, the padded hashes table (with a kernel), the VMSAs.
//! 3. SEV: SHA-256 over the firmware and the padded hashes table (with a kernel).
//!
//! Each page's contents are hashed once; the BSP and AP VMSAs are hashed once each whatever the
//! vCPU count. [`snp_launch_measure`] also returns the measured steps for an event-style listing.
//!
//! # Differences from sev-snp-measure 0.0.13
//!
//! Same digests on the same inputs (checked by `tests/peer.rs` over a matrix of firmware, vCPU
//! types and counts, guest features, VMM types, modes and direct-boot inputs), and the same error
//! text, as a prefix, where it refuses an input (e.g. a kernel with a firmware that has no
//! SNP_KERNEL_HASHES section). Inputs the peer accepts or crashes on that are refused here with
//! an error: 0 vCPUs; an initrd or command line without a kernel (its CLI refuses these too);
//! several vCPUs with an AP reset EIP of 0; inconsistent footer-table lengths; metadata sections
//! or a hashes table that do not fit their pages. EC2 VMSAs carry RDX = 0x600 as in 0.0.13
//! (virtee/sev's tests still expect the older RDX = 0 values). The `snp:svsm` mode is not
//! implemented.
//!
//! ```
//! use cvmkit_snp::{cvmkit_ovmf::Firmware, snp_launch_digest, SnpArgs, VcpuType, VmmType};
//!
//! // The last 4 KiB of an edk2-stable202405 AmdSev OVMF build, used whole as sev-snp-measure's
//! // tests do.
//! let bytes = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"),
//!     "/../cvmkit-ovmf/tests/fixtures/ovmf_AmdSev_suffix.bin"))?;
//! let firmware = Firmware::parse_named(&bytes, "ovmf_AmdSev_suffix.bin")?;
//! let args = SnpArgs {
//!     vcpus: 4,
//!     vcpu: Some(VcpuType::EpycV4.into()),
//!     guest_features: 0x21,
//!     vmm_type: VmmType::Qemu,
//!     kernel: Some(&b""[..]),
//!     append: Some(""),
//!     ..SnpArgs::default()
//! };
//! let digest = snp_launch_digest(&firmware, &args)?;
//! assert_eq!(
//!     cvmkit_snp::hex(&digest),
//!     "4953b1fb416fa874980e8442b3706d345926d5f38879134e00813c5d7abcbe78eafe7b422907be0b4698e2414a631942"
//! );
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod document;
mod error;
mod gctx;
mod sev_hashes;
mod vcpu;
mod vmsa;

pub use cvmkit_ovmf;
use cvmkit_ovmf::{Firmware, SevMetadataSection, SevSectionType};
pub use document::{document, Sources};
pub use error::SnpError;
pub use gctx::{Gctx, PageType, LD_SIZE, PAGE_INFO_LEN, PAGE_SIZE, VMSA_GPA};
pub use sev_hashes::{
    sha256_file, SevHashes, SEV_CMDLINE_ENTRY_GUID, SEV_HASH_TABLE_ENTRY_SIZE, SEV_HASH_TABLE_HEADER_GUID,
    SEV_HASH_TABLE_PADDED_SIZE, SEV_HASH_TABLE_SIZE, SEV_INITRD_ENTRY_GUID, SEV_KERNEL_ENTRY_GUID,
};
pub use vcpu::{cpu_sig, UnknownVcpuType, UnknownVmmType, Vcpu, VcpuType, VmmType};
pub use vmsa::{vmsa_page, BSP_EIP};

use sha2::{Digest, Sha256, Sha384};
use std::fmt;
use std::str::FromStr;

/// The firmware is mapped so that it ends here.
pub const FOUR_GIB: u64 = 1 << 32;

/// Inputs of a launch digest besides the firmware.
///
/// Which fields matter depends on the mode: SNP uses all; SEV-ES ignores `guest_features` (its
/// VMSAs have SEV_FEATURES 0) and rejects `ovmf_hash`; SEV uses only `kernel`, `initrd` and `append`.
#[derive(Debug, Clone, Default)]
pub struct SnpArgs<'a> {
    /// Number of vCPUs (one VMSA each), at least 1.
    pub vcpus: u32,
    /// The vCPU type or CPUID signature. QEMU needs it (it goes in RDX of each VMSA); EC2 and GCE
    /// ignore it.
    pub vcpu: Option<Vcpu>,
    /// SEV_FEATURES of each VMSA (SNP's guest policy features: 0x1 SNPActive, 0x21 adds DebugSwap).
    pub guest_features: u64,
    /// The VMM launching the guest.
    pub vmm_type: VmmType,
    /// The kernel for measured direct boot (QEMU `-kernel`), as given to the VMM.
    pub kernel: Option<&'a [u8]>,
    /// The initrd (QEMU `-initrd`); only with a kernel. Absent hashes as empty.
    pub initrd: Option<&'a [u8]>,
    /// The command line (QEMU `-append`); only with a kernel. Measured with a trailing NUL.
    pub append: Option<&'a str>,
    /// A precomputed [`ovmf_hash`] (SNP only): the firmware's pages are then not re-hashed.
    pub ovmf_hash: Option<[u8; LD_SIZE]>,
    /// The kernel hashes computed by the caller from the files (streamed, in bounded memory), in
    /// place of hashing `kernel` and `initrd`, which are then `None` (`append` is still recorded).
    pub hashed: Option<Hashed>,
}

/// Kernel hashes of measured direct boot computed from the files ([`SnpArgs::hashed`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hashed {
    /// The digests ([`SevHashes::from_digests`]).
    pub hashes: SevHashes,
    /// Whether an initrd was given (its input is then recorded).
    pub initrd: bool,
}

impl SnpArgs<'_> {
    /// The kernel hashes, `None` without a kernel; an error for an initrd or command line without one.
    pub fn sev_hashes(&self) -> Result<Option<SevHashes>, SnpError> {
        if let Some(h) = self.hashed {
            return Ok(Some(h.hashes));
        }
        match self.kernel {
            Some(kernel) => Ok(Some(SevHashes::new(kernel, self.initrd, self.append))),
            None if self.initrd.is_some() => Err(SnpError::NoKernel { what: "initrd" }),
            None if self.append.is_some_and(|a| !a.is_empty()) => Err(SnpError::NoKernel {
                what: "command line",
            }),
            None => Ok(None),
        }
    }
}

impl SnpArgs<'_> {
    /// Whether a kernel is booted directly (given as bytes or as [`SnpArgs::hashed`]).
    pub fn has_kernel(&self) -> bool {
        self.kernel.is_some() || self.hashed.is_some()
    }

    /// Whether an initrd is given (as bytes or in [`SnpArgs::hashed`]).
    pub fn has_initrd(&self) -> bool {
        self.initrd.is_some() || self.hashed.is_some_and(|h| h.initrd)
    }
}

/// The guest mode, as sev-snp-measure's `--mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SevMode {
    /// SEV: SHA-256 launch digest over firmware (+ hashes table).
    Sev,
    /// SEV-ES: SHA-256 launch digest over firmware (+ hashes table) and VMSAs.
    SevEs,
    /// SEV-SNP: SHA-384 launch digest over PAGE_INFO structures.
    Snp,
}

impl fmt::Display for SevMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SevMode::Sev => "sev",
            SevMode::SevEs => "seves",
            SevMode::Snp => "snp",
        })
    }
}

/// The text is not a mode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown SEV mode '{0}': expected sev, seves or snp")]
pub struct UnknownSevMode(String);

impl FromStr for SevMode {
    type Err = UnknownSevMode;

    /// The spellings sev-snp-measure accepts: `sev`, `seves`/`sev-es`, `snp`/`sev-snp`, any case.
    fn from_str(s: &str) -> Result<SevMode, UnknownSevMode> {
        match s.to_ascii_lowercase().as_str() {
            "sev" => Ok(SevMode::Sev),
            "seves" | "sev-es" => Ok(SevMode::SevEs),
            "snp" | "sev-snp" => Ok(SevMode::Snp),
            _ => Err(UnknownSevMode(s.to_owned())),
        }
    }
}

/// A launch digest: 48 bytes for SNP, 32 for SEV and SEV-ES.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LaunchDigest {
    /// SNP (SHA-384).
    Snp([u8; 48]),
    /// SEV or SEV-ES (SHA-256).
    Sev([u8; 32]),
}

impl LaunchDigest {
    /// The digest bytes.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            LaunchDigest::Snp(d) => d,
            LaunchDigest::Sev(d) => d,
        }
    }
}

impl fmt::Display for LaunchDigest {
    /// Lower-case hex, as sev-snp-measure prints it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex(self.as_bytes()))
    }
}

pub use cvmkit_measure::hex;

/// Parses a precomputed OVMF hash (96 hex digits), as given to sev-snp-measure's `--snp-ovmf-hash`.
pub fn parse_ovmf_hash(text: &str) -> Result<[u8; LD_SIZE], SnpError> {
    let bad = || SnpError::BadOvmfHash(text.to_owned());
    let t = text.trim();
    if t.len() != 2 * LD_SIZE || !t.is_ascii() {
        return Err(bad());
    }
    let mut out = [0u8; LD_SIZE];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(t.get(2 * i..2 * i + 2).ok_or_else(bad)?, 16).map_err(|_| bad())?;
    }
    Ok(out)
}

/// The launch digest of `mode`: dispatches to [`sev_launch_digest`], [`seves_launch_digest`] or
/// [`snp_launch_digest`].
pub fn launch_digest(
    mode: SevMode,
    firmware: &Firmware<'_>,
    args: &SnpArgs<'_>,
) -> Result<LaunchDigest, SnpError> {
    Ok(match mode {
        SevMode::Sev => LaunchDigest::Sev(sev_launch_digest(firmware, args)?),
        SevMode::SevEs => LaunchDigest::Sev(seves_launch_digest(firmware, args)?),
        SevMode::Snp => LaunchDigest::Snp(snp_launch_digest(firmware, args)?),
    })
}

/// One measured step of an SNP launch: a run of pages of one type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeasuredStep {
    /// GPA of the first page ([`VMSA_GPA`] for VMSAs).
    pub gpa: u64,
    /// Number of pages.
    pub pages: u64,
    /// Their page type.
    pub page_type: PageType,
    /// What they are, e.g. `SNP_SECRETS` or `VMSA vCPU 1 (AP, EIP 0x80b004)`.
    pub label: String,
    /// The launch digest after this step.
    pub digest: [u8; LD_SIZE],
}

/// An SNP launch digest with the steps that produced it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnpMeasurement {
    /// The final launch digest (the attestation report's `MEASUREMENT`).
    pub digest: [u8; LD_SIZE],
    /// The steps, in measurement order.
    pub steps: Vec<MeasuredStep>,
}

/// GPA of the first firmware byte when the firmware ends at 4 GiB; error unless it is a whole
/// number of pages that fits.
fn firmware_gpa(firmware: &Firmware<'_>) -> Result<u64, SnpError> {
    let len = firmware.data().len();
    let err = || SnpError::FirmwareSize {
        file: firmware.name().map(str::to_owned),
        len,
    };
    if len % PAGE_SIZE != 0 {
        return Err(err());
    }
    FOUR_GIB
        .checked_sub(u64::try_from(len).map_err(|_| err())?)
        .ok_or_else(err)
}

/// The SNP launch digest after the firmware pages alone: what sev-snp-measure
/// `--mode snp:ovmf-hash` prints and `--snp-ovmf-hash` takes back.
pub fn ovmf_hash(firmware: &Firmware<'_>) -> Result<[u8; LD_SIZE], SnpError> {
    // As sev-snp-measure, reject firmware whose SEV metadata is malformed even here.
    firmware.sev_metadata()?;
    let gpa = firmware_gpa(firmware)?;
    let mut gctx = Gctx::new();
    gctx.update_normal_pages(gpa, firmware.data());
    Ok(*gctx.ld())
}

/// The SEV-SNP launch digest (`MEASUREMENT` in the attestation report).
pub fn snp_launch_digest(
    firmware: &Firmware<'_>,
    args: &SnpArgs<'_>,
) -> Result<[u8; LD_SIZE], SnpError> {
    snp_measure_inner(firmware, args, None, args.sev_hashes()?)
}

/// [`snp_launch_digest`] with the ordered list of measured steps.
pub fn snp_launch_measure(
    firmware: &Firmware<'_>,
    args: &SnpArgs<'_>,
) -> Result<SnpMeasurement, SnpError> {
    snp_launch_measure_hashed(firmware, args, args.sev_hashes()?)
}

/// [`snp_launch_measure`] with the kernel hashes already computed (`args.sev_hashes()`), so
/// that a caller recording the kernel's and initrd's SHA-256 does not hash them twice.
pub fn snp_launch_measure_hashed(
    firmware: &Firmware<'_>,
    args: &SnpArgs<'_>,
    hashes: Option<SevHashes>,
) -> Result<SnpMeasurement, SnpError> {
    let mut steps = Vec::new();
    let digest = snp_measure_inner(firmware, args, Some(&mut steps), hashes)?;
    Ok(SnpMeasurement { digest, steps })
}

struct Recorder<'s> {
    gctx: Gctx,
    steps: Option<&'s mut Vec<MeasuredStep>>,
}

impl Recorder<'_> {
    fn record(
        &mut self,
        gpa: u64,
        pages: u64,
        page_type: PageType,
        label: impl FnOnce() -> String,
    ) {
        if let Some(steps) = self.steps.as_mut() {
            steps.push(MeasuredStep {
                gpa,
                pages,
                page_type,
                label: label(),
                digest: *self.gctx.ld(),
            });
        }
    }

    fn contentless(
        &mut self,
        page_type: PageType,
        gpa: u64,
        len: u64,
        label: impl FnOnce() -> String,
    ) {
        let pages = self.gctx.update_contentless_pages(page_type, gpa, len);
        self.record(gpa, pages, page_type, label);
    }
}

fn whole_pages(firmware: &Firmware<'_>, s: &SevMetadataSection) -> Result<u64, SnpError> {
    if s.size as usize % PAGE_SIZE != 0 {
        return Err(SnpError::SectionSize {
            file: firmware.name().map(str::to_owned),
            section_type: s.section_type,
            gpa: s.gpa,
            size: s.size,
        });
    }
    Ok(u64::from(s.size))
}

fn snp_measure_inner(
    firmware: &Firmware<'_>,
    args: &SnpArgs<'_>,
    steps: Option<&mut Vec<MeasuredStep>>,
    hashes: Option<SevHashes>,
) -> Result<[u8; LD_SIZE], SnpError> {
    let file = || firmware.name().map(str::to_owned);
    if args.vcpus == 0 {
        return Err(SnpError::NoVcpus);
    }
    let vcpu_sig = match (args.vmm_type, args.vcpu) {
        (_, Some(v)) => v.signature(),
        (VmmType::Qemu, None) => return Err(SnpError::NoVcpuSignature),
        (_, None) => 0, // EC2 and GCE put 0x600 in RDX
    };
    let metadata = firmware.sev_metadata()?;
    let sections = metadata
        .as_ref()
        .map(|m| m.sections.as_slice())
        .unwrap_or_default();
    if args.has_kernel()
        && !sections
            .iter()
            .any(|s| s.section_type == SevSectionType::SnpKernelHashes)
    {
        return Err(SnpError::NoKernelHashesSection { file: file() });
    }
    let ap_eip = firmware.sev_es_reset_eip()?;
    if args.vcpus > 1 && ap_eip == 0 {
        return Err(SnpError::NoApResetEip {
            file: file(),
            vcpus: args.vcpus,
        });
    }

    // 1. The firmware.
    let mut r = Recorder {
        gctx: Gctx::new(),
        steps,
    };
    match args.ovmf_hash {
        Some(seed) => {
            r.gctx = Gctx::with_seed(seed);
            let gpa = FOUR_GIB.saturating_sub(firmware.data().len() as u64);
            let pages = (firmware.data().len() / PAGE_SIZE) as u64;
            r.record(gpa, pages, PageType::Normal, || {
                "OVMF firmware (precomputed OVMF hash)".to_owned()
            });
        }
        None => {
            let gpa = firmware_gpa(firmware)?;
            let pages = r.gctx.update_normal_pages(gpa, firmware.data());
            r.record(gpa, pages, PageType::Normal, || "OVMF firmware".to_owned());
        }
    }

    // 2. The SEV metadata sections, in firmware order (EC2: CPUID last).
    for s in sections {
        let gpa = u64::from(s.gpa);
        match s.section_type {
            SevSectionType::SnpSecMem => {
                let len = whole_pages(firmware, s)?;
                if args.vmm_type == VmmType::Gce {
                    r.contentless(PageType::Unmeasured, gpa, len, || "SNP_SEC_MEM".to_owned());
                } else {
                    r.contentless(PageType::Zero, gpa, len, || "SNP_SEC_MEM".to_owned());
                }
            }
            SevSectionType::SnpSecrets => {
                r.contentless(PageType::Secrets, gpa, PAGE_SIZE as u64, || {
                    "SNP_SECRETS".to_owned()
                });
            }
            SevSectionType::Cpuid => {
                if args.vmm_type != VmmType::Ec2 {
                    r.contentless(PageType::Cpuid, gpa, PAGE_SIZE as u64, || {
                        "CPUID".to_owned()
                    });
                }
            }
            SevSectionType::SvsmCaa => {
                let len = whole_pages(firmware, s)?;
                r.contentless(PageType::Zero, gpa, len, || "SVSM_CAA".to_owned());
            }
            SevSectionType::SnpKernelHashes => match &hashes {
                Some(h) => {
                    let page = kernel_hashes_page(firmware, s, h)?;
                    let contents: [u8; LD_SIZE] = Sha384::digest(&page[..]).into();
                    r.gctx.update(PageType::Normal, gpa, &contents);
                    r.record(gpa, 1, PageType::Normal, || {
                        "SNP_KERNEL_HASHES (kernel, initrd and cmdline hashes table)".to_owned()
                    });
                }
                None => {
                    let len = whole_pages(firmware, s)?;
                    r.contentless(PageType::Zero, gpa, len, || {
                        "SNP_KERNEL_HASHES (no kernel)".to_owned()
                    });
                }
            },
            SevSectionType::Unknown(raw) => {
                return Err(SnpError::UnknownSectionType {
                    file: file(),
                    gpa: s.gpa,
                    raw,
                })
            }
        }
    }
    if args.vmm_type == VmmType::Ec2 {
        for s in sections
            .iter()
            .filter(|s| s.section_type == SevSectionType::Cpuid)
        {
            r.contentless(PageType::Cpuid, u64::from(s.gpa), PAGE_SIZE as u64, || {
                "CPUID (EC2 measures it last)".to_owned()
            });
        }
    }

    // 3. One VMSA per vCPU: the BSP at the reset vector, the APs at the SEV-ES reset block's EIP.
    let bsp: [u8; LD_SIZE] =
        Sha384::digest(&vmsa_page(BSP_EIP, args.guest_features, vcpu_sig, args.vmm_type)[..])
            .into();
    let ap: Option<[u8; LD_SIZE]> = (args.vcpus > 1).then(|| {
        Sha384::digest(&vmsa_page(ap_eip, args.guest_features, vcpu_sig, args.vmm_type)[..]).into()
    });
    for i in 0..args.vcpus {
        let (contents, role, eip) = match (i, &ap) {
            (0, _) | (_, None) => (&bsp, "BSP", BSP_EIP),
            (_, Some(ap)) => (ap, "AP", ap_eip),
        };
        r.gctx.update_vmsa_page(contents);
        r.record(VMSA_GPA, 1, PageType::Vmsa, || {
            format!("VMSA vCPU {i} ({role}, EIP {eip:#x})")
        });
    }
    Ok(*r.gctx.ld())
}

/// The kernel hashes page: the table at the SEV hash table GPA's offset within the one-page section.
fn kernel_hashes_page(
    firmware: &Firmware<'_>,
    section: &SevMetadataSection,
    hashes: &SevHashes,
) -> Result<Box<[u8; PAGE_SIZE]>, SnpError> {
    let table = firmware
        .sev_hash_table()?
        .ok_or_else(|| cvmkit_ovmf::OvmfError::MissingEntry {
            file: firmware.name().map(str::to_owned),
            what: "SEV hash table",
            guid: cvmkit_ovmf::SEV_HASH_TABLE_RV_GUID,
            hint:
                "the build has an SNP_KERNEL_HASHES section but does not say where the table goes",
        })?;
    let placement = || SnpError::HashTablePlacement {
        file: firmware.name().map(str::to_owned),
        table_gpa: table.gpa,
        section_gpa: section.gpa,
        section_size: section.size,
    };
    if section.size as usize != PAGE_SIZE {
        return Err(placement());
    }
    hashes
        .page(table.gpa as usize % PAGE_SIZE)
        .ok_or_else(placement)
}

/// The kernel hashes table for SEV/SEV-ES, checking the firmware can take it.
fn sev_table(
    firmware: &Firmware<'_>,
    args: &SnpArgs<'_>,
) -> Result<Option<[u8; SEV_HASH_TABLE_PADDED_SIZE]>, SnpError> {
    if args.has_kernel() && firmware.sev_hash_table()?.is_none_or(|t| t.gpa == 0) {
        return Err(SnpError::NoHashTable {
            file: firmware.name().map(str::to_owned),
        });
    }
    Ok(args.sev_hashes()?.map(|h| h.table()))
}

/// The SEV-ES launch digest: SHA-256 over the firmware, the padded kernel hashes table (with a
/// kernel) and one VMSA per vCPU (SEV_FEATURES 0).
pub fn seves_launch_digest(
    firmware: &Firmware<'_>,
    args: &SnpArgs<'_>,
) -> Result<[u8; 32], SnpError> {
    if args.ovmf_hash.is_some() {
        return Err(SnpError::OvmfHashNotSnp);
    }
    if args.vcpus == 0 {
        return Err(SnpError::NoVcpus);
    }
    let vcpu_sig = match (args.vmm_type, args.vcpu) {
        (_, Some(v)) => v.signature(),
        (VmmType::Qemu, None) => return Err(SnpError::NoVcpuSignature),
        (_, None) => 0,
    };
    firmware.sev_metadata()?;
    let table = sev_table(firmware, args)?;
    let ap_eip = firmware.sev_es_reset_eip()?;
    if args.vcpus > 1 && ap_eip == 0 {
        return Err(SnpError::NoApResetEip {
            file: firmware.name().map(str::to_owned),
            vcpus: args.vcpus,
        });
    }
    let mut h = Sha256::new();
    h.update(firmware.data());
    if let Some(t) = table {
        h.update(t);
    }
    let bsp = vmsa_page(BSP_EIP, 0, vcpu_sig, args.vmm_type);
    let ap = (args.vcpus > 1).then(|| vmsa_page(ap_eip, 0, vcpu_sig, args.vmm_type));
    for i in 0..args.vcpus {
        match (i, &ap) {
            (0, _) | (_, None) => h.update(&bsp[..]),
            (_, Some(ap)) => h.update(&ap[..]),
        }
    }
    Ok(h.finalize().into())
}

/// The SEV launch digest: SHA-256 over the firmware and the padded kernel hashes table (with a
/// kernel). Only `kernel`, `initrd`, `append` (and `ovmf_hash`, rejected) of `args` are used.
pub fn sev_launch_digest(
    firmware: &Firmware<'_>,
    args: &SnpArgs<'_>,
) -> Result<[u8; 32], SnpError> {
    if args.ovmf_hash.is_some() {
        return Err(SnpError::OvmfHashNotSnp);
    }
    firmware.sev_metadata()?;
    let table = sev_table(firmware, args)?;
    let mut h = Sha256::new();
    h.update(firmware.data());
    if let Some(t) = table {
        h.update(t);
    }
    Ok(h.finalize().into())
}
