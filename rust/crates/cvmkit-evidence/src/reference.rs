//! Reference values for the registers a cloud's firmware sets: documents of the
//! `cvmkit.measurements/v1` family whose registers carry a `source`, several registers of one
//! name being alternatives (one MRTD per firmware release, RTMR0 per machine type).
//!
//! `cvmkit verify --reference FILE` judges with them the registers a prediction leaves to the
//! cloud (or does not cover); `cvmkit reference capture` makes them from a real VM.

use cvmkit_measure::{Bank, Digest, HashAlg, Measurements, Platform, Register};

use crate::{tdx, Error, RegisterStatus, Report, Status};

/// Judges the registers of `report` that no prediction judged (`CLOUD`, `NOT_PREDICTED`) by the
/// references: `MATCH` when the value is one of the alternatives (naming its source),
/// `MISMATCH` when the references list the register but none of their values. Registers the
/// references do not list stay as they were.
pub fn apply(report: &mut Report, references: &[Measurements]) {
    let mut registers = std::mem::take(&mut report.registers);
    for r in registers.iter_mut().filter(|r| matches!(r.status, RegisterStatus::Cloud | RegisterStatus::NotPredicted)) {
        let candidates: Vec<&Register> = references.iter().flat_map(|d| &d.registers).filter(|c| c.name == r.name && c.bank == r.bank).collect();
        if candidates.is_empty() {
            continue;
        }
        let Some(actual) = &r.actual else { continue };
        match candidates.iter().find(|c| &c.value == actual) {
            Some(c) => {
                r.status = RegisterStatus::Match;
                r.expected = Some(c.value.clone());
                r.source = Some(c.source.clone().unwrap_or_else(|| "reference".into()));
            }
            None => {
                r.status = RegisterStatus::Mismatch;
                r.expected = Some(candidates[0].value.clone());
                r.source = Some(format!("none of {} reference value(s)", candidates.len()));
            }
        }
    }
    report.set_registers(registers);
}

/// What a capture is made of.
#[derive(Debug, Clone, Default)]
pub struct Capture<'a> {
    /// The event log: a TDX CCEL (or dstack's JSON log) or a vTPM log.
    pub log: &'a [u8],
    /// The file name for the sources.
    pub log_name: &'a str,
    /// TDX: the quote of the same boot, verified before its MRTD is trusted.
    pub quote: Option<&'a [u8]>,
    /// The VM shape the values hold for (e.g. `c3-standard-4`), recorded in each source.
    pub machine_type: Option<&'a str>,
    /// Unix time for the quote's certificate validity.
    pub at: u64,
}

/// Turns a real VM's log (and quote) into reference values for the platform registers: RTMR0
/// (TDX, with its events) and, with a quote that verifies and that the log replays to, MRTD;
/// PCR 0-7 of every bank of a vTPM log. Returns the document and the quote's verdict.
pub fn capture(c: &Capture) -> Result<(Measurements, Option<Report>), Error> {
    let shape = c.machine_type.map(|m| format!(", machine type {m}")).unwrap_or_default();
    // One replay decides the kind and, for a vTPM log, is the capture.
    let tpm_log = cvmkit_tcg_log::document(c.log_name, c.log, None).ok().map(|(d, _)| d).filter(|d| d.registers.iter().any(|r| r.name.starts_with("PCR")));
    if let Some(log) = tpm_log {
        if c.quote.is_some() {
            return Err(Error::Input("--quote is for a TDX CCEL; a vTPM log is captured alone".into()));
        }
        let mut doc = Measurements::new(Platform::Tpm);
        for mut r in log.registers.into_iter().filter(|r| pcr_index(&r.name).is_some_and(|i| i < 8)) {
            r.source = Some(format!("captured from the vTPM log {}{shape}", c.log_name));
            doc.registers.push(r);
        }
        doc.notes.push("PCR 0-7 as a real VM's firmware measured them: references for the cloud's registers".into());
        return Ok((doc, None));
    }
    let log = tdx::parse_event_log(c.log)?;
    let mut doc = Measurements::new(Platform::Tdx);
    let mut verdict = None;
    if let Some(q) = c.quote {
        let mut o = tdx::Options::new(c.at);
        o.event_log = Some(&log);
        let r = tdx::verify(q, &o)?;
        let ok = ["quote-signature", "pck-chain", "qe-report-signature", "qe-report-binding", "event-log"].iter().all(|n| r.status(n) == Some(Status::Pass));
        if ok {
            let quote = tdx::parse(q)?;
            let td = quote.report.as_td10().expect("parse() refuses SGX quotes");
            let mut mrtd = Register::new("MRTD", Bank::Sha384);
            mrtd.value = Digest::new(HashAlg::SHA384, td.mr_td.to_vec());
            mrtd.source = Some(format!("captured from a verified quote with the CCEL {}{shape}", c.log_name));
            doc.registers.push(mrtd);
        }
        verdict = Some(r);
        if !ok {
            return Ok((doc, verdict));
        }
    }
    let mut rtmr0 = log.register("RTMR0", Bank::Sha384).cloned().ok_or_else(|| Error::Input(format!("{}: the log extends no RTMR0", c.log_name)))?;
    rtmr0.source = Some(format!("captured from the CCEL {}{shape}", c.log_name));
    doc.registers.push(rtmr0);
    doc.notes.push("MRTD and RTMR0 as a real VM's firmware measured them: references for the cloud's registers (RTMR0 holds for VMs of the same machine type and firmware release)".into());
    Ok((doc, verdict))
}

fn pcr_index(name: &str) -> Option<u32> {
    name.strip_prefix("PCR")?.parse().ok()
}
