//! `cvmkit-runtime`: the in-image runtime (see the library docs).
//!
//! ```text
//! cvmkit-runtime [run] [--setting VALUE …]   discover, verify, launch, supervise (never returns while workloads run)
//! cvmkit-runtime discover [--setting VALUE …] discover once (with retries), write the env file, print it
//! cvmkit-runtime events --manifest B64 [--manifest B64 …] [--hostname LIST] [--base-port N] [--max-workloads N]
//!                                             print the measured events and the PCR 15 / RTMR3 values they give
//! cvmkit-runtime read-pcr [--tpm-device PATH] [--pcr N]
//!                                             print a PCR (SHA-256 bank) in hex, for images without tpm2-tools
//! ```

#![forbid(unsafe_code)]

use std::process::ExitCode;
use std::time::Duration;

use cvmkit_runtime::config::{split_flags, RuntimeConfig, SETTINGS};
use cvmkit_runtime::log::Logger;
use cvmkit_runtime::manifest::hex;
use cvmkit_runtime::{envfile, manifest, measure, routes, run};

fn usage() -> String {
    let mut s = String::from(
        "cvmkit-runtime: finds the manifest in cloud metadata, verifies and runs the workloads, writes the nginx mapping\n\n\
         usage:\n  cvmkit-runtime [run] [--SETTING VALUE]...\n  cvmkit-runtime discover [--SETTING VALUE]...\n  \
         cvmkit-runtime events --manifest BASE64 [--manifest BASE64]... [--hostname LIST] [--base-port N] [--max-workloads N]\n  \
         cvmkit-runtime read-pcr [--tpm-device PATH] [--pcr N]\n\nsettings (also `name = value` lines in the config file):\n",
    );
    for (name, value, help) in SETTINGS {
        s.push_str(&format!("  --{name} {value}\n      {help}\n"));
    }
    s
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (cmd, rest) = match args.first().map(String::as_str) {
        None => ("run", &args[..]),
        Some(a) if a.starts_with("--") && a != "--help" && a != "--version" => ("run", &args[..]),
        Some(a) => (a, &args[1..]),
    };
    let result = match cmd {
        "run" => cmd_run(rest),
        "discover" => cmd_discover(rest),
        "events" => cmd_events(rest),
        "read-pcr" => cmd_read_pcr(rest),
        "help" | "--help" | "-h" => {
            print!("{}", usage());
            Ok(())
        }
        "--version" | "version" => {
            println!("cvmkit-runtime {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
        other => Err(format!("unknown command '{other}'\nhint: run `cvmkit-runtime --help`")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Errors quote metadata (the host's): one line, no control characters.
            let lines: Vec<String> = e.lines().map(cvmkit_runtime::log::escape).collect();
            eprintln!("error: {}", lines.join("\n"));
            ExitCode::from(2)
        }
    }
}

fn config(rest: &[String]) -> Result<RuntimeConfig, String> {
    RuntimeConfig::from_flags(rest).map_err(|e| format!("{e}\nhint: run `cvmkit-runtime --help`"))
}

fn logger(cfg: &RuntimeConfig) -> Logger {
    let file = cfg.log_dir.join("runtime.log");
    Logger::new("cvmkit-runtime: ", Some(&file), true).unwrap_or_else(|e| {
        eprintln!("cvmkit-runtime: cannot open {}: {e}; logging to the console only", file.display());
        Logger::new("cvmkit-runtime: ", None, true).expect("a console logger needs no file")
    })
}

fn cmd_run(rest: &[String]) -> Result<(), String> {
    let cfg = config(rest)?;
    let log = logger(&cfg);
    log.info(format!("cvmkit-runtime {} starting", env!("CARGO_PKG_VERSION")));
    let running = run::start(&cfg, &log).map_err(|e| e.to_string())?;
    if running.workloads.iter().all(Option::is_none) {
        running.stop();
        return Err("no workload could be started (see the log above)".into());
    }
    // Workloads are supervised until they are refused or hit the restart limit.
    while running.workloads.iter().flatten().any(|w| !w.is_finished()) {
        std::thread::sleep(Duration::from_millis(200));
    }
    running.stop();
    Err("every workload has stopped".into())
}

fn cmd_discover(rest: &[String]) -> Result<(), String> {
    let cfg = config(rest)?;
    let log = logger(&cfg);
    let found = run::discover(&cfg, &log).map_err(|e| e.to_string())?;
    let names = run::hostnames(&found, &log);
    let plan = routes::plan(&names, found.manifests.len(), cfg.base_port);
    let text = envfile::render(&envfile::entries(&found, &plan, cfg.base_port));
    envfile::write_atomic(&cfg.env_file, text.as_bytes())
        .map_err(|e| format!("cannot write {}: {e}", cfg.env_file.display()))?;
    print!("{text}");
    Ok(())
}

fn cmd_events(rest: &[String]) -> Result<(), String> {
    let mut manifests = Vec::new();
    let mut hostname = String::new();
    let mut base_port = cvmkit_manifest::BASE_PORT;
    let mut max_workloads = cvmkit_manifest::MAX_WORKLOADS;
    for (k, v) in split_flags(rest).map_err(|e| e.to_string())? {
        match k.as_str() {
            "manifest" => manifests.extend(manifest::decode(&v).map_err(|e| e.to_string())?),
            "hostname" => hostname = v,
            "base-port" => base_port = v.parse().map_err(|_| format!("--base-port '{v}' is not a port"))?,
            "max-workloads" => {
                max_workloads = v.parse().map_err(|_| format!("--max-workloads '{v}' is not a number"))?
            }
            _ => return Err(format!("unknown setting '{k}' for `events`")),
        }
    }
    if manifests.is_empty() {
        return Err("give at least one --manifest BASE64 (the metadata values, in key order)".into());
    }
    // The runtime refuses these lists: a verifier must not compute registers for them.
    cvmkit_manifest::check_workloads(manifests.len(), base_port, max_workloads)
        .map_err(|e| format!("{e}; the runtime refuses this deployment"))?;
    let names = routes::parse_hostnames(&hostname).map_err(|e| e.to_string())?;
    let digests: Vec<_> = manifests.iter().map(|m| m.sha256).collect();
    let events = measure::events(&digests, &names, base_port);
    for e in &events {
        println!("event {e}");
    }
    println!("pcr15-sha256 {}", hex(&measure::expected_pcr(&events)));
    println!("rtmr3-sha384 {}", hex(&measure::expected_rtmr([0; 48], &events)));
    Ok(())
}

fn cmd_read_pcr(rest: &[String]) -> Result<(), String> {
    let mut device = std::path::PathBuf::from("/dev/tpmrm0");
    let mut pcr = 15u32;
    for (k, v) in split_flags(rest).map_err(|e| e.to_string())? {
        match k.as_str() {
            "tpm-device" => device = v.into(),
            "pcr" => pcr = v.parse().ok().filter(|p| *p < 24).ok_or_else(|| format!("--pcr '{v}' is not 0-23"))?,
            _ => return Err(format!("unknown setting '{k}' for `read-pcr`")),
        }
    }
    let mut dev = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&device)
        .map_err(|e| format!("cannot open {}: {e}", device.display()))?;
    let value = measure::tpm_read_pcr(&mut dev, pcr).map_err(|e| e.to_string())?;
    println!("{}", hex(&value));
    Ok(())
}
