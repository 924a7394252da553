//! Findings: things a verifier may want to reject that do not stop parsing or replay.

use std::fmt;

use crate::HashAlg;
use crate::event::Register;
use crate::EventType;
use crate::log::{EventLog, LogFormat, LogKind};
use crate::replay::slot;

/// How much a finding matters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Severity {
    /// Worth showing; not a sign of a broken or tampered log.
    Info,
    /// The log breaks a rule verifiers rely on; a strict verifier turns this into an error.
    Warning,
}

/// Something notable about a log. `Display` gives one line naming the event and its offset.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Finding {
    /// A second `EV_SEPARATOR` for the same register in the log (one boot).
    ///
    /// Seen on GCE TDX firmware with a UEFI bug that measures the separator twice into RTMR0 (MR
    /// index 1) and none into RTMR1. The register values still replay, but go-eventlog rejects
    /// such a log ("duplicate separator at event N"): once a register has its separator, later
    /// events in it are not pre-OS configuration.
    ///
    /// Older edk2 OVMF TDX builds measure one separator per PCR 0–7 and map them onto RTMRs, so
    /// RTMR0 gets two (PCR1, PCR7) and RTMR1 several (PCR2–6); those logs (QEMU/OVMF samples)
    /// are reported too. Whether to reject is the caller's policy. A TPM log has exactly one
    /// separator per PCR 0–7, so there a duplicate is always suspicious.
    DuplicateSeparator {
        /// Index of the second separator.
        event: usize,
        /// Its offset.
        offset: usize,
        /// The register.
        register: Register,
        /// Index of the first separator for the register.
        first_event: usize,
    },
    /// An extended event lacks a digest for a bank that is replayed; that bank's register does not
    /// include the event, so its replayed value cannot match the hardware's.
    MissingDigest {
        /// Index of the event.
        event: usize,
        /// Its offset.
        offset: usize,
        /// The register.
        register: Register,
        /// The missing algorithm.
        alg: HashAlg,
    },
    /// A CCEL event for MR index 0 (MRTD). MRTD is measured by the TDX module when the TD is
    /// built and cannot be extended, so the event is not replayed.
    MrtdEvent {
        /// Index of the event.
        event: usize,
        /// Its offset.
        offset: usize,
        /// The event type.
        event_type: EventType,
    },
    /// An event for a register outside the replayed range (PCR0–23, RTMR0–3); not replayed.
    UntrackedRegister {
        /// Index of the event.
        event: usize,
        /// Its offset.
        offset: usize,
        /// The register.
        register: Register,
    },
    /// A StartupLocality event that cannot take effect: it is not for PCR0, comes after PCR0 was
    /// extended, or is in a CCEL log.
    IgnoredStartupLocality {
        /// Index of the event.
        event: usize,
        /// Its offset.
        offset: usize,
        /// The locality it names.
        locality: u8,
    },
    /// The log ends at a PCRIndex of 0xFFFFFFFF, but the bytes after it are not all 0xFF.
    IrregularPadding {
        /// Offset of the end-of-log marker.
        offset: usize,
        /// Bytes from there to the end of the input.
        len: usize,
    },
    /// The Spec ID event names a version other than 2.0.
    UnexpectedSpecVersion {
        /// `specVersionMajor`.
        major: u8,
        /// `specVersionMinor`.
        minor: u8,
        /// `specErrata`.
        errata: u8,
    },
    /// The log declares an algorithm this crate cannot compute; it is parsed but not replayed.
    UnsupportedAlgorithm {
        /// The algorithm.
        alg: HashAlg,
    },
    /// No bank of the log can be replayed (for example a CCEL log without SHA-384).
    NoReplayableBank,
    /// "Calling EFI Application from Boot Option" appears more than once: the firmware tried
    /// several boot options (as in GCE's Ubuntu 24.04 TDX log). Every attempt is measured and
    /// replayed as logged.
    RepeatedBootAttempts {
        /// How many times.
        count: usize,
        /// Index of the first such event.
        first_event: usize,
        /// Index of the last such event.
        last_event: usize,
    },
}

impl Finding {
    /// How much the finding matters.
    pub fn severity(&self) -> Severity {
        match self {
            Finding::UnexpectedSpecVersion { .. }
            | Finding::UnsupportedAlgorithm { .. }
            | Finding::RepeatedBootAttempts { .. } => Severity::Info,
            _ => Severity::Warning,
        }
    }

    /// The index of the event the finding is about, if it is about one.
    pub fn event(&self) -> Option<usize> {
        match self {
            Finding::DuplicateSeparator { event, .. }
            | Finding::MissingDigest { event, .. }
            | Finding::MrtdEvent { event, .. }
            | Finding::UntrackedRegister { event, .. }
            | Finding::IgnoredStartupLocality { event, .. } => Some(*event),
            Finding::RepeatedBootAttempts { last_event, .. } => Some(*last_event),
            _ => None,
        }
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Finding::DuplicateSeparator { event, offset, register, first_event } => write!(
                f,
                "event {event} at offset {offset:#x}: duplicate separator for {register} (first at event {first_event})"
            ),
            Finding::MissingDigest { event, offset, register, alg } => write!(
                f,
                "event {event} at offset {offset:#x}: no {alg} digest, so the {alg} value of {register} cannot be replayed"
            ),
            Finding::MrtdEvent { event, offset, event_type } => write!(
                f,
                "event {event} at offset {offset:#x}: {event_type} for MR index 0 (MRTD), which cannot be extended; not replayed"
            ),
            Finding::UntrackedRegister { event, offset, register } => write!(
                f,
                "event {event} at offset {offset:#x}: {register} is outside the replayed registers; not replayed"
            ),
            Finding::IgnoredStartupLocality { event, offset, locality } => write!(
                f,
                "event {event} at offset {offset:#x}: StartupLocality {locality} ignored (only valid for PCR0 of a TPM log, before PCR0 is extended)"
            ),
            Finding::IrregularPadding { offset, len } => write!(
                f,
                "offset {offset:#x}: end-of-log marker 0xffffffff followed by {len} bytes that are not all 0xff"
            ),
            Finding::UnexpectedSpecVersion { major, minor, errata } => write!(
                f,
                "event 0 at offset 0x0: Spec ID event version {major}.{minor} errata {errata}, expected 2.0"
            ),
            Finding::UnsupportedAlgorithm { alg } => {
                write!(f, "{alg} is declared but cannot be computed here; that bank is not replayed")
            }
            Finding::NoReplayableBank => f.write_str("no digest bank of this log can be replayed"),
            Finding::RepeatedBootAttempts { count, first_event, last_event } => write!(
                f,
                "events {first_event}..={last_event}: {count} boot attempts (\"Calling EFI Application from Boot Option\")"
            ),
        }
    }
}

const CALLING_BOOT_OPTION: &[u8] = b"Calling EFI Application from Boot Option";

/// Computes the findings for the log's current kind.
pub(crate) fn analyze(log: &EventLog) -> Vec<Finding> {
    let mut out = Vec::new();
    let kind = log.kind();
    if let Some(spec) = log.spec_id() {
        if (spec.spec_version_major, spec.spec_version_minor) != (2, 0) {
            out.push(Finding::UnexpectedSpecVersion {
                major: spec.spec_version_major,
                minor: spec.spec_version_minor,
                errata: spec.spec_errata,
            });
        }
        for alg in spec.algorithms().filter(|a| !a.is_supported()) {
            out.push(Finding::UnsupportedAlgorithm { alg });
        }
    }
    if let Some(p) = log.padding().filter(|p| !p.uniform) {
        out.push(Finding::IrregularPadding {
            offset: p.offset,
            len: p.len,
        });
    }
    let banks = log.replay_banks();
    if banks.is_empty() {
        out.push(Finding::NoReplayableBank);
    }

    // (register, first separator index)
    let mut separators: Vec<(Register, usize)> = Vec::new();
    let mut pcr0_extended = false;
    let mut boot_attempts: Vec<usize> = Vec::new();
    // In a crypto-agile log record 0 is the Spec ID event, not a measurement.
    let skip = usize::from(log.format() == LogFormat::CryptoAgile);
    for event in log.events().iter().skip(skip) {
        let (index, offset, register) = (event.index, event.offset, event.register);
        if !event.is_extended() {
            if let Some(locality) = event.startup_locality() {
                if kind != LogKind::Tpm || event.pcr_index != 0 || pcr0_extended {
                    out.push(Finding::IgnoredStartupLocality {
                        event: index,
                        offset,
                        locality,
                    });
                }
            }
            continue;
        }
        if register == Register::Mrtd {
            out.push(Finding::MrtdEvent {
                event: index,
                offset,
                event_type: event.event_type,
            });
            continue;
        }
        if slot(kind, register).is_none() {
            out.push(Finding::UntrackedRegister {
                event: index,
                offset,
                register,
            });
            continue;
        }
        pcr0_extended |= register == Register::Pcr(0);
        for alg in &banks {
            if event.digest(*alg).is_none() {
                out.push(Finding::MissingDigest {
                    event: index,
                    offset,
                    register,
                    alg: *alg,
                });
            }
        }
        if event.event_type == EventType::EV_SEPARATOR {
            match separators.iter().find(|(r, _)| *r == register) {
                Some(&(_, first_event)) => out.push(Finding::DuplicateSeparator {
                    event: index,
                    offset,
                    register,
                    first_event,
                }),
                None => separators.push((register, index)),
            }
        }
        if event.event_type == EventType::EV_EFI_ACTION && event.data == CALLING_BOOT_OPTION {
            boot_attempts.push(index);
        }
    }
    if let (true, Some(&first_event), Some(&last_event)) = (
        boot_attempts.len() > 1,
        boot_attempts.first(),
        boot_attempts.last(),
    ) {
        out.push(Finding::RepeatedBootAttempts {
            count: boot_attempts.len(),
            first_event,
            last_event,
        });
    }
    out
}
