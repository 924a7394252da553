//! Evidence against a prediction (`--expect`): the shared comparison rule of
//! `cvmkit measure check` and `cvmkit replay --expect`, plus the bindings every kind of evidence
//! has (report data, nonces).

use cvmkit_measure::{compare as compare_docs, Bank, Extra, Measurements, Platform, Register};

use crate::{Error, RegisterStatus, RegisterVerdict, Report};

/// Every register of the evidence, judged against `expected` when given: predicted registers
/// MATCH, MISMATCH (with the first differing event where both sides list events) or are
/// MISSING; registers the prediction says the cloud's firmware sets are CLOUD, and the others
/// it does not cover NOT_PREDICTED — both shown, never passed as matching.
pub fn compare(actual: &Measurements, expected: Option<&Measurements>) -> Vec<RegisterVerdict> {
    let Some(e) = expected else {
        return actual.registers.iter().map(|r| RegisterVerdict::reported(&r.name, r.bank, r.value.clone())).collect();
    };
    let mut out: Vec<RegisterVerdict> = compare_docs(e, actual, Extra::Unexpected).iter().map(RegisterVerdict::from_comparison).collect();
    for r in out.iter_mut().filter(|r| r.status == RegisterStatus::NotPredicted && e.cloud.contains(&r.name)) {
        r.status = RegisterStatus::Cloud;
    }
    out
}

/// The document of `documents` (one, or an image's `measurements.json` list) for `platform`;
/// else a replayed event log (`cvmkit replay --json` of a known-good boot), whose registers are
/// named as the platform's.
pub fn select(documents: Vec<Measurements>, platform: Platform) -> Result<Measurements, Error> {
    let found: Vec<&'static str> = documents.iter().map(|d| d.platform.name()).collect();
    let index = documents
        .iter()
        .position(|d| d.platform == platform)
        .or_else(|| documents.iter().position(|d| d.platform == Platform::Eventlog));
    index
        .map(|i| documents.into_iter().nth(i).expect("index from position"))
        .ok_or_else(|| Error::Input(format!("no {platform} document among the prediction's ({})", found.join(", "))))
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

/// Which runtime register the workload events go to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuntimeRegister {
    /// TDX RTMR3 (SHA-384).
    Rtmr3,
    /// vTPM PCR 15 (SHA-256 bank).
    Pcr15,
}

/// The register cvmkit-runtime extends for `manifest` (the base64 metadata value) and the
/// `hostname` value, one labelled event per workload and one for the hostnames — the events
/// [`cvmkit_manifest::events`] defines, at the runtime's default base port.
pub fn workload_register(manifest: &str, hostnames: Option<&str>, which: RuntimeRegister) -> Result<Register, Error> {
    let manifests = cvmkit_manifest::decode(manifest).map_err(|e| Error::Input(format!("--manifest: {e}")))?;
    let names = cvmkit_manifest::parse_hostnames(hostnames.unwrap_or("")).map_err(|e| Error::Input(format!("--hostname: {e}")))?;
    // The runtime refuses such a list (and runs nothing): no register to expect for it.
    cvmkit_manifest::check_workloads(manifests.len(), cvmkit_manifest::BASE_PORT, cvmkit_manifest::MAX_WORKLOADS)
        .map_err(|e| Error::Input(format!("--manifest: {e}; cvmkit-runtime refuses this deployment")))?;
    let digests: Vec<_> = manifests.iter().map(|m| m.sha256).collect();
    let events = cvmkit_manifest::events(&digests, &names, cvmkit_manifest::BASE_PORT);
    let (name, bank) = match which {
        RuntimeRegister::Rtmr3 => (format!("RTMR{}", cvmkit_manifest::RTMR), Bank::Sha384),
        RuntimeRegister::Pcr15 => (format!("PCR{}", cvmkit_manifest::TPM_PCR), Bank::Sha256),
    };
    let mut reg = Register::new(name, bank);
    for e in &events {
        reg.push(e.clone(), None, &bank.hash(e.as_bytes())).map_err(|e| Error::Input(e.to_string()))?;
    }
    Ok(reg)
}

/// The prediction with the runtime register added (replacing one of the same name and bank).
pub fn with_register(expected: Option<Measurements>, platform: Platform, reg: Register) -> Measurements {
    let mut doc = expected.unwrap_or_else(|| Measurements::new(platform));
    doc.registers.retain(|r| !(r.name == reg.name && r.bank == reg.bank));
    doc.registers.push(reg);
    doc
}
