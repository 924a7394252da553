//! `cvmkit reference`: reference values for the registers a cloud's firmware sets.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use cvmkit_evidence::reference::{self, Capture};

use crate::output::read_input;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    kind: Kind,
}

#[derive(clap::Subcommand)]
enum Kind {
    /// From one real VM: its TDX CCEL (and quote) or vTPM log, as reference values for
    /// `cvmkit verify --reference`.
    Capture(CaptureArgs),
    /// From Google's signed launch endorsement of GCE's firmware (a `VMLaunchEndorsement`
    /// .binarypb from the gce_tcb_integrity bucket): MRTDs per RAM size, SNP launch digests per
    /// vCPU count, verified against the root given.
    Gcp(GcpArgs),
}

#[derive(clap::Args)]
struct GcpArgs {
    /// The endorsement (binary protobuf).
    endorsement: PathBuf,
    /// The root certificate (PEM or DER) the endorsement's signing certificate must chain to:
    /// Google's GCE-cc-tcb-root (https://pki.goog/cloud_integrity/GCE-cc-tcb-root_1.crt).
    /// Required: this build has no copy of it to pin, and the endorsement's own CA bundle is
    /// never trusted.
    #[arg(long, value_name = "CERT", required = true)]
    root: Vec<PathBuf>,
    /// Evaluate certificate validity at this time (RFC 3339) instead of now.
    #[arg(long, value_name = "RFC3339")]
    at: Option<String>,
    /// Write the documents here instead of standard output.
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
}

#[derive(clap::Args)]
struct CaptureArgs {
    /// The event log: /sys/firmware/acpi/tables/data/CCEL (or dstack's JSON log) of a TDX VM,
    /// or /sys/kernel/security/tpm0/binary_bios_measurements of a vTPM.
    log: PathBuf,
    /// TDX: the quote of the same boot; verified (signatures, PCK chain, the log replaying to
    /// it) before its MRTD becomes a reference.
    #[arg(long, value_name = "FILE")]
    quote: Option<PathBuf>,
    /// The VM shape the values hold for (e.g. c3-standard-4), recorded in each value's source.
    #[arg(long, value_name = "NAME")]
    machine_type: Option<String>,
    /// Evaluate the quote's certificates at this time (RFC 3339) instead of now.
    #[arg(long, value_name = "RFC3339")]
    at: Option<String>,
    /// Write the document here instead of standard output.
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
}

pub fn run(args: Args) -> Result<ExitCode> {
    match args.kind {
        Kind::Capture(a) => capture(a),
        Kind::Gcp(a) => gcp(a),
    }
}

fn gcp(a: GcpArgs) -> Result<ExitCode> {
    let raw = read_input(&a.endorsement, "endorsement")?;
    let roots = a.root.iter().map(|p| read_input(p, "root certificate")).collect::<Result<Vec<_>>>()?;
    let roots: Vec<&[u8]> = roots.iter().map(Vec::as_slice).collect();
    let at = super::verify::at_or_now(a.at.as_deref())?;
    let what = format!("endorsement {}", a.endorsement.display());
    let (report, endorsement) = cvmkit_evidence::gcp::verify(&raw, &roots, at).with_context(|| what.clone())?;
    let Some(e) = endorsement else {
        let reasons: Vec<String> = report.checks.iter().filter(|c| c.status == cvmkit_evidence::Status::Fail).map(|c| format!("{}: {}", c.name, c.reason)).collect();
        eprintln!("error: {what} does not verify ({}); nothing written", reasons.join("; "));
        return Ok(ExitCode::from(1));
    };
    let docs = cvmkit_evidence::gcp::reference_document(&e);
    let mut text = serde_json::to_string_pretty(&docs)?;
    text.push('\n');
    match &a.output {
        Some(p) => crate::output::write_bytes(p, text.as_bytes())?,
        None => print!("{text}"),
    }
    Ok(ExitCode::SUCCESS)
}

fn capture(a: CaptureArgs) -> Result<ExitCode> {
    let log = read_input(&a.log, "event log")?;
    let quote = a.quote.as_ref().map(|p| read_input(p, "quote")).transpose()?;
    let log_name = a.log.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let at = super::verify::at_or_now(a.at.as_deref())?;
    let c = Capture { log: &log, log_name: &log_name, quote: quote.as_deref(), machine_type: a.machine_type.as_deref(), at };
    let what = match &a.quote {
        Some(q) => format!("event log {} with quote {}", a.log.display(), q.display()),
        None => format!("event log {}", a.log.display()),
    };
    let (doc, verdict) = reference::capture(&c).with_context(|| what.clone())?;
    // A quote that does not verify (or that the log does not replay to) vouches for nothing.
    if let Some(v) = verdict.filter(|_| doc.register("MRTD", cvmkit_measure::Bank::Sha384).is_none()) {
        eprintln!("error: {what}: the quote does not verify ({}); nothing captured", v.failed().join(", "));
        return Ok(ExitCode::from(1));
    }
    let text = doc.to_json();
    match &a.output {
        Some(p) => crate::output::write_bytes(p, text.as_bytes())?,
        None => print!("{text}"),
    }
    Ok(ExitCode::SUCCESS)
}
