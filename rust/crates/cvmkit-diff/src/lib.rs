//! Format-aware comparison of two build outputs: says exactly *where* two images differ,
//! through every layer, and quickly.
//!
//! Formats are recognised by their content (magic bytes), never by file name, and compared
//! structurally, recursing into what they contain:
//!
//! | format | compared |
//! | --- | --- |
//! | gzip, xz, zstd | header fields (gzip), then the decompressed data |
//! | newc cpio, also concatenated (initramfs) | entry set and order, mode, uid/gid, nlink, mtime, device numbers, symlink targets, contents |
//! | tar (ustar, GNU, pax; oldgnu and pax 1.0 sparse members are expanded, holes unread) | the same, plus user/group names |
//! | PE / UKI | COFF and optional header field by field (`TimeDateStamp`, `CheckSum`, `SizeOfImage` …), data directories, each section's header and contents |
//! | GPT disk | header fields, partition entries (type and unique GUIDs, LBAs, attributes, name), each partition's contents |
//! | FAT12/16/32 | files and directories with their attributes and timestamps |
//! | fixed VHD | footer fields, then the raw disk inside |
//! | NAR (`nix-archive-1`), directories | entry sets, types, executable bits / modes, symlink targets, contents |
//! | anything else | bytes: the first differing offset with a hex context, or a unified diff for small UTF-8 text |
//!
//! Equal data is recognised by comparing bytes before anything is parsed or decompressed, so
//! identical partitions, sections and archive members cost one `memcmp` (large inputs are read
//! in 1 MiB chunks, never mapped or loaded whole; holes of sparse tar members are not read).
//! A compressed initramfs is decompressed on two threads and compared entry by entry as it
//! comes, so memory follows its largest file, not its size. Disk images, file systems and
//! PE images are parsed from their headers and metadata alone. Every [`Difference`] carries its path
//! through the layers, e.g.
//! `disk.raw › part 1 (ESP) › EFI/BOOT/BOOTX64.EFI › .initrd › gzip › cpio › etc/hostname`.
//!
//! ```
//! use cvmkit_cpio::{mode, Header, Writer};
//! use cvmkit_diff::{diff_bytes, DiffKind, Options};
//!
//! fn archive(hostname: &[u8]) -> Vec<u8> {
//!     let mut w = Writer::new(Vec::new());
//!     let h = Header { ino: 1, mode: mode::S_IFREG | 0o644, nlink: 1,
//!                      filesize: hostname.len() as u32, ..Header::default() };
//!     w.write_entry(b"etc/hostname", &h, &mut &hostname[..]).unwrap();
//!     w.finish().unwrap()
//! }
//!
//! let report = diff_bytes("initrd.img", &archive(b"cvm1\n"), &archive(b"cvm2\n"), &Options::default());
//! assert_eq!(report.differences.len(), 1);
//! let d = &report.differences[0];
//! assert_eq!(d.path_string(), "initrd.img › cpio › etc/hostname");
//! assert!(matches!(d.kind, DiffKind::Content { offset: 3, .. }));
//! assert_eq!(d.summary(), "content differs at byte 3");
//!
//! let same = diff_bytes("initrd.img", &archive(b"x"), &archive(b"x"), &Options::default());
//! assert!(same.is_identical());
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod data;
mod engine;
mod formats;
mod sniff;

use std::fmt::Write as _;
use std::io;
use std::path::{Path, PathBuf};

use serde::Serialize;

pub use sniff::Format;

/// The separator between the layers of a [`Difference::path`] when shown as one string.
pub const PATH_SEPARATOR: &str = " › ";

/// Limits of a comparison; start from `Options::default()`.
///
/// ```
/// let opts = cvmkit_diff::Options::default().with_max_depth(4);
/// assert_eq!(opts.max_depth, 4);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Options {
    /// How many layers to look into (each decompression, archive, image or file system is
    /// one; at most 256). Deeper data is compared as bytes and a [`DiffKind::Limit`] says so.
    pub max_depth: usize,
    /// Differing entries reported per container (archive, partition table, section table,
    /// directory); the rest are counted in one [`DiffKind::More`].
    pub max_diffs_per_container: usize,
    /// Most bytes one decompression may produce (and one blob held in memory may have); past
    /// it the compressed bytes are compared instead and a [`DiffKind::Limit`] says so. A
    /// compressed cpio archive (an initramfs) is compared while it is decompressed and holds
    /// only its largest entry in memory, but this limit still bounds the work.
    pub max_decompressed: u64,
    /// Files up to this size that are UTF-8 text get a unified diff.
    pub max_text_size: u64,
    /// Lines of unified diff kept per difference.
    pub max_diff_lines: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            max_depth: 32,
            max_diffs_per_container: 50,
            max_decompressed: 2 << 30,
            max_text_size: 64 << 10,
            max_diff_lines: 200,
        }
    }
}

impl Options {
    /// Sets [`Options::max_depth`].
    pub fn with_max_depth(mut self, n: usize) -> Self {
        self.max_depth = n;
        self
    }
    /// Sets [`Options::max_diffs_per_container`].
    pub fn with_max_diffs_per_container(mut self, n: usize) -> Self {
        self.max_diffs_per_container = n;
        self
    }
    /// Sets [`Options::max_decompressed`].
    pub fn with_max_decompressed(mut self, n: u64) -> Self {
        self.max_decompressed = n;
        self
    }
}

/// One of the two inputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Side {
    /// The first input.
    A,
    /// The second input.
    B,
    /// Both inputs.
    Both,
}

impl std::fmt::Display for Side {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Side::A => "A",
            Side::B => "B",
            Side::Both => "both sides",
        })
    }
}

/// More about differing bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Detail {
    /// A unified diff of the two texts (`--- A`, `+++ B`, hunks).
    Text {
        /// The diff, lines ending in `\n`.
        unified: String,
    },
    /// Up to 32 bytes of each side around the first difference, as hex.
    Hex {
        /// Offset of the first byte shown.
        offset: u64,
        /// A's bytes, space-separated hex pairs.
        a: String,
        /// B's bytes, space-separated hex pairs.
        b: String,
    },
}

/// What differs at a [`Difference::path`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum DiffKind {
    /// The contents differ; `offset` is the first differing byte (the length of the shorter
    /// side when one is a prefix of the other).
    Content {
        /// First differing byte.
        offset: u64,
        /// A's length.
        size_a: u64,
        /// B's length.
        size_b: u64,
        /// A text diff or hex context, when one could be made.
        detail: Option<Detail>,
    },
    /// A metadata field differs (mode, uid, mtime, `TimeDateStamp`, partition GUID …).
    Field {
        /// The field's name as the format calls it.
        field: String,
        /// A's value.
        a: String,
        /// B's value.
        b: String,
    },
    /// The entry exists on one side only.
    OnlyIn {
        /// [`Side::A`] or [`Side::B`].
        side: Side,
        /// What it is ("file", "directory", "partition" …).
        what: String,
    },
    /// The two sides are different formats.
    Format {
        /// A's format.
        a: String,
        /// B's format.
        b: String,
    },
    /// A side could not be read as the format its magic announced; its bytes were compared.
    Unreadable {
        /// Which side failed.
        side: Side,
        /// The format it claimed to be.
        format: String,
        /// Why it could not be read.
        error: String,
    },
    /// The comparison stopped at a limit (depth, decompressed size); bytes were compared.
    Limit {
        /// Which limit, and what was done instead.
        reason: String,
    },
    /// Compressed bytes differ though the decompressed data is identical, or similar remarks.
    Note {
        /// The remark.
        message: String,
    },
    /// More entries of this container differ than [`Options::max_diffs_per_container`].
    More {
        /// Differing entries not reported.
        count: u64,
    },
}

/// One difference: where, and what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Difference {
    /// The layers from the input down to the differing thing, outermost first, e.g.
    /// `["disk.raw", "part 1 (ESP)", "EFI/BOOT/BOOTX64.EFI", ".initrd", "gzip", "cpio", "etc/hostname"]`.
    pub path: Vec<String>,
    /// What differs.
    #[serde(flatten)]
    pub kind: DiffKind,
}

impl Difference {
    /// The path joined with [`PATH_SEPARATOR`].
    pub fn path_string(&self) -> String {
        self.path.join(PATH_SEPARATOR)
    }

    /// One line saying what differs, without the path.
    pub fn summary(&self) -> String {
        match &self.kind {
            DiffKind::Content {
                offset,
                size_a,
                size_b,
                ..
            } => {
                let mut s = format!("content differs at byte {offset}");
                if size_a != size_b {
                    let _ = write!(s, " (size {size_a} vs {size_b})");
                }
                s
            }
            DiffKind::Field { field, a, b } => format!("{field} differs: {a} vs {b}"),
            DiffKind::OnlyIn { side, what } => format!("{what} only in {side}"),
            DiffKind::Format { a, b } => format!("format differs: {a} vs {b}"),
            DiffKind::Unreadable {
                side,
                format,
                error,
            } => format!("cannot read {side} as {format} ({error}); compared as bytes"),
            DiffKind::Limit { reason } => reason.clone(),
            DiffKind::Note { message } => message.clone(),
            DiffKind::More { count } => {
                format!("{count} more differing entries not shown")
            }
        }
    }
}

/// The result of a comparison.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    /// Every difference, in the order found (outer layers before inner ones).
    pub differences: Vec<Difference>,
}

impl Report {
    /// Whether nothing differs.
    pub fn is_identical(&self) -> bool {
        self.differences.is_empty()
    }

    /// The report for people: one `path: summary` line per difference, each followed by its
    /// diff or hex context indented by four spaces.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for d in &self.differences {
            let _ = writeln!(out, "{}: {}", d.path_string(), d.summary());
            if let DiffKind::Content {
                detail: Some(detail),
                ..
            } = &d.kind
            {
                match detail {
                    Detail::Text { unified } => {
                        for line in unified.lines() {
                            let _ = writeln!(out, "    {line}");
                        }
                    }
                    Detail::Hex { offset, a, b } => {
                        let _ = writeln!(out, "    A {offset:08x}: {a}");
                        let _ = writeln!(out, "    B {offset:08x}: {b}");
                    }
                }
            }
        }
        out
    }

    /// The report as JSON: `{"differences": [{"path": [...], "kind": "content", ...}]}`.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}

/// Why two inputs could not be compared. Differences in what the inputs contain, including
/// corrupt or truncated content, are reported in the [`Report`] instead.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An input could not be opened or read.
    #[error("cannot read {}: {error}", path.display())]
    Read {
        /// The input or the file inside an input directory.
        path: PathBuf,
        /// The underlying error.
        error: io::Error,
    },
    /// An input is neither a regular file nor a directory (a device, socket …).
    #[error("{} is not a regular file or a directory; pass a file, a directory or a NAR", path.display())]
    Unsupported {
        /// The input.
        path: PathBuf,
    },
}

/// Compares two files or directories (Nix store paths included; NAR files are recognised by
/// their content). The first path layer is the inputs' file name (`a ↔ b` when they differ).
pub fn diff_paths(a: &Path, b: &Path, opts: &Options) -> Result<Report, Error> {
    let name = |p: &Path| {
        p.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| p.display().to_string())
    };
    let (na, nb) = (name(a), name(b));
    let root = if na == nb {
        na
    } else {
        format!("{na} ↔ {nb}")
    };
    with_stack(|| {
        let mut e = engine::Engine::new(opts);
        e.compare_paths(root, a, b)?;
        Ok(e.finish())
    })
}

/// Compares two byte strings; `label` is the first path layer.
pub fn diff_bytes(label: &str, a: &[u8], b: &[u8], opts: &Options) -> Report {
    let (a, b) = (
        data::Data::from_vec(a.to_vec()),
        data::Data::from_vec(b.to_vec()),
    );
    with_stack(|| {
        let mut e = engine::Engine::new(opts);
        // In-memory data cannot fail to read.
        let _ = e.compare_root(label.to_string(), &a, &b);
        e.finish()
    })
}

/// Runs the recursive comparison on a thread with room for 256 layers (the stack is
/// reserved, and only touched as deep as the inputs go).
fn with_stack<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    const STACK: usize = 256 << 20;
    let mut slot = Some(f);
    let spawned = std::thread::scope(|s| {
        let job = || slot.take().map(|f| f());
        match std::thread::Builder::new()
            .name("cvmkit-diff".into())
            .stack_size(STACK)
            .spawn_scoped(s, job)
        {
            Ok(h) => h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)),
            Err(_) => None,
        }
    });
    // Without a thread (resource limits), run here, on the stack there is.
    match (spawned, slot.take()) {
        (Some(v), _) => v,
        (None, Some(f)) => f(),
        (None, None) => unreachable!("the comparison ran without a result"),
    }
}

/// The format of `bytes` as [`diff_paths`] would recognise it (from at most the first 4 KiB
/// and the last 512 bytes).
///
/// ```
/// use cvmkit_diff::{detect, Format};
/// assert_eq!(detect(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3]), Format::Gzip);
/// assert_eq!(detect(b"hello"), Format::Unknown);
/// ```
pub fn detect(bytes: &[u8]) -> Format {
    let head = &bytes[..bytes.len().min(sniff::HEAD)];
    let tail = &bytes[bytes.len().saturating_sub(512)..];
    sniff::sniff(head, tail, bytes.len() as u64)
}
