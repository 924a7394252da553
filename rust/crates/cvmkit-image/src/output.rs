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
    let (value, old) = write_atomically_keep_old(path, fill)?;
    if let Some(old) = old {
        let _ = std::fs::remove_file(old);
    }
    Ok(value)
}

/// [`write_atomically`], except that the file it replaces keeps a second name (returned) for
/// the caller to remove, on another thread if it likes: the rename would otherwise free the
/// old file's blocks itself (ext4, a file written back: ~6 ms for 9 MB, more with `discard`), on
/// the caller's path. `None` when nothing was replaced, or the file system can neither swap two
/// names nor hard-link (then the rename frees).
pub fn write_atomically_keep_old<T, E: From<Error>>(
    path: &Path,
    fill: impl FnOnce(&mut BufWriter<&mut File>) -> Result<T, E>,
) -> Result<(T, Option<std::path::PathBuf>), E> {
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
    let replaces = std::fs::symlink_metadata(path).is_ok_and(|m| m.is_file());
    if replaces {
        // Swapped in one step: `path` names the old file, then the new one, never nothing, and
        // the old one is left at the temporary's name. Unlike a rename over it, the swap does not
        // make ext4 start writing the new file back at once (auto_da_alloc): blocks it allocates
        // now, the next rebuild frees, which on a file system mounted with `discard` waits for
        // the disk. Where the swap is not supported, the hard link below.
        let tmp_path = tmp.path().to_path_buf();
        let swapped = rustix::fs::renameat_with(
            rustix::fs::CWD,
            &tmp_path,
            rustix::fs::CWD,
            path,
            rustix::fs::RenameFlags::EXCHANGE,
        );
        if swapped.is_ok() {
            // The temporary's name now holds the old file: kept for the caller, not deleted.
            let _ = tmp.into_temp_path().keep();
            return Ok((value, Some(tmp_path)));
        }
    }
    // The file replaced keeps a second name, next to the temporary's, until the caller drops it.
    let old = replaces
        .then(|| {
            let old = tmp.path().with_extension("old");
            std::fs::hard_link(path, &old).ok().map(|()| old)
        })
        .flatten();
    let persisted = tmp.persist(path).map_err(|e| {
        Error::with_source(format!("cannot move the finished output into place at {}", path.display()), e.error)
    });
    if let (Err(_), Some(old)) = (&persisted, &old) {
        let _ = std::fs::remove_file(old);
    }
    persisted?;
    Ok((value, old))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut n: Vec<String> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        n.sort();
        n
    }

    /// A rebuild: the file replaced keeps a second name holding its bytes until the caller
    /// removes it; `write_atomically` removes it itself; a first build replaces nothing.
    #[test]
    fn replaced_file_keeps_a_second_name_until_removed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("uki.efi");
        let write = |bytes: &'static [u8]| {
            write_atomically_keep_old::<_, Error>(&path, |w| w.write_all(bytes).context("write")).unwrap().1
        };
        assert_eq!(write(b"first"), None);
        let old = write(b"second").expect("the first file is kept");
        assert_eq!(std::fs::read(&old).unwrap(), b"first");
        assert_eq!(std::fs::read(&path).unwrap(), b"second");
        assert_eq!(names(dir.path()).len(), 2);
        std::fs::remove_file(old).unwrap();
        write_bytes(&path, b"third").unwrap();
        assert_eq!(names(dir.path()), ["uki.efi"]);
        assert_eq!(std::fs::read(&path).unwrap(), b"third");
    }
}
