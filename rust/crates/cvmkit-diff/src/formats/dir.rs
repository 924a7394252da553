//! Directory trees (Nix store paths included): entry sets, types, permission bits, symlink
//! targets and contents. Modification times and owners are not compared: they belong to the
//! machine that unpacked the tree, not to the build output.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::data::Data;
use crate::engine::{Engine, Item};
use crate::Error;

pub(crate) fn compare(
    e: &mut Engine<'_>,
    path: &[String],
    a: &Path,
    b: &Path,
) -> Result<(), Error> {
    let (ia, ib) = (walk(a)?, walk(b)?);
    e.items(path, ia, ib, false, None, 0)
        .map_err(|error| Error::Read {
            path: a.to_path_buf(),
            error,
        })
}

fn walk(root: &Path) -> Result<Vec<Item>, Error> {
    let mut out = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let dir = root.join(&rel);
        let err = |error| Error::Read {
            path: dir.clone(),
            error,
        };
        let mut names: Vec<_> = fs::read_dir(&dir)
            .map_err(err)?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<Result<_, _>>()
            .map_err(err)?;
        names.sort();
        let mut subdirs = Vec::new();
        for name in names {
            let rel = rel.join(&name);
            let full = root.join(&rel);
            let m = fs::symlink_metadata(&full).map_err(|error| Error::Read {
                path: full.clone(),
                error,
            })?;
            let key = rel.to_string_lossy().into_owned();
            let perm = format!("{:04o}", m.permissions().mode() & 0o7777);
            let ft = m.file_type();
            let item = if ft.is_symlink() {
                let target = fs::read_link(&full).map_err(|error| Error::Read {
                    path: full.clone(),
                    error,
                })?;
                Item::new(key, "symlink").field("symlink target", target.display())
            } else if ft.is_dir() {
                subdirs.push(rel.clone());
                Item::new(key, "directory").field("mode", perm)
            } else if ft.is_file() {
                let data = Data::Path {
                    path: Arc::new(full),
                    start: 0,
                    len: m.len(),
                };
                Item::new(key, "file").field("mode", perm).data(data, None)
            } else {
                Item::new(key, "special file").field("mode", perm)
            };
            out.push(item);
        }
        // Depth first, in name order.
        stack.extend(subdirs.into_iter().rev());
    }
    out.sort_by(|x, y| x.key.cmp(&y.key));
    Ok(out)
}
