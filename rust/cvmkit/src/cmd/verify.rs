//! `cvmkit verify`: check attestation evidence offline, and against a build's prediction.
//!
//! Exit 0 only when every check passes (skipped checks say why); 1 when the evidence is invalid
//! or does not match; 2 when an input cannot be used.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use cvmkit_evidence::expect::{self, RuntimeRegister};
use cvmkit_evidence::{tdx, Report, Status};
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
    /// Print the verdict document (cvmkit.verdict/v1).
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
struct TdxArgs {
    /// The quote (binary, as /sys/kernel/config/tsm/report/*/outblob or a DCAP library writes it).
    quote: PathBuf,
    /// PCCS collateral for the quote (JSON, dcap-qvl's QuoteCollateralV3 shape): TCB status and
    /// revocation are evaluated only with it.
    #[arg(long, value_name = "FILE")]
    collateral: Option<PathBuf>,
    /// Expected report data, hex (at most 64 bytes; shorter values are zero-padded).
    #[arg(long, value_name = "HEX")]
    report_data: Option<String>,
    /// The CCEL of the same boot (/sys/firmware/acpi/tables/data/CCEL): replayed to RTMR0-3 and
    /// compared event by event with the prediction.
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

pub fn run(args: Args) -> Result<ExitCode> {
    match args.kind {
        Kind::Tdx(a) => run_tdx(a),
    }
}

fn run_tdx(a: TdxArgs) -> Result<ExitCode> {
    let raw = read_input(&a.quote, "quote")?;
    let collateral = match &a.collateral {
        Some(p) => Some(tdx::parse_collateral(&read_input(p, "collateral")?).with_context(|| format!("collateral {}", p.display()))?),
        None => None,
    };
    let log = match &a.event_log {
        Some(p) => Some(tdx::parse_ccel(&read_input(p, "event log")?).with_context(|| format!("event log {}", p.display()))?),
        None => None,
    };
    let report_data = a.report_data.as_deref().map(|h| cvmkit_evidence::parse_hex_option("--report-data", h, 64)).transpose()?;
    let expected = expectation(&a.common, Platform::Tdx, RuntimeRegister::Rtmr3)?;
    let accepted: Vec<&str> = a.accept_tcb.iter().map(String::as_str).collect();
    let mut o = tdx::Options::new(at(&a.common)?);
    o.collateral = collateral.as_ref();
    o.event_log = log.as_ref();
    o.report_data = report_data.as_deref();
    o.allow_debug = a.allow_debug;
    o.accepted_tcb = &accepted;
    o.expect = expected.as_ref();
    let report = tdx::verify(&raw, &o).with_context(|| format!("quote {}", a.quote.display()))?;
    finish(&report, "TDX quote", a.common.json)
}

fn at(c: &Common) -> Result<u64> {
    Ok(match &c.at {
        Some(t) => tdx::parse_time(t)?,
        None => std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0),
    })
}

/// The prediction: `--expect`, with the runtime register of `--manifest` added.
fn expectation(c: &Common, platform: Platform, runtime: RuntimeRegister) -> Result<Option<Measurements>> {
    let doc = match &c.expect {
        Some(p) => Some(read_prediction(p, platform)?),
        None => None,
    };
    Ok(match &c.manifest {
        None => doc,
        Some(m) => Some(expect::with_register(doc, platform, expect::workload_register(m, c.hostname.as_deref(), runtime)?)),
    })
}

/// One document, or the one for `platform` among an image's `measurements.json`.
fn read_prediction(path: &Path, platform: Platform) -> Result<Measurements> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read prediction {}", path.display()))?;
    let docs = Measurements::list_from_json(&text).map_err(|(i, e)| match i {
        Some(i) => anyhow::anyhow!("prediction {}: document {i}: {e}", path.display()),
        None => anyhow::anyhow!("prediction {}: {e}", path.display()),
    })?;
    Ok(expect::select(docs, platform).with_context(|| format!("prediction {}", path.display()))?)
}

fn finish(report: &Report, what: &str, json: bool) -> Result<ExitCode> {
    if json {
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
    let name_width = r.registers.iter().map(|x| x.name.len()).max().unwrap_or(0);
    for x in &r.registers {
        let actual = x.actual.as_ref().map(|d| d.to_hex()).unwrap_or_else(|| "-".into());
        println!("{:<13} {:<name_width$} {:<6} {actual}", x.status.word(), x.name, x.bank.name());
        if let (Some(e), true) = (&x.expected, x.status != cvmkit_evidence::RegisterStatus::Match) {
            println!("{:<13} {:<name_width$} {:<6} expected {}", "", "", "", e.to_hex());
        }
        if let Some(d) = &x.first_difference {
            println!("{:<13} first difference: event {} {} ({})", "", d.index, d.label, d.verdict.word());
        }
    }
    for n in &r.notes {
        println!("note: {n}");
    }
    println!("{what}: {}", if r.passed() { "VALID" } else { "INVALID" });
}
