//! `cvmkit provenance DIR`: the in-toto Statement (SLSA v1 provenance) of a built image, unsigned.
//! The statement is `cvmkit-provenance`'s; this file reads arguments and writes it.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use cvmkit_provenance::statement::{self, BuildInfo};

use crate::output::{read_input, write_atomically};

#[derive(clap::Args)]
pub struct Args {
    /// The image's output directory (uki.efi, disk.*, measurements.json, sbom.cdx.json).
    dir: PathBuf,
    /// The image's name.
    #[arg(long, value_name = "NAME")]
    image: String,
    /// The flake that built it, e.g. `github:cvmkit/cvmkit` (recorded as given).
    #[arg(long, value_name = "REF")]
    flake: Option<String>,
    /// The flake's flake.lock: its locked inputs (nixpkgs' revision and narHash, …) are the
    /// build's resolved dependencies.
    #[arg(long, value_name = "FILE")]
    flake_lock: Option<PathBuf>,
    /// The flake's own git revision (Nix: `self.rev`).
    #[arg(long, value_name = "REV")]
    source_rev: Option<String>,
    /// The flake's narHash (Nix: `self.narHash`).
    #[arg(long, value_name = "HASH")]
    source_nar_hash: Option<String>,
    /// Write the statement to FILE (default: standard output).
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
}

pub fn run(args: Args) -> Result<ExitCode> {
    let inputs = match &args.flake_lock {
        Some(p) => {
            let text = String::from_utf8(read_input(p, "flake lock")?)
                .with_context(|| format!("flake lock {} is not UTF-8", p.display()))?;
            statement::parse_flake_lock(&text, &p.display().to_string())?
        }
        None => Vec::new(),
    };
    let info = BuildInfo {
        image: args.image,
        flake: args.flake,
        source_rev: args.source_rev,
        source_nar_hash: args.source_nar_hash,
        inputs,
        tool_version: env!("CARGO_PKG_VERSION").into(),
    };
    let text = statement::to_json(&statement::statement(&args.dir, &info)?);
    match &args.output {
        Some(out) => write_atomically(out, |w| {
            use std::io::Write;
            w.write_all(text.as_bytes())?;
            Ok(())
        })?,
        None => print!("{text}"),
    }
    Ok(ExitCode::SUCCESS)
}
