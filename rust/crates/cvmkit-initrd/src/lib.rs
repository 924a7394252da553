//! Builds a Linux initramfs: a directory tree plus an optional
//! [`gen_init_cpio`-style spec](Spec) in, a deterministic newc cpio archive
//! out, optionally compressed with gzip or zstd.
//!
//! The same inputs give the same bytes whatever the clock, umask, time zone,
//! locale, working directory, build path or directory read order:
//!
//! - entries are named relative to the root (`bin/sh`, no `./`, no entry for the
//!   root itself) and sorted bytewise by full path, so a directory always comes
//!   before its contents;
//! - inode numbers count from 1 in that order; owners are 0 unless the spec says
//!   otherwise; every mtime is [`Options::mtime`]; device numbers of the
//!   containing file system are 0; no host metadata (xattrs, real inode numbers,
//!   owners) is stored;
//! - unless [`Options::preserve_modes`], modes are normalized as in the Nix
//!   store, so the umask does not leak in: regular files `0755` if the owner may
//!   execute them, else `0644`; directories `0755`; symlinks `0777`. Device
//!   nodes, FIFOs and sockets keep their on-disk permission bits (no single
//!   default suits both `/dev/null` and `/dev/console`; set them in a spec);
//! - hard links within the tree become one inode whose data is stored once, on
//!   the last name in sorted order (the convention of GNU cpio and
//!   `gen_init_cpio`, which the kernel's unpacker understands);
//! - symlink targets are stored verbatim and must resolve inside the image
//!   unless [`Options::allow_dangling_symlinks`];
//! - compression is single-threaded at a fixed level with fixed header fields.
//!
//! ```
//! use cvmkit_initrd::{build, Compression, Options, Spec};
//! use std::path::Path;
//!
//! let spec = Spec::parse(
//!     "dir /dev 0755 0 0\n\
//!      nod /dev/console 0600 0 0 c 5 1\n\
//!      dir /root 0700 0 0\n\
//!      slink /init /dev/console 0777 0 0\n",
//!     Path::new("initrd.list"),
//! )?;
//! let mut out = Vec::new();
//! let stats = build(None, Some(&spec), &Options::default(), Compression::None, &mut out)?;
//! assert_eq!(stats.entries, 4);
//! assert_eq!(stats.cpio_bytes, out.len() as u64);
//!
//! let names: Vec<_> = cvmkit_cpio::Reader::new(&out).map(|e| e.unwrap().name.to_vec()).collect();
//! assert_eq!(names, [&b"dev"[..], b"dev/console", b"init", b"root"]);
//!
//! let mut gz = Vec::new();
//! build(None, Some(&spec), &Options::default(), Compression::gzip(), &mut gz)?;
//! assert_eq!(&gz[..2], [0x1f, 0x8b]);
//! # Ok::<(), cvmkit_initrd::Error>(())
//! ```
// Denied rather than forbidden: `zstd_huge` alone calls zstd's C API for a context in memory of
// its own (see there why).
#![deny(unsafe_code)]
#![deny(missing_docs)]

mod compress;
mod image;
mod spec;
mod zstd_huge;

use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

pub use compress::{Compression, ParseCompressionError};
pub use image::{FileSource, Initrd, Kind, Node, Origin};
pub use spec::{Spec, SpecEntry, SpecKind};

/// Longest name (without its NUL) the kernel's unpacker accepts: it skips
/// entries whose name, NUL included, is longer than `PATH_MAX` (4096).
pub const MAX_NAME_LEN: usize = 4095;
/// Longest symlink target Linux can hold (`PATH_MAX` minus the NUL).
pub const MAX_SYMLINK_TARGET: usize = 4095;

/// How to turn a tree into an archive. The default is what a reproducible
/// build wants: mtime 0, normalized modes, dangling symlinks refused.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options {
    /// The mtime of every entry, in seconds since the epoch. The caller decides
    /// (typically `SOURCE_DATE_EPOCH`, or 0); the clock is never read.
    pub mtime: u32,
    /// Keep the on-disk `07777` permission bits instead of normalizing them.
    pub preserve_modes: bool,
    /// Keep symlinks whose target is not in the image instead of failing.
    pub allow_dangling_symlinks: bool,
}

/// Sizes reported by [`build`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Entries in the archive, not counting the trailer.
    pub entries: u64,
    /// Size of the uncompressed cpio archive.
    pub cpio_bytes: u64,
    /// Bytes written to the output (equal to `cpio_bytes` without compression).
    pub output_bytes: u64,
}

/// Why an initrd could not be built. Every message is one line that names the
/// offending path or spec line.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A spec line is malformed or cannot be applied.
    #[error("{}:{line}: {message}", file.display())]
    Spec {
        /// The spec file, as given to [`Spec::parse`].
        file: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// The root directory does not exist.
    #[error(
        "root directory {path} does not exist; pass the directory whose contents become the initrd"
    )]
    RootMissing {
        /// The root as given.
        path: String,
    },
    /// The root is not a directory.
    #[error("root {path} is not a directory; pass the directory whose contents become the initrd")]
    RootNotDir {
        /// The root as given.
        path: String,
    },
    /// A file or directory could not be read. The I/O error is part of the
    /// message rather than a separate cause, to keep the report on one line.
    #[error("cannot read {path}: {error}")]
    Read {
        /// The path that failed.
        path: String,
        /// The underlying error.
        error: io::Error,
    },
    /// A file is too large for a newc header.
    #[error("{path} is {size} bytes; newc cpio holds at most 4294967295 bytes per file")]
    TooLarge {
        /// The file.
        path: String,
        /// Its size.
        size: u64,
    },
    /// A name or symlink target that a cpio archive or the kernel cannot hold.
    #[error("{path} cannot be stored in the initrd: its {what} {why}")]
    BadName {
        /// The entry.
        path: String,
        /// `"name"` or `"symlink target"`.
        what: &'static str,
        /// What is wrong with it.
        why: String,
    },
    /// A file's size changed between listing the tree and reading it.
    #[error("{path} changed size while being read: it was {expected} bytes, {now}; build from a tree nothing is writing to")]
    Changed {
        /// The file.
        path: String,
        /// The size seen when the tree was listed.
        expected: u64,
        /// What was found instead.
        now: String,
    },
    /// A symlink whose target is not in the image.
    #[error(
        "dangling symlink {link} -> {target}: {reason} (use --allow-dangling-symlinks to keep it)"
    )]
    DanglingSymlink {
        /// The link (its on-disk path, or its name and spec line).
        link: String,
        /// The target, as stored.
        target: String,
        /// Why it does not resolve.
        reason: &'static str,
    },
    /// An entry cannot be added where it was asked to go.
    #[error("cannot add {path}: {message}")]
    Conflict {
        /// The entry.
        path: String,
        /// Why.
        message: String,
    },
    /// Writing the output failed.
    #[error("cannot write the initrd: {0}")]
    Write(io::Error),
    /// The compressor failed.
    #[error("{algorithm} compression failed: {message}")]
    Compress {
        /// `"gzip"` or `"zstd"`.
        algorithm: &'static str,
        /// What the compressor said.
        message: String,
    },
}

/// Builds an initrd from the tree under `root` (if any), then applies `spec` (if
/// any; see [`Initrd::apply_spec`]), checks symlinks unless
/// [`Options::allow_dangling_symlinks`], and writes the archive, compressed as
/// asked, to `out`.
///
/// With compression the whole cpio archive is built in memory first (the
/// compressors work on whole buffers); without, it is streamed to `out`. On
/// error, `out` may hold a partial archive: write to a temporary file and
/// rename it on success.
pub fn build(
    root: Option<&Path>,
    spec: Option<&Spec>,
    opts: &Options,
    compression: Compression,
    out: &mut dyn Write,
) -> Result<Stats, Error> {
    let roots: Vec<&Path> = root.into_iter().collect();
    let specs: Vec<&Spec> = spec.into_iter().collect();
    build_from(&roots, &specs, opts, compression, out)
}

/// [`build`] from several trees and specs: the trees are merged in order (an entry of a later
/// tree replaces the same name from an earlier one, as [`Initrd::add_tree`]), then the specs
/// are applied in order. This is how image modules layer their files.
pub fn build_from(
    roots: &[&Path],
    specs: &[&Spec],
    opts: &Options,
    compression: Compression,
    out: &mut dyn Write,
) -> Result<Stats, Error> {
    build_observed(roots, specs, opts, compression, out, &mut |_, _| {}).map(|(stats, _)| stats)
}

/// [`build_from`], handing each regular file's contents to `observe` as they are written (see
/// [`Initrd::write_cpio_observed`]) and returning the model it wrote: what an image's SBOM
/// lists, without walking the trees or reading the files a second time.
pub fn build_observed(
    roots: &[&Path],
    specs: &[&Spec],
    opts: &Options,
    compression: Compression,
    out: &mut dyn Write,
    observe: &mut dyn FnMut(&[u8], &[u8]),
) -> Result<(Stats, Initrd), Error> {
    compression.validate()?;
    let mut initrd = Initrd::new();
    for root in roots {
        initrd.add_tree(root, opts)?;
    }
    for spec in specs {
        initrd.apply_spec(spec)?;
    }
    if !opts.allow_dangling_symlinks {
        initrd.check_symlinks()?;
    }
    let entries = initrd.len() as u64;
    if compression == Compression::None {
        let mut buffered = BufWriter::with_capacity(256 * 1024, out);
        let cpio_bytes = initrd.write_cpio_observed(opts, &mut buffered, observe)?;
        buffered.flush().map_err(Error::Write)?;
        let stats = Stats {
            entries,
            cpio_bytes,
            output_bytes: cpio_bytes,
        };
        return Ok((stats, initrd));
    }
    let mut cpio = Vec::new();
    // The exact size is known up front; reserving it avoids a peak of twice
    // the archive while the vector grows. Failing to reserve is not fatal.
    let _ = cpio.try_reserve_exact(usize::try_from(initrd.cpio_size()).unwrap_or(0));
    let cpio_bytes = initrd.write_cpio_observed(opts, &mut cpio, observe)?;
    let output_bytes = compression.compress(&cpio, out)?;
    let stats = Stats {
        entries,
        cpio_bytes,
        output_bytes,
    };
    Ok((stats, initrd))
}

/// Turns a name from a spec or the API into the form stored in the archive:
/// relative, with empty and `.` components dropped. Refuses `..`, NUL bytes,
/// the root itself, `TRAILER!!!` (the name that ends an archive) and names the
/// kernel would skip.
pub(crate) fn normalize_name(raw: &[u8]) -> Result<Vec<u8>, String> {
    if raw.contains(&0) {
        return Err("contains a NUL byte, which cpio names cannot hold".into());
    }
    let mut out = Vec::with_capacity(raw.len());
    for part in raw.split(|&b| b == b'/') {
        match part {
            b"" | b"." => continue,
            b".." => {
                return Err("contains a '..' component, which could point outside the image".into())
            }
            _ => {
                if !out.is_empty() {
                    out.push(b'/');
                }
                out.extend_from_slice(part);
            }
        }
    }
    if out.is_empty() {
        return Err("names the image root, which has no entry in the archive".into());
    }
    // The entry itself, or the parent directory made for it, would be named TRAILER!!!.
    if out.split(|&b| b == b'/').next() == Some(cvmkit_cpio::TRAILER_NAME) {
        return Err(
            "starts with TRAILER!!!, the name that ends a cpio archive: the kernel would stop \
             unpacking at that entry or its parent directory"
                .into(),
        );
    }
    if out.len() > MAX_NAME_LEN {
        return Err(format!(
            "is {} bytes long; the kernel's unpacker skips names longer than {MAX_NAME_LEN} bytes",
            out.len()
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_normalized_like_gen_init_cpio_and_stricter() {
        assert_eq!(normalize_name(b"/dev/console").unwrap(), b"dev/console");
        assert_eq!(normalize_name(b"./a//b/./c/").unwrap(), b"a/b/c");
        assert!(normalize_name(b"a/../b").unwrap_err().contains("'..'"));
        assert!(normalize_name(b"/").unwrap_err().contains("root"));
        assert!(normalize_name(b"a\0b").unwrap_err().contains("NUL"));
        assert!(normalize_name(&[b'x'; 4096])
            .unwrap_err()
            .contains("4096 bytes long"));
        assert_eq!(normalize_name(&[b'x'; 4095]).unwrap().len(), 4095);
        // Found by fuzz/parse_spec: accepted here, refused only when the archive was written.
        for name in [&b"/TRAILER!!!"[..], b"./TRAILER!!!/x"] {
            assert!(normalize_name(name)
                .unwrap_err()
                .contains("ends a cpio archive"));
        }
        assert_eq!(normalize_name(b"/a/TRAILER!!!").unwrap(), b"a/TRAILER!!!");
        assert_eq!(normalize_name(b"TRAILER!!!x").unwrap(), b"TRAILER!!!x");
    }
}
