//! `cvmkit diff A B`: where two builds differ, through every layer (disk › partition › file ›
//! UKI section › compression › cpio entry); for two image directories with SBOMs, also which
//! components changed.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use cvmkit_provenance::compare::Change;
use cvmkit_diff::{diff_paths, Options};

use crate::output::write_atomically;

/// With an SBOM in both directories: the components that changed (`None`: not two images).
fn component_changes(a: &Path, b: &Path) -> Result<Option<Vec<Change>>> {
    let (sa, sb) = (a.join("sbom.cdx.json"), b.join("sbom.cdx.json"));
    if !(a.is_dir() && b.is_dir() && sa.is_file() && sb.is_file()) {
        return Ok(None);
    }
    let read = |p: &Path| -> Result<_> {
        let text = std::fs::read_to_string(p).with_context(|| format!("cannot read SBOM {}", p.display()))?;
        Ok(cvmkit_provenance::sbom::parse(&text, &p.display().to_string())?)
    };
    Ok(Some(cvmkit_provenance::compare::diff(&read(&sa)?, &read(&sb)?)))
}

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
    let components = component_changes(&args.a, &args.b)?;
    let text = match (args.json, &components) {
        (true, None) => report.to_json() + "\n",
        (true, Some(c)) => {
            let v = serde_json::json!({ "differences": report.differences, "components": c });
            serde_json::to_string_pretty(&v)? + "\n"
        }
        (false, None) => report.render(),
        (false, Some(c)) => {
            let mut t = report.render();
            if !c.is_empty() {
                t.push_str("components (sbom.cdx.json):\n");
                for change in c {
                    t.push_str(&format!("  {change}\n"));
                }
            }
            t
        }
    };
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
