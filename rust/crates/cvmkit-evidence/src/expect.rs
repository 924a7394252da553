//! Evidence against a prediction (`--expect`): the shared comparison rule of
//! `cvmkit measure check` and `cvmkit replay --expect`, plus the bindings every kind of evidence
//! has (report data, nonces).

use cvmkit_measure::{compare as compare_docs, Extra, Measurements};

use crate::{RegisterVerdict, Report};

/// Every register of the evidence, judged against `expected` when given: predicted registers
/// MATCH, MISMATCH (with the first differing event where both sides list events) or are
/// MISSING; registers the prediction does not cover are NOT_PREDICTED — shown, never passed as
/// matching.
pub fn compare(actual: &Measurements, expected: Option<&Measurements>) -> Vec<RegisterVerdict> {
    match expected {
        None => actual.registers.iter().map(|r| RegisterVerdict::reported(&r.name, r.bank, r.value.clone())).collect(),
        Some(e) => compare_docs(e, actual, Extra::Unexpected).iter().map(RegisterVerdict::from_comparison).collect(),
    }
}

/// `report-data`: the evidence's 64-byte report data against the caller's value, zero-padded
/// to 64 bytes (a 32-byte nonce is commonly sent as-is).
pub fn report_data_check(report: &mut Report, actual: &[u8; 64], expected: Option<&[u8]>) {
    const NAME: &str = "report-data";
    let Some(expected) = expected else {
        report.skip(NAME, "no --report-data given: the evidence is not checked to be fresh or bound to a key of yours");
        return;
    };
    let mut padded = [0u8; 64];
    padded[..expected.len()].copy_from_slice(expected);
    if &padded == actual {
        report.pass(NAME, "report data equals the given value");
    } else {
        report.fail(NAME, format!("report data is {}, not the given value", cvmkit_measure::hex(actual)));
    }
}
