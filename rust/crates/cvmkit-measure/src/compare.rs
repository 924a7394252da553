//! Comparison of measurements: the one rule behind `cvmkit measure check` (golden values),
//! `cvmkit replay --expect` (a log against a prediction) and verification.
//!
//! Registers are paired by name and bank and compared by value; where the expectation lists
//! events, the n-th expected event is compared with the n-th actual one, so an inserted or
//! missing event shows where the sequences part.

use serde::{Serialize, Serializer};

use crate::{Bank, Digest, Measurements, Platform};

/// Outcome of comparing one event or register.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Verdict {
    /// Equal.
    Match,
    /// Different.
    Mismatch,
    /// Expected but absent.
    Missing,
    /// Present but not expected.
    Unexpected,
}

impl Verdict {
    /// The upper-case word printed and serialized.
    pub fn word(self) -> &'static str {
        match self {
            Verdict::Match => "MATCH",
            Verdict::Mismatch => "MISMATCH",
            Verdict::Missing => "MISSING",
            Verdict::Unexpected => "UNEXPECTED",
        }
    }
}

/// Registers of the actual side that the expectation does not name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Extra {
    /// Not compared: a log extends many registers a prediction does not cover.
    Ignore,
    /// Reported as [`Verdict::Unexpected`]: golden values pin every register.
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
    pub expected: Option<Digest>,
    /// Actual digest.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actual: Option<Digest>,
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
    /// Expected final value (none for an unexpected register; serialized as `""`).
    #[serde(serialize_with = "hex_or_empty")]
    pub expected: Option<Digest>,
    /// Actual final value, if the actual side has the register.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actual: Option<Digest>,
    /// Event-by-event rows (empty when the expectation lists no events).
    pub events: Vec<EventComparison>,
}

fn hex_or_empty<S: Serializer>(d: &Option<Digest>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&d.as_ref().map(Digest::to_hex).unwrap_or_default())
}

impl RegisterComparison {
    /// True when the register and all its events match.
    pub fn is_match(&self) -> bool {
        self.verdict == Verdict::Match && self.events.iter().all(|e| e.verdict == Verdict::Match)
    }

    /// The first event that does not match, where events were compared: what a person looks
    /// at first.
    pub fn first_difference(&self) -> Option<&EventComparison> {
        self.events.iter().find(|e| e.verdict != Verdict::Match)
    }
}

/// Compares every register of `expected` with the same register (name and bank) of `actual`;
/// `extra` says what becomes of registers only `actual` has.
pub fn compare(expected: &Measurements, actual: &Measurements, extra: Extra) -> Vec<RegisterComparison> {
    let mut out: Vec<RegisterComparison> = expected
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
                        (None, None) => continue,
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
                expected: Some(e.value.clone()),
                actual: a.map(|a| a.value.clone()),
                events,
            }
        })
        .collect();
    if extra == Extra::Unexpected {
        for r in actual.registers.iter().filter(|r| expected.register(&r.name, r.bank).is_none()) {
            out.push(RegisterComparison {
                name: r.name.clone(),
                bank: r.bank,
                verdict: Verdict::Unexpected,
                expected: None,
                actual: Some(r.value.clone()),
                events: Vec::new(),
            });
        }
    }
    out
}

/// One document's part of a [`Check`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckedDocument {
    /// The platform both documents describe.
    pub platform: Platform,
    /// Every register of both.
    pub registers: Vec<RegisterComparison>,
}

/// Golden values against actual ones: see [`check`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// Differences that are not about one register (the documents' platforms).
    pub problems: Vec<String>,
    /// The documents compared.
    pub documents: Vec<CheckedDocument>,
}

impl Check {
    /// True when nothing differs.
    pub fn is_match(&self) -> bool {
        self.problems.is_empty() && self.documents.iter().all(|d| d.registers.iter().all(|r| r.is_match()))
    }
}

/// Golden documents against actual ones: documents paired in order (the same platforms in the
/// same order are required), every register of both compared ([`Extra::Unexpected`]). Inputs
/// (file paths and hashes) are not compared: the registers are what a verifier pins.
pub fn check(golden: &[Measurements], actual: &[Measurements]) -> Check {
    let platforms = |d: &[Measurements]| d.iter().map(|m| m.platform.name()).collect::<Vec<_>>();
    let mut problems = Vec::new();
    if platforms(golden) != platforms(actual) {
        problems.push(format!("platforms differ: golden {:?}, actual {:?}", platforms(golden), platforms(actual)));
    }
    let documents = golden
        .iter()
        .zip(actual)
        .filter(|(g, x)| g.platform == x.platform)
        .map(|(g, x)| CheckedDocument { platform: g.platform, registers: compare(g, x, Extra::Unexpected) })
        .collect();
    Check { problems, documents }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Register;

    fn doc(platform: Platform, events: &[u8]) -> Measurements {
        let mut d = Measurements::new(platform);
        let mut r = Register::new("RTMR1", Bank::Sha384);
        for &b in events {
            r.push(format!("e{b}"), None, &[b; 48]).unwrap();
        }
        d.registers.push(r);
        d
    }

    #[test]
    fn compare_reports_each_event() {
        let c = compare(&doc(Platform::Tdx, &[1, 2]), &doc(Platform::Eventlog, &[1, 3, 4]), Extra::Ignore);
        assert_eq!(c[0].verdict, Verdict::Mismatch);
        let v: Vec<_> = c[0].events.iter().map(|e| e.verdict).collect();
        assert_eq!(v, [Verdict::Match, Verdict::Mismatch, Verdict::Unexpected]);
        assert_eq!(c[0].first_difference().unwrap().index, 1);
        assert!(!c[0].is_match());
    }

    #[test]
    fn golden_check_pins_every_register() {
        let g = doc(Platform::Tdx, &[1]);
        let mut a = g.clone();
        assert!(check(std::slice::from_ref(&g), std::slice::from_ref(&a)).is_match());
        a.registers.push(Register::new("RTMR3", Bank::Sha384));
        let c = check(std::slice::from_ref(&g), std::slice::from_ref(&a));
        assert!(!c.is_match());
        assert_eq!(c.documents[0].registers[1].verdict, Verdict::Unexpected);
        let json = serde_json::to_value(&c).unwrap();
        assert_eq!(json["documents"][0]["registers"][1]["expected"], "");
        // A log's extra registers do not count against a prediction.
        assert!(compare(&g, &a, Extra::Ignore).iter().all(|r| r.is_match()));
        let c = check(&[g], &[doc(Platform::Tpm, &[1])]);
        assert_eq!(c.problems, ["platforms differ: golden [\"tdx\"], actual [\"tpm\"]"]);
    }
}
