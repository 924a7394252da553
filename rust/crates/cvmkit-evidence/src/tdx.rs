//! Intel TDX DCAP quotes (v4 and v5; TD 1.0 and TD 1.5 bodies).
//!
//! The chain of trust, checked step by step so a failure names its step:
//! Intel SGX Root CA (pinned) → PCK chain in the quote's certification data → PCK key signs the
//! QE report → the QE report's data binds the attestation key → the attestation key signs the
//! quote's header and TD report. With collateral (what a PCCS serves), dcap-qvl evaluates the
//! TCB status and revocation at the given time; it repeats the signature steps too, so a quote
//! passes only if both agree.
//!
//! dcap-qvl parses the quote (its structs follow Intel's spec) and evaluates collateral; the
//! individual signature steps are done here because dcap-qvl only offers them together with
//! collateral, and a quote without collateral must still be checked.

use cvmkit_measure::{Bank, Digest, HashAlg, Measurements, Platform, Register};
use dcap_qvl::quote::{AuthDataV3, Quote, Report as TdBody, TDReport10};
use p256::ecdsa::signature::Verifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, UnixTime};
use sha2::{Digest as _, Sha256};

use crate::{expect, Error, Report};

/// TEE type of a TDX quote header.
const TEE_TYPE_TDX: u32 = 0x81;
/// Attestation key type 2: ECDSA-256 with P-256.
const ECDSA_P256: u16 = 2;
/// Certification data type 5: the PCK leaf, intermediate and root certificates as PEM.
const PCK_CERT_CHAIN: u16 = 5;
/// Intel's QE vendor ID.
const INTEL_QE_VENDOR_ID: [u8; 16] = [
    0x93, 0x9a, 0x72, 0x33, 0xf7, 0x9c, 0x4c, 0xa9, 0x94, 0x0a, 0x0d, 0xb3, 0x95, 0x7f, 0x06, 0x07,
];

/// TCB statuses accepted unless the caller says otherwise: the platform is patched, possibly
/// needing software hardening or configuration the TD's owner decides on (advisories listed).
pub const DEFAULT_ACCEPTED_TCB: &[&str] =
    &["UpToDate", "SWHardeningNeeded", "ConfigurationNeeded", "ConfigurationAndSWHardeningNeeded"];

/// What to check a quote against.
#[derive(Debug, Clone)]
pub struct Options<'a> {
    /// PCCS collateral ([`parse_collateral`]).
    pub collateral: Option<&'a Collateral>,
    /// Unix time at which certificates, CRLs and collateral must be valid.
    pub at: u64,
    /// Expected report_data (at most 64 bytes; shorter is zero-padded).
    pub report_data: Option<&'a [u8]>,
    /// The CCEL event log of the same boot, replayed ([`parse_ccel`]).
    pub event_log: Option<&'a Measurements>,
    pub allow_debug: bool,
    /// TCB statuses that pass (names as Intel spells them).
    pub accepted_tcb: &'a [&'a str],
    /// The trusted root (DER); [`crate::roots::INTEL_SGX_ROOT_CA`] unless testing.
    pub root: &'a [u8],
    /// A prediction to compare the registers with.
    pub expect: Option<&'a Measurements>,
}

impl Options<'_> {
    pub fn new(at: u64) -> Options<'static> {
        Options {
            collateral: None,
            at,
            report_data: None,
            event_log: None,
            allow_debug: false,
            accepted_tcb: DEFAULT_ACCEPTED_TCB,
            root: crate::roots::INTEL_SGX_ROOT_CA,
            expect: None,
        }
    }
}

/// Verifies a quote. `Err` only for input that cannot be parsed; every check is in the report.
pub fn verify(raw: &[u8], opts: &Options) -> Result<Report, Error> {
    let quote = parse(raw)?;
    let mut report = Report::new("tdx");
    let td = td_report(&quote);
    claims(&mut report, &quote, td, opts.at);

    header_check(&mut report, &quote);
    let auth = quote.auth_data.clone().into_v3();
    signature_check(&mut report, raw, &quote, &auth);
    let pck_leaf = pck_chain_check(&mut report, &quote, opts);
    qe_report_checks(&mut report, pck_leaf.as_ref(), &auth);
    collateral_checks(&mut report, raw, opts.collateral, opts);
    attributes_check(&mut report, td, opts.allow_debug);
    crate::expect::report_data_check(&mut report, &td.report_data, opts.report_data);

    let actual = registers(td, opts.event_log, &mut report);
    report.set_registers(expect::compare(&actual, opts.expect));
    Ok(report)
}

/// PCCS collateral for one quote: TCB info, QE identity, CRLs and their issuer chains.
pub type Collateral = dcap_qvl::QuoteCollateralV3;

/// Reads collateral JSON as a PCCS serves it for a quote (the shape of dcap-qvl's
/// `QuoteCollateralV3`, which `dcap-qvl`'s tools and dstack write).
pub fn parse_collateral(json: &[u8]) -> Result<Collateral, Error> {
    serde_json::from_slice(json).map_err(|e| Error::malformed("collateral JSON (dcap-qvl QuoteCollateralV3)", e))
}

/// Reads a quote: binary, hex text, or dstack's quote JSON (`{"quote": HEX, "event_log": …}`,
/// what dstack's guest agent returns), whose event log comes back too.
pub fn read_quote(data: &[u8]) -> Result<(Vec<u8>, Option<Measurements>), Error> {
    let text = std::str::from_utf8(data).ok().map(str::trim);
    match text {
        Some(t) if t.starts_with('{') => {
            let v: serde_json::Value = serde_json::from_str(t).map_err(|e| Error::malformed("quote JSON", e))?;
            let quote = v
                .get("quote")
                .and_then(|q| q.as_str())
                .and_then(|q| cvmkit_measure::unhex(q.trim_start_matches("0x")))
                .ok_or_else(|| Error::malformed("quote JSON", "no hex \"quote\""))?;
            let log = v.get("event_log").map(dstack_event_log).transpose()?;
            Ok((quote, log))
        }
        Some(t) if !t.is_empty() && t.len() % 2 == 0 && t.bytes().all(|b| b.is_ascii_hexdigit()) => Ok((cvmkit_measure::unhex(t).expect("checked hex"), None)),
        _ => Ok((data.to_vec(), None)),
    }
}

/// Reads an event log: a binary CCEL ([`parse_ccel`]), or dstack's JSON event log (a list of
/// `{imr, event_type, digest, event, event_payload}`, or an object with such an `event_log`).
pub fn parse_event_log(data: &[u8]) -> Result<Measurements, Error> {
    let first = data.iter().find(|b| !b.is_ascii_whitespace());
    if matches!(first, Some(b'[') | Some(b'{')) {
        let v: serde_json::Value = serde_json::from_slice(data).map_err(|e| Error::malformed("dstack event log JSON", e))?;
        return dstack_event_log(v.get("event_log").unwrap_or(&v));
    }
    parse_ccel(data)
}

/// dstack's runtime events (RTMR3): `event_type` 0x08000001, digest
/// SHA-384(event_type as u32 LE ‖ ":" ‖ event ‖ ":" ‖ payload) — recomputed where a "lite" log
/// leaves it empty.
const DSTACK_RUNTIME_EVENT: u64 = 0x0800_0001;

fn dstack_event_log(v: &serde_json::Value) -> Result<Measurements, Error> {
    const WHAT: &str = "dstack event log";
    let parsed;
    let list = match v {
        serde_json::Value::String(s) => {
            parsed = serde_json::from_str::<serde_json::Value>(s).map_err(|e| Error::malformed(WHAT, e))?;
            &parsed
        }
        other => other,
    };
    let list = list.as_array().ok_or_else(|| Error::malformed(WHAT, "not a list of events"))?;
    let mut doc = Measurements::new(Platform::Eventlog);
    let mut regs: Vec<Register> = (0..4).map(|i| Register::new(format!("RTMR{i}"), Bank::Sha384)).collect();
    for (i, e) in list.iter().enumerate() {
        let bad = |what: &str| Error::malformed(WHAT, format!("event {i}: {what}"));
        let imr = e.get("imr").and_then(|x| x.as_u64()).ok_or_else(|| bad("no numeric imr"))?;
        let reg = regs.get_mut(imr as usize).ok_or_else(|| bad("imr is not 0-3"))?;
        let event_type = e.get("event_type").and_then(|x| x.as_u64()).ok_or_else(|| bad("no numeric event_type"))?;
        let name = e.get("event").and_then(|x| x.as_str()).unwrap_or("");
        let payload = e.get("event_payload").and_then(|x| x.as_str()).and_then(cvmkit_measure::unhex).ok_or_else(|| bad("event_payload is not hex"))?;
        let digest = match e.get("digest").and_then(|x| x.as_str()) {
            Some("") if event_type == DSTACK_RUNTIME_EVENT => {
                Bank::Sha384.hash(&[&(event_type as u32).to_le_bytes()[..], b":", name.as_bytes(), b":", &payload].concat())
            }
            Some(h) => cvmkit_measure::unhex(h).filter(|d| d.len() == 48).ok_or_else(|| bad("digest is not 48 bytes of hex"))?,
            None => return Err(bad("no digest")),
        };
        let type_name = cvmkit_measure::EventType(event_type as u32).name();
        let label = if name.is_empty() { type_name.unwrap_or("event").to_string() } else { name.to_string() };
        reg.push(label, type_name, &digest).map_err(|e| bad(&e.to_string()))?;
    }
    doc.registers = regs.into_iter().filter(|r| !r.events.is_empty()).collect();
    Ok(doc)
}

/// Replays a CCEL (`/sys/firmware/acpi/tables/data/CCEL`) into RTMR0-3 with their events.
pub fn parse_ccel(data: &[u8]) -> Result<Measurements, Error> {
    cvmkit_tcg_log::document("CCEL", data, Some(cvmkit_tcg_log::LogKind::Ccel))
        .map(|(doc, _)| doc)
        .map_err(|e| Error::malformed("CCEL event log", e))
}

/// Parses a quote, refusing trailing garbage-free but short or unknown input as unusable.
pub fn parse(raw: &[u8]) -> Result<Quote, Error> {
    // dcap-qvl's decoder reads lengths from the quote; it does not panic (fuzzed here too).
    let quote = Quote::parse(raw).map_err(|e| Error::malformed("DCAP quote", format!("{e:#}")))?;
    if quote.report.is_sgx() {
        return Err(Error::malformed("TDX quote", format!("an SGX quote (version {}, TEE type {:#x})", quote.header.version, quote.header.tee_type)));
    }
    Ok(quote)
}

fn td_report(quote: &Quote) -> &TDReport10 {
    quote.report.as_td10().expect("parse() refuses SGX quotes")
}

fn claims(report: &mut Report, quote: &Quote, td: &TDReport10, at: u64) {
    let h = &quote.header;
    report.claim("evaluated_at", rfc3339(at));
    report.claim("quote_version", h.version);
    report.claim("tee_type", format!("{:#x}", h.tee_type));
    report.claim("qe_svn", h.qe_svn);
    report.claim("pce_svn", h.pce_svn);
    report.claim_hex("qe_vendor_id", &h.qe_vendor_id);
    report.claim(
        "td_body",
        match &quote.report {
            TdBody::TD10(_) => "TD1.0",
            TdBody::TD15(_) => "TD1.5",
            TdBody::TD15Ex(_) => "TD1.5ex",
            TdBody::SgxEnclave(_) => "SGX",
        },
    );
    report.claim_hex("tee_tcb_svn", &td.tee_tcb_svn);
    report.claim_hex("mr_seam", &td.mr_seam);
    report.claim_hex("mr_signer_seam", &td.mr_signer_seam);
    report.claim_hex("seam_attributes", &td.seam_attributes);
    report.claim_hex("td_attributes", &td.td_attributes);
    report.claim("debug", td.td_attributes[0] & 1 == 1);
    report.claim_hex("xfam", &td.xfam);
    report.claim_hex("mr_td", &td.mr_td);
    report.claim_hex("mr_config_id", &td.mr_config_id);
    report.claim_hex("mr_owner", &td.mr_owner);
    report.claim_hex("mr_owner_config", &td.mr_owner_config);
    report.claim_hex("rtmr0", &td.rt_mr0);
    report.claim_hex("rtmr1", &td.rt_mr1);
    report.claim_hex("rtmr2", &td.rt_mr2);
    report.claim_hex("rtmr3", &td.rt_mr3);
    report.claim_hex("report_data", &td.report_data);
    if let Some(td15) = quote.report.as_td15() {
        report.claim_hex("tee_tcb_svn2", &td15.tee_tcb_svn2);
        report.claim_hex("mr_service_td", &td15.mr_service_td);
    }
    if let Ok(fmspc) = dcap_qvl::intel::quote_fmspc(quote) {
        report.claim_hex("fmspc", &fmspc);
    }
}

fn header_check(report: &mut Report, quote: &Quote) {
    let h = &quote.header;
    let outcome = if ![4, 5].contains(&h.version) {
        Err(format!("quote version {} (TDX quotes are version 4 or 5)", h.version))
    } else if h.tee_type != TEE_TYPE_TDX {
        Err(format!("TEE type {:#x}, not TDX (0x81)", h.tee_type))
    } else if h.attestation_key_type != ECDSA_P256 {
        Err(format!("attestation key type {} (only 2, ECDSA P-256, is defined)", h.attestation_key_type))
    } else if h.qe_vendor_id != INTEL_QE_VENDOR_ID {
        Err(format!("QE vendor ID {} is not Intel's", cvmkit_measure::hex(&h.qe_vendor_id)))
    } else {
        Ok(format!("version {}, TDX, ECDSA P-256, Intel QE", h.version))
    };
    report.check("quote-header", outcome);
}

/// The attestation key (raw x‖y) signs the header and TD report (and v5's body descriptor).
fn signature_check(report: &mut Report, raw: &[u8], quote: &Quote, auth: &AuthDataV3) {
    let signed = &raw[..quote.signed_length().min(raw.len())];
    let outcome = ecdsa_p256_raw(&auth.ecdsa_attestation_key, signed, &auth.ecdsa_signature)
        .map(|()| "the attestation key signs the quote header and TD report".to_string())
        .map_err(|e| format!("the quote's signature does not verify with its attestation key: {e}"));
    report.check("quote-signature", outcome);
}

/// Verifies the PCK chain up to the pinned root; returns the leaf when it verified.
fn pck_chain_check(report: &mut Report, quote: &Quote, opts: &Options) -> Option<Vec<u8>> {
    const NAME: &str = "pck-chain";
    let cert_type = quote.inner_cert_type();
    if cert_type != PCK_CERT_CHAIN {
        report.fail(NAME, format!("certification data type {cert_type} carries no PCK certificate chain (type 5 is required offline)"));
        return None;
    }
    let certs: Vec<CertificateDer> = match CertificateDer::pem_slice_iter(quote.inner_cert_data()).collect() {
        Ok(c) => c,
        Err(e) => {
            report.fail(NAME, format!("the certification data is not a PEM certificate chain: {e:?}"));
            return None;
        }
    };
    let Some((leaf, rest)) = certs.split_first() else {
        report.fail(NAME, "the certification data holds no certificate");
        return None;
    };
    match verify_chain(leaf, rest, opts.root, opts.at) {
        Ok(()) => {
            report.pass(NAME, "PCK certificate chains to the pinned Intel SGX Root CA, valid at the evaluation time");
            Some(leaf.to_vec())
        }
        Err(e) => {
            report.fail(NAME, format!("PCK certificate chain does not verify to the pinned Intel SGX Root CA: {e}"));
            None
        }
    }
}

/// Verifies `leaf` through `intermediates` to `root` at `at` (the quote's own copy of the root
/// is only ever an intermediate candidate, and a self-signed one cannot lead anywhere else).
pub(crate) fn verify_chain(leaf: &CertificateDer, intermediates: &[CertificateDer], root: &[u8], at: u64) -> Result<(), String> {
    let root = CertificateDer::from(root);
    let anchor = webpki::anchor_from_trusted_cert(&root).map_err(|e| format!("pinned root unusable: {e:?}"))?;
    let ee = webpki::EndEntityCert::try_from(leaf).map_err(|e| format!("leaf certificate: {e:?}"))?;
    let time = UnixTime::since_unix_epoch(std::time::Duration::from_secs(at));
    ee.verify_for_usage(
        &[webpki::rustcrypto::ECDSA_P256_SHA256],
        &[anchor],
        intermediates,
        time,
        webpki::KeyUsage::server_auth(),
        None,
        None,
    )
    .map(|_| ())
    .map_err(|e| describe_webpki(&e, at))
}

/// webpki's errors in words, with dates instead of Unix seconds.
pub(crate) fn describe_webpki(e: &webpki::Error, at: u64) -> String {
    let date = |t: &UnixTime| rfc3339(t.as_secs());
    match e {
        webpki::Error::CertNotValidYet { not_before, .. } => {
            format!("a certificate is not valid before {} (evaluated at {}; see --at)", date(not_before), rfc3339(at))
        }
        webpki::Error::CertExpired { not_after, .. } => {
            format!("a certificate expired at {} (evaluated at {}; see --at)", date(not_after), rfc3339(at))
        }
        webpki::Error::UnknownIssuer => "no path to the pinned root: a certificate's issuer is unknown".to_string(),
        webpki::Error::InvalidSignatureForPublicKey => "a certificate's signature does not verify with its issuer's key".to_string(),
        other => format!("{other:?}"),
    }
}

fn qe_report_checks(report: &mut Report, pck_leaf: Option<&Vec<u8>>, auth: &AuthDataV3) {
    match pck_leaf {
        None => report.skip("qe-report-signature", "no verified PCK certificate to check it with"),
        Some(leaf) => {
            let outcome = pck_public_key(leaf)
                .and_then(|key| ecdsa_p256_sec1(&key, &auth.qe_report, &auth.qe_report_signature))
                .map(|()| "the PCK key signs the QE report".to_string())
                .map_err(|e| format!("the QE report's signature does not verify with the PCK key: {e}"));
            report.check("qe-report-signature", outcome);
        }
    }
    // QE report data = SHA-256(attestation key ‖ QE authentication data) ‖ 32 zero bytes.
    let mut h = Sha256::new();
    h.update(auth.ecdsa_attestation_key);
    h.update(&auth.qe_auth_data.data);
    let expected = h.finalize();
    let data = &auth.qe_report[320..384];
    let outcome = if data[..32] != expected[..] {
        Err("the QE report data is not SHA-256(attestation key ‖ QE authentication data): the attestation key is not the QE's".to_string())
    } else if data[32..].iter().any(|&b| b != 0) {
        Err("the QE report data's upper 32 bytes are not zero".to_string())
    } else {
        Ok("the QE report binds the attestation key".to_string())
    };
    report.check("qe-report-binding", outcome);
}

fn collateral_checks(report: &mut Report, raw: &[u8], collateral: Option<&dcap_qvl::QuoteCollateralV3>, opts: &Options) {
    let Some(collateral) = collateral else {
        report.skip("collateral", "no collateral (--collateral FILE): TCB status and revocation not evaluated");
        report.skip("tcb-status", "no collateral");
        return;
    };
    // Debug and service-TD policy are this crate's checks; dcap-qvl is asked about the platform.
    let verifier = dcap_qvl::verify::QuoteVerifier::new(opts.root.to_vec()).allow_debug(true).allow_service_td(true);
    match verifier.verify(raw, collateral, opts.at) {
        Err(e) => {
            let msg = format!("{e:#}");
            // dcap-qvl matches the platform's TCB after every signature and date check: a
            // platform older than every level Intel lists is a TCB verdict, not bad collateral.
            if msg.contains("No matching TCB level") {
                report.pass("collateral", format!("TCB info, QE identity and CRLs verify to the pinned root and are current at {}", rfc3339(opts.at)));
                report.fail("tcb-status", "the platform's TCB is below every level the TCB info lists (out of date)");
            } else if msg.contains("Revoked") {
                report.fail("collateral", "collateral verifies, and it says the platform's TCB is revoked".to_string());
                report.fail("tcb-status", "Revoked");
            } else {
                report.fail("collateral", format!("dcap-qvl rejects the quote with this collateral at {}: {msg}", rfc3339(opts.at)));
                report.skip("tcb-status", "collateral did not verify");
            }
        }
        Ok(v) => {
            report.pass("collateral", format!("TCB info, QE identity and CRLs verify to the pinned root and are current at {}", rfc3339(opts.at)));
            report.claim("tcb_status", v.status.clone());
            report.claim("advisory_ids", v.advisory_ids.clone());
            let advisories = if v.advisory_ids.is_empty() { String::new() } else { format!(" (advisories {})", v.advisory_ids.join(", ")) };
            if opts.accepted_tcb.contains(&v.status.as_str()) {
                report.pass("tcb-status", format!("{}{advisories}", v.status));
            } else {
                report.fail("tcb-status", format!("{}{advisories}, not among the accepted {}", v.status, opts.accepted_tcb.join(", ")));
            }
        }
    }
}

fn attributes_check(report: &mut Report, td: &TDReport10, allow_debug: bool) {
    let debug = td.td_attributes[0] & 1 == 1;
    let outcome = match (debug, allow_debug) {
        (false, _) => Ok("not a debug TD".to_string()),
        (true, true) => Ok("a debug TD (its memory is readable by the host), allowed by --allow-debug".to_string()),
        (true, false) => Err("a debug TD: the host can read its memory (--allow-debug accepts it)".to_string()),
    };
    report.check("td-attributes", outcome);
}

/// The quote's registers, with the event log's events where the log replays to them.
fn registers(td: &TDReport10, log: Option<&Measurements>, report: &mut Report) -> Measurements {
    let mut doc = Measurements::new(Platform::Tdx);
    let quoted = [("MRTD", &td.mr_td), ("RTMR0", &td.rt_mr0), ("RTMR1", &td.rt_mr1), ("RTMR2", &td.rt_mr2), ("RTMR3", &td.rt_mr3)];
    let mut differ = Vec::new();
    for (name, value) in quoted {
        let mut reg = Register::new(name, Bank::Sha384);
        reg.value = Digest::new(HashAlg::SHA384, value.to_vec());
        if let Some(replayed) = log.and_then(|l| l.register(name, Bank::Sha384)) {
            if replayed.value == reg.value {
                reg.events = replayed.events.clone();
            } else {
                differ.push(name);
            }
        }
        doc.registers.push(reg);
    }
    match log {
        None => report.skip("event-log", "no event log (--event-log CCEL): registers compared by value only"),
        Some(_) if differ.is_empty() => report.pass("event-log", "the event log replays to RTMR0-3 of the quote"),
        Some(_) => report.fail("event-log", format!("the event log does not replay to the quote's {}", differ.join(", "))),
    }
    doc
}

fn pck_public_key(leaf_der: &[u8]) -> Result<Vec<u8>, String> {
    use x509_cert::der::Decode;
    let cert = x509_cert::Certificate::from_der(leaf_der).map_err(|e| format!("PCK certificate: {e}"))?;
    Ok(cert.tbs_certificate().subject_public_key_info().subject_public_key.raw_bytes().to_vec())
}

/// ECDSA P-256 with SHA-256 over `msg`; the key is raw x‖y (64 bytes), the signature r‖s.
fn ecdsa_p256_raw(key_xy: &[u8; 64], msg: &[u8], sig: &[u8; 64]) -> Result<(), String> {
    let mut sec1 = [0x04u8; 65];
    sec1[1..].copy_from_slice(key_xy);
    ecdsa_p256_sec1(&sec1, msg, sig)
}

fn ecdsa_p256_sec1(key: &[u8], msg: &[u8], sig: &[u8; 64]) -> Result<(), String> {
    let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(key).map_err(|_| "not a P-256 public key".to_string())?;
    let sig = p256::ecdsa::Signature::from_slice(sig).map_err(|_| "malformed signature".to_string())?;
    key.verify(msg, &sig).map_err(|_| "signature mismatch".to_string())
}

/// RFC 3339 UTC, seconds precision.
pub fn rfc3339(secs: u64) -> String {
    chrono::DateTime::from_timestamp(secs as i64, 0)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_else(|| secs.to_string())
}

/// Parses `--at`: RFC 3339 (`2025-03-01T00:00:00Z`).
pub fn parse_time(text: &str) -> Result<u64, Error> {
    let t = chrono::DateTime::parse_from_rfc3339(text)
        .map_err(|e| Error::Input(format!("--at: not an RFC 3339 time such as 2025-03-01T00:00:00Z: {text:?} ({e})")))?;
    u64::try_from(t.timestamp()).map_err(|_| Error::Input(format!("--at: before 1970: {text:?}")))
}
