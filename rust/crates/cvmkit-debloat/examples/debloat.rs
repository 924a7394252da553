//! Debloat a tree from the command line, the way `cvmkit debloat` does:
//!
//! ```text
//! cargo run -p cvmkit-debloat --example debloat -- [--config FILE] ROOT [--apply] [--json]
//! ```
//!
//! Without `--config` the built-in config is used; without `--apply` nothing is removed.

use std::error::Error;
use std::path::PathBuf;
use std::process::ExitCode;

use cvmkit_debloat::{apply, plan, Config};

fn run() -> Result<(), Box<dyn Error>> {
    let mut config = None;
    let mut root = None;
    let (mut do_apply, mut json) = (false, false);
    let mut args = std::env::args_os().skip(1);
    while let Some(arg) = args.next() {
        match arg.to_str() {
            Some("--config") => {
                config = Some(PathBuf::from(args.next().ok_or("--config needs a FILE")?))
            }
            Some("--apply") => do_apply = true,
            Some("--json") => json = true,
            _ if root.is_none() => root = Some(PathBuf::from(arg)),
            _ => return Err(format!("unexpected argument {arg:?}").into()),
        }
    }
    let root = root.ok_or("usage: debloat [--config FILE] ROOT [--apply] [--json]")?;
    let config = match config {
        Some(path) => Config::parse(&std::fs::read_to_string(&path)?, &path.to_string_lossy())?,
        None => Config::default_config(),
    };
    let plan = plan(&root, &config)?;
    let report = if do_apply {
        apply(&root, &plan)?
    } else {
        plan.report()
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{report}");
    }
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            let mut cause = e.source();
            while let Some(c) = cause {
                eprintln!("Caused by: {c}");
                cause = c.source();
            }
            ExitCode::from(2)
        }
    }
}
