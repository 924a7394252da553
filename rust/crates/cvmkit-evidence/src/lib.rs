//! Attestation evidence, verified offline: TDX DCAP quotes, SEV-SNP reports, vTPM quotes and
//! Azure HCL reports, each checked step by step and then against a build's prediction.
//!
//! Every verification produces a [`Report`] (`cvmkit.verdict/v1`): the checks made with
//! pass/fail/skipped and why, the evidence's claims, and per register MATCH/MISMATCH. Roots of
//! trust are pinned in this crate ([`roots`]); a root that arrives inside the evidence is never
//! trusted.
//!
//! Errors ([`Error`]) are for input that cannot be read at all (a truncated quote, a collateral
//! file that is not JSON, an argument in the wrong shape): the CLI exits 2 for them. Evidence
//! that parses but fails a check is a [`Report`] whose [`Report::passed`] is false.

pub mod azure;
pub mod expect;
pub mod gcp;
pub mod reference;
pub mod roots;
pub mod snp;
pub mod tdx;
pub mod tpm;
pub mod verdict;

pub use verdict::{Check, Report, RegisterStatus, RegisterVerdict, Status, SCHEMA};

/// Input that cannot be used (CLI exit 2). The message names what is wrong; the caller names
/// the file.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The evidence itself cannot be parsed.
    #[error("not a valid {what}: {reason}")]
    Malformed { what: &'static str, reason: String },
    /// A supporting input (collateral, certificate, prediction, option) is unusable.
    #[error("{0}")]
    Input(String),
}

impl Error {
    pub(crate) fn malformed(what: &'static str, reason: impl ToString) -> Error {
        // Decoders' messages may span lines; the CLI prints one.
        let reason = reason.to_string().split('\n').map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(": ");
        Error::Malformed { what, reason }
    }
}

/// Parses a hex option such as `--report-data` or `--nonce`: upper or lower case, an optional
/// `0x`, at most `max` bytes.
pub fn parse_hex_option(option: &str, text: &str, max: usize) -> Result<Vec<u8>, Error> {
    let t = text.trim();
    let t = t.strip_prefix("0x").unwrap_or(t);
    let bytes = cvmkit_measure::unhex(t)
        .ok_or_else(|| Error::Input(format!("{option}: not hexadecimal (an even number of 0-9a-f digits): {text:?}")))?;
    if bytes.len() > max {
        return Err(Error::Input(format!("{option}: {} bytes, at most {max} allowed", bytes.len())));
    }
    Ok(bytes)
}
