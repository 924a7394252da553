//! What a plan would remove, or what `apply` removed, per rule.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::config::EntryKind;
use crate::plan::Entry;

/// How many entries, and how many bytes of regular files.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Regular files.
    pub files: u64,
    /// Directories (removed only when nothing in them is kept).
    pub dirs: u64,
    /// Symbolic links (the links themselves; targets are never followed).
    pub links: u64,
    /// Device nodes, FIFOs and sockets.
    pub other: u64,
    /// Sum of the apparent sizes (`st_size`) of the regular files. Not disk blocks: sparse files
    /// count their full length, a file with several hard links counts once per removed link,
    /// and directories, symlinks and file-system metadata count nothing.
    pub bytes: u64,
}

impl Counts {
    fn add(&mut self, e: &Entry) {
        match e.kind {
            EntryKind::File => self.files += 1,
            EntryKind::Dir => self.dirs += 1,
            EntryKind::Link => self.links += 1,
            EntryKind::Other => self.other += 1,
        }
        self.bytes += e.size;
    }

    /// Entries of every kind.
    pub fn entries(&self) -> u64 {
        self.files + self.dirs + self.links + self.other
    }
}

/// One rule's share of a [`Report`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RuleReport {
    /// The rule's name.
    pub name: String,
    /// What it removed (or, in [`Report::kept`], what it saved from removal).
    #[serde(flatten)]
    pub counts: Counts,
    /// The topmost paths it removed (or kept), sorted: a removed directory is listed, its
    /// contents are not. Names are escaped: `\\` for `\`, `\xNN` for a control character or a
    /// byte that is not UTF-8.
    pub paths: Vec<String>,
}

/// A symlink that stays but whose target (resolved inside the root, as in a chroot) goes away.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct DanglingLink {
    /// The link's path (escaped like [`RuleReport::paths`]).
    pub link: String,
    /// Its target as stored in the link.
    pub target: String,
    /// The rule that removes the target (or a link or directory on the way to it).
    pub rule: String,
}

/// Per-rule counts: what [`Plan::report`](crate::Plan::report) would remove, or what
/// [`apply`](crate::apply) removed. Serializes to JSON as
/// `{"dry_run", "rules": [{"name", "files", "dirs", "links", "other", "bytes", "paths"}], "total",
/// "kept": [...same shape...], "dangling": [{"link", "target", "rule"}]}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Report {
    /// True when nothing was removed (the report of a plan).
    pub dry_run: bool,
    /// Every remove rule in config order, including those that matched nothing.
    pub rules: Vec<RuleReport>,
    /// The sum over `rules`.
    pub total: Counts,
    /// Every keep rule in config order: the entries it saved from a remove rule. Entries that no
    /// remove rule matched are not counted here.
    pub kept: Vec<RuleReport>,
    /// Links left pointing at removed paths, sorted by link: usually a sign that a keep rule is
    /// missing (`/etc/localtime` into a removed time zone, say).
    pub dangling: Vec<DanglingLink>,
}

impl Report {
    pub(crate) fn build(
        remove_names: &[String],
        keep_names: &[String],
        removals: &[Entry],
        kept: &[Entry],
        dangling: Vec<DanglingLink>,
        dry_run: bool,
    ) -> Report {
        let rules = group(remove_names, removals, |e| Some(e.rule));
        let kept = group(keep_names, kept, |e| e.keep);
        let mut total = Counts::default();
        for e in removals {
            total.add(e);
        }
        Report {
            dry_run,
            rules,
            total,
            kept,
            dangling,
        }
    }
}

/// Sums `entries` (sorted by path) per rule; a path is listed when its parent is not an entry
/// of the same rule.
fn group(
    names: &[String],
    entries: &[Entry],
    rule: impl Fn(&Entry) -> Option<usize>,
) -> Vec<RuleReport> {
    let by_path: HashMap<&Path, Option<usize>> = entries
        .iter()
        .map(|e| (e.path.as_path(), rule(e)))
        .collect();
    let mut out: Vec<RuleReport> = names
        .iter()
        .map(|n| RuleReport {
            name: n.clone(),
            counts: Counts::default(),
            paths: Vec::new(),
        })
        .collect();
    for e in entries {
        let Some(r) = rule(e) else { continue };
        let Some(report) = out.get_mut(r) else {
            continue;
        };
        report.counts.add(e);
        let parent_same = e
            .path
            .parent()
            .and_then(|p| by_path.get(p))
            .is_some_and(|pr| *pr == Some(r));
        if !parent_same {
            report.paths.push(e.display_path());
        }
    }
    out
}

/// `12345678` as `11.8 MiB`.
fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// A table for people: one line per rule, the total, then kept and dangling entries.
impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let width = self
            .rules
            .iter()
            .chain(&self.kept)
            .map(|r| r.name.len())
            .chain([5])
            .max()
            .unwrap_or(5);
        let verb = if self.dry_run {
            "would remove"
        } else {
            "removed"
        };
        writeln!(
            f,
            "{:width$}  {:>8} {:>7} {:>7} {:>7} {:>14}  ({verb})",
            "rule", "files", "dirs", "links", "other", "bytes"
        )?;
        let line = |f: &mut fmt::Formatter<'_>, name: &str, c: &Counts| {
            writeln!(
                f,
                "{name:width$}  {:>8} {:>7} {:>7} {:>7} {:>14}  {}",
                c.files,
                c.dirs,
                c.links,
                c.other,
                c.bytes,
                human(c.bytes)
            )
        };
        for r in &self.rules {
            line(f, &r.name, &r.counts)?;
        }
        line(f, "total", &self.total)?;
        for k in self.kept.iter().filter(|k| k.counts.entries() > 0) {
            writeln!(
                f,
                "kept by {}: {} entries, {} bytes",
                k.name,
                k.counts.entries(),
                k.counts.bytes
            )?;
        }
        for d in &self.dangling {
            writeln!(
                f,
                "warning: {} -> {} dangles: rule '{}' removes its target",
                d.link, d.target, d.rule
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::human;

    #[test]
    fn human_sizes() {
        assert_eq!(human(0), "0 B");
        assert_eq!(human(1023), "1023 B");
        assert_eq!(human(1536), "1.5 KiB");
        assert_eq!(human(5 * 1024 * 1024), "5.0 MiB");
    }
}
