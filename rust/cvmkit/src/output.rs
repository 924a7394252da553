//! Writing results: all-or-nothing files, and the environment inputs every builder shares.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use anyhow::{bail, Context, Result};

/// Writes `path` through a temporary file in the same directory that is renamed over `path` only
/// after `fill` succeeded, so a failed or interrupted command never leaves a half-written output
/// (the temporary file is removed when `fill` fails or the process unwinds).
pub fn write_atomically<T>(
    path: &Path,
    fill: impl FnOnce(&mut BufWriter<&mut File>) -> Result<T>,
) -> Result<T> {
    if path.is_dir() {
        bail!("output {} is a directory; give a file name with -o", path.display());
    }
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .with_context(|| format!("output {} has no file name", path.display()))?;
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{}.", name.to_string_lossy()))
        .suffix(".tmp")
        .tempfile_in(dir)
        .with_context(|| format!("cannot create a temporary file in {}", dir.display()))?;
    let value = {
        let file = tmp.as_file_mut();
        let mut w = BufWriter::with_capacity(1 << 20, file);
        let value = fill(&mut w)?;
        w.flush().with_context(|| format!("cannot write {}", path.display()))?;
        value
    };
    // Output files are ordinary files for the user, not 0600 temporaries; the mode follows the
    // umask as with any file the user creates (it is not part of the content).
    set_default_mode(tmp.as_file())?;
    tmp.persist(path)
        .with_context(|| format!("cannot move the finished output into place at {}", path.display()))?;
    Ok(value)
}

fn set_default_mode(file: &File) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let umask = current_umask();
    file.set_permissions(std::fs::Permissions::from_mode(0o666 & !umask))?;
    Ok(())
}

/// The process umask, read from /proc (reading it with umask(2) would change it).
fn current_umask() -> u32 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Umask:"))
                .and_then(|v| u32::from_str_radix(v.trim(), 8).ok())
        })
        .unwrap_or(0o022)
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
