//! Builds a disk image around a UKI with `cvmkit-disk`, for benchmarking the differ:
//!
//! ```text
//! cargo run --release -p cvmkit-diff --example mkdisk -- UKI OUT raw|gcp|vhd SIZE_MIB
//! ```

use std::path::Path;

use cvmkit_disk::{write_disk_file, DiskSpec, Format};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [uki, out, format, size] = args.as_slice() else {
        return Err("usage: mkdisk UKI OUT raw|gcp|vhd SIZE_MIB".into());
    };
    let format: Format = format.parse()?;
    let size: u64 = size.parse()?;
    let spec = DiskSpec {
        disk_size: Some(size << 20),
        ..DiskSpec::new(uki, "bench", 1_700_000_000)
    };
    let report = write_disk_file(&spec, format, Path::new(out))?;
    eprintln!("{} bytes", report.disk_size);
    Ok(())
}
