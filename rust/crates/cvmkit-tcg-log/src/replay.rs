//! Register values computed by replaying a log.

use crate::{Digest, HashAlg};
use crate::event::{Event, Register};
use crate::log::LogKind;

/// Number of PCRs a PC-Client TPM has.
pub const PCR_COUNT: u32 = 24;
/// Number of TDX runtime measurement registers.
pub const RTMR_COUNT: u32 = 4;

/// Why [`Replay::extend`] or a related call refused to change a register.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReplayError {
    /// The register is not one this replay tracks (PCR0–23 for TPM logs, RTMR0–3 for CCEL logs).
    #[error("{register} is not replayed for a {kind:?} log")]
    UntrackedRegister {
        /// The register.
        register: Register,
        /// The replay's log kind.
        kind: LogKind,
    },
    /// The replay has no bank for the digest's algorithm.
    #[error("the replay has no {alg} bank")]
    NoBank {
        /// The algorithm.
        alg: HashAlg,
    },
    /// The digest has the wrong length for its algorithm.
    #[error("a {alg} digest must be {expected} bytes, not {actual}")]
    DigestLength {
        /// The algorithm.
        alg: HashAlg,
        /// Its digest size.
        expected: usize,
        /// The length given.
        actual: usize,
    },
    /// StartupLocality can only set PCR0's initial value before PCR0 is extended.
    #[error("PCR0 has already been extended; StartupLocality must come first")]
    Pcr0AlreadyExtended,
}

/// Register values per bank, from [`EventLog::replay`](crate::EventLog::replay) or built up by
/// hand with [`Replay::new`] and [`Replay::extend`] to predict values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Replay {
    kind: LogKind,
    banks: Vec<HashAlg>,
    /// `values[bank][slot]`.
    values: Vec<Vec<Digest>>,
    /// Events extended per slot.
    extended: Vec<usize>,
    startup_locality: Option<u8>,
}

impl Replay {
    /// Registers at their reset value (zero) for every supported algorithm in `banks`
    /// (unsupported or repeated algorithms are dropped).
    pub fn new(kind: LogKind, banks: &[HashAlg]) -> Replay {
        let mut kept: Vec<HashAlg> = Vec::new();
        for alg in banks {
            if alg.is_supported() && !kept.contains(alg) {
                kept.push(*alg);
            }
        }
        let slots = slot_count(kind);
        let values = kept
            .iter()
            .map(|alg| {
                let size = alg.digest_size().unwrap_or_default();
                vec![Digest::zero(*alg, size); slots]
            })
            .collect();
        Replay {
            kind,
            banks: kept,
            values,
            extended: vec![0; slots],
            startup_locality: None,
        }
    }

    /// The log kind, which decides the registers.
    pub fn kind(&self) -> LogKind {
        self.kind
    }

    /// The algorithms replayed, in the log's declaration order.
    pub fn banks(&self) -> &[HashAlg] {
        &self.banks
    }

    /// The registers replayed: PCR0–23 or RTMR0–3.
    pub fn registers(&self) -> impl Iterator<Item = Register> {
        let kind = self.kind;
        (0..slot_count(kind) as u32).map(move |n| match kind {
            LogKind::Tpm => Register::Pcr(n),
            LogKind::Ccel => Register::Rtmr(n),
        })
    }

    /// The value of `register` in the `alg` bank; `None` if either is not replayed.
    pub fn get(&self, register: Register, alg: HashAlg) -> Option<&Digest> {
        let slot = slot(self.kind, register)?;
        let bank = self.banks.iter().position(|b| *b == alg)?;
        self.values.get(bank)?.get(slot)
    }

    /// Every register of the `alg` bank with its value (empty if there is no such bank).
    pub fn values(&self, alg: HashAlg) -> impl Iterator<Item = (Register, &Digest)> {
        let bank = self.banks.iter().position(|b| *b == alg);
        let values = bank
            .and_then(|b| self.values.get(b))
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        self.registers().zip(values.iter())
    }

    /// How many events were extended into `register` (0 also for untracked registers). A register
    /// no event touched still holds its reset value, which on a real TPM is all-ones rather than
    /// zero for PCR17–22 when no dynamic launch happened.
    pub fn events_extended(&self, register: Register) -> usize {
        slot(self.kind, register)
            .and_then(|s| self.extended.get(s).copied())
            .unwrap_or(0)
    }

    /// The locality a StartupLocality event set PCR0 up with, if any.
    pub fn startup_locality(&self) -> Option<u8> {
        self.startup_locality
    }

    /// Sets PCR0's initial value to `00…00 ‖ locality` in every bank, as the TPM does when
    /// TPM2_Startup is issued from `locality`. Only for TPM replays, before PCR0 is extended.
    pub fn set_startup_locality(&mut self, locality: u8) -> Result<(), ReplayError> {
        let pcr0 = Register::Pcr(0);
        if slot(self.kind, pcr0).is_none() {
            return Err(ReplayError::UntrackedRegister {
                register: pcr0,
                kind: self.kind,
            });
        }
        if self.events_extended(pcr0) > 0 {
            return Err(ReplayError::Pcr0AlreadyExtended);
        }
        for (bank, alg) in self.values.iter_mut().zip(&self.banks) {
            let mut initial = vec![0; alg.digest_size().unwrap_or_default()];
            if let Some(last) = initial.last_mut() {
                *last = locality;
            }
            if let Some(value) = bank.get_mut(0) {
                *value = Digest::new(*alg, initial);
            }
        }
        self.startup_locality = Some(locality);
        Ok(())
    }

    /// Extends `register` in the bank of `digest`'s algorithm: `value = H(value ‖ digest)`.
    ///
    /// Other banks are left alone; to extend an event into every bank use
    /// [`Replay::extend_data`] or call this once per digest.
    pub fn extend(&mut self, register: Register, digest: &Digest) -> Result<(), ReplayError> {
        let slot = slot(self.kind, register).ok_or(ReplayError::UntrackedRegister {
            register,
            kind: self.kind,
        })?;
        let alg = digest.alg();
        let bank = self
            .banks
            .iter()
            .position(|b| *b == alg)
            .ok_or(ReplayError::NoBank { alg })?;
        let expected = alg.digest_size().unwrap_or_default();
        if digest.as_bytes().len() != expected {
            return Err(ReplayError::DigestLength {
                alg,
                expected,
                actual: digest.as_bytes().len(),
            });
        }
        if let Some(value) = self.values.get_mut(bank).and_then(|b| b.get_mut(slot)) {
            value.extend(digest.as_bytes());
        }
        if let Some(count) = self.extended.get_mut(slot) {
            *count += 1;
        }
        Ok(())
    }

    /// Extends `register` in every bank with the hash of `data`, the way firmware measures
    /// events whose digest is the hash of their data (`EV_EFI_ACTION`, `EV_SEPARATOR`, …).
    ///
    /// This is how a caller applies go-eventlog's "ExitBootServices" workaround: logs from some
    /// firmware omit the two EV_EFI_ACTION events of PCR5 that the TPM did see.
    pub fn extend_data(&mut self, register: Register, data: &[u8]) -> Result<(), ReplayError> {
        let slot = slot(self.kind, register).ok_or(ReplayError::UntrackedRegister {
            register,
            kind: self.kind,
        })?;
        for (bank, alg) in self.values.iter_mut().zip(&self.banks) {
            if let (Some(value), Some(digest)) = (bank.get_mut(slot), alg.hash(data)) {
                value.extend(digest.as_bytes());
            }
        }
        if let Some(count) = self.extended.get_mut(slot) {
            *count += 1;
        }
        Ok(())
    }

    /// Extends one logged event (already known not to be EV_NO_ACTION) into every bank it has a
    /// digest for. Untracked registers are skipped.
    pub(crate) fn extend_event(&mut self, event: &Event) {
        let Some(slot) = slot(self.kind, event.register) else {
            return;
        };
        for (bank, alg) in self.values.iter_mut().zip(&self.banks) {
            if let (Some(value), Some(digest)) = (bank.get_mut(slot), event.digest(*alg)) {
                // Digest sizes of supported algorithms were checked against the Spec ID event.
                value.extend(digest.as_bytes());
            }
        }
        if let Some(count) = self.extended.get_mut(slot) {
            *count += 1;
        }
    }
}

fn slot_count(kind: LogKind) -> usize {
    match kind {
        LogKind::Tpm => PCR_COUNT as usize,
        LogKind::Ccel => RTMR_COUNT as usize,
    }
}

/// Index of `register` in the per-bank value arrays, if the replay tracks it.
pub(crate) fn slot(kind: LogKind, register: Register) -> Option<usize> {
    match (kind, register) {
        (LogKind::Tpm, Register::Pcr(n)) if n < PCR_COUNT => Some(n as usize),
        (LogKind::Ccel, Register::Rtmr(n)) if n < RTMR_COUNT => Some(n as usize),
        _ => None,
    }
}
