//! The recursive comparison: byte check first, then sniff, then the format's comparer, with
//! a byte comparison as the fallback and the safety net.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io;
use std::path::Path;

use crate::data::{first_diff, last_diff, Data};
use crate::formats;
use crate::sniff::{self, Format};
use crate::{Detail, DiffKind, Difference, Error, Options, Report, Side};

/// Deepest recursion whatever [`Options::max_depth`] says.
pub(crate) const MAX_DEPTH: usize = 256;

/// Bytes of hex context shown per side.
const HEX_CONTEXT: u64 = 32;

/// Collects the differences of one comparison.
pub(crate) struct Engine<'o> {
    pub(crate) opts: &'o Options,
    diffs: Vec<Difference>,
}

/// One member of a container (archive entry, section, partition, file) on one side.
#[derive(Debug)]
pub(crate) struct Item {
    /// What the two sides are matched by.
    pub(crate) key: String,
    /// The path layer shown for it.
    pub(crate) label: String,
    /// "file", "directory", "symlink", "section", "partition" …
    pub(crate) what: &'static str,
    /// Metadata compared one by one: (name, value).
    pub(crate) fields: Vec<(&'static str, String)>,
    /// Contents compared (recursively), if it has any.
    pub(crate) data: Option<Data>,
    /// Offset of the contents in the container's data, when the container is one blob.
    pub(crate) pos: Option<u64>,
}

impl Item {
    pub(crate) fn new(key: impl Into<String>, what: &'static str) -> Item {
        let key = key.into();
        Item {
            label: key.clone(),
            key,
            what,
            fields: Vec::new(),
            data: None,
            pos: None,
        }
    }

    pub(crate) fn field(mut self, name: &'static str, value: impl std::fmt::Display) -> Item {
        self.fields.push((name, value.to_string()));
        self
    }

    pub(crate) fn data(mut self, d: Data, pos: Option<u64>) -> Item {
        self.data = Some(d);
        self.pos = pos;
        self
    }

    pub(crate) fn label(mut self, label: impl Into<String>) -> Item {
        self.label = label.into();
        self
    }
}

/// Byte ranges known to be equal on both sides: everything outside `[start, end)`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Span {
    pub(crate) start: u64,
    pub(crate) end: u64,
}

impl Span {
    /// Whether `len` bytes at `pos` lie entirely outside the differing range.
    pub(crate) fn known_equal(&self, pos: u64, len: u64) -> bool {
        pos.saturating_add(len) <= self.start || pos >= self.end
    }
}

pub(crate) fn join(path: &[String], more: impl Into<String>) -> Vec<String> {
    let mut p = path.to_vec();
    p.push(more.into());
    p
}

impl<'o> Engine<'o> {
    pub(crate) fn new(opts: &'o Options) -> Self {
        Engine {
            opts,
            diffs: Vec::new(),
        }
    }

    /// [`Options::max_depth`], at most [`MAX_DEPTH`] (each layer takes stack).
    pub(crate) fn max_depth(&self) -> usize {
        self.opts.max_depth.min(MAX_DEPTH)
    }

    pub(crate) fn finish(self) -> Report {
        Report {
            differences: self.diffs,
        }
    }

    pub(crate) fn push(&mut self, path: &[String], kind: DiffKind) {
        self.diffs.push(Difference {
            path: path.to_vec(),
            kind,
        });
    }

    pub(crate) fn field(&mut self, path: &[String], field: &str, a: String, b: String) {
        self.push(
            path,
            DiffKind::Field {
                field: field.to_string(),
                a,
                b,
            },
        );
    }

    pub(crate) fn unreadable(
        &mut self,
        path: &[String],
        side: Side,
        format: Format,
        error: String,
    ) {
        self.push(
            path,
            DiffKind::Unreadable {
                side,
                format: format.name().to_string(),
                error,
            },
        );
    }

    /// Reports a side (or both) that failed to parse; returns false so the caller falls back
    /// to bytes.
    pub(crate) fn parse_failed(
        &mut self,
        path: &[String],
        format: Format,
        a: Option<String>,
        b: Option<String>,
    ) -> bool {
        match (a, b) {
            (Some(ea), Some(eb)) if ea == eb => self.unreadable(path, Side::Both, format, ea),
            (Some(ea), Some(eb)) => {
                self.unreadable(path, Side::A, format, ea);
                self.unreadable(path, Side::B, format, eb);
            }
            (Some(e), None) => self.unreadable(path, Side::A, format, e),
            (None, Some(e)) => self.unreadable(path, Side::B, format, e),
            (None, None) => {}
        }
        false
    }

    pub(crate) fn compare_root(&mut self, label: String, a: &Data, b: &Data) -> io::Result<bool> {
        self.blob(&[label], a, b, 0)
    }

    /// Compares two files or directories given by path.
    pub(crate) fn compare_paths(&mut self, root: String, a: &Path, b: &Path) -> Result<(), Error> {
        let read_err = |p: &Path| {
            let p = p.to_path_buf();
            move |error| Error::Read { path: p, error }
        };
        let ma = std::fs::metadata(a).map_err(read_err(a))?;
        let mb = std::fs::metadata(b).map_err(read_err(b))?;
        let kind = |m: &std::fs::Metadata, p: &Path| {
            if m.is_dir() {
                Ok("directory")
            } else if m.is_file() {
                Ok("file")
            } else {
                Err(Error::Unsupported {
                    path: p.to_path_buf(),
                })
            }
        };
        let (ka, kb) = (kind(&ma, a)?, kind(&mb, b)?);
        let path = vec![root];
        if ka != kb {
            self.field(&path, "type", ka.into(), kb.into());
            return Ok(());
        }
        if ka == "directory" {
            return formats::dir::compare(self, &path, a, b);
        }
        let open = |p: &Path| {
            std::fs::File::open(p)
                .and_then(|f| Data::from_file(f, p.to_path_buf()))
                .map_err(read_err(p))
        };
        let (da, db) = (open(a)?, open(b)?);
        self.blob(&path, &da, &db, 0).map_err(|error| Error::Read {
            path: a.to_path_buf(),
            error,
        })?;
        Ok(())
    }

    /// Compares two blobs at `path`; returns whether they differ (and then reported why).
    pub(crate) fn blob(
        &mut self,
        path: &[String],
        a: &Data,
        b: &Data,
        depth: usize,
    ) -> io::Result<bool> {
        let (la, lb) = (a.len(), b.len());
        let common = la.min(lb);
        let first = first_diff(a, b, 0, common)?;
        if la == lb && first.is_none() {
            return Ok(false);
        }
        let first = first.unwrap_or(common);
        let before = self.diffs.len();
        if depth >= self.max_depth() {
            self.push(
                path,
                DiffKind::Limit {
                    reason: format!(
                        "maximum depth {} reached; compared as bytes",
                        self.max_depth()
                    ),
                },
            );
            self.bytes(path, a, b, first)?;
            return Ok(true);
        }
        let fa = sniff_data(a)?;
        let fb = sniff_data(b)?;
        let handled = if fa == fb || (fa.is_compression() && fb.is_compression()) {
            let cx = Cx {
                path,
                a,
                b,
                depth,
                first,
            };
            match fa {
                Format::Gzip | Format::Xz | Format::Zstd => {
                    formats::compress::compare(self, &cx, fa, fb)?
                }
                Format::Cpio => formats::cpio::compare(self, &cx)?,
                Format::Tar => formats::tar::compare(self, &cx)?,
                Format::Pe => formats::pe::compare(self, &cx)?,
                Format::Vhd => formats::vhd::compare(self, &cx)?,
                Format::Gpt => formats::gpt::compare(self, &cx)?,
                Format::Fat => formats::fat::compare(self, &cx)?,
                Format::Nar => formats::nar::compare(self, &cx)?,
                Format::Unknown => false,
            }
        } else {
            self.push(
                path,
                DiffKind::Format {
                    a: fa.name().into(),
                    b: fb.name().into(),
                },
            );
            false
        };
        if !handled || self.diffs.len() == before {
            self.bytes(path, a, b, first)?;
        }
        Ok(true)
    }

    /// Reports differing bytes: first offset, and a text diff or hex context.
    pub(crate) fn bytes(
        &mut self,
        path: &[String],
        a: &Data,
        b: &Data,
        first: u64,
    ) -> io::Result<()> {
        let (la, lb) = (a.len(), b.len());
        let mut detail = None;
        if la <= self.opts.max_text_size && lb <= self.opts.max_text_size {
            let (x, y) = (a.load(u64::MAX)?, b.load(u64::MAX)?);
            let (x, y) = (
                x.as_slice().unwrap_or_default(),
                y.as_slice().unwrap_or_default(),
            );
            if let (Ok(tx), Ok(ty)) = (std::str::from_utf8(x), std::str::from_utf8(y)) {
                if !tx.contains('\0') && !ty.contains('\0') {
                    detail = Some(Detail::Text {
                        unified: self.unified(tx, ty),
                    });
                }
            }
        }
        if detail.is_none() {
            let start = first.saturating_sub(8);
            let hex = |d: &Data| -> io::Result<String> {
                let mut buf = vec![0u8; HEX_CONTEXT as usize];
                let n = d.read_at(start, &mut buf)?;
                let mut s = String::new();
                for (i, byte) in buf[..n].iter().enumerate() {
                    if i > 0 {
                        s.push(' ');
                    }
                    let _ = write!(s, "{byte:02x}");
                }
                Ok(s)
            };
            detail = Some(Detail::Hex {
                offset: start,
                a: hex(a)?,
                b: hex(b)?,
            });
        }
        self.push(
            path,
            DiffKind::Content {
                offset: first,
                size_a: la,
                size_b: lb,
                detail,
            },
        );
        Ok(())
    }

    fn unified(&self, a: &str, b: &str) -> String {
        let diff = similar::TextDiff::from_lines(a, b);
        let text = diff
            .unified_diff()
            .context_radius(3)
            .header("A", "B")
            .to_string();
        let max = self.opts.max_diff_lines;
        let total = text.lines().count();
        if total <= max {
            return text;
        }
        let mut out: String = text.lines().take(max).flat_map(|l| [l, "\n"]).collect();
        let _ = writeln!(out, "[… {} more diff lines]", total - max);
        out
    }

    /// Compares the members of a container at `path`: which exist on one side only, their
    /// order (when `ordered`), their fields and, recursively, their contents.
    pub(crate) fn items(
        &mut self,
        path: &[String],
        a: Vec<Item>,
        b: Vec<Item>,
        ordered: bool,
        span: Option<Span>,
        depth: usize,
    ) -> io::Result<()> {
        let a = dedupe(a);
        let b = dedupe(b);
        let index_b: HashMap<&str, usize> = b
            .iter()
            .enumerate()
            .map(|(i, it)| (it.key.as_str(), i))
            .collect();
        let index_a: HashMap<&str, usize> = a
            .iter()
            .enumerate()
            .map(|(i, it)| (it.key.as_str(), i))
            .collect();
        let cap = self.opts.max_diffs_per_container;
        let mut shown = 0usize;
        let mut more = 0u64;
        for ia in &a {
            let Some(&j) = index_b.get(ia.key.as_str()) else {
                if shown < cap {
                    shown += 1;
                    self.push(
                        &join(path, ia.label.clone()),
                        DiffKind::OnlyIn {
                            side: Side::A,
                            what: ia.what.into(),
                        },
                    );
                } else {
                    more += 1;
                }
                continue;
            };
            let ib = &b[j];
            let field_diffs = field_diffs(ia, ib);
            let data_differs = if ia.what != ib.what {
                false
            } else {
                match (&ia.data, &ib.data) {
                    (Some(da), Some(db)) => !self.known_equal(da, db, ia.pos, ib.pos, span)?,
                    _ => false,
                }
            };
            if field_diffs.is_empty() && ia.what == ib.what && !data_differs {
                continue;
            }
            if shown >= cap {
                more += 1;
                continue;
            }
            shown += 1;
            let child = join(path, ia.label.clone());
            if ia.what != ib.what {
                self.field(&child, "type", ia.what.into(), ib.what.into());
            }
            for (name, va, vb) in field_diffs {
                self.field(&child, name, va, vb);
            }
            if data_differs {
                if let (Some(da), Some(db)) = (&ia.data, &ib.data) {
                    self.blob(&child, da, db, depth + 1)?;
                }
            }
        }
        for ib in &b {
            if index_a.contains_key(ib.key.as_str()) {
                continue;
            }
            if shown < cap {
                shown += 1;
                self.push(
                    &join(path, ib.label.clone()),
                    DiffKind::OnlyIn {
                        side: Side::B,
                        what: ib.what.into(),
                    },
                );
            } else {
                more += 1;
            }
        }
        if ordered {
            let ka: Vec<&str> = a.iter().map(|it| it.key.as_str()).collect();
            let kb: Vec<&str> = b.iter().map(|it| it.key.as_str()).collect();
            self.order(path, &ka, &kb);
        }
        if more > 0 {
            self.push(path, DiffKind::More { count: more });
        }
        Ok(())
    }

    /// Reports the first position where the members both sides have come in another order.
    pub(crate) fn order(&mut self, path: &[String], a: &[&str], b: &[&str]) {
        let in_a: std::collections::HashSet<&str> = a.iter().copied().collect();
        let in_b: std::collections::HashSet<&str> = b.iter().copied().collect();
        let ca: Vec<&str> = a.iter().copied().filter(|k| in_b.contains(k)).collect();
        let cb: Vec<&str> = b.iter().copied().filter(|k| in_a.contains(k)).collect();
        if let Some(i) = ca.iter().zip(&cb).position(|(x, y)| x != y) {
            self.field(
                path,
                "entry order",
                format!("#{} is {}", i + 1, ca[i]),
                format!("#{} is {}", i + 1, cb[i]),
            );
        }
    }

    pub(crate) fn diff_count(&self) -> usize {
        self.diffs.len()
    }

    /// Whether two members' contents are equal, using the container's known-equal ranges
    /// when both sit at the same offset.
    fn known_equal(
        &self,
        a: &Data,
        b: &Data,
        pa: Option<u64>,
        pb: Option<u64>,
        span: Option<Span>,
    ) -> io::Result<bool> {
        if a.len() != b.len() {
            return Ok(false);
        }
        if let (Some(pa), Some(pb), Some(span)) = (pa, pb, span) {
            if pa == pb && span.known_equal(pa, a.len()) {
                return Ok(true);
            }
        }
        Ok(first_diff(a, b, 0, a.len())?.is_none())
    }
}

/// What a format comparer gets: where it is, both sides, the depth and the first differing
/// byte (the sides are known to differ).
pub(crate) struct Cx<'a> {
    pub(crate) path: &'a [String],
    pub(crate) a: &'a Data,
    pub(crate) b: &'a Data,
    pub(crate) depth: usize,
    pub(crate) first: u64,
}

impl Cx<'_> {
    /// The differing range when both sides have the same length (scans back from the end).
    pub(crate) fn span(&self) -> io::Result<Option<Span>> {
        if self.a.len() != self.b.len() {
            return Ok(None);
        }
        let last = last_diff(self.a, self.b, self.first, self.a.len())?;
        Ok(Some(Span {
            start: self.first,
            end: last.map_or(self.first, |l| l + 1),
        }))
    }
}

pub(crate) fn sniff_data(d: &Data) -> io::Result<Format> {
    let head = d.head(sniff::HEAD)?;
    let tail = d.tail(512)?;
    Ok(sniff::sniff(&head, &tail, d.len()))
}

pub(crate) fn field_diffs(a: &Item, b: &Item) -> Vec<(&'static str, String, String)> {
    let mut out = Vec::new();
    for (name, va) in &a.fields {
        let vb = b.fields.iter().find(|(n, _)| n == name).map(|(_, v)| v);
        match vb {
            Some(vb) if vb == va => {}
            Some(vb) => out.push((*name, va.clone(), vb.clone())),
            None => out.push((*name, va.clone(), "(none)".to_string())),
        }
    }
    for (name, vb) in &b.fields {
        if !a.fields.iter().any(|(n, _)| n == name) {
            out.push((*name, "(none)".to_string(), vb.clone()));
        }
    }
    out
}

/// Makes keys unique: the second `x` becomes `x #2`, and so on.
pub(crate) fn dedupe(items: Vec<Item>) -> Vec<Item> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    items
        .into_iter()
        .map(|mut it| {
            let n = seen.entry(it.key.clone()).or_insert(0);
            *n += 1;
            if *n > 1 {
                it.key = format!("{} #{n}", it.key);
                it.label = format!("{} #{n}", it.label);
            }
            it
        })
        .collect()
}
