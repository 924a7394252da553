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
    }
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
