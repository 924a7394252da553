//! `cvmkit debloat`: remove what a minimal image does not need, by glob rules with keep-rules.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use cvmkit_debloat::{apply, plan, Config};

#[derive(clap::Args)]
pub struct Args {
    /// The root filesystem tree to trim (changed in place unless --dry-run).
    root: PathBuf,
    /// Rules (TOML: [[remove]] and [[keep]] tables with name, paths, comment, types); without it
    /// the built-in default config (docs, man pages, locales, caches, package lists, headers,
    /// static libraries, bytecode caches, …; `cvmkit debloat-default-config` prints it).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Report what would be removed, change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

/// `--print-default-config` is handled in main through this.
pub fn default_config_text() -> &'static str {
    cvmkit_debloat::DEFAULT_CONFIG
}

pub fn run(args: Args) -> Result<ExitCode> {
    let config = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("cannot read config {}", path.display()))?;
            Config::parse(&text, &path.display().to_string())?
        }
        None => Config::default_config(),
    };
    let p = plan(&args.root, &config).with_context(|| format!("root {}", args.root.display()))?;
    let report = if args.dry_run { p.report() } else { apply(&args.root, &p).with_context(|| format!("root {}", args.root.display()))? };
    if args.json {
        crate::output::print_json(&report)?;
    } else {
        print!("{report}");
    }
    Ok(ExitCode::SUCCESS)
}
