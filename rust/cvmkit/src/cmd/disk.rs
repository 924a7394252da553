//! `cvmkit disk`: a bootable GPT disk (FAT32 ESP with the UKI, optional root and data
//! partitions) in a cloud format, written directly: no root, loop devices or mkfs.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use cvmkit_disk::{DiskLayout, DiskSpec};
use cvmkit_image::{DiskFormat, Size};
use serde::Serialize;

use crate::output::source_date_epoch;

#[derive(clap::Args)]
pub struct Args {
    /// The UKI, placed at \EFI\BOOT\BOOTX64.EFI on the ESP.
    #[arg(long)]
    uki: PathBuf,
    /// A root filesystem image copied into its own partition (repeatable).
    #[arg(long)]
    root: Vec<PathBuf>,
    /// Size of an empty data partition, e.g. 1G.
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    data_size: Option<Size>,
    /// Size of the ESP (default: max(64 MiB, 2 × UKI + 16 MiB)).
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    esp_size: Option<Size>,
    /// Size of the whole disk (default: just what the partitions need).
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    disk_size: Option<Size>,
    /// Text every GUID and the FAT volume id derive from; same seed, same identifiers.
    #[arg(long, default_value = "cvmkit")]
    seed: String,
    /// raw (sparse), gcp (disk.raw in a sparse tar.gz, for GCE image import), vhd (Azure
    /// fixed VHD) or qcow2: the `disk.format` values of the image spec.
    #[arg(long, value_enum, default_value_t = DiskFormat::Raw)]
    format: DiskFormat,
    /// Output file.
    #[arg(short, long)]
    output: PathBuf,
    /// Print the layout as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct Partition {
    number: u32,
    name: String,
    type_guid: String,
    unique_guid: String,
    offset: u64,
    size: u64,
}

#[derive(Serialize)]
struct Report {
    output: String,
    format: &'static str,
    disk_size: u64,
    output_size: u64,
    disk_guid: String,
    esp_volume_id: String,
    partitions: Vec<Partition>,
}

pub fn run(args: Args) -> Result<ExitCode> {
    let format = cvmkit_disk::Format::from(args.format);
    let mut spec = DiskSpec::new(&args.uki, &args.seed, u64::from(source_date_epoch()?));
    spec.roots = args.root.clone();
    spec.data_size = args.data_size.map(|s| s.0);
    spec.esp_size = args.esp_size.map(|s| s.0);
    spec.disk_size = args.disk_size.map(|s| s.0);
    check_uki(&args.uki)?;
    // Plan first: every input is checked before any output exists.
    let layout = DiskLayout::plan(&spec, format)?;
    let report = crate::output::write_atomically(&args.output, |w| {
        let file = w.get_mut();
        let report = layout.write(&mut **file)?;
        // Sparse formats seek over zeros; the length makes the trailing hole part of the file.
        file.set_len(report.output_size)?;
        Ok(report)
    })?;
    let r = Report {
        output: args.output.display().to_string(),
        format: format.name(),
        disk_size: report.disk_size,
        output_size: report.output_size,
        disk_guid: format!("{:X}", report.disk_guid),
        esp_volume_id: format!("{:08X}", report.esp.volume_id),
        partitions: report
            .partitions
            .iter()
            .map(|p| Partition {
                number: p.number,
                name: p.name.clone(),
                type_guid: format!("{:X}", p.type_guid),
                unique_guid: format!("{:X}", p.unique_guid),
                offset: p.offset,
                size: p.size,
            })
            .collect(),
    };
    if args.json {
        crate::output::print_json(&r)?;
    } else {
        println!("{}: {} disk of {} bytes ({} bytes in the file), disk GUID {}", r.output, r.format, r.disk_size, r.output_size, r.disk_guid);
        for p in &r.partitions {
            println!("  {} {:<12} offset {:>12} size {:>12} type {} guid {}", p.number, p.name, p.offset, p.size, p.type_guid, p.unique_guid);
        }
        println!("  ESP volume id {}", r.esp_volume_id);
    }
    Ok(ExitCode::SUCCESS)
}

/// A `--*-size` value, as the image spec's sizes are read.
fn parse_size(text: &str) -> Result<Size, String> {
    cvmkit_image::parse_size(text).map(Size).map_err(|e| e.to_string())
}

/// The file to boot must be an EFI application: firmware would refuse anything else at boot, so
/// a disk around it is refused now, before anything is written.
pub fn check_uki(path: &std::path::Path) -> Result<()> {
    use std::io::Read;
    // Only the headers are read: a buffer as long as the file, zero-filled (its untouched pages
    // cost no memory), with the file's first MiB in it, which holds any PE header and section
    // table (the disk writer reads the whole file once, later).
    let cannot = || format!("cannot read UKI {}", path.display());
    let file = std::fs::File::open(path).with_context(cannot)?;
    let len = usize::try_from(file.metadata().with_context(cannot)?.len()).with_context(cannot)?;
    let mut data = vec![0u8; len];
    let head = len.min(1 << 20);
    file.take(head as u64).read_exact(&mut data[..head]).with_context(cannot)?;
    let pe = cvmkit_pe::PeFile::parse(&data).with_context(|| format!("UKI {}: not a PE image", path.display()))?;
    let subsystem = pe.optional_header().subsystem;
    if subsystem != cvmkit_pe::pe::IMAGE_SUBSYSTEM_EFI_APPLICATION {
        anyhow::bail!(
            "UKI {}: PE subsystem {subsystem} is not an EFI application (10): firmware would not start it from the ESP",
            path.display()
        );
    }
    Ok(())
}
