//! The error every computation of this crate returns.

use cvmkit_ovmf::OvmfError;

/// Why a TDX measurement cannot be predicted.
///
/// Messages are one line, name the input concerned and, where it helps, what would fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TdxError {
    /// The firmware's OVMF footer table or TDX metadata is missing or malformed. The message
    /// names the missing table, e.g. "firmware OVMF.fd has no TDX metadata (GUID e47a6535-…)".
    #[error(transparent)]
    Firmware(#[from] OvmfError),
    /// The TDX metadata lacks a section this computation needs.
    #[error("firmware{file} has no {section} section in its TDX metadata: {hint}")]
    MissingSection {
        /// `" NAME"` or empty.
        file: String,
        /// The section type, e.g. `TD_HOB`.
        section: &'static str,
        /// What it is needed for.
        hint: &'static str,
    },
    /// A TDX metadata section QEMU would refuse.
    #[error("firmware{file}: TDX metadata section {index} ({section}) {reason}")]
    UnsupportedSection {
        /// `" NAME"` or empty.
        file: String,
        /// Index of the section.
        index: usize,
        /// Its type.
        section: String,
        /// Why QEMU refuses it.
        reason: String,
    },
    /// The guest memory size does not fit the firmware's memory sections or QEMU's layout.
    #[error("guest memory size {memory:#x} bytes: {reason}")]
    Memory {
        /// The memory size given.
        memory: u64,
        /// What does not fit.
        reason: String,
    },
    /// A kernel, initrd or command line QEMU's x86 Linux loader would refuse.
    #[error("kernel {what}: {reason}")]
    Kernel {
        /// Which input (`image`, `initrd`, `command line`).
        what: &'static str,
        /// Why.
        reason: String,
    },
    /// A PE image (kernel, UKI, boot loader) cannot be parsed for its Authenticode digest.
    #[error("{what} is not a PE image firmware can load: {source}")]
    Pe {
        /// Which image.
        what: String,
        /// The parser's error.
        source: cvmkit_pe::Error,
    },
    /// The UKI's boot path cannot be predicted (cvmkit-uefi-boot says why).
    #[error("UKI{file}: {source}")]
    Boot {
        /// `" NAME"` or empty.
        file: String,
        /// Why.
        #[source]
        source: cvmkit_uefi_boot::BootError,
    },
    /// A UKI this crate cannot predict, with the reason.
    #[error("UKI{file}: {reason}")]
    Uki {
        /// `" NAME"` or empty.
        file: String,
        /// What is missing or not modelled.
        reason: String,
    },
    /// The disk image has no usable GUID partition table.
    #[error("disk image{file}: {reason}")]
    Gpt {
        /// `" NAME"` or empty.
        file: String,
        /// What is wrong.
        reason: String,
    },
    /// QEMU's ACPI table-loader (`etc/table-loader`) is malformed or names a missing file.
    #[error("ACPI table-loader: {reason}")]
    TableLoader {
        /// What is wrong.
        reason: String,
    },
    /// An input the chosen computation needs was not given.
    #[error("{what} not given: {hint}")]
    MissingInput {
        /// The input.
        what: &'static str,
        /// How to supply it.
        hint: &'static str,
    },
    /// Captured register values or event digests (JSON) cannot be read.
    #[error("captured measurements: {reason}")]
    Captured {
        /// What is wrong, with the JSON path.
        reason: String,
    },
    /// A predicted digest that does not fit its bank (a bug, reported rather than hidden).
    #[error("cannot write the measurement document: {0}")]
    Document(#[from] cvmkit_measure::DocumentError),
}

/// `" NAME"` for a named input, empty otherwise, so that messages read "firmware OVMF.fd has …".
pub(crate) fn label(name: Option<&str>) -> String {
    name.map(|n| format!(" {n}")).unwrap_or_default()
}
