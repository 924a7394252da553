//! `cvmkit verify`: check attestation evidence offline, and against a build's prediction.
//!
//! Exit 0 only when every check passes (skipped checks say why); 1 when the evidence is invalid
//! or does not match; 2 when an input cannot be used.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use cvmkit_evidence::expect::{self, RuntimeRegister};
use cvmkit_evidence::{azure, snp, tdx, tpm, RegisterStatus, Report, Status};
use cvmkit_measure::{Measurements, Platform};

use crate::output::read_input;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    kind: Kind,
}

#[derive(clap::Subcommand)]
enum Kind {
    /// An Intel TDX DCAP quote (v4 or v5), optionally with PCCS collateral and the CCEL.
    Tdx(TdxArgs),
    /// An AMD SEV-SNP attestation report (v2, v3, v5; raw, hex, or with its certificate table).
    Snp(SnpArgs),
    /// A vTPM attestation: go-tpm-tools' Attestation protobuf (`gotpm attest` on GCE).
    Tpm(TpmArgs),
    /// Azure CVM evidence: the paravisor's HCL report (or trustee's az-snp-vtpm/az-tdx-vtpm
    /// evidence JSON) with its vTPM quote.
    Azure(AzureArgs),
}

/// Options every kind of evidence takes.
#[derive(clap::Args)]
struct Common {
    /// A prediction (`cvmkit measure … --json`, an image's measurements.json or a golden file):
    /// every register it names is compared.
    #[arg(long, value_name = "DOC")]
    expect: Option<PathBuf>,
    /// The manifest metadata value (base64) the runtime was given: its runtime register (RTMR3,
    /// PCR 15) is predicted from it.
    #[arg(long, value_name = "BASE64")]
    manifest: Option<String>,
    /// The hostname metadata value (comma-separated), measured with the manifest.
    #[arg(long, value_name = "LIST", requires = "manifest")]
    hostname: Option<String>,
    /// Evaluate certificate and collateral validity at this time (RFC 3339) instead of now, to
    /// check old evidence offline.
    #[arg(long, value_name = "RFC3339")]
    at: Option<String>,
    /// Reference values for the registers the prediction leaves to the cloud (`cvmkit reference
    /// capture`, endorsements); several values of one register are alternatives. Repeatable.
    #[arg(long, value_name = "FILE")]
    reference: Vec<PathBuf>,
    /// The SBOM of the image `--expect` predicts (default: sbom.cdx.json beside `--expect`, if
    /// there): a mismatching register is explained by the components that feed it.
    #[arg(long, value_name = "FILE", requires = "expect")]
    sbom: Option<PathBuf>,
    /// Another image's output directory (measurements.json and sbom.cdx.json), e.g. the build
    /// you suspect the VM runs: where its prediction is the reported value, the explanation
    /// names the components and initrd files that changed. Repeatable.
    #[arg(long, value_name = "DIR", requires = "expect")]
    candidate: Vec<PathBuf>,
    /// Print the verdict document (cvmkit.verdict/v1).
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
struct TdxArgs {
    /// The quote: binary (configfs-tsm outblob, a DCAP library's output), hex, or dstack's quote
    /// JSON (`{"quote": HEX, "event_log": …}`, whose event log is then used).
    quote: PathBuf,
    /// PCCS collateral for the quote (JSON, dcap-qvl's QuoteCollateralV3 shape): TCB status and
    /// revocation are evaluated only with it.
    #[arg(long, value_name = "FILE")]
    collateral: Option<PathBuf>,
    /// Expected report data, hex (at most 64 bytes; shorter values are zero-padded).
    #[arg(long, value_name = "HEX")]
    report_data: Option<String>,
    /// The event log of the same boot: the CCEL (/sys/firmware/acpi/tables/data/CCEL) or dstack's
    /// JSON event log; replayed to RTMR0-3 and compared event by event with the prediction.
    #[arg(long, value_name = "CCEL")]
    event_log: Option<PathBuf>,
    /// Accept a debug TD (whose memory the host can read).
    #[arg(long)]
    allow_debug: bool,
    /// TCB statuses that pass, comma-separated.
    #[arg(long, value_name = "LIST", value_delimiter = ',', default_values_t = tdx::DEFAULT_ACCEPTED_TCB.iter().map(|s| s.to_string()))]
    accept_tcb: Vec<String>,
    #[command(flatten)]
    common: Common,
}

#[derive(clap::Args)]
struct SnpArgs {
    /// The report: 1184 bytes raw (/dev/sev-guest, configfs-tsm outblob), optionally followed by
    /// the certificate table of an extended report, or the same as hex.
    report: PathBuf,
    /// A certificate (VCEK, VLEK, ASK, ASVK; PEM or DER, a PEM file may hold several),
    /// recognised by its subject. ARKs are pinned: a given one is used only if it is AMD's.
    #[arg(long, value_name = "FILE")]
    cert: Vec<PathBuf>,
    /// Expected report data, hex (at most 64 bytes; shorter values are zero-padded).
    #[arg(long, value_name = "HEX")]
    report_data: Option<String>,
    /// Accept a guest whose policy allows debugging.
    #[arg(long)]
    allow_debug: bool,
    /// Accept a guest whose policy allows a migration agent (which can read its memory).
    #[arg(long)]
    allow_migration_agent: bool,
    /// Refuse a report from a host with SMT enabled.
    #[arg(long)]
    deny_smt: bool,
    #[command(flatten)]
    common: Common,
}

#[derive(clap::Args)]
struct TpmArgs {
    /// The attestation (binary protobuf `attest.Attestation`, as `gotpm attest` writes it).
    attestation: PathBuf,
    /// The nonce given to `gotpm attest --nonce`, hex: each quote's extraData must equal it.
    #[arg(long, value_name = "HEX")]
    nonce: Option<String>,
    /// Pin the attestation key: a PEM or DER public key, or a TPMT_PUBLIC.
    #[arg(long, value_name = "FILE")]
    ak: Option<PathBuf>,
    #[command(flatten)]
    common: Common,
}

#[derive(clap::Args)]
struct AzureArgs {
    /// The HCL report (vTPM NV index 0x01400001), or trustee's Azure evidence JSON.
    evidence: PathBuf,
    /// The vTPM quote JSON ({"signature", "message", "pcrs"}), when the evidence holds none.
    #[arg(long, value_name = "FILE")]
    quote: Option<PathBuf>,
    /// SNP: a certificate (VCEK, ASK; PEM or DER) besides the evidence's.
    #[arg(long, value_name = "FILE")]
    cert: Vec<PathBuf>,
    /// TDX: the TD quote (from the IMDS), when the evidence holds none.
    #[arg(long, value_name = "FILE")]
    td_quote: Option<PathBuf>,
    /// TDX: PCCS collateral for the TD quote.
    #[arg(long, value_name = "FILE")]
    collateral: Option<PathBuf>,
    /// The nonce of the vTPM quote (its extraData), hex.
    #[arg(long, value_name = "HEX")]
    nonce: Option<String>,
    /// Expected user-data of the runtime claims, hex (at most 64 bytes).
    #[arg(long, value_name = "HEX")]
    report_data: Option<String>,
    /// Accept a debug guest.
    #[arg(long)]
    allow_debug: bool,
    #[command(flatten)]
    common: Common,
}

pub fn run(args: Args) -> Result<ExitCode> {
    match args.kind {
        Kind::Tdx(a) => run_tdx(a),
        Kind::Snp(a) => run_snp(a),
        Kind::Tpm(a) => run_tpm(a),
        Kind::Azure(a) => run_azure(a),
    }
}

fn hex_option(name: &str, value: &Option<String>) -> Result<Option<Vec<u8>>> {
    Ok(value.as_deref().map(|h| cvmkit_evidence::parse_hex_option(name, h, 64)).transpose()?)
}

fn read_certs(paths: &[PathBuf]) -> Result<Vec<(String, Vec<u8>)>> {
    paths.iter().map(|p| Ok((p.display().to_string(), read_input(p, "certificate")?))).collect()
}

fn run_snp(a: SnpArgs) -> Result<ExitCode> {
    let raw = read_input(&a.report, "report")?;
    let certs = read_certs(&a.cert)?;
    let report_data = hex_option("--report-data", &a.report_data)?;
    let expected = expectation(&a.common, Platform::Snp, None)?;
    let mut o = snp::Options::new(at(&a.common)?);
    o.certs = &certs;
    o.report_data = report_data.as_deref();
    o.allow_debug = a.allow_debug;
    o.allow_migration_agent = a.allow_migration_agent;
    o.deny_smt = a.deny_smt;
    o.expect = expected.as_ref();
    let report = snp::verify(&raw, &o).with_context(|| format!("report {}", a.report.display()))?;
    finish(report, "SEV-SNP report", &a.common, Platform::Snp)
}

fn run_tpm(a: TpmArgs) -> Result<ExitCode> {
    let raw = read_input(&a.attestation, "attestation")?;
    let nonce = a.nonce.as_deref().map(|h| cvmkit_evidence::parse_hex_option("--nonce", h, 1024)).transpose()?;
    let ak = match &a.ak {
        Some(p) => {
            let bytes = read_input(p, "attestation key")?;
            tpm::AkPublic::from_file(&bytes).with_context(|| format!("attestation key {}", p.display()))?;
            Some(bytes)
        }
        None => None,
    };
    let expected = expectation(&a.common, Platform::Tpm, Some(RuntimeRegister::Pcr15))?;
    let mut o = tpm::Options::new(at(&a.common)?);
    o.nonce = nonce.as_deref();
    o.ak = ak.as_deref();
    o.expect = expected.as_ref();
    let report = tpm::verify(&raw, &o).with_context(|| format!("attestation {}", a.attestation.display()))?;
    finish(report, "vTPM attestation", &a.common, Platform::Tpm)
}

fn run_azure(a: AzureArgs) -> Result<ExitCode> {
    let raw = read_input(&a.evidence, "evidence")?;
    let evidence = azure::parse_evidence(&raw).with_context(|| format!("evidence {}", a.evidence.display()))?;
    let quote = match &a.quote {
        Some(p) => Some(azure::parse_tpm_quote(&read_input(p, "quote")?).with_context(|| format!("quote {}", p.display()))?),
        None => None,
    };
    let td_quote = a.td_quote.as_ref().map(|p| read_input(p, "TD quote")).transpose()?;
    let collateral = match &a.collateral {
        Some(p) => Some(tdx::parse_collateral(&read_input(p, "collateral")?).with_context(|| format!("collateral {}", p.display()))?),
        None => None,
    };
    let certs = read_certs(&a.cert)?;
    let nonce = a.nonce.as_deref().map(|h| cvmkit_evidence::parse_hex_option("--nonce", h, 1024)).transpose()?;
    let user_data = hex_option("--report-data", &a.report_data)?;
    let expected = expectation(&a.common, Platform::Tpm, Some(RuntimeRegister::Pcr15))?;
    let mut o = azure::Options::new(at(&a.common)?);
    o.certs = &certs;
    o.tpm_quote = quote.as_ref();
    o.td_quote = td_quote.as_deref();
    o.collateral = collateral.as_ref();
    o.nonce = nonce.as_deref();
    o.user_data = user_data.as_deref();
    o.allow_debug = a.allow_debug;
    o.expect = expected.as_ref();
    let report = azure::verify(&evidence, &o).with_context(|| format!("evidence {}", a.evidence.display()))?;
    finish(report, "Azure evidence", &a.common, Platform::Tpm)
}

fn run_tdx(a: TdxArgs) -> Result<ExitCode> {
    let (raw, quote_log) = tdx::read_quote(&read_input(&a.quote, "quote")?).with_context(|| format!("quote {}", a.quote.display()))?;
    let collateral = match &a.collateral {
        Some(p) => Some(tdx::parse_collateral(&read_input(p, "collateral")?).with_context(|| format!("collateral {}", p.display()))?),
        None => None,
    };
    let log = match &a.event_log {
        Some(p) => Some(tdx::parse_event_log(&read_input(p, "event log")?).with_context(|| format!("event log {}", p.display()))?),
        None => quote_log,
    };
    let report_data = a.report_data.as_deref().map(|h| cvmkit_evidence::parse_hex_option("--report-data", h, 64)).transpose()?;
    let expected = expectation(&a.common, Platform::Tdx, Some(RuntimeRegister::Rtmr3))?;
    let accepted: Vec<&str> = a.accept_tcb.iter().map(String::as_str).collect();
    let mut o = tdx::Options::new(at(&a.common)?);
    o.collateral = collateral.as_ref();
    o.event_log = log.as_ref();
    o.report_data = report_data.as_deref();
    o.allow_debug = a.allow_debug;
    o.accepted_tcb = &accepted;
    o.expect = expected.as_ref();
    let report = tdx::verify(&raw, &o).with_context(|| format!("quote {}", a.quote.display()))?;
    finish(report, "TDX quote", &a.common, Platform::Tdx)
}

fn at(c: &Common) -> Result<u64> {
    at_or_now(c.at.as_deref())
}

/// `--at` (RFC 3339) as Unix seconds; now when not given.
pub fn at_or_now(at: Option<&str>) -> Result<u64> {
    Ok(match at {
        Some(t) => tdx::parse_time(t)?,
        None => std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0),
    })
}

/// The prediction: `--expect`, with the runtime register of `--manifest` added.
fn expectation(c: &Common, platform: Platform, runtime: Option<RuntimeRegister>) -> Result<Option<Measurements>> {
    let doc = match &c.expect {
        Some(p) => Some(read_prediction(p, platform)?),
        None => None,
    };
    Ok(match (&c.manifest, runtime) {
        (None, _) => doc,
        (Some(m), Some(runtime)) => Some(expect::with_register(doc, platform, expect::workload_register(m, c.hostname.as_deref(), runtime)?)),
        (Some(_), None) => anyhow::bail!("--manifest: the runtime measures workloads into RTMR3 or PCR 15, which {platform} evidence does not have"),
    })
}

/// One document, or the one for `platform` among an image's `measurements.json`.
fn read_prediction(path: &Path, platform: Platform) -> Result<Measurements> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read prediction {}", path.display()))?;
    let docs = documents(&text, "prediction", path)?;
    expect::select(docs, platform).with_context(|| format!("prediction {}", path.display()))
}

/// One document, or an image's `measurements.json` list, naming the file and item on error.
fn documents(text: &str, what: &str, path: &Path) -> Result<Vec<Measurements>> {
    Measurements::list_from_json(text).map_err(|(i, e)| match i {
        Some(i) => anyhow::anyhow!("{what} {}: document {i}: {e}", path.display()),
        None => anyhow::anyhow!("{what} {}: {e}", path.display()),
    })
}

fn finish(mut report: Report, what: &str, common: &Common, platform: Platform) -> Result<ExitCode> {
    let mut references = Vec::new();
    for p in &common.reference {
        let text = std::fs::read_to_string(p).with_context(|| format!("cannot read reference {}", p.display()))?;
        references.extend(documents(&text, "reference", p)?);
    }
    if !references.is_empty() {
        cvmkit_evidence::reference::apply(&mut report, &references);
    }
    explain(&mut report, common, platform)?;
    let report = &report;
    if common.json {
        crate::output::print_json(report)?;
    } else {
        print_table(report, what);
    }
    Ok(if report.passed() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// The five-second view: each check, each register, the result.
fn print_table(r: &Report, what: &str) {
    let width = r.checks.iter().map(|c| c.name.len()).max().unwrap_or(0);
    for c in &r.checks {
        let word = match c.status {
            Status::Pass => "pass",
            Status::Fail => "FAIL",
            Status::Skipped => "skipped",
        };
        println!("{word:<8} {:<width$}  {}", c.name, c.reason);
    }
    // Unjudged registers are listed when few (a quote's MRTD/RTMRs); a vTPM's 24 PCRs in three
    // banks would bury the verdict, so they are counted instead (--json lists every one).
    let unjudged = r.registers.iter().filter(|x| x.status == RegisterStatus::NotPredicted).count();
    let shown: Vec<_> = r.registers.iter().filter(|x| unjudged <= 8 || x.status != RegisterStatus::NotPredicted).collect();
    let name_width = shown.iter().map(|x| x.name.len()).max().unwrap_or(0);
    if unjudged > 8 {
        println!("{:<13} {unjudged} registers without a prediction (--expect DOC judges them; --json lists them)", RegisterStatus::NotPredicted.word());
    }
    for x in shown {
        let actual = x.actual.as_ref().map(|d| d.to_hex()).unwrap_or_else(|| "-".into());
        println!("{:<13} {:<name_width$} {:<6} {actual}", x.status.word(), x.name, x.bank.name());
        if let (Some(e), true) = (&x.expected, x.status != RegisterStatus::Match) {
            println!("{:<13} {:<name_width$} {:<6} expected {}", "", "", "", e.to_hex());
        }
        if let Some(s) = &x.source {
            println!("{:<13} source: {s}", "");
        }
        if let Some(d) = &x.first_difference {
            println!("{:<13} first difference: event {} {} ({})", "", d.index, d.label, d.verdict.word());
        }
        for line in &x.explanation {
            println!("{:<13} {line}", "");
        }
    }
    for n in &r.notes {
        println!("note: {n}");
    }
    println!("{what}: {}", if r.passed() { "VALID" } else { "INVALID" });
}

/// An SBOM read from `path`.
fn read_sbom(path: &Path) -> Result<cvmkit_provenance::sbom::Bom> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read SBOM {}", path.display()))?;
    Ok(cvmkit_provenance::sbom::parse(&text, &path.display().to_string())?)
}

/// Adds to each mismatching register what the SBOMs say: the components that feed it, and,
/// where a `--candidate` image predicts the reported value, what changed in them.
fn explain(report: &mut Report, c: &Common, platform: Platform) -> Result<()> {
    let Some(expect) = &c.expect else { return Ok(()) };
    let sbom_path = match &c.sbom {
        Some(p) => Some(p.clone()),
        None => expect.parent().map(|d| d.join("sbom.cdx.json")).filter(|p| p.is_file()),
    };
    let Some(sbom_path) = sbom_path else {
        anyhow::ensure!(c.candidate.is_empty(), "--candidate needs the SBOM of --expect's image: give --sbom FILE (no sbom.cdx.json beside {})", expect.display());
        return Ok(());
    };
    let expected = read_sbom(&sbom_path)?;
    // Which inputs feed SNP's launch digest depends on the boot: with QEMU's kernel hashes the
    // prediction lists the kernel among its inputs.
    let direct = read_prediction(expect, platform).is_ok_and(|d| d.inputs.contains_key("kernel"));
    let kind = match platform {
        Platform::Snp if direct => "snp-direct-boot",
        p => p.name(),
    };
    let mut candidates = Vec::new();
    for dir in &c.candidate {
        let m = dir.join("measurements.json");
        let text = std::fs::read_to_string(&m).with_context(|| format!("candidate {}: cannot read {}", dir.display(), m.display()))?;
        let doc = expect::select(documents(&text, "candidate", &m)?, platform).with_context(|| format!("candidate {}", dir.display()))?;
        candidates.push((dir.display().to_string(), doc, read_sbom(&dir.join("sbom.cdx.json"))?));
    }
    for r in &mut report.registers {
        if r.status != RegisterStatus::Mismatch {
            continue;
        }
        let Some(actual) = &r.actual else { continue };
        let matching = candidates.iter().find(|(_, doc, _)| doc.registers.iter().any(|x| x.name == r.name && x.bank == r.bank && x.value == *actual));
        r.explanation = cvmkit_provenance::compare::explain(kind, &r.name, &expected, matching.map(|(n, _, s)| (n.as_str(), s)));
    }
    Ok(())
}
