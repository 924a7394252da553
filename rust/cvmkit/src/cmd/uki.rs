//! `cvmkit uki`: assemble a Unified Kernel Image (systemd-stub + sections) in pure Rust.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use cvmkit_uki::{prepare_uki, UkiOptions, UkiParts};
use cvmkit_image::HashingWriter;
use sha2::{Digest, Sha256};

use crate::output::{read_input, source_date_epoch, write_atomically};

#[derive(clap::Args)]
pub struct Args {
    /// The systemd-stub EFI program (linuxx64.efi.stub) the sections are appended to.
    #[arg(long)]
    stub: PathBuf,
    /// The kernel (a PE with an EFI stub, such as vmlinuz).
    #[arg(long)]
    linux: PathBuf,
    /// An initrd; several are concatenated in the order given, each padded to 4 bytes.
    #[arg(long)]
    initrd: Vec<PathBuf>,
    /// The kernel command line; `@FILE` reads it from FILE.
    #[arg(long)]
    cmdline: Option<String>,
    /// An os-release file for the .osrel section.
    #[arg(long)]
    os_release: Option<PathBuf>,
    /// The kernel release for the .uname section.
    #[arg(long)]
    uname: Option<String>,
    /// SBAT entries merged into the stub's .sbat section (text starting with `sbat,`).
    #[arg(long)]
    sbat: Option<PathBuf>,
    /// An extra section as NAME:FILE, placed before .linux.
    #[arg(long, value_name = "NAME:FILE")]
    section: Vec<String>,
    /// Output file.
    #[arg(short, long)]
    output: PathBuf,
}

pub fn run(args: Args) -> Result<ExitCode> {
    let stub = read_input(&args.stub, "stub")?;
    let linux = read_input(&args.linux, "kernel")?;
    // Initrds are streamed from their files (read twice: once to sum the PE checksum, once into
    // the output), never held in memory: they are the part of a UKI that grows to GiBs.
    let initrds: Vec<&std::path::Path> = args.initrd.iter().map(PathBuf::as_path).collect();
    let cmdline = match &args.cmdline {
        Some(c) => Some(match c.strip_prefix('@') {
            Some(path) => std::fs::read_to_string(path)
                .with_context(|| format!("cannot read command line file {path}"))?,
            None => c.clone(),
        }),
        None => None,
    };
    let os_release = args.os_release.as_ref().map(|p| read_input(p, "os-release")).transpose()?;
    let sbat = match &args.sbat {
        Some(p) => Some(
            String::from_utf8(read_input(p, "sbat file")?)
                .with_context(|| format!("sbat file {} is not UTF-8 text", p.display()))?,
        ),
        None => None,
    };
    let mut extra = Vec::new();
    for s in &args.section {
        let (name, file) = s
            .split_once(':')
            .with_context(|| format!("--section {s:?}: expected NAME:FILE, such as .splash:logo.bmp"))?;
        extra.push((name.to_string(), read_input(PathBuf::from(file).as_path(), "section file")?));
    }
    let parts = UkiParts {
        linux: &linux,
        initrds: Vec::new(),
        cmdline: cmdline.as_deref(),
        os_release: os_release.as_deref(),
        uname: args.uname.as_deref(),
        sbat: sbat.as_deref(),
        extra: extra.iter().map(|(n, d)| (n.clone(), d.as_slice())).collect(),
    };
    // Name the input the library complains about, so the user knows which file to fix.
    let named = |e: cvmkit_uki::Error| {
        use cvmkit_uki::Error as E;
        let input = match &e {
            E::LinuxNotPe(_) => format!("kernel {}", args.linux.display()),
            e if e.to_string().starts_with("the stub") => format!("stub {}", args.stub.display()),
            // These name the initrd already.
            E::ReadInitrd { .. } | E::InitrdChanged { .. } | E::InitrdBytesChanged => return anyhow::Error::new(e),
            E::Write { .. } => format!("cannot write {}", args.output.display()),
            _ => "cannot build the UKI".to_string(),
        };
        anyhow::Error::new(e).context(input)
    };
    let prepared = prepare_uki(&stub, &parts, &initrds, source_date_epoch()?, &UkiOptions::default()).map_err(named)?;
    let sha256 = write_atomically(&args.output, |w| {
        let mut hashed = HashingWriter { inner: w, hash: Sha256::new() };
        prepared.write(&mut hashed).map_err(named)?;
        Ok(hashed.hash.finalize())
    })?;
    // The headers and small sections, zeros where the initrds go (never touched, so never
    // resident): all the summary reads.
    let skeleton = prepared.skeleton().context("the UKI does not fit in this machine's address space")?;
    print_summary(&args.output, &skeleton, &sha256)?;
    Ok(ExitCode::SUCCESS)
}

fn print_summary(path: &std::path::Path, image: &[u8], sha256: &[u8]) -> Result<()> {
    use std::io::Write;
    let pe = cvmkit_pe::PeFile::parse(image)?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}: {} bytes, sha256 {}", path.display(), image.len(), crate::output::hex(sha256))?;
    writeln!(out, "  {:<8} {:>10} {:>10} {:>10} {:>10}", "section", "vaddr", "vsize", "offset", "fsize")?;
    for s in pe.sections() {
        let h = &s.header;
        writeln!(
            out,
            "  {:<8} {:>#10x} {:>10} {:>#10x} {:>10}",
            s.name(),
            h.virtual_address,
            h.virtual_size,
            h.pointer_to_raw_data,
            h.size_of_raw_data
        )?;
    }
    Ok(())
}
