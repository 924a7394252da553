//! Event records (`TCG_PCR_EVENT`, `TCG_PCR_EVENT2`), event types and measurement registers.

use std::fmt;

use crate::{Digest, EventType, HashAlg};

/// The register an event is extended into.
///
/// In a TPM log the record's PCRIndex is the PCR. In a CCEL (TDX) log the record's index is the
/// "MR index": 0 is MRTD (measured by the TDX module at build time, never extended from the log),
/// and *n* ≥ 1 is RTMR *n*−1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Register {
    /// A TPM PCR.
    Pcr(u32),
    /// TDX MRTD (CCEL MR index 0).
    Mrtd,
    /// A TDX runtime measurement register (CCEL MR index *n* → RTMR *n*−1).
    Rtmr(u32),
}

impl fmt::Display for Register {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Register::Pcr(n) => write!(f, "PCR{n}"),
            Register::Mrtd => f.write_str("MRTD"),
            Register::Rtmr(n) => write!(f, "RTMR{n}"),
        }
    }
}

/// Which record layout an event was read from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RecordFormat {
    /// `TCG_PCR_EVENT`: one SHA-1 digest. The first record of every log, and every record of a
    /// legacy (TPM 1.2 style) log.
    PcrEvent,
    /// `TCG_PCR_EVENT2`: a `TPML_DIGEST_VALUES` list (crypto-agile).
    PcrEvent2,
}

/// One event record.
///
/// `index` counts records from 0 in file order. In a crypto-agile log, record 0 is the Spec ID
/// event, so `index` matches go-eventlog's "event N" and the dstack tests' event numbers.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Event {
    /// Position in the log (0 = first record).
    pub index: usize,
    /// Byte offset of the record in the log.
    pub offset: usize,
    /// Length of the whole record in bytes.
    pub size: usize,
    /// The record layout.
    pub format: RecordFormat,
    /// `PCRIndex` as stored: a PCR for TPM logs, an MR index for CCEL logs.
    pub pcr_index: u32,
    /// The register `pcr_index` designates for the log's kind (see [`Register`]).
    pub register: Register,
    /// `EventType`.
    pub event_type: EventType,
    /// The digests (`TPML_DIGEST_VALUES`), in log order.
    pub digests: Vec<Digest>,
    /// The event data (`Event[EventSize]`).
    pub data: Vec<u8>,
}

impl Event {
    /// The digest for `alg`, if the record carries one.
    pub fn digest(&self, alg: HashAlg) -> Option<&Digest> {
        self.digests.iter().find(|d| d.alg() == alg)
    }

    /// Whether the event is extended (everything but `EV_NO_ACTION`).
    pub fn is_extended(&self) -> bool {
        self.event_type != EventType::EV_NO_ACTION
    }

    /// A short human label decoded from the data where the format is known and cheap: the UEFI
    /// variable name, the image device path, an action or IPL string, the separator value, …
    /// `None` when nothing readable was found.
    pub fn label(&self) -> Option<String> {
        crate::label::label(self.event_type, &self.data)
    }

    /// For `EV_NO_ACTION` "StartupLocality" events, the locality from which TPM2_Startup ran.
    pub fn startup_locality(&self) -> Option<u8> {
        crate::label::startup_locality(self.event_type, &self.data)
    }
}

impl fmt::Display for Event {
    /// `event 12 @0x2181 PCR7 EV_SEPARATOR 0x00000000`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "event {} @{:#x} {} {}",
            self.index, self.offset, self.register, self.event_type
        )?;
        if let Some(label) = self.label() {
            write!(f, " {label}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(
            EventType::EV_EFI_HANDOFF_TABLES2.to_string(),
            "EV_EFI_HANDOFF_TABLES2"
        );
        assert_eq!(EventType(0x0800_0001).to_string(), "0x08000001");
        assert_eq!(EventType(0x0800_0001).name(), None);
        assert_eq!(Register::Rtmr(2).to_string(), "RTMR2");
        assert_eq!(Register::Pcr(11).to_string(), "PCR11");
    }
}
