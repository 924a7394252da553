//! Errors of the launch digest computations.

use cvmkit_ovmf::{OvmfError, SevSectionType};

fn file_suffix(file: &Option<String>) -> String {
    match file {
        Some(name) => format!(" (firmware {name})"),
        None => String::new(),
    }
}

fn file_label(file: &Option<String>) -> String {
    match file {
        Some(name) => format!(" {name}"),
        None => String::new(),
    }
}

/// Why a launch digest cannot be computed.
///
/// Where sev-snp-measure 0.0.13 fails on the same input, the message starts with its text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SnpError {
    /// The firmware's OVMF metadata is missing or malformed.
    #[error(transparent)]
    Firmware(#[from] OvmfError),
    /// A kernel was given for SNP, but the firmware has no SNP_KERNEL_HASHES section.
    #[error(
        "Kernel specified but OVMF metadata doesn't include SNP_KERNEL_HASHES section{}: \
         measured direct boot needs an AmdSev OVMF build (OvmfPkg/AmdSev/AmdSevX64.dsc)",
        file_suffix(.file)
    )]
    NoKernelHashesSection {
        /// The firmware file name, when known.
        file: Option<String>,
    },
    /// A kernel was given for SEV/SEV-ES, but the firmware provides no SEV hash table area.
    #[error(
        "Kernel specified but OVMF doesn't support kernel/initrd/cmdline measurement{}: \
         its SEV hash table entry ({}) is absent or at GPA 0",
        file_suffix(.file), cvmkit_ovmf::SEV_HASH_TABLE_RV_GUID
    )]
    NoHashTable {
        /// The firmware file name, when known.
        file: Option<String>,
    },
    /// An initrd or command line was given without a kernel.
    #[error(
        "{what} given without a kernel: kernel hashes are only measured for direct kernel boot"
    )]
    NoKernel {
        /// `initrd` or `command line`.
        what: &'static str,
    },
    /// QEMU puts the vCPU signature in each VMSA, and none was given.
    #[error(
        "no vCPU type or signature given: QEMU puts the vCPU signature (CPUID 1 EAX) in each VMSA"
    )]
    NoVcpuSignature,
    /// Zero vCPUs.
    #[error("vCPU count is 0: a guest has at least one vCPU")]
    NoVcpus,
    /// A precomputed OVMF hash was given for SEV or SEV-ES.
    #[error("SNP OVMF hash only works with SNP")]
    OvmfHashNotSnp,
    /// A precomputed OVMF hash is not 48 bytes of hex.
    #[error("OVMF hash '{0}' is not 96 hexadecimal digits (a SHA-384 digest)")]
    BadOvmfHash(String),
    /// SNP measures the firmware in whole pages below 4 GiB.
    #[error("firmware{} is {len} bytes: SNP needs a whole number of 4 KiB pages, at most 4 GiB", file_label(.file))]
    FirmwareSize {
        /// The firmware file name, when known.
        file: Option<String>,
        /// Its size.
        len: usize,
    },
    /// A metadata section SNP measures page by page is not a whole number of pages.
    #[error(
        "firmware{}: SEV metadata section {section_type} at GPA {gpa:#x} has size {size:#x}, \
         not a whole number of 4 KiB pages",
        file_label(.file)
    )]
    SectionSize {
        /// The firmware file name, when known.
        file: Option<String>,
        /// The section type.
        section_type: SevSectionType,
        /// Its GPA.
        gpa: u32,
        /// Its size.
        size: u32,
    },
    /// The SNP_KERNEL_HASHES section cannot hold the hashes table where the SEV hash table entry
    /// places it.
    #[error(
        "firmware{}: the SEV hashes table at GPA {table_gpa:#x} does not fit the one-page \
         SNP_KERNEL_HASHES section at GPA {section_gpa:#x} (size {section_size:#x})",
        file_label(.file)
    )]
    HashTablePlacement {
        /// The firmware file name, when known.
        file: Option<String>,
        /// GPA of the table (SEV hash table entry).
        table_gpa: u32,
        /// GPA of the section.
        section_gpa: u32,
        /// Size of the section.
        section_size: u32,
    },
    /// SNP does not know how to measure a section type.
    #[error(
        "firmware{}: SEV metadata section at GPA {gpa:#x} has unknown type {raw:#x}: \
         SNP cannot tell how the VMM populates it",
        file_label(.file)
    )]
    UnknownSectionType {
        /// The firmware file name, when known.
        file: Option<String>,
        /// Its GPA.
        gpa: u32,
        /// The raw type.
        raw: u32,
    },
    /// More than one vCPU but the reset block gives EIP 0 for the APs.
    #[error("firmware{}: the SEV-ES reset block gives AP reset EIP 0, so {vcpus} vCPUs cannot start", file_label(.file))]
    NoApResetEip {
        /// The firmware file name, when known.
        file: Option<String>,
        /// The requested vCPU count.
        vcpus: u32,
    },
    /// A launch digest that does not fit its bank (a bug, reported rather than hidden).
    #[error("cannot write the measurement document: {0}")]
    Document(#[from] cvmkit_measure::DocumentError),
}
