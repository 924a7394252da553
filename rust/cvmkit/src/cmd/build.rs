//! `cvmkit build --spec FILE --out DIR`: the whole image from one JSON spec.
//!
//! This is the builder of the Nix image derivations: Nix evaluates the image modules into this
//! spec (every input a store path) and runs `cvmkit build` with no shell and no stdenv. The same
//! spec runs outside Nix, so every step is testable with `cargo test`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use serde::Deserialize;

use crate::output::{read_input, write_atomically};

/// The value of `schema` in a build spec.
pub const SPEC_SCHEMA: &str = "cvmkit.image/v1";

#[derive(clap::Args)]
pub struct Args {
    /// The image spec (JSON, schema "cvmkit.image/v1"); relative paths in it are relative to
    /// the spec file's directory.
    #[arg(long, required_unless_present = "spec_json", conflicts_with = "spec_json")]
    spec: Option<PathBuf>,
    /// The spec as JSON text (relative paths are relative to the working directory). Nix passes
    /// it this way: a string keeps the store paths it names as build dependencies, which a file
    /// written by builtins.toFile cannot.
    #[arg(long, value_name = "JSON")]
    spec_json: Option<String>,
    /// Output directory (created; existing outputs in it are replaced).
    #[arg(long)]
    out: PathBuf,
}

/// The image spec. Unknown keys are errors, so a typo cannot silently drop a setting.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    pub schema: String,
    /// Image name, used in messages and as the default seed.
    pub name: String,
    /// The one timestamp of every output (cpio mtimes, PE TimeDateStamp, FAT times, tar mtime).
    #[serde(default)]
    pub source_date_epoch: u32,
    pub initrd: InitrdSpec,
    pub uki: UkiSpec,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InitrdSpec {
    /// Directory trees merged in order (later entries replace earlier ones of the same name).
    #[serde(default)]
    pub trees: Vec<PathBuf>,
    /// gen_init_cpio spec files applied after the trees, in order.
    #[serde(default)]
    pub spec_files: Vec<PathBuf>,
    /// none, gzip, zstd, or with a level (zstd:19).
    #[serde(default = "default_compress")]
    pub compress: String,
    #[serde(default)]
    pub preserve_modes: bool,
    #[serde(default)]
    pub allow_dangling_symlinks: bool,
}

fn default_compress() -> String {
    "zstd".into()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UkiSpec {
    pub stub: PathBuf,
    pub kernel: PathBuf,
    #[serde(default)]
    pub cmdline: Option<String>,
    #[serde(default)]
    pub os_release: Option<PathBuf>,
    #[serde(default)]
    pub uname: Option<String>,
    /// Further initrds appended after the built one (microcode, …).
    #[serde(default)]
    pub extra_initrds: Vec<PathBuf>,
}

impl Spec {
    /// Reads and checks a spec file; relative paths are resolved against its directory.
    pub fn load(path: &Path) -> Result<Spec> {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read spec {}", path.display()))?;
        Spec::parse(&text, &path.display().to_string(), path.parent().unwrap_or(Path::new(".")))
    }

    /// Parses spec text named `origin` in messages; relative paths are resolved against `base`.
    pub fn parse(text: &str, origin: &str, base: &Path) -> Result<Spec> {
        let mut spec: Spec =
            serde_json::from_str(text).with_context(|| format!("spec {origin} is not a valid image spec"))?;
        if spec.schema != SPEC_SCHEMA {
            bail!("spec {origin}: schema {:?} is not {SPEC_SCHEMA:?}", spec.schema);
        }
        let fix = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        spec.initrd.trees.iter_mut().for_each(fix);
        spec.initrd.spec_files.iter_mut().for_each(fix);
        fix(&mut spec.uki.stub);
        fix(&mut spec.uki.kernel);
        spec.uki.os_release.iter_mut().for_each(fix);
        spec.uki.extra_initrds.iter_mut().for_each(fix);
        Ok(spec)
    }
}

pub fn run(args: Args) -> Result<ExitCode> {
    let spec = match (&args.spec, &args.spec_json) {
        (Some(path), _) => Spec::load(path)?,
        (None, Some(text)) => Spec::parse(text, "given with --spec-json", Path::new("."))?,
        (None, None) => bail!("give --spec FILE or --spec-json TEXT"),
    };
    std::fs::create_dir_all(&args.out).with_context(|| format!("cannot create output directory {}", args.out.display()))?;
    let what = |step: &str| format!("image {}: {step}", spec.name);

    // 1. initrd
    let opts = cvmkit_initrd::Options {
        mtime: spec.source_date_epoch,
        preserve_modes: spec.initrd.preserve_modes,
        allow_dangling_symlinks: spec.initrd.allow_dangling_symlinks,
    };
    let compression: cvmkit_initrd::Compression =
        spec.initrd.compress.parse().map_err(|e| anyhow::anyhow!("{}: {e}", what("initrd.compress")))?;
    let specs = spec
        .initrd
        .spec_files
        .iter()
        .map(|p| cvmkit_initrd::Spec::from_file(p))
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| what("initrd spec"))?;
    let trees: Vec<&Path> = spec.initrd.trees.iter().map(PathBuf::as_path).collect();
    let spec_refs: Vec<&cvmkit_initrd::Spec> = specs.iter().collect();
    let mut initrd = Vec::new();
    cvmkit_initrd::build_from(&trees, &spec_refs, &opts, compression, &mut initrd).with_context(|| what("initrd"))?;
    let initrd_path = args.out.join("initrd.img");
    write_bytes(&initrd_path, &initrd)?;

    // 2. UKI
    let stub = read_input(&spec.uki.stub, "stub")?;
    let kernel = read_input(&spec.uki.kernel, "kernel")?;
    let mut initrds = vec![initrd];
    for p in &spec.uki.extra_initrds {
        initrds.push(read_input(p, "initrd")?);
    }
    let os_release = spec.uki.os_release.as_ref().map(|p| read_input(p, "os-release")).transpose()?;
    let parts = cvmkit_uki::UkiParts {
        linux: &kernel,
        initrds: initrds.iter().map(Vec::as_slice).collect(),
        cmdline: spec.uki.cmdline.as_deref(),
        os_release: os_release.as_deref(),
        uname: spec.uki.uname.as_deref(),
        ..Default::default()
    };
    let uki = cvmkit_uki::build_uki(&stub, &parts, spec.source_date_epoch).with_context(|| what("UKI"))?;
    let uki_path = args.out.join("uki.efi");
    write_bytes(&uki_path, &uki)?;
    println!("{}: built {} and {}", spec.name, initrd_path.display(), uki_path.display());
    Ok(ExitCode::SUCCESS)
}

fn write_bytes(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomically(path, |w| {
        use std::io::Write;
        w.write_all(bytes)?;
        Ok(())
    })
}
