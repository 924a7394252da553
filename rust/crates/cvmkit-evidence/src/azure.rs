//! Azure confidential VMs: the paravisor's HCL report and the vTPM quote it vouches for.
//!
//! On Azure the guest does not talk to the SEV-SNP or TDX firmware: a paravisor (the HCL) does.
//! It writes an HCL report into vTPM NV index 0x01400001: a 32-byte header, the hardware report
//! (SNP attestation report, or TDX TDREPORT whose quote comes from the IMDS), and runtime claims
//! JSON whose SHA-256 the hardware report's report_data carries. The claims hold the vTPM's
//! attestation key (JWK `HCLAkPub`), which signs TPM quotes of the PCRs. So the chain is:
//! hardware report (verified as in [`crate::snp`] / [`crate::tdx`]) → runtime claims (by hash)
//! → AK → TPM quote → PCRs.
//!
//! The hardware report's launch measurement is the paravisor's, which Azure chooses: it is
//! reported, never compared with the image's prediction. The image is judged by its PCRs.
//!
//! Layouts follow Microsoft's azure-cvm-tooling (`az-cvm-vtpm/src/hcl`) and trustee's
//! `az-snp-vtpm` / `az-tdx-vtpm` verifiers, whose evidence JSON this module also reads.

use std::collections::BTreeMap;

use base64::Engine as _;
use cvmkit_measure::{Bank, Digest, HashAlg, Measurements, Platform, Register};
use serde_json::Value;
use sha2::{Digest as _, Sha256, Sha384, Sha512};

use crate::tpm::{self, AkPublic, TpmtSignature};
use crate::{expect, snp, tdx, Error, Report, Status};

/// `HCLA`, little-endian, at the start of every HCL report.
const HCL_SIGNATURE: &[u8; 4] = b"HCLA";
const HEADER_LEN: usize = 32;
/// The hardware report slot: an SNP report's size; a TDREPORT (1024 bytes) is zero-padded.
const HW_REPORT_LEN: usize = 1184;
const TDREPORT_LEN: usize = 1024;
/// IGVM_REQUEST_DATA: data_size, version, report_type, report_data_hash_type,
/// variable_data_size, then the variable data (the runtime claims JSON).
const REQUEST_DATA: usize = HEADER_LEN + HW_REPORT_LEN;
const VARIABLE_DATA: usize = REQUEST_DATA + 20;

/// The hardware behind the paravisor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hardware {
    Snp,
    Tdx,
}

/// An HCL report, split.
#[derive(Debug, Clone)]
pub struct HclReport {
    pub version: u32,
    pub hardware: Hardware,
    /// The hardware report's bytes (1184 for SNP, 1024 for a TDREPORT).
    pub hw_report: Vec<u8>,
    /// 1 SHA-256, 2 SHA-384, 3 SHA-512: how report_data binds the runtime claims.
    pub hash_type: u32,
    /// The runtime claims JSON, as the hardware report binds it.
    pub runtime_claims: Vec<u8>,
}

/// Splits an HCL report (as read from vTPM NV index 0x01400001; trailing bytes ignored).
pub fn parse_hcl(raw: &[u8]) -> Result<HclReport, Error> {
    const WHAT: &str = "Azure HCL report";
    if raw.len() < VARIABLE_DATA {
        return Err(Error::malformed(WHAT, format!("{} bytes, shorter than the {VARIABLE_DATA}-byte fixed part", raw.len())));
    }
    if &raw[..4] != HCL_SIGNATURE {
        return Err(Error::malformed(WHAT, "it does not start with \"HCLA\""));
    }
    let u32_at = |o: usize| u32::from_le_bytes(raw[o..o + 4].try_into().expect("4 bytes"));
    let report_type = u32_at(REQUEST_DATA + 8);
    let hardware = match report_type {
        2 => Hardware::Snp,
        4 => Hardware::Tdx,
        t => return Err(Error::malformed(WHAT, format!("hardware report type {t} (2 is SNP, 4 is TDX)"))),
    };
    let len = u32_at(REQUEST_DATA + 16) as usize;
    let runtime_claims = raw
        .get(VARIABLE_DATA..VARIABLE_DATA.saturating_add(len))
        .ok_or_else(|| Error::malformed(WHAT, format!("its runtime claims ({len} bytes) extend past the end ({} bytes)", raw.len())))?
        .to_vec();
    let hw_len = if hardware == Hardware::Snp { HW_REPORT_LEN } else { TDREPORT_LEN };
    Ok(HclReport {
        version: u32_at(4),
        hardware,
        hw_report: raw[HEADER_LEN..HEADER_LEN + hw_len].to_vec(),
        hash_type: u32_at(REQUEST_DATA + 12),
        runtime_claims,
    })
}

/// A vTPM quote as Azure's tools hand it over: `TPMS_ATTEST`, the bare RSASSA-SHA256
/// signature, and PCR0-23 of the SHA-256 bank.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TpmQuote {
    pub message: Vec<u8>,
    pub signature: Vec<u8>,
    pub pcrs: Vec<Vec<u8>>,
}

/// Everything Azure evidence consists of.
#[derive(Debug, Clone)]
pub struct Evidence {
    pub hcl_report: Vec<u8>,
    pub tpm_quote: Option<TpmQuote>,
    /// SNP: the VCEK (and chain) that came with the evidence, PEM or DER.
    pub certs: Vec<(String, Vec<u8>)>,
    /// TDX: the quote of the TDREPORT (from the IMDS).
    pub td_quote: Option<Vec<u8>>,
}

/// Reads trustee's Azure evidence JSON (`az-snp-vtpm` / `az-tdx-vtpm`: unversioned with byte
/// arrays, or `version` 1/2 with hex and base64) or a bare HCL report.
pub fn parse_evidence(raw: &[u8]) -> Result<Evidence, Error> {
    if raw.starts_with(HCL_SIGNATURE) {
        return Ok(Evidence { hcl_report: raw.to_vec(), tpm_quote: None, certs: Vec::new(), td_quote: None });
    }
    const WHAT: &str = "Azure evidence (an HCL report, or trustee's az-snp-vtpm/az-tdx-vtpm JSON)";
    let v: Value = serde_json::from_slice(raw).map_err(|e| Error::malformed(WHAT, e))?;
    let field = |names: &[&str]| names.iter().find_map(|n| v.get(*n));
    let hcl = field(&["hcl_report", "report"]).ok_or_else(|| Error::malformed(WHAT, "no hcl_report"))?;
    let hcl_report = bytes(hcl).map_err(|e| Error::malformed(WHAT, format!("hcl_report: {e}")))?;
    let tpm_quote = match field(&["tpm_quote", "quote"]) {
        Some(q) => Some(parse_tpm_quote_value(q).map_err(|e| Error::malformed(WHAT, format!("tpm_quote: {e}")))?),
        None => None,
    };
    let mut certs = Vec::new();
    if let Some(c) = v.get("vcek") {
        let text = c.as_str().ok_or_else(|| Error::malformed(WHAT, "vcek is not a string"))?;
        let der = if text.contains("-----BEGIN") { text.as_bytes().to_vec() } else { bytes(c).map_err(|e| Error::malformed(WHAT, format!("vcek: {e}")))? };
        certs.push(("the evidence's vcek".to_string(), der));
    }
    let td_quote = match v.get("td_quote") {
        Some(q) => Some(bytes(q).map_err(|e| Error::malformed(WHAT, format!("td_quote: {e}")))?),
        None => None,
    };
    Ok(Evidence { hcl_report, tpm_quote, certs, td_quote })
}

/// Reads a vTPM quote JSON (`{"signature", "message", "pcrs"}`, hex or byte arrays), as
/// trustee's `tpm-quote-v1.json` and Azure's guest attestation tools write it.
pub fn parse_tpm_quote(raw: &[u8]) -> Result<TpmQuote, Error> {
    let v: Value = serde_json::from_slice(raw).map_err(|e| Error::malformed("vTPM quote JSON", e))?;
    parse_tpm_quote_value(&v).map_err(|e| Error::malformed("vTPM quote JSON", e))
}

fn parse_tpm_quote_value(v: &Value) -> Result<TpmQuote, String> {
    let get = |k: &str| v.get(k).ok_or_else(|| format!("no {k}"));
    let pcrs = get("pcrs")?.as_array().ok_or("pcrs is not a list")?.iter().map(bytes).collect::<Result<Vec<_>, _>>()?;
    if pcrs.len() > 24 {
        return Err(format!("{} PCR values (a TPM has 24)", pcrs.len()));
    }
    Ok(TpmQuote { message: bytes(get("message")?)?, signature: bytes(get("signature")?)?, pcrs })
}

/// A byte string as these JSON shapes write it: an array of numbers, hex, or base64 (standard
/// or URL-safe, padded or not) — tried in that order.
fn bytes(v: &Value) -> Result<Vec<u8>, String> {
    match v {
        Value::Array(items) => items.iter().map(|b| b.as_u64().and_then(|b| u8::try_from(b).ok()).ok_or_else(|| "not a byte array".to_string())).collect(),
        Value::String(s) => {
            if let Some(b) = cvmkit_measure::unhex(s) {
                return Ok(b);
            }
            let trimmed = s.trim_end_matches('=');
            let engine = |alphabet: &base64::alphabet::Alphabet| {
                base64::engine::GeneralPurpose::new(alphabet, base64::engine::GeneralPurposeConfig::new().with_decode_padding_mode(base64::engine::DecodePaddingMode::RequireNone))
            };
            engine(&base64::alphabet::URL_SAFE)
                .decode(trimmed)
                .or_else(|_| engine(&base64::alphabet::STANDARD).decode(trimmed))
                .map_err(|_| "neither hex nor base64".to_string())
        }
        _ => Err("not a byte string".into()),
    }
}

/// What to check Azure evidence against.
#[derive(Debug, Clone)]
pub struct Options<'a> {
    /// More certificates (SNP: VCEK, ASK), as `--cert` gives them.
    pub certs: &'a [(String, Vec<u8>)],
    /// The vTPM quote when the evidence holds none.
    pub tpm_quote: Option<&'a TpmQuote>,
    /// TDX: the TD quote when the evidence holds none, and its collateral.
    pub td_quote: Option<&'a [u8]>,
    pub collateral: Option<&'a tdx::Collateral>,
    /// The TPM quote's extraData.
    pub nonce: Option<&'a [u8]>,
    /// The runtime claims' `user-data` (64 bytes, shorter zero-padded).
    pub user_data: Option<&'a [u8]>,
    pub allow_debug: bool,
    pub at: u64,
    /// A prediction of the PCRs (a `tpm` document).
    pub expect: Option<&'a Measurements>,
}

impl Options<'_> {
    pub fn new(at: u64) -> Options<'static> {
        Options { certs: &[], tpm_quote: None, td_quote: None, collateral: None, nonce: None, user_data: None, allow_debug: false, at, expect: None }
    }
}

/// Verifies Azure evidence ([`parse_evidence`]). `Err` only for input that cannot be parsed.
pub fn verify(evidence: &Evidence, opts: &Options) -> Result<Report, Error> {
    let hcl = parse_hcl(&evidence.hcl_report)?;
    let mut report = Report::new("azure");
    report.claim("evaluated_at", tdx::rfc3339(opts.at));
    report.claim("hcl_version", hcl.version);
    report.claim("hardware", if hcl.hardware == Hardware::Snp { "snp" } else { "tdx" });

    // 1. The hardware report, as its own verifier sees it; its report_data is ours to check.
    let bound_data = match hcl.hardware {
        Hardware::Snp => hardware_snp(&mut report, &hcl, evidence, opts)?,
        Hardware::Tdx => hardware_tdx(&mut report, &hcl, evidence, opts)?,
    };

    // 2. The runtime claims, bound by hash into the hardware report's report_data.
    let hash: Vec<u8> = match hcl.hash_type {
        1 => Sha256::digest(&hcl.runtime_claims).to_vec(),
        2 => Sha384::digest(&hcl.runtime_claims).to_vec(),
        3 => Sha512::digest(&hcl.runtime_claims).to_vec(),
        t => {
            report.fail("hcl-report-data", format!("unknown report data hash type {t}"));
            Vec::new()
        }
    };
    if !hash.is_empty() {
        match &bound_data {
            Some(data) if data.starts_with(&hash) => report.pass("hcl-report-data", "the hardware report's report_data is the hash of the runtime claims"),
            Some(data) => report.fail("hcl-report-data", format!("the hardware report's report_data {} is not the hash of the runtime claims", cvmkit_measure::hex(data))),
            None => report.skip("hcl-report-data", "no verifiable hardware report to bind the runtime claims"),
        }
    }
    let claims: Option<Value> = serde_json::from_slice(&hcl.runtime_claims).ok();
    let ak = match &claims {
        None => {
            report.fail("ak", "the runtime claims are not JSON");
            None
        }
        Some(c) => {
            for (key, name) in [("vm-configuration", "vm_configuration"), ("user-data", "user_data")] {
                if let Some(v) = c.get(key) {
                    report.claim(name, v.clone());
                }
            }
            match hcl_ak(c) {
                Ok(ak) => {
                    report.pass("ak", format!("the attestation key HCLAkPub ({}) from the runtime claims", ak.describe()));
                    Some(ak)
                }
                Err(e) => {
                    report.fail("ak", e);
                    None
                }
            }
        }
    };
    user_data_check(&mut report, claims.as_ref(), opts.user_data);

    // 3. The TPM quote, signed by that AK, and its PCRs.
    let quote = opts.tpm_quote.or(evidence.tpm_quote.as_ref());
    let mut doc = Measurements::new(Platform::Tpm);
    match (quote, &ak) {
        (None, _) => report.fail("quote-signature", "no vTPM quote (give --quote FILE, or evidence JSON with tpm_quote)"),
        (Some(q), ak) => {
            let pcrs: BTreeMap<u32, Vec<u8>> = q.pcrs.iter().enumerate().map(|(i, v)| (i as u32, v.clone())).collect();
            let quote = tpm::Quote {
                attest: q.message.clone(),
                signature: TpmtSignature::Rsa { scheme: tpm::alg::RSASSA, hash: tpm::alg::SHA256, sig: q.signature.clone() }.encode(),
                bank: tpm::alg::SHA256,
                pcrs,
            };
            match ak {
                Some(ak) => {
                    tpm::verify_quotes(&mut report, ak, &[quote], opts.nonce);
                }
                None => report.skip("quote-signature", "no attestation key to check the quote with"),
            }
            for (i, v) in q.pcrs.iter().enumerate() {
                if v.len() == 32 {
                    let mut reg = Register::new(format!("PCR{i}"), Bank::Sha256);
                    reg.value = Digest::new(HashAlg::SHA256, v.clone());
                    doc.registers.push(reg);
                }
            }
        }
    }
    report.set_registers(expect::compare(&doc, opts.expect));
    Ok(report)
}

/// The SNP report inside the HCL report: every check of [`snp::verify`] but report_data (the
/// HCL binds it), named `snp-…`. Returns its report_data when its signature verified.
fn hardware_snp(report: &mut Report, hcl: &HclReport, evidence: &Evidence, opts: &Options) -> Result<Option<Vec<u8>>, Error> {
    let mut certs = evidence.certs.clone();
    certs.extend(opts.certs.iter().cloned());
    let mut o = snp::Options::new(opts.at);
    o.certs = &certs;
    o.allow_debug = opts.allow_debug;
    let sub = snp::verify(&hcl.hw_report, &o).map_err(|e| Error::malformed("SNP report inside the HCL report", e))?;
    let ar = snp::parse(&hcl.hw_report)?;
    merge(report, &sub, "snp");
    let launch = cvmkit_measure::hex(&ar.measurement);
    report.notes.push(format!(
        "the SNP launch measurement {launch} is the paravisor's (Azure's firmware, not the image's): shown, not compared with the prediction; the image is judged by its PCRs"
    ));
    Ok((sub.status("report-signature") == Some(Status::Pass)).then(|| ar.report_data.to_vec()))
}

/// The TDREPORT inside the HCL report is MACed for the platform only; its quote (from the
/// IMDS) is what can be verified: every check of [`tdx::verify`] but report_data and the
/// event log, named `tdx-…`, then the quote's TD report must be the HCL's.
fn hardware_tdx(report: &mut Report, hcl: &HclReport, evidence: &Evidence, opts: &Options) -> Result<Option<Vec<u8>>, Error> {
    let Some(quote) = opts.td_quote.or(evidence.td_quote.as_deref()) else {
        report.fail("tdx-quote", "no TD quote: a TDREPORT can only be verified through its quote (give --td-quote FILE)");
        return Ok(None);
    };
    let mut o = tdx::Options::new(opts.at);
    o.collateral = opts.collateral;
    o.allow_debug = opts.allow_debug;
    let sub = tdx::verify(quote, &o).map_err(|e| Error::malformed("TD quote", e))?;
    merge(report, &sub, "tdx");
    let parsed = tdx::parse(quote)?;
    let td = parsed.report.as_td10().expect("parse() refuses SGX quotes");
    // TDREPORT: REPORTMACSTRUCT (report_data at 128..192), TEE_TCB_INFO, TDINFO at 512 (MRTD at
    // 512 + 16) — Intel TDX module ABI, TDREPORT_STRUCT.
    let hcl_report_data = &hcl.hw_report[128..192];
    let hcl_mrtd = &hcl.hw_report[528..576];
    if hcl_report_data == td.report_data && hcl_mrtd == td.mr_td {
        report.pass("tdx-quote-matches-hcl", "the quote's TD report is the HCL report's TDREPORT (report data and MRTD)");
    } else {
        report.fail("tdx-quote-matches-hcl", "the quote is of another TD report than the HCL report's");
    }
    report.notes.push(format!(
        "MRTD {} and RTMRs are the paravisor's (Azure's firmware, not the image's): shown, not compared with the prediction; the image is judged by its PCRs",
        cvmkit_measure::hex(&td.mr_td)
    ));
    Ok((sub.status("quote-signature") == Some(Status::Pass)).then(|| td.report_data.to_vec()))
}

/// Copies a hardware report's checks (prefixed) and claims (under one key) into `report`.
fn merge(report: &mut Report, sub: &Report, prefix: &str) {
    for c in &sub.checks {
        if matches!(c.name.as_str(), "report-data" | "event-log") {
            continue;
        }
        let name = format!("{prefix}-{}", c.name);
        match c.status {
            Status::Pass => report.pass(&name, c.reason.clone()),
            Status::Fail => report.fail(&name, c.reason.clone()),
            Status::Skipped => report.skip(&name, c.reason.clone()),
        }
    }
    let mut claims = sub.claims.clone();
    claims.remove("evaluated_at");
    report.claim(prefix, serde_json::to_value(claims).expect("claims are JSON"));
    report.notes.extend(sub.notes.iter().cloned());
}

/// The vTPM attestation key from the runtime claims: the RSA JWK with `kid` `HCLAkPub`.
fn hcl_ak(claims: &Value) -> Result<AkPublic, String> {
    let keys = claims.get("keys").and_then(Value::as_array).ok_or("the runtime claims have no keys")?;
    let jwk = keys.iter().find(|k| k.get("kid").and_then(Value::as_str) == Some("HCLAkPub")).ok_or("the runtime claims have no HCLAkPub key")?;
    if jwk.get("kty").and_then(Value::as_str) != Some("RSA") {
        return Err("HCLAkPub is not an RSA key".into());
    }
    let part = |k: &str| jwk.get(k).ok_or_else(|| format!("HCLAkPub has no {k}")).and_then(|v| bytes(v).map_err(|e| format!("HCLAkPub {k}: {e}")));
    Ok(AkPublic::rsa(&part("n")?, &part("e")?))
}

/// `user-data` of the runtime claims (hex of 64 bytes) against `--report-data`.
fn user_data_check(report: &mut Report, claims: Option<&Value>, expected: Option<&[u8]>) {
    const NAME: &str = "user-data";
    let Some(expected) = expected else {
        report.skip(NAME, "no --report-data given: the runtime claims' user-data is not checked");
        return;
    };
    let actual = claims.and_then(|c| c.get("user-data")).and_then(Value::as_str).and_then(cvmkit_measure::unhex);
    let mut padded = [0u8; 64];
    padded[..expected.len()].copy_from_slice(expected);
    match actual {
        Some(a) if a == padded => report.pass(NAME, "the runtime claims' user-data equals the given report data"),
        Some(a) => report.fail(NAME, format!("the runtime claims' user-data is {}, not the given report data", cvmkit_measure::hex(&a))),
        None => report.fail(NAME, "the runtime claims have no hex user-data"),
    }
}
