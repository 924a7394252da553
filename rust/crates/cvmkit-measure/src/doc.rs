//! The measurement document (`cvmkit.measurements/v1`): what `cvmkit measure` predicts and
//! `cvmkit replay` reads from a log, in one shape.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{hex, unhex, Bank, Digest};

/// The value of [`Measurements::schema`] this crate writes and reads.
pub const SCHEMA: &str = "cvmkit.measurements/v1";

/// Why a document was refused, or an event could not be added. Messages are one line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DocumentError {
    /// Not JSON of the document's shape.
    #[error("not a cvmkit measurement document: {0}")]
    Json(String),
    /// Another schema.
    #[error("schema {found:?} is not {SCHEMA:?}")]
    Schema {
        /// The schema the document names.
        found: String,
    },
    /// A digest that is not hex, or not as long as its register's bank.
    #[error("register {register} ({bank}): {what} {value:?} is not {size} bytes of hex")]
    Digest {
        /// The register.
        register: String,
        /// Its bank.
        bank: Bank,
        /// `value` or `event N`.
        what: String,
        /// The text or hex found.
        value: String,
        /// The bank's digest size.
        size: usize,
    },
}

/// What a document describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Platform {
    /// AMD SEV-SNP launch digest.
    Snp,
    /// AMD SEV-ES launch digest.
    Seves,
    /// AMD SEV launch digest.
    Sev,
    /// Intel TDX MRTD and RTMRs.
    Tdx,
    /// TPM PCRs.
    Tpm,
    /// A replayed event log.
    Eventlog,
}

impl Platform {
    /// The name as the JSON spells it.
    pub fn name(self) -> &'static str {
        match self {
            Platform::Snp => "snp",
            Platform::Seves => "seves",
            Platform::Sev => "sev",
            Platform::Tdx => "tdx",
            Platform::Tpm => "tpm",
            Platform::Eventlog => "eventlog",
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A whole prediction or replay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Measurements {
    /// Always [`SCHEMA`]; readers refuse other values.
    pub schema: String,
    /// What the document describes.
    pub platform: Platform,
    /// What the values were computed from: files with their sha256, and parameters.
    pub inputs: BTreeMap<String, Input>,
    /// Registers in the order the platform defines them (MRTD, RTMR0…; PCR0…).
    pub registers: Vec<Register>,
    /// Things a verifier should know that are not register values: assumptions a prediction
    /// rests on, problems found in a replayed log (`warning: duplicate separator …`).
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub notes: Vec<String>,
    /// Registers the target's firmware sets and the image does not choose (a cloud's own
    /// firmware): not predicted here, and a verifier reports them as the cloud's instead of
    /// judging them. Names as in `registers` (`MRTD`, `RTMR0`, `PCR0` …).
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub cloud: Vec<String>,
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
        Input { path: Some(path.into()), sha256: Some(hex(&Bank::Sha256.hash(data))), value: None }
    }
    /// A parameter input.
    pub fn value(value: impl ToString) -> Input {
        Input { value: Some(value.to_string()), ..Input::default() }
    }
}

/// One register: its final value and, where known, the events that produced it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Register {
    /// `MRTD`, `RTMR0`…`RTMR3`, `PCR0`…`PCR23`, `LAUNCH_DIGEST`.
    pub name: String,
    /// The hash bank.
    pub bank: Bank,
    /// Final value, as long as the bank's digests.
    pub value: Digest,
    /// Ordered events; for extend-style registers folding their digests from zeros gives `value`.
    pub events: Vec<Event>,
    /// Where the value comes from when it is not computed here (a vendor's signed endorsement).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub source: Option<String>,
}

impl Register {
    /// An extend-style register at its reset value (all zeros).
    pub fn new(name: impl Into<String>, bank: Bank) -> Register {
        Register { name: name.into(), bank, value: Digest::new(bank.alg(), bank.zero()), events: Vec::new(), source: None }
    }

    /// A register with a given value: not an extend chain (SNP launch digest, MRTD), or one
    /// whose events are listed with [`Register::note_event`].
    pub fn with_value(name: impl Into<String>, bank: Bank, value: &[u8]) -> Result<Register, DocumentError> {
        let name = name.into();
        let value = Register::digest_of(&name, bank, "value", value)?;
        Ok(Register { name, bank, value, events: Vec::new(), source: None })
    }

    fn digest_of(name: &str, bank: Bank, what: &str, bytes: &[u8]) -> Result<Digest, DocumentError> {
        if bytes.len() != bank.digest_size() {
            return Err(DocumentError::Digest {
                register: name.to_string(),
                bank,
                what: what.to_string(),
                value: hex(bytes),
                size: bank.digest_size(),
            });
        }
        Ok(Digest::new(bank.alg(), bytes))
    }

    /// Appends an event and extends the value with its digest.
    pub fn push(&mut self, label: impl Into<String>, event_type: Option<&str>, digest: &[u8]) -> Result<(), DocumentError> {
        self.note_event(label, event_type, digest)?;
        let digest = self.events.last().map(|e| e.digest.as_bytes().to_vec()).unwrap_or_default();
        self.value.extend(&digest);
        Ok(())
    }

    /// Appends an event without changing the value (for registers whose value is given).
    pub fn note_event(&mut self, label: impl Into<String>, event_type: Option<&str>, digest: &[u8]) -> Result<(), DocumentError> {
        let what = format!("event {}", self.events.len());
        let digest = Register::digest_of(&self.name, self.bank, &what, digest)?;
        self.events.push(Event { label: label.into(), event_type: event_type.map(str::to_string), digest });
        Ok(())
    }
}

/// One measured event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Event {
    /// What was measured, for people ("Authenticode of the UKI", "kernel command line").
    pub label: String,
    /// The TCG event type name (`EV_SEPARATOR` …) where there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_type: Option<String>,
    /// The digest extended, in the register's bank.
    pub digest: Digest,
}

/// The document as JSON holds it, before the digests are checked against their banks.
#[derive(Deserialize)]
struct RawDocument {
    schema: String,
    platform: Platform,
    inputs: BTreeMap<String, Input>,
    registers: Vec<RawRegister>,
    #[serde(default)]
    notes: Vec<String>,
    #[serde(default)]
    cloud: Vec<String>,
}

/// A register as JSON holds it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRegister {
    name: String,
    bank: Bank,
    value: String,
    events: Vec<RawEvent>,
    #[serde(default)]
    source: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEvent {
    label: String,
    #[serde(default)]
    event_type: Option<String>,
    digest: String,
}

impl TryFrom<RawRegister> for Register {
    type Error = DocumentError;

    fn try_from(raw: RawRegister) -> Result<Register, DocumentError> {
        let parse = |what: String, text: &str| {
            let bytes = unhex(text).ok_or_else(|| DocumentError::Digest {
                register: raw.name.clone(),
                bank: raw.bank,
                what: what.clone(),
                value: text.chars().take(160).collect(),
                size: raw.bank.digest_size(),
            })?;
            Register::digest_of(&raw.name, raw.bank, &what, &bytes)
        };
        let value = parse("value".into(), &raw.value)?;
        let events = raw
            .events
            .iter()
            .enumerate()
            .map(|(i, e)| {
                Ok(Event { label: e.label.clone(), event_type: e.event_type.clone(), digest: parse(format!("event {i}"), &e.digest)? })
            })
            .collect::<Result<_, DocumentError>>()?;
        Ok(Register { name: raw.name, bank: raw.bank, value, events, source: raw.source })
    }
}

impl Measurements {
    /// An empty document for `platform`.
    pub fn new(platform: Platform) -> Measurements {
        Measurements { schema: SCHEMA.to_string(), platform, inputs: BTreeMap::new(), registers: Vec::new(), notes: Vec::new(), cloud: Vec::new() }
    }

    /// Reads a document, refusing other schemas and digests that do not fit their bank.
    pub fn from_json(text: &str) -> Result<Measurements, DocumentError> {
        let value: serde_json::Value = serde_json::from_str(text).map_err(|e| DocumentError::Json(e.to_string()))?;
        Measurements::from_value(value)
    }

    /// [`Measurements::from_json`] for parsed JSON.
    pub fn from_value(value: serde_json::Value) -> Result<Measurements, DocumentError> {
        // The schema is checked first, so a document of another schema gets that error rather
        // than one about a field it does not have.
        if let Some(s) = value.get("schema").and_then(|s| s.as_str()) {
            if s != SCHEMA {
                return Err(DocumentError::Schema { found: s.to_string() });
            }
        }
        let raw: RawDocument = serde_json::from_value(value).map_err(|e| DocumentError::Json(e.to_string()))?;
        if raw.schema != SCHEMA {
            return Err(DocumentError::Schema { found: raw.schema });
        }
        Ok(Measurements {
            schema: raw.schema,
            platform: raw.platform,
            inputs: raw.inputs,
            registers: raw.registers.into_iter().map(Register::try_from).collect::<Result<_, _>>()?,
            notes: raw.notes,
            cloud: raw.cloud,
        })
    }

    /// One document, or every document of a JSON array (an image's `measurements.json`).
    pub fn list_from_json(text: &str) -> Result<Vec<Measurements>, (Option<usize>, DocumentError)> {
        let value: serde_json::Value = serde_json::from_str(text).map_err(|e| (None, DocumentError::Json(e.to_string())))?;
        match value {
            serde_json::Value::Array(items) => items
                .into_iter()
                .enumerate()
                .map(|(i, v)| Measurements::from_value(v).map_err(|e| (Some(i), e)))
                .collect(),
            one => Ok(vec![Measurements::from_value(one).map_err(|e| (None, e))?]),
        }
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

    /// Records a file input by its path and contents.
    pub fn add_file(&mut self, name: &str, path: &std::path::Path, data: &[u8]) {
        self.inputs.insert(name.to_string(), Input::file(path.display().to_string(), data));
    }

    /// Records a parameter input.
    pub fn add_value(&mut self, name: &str, value: impl ToString) {
        self.inputs.insert(name.to_string(), Input::value(value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_folds_and_checks_length() {
        let mut r = Register::new("RTMR2", Bank::Sha384);
        r.push("abc", None, &Bank::Sha384.hash(b"abc")).unwrap();
        assert_eq!(
            r.value.to_hex(),
            "93732e3733514a841c982cfa75ea76ab55fe011acb9cd980ef4523913c65be1b0998e04d77f8c174f81a82151619ca40"
        );
        let e = r.push("short", None, &[0; 32]).unwrap_err();
        assert!(matches!(e, DocumentError::Digest { size: 48, .. }), "{e}");
        assert_eq!(r.events.len(), 1);
    }

    #[test]
    fn reading_refuses_bad_digests_and_schemas() {
        let mut d = Measurements::new(Platform::Tdx);
        let mut r = Register::new("RTMR1", Bank::Sha384);
        r.push("a", Some("EV_IPL"), &[1; 48]).unwrap();
        d.registers.push(r);
        let text = d.to_json();
        assert_eq!(Measurements::from_json(&text).unwrap(), d);
        let bad = text.replacen(&"01".repeat(48), &"01".repeat(47), 1);
        assert!(matches!(Measurements::from_json(&bad), Err(DocumentError::Digest { .. })));
        let bad = text.replacen(&"01".repeat(48), &"zz".repeat(48), 1);
        assert!(matches!(Measurements::from_json(&bad), Err(DocumentError::Digest { .. })));
        let other = text.replace(SCHEMA, "cvmkit.measurements/v9");
        assert!(matches!(Measurements::from_json(&other), Err(DocumentError::Schema { .. })));
        assert!(matches!(Measurements::from_json("[]"), Err(DocumentError::Json(_))));
        let list = format!("[{text}, {text}]");
        assert_eq!(Measurements::list_from_json(&list).unwrap().len(), 2);
        assert_eq!(Measurements::list_from_json(&format!("[{text}, {bad}]")).unwrap_err().0, Some(1));
    }
}
