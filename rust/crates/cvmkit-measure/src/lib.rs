//! cvmkit's measurement vocabulary: every crate that reads, predicts or compares measurements
//! speaks it, so there is one copy of each notion.
//!
//! - [`HashAlg`] (any `TPM_ALG_ID`), [`Bank`] (one this crate computes: extend, fold, hash),
//!   [`Hasher`], [`Digest`] (a digest tagged with its algorithm; lowercase [`hex`] everywhere);
//! - [`EventType`] (`TCG_EVENTTYPE`), [`Guid`] (`EFI_GUID`);
//! - [`Reader`]: the one panic-free, bounds-checked cursor every parser of untrusted bytes uses;
//! - the measurement document ([`Measurements`], `cvmkit.measurements/v1`) and its comparison
//!   ([`compare`], [`check`]).
//!
//! The document, as `cvmkit measure snp|tdx|tpm` and `cvmkit replay` print it:
//!
//! ```json
//! {
//!   "schema": "cvmkit.measurements/v1",
//!   "platform": "tdx",
//!   "inputs": { "firmware": { "path": "OVMF.fd", "sha256": "…" }, "memory": { "value": "2G" } },
//!   "registers": [
//!     { "name": "RTMR2", "bank": "sha384", "value": "…",
//!       "events": [ { "label": "kernel command line", "event_type": "EV_EVENT_TAG", "digest": "…" } ] }
//!   ],
//!   "notes": [ "…" ]
//! }
//! ```
//!
//! Digests are lowercase hex of exactly their bank's size (readers refuse anything else); keys
//! come in the order above (inputs sorted by name), so two runs on the same inputs print the same
//! bytes.
//!
//! ```
//! use cvmkit_measure::{Bank, Register};
//! let mut r = Register::new("RTMR2", Bank::Sha384);
//! r.push("cmdline", Some("EV_EVENT_TAG"), &[0u8; 48])?;
//! assert_eq!(r.value.as_bytes(), Bank::Sha384.fold([[0u8; 48]]).as_slice());
//! # Ok::<(), cvmkit_measure::DocumentError>(())
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod alg;
mod compare;
mod digest;
mod doc;
mod event_type;
mod guid;
pub mod read;

pub use alg::{Bank, HashAlg, Hasher, UnknownBank};
pub use compare::{check, compare, Check, CheckedDocument, EventComparison, Extra, RegisterComparison, Verdict};
pub use digest::{hex, unhex, Digest};
pub use doc::{DocumentError, Event, Input, Measurements, Platform, Register, SCHEMA};
pub use event_type::EventType;
pub use guid::{Guid, ParseGuidError};
pub use read::{Reader, Truncated};
