//! `cvmkit initrd`: a directory tree and/or a gen_init_cpio spec → a deterministic newc initramfs.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use cvmkit_initrd::{Compression, Options, Spec};

use crate::output::{sha256_file, source_date_epoch, write_atomically};

#[derive(clap::Args)]
pub struct Args {
    /// Directories whose contents become the root of the initramfs; several are merged in
    /// order (an entry of a later one replaces the same name from an earlier one).
    roots: Vec<PathBuf>,
    /// Output file.
    #[arg(short, long)]
    output: PathBuf,
    /// Entries in the kernel's gen_init_cpio format (`nod /dev/console 0600 0 0 c 5 1`, `dir`,
    /// `file`, `slink`, `pipe`, `sock`), added to the tree; an entry replaces a tree entry of the
    /// same name, which is how owners and modes are set without root. Repeatable: applied in order.
    #[arg(long)]
    spec: Vec<PathBuf>,
    /// Compression of the archive: none, gzip or zstd, optionally with a level (`zstd:19`).
    #[arg(long, default_value = "none")]
    compress: Compression,
    /// Keep permission bits from disk instead of normalizing them to 0644/0755 (which keeps the
    /// host umask out of the image).
    #[arg(long)]
    preserve_modes: bool,
    /// Keep symlinks whose target is not in the image (such as /dev/fd -> /proc/self/fd).
    #[arg(long)]
    allow_dangling_symlinks: bool,
}

pub fn run(args: Args) -> Result<ExitCode> {
    if args.roots.is_empty() && args.spec.is_empty() {
        bail!("nothing to pack: give a ROOT_DIR, a --spec file, or both");
    }
    let opts = Options {
        mtime: source_date_epoch()?,
        preserve_modes: args.preserve_modes,
        allow_dangling_symlinks: args.allow_dangling_symlinks,
    };
    let specs = args
        .spec
        .iter()
        .map(|path| {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read spec {}", path.display()))?;
            Ok(Spec::parse(&text, path)?)
        })
        .collect::<Result<Vec<Spec>>>()?;
    let roots: Vec<&std::path::Path> = args.roots.iter().map(PathBuf::as_path).collect();
    let spec_refs: Vec<&Spec> = specs.iter().collect();
    let stats = write_atomically(&args.output, |w| {
        Ok(cvmkit_initrd::build_from(&roots, &spec_refs, &opts, args.compress, w)?)
    })?;
    let digest = sha256_file(&args.output)?;
    println!(
        "{}: {} entries, {} bytes cpio, {} bytes written, sha256 {}",
        args.output.display(),
        stats.entries,
        stats.cpio_bytes,
        stats.output_bytes,
        digest
    );
    Ok(ExitCode::SUCCESS)
}
