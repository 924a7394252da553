//! Writes a disk image from the command line, for timing and manual checks:
//!
//! ```text
//! cargo run --release -p cvmkit-disk --example mkdisk -- UKI OUT [raw|gcp|vhd|qcow2] [DISK_SIZE_BYTES] [ROOT...]
//! ```
//!
//! The seed is "mkdisk"; the timestamp is `SOURCE_DATE_EPOCH` (0 if unset).

use cvmkit_disk::{write_disk_file, DiskSpec, Format};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 2 {
        eprintln!("usage: mkdisk UKI OUT [raw|gcp|vhd|qcow2] [DISK_SIZE_BYTES] [ROOT...]");
        std::process::exit(2);
    }
    let format: Format = args
        .get(2)
        .map_or(Ok(Format::Raw), |f| f.parse())
        .unwrap_or_else(|e| {
            eprintln!("error: {e}");
            std::process::exit(2)
        });
    let timestamp = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let spec = DiskSpec {
        disk_size: args
            .get(3)
            .map(|s| s.parse().expect("DISK_SIZE_BYTES is a number")),
        roots: args.iter().skip(4).map(Into::into).collect(),
        ..DiskSpec::new(&args[0], "mkdisk", timestamp)
    };
    let start = std::time::Instant::now();
    match write_disk_file(&spec, format, args[1].as_ref()) {
        Ok(r) => eprintln!(
            "{}: {} disk, {} bytes written ({} bytes of data) in {:.3} s",
            r.format,
            r.disk_size,
            r.output_size,
            r.data_bytes,
            start.elapsed().as_secs_f64()
        ),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}
