//! Parser and replayer for TCG PC-Client event logs (TPM 2.0 crypto-agile logs, and legacy SHA-1
//! logs) and Intel TDX CCEL logs, which use the same record format.
//!
//! A log starts with a SHA-1 `TCG_PCR_EVENT` record. In a crypto-agile log that record is the
//! `EV_NO_ACTION` "Spec ID Event03" ([`SpecIdEvent`]), which declares every digest algorithm and
//! its size; `TCG_PCR_EVENT2` records with a `TPML_DIGEST_VALUES` list follow. Without a Spec ID
//! event every record is a `TCG_PCR_EVENT` ([`LogFormat::Sha1`]).
//!
//! * [`EventLog::parse`] reads the records of untrusted bytes. It never panics and never allocates
//!   more than the input justifies. Trailing 0xFF / 0x00 fill (a CCEL log area is padded to the
//!   size its ACPI table declares) ends the log cleanly; see [`EventLog::padding`] and
//!   [`EventLog::bytes_used`].
//! * [`EventLog::kind`] says whether indexes are TPM PCRs or CCEL MR indexes (MR index *n* is RTMR
//!   *n*−1, 0 is MRTD). It is detected, or given with [`EventLog::parse_as`].
//! * [`EventLog::replay`] folds the digests into register values per bank ([`Replay::get`]).
//! * [`EventLog::findings`] lists what a verifier may want to reject although the log replays,
//!   such as a duplicate separator ([`Finding::DuplicateSeparator`]).
//! * [`Event::label`] decodes a short description: UEFI variable names, device paths, action and
//!   IPL strings, separator values.
//!
//! ```
//! use cvmkit_tcg_log::{EventLog, EventType, HashAlg, LogKind, Register};
//!
//! // A CCEL log with one event: the Spec ID event (SHA-384 only), then an EV_EFI_ACTION
//! // extended into MR index 2, which is RTMR1. The rest of the log area is 0xFF fill.
//! let action = b"Exit Boot Services Invocation";
//! let digest = HashAlg::SHA384.hash(action).unwrap();
//! let mut log = Vec::new();
//! let mut spec_id = b"Spec ID Event03\0".to_vec();
//! spec_id.extend([0, 0, 0, 0, 0, 2, 0, 2]); // platformClass, version 2.0, errata, uintnSize
//! spec_id.extend(1u32.to_le_bytes()); // numberOfAlgorithms
//! spec_id.extend([0x0C, 0x00, 48, 0]); // TPM_ALG_SHA384, 48 bytes
//! spec_id.push(0); // vendorInfoSize
//! log.extend([0u8; 4]); // PCRIndex
//! log.extend(3u32.to_le_bytes()); // EV_NO_ACTION
//! log.extend([0u8; 20]); // SHA-1 digest (zero)
//! log.extend((spec_id.len() as u32).to_le_bytes());
//! log.extend(&spec_id);
//! log.extend(2u32.to_le_bytes()); // MR index 2
//! log.extend(0x8000_0007u32.to_le_bytes()); // EV_EFI_ACTION
//! log.extend(1u32.to_le_bytes()); // one digest
//! log.extend(0x000Cu16.to_le_bytes());
//! log.extend(digest.as_bytes());
//! log.extend((action.len() as u32).to_le_bytes());
//! log.extend(action);
//! let used = log.len();
//! log.resize(4096, 0xFF);
//!
//! let parsed = EventLog::parse(&log)?;
//! assert_eq!(parsed.kind(), LogKind::Ccel);
//! assert_eq!(parsed.bytes_used(), used);
//! let event = &parsed.events()[1];
//! assert_eq!(event.register, Register::Rtmr(1));
//! assert_eq!(event.event_type, EventType::EV_EFI_ACTION);
//! assert_eq!(event.label().as_deref(), Some("Exit Boot Services Invocation"));
//!
//! let replay = parsed.replay();
//! let rtmr1 = replay.get(Register::Rtmr(1), HashAlg::SHA384).unwrap();
//! let expected = HashAlg::SHA384.hash_parts(&[&[0; 48], digest.as_bytes()]).unwrap();
//! assert_eq!(rtmr1.to_string(), expected.to_string());
//! assert!(parsed.findings().is_empty());
//! # Ok::<(), cvmkit_tcg_log::Error>(())
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod error;
mod event;
mod finding;
mod label;
mod log;
mod replay;
mod spec_id;

pub use cvmkit_measure::{Digest, EventType, HashAlg};
pub use error::{Error, ErrorKind};
pub use event::{Event, RecordFormat, Register};
pub use finding::{Finding, Severity};
pub use log::{EventLog, LogFormat, LogKind, Padding};
pub use replay::{Replay, ReplayError, PCR_COUNT, RTMR_COUNT};
pub use spec_id::{AlgorithmSize, SpecIdEvent, SPEC_ID_EVENT03};

/// The log as a measurement document (`cvmkit.measurements/v1`, platform `eventlog`): every
/// register the log extends, per bank this crate can replay, with its events labelled; problems
/// found in the log become notes. The flag is true when any of them is a warning (for
/// `cvmkit replay --strict`). `path` names the log in the document's inputs.
pub fn document(path: &str, data: &[u8], kind: Option<LogKind>) -> Result<(cvmkit_measure::Measurements, bool), Error> {
    use cvmkit_measure::{Input, Measurements, Platform, Register};
    let log = match kind {
        Some(k) => EventLog::parse_as(data, k),
        None => EventLog::parse(data),
    }?;
    let replay = log.replay();
    let mut doc = Measurements::new(Platform::Eventlog);
    doc.inputs.insert("eventlog".into(), Input::file(path, data));
    let kind_name = match log.kind() {
        LogKind::Tpm => "tpm",
        LogKind::Ccel => "ccel",
    };
    doc.add_value("kind", kind_name);
    let mut warned = false;
    let mut problems = Vec::new();
    for alg in replay.banks() {
        let Some(b) = alg.bank() else { continue };
        for (register, value) in replay.values(*alg) {
            if replay.events_extended(register) == 0 {
                continue;
            }
            let mut r = match Register::with_value(register.to_string(), b, value.as_bytes()) {
                Ok(r) => r,
                Err(e) => {
                    problems.push(e.to_string());
                    continue;
                }
            };
            for e in log.events().iter().filter(|e| e.register == register && e.is_extended()) {
                let Some(d) = e.digest(*alg) else { continue };
                let ty = e.event_type.to_string();
                let label = e.label().unwrap_or_else(|| ty.clone());
                if let Err(e) = r.note_event(format!("#{} {label}", e.index), Some(&ty), d.as_bytes()) {
                    problems.push(e.to_string());
                }
            }
            doc.registers.push(r);
        }
    }
    for p in problems {
        warned = true;
        doc.notes.push(format!("warning: {p}"));
    }
    for f in log.findings() {
        let level = match f.severity() {
            Severity::Warning => {
                warned = true;
                "warning"
            }
            _ => "info",
        };
        doc.notes.push(format!("{level}: {f}"));
    }
    Ok((doc, warned))
}
