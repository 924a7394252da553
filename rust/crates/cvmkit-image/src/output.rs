//! All-or-nothing output files: what `cvmkit build` and every `cvmkit` command writes through,
//! so a failed or interrupted run never leaves a half-written output.

use std::fs::File;
use std::io::{BufWriter, Write as _};
use std::path::Path;

use crate::error::{Context as _, Error};

/// Writes `path` through a temporary file in the same directory that is renamed over `path` only
/// after `fill` succeeded (the temporary file is removed when `fill` fails or the process
/// unwinds). The file gets the mode an ordinary new file would (0666 less the umask), not the
/// temporary's 0600: the mode is not part of the content. `E` is the caller's error type.
pub fn write_atomically<T, E: From<Error>>(
    path: &Path,
    fill: impl FnOnce(&mut BufWriter<&mut File>) -> Result<T, E>,
) -> Result<T, E> {
    if path.is_dir() {
        return Err(Error::msg(format!("output {} is a directory; give a file name with -o", path.display())).into());
    }
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().with_context(|| format!("output {} has no file name", path.display()))?;
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{}.", name.to_string_lossy()))
        .suffix(".tmp")
        .tempfile_in(dir)
        .with_context(|| format!("cannot create a temporary file in {}", dir.display()))?;
    let value = {
        let mut w = BufWriter::with_capacity(1 << 20, tmp.as_file_mut());
        let value = fill(&mut w)?;
        w.flush().with_context(|| format!("cannot write {}", path.display()))?;
        value
    };
    {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o666 & !current_umask()))
            .with_context(|| format!("cannot set the mode of {}", path.display()))?;
    }
    tmp.persist(path).map_err(|e| {
        Error::with_source(format!("cannot move the finished output into place at {}", path.display()), e.error)
    })?;
    Ok(value)
}

/// [`write_atomically`] of `bytes`.
pub fn write_bytes(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    write_atomically(path, |w| w.write_all(bytes).with_context(|| format!("cannot write {}", path.display())))
}

/// The process umask, read from /proc (reading it with umask(2) would change it).
fn current_umask() -> u32 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| l.strip_prefix("Umask:")).and_then(|v| u32::from_str_radix(v.trim(), 8).ok())
        })
        .unwrap_or(0o022)
}
