//! Minimal front end for trying the library and timing it:
//!
//! ```text
//! cargo run --release -p cvmkit-initrd --example mkinitrd -- ROOT OUT [none|gzip[:N]|zstd[:N]] [SPEC]
//! ```
//!
//! The mtime comes from `SOURCE_DATE_EPOCH` (0 if unset).

use std::path::Path;
use std::time::Instant;

use cvmkit_initrd::{build, Compression, Options, Spec};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [root, out, rest @ ..] = args.as_slice() else {
        return Err("usage: mkinitrd ROOT OUT [none|gzip[:N]|zstd[:N]] [SPEC]".into());
    };
    let compression: Compression = rest
        .first()
        .map_or(Ok(Compression::gzip()), |c| c.parse())?;
    let spec = rest
        .get(1)
        .map(|s| Spec::from_file(Path::new(s)))
        .transpose()?;
    let mtime = std::env::var("SOURCE_DATE_EPOCH").map_or(Ok(0), |s| s.parse())?;
    let opts = Options {
        mtime,
        ..Options::default()
    };
    let start = Instant::now();
    let mut file = std::fs::File::create(out)?;
    let stats = build(
        Some(Path::new(root)),
        spec.as_ref(),
        &opts,
        compression,
        &mut file,
    )?;
    eprintln!(
        "{} entries, cpio {} bytes, {compression} {} bytes, {:.3} s",
        stats.entries,
        stats.cpio_bytes,
        stats.output_bytes,
        start.elapsed().as_secs_f64()
    );
    Ok(())
}
