//! Prints the events, findings and replayed registers of an event log.
//!
//! `cargo run -p cvmkit-tcg-log --example dump -- EVENTLOG [tpm|ccel]`

use std::process::ExitCode;

use cvmkit_tcg_log::{EventLog, LogKind};

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let Some(path) = args.next() else {
        eprintln!("usage: dump EVENTLOG [tpm|ccel]");
        return ExitCode::from(2);
    };
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) => {
            eprintln!("error: reading {path}: {e}");
            return ExitCode::from(2);
        }
    };
    let parsed = match args.next().as_deref() {
        Some("tpm") => EventLog::parse_as(&bytes, LogKind::Tpm),
        Some("ccel") => EventLog::parse_as(&bytes, LogKind::Ccel),
        _ => EventLog::parse(&bytes),
    };
    let log = match parsed {
        Ok(log) => log,
        Err(e) => {
            eprintln!("error: {path}: {e}");
            return ExitCode::from(1);
        }
    };
    println!(
        "{path}: {:?} {:?} log, {} events, {} of {} bytes used, algorithms {:?}",
        log.kind(),
        log.format(),
        log.events().len(),
        log.bytes_used(),
        bytes.len(),
        log.algorithms()
            .iter()
            .map(|a| a.to_string())
            .collect::<Vec<_>>()
    );
    for event in log.events() {
        println!("{event}");
    }
    for finding in log.findings() {
        println!("{:?}: {finding}", finding.severity());
    }
    let replay = log.replay();
    for alg in replay.banks() {
        for (register, value) in replay.values(*alg) {
            if replay.events_extended(register) > 0 {
                println!("{alg} {register} {value}");
            }
        }
    }
    ExitCode::SUCCESS
}
