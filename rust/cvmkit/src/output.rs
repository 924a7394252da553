//! Writing results: all-or-nothing files, and the environment inputs every builder shares.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use anyhow::{bail, Context, Result};

/// All-or-nothing output files: cvmkit-image's, the one writer `cvmkit build` uses too.
pub fn write_atomically<T>(path: &Path, fill: impl FnOnce(&mut BufWriter<&mut File>) -> Result<T>) -> Result<T> {
    cvmkit_image::output::write_atomically(path, fill)
}

/// `SOURCE_DATE_EPOCH` (<https://reproducible-builds.org/specs/source-date-epoch/>) as the one
/// timestamp every output carries; 0 when unset, an error when it is not a decimal number that fits
/// the 32-bit time fields of cpio and PE.
pub fn source_date_epoch() -> Result<u32> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Err(std::env::VarError::NotPresent) => Ok(0),
        Err(std::env::VarError::NotUnicode(_)) => bail!("SOURCE_DATE_EPOCH is not valid text"),
        Ok(s) if s.is_empty() => Ok(0),
        Ok(s) => s.trim().parse::<u32>().with_context(|| {
            format!("SOURCE_DATE_EPOCH={s:?} is not a decimal number of seconds between 0 and {}", u32::MAX)
        }),
    }
}

pub use cvmkit_measure::hex;

/// Writes `bytes` to `path` all-or-nothing (see [`write_atomically`]).
pub fn write_bytes(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomically(path, |w| {
        w.write_all(bytes)?;
        Ok(())
    })
}

/// The sha256 of a file, streamed (bounded memory whatever its size), as lowercase hex.
pub fn sha256_file(path: &Path) -> Result<String> {
    use sha2::{Digest, Sha256};
    let mut f = File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut h = Sha256::new();
    std::io::copy(&mut f, &mut h).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(hex(&h.finalize()))
}

/// Reads a whole input file, naming it in the error.
pub fn read_input(path: &Path, what: &str) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {what} {}", path.display()))
}

/// Prints `value` as pretty JSON followed by a newline.
pub fn print_json<T: serde::Serialize>(value: &T) -> Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value)?;
    writeln!(out)?;
    Ok(())
}
