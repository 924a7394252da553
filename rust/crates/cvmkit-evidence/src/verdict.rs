//! The verdict document, `cvmkit.verdict/v1`: what was checked, what the evidence claims, and
//! how its registers compare with a prediction.

use std::collections::BTreeMap;

use cvmkit_measure::{Bank, Digest, EventComparison, RegisterComparison, Verdict};
use serde::Serialize;

/// The schema identifier written into every verdict document.
pub const SCHEMA: &str = "cvmkit.verdict/v1";

/// The outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Fail,
    /// Not made, and `reason` says why (no collateral, no event log …): never silently passed.
    Skipped,
}

impl Status {
    pub fn word(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Fail => "fail",
            Status::Skipped => "skipped",
        }
    }
}

/// One check: a stable name (`quote-signature`, `pck-chain` …), its status, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    pub name: String,
    pub status: Status,
    pub reason: String,
}

/// How a register of the evidence compares with the prediction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RegisterStatus {
    /// Equal to the prediction.
    Match,
    /// Different from the prediction.
    Mismatch,
    /// Predicted, but the evidence does not report it.
    Missing,
    /// Reported, and the prediction does not cover it: shown, not judged.
    NotPredicted,
    /// The prediction says the cloud owns it (firmware the image does not choose): shown, not
    /// judged.
    Cloud,
}

impl RegisterStatus {
    pub fn word(self) -> &'static str {
        match self {
            RegisterStatus::Match => "MATCH",
            RegisterStatus::Mismatch => "MISMATCH",
            RegisterStatus::Missing => "MISSING",
            RegisterStatus::NotPredicted => "NOT_PREDICTED",
            RegisterStatus::Cloud => "CLOUD",
        }
    }

    fn fails(self) -> bool {
        matches!(self, RegisterStatus::Mismatch | RegisterStatus::Missing)
    }
}

/// One register of the evidence, with the prediction when there is one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RegisterVerdict {
    pub name: String,
    pub bank: Bank,
    pub status: RegisterStatus,
    /// The value the evidence reports (absent when missing).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actual: Option<Digest>,
    /// The predicted value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected: Option<Digest>,
    /// Where an event log was given and the prediction lists events: the first event that
    /// differs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_difference: Option<EventComparison>,
    /// Where `expected` comes from when a reference judged the register.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// For a mismatch, with the image's SBOM: the components that feed the register and, given
    /// an image that predicts the reported value, what changed in them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub explanation: Vec<String>,
}

impl RegisterVerdict {
    /// A reported register with nothing to compare it with.
    pub fn reported(name: impl Into<String>, bank: Bank, value: Digest) -> RegisterVerdict {
        RegisterVerdict {
            name: name.into(),
            bank,
            status: RegisterStatus::NotPredicted,
            actual: Some(value),
            expected: None,
            first_difference: None,
            source: None,
            explanation: Vec::new(),
        }
    }

    /// From the shared comparison rule.
    pub fn from_comparison(c: &RegisterComparison) -> RegisterVerdict {
        let status = match c.verdict {
            Verdict::Match if c.is_match() => RegisterStatus::Match,
            Verdict::Match | Verdict::Mismatch => RegisterStatus::Mismatch,
            Verdict::Missing => RegisterStatus::Missing,
            Verdict::Unexpected => RegisterStatus::NotPredicted,
        };
        RegisterVerdict {
            name: c.name.clone(),
            bank: c.bank,
            status,
            actual: c.actual.clone(),
            expected: c.expected.clone(),
            first_difference: c.first_difference().cloned(),
            source: None,
            explanation: Vec::new(),
        }
    }
}

/// A verdict document.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub schema: &'static str,
    /// `tdx`, `snp`, `tpm` or `azure`.
    pub evidence: &'static str,
    /// `valid` when every check passed (or was skipped with a reason) and no register
    /// mismatched; `invalid` otherwise.
    pub result: &'static str,
    pub checks: Vec<Check>,
    /// Parsed fields of the evidence, by name (sorted: the document is byte-stable).
    pub claims: BTreeMap<String, serde_json::Value>,
    pub registers: Vec<RegisterVerdict>,
    /// What a reader should know that is not a check (e.g. whose launch measurement this is).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl Report {
    pub fn new(evidence: &'static str) -> Report {
        Report {
            schema: SCHEMA,
            evidence,
            result: "valid",
            checks: Vec::new(),
            claims: BTreeMap::new(),
            registers: Vec::new(),
            notes: Vec::new(),
        }
    }

    /// Records a check; `Ok` is a pass with its reason, `Err` a failure with its reason.
    pub fn check(&mut self, name: &str, outcome: Result<String, String>) -> bool {
        let (status, reason) = match outcome {
            Ok(r) => (Status::Pass, r),
            Err(r) => (Status::Fail, r),
        };
        self.push(name, status, reason);
        status == Status::Pass
    }

    pub fn pass(&mut self, name: &str, reason: impl Into<String>) {
        self.push(name, Status::Pass, reason.into());
    }

    pub fn fail(&mut self, name: &str, reason: impl Into<String>) {
        self.push(name, Status::Fail, reason.into());
    }

    pub fn skip(&mut self, name: &str, reason: impl Into<String>) {
        self.push(name, Status::Skipped, reason.into());
    }

    fn push(&mut self, name: &str, status: Status, reason: String) {
        self.checks.push(Check { name: name.to_string(), status, reason });
        self.update();
    }

    pub fn claim(&mut self, name: &str, value: impl Into<serde_json::Value>) {
        self.claims.insert(name.to_string(), value.into());
    }

    /// Claims a byte string, as lower-case hex.
    pub fn claim_hex(&mut self, name: &str, bytes: &[u8]) {
        self.claim(name, cvmkit_measure::hex(bytes));
    }

    pub fn set_registers(&mut self, registers: Vec<RegisterVerdict>) {
        self.registers = registers;
        self.update();
    }

    fn update(&mut self) {
        let failed = self.checks.iter().any(|c| c.status == Status::Fail) || self.registers.iter().any(|r| r.status.fails());
        self.result = if failed { "invalid" } else { "valid" };
    }

    /// True when nothing failed: the CLI's exit 0.
    pub fn passed(&self) -> bool {
        self.result == "valid"
    }

    /// The status of a check by name (tests and callers that care about one step).
    pub fn status(&self, name: &str) -> Option<Status> {
        self.checks.iter().find(|c| c.name == name).map(|c| c.status)
    }

    /// The names of the failed checks.
    pub fn failed(&self) -> Vec<&str> {
        self.checks.iter().filter(|c| c.status == Status::Fail).map(|c| c.name.as_str()).collect()
    }

    /// The document as pretty JSON with a final newline.
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).expect("a report always serializes");
        s.push('\n');
        s
    }
}
