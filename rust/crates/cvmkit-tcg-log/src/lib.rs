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
