//! The measurement document: one JSON schema for everything cvmkit predicts or replays.
//!
//! `cvmkit measure snp|tdx|tpm` and `cvmkit replay` all print a [`Measurements`] document, so a
//! verifier, `nix flake check` or a CI job consumes one shape whatever the platform:
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
//! Digests are lowercase hex; keys come in the order above (inputs sorted by name), so two runs on
//! the same inputs print the same bytes. [`compare`] matches a replayed log against a prediction
//! event by event, which is what `cvmkit replay --expect` reports.
//!
//! ```
//! use cvmkit_measure::{Bank, Event, Register};
//! let mut r = Register::new("RTMR2", Bank::Sha384);
//! r.push(Event::new("cmdline", Some("EV_EVENT_TAG"), vec![0u8; 48]));
//! assert_eq!(r.value.len(), 96); // hex of 48 bytes, folded from zeros
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256, Sha384, Sha512};

/// The value of [`Measurements::schema`] this crate writes and reads.
pub const SCHEMA: &str = "cvmkit.measurements/v1";

/// A whole prediction or replay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Measurements {
    /// Always [`SCHEMA`]; readers refuse other values.
    pub schema: String,
    /// `snp`, `seves`, `sev`, `tdx`, `tpm`, or `eventlog` for a replay.
    pub platform: String,
    /// What the values were computed from: files with their sha256, and parameters.
    pub inputs: BTreeMap<String, Input>,
    /// Registers in the order the platform defines them (MRTD, RTMR0…; PCR0…).
    pub registers: Vec<Register>,
    /// Things a verifier should know that are not register values: assumptions a prediction
    /// rests on, problems found in a replayed log (`warning: duplicate separator …`).
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub notes: Vec<String>,
}

/// One input: a file (path + sha256) or a parameter value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Input {
    /// Path of a file input, as given.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub path: Option<String>,
    /// sha256 of a file input.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub sha256: Option<String>,
    /// Value of a parameter input.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub value: Option<String>,
}

impl Input {
    /// A file input.
    pub fn file(path: impl Into<String>, data: &[u8]) -> Input {
        Input { path: Some(path.into()), sha256: Some(hex(&Sha256::digest(data))), value: None }
    }
    /// A parameter input.
    pub fn value(value: impl ToString) -> Input {
        Input { value: Some(value.to_string()), ..Input::default() }
    }
}

/// A hash bank (algorithm) of a register.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Bank {
    /// SHA-1 (TPM logs only).
    Sha1,
    /// SHA-256.
    Sha256,
    /// SHA-384 (TDX registers, SNP launch digest).
    Sha384,
    /// SHA-512.
    Sha512,
}

impl Bank {
    /// Digest length in bytes.
    pub fn digest_len(self) -> usize {
        match self {
            Bank::Sha1 => 20,
            Bank::Sha256 => 32,
            Bank::Sha384 => 48,
            Bank::Sha512 => 64,
        }
    }

    /// Lowercase name, as in the JSON.
    pub fn name(self) -> &'static str {
        match self {
            Bank::Sha1 => "sha1",
            Bank::Sha256 => "sha256",
            Bank::Sha384 => "sha384",
            Bank::Sha512 => "sha512",
        }
    }

    /// `H(a || b)` in this bank: the extend operation of TPM PCRs and TDX RTMRs.
    pub fn extend(self, register: &[u8], digest: &[u8]) -> Vec<u8> {
        fn h<D: sha2::Digest>(a: &[u8], b: &[u8]) -> Vec<u8> {
            let mut d = D::new();
            d.update(a);
            d.update(b);
            d.finalize().to_vec()
        }
        match self {
            Bank::Sha1 => h::<sha1::Sha1>(register, digest),
            Bank::Sha256 => h::<Sha256>(register, digest),
            Bank::Sha384 => h::<Sha384>(register, digest),
            Bank::Sha512 => h::<Sha512>(register, digest),
        }
    }
}

/// One register: its final value and, where known, the events that produced it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Register {
    /// `MRTD`, `RTMR0`…`RTMR3`, `PCR0`…`PCR23`, `LAUNCH_DIGEST`.
    pub name: String,
    /// The hash bank.
    pub bank: Bank,
    /// Final value, lowercase hex.
    pub value: String,
    /// Ordered events; for extend-style registers folding their digests from zeros gives `value`.
    pub events: Vec<Event>,
}

impl Register {
    /// An extend-style register at its reset value (all zeros).
    pub fn new(name: impl Into<String>, bank: Bank) -> Register {
        Register { name: name.into(), bank, value: hex(&vec![0; bank.digest_len()]), events: Vec::new() }
    }

    /// A register whose value is not an extend chain (SNP launch digest, MRTD); `events` are
    /// informational.
    pub fn with_value(name: impl Into<String>, bank: Bank, value: &[u8]) -> Register {
        Register { name: name.into(), bank, value: hex(value), events: Vec::new() }
    }

    /// Appends `event` and extends the value with its digest.
    pub fn push(&mut self, event: Event) {
        let current = unhex(&self.value).unwrap_or_else(|| vec![0; self.bank.digest_len()]);
        let digest = unhex(&event.digest).unwrap_or_default();
        self.value = hex(&self.bank.extend(&current, &digest));
        self.events.push(event);
    }
}

/// One measured event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// What was measured, for people ("Authenticode of the UKI", "kernel command line").
    pub label: String,
    /// The TCG event type name (`EV_SEPARATOR` …) where there is one.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub event_type: Option<String>,
    /// The digest extended, lowercase hex.
    pub digest: String,
}

impl Event {
    /// An event from raw digest bytes.
    pub fn new(label: impl Into<String>, event_type: Option<&str>, digest: Vec<u8>) -> Event {
        Event { label: label.into(), event_type: event_type.map(str::to_string), digest: hex(&digest) }
    }
}

impl Measurements {
    /// An empty document for `platform`.
    pub fn new(platform: impl Into<String>) -> Measurements {
        Measurements {
            schema: SCHEMA.to_string(),
            platform: platform.into(),
            inputs: BTreeMap::new(),
            registers: Vec::new(),
            notes: Vec::new(),
        }
    }

    /// Reads a document, refusing other schemas.
    pub fn from_json(text: &str) -> Result<Measurements, String> {
        let m: Measurements = serde_json::from_str(text).map_err(|e| format!("not a cvmkit measurement document: {e}"))?;
        if m.schema != SCHEMA {
            return Err(format!("schema {:?} is not {SCHEMA:?}", m.schema));
        }
        Ok(m)
    }

    /// Pretty JSON with a trailing newline.
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).expect("plain data serializes");
        s.push('\n');
        s
    }

    /// The register `name` in `bank`.
    pub fn register(&self, name: &str, bank: Bank) -> Option<&Register> {
        self.registers.iter().find(|r| r.name == name && r.bank == bank)
    }
}

/// Outcome of comparing one event or register.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Verdict {
    /// Equal.
    Match,
    /// Different.
    Mismatch,
    /// Predicted but absent from the log.
    Missing,
    /// In the log but not predicted.
    Unexpected,
}

/// One row of a comparison.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EventComparison {
    /// Position within the register's events.
    pub index: usize,
    /// The verdict.
    pub verdict: Verdict,
    /// Label of the expected event, or of the actual one when unexpected.
    pub label: String,
    /// Expected digest.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected: Option<String>,
    /// Actual digest.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actual: Option<String>,
}

/// Comparison of one register.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RegisterComparison {
    /// Register name.
    pub name: String,
    /// Bank.
    pub bank: Bank,
    /// Verdict on the final values.
    pub verdict: Verdict,
    /// Expected final value.
    pub expected: String,
    /// Actual final value, if the actual document has the register.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actual: Option<String>,
    /// Event-by-event rows (empty when the expectation lists no events).
    pub events: Vec<EventComparison>,
}

impl RegisterComparison {
    /// True when the register and all its events match.
    pub fn is_match(&self) -> bool {
        self.verdict == Verdict::Match && self.events.iter().all(|e| e.verdict == Verdict::Match)
    }
}

/// Compares every register of `expected` with the same register (name and bank) of `actual`.
///
/// Events are matched by position: the n-th predicted event against the n-th logged event of
/// that register, so an inserted or missing event shows where the sequences part.
pub fn compare(expected: &Measurements, actual: &Measurements) -> Vec<RegisterComparison> {
    expected
        .registers
        .iter()
        .map(|e| {
            let a = actual.register(&e.name, e.bank);
            let verdict = match a {
                None => Verdict::Missing,
                Some(a) if a.value == e.value => Verdict::Match,
                Some(_) => Verdict::Mismatch,
            };
            let mut events = Vec::new();
            if !e.events.is_empty() {
                let actual_events = a.map(|a| a.events.as_slice()).unwrap_or(&[]);
                for i in 0..e.events.len().max(actual_events.len()) {
                    let (x, y) = (e.events.get(i), actual_events.get(i));
                    let (verdict, label) = match (x, y) {
                        (Some(x), Some(y)) if x.digest == y.digest => (Verdict::Match, &x.label),
                        (Some(x), Some(_)) => (Verdict::Mismatch, &x.label),
                        (Some(x), None) => (Verdict::Missing, &x.label),
                        (None, Some(y)) => (Verdict::Unexpected, &y.label),
                        (None, None) => unreachable!("index below the longer length"),
                    };
                    events.push(EventComparison {
                        index: i,
                        verdict,
                        label: label.clone(),
                        expected: x.map(|x| x.digest.clone()),
                        actual: y.map(|y| y.digest.clone()),
                    });
                }
            }
            RegisterComparison {
                name: e.name.clone(),
                bank: e.bank,
                verdict,
                expected: e.value.clone(),
                actual: a.map(|a| a.value.clone()),
                events,
            }
        })
        .collect()
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}

/// Parses hex (either case); `None` if it is not hex.
pub fn unhex(text: &str) -> Option<Vec<u8>> {
    let t = text.as_bytes();
    if t.len() % 2 != 0 {
        return None;
    }
    t.chunks(2)
        .map(|p| {
            let d = |c: u8| (c as char).to_digit(16);
            Some((d(p[0])? * 16 + d(p[1])?) as u8)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The extend fold against a value computed by hand with Python's hashlib:
    /// `sha384(b"\0"*48 + sha384(b"abc").digest()).hexdigest()`.
    #[test]
    fn fold_matches_hashlib() {
        let mut r = Register::new("RTMR2", Bank::Sha384);
        r.push(Event::new("abc", None, Sha384::digest(b"abc").to_vec()));
        assert_eq!(
            r.value,
            "93732e3733514a841c982cfa75ea76ab55fe011acb9cd980ef4523913c65be1b0998e04d77f8c174f81a82151619ca40"
        );
    }

    #[test]
    fn compare_reports_each_event() {
        let mut exp = Measurements::new("tdx");
        let mut r = Register::new("RTMR1", Bank::Sha384);
        r.push(Event::new("a", None, vec![1; 48]));
        r.push(Event::new("b", None, vec![2; 48]));
        exp.registers.push(r);
        let mut act = Measurements::new("eventlog");
        let mut r = Register::new("RTMR1", Bank::Sha384);
        r.push(Event::new("a", None, vec![1; 48]));
        r.push(Event::new("b", None, vec![3; 48]));
        r.push(Event::new("c", None, vec![4; 48]));
        act.registers.push(r);
        let c = compare(&exp, &act);
        assert_eq!(c[0].verdict, Verdict::Mismatch);
        let v: Vec<_> = c[0].events.iter().map(|e| e.verdict).collect();
        assert_eq!(v, [Verdict::Match, Verdict::Mismatch, Verdict::Unexpected]);
        assert!(!c[0].is_match());
        let round = Measurements::from_json(&exp.to_json()).unwrap();
        assert_eq!(round, exp);
    }
}
