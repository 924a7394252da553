//! `cvmkit replay`: replay a TPM or TDX CCEL event log, and check it against a prediction.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use cvmkit_measure::{compare, Extra, Measurements, Verdict};
use cvmkit_tcg_log::LogKind;

use crate::output::read_input;

#[derive(clap::Args)]
pub struct Args {
    /// A TCG crypto-agile event log: a TPM log (/sys/kernel/security/tpm0/binary_bios_measurements)
    /// or a TDX CCEL (/sys/firmware/acpi/tables/data/CCEL).
    eventlog: PathBuf,
    /// Treat the log as this kind instead of detecting it.
    #[arg(long, value_parser = ["tpm", "ccel"])]
    kind: Option<String>,
    /// A prediction from `cvmkit measure … --json`: print MATCH/MISMATCH per register and event,
    /// and exit 1 on any mismatch.
    #[arg(long)]
    expect: Option<PathBuf>,
    /// Also fail (exit 1) on warnings about the log itself, such as a duplicate separator.
    #[arg(long)]
    strict: bool,
    /// Print machine-readable JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> Result<ExitCode> {
    let data = read_input(&args.eventlog, "event log")?;
    let kind = args.kind.as_deref().map(|k| if k == "tpm" { LogKind::Tpm } else { LogKind::Ccel });
    let (doc, warned) = cvmkit_tcg_log::document(&args.eventlog.display().to_string(), &data, kind)
        .with_context(|| format!("event log {}", args.eventlog.display()))?;
    let failed_strict = args.strict && warned;
    let Some(expect_path) = &args.expect else {
        if args.json {
            print!("{}", doc.to_json());
        } else {
            print_document(&doc);
        }
        return Ok(if failed_strict { ExitCode::from(1) } else { ExitCode::SUCCESS });
    };
    let text = std::fs::read_to_string(expect_path)
        .with_context(|| format!("cannot read prediction {}", expect_path.display()))?;
    let expected = Measurements::from_json(&text).map_err(|e| anyhow::anyhow!("{}: {e}", expect_path.display()))?;
    let result = compare(&expected, &doc, Extra::Ignore);
    let all_match = result.iter().all(|r| r.is_match());
    if args.json {
        #[derive(serde::Serialize)]
        struct Out<'a> {
            result: &'static str,
            registers: &'a [cvmkit_measure::RegisterComparison],
            notes: &'a [String],
        }
        let out = Out { result: if all_match { "MATCH" } else { "MISMATCH" }, registers: &result, notes: &doc.notes };
        crate::output::print_json(&out)?;
    } else {
        for r in &result {
            let expected = r.expected.as_ref().map(|d| d.to_hex()).unwrap_or_default();
            println!("{:<9} {} {} expected {expected}", r.verdict.word(), r.name, r.bank.name());
            if let Some(a) = &r.actual {
                if r.verdict != Verdict::Match {
                    println!("{:<9} {:>width$} actual   {a}", "", "", width = r.name.len() + r.bank.name().len() + 1);
                }
            }
            for e in &r.events {
                println!("  {:<9} [{}] {}", e.verdict.word(), e.index, e.label);
                if e.verdict == Verdict::Mismatch {
                    let digest = |d: &Option<cvmkit_measure::Digest>| d.as_ref().map(|d| d.to_hex()).unwrap_or_else(|| "-".into());
                    println!("            expected {}", digest(&e.expected));
                    println!("            actual   {}", digest(&e.actual));
                }
            }
        }
        for n in &doc.notes {
            println!("{n}");
        }
        println!("{}", if all_match { "MATCH" } else { "MISMATCH" });
    }
    Ok(if all_match && !failed_strict { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// Human output shared with `cvmkit measure`: each register, then its events.
pub fn print_document(doc: &Measurements) {
    for (name, input) in &doc.inputs {
        match (&input.path, &input.sha256, &input.value) {
            (Some(p), Some(h), _) => println!("input {name}: {p} (sha256 {h})"),
            (_, _, Some(v)) => println!("input {name}: {v}"),
            _ => {}
        }
    }
    for r in &doc.registers {
        println!("{} {} {}", r.name, r.bank.name(), r.value);
        for (i, e) in r.events.iter().enumerate() {
            println!("  [{i}] {} {}", e.digest, e.label);
        }
    }
    for n in &doc.notes {
        println!("{n}");
    }
}
