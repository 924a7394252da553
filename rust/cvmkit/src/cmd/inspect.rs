//! `cvmkit inspect`: what a PE file (UKI, kernel, stub) contains and the digests that measure it.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use serde::Serialize;
use sha2::{Digest, Sha256, Sha384};

use crate::output::{hex, print_json, read_input};

#[derive(clap::Args)]
pub struct Args {
    /// A PE/COFF file: a UKI, a kernel with an EFI stub, a systemd-stub, any EFI program.
    file: PathBuf,
    /// Print machine-readable JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// The JSON report. Field order is the output order; digests are lowercase hex.
#[derive(Serialize)]
pub struct Report {
    pub file: String,
    pub size: u64,
    pub sha256: String,
    pub format: &'static str,
    pub machine: String,
    pub subsystem: u16,
    pub time_date_stamp: u32,
    pub checksum: u32,
    pub section_alignment: u32,
    pub file_alignment: u32,
    pub size_of_image: u32,
    pub signed: bool,
    pub authenticode: Digests,
    pub sections: Vec<SectionReport>,
    /// Text of the UKI sections a person reads (.osrel, .uname, .cmdline), when present.
    pub uki: Option<UkiText>,
}

#[derive(Serialize)]
pub struct Digests {
    pub sha256: String,
    pub sha384: String,
}

#[derive(Serialize)]
pub struct SectionReport {
    pub name: String,
    pub virtual_address: u32,
    pub virtual_size: u32,
    pub file_offset: u32,
    pub file_size: u32,
    /// Digests of the section's bytes cut to VirtualSize: what systemd-stub measures.
    pub sha256: String,
    pub sha384: String,
}

#[derive(Serialize)]
pub struct UkiText {
    pub osrel: Option<String>,
    pub uname: Option<String>,
    pub cmdline: Option<String>,
}

pub fn run(args: Args) -> Result<ExitCode> {
    let data = read_input(&args.file, "file")?;
    if args.json {
        print_json(&report(&args.file, &data)?)?;
    } else {
        print_human(&args.file, &data)?;
    }
    Ok(ExitCode::SUCCESS)
}

pub fn report(path: &Path, data: &[u8]) -> Result<Report> {
    let pe = cvmkit_pe::PeFile::parse(data).with_context(|| format!("{}", path.display()))?;
    let auth = pe.authenticode_sha256_sha384();
    let (fh, oh) = (pe.file_header(), pe.optional_header());
    let mut sections = Vec::new();
    let mut text = UkiText { osrel: None, uname: None, cmdline: None };
    for s in pe.sections() {
        let bytes = pe
            .section_virtual_data(s)
            .with_context(|| format!("{}: section {}", path.display(), s.name()))?;
        let name = s.name().into_owned();
        let as_text = || Some(String::from_utf8_lossy(bytes).trim_end_matches('\0').to_string());
        match name.as_str() {
            ".osrel" => text.osrel = as_text(),
            ".uname" => text.uname = as_text(),
            ".cmdline" => text.cmdline = as_text(),
            _ => {}
        }
        sections.push(SectionReport {
            name,
            virtual_address: s.header.virtual_address,
            virtual_size: s.header.virtual_size,
            file_offset: s.header.pointer_to_raw_data,
            file_size: s.header.size_of_raw_data,
            sha256: hex(&Sha256::digest(bytes)),
            sha384: hex(&Sha384::digest(bytes)),
        });
    }
    let is_uki = sections.iter().any(|s| s.name == ".linux");
    Ok(Report {
        file: path.display().to_string(),
        size: data.len() as u64,
        sha256: hex(&Sha256::digest(data)),
        format: if pe.is_pe32_plus() { "PE32+" } else { "PE32" },
        machine: format!("{:#06x}", fh.machine),
        subsystem: oh.subsystem,
        time_date_stamp: fh.time_date_stamp,
        checksum: oh.check_sum,
        section_alignment: oh.section_alignment,
        file_alignment: oh.file_alignment,
        size_of_image: oh.size_of_image,
        signed: pe.is_signed(),
        authenticode: Digests { sha256: hex(&auth.sha256), sha384: hex(&auth.sha384) },
        sections,
        uki: is_uki.then_some(text),
    })
}

pub fn print_human(path: &Path, data: &[u8]) -> Result<()> {
    use std::io::Write;
    let r = report(path, data)?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}: {} {} bytes, sha256 {}", r.file, r.format, r.size, r.sha256)?;
    writeln!(
        out,
        "  machine {}  subsystem {}  timestamp {}  checksum {:#010x}  {}",
        r.machine,
        r.subsystem,
        r.time_date_stamp,
        r.checksum,
        if r.signed { "signed" } else { "unsigned" }
    )?;
    writeln!(out, "  authenticode sha256 {}", r.authenticode.sha256)?;
    writeln!(out, "  authenticode sha384 {}", r.authenticode.sha384)?;
    writeln!(out, "  {:<8} {:>10} {:>10} {:>10} {:>10}  sha256", "section", "vaddr", "vsize", "offset", "fsize")?;
    for s in &r.sections {
        writeln!(
            out,
            "  {:<8} {:>#10x} {:>10} {:>#10x} {:>10}  {}",
            s.name, s.virtual_address, s.virtual_size, s.file_offset, s.file_size, s.sha256
        )?;
    }
    if let Some(t) = &r.uki {
        for (name, v) in [(".uname", &t.uname), (".cmdline", &t.cmdline)] {
            if let Some(v) = v {
                writeln!(out, "  {name}: {}", v.trim_end())?;
            }
        }
        if let Some(osrel) = &t.osrel {
            let pretty = osrel.lines().find_map(|l| l.strip_prefix("PRETTY_NAME=")).unwrap_or("");
            writeln!(out, "  .osrel: {}", pretty.trim_matches('"'))?;
        }
    }
    Ok(())
}
