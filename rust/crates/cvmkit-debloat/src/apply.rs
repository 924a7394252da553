//! Carrying out a plan.

use std::collections::HashSet;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::config::EntryKind;
use crate::plan::{kind_of, Entry, Plan};
use crate::report::Report;

/// Why a plan could not be carried out. Entries removed before the error stay removed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApplyError {
    /// An entry of the plan is no longer what it was when the plan was made.
    #[error(
        "'{path}' was a {planned} when the plan was made but is now a {found}; make the plan again"
    )]
    Changed {
        /// The host path.
        path: PathBuf,
        /// What the plan saw.
        planned: EntryKind,
        /// What is there now.
        found: EntryKind,
    },
    /// A directory on the way to an entry is no longer a real directory (a symlink, say), so
    /// removing through it could reach outside the root.
    #[error(
        "'{path}' is no longer a directory (it leads to a planned removal); make the plan again"
    )]
    NotADirectory {
        /// The host path.
        path: PathBuf,
    },
    /// `lstat` or the removal itself failed.
    #[error("cannot remove '{path}'")]
    Io {
        /// The host path.
        path: PathBuf,
        /// The cause (a directory that gained files since the plan: "Directory not empty").
        #[source]
        source: io::Error,
    },
}

/// Removes what `plan` lists under `root` and reports what was removed (`dry_run: false`).
///
/// Entries go deepest first (reverse path order), each removed as itself: `unlink` for files,
/// links and special files, `rmdir` for directories, which the plan only lists once everything
/// in them is listed too. Before each removal the entry is `lstat`ed again and must still be
/// the kind the plan saw, and every directory between the root and it must still be a real
/// directory, so a symlink swapped in since the plan is refused rather than followed. (That is a
/// guard against a tree that changed, not against a concurrent attacker: debloat a tree that
/// only the build can write.) Byte counts come from this second `lstat`.
pub fn apply(root: &Path, plan: &Plan) -> Result<Report, ApplyError> {
    let mut checked: HashSet<PathBuf> = HashSet::new();
    let mut removed: Vec<Entry> = Vec::with_capacity(plan.removals.len());
    for planned in plan.removals.iter().rev() {
        check_parents(root, &planned.path, &mut checked)?;
        let path = root.join(&planned.path);
        let io_err = |source| ApplyError::Io {
            path: path.clone(),
            source,
        };
        let md = fs::symlink_metadata(&path).map_err(io_err)?;
        let found = kind_of(md.file_type());
        if found != planned.kind {
            return Err(ApplyError::Changed {
                path,
                planned: planned.kind,
                found,
            });
        }
        match found {
            EntryKind::Dir => fs::remove_dir(&path).map_err(io_err)?,
            // remove_file is unlink(2): a symlink goes, its target is not touched.
            _ => fs::remove_file(&path).map_err(io_err)?,
        }
        let mut e = planned.clone();
        e.size = if found == EntryKind::File {
            md.len()
        } else {
            0
        };
        removed.push(e);
    }
    removed.reverse();
    Ok(Report::build(
        &plan.remove_names,
        &plan.keep_names,
        &removed,
        &plan.kept,
        plan.dangling.clone(),
        false,
    ))
}

/// Checks that every ancestor of `rel` below the root is a directory and not a symlink.
fn check_parents(
    root: &Path,
    rel: &Path,
    checked: &mut HashSet<PathBuf>,
) -> Result<(), ApplyError> {
    let mut todo = Vec::new();
    let mut p = rel.parent();
    while let Some(dir) = p {
        if dir.as_os_str().is_empty() || checked.contains(dir) {
            break;
        }
        todo.push(dir);
        p = dir.parent();
    }
    // Outermost first, so a swapped-in symlink is caught before anything below it is looked at.
    for dir in todo.into_iter().rev() {
        let path = root.join(dir);
        let md = fs::symlink_metadata(&path).map_err(|source| ApplyError::Io {
            path: path.clone(),
            source,
        })?;
        if !md.file_type().is_dir() {
            return Err(ApplyError::NotADirectory { path });
        }
        checked.insert(dir.to_path_buf());
    }
    Ok(())
}
