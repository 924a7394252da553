//! `cvmkit build --spec FILE -o DIR`: the whole image from one JSON spec.
//!
//! This is the builder of the Nix image derivations: Nix evaluates the image modules into this
//! spec (every input a store path) and runs `cvmkit build` with no shell and no stdenv. The spec
//! and the build are the `cvmkit-image` crate's; this file only reads arguments and prints.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Result};
use cvmkit_image::Spec;

#[derive(clap::Args)]
pub struct Args {
    /// The image spec (JSON, schema "cvmkit.image/v1"); relative paths in it are relative to
    /// the spec file's directory.
    #[arg(long, required_unless_present_any = ["spec_json", "print_schema"], conflicts_with = "spec_json")]
    spec: Option<PathBuf>,
    /// The spec as JSON text (relative paths are relative to the working directory). Nix passes
    /// it this way: a string keeps the store paths it names as build dependencies, which a file
    /// written by builtins.toFile cannot.
    #[arg(long, value_name = "JSON")]
    spec_json: Option<String>,
    /// Output directory (created; existing outputs in it are replaced).
    #[arg(short = 'o', long = "output", visible_alias = "out", value_name = "DIR", required_unless_present = "print_schema")]
    out: Option<PathBuf>,
    /// Print the spec's JSON Schema (nix/cvmkit.image.v1.schema.json) and build nothing.
    #[arg(long, conflicts_with_all = ["spec", "spec_json", "out"])]
    print_schema: bool,
}

pub fn run(args: Args) -> Result<ExitCode> {
    if args.print_schema {
        print!("{}", cvmkit_image::schema_json());
        return Ok(ExitCode::SUCCESS);
    }
    let spec = match (&args.spec, &args.spec_json) {
        (Some(path), _) => Spec::load(path)?,
        (None, Some(text)) => Spec::parse(text, "given with --spec-json", Path::new("."))?,
        (None, None) => bail!("give --spec FILE or --spec-json TEXT"),
    };
    let out = args.out.as_deref().expect("clap requires --output");
    let built = cvmkit_image::build(&spec, out)?;
    println!("{}: built {} and {}", spec.name, built.initrd.display(), built.uki.display());
    if let Some(disk) = &built.disk {
        println!("{}: built {}", spec.name, disk.display());
    }
    if let Some(path) = &built.measurements {
        let n = built.documents.len();
        println!("{}: predicted {} ({n} platform{})", spec.name, path.display(), if n == 1 { "" } else { "s" });
    }
    println!("{}: listed its components in {}", spec.name, built.sbom.display());
    Ok(ExitCode::SUCCESS)
}
