//! `cvmkit diff A B`: where two builds differ, through every layer (disk › partition › file ›
//! UKI section › compression › cpio entry).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use cvmkit_diff::{diff_paths, Options};

use crate::output::write_atomically;

#[derive(clap::Args)]
pub struct Args {
    /// First file, directory, Nix store path or NAR.
    a: PathBuf,
    /// Second one.
    b: PathBuf,
    /// Print the differences as JSON.
    #[arg(long)]
    json: bool,
    /// How many container layers to open before comparing bytes (default 32).
    #[arg(long)]
    max_depth: Option<usize>,
    /// Also write the report to FILE (written even when identical; a Nix check uses it as $out).
    #[arg(short, long)]
    output: Option<PathBuf>,
}

/// Exit status: 0 identical, 1 different, 2 error.
pub fn run(args: Args) -> Result<ExitCode> {
    let mut opts = Options::default();
    if let Some(n) = args.max_depth {
        opts = opts.with_max_depth(n);
    }
    let report = diff_paths(&args.a, &args.b, &opts)?;
    let text = if args.json { report.to_json() + "\n" } else { report.render() };
    print!("{text}");
    if let Some(out) = &args.output {
        write_atomically(out, |w| {
            use std::io::Write;
            w.write_all(if report.is_identical() { b"identical\n" } else { text.as_bytes() })?;
            Ok(())
        })?;
    }
    Ok(if report.is_identical() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
