//! `cvmkit measure check GOLDEN ACTUAL`: golden values against actual ones, by the one rule of
//! `cvmkit_measure::check`; this file parses, prints and sets the exit code.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Result};
use cvmkit_measure::{Measurements, Verdict};

use crate::output::read_input;

#[derive(clap::Args)]
pub struct Args {
    /// The golden measurements: a `cvmkit.measurements/v1` document or an array of them (an
    /// image's measurements.json).
    pub golden: PathBuf,
    /// The measurements to check, in the same form.
    pub actual: PathBuf,
    /// When everything matches, write the JSON report here (atomically); nothing is written
    /// otherwise, so a Nix check derivation fails without an output.
    #[arg(long, short = 'o')]
    pub output: Option<PathBuf>,
    /// A line printed after the differences, telling how to refresh the golden file.
    #[arg(long)]
    pub refresh_hint: Option<String>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Reads a measurements file: one document or an array of them.
fn read_documents(path: &Path, what: &str) -> Result<Vec<Measurements>> {
    let text = String::from_utf8(read_input(path, what)?)
        .map_err(|_| anyhow::anyhow!("{what} {} is not UTF-8 text", path.display()))?;
    let docs = Measurements::list_from_json(&text).map_err(|(i, e)| match i {
        Some(i) => anyhow::anyhow!("{what} {} (document {i}): {e}", path.display()),
        None => anyhow::anyhow!("{what} {}: {e}", path.display()),
    })?;
    if docs.is_empty() {
        bail!("{what} {} holds no measurement documents", path.display());
    }
    Ok(docs)
}

/// Golden values vs actual ones ([`cvmkit_measure::check`]).
pub fn run(a: Args) -> Result<ExitCode> {
    if !a.golden.exists() {
        let hint = a.refresh_hint.as_deref().map(|h| format!("; {h}")).unwrap_or_default();
        bail!("golden file {} does not exist{hint}", a.golden.display());
    }
    let golden = read_documents(&a.golden, "golden file")?;
    let actual = read_documents(&a.actual, "measurements")?;
    let result = cvmkit_measure::check(&golden, &actual);
    let report = serde_json::json!({
        "golden": a.golden.display().to_string(),
        "actual": a.actual.display().to_string(),
        "match": result.is_match(),
        "problems": result.problems,
        "documents": result.documents,
    });
    let report_text = serde_json::to_string_pretty(&report)? + "\n";
    if a.json {
        print!("{report_text}");
    } else {
        for p in &result.problems {
            println!("MISMATCH  {p}");
        }
        for d in &result.documents {
            for r in &d.registers {
                let tag = match r.verdict {
                    Verdict::Match if r.is_match() => "ok",
                    Verdict::Match | Verdict::Mismatch => "MISMATCH",
                    Verdict::Missing => "MISSING",
                    Verdict::Unexpected => "UNEXPECTED",
                };
                let value = r.actual.as_ref().map(|v| v.to_hex()).unwrap_or_else(|| "-".into());
                println!("{tag:<10} {} {} {} {value}", d.platform, r.name, r.bank.name());
                if !r.is_match() {
                    if let Some(expected) = &r.expected {
                        println!("           golden {expected}");
                    }
                    for e in r.events.iter().filter(|e| e.verdict != Verdict::Match) {
                        let digest = |d: &Option<cvmkit_measure::Digest>| d.as_ref().map(|d| d.to_hex()).unwrap_or_else(|| "-".into());
                        println!(
                            "           event {} {:?} {:?}: golden {} actual {}",
                            e.index,
                            e.verdict,
                            e.label,
                            digest(&e.expected),
                            digest(&e.actual)
                        );
                    }
                }
            }
        }
    }
    if !result.is_match() {
        eprintln!("cvmkit: measurements {} differ from the golden values in {}", a.actual.display(), a.golden.display());
        if let Some(hint) = &a.refresh_hint {
            eprintln!("{hint}");
        }
        return Ok(ExitCode::from(1));
    }
    if let Some(out) = &a.output {
        crate::output::write_bytes(out, report_text.as_bytes())?;
    }
    if !a.json {
        let n: usize = result.documents.iter().map(|d| d.registers.len()).sum();
        let platforms: Vec<&str> = golden.iter().map(|m| m.platform.name()).collect();
        println!("golden: all {n} registers of {} match", platforms.join(", "));
    }
    Ok(ExitCode::SUCCESS)
}

