//! Walking the tree and deciding, without changing anything, what each rule removes.

use std::collections::HashMap;
use std::ffi::OsString;
use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};

use crate::config::{Config, EntryKind, Rule};
use crate::glob::{units, Unit};
use crate::path::{bytes, display, display_target};
use crate::report::{DanglingLink, Report};

/// One entry a plan removes (or keeps despite a remove rule).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Entry {
    /// Path relative to the root, without a leading `/` (`usr/share/doc`), so that
    /// `root.join(&entry.path)` names it.
    pub path: PathBuf,
    /// What `lstat` said it was.
    pub kind: EntryKind,
    /// `st_size` for a regular file; 0 for everything else.
    pub size: u64,
    /// Index into [`Config::remove_rules`] of the rule that claims it.
    pub rule: usize,
    /// Index into [`Config::keep_rules`] of the rule that keeps it, if any.
    pub keep: Option<usize>,
}

impl Entry {
    /// The path as reports show it: `/usr/share/doc`, escaped (see
    /// [`RuleReport::paths`](crate::RuleReport::paths)).
    pub fn display_path(&self) -> String {
        display(&self.path)
    }
}

/// What [`apply`](crate::apply) would remove; made by [`plan`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    pub(crate) remove_names: Vec<String>,
    pub(crate) keep_names: Vec<String>,
    pub(crate) removals: Vec<Entry>,
    pub(crate) kept: Vec<Entry>,
    pub(crate) dangling: Vec<DanglingLink>,
}

impl Plan {
    /// Every entry to remove, sorted by path (component by component, bytewise), so a
    /// directory comes before its contents.
    pub fn removals(&self) -> &[Entry] {
        &self.removals
    }

    /// Entries a remove rule claims but a keep rule saves, sorted by path.
    pub fn kept(&self) -> &[Entry] {
        &self.kept
    }

    /// Links that stay but would point at removed paths.
    pub fn dangling(&self) -> &[DanglingLink] {
        &self.dangling
    }

    /// The report of this plan, with `dry_run: true`: the same numbers `apply` reports if the
    /// tree does not change in between.
    pub fn report(&self) -> Report {
        Report::build(
            &self.remove_names,
            &self.keep_names,
            &self.removals,
            &self.kept,
            self.dangling.clone(),
            true,
        )
    }
}

/// Why a tree could not be planned.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PlanError {
    /// The root is missing or not a directory.
    #[error("root '{root}' is not a directory; pass the directory holding the unpacked root file system")]
    NotADirectory {
        /// The root as given.
        root: PathBuf,
    },
    /// Reading the tree failed.
    #[error("cannot read '{path}'")]
    Io {
        /// The host path that failed.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A remove rule claims a directory that is another file system's mount point.
    #[error("'{path}' is a mount point and rule '{rule}' would remove it; unmount it, or keep it with a [[keep]] rule")]
    MountPoint {
        /// The host path of the mount point.
        path: PathBuf,
        /// The rule that claims it.
        rule: String,
    },
}

/// Decides what `config` removes under `root`, changing nothing.
///
/// The tree is walked in sorted order without following symlinks and without entering other
/// file systems; see the [crate documentation](crate) for how rules decide.
pub fn plan(root: &Path, config: &Config) -> Result<Plan, PlanError> {
    // The root itself may be a symlink (the caller named it); nothing below it is followed.
    let md = match fs::metadata(root) {
        Ok(md) if md.is_dir() => md,
        Ok(_) => return Err(PlanError::NotADirectory { root: root.into() }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(PlanError::NotADirectory { root: root.into() })
        }
        Err(source) => {
            return Err(PlanError::Io {
                path: root.into(),
                source,
            })
        }
    };
    let mut w = Walker {
        root,
        remove: config.remove_rules(),
        keep: config.keep_rules(),
        dev: device(&md),
        rel: PathBuf::new(),
        comps: Vec::new(),
        removals: Vec::new(),
        kept: Vec::new(),
        links: Vec::new(),
    };
    w.walk(None, None)?;
    let Walker {
        mut removals,
        mut kept,
        links,
        ..
    } = w;
    // Directories were pushed after their contents; the order callers see is plain path order.
    removals.sort_by(|a, b| a.path.cmp(&b.path));
    kept.sort_by(|a, b| a.path.cmp(&b.path));
    let remove_names: Vec<String> = config
        .remove_rules()
        .iter()
        .map(|r| r.name.clone())
        .collect();
    let dangling = dangling_links(root, &links, &removals, &remove_names);
    Ok(Plan {
        remove_names,
        keep_names: config.keep_rules().iter().map(|r| r.name.clone()).collect(),
        removals,
        kept,
        dangling,
    })
}

#[cfg(unix)]
fn device(md: &fs::Metadata) -> u64 {
    use std::os::unix::fs::MetadataExt;
    md.dev()
}

#[cfg(not(unix))]
fn device(_: &fs::Metadata) -> u64 {
    0
}

pub(crate) fn kind_of(ft: fs::FileType) -> EntryKind {
    if ft.is_symlink() {
        EntryKind::Link
    } else if ft.is_dir() {
        EntryKind::Dir
    } else if ft.is_file() {
        EntryKind::File
    } else {
        EntryKind::Other
    }
}

fn first_match(rules: &[Rule], kind: EntryKind, path: &[&[Unit]]) -> Option<usize> {
    rules.iter().position(|r| r.matches(kind, path))
}

/// `Option::min` treating `None` as "no rule" rather than as the smallest.
fn earliest(a: Option<usize>, b: Option<usize>) -> Option<usize> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

struct Walker<'a> {
    root: &'a Path,
    remove: &'a [Rule],
    keep: &'a [Rule],
    dev: u64,
    /// The directory being walked, relative to the root.
    rel: PathBuf,
    /// `rel`'s components as glob units.
    comps: Vec<Vec<Unit>>,
    removals: Vec<Entry>,
    kept: Vec<Entry>,
    /// Symlinks that stay, for the dangling-link check.
    links: Vec<PathBuf>,
}

impl Walker<'_> {
    /// Walks `self.rel`, whose nearest claiming remove rule is `claim` and keep rule is `keep`.
    /// Returns whether anything inside was kept from a claiming rule, which keeps the directory.
    fn walk(&mut self, claim: Option<usize>, keep: Option<usize>) -> Result<bool, PlanError> {
        let dir = self.root.join(&self.rel);
        let io_err = |path: PathBuf| move |source| PlanError::Io { path, source };
        let mut entries: Vec<(OsString, fs::Metadata)> = Vec::new();
        for e in fs::read_dir(&dir).map_err(io_err(dir.clone()))? {
            let e = e.map_err(io_err(dir.clone()))?;
            // DirEntry::metadata is lstat: a symlink reports itself, not its target.
            let md = e.metadata().map_err(io_err(e.path()))?;
            entries.push((e.file_name(), md));
        }
        // read_dir order depends on the file system and on creation order; sorting makes the
        // walk, and so every list in the plan, the same for equal trees.
        entries.sort_by(|a, b| a.0.cmp(&b.0));

        let mut any_kept = false;
        for (name, md) in entries {
            self.rel.push(&name);
            self.comps.push(units(&bytes(&name)));
            let result = self.visit(claim, keep, &md);
            self.comps.pop();
            self.rel.pop();
            any_kept |= result?;
        }
        Ok(any_kept)
    }

    /// Decides one entry (already pushed onto `rel`); returns whether something was kept.
    fn visit(
        &mut self,
        claim: Option<usize>,
        keep: Option<usize>,
        md: &fs::Metadata,
    ) -> Result<bool, PlanError> {
        let kind = kind_of(md.file_type());
        let (claim, keep) = {
            let comps: Vec<&[Unit]> = self.comps.iter().map(Vec::as_slice).collect();
            // The first rule in file order that matches this path or one of its ancestors wins,
            // so the report does not depend on how deep a rule's glob reaches.
            (
                earliest(claim, first_match(self.remove, kind, &comps)),
                earliest(keep, first_match(self.keep, kind, &comps)),
            )
        };
        let size = if kind == EntryKind::File { md.len() } else { 0 };
        let entry = |rel: &Path, rule| Entry {
            path: rel.to_path_buf(),
            kind,
            size,
            rule,
            keep,
        };
        let mut stays = claim.is_none() || keep.is_some();
        if kind == EntryKind::Dir {
            if device(md) != self.dev {
                // Another file system (a bind mount of /proc, say) is not ours to empty.
                return match claim {
                    Some(r) if keep.is_none() => Err(PlanError::MountPoint {
                        path: self.root.join(&self.rel),
                        rule: self.remove[r].name.clone(),
                    }),
                    _ => Ok(false),
                };
            }
            let inner_kept = self.walk(claim, keep)?;
            if inner_kept {
                stays = true;
            }
            if let Some(r) = claim {
                if keep.is_some() {
                    self.kept.push(entry(&self.rel, r));
                } else if !inner_kept {
                    self.removals.push(entry(&self.rel, r));
                }
            }
            return Ok(claim.is_some() && stays);
        }
        if kind == EntryKind::Link && stays {
            self.links.push(self.rel.clone());
        }
        match (claim, keep) {
            (Some(r), Some(_)) => {
                self.kept.push(entry(&self.rel, r));
                Ok(true)
            }
            (Some(r), None) => {
                self.removals.push(entry(&self.rel, r));
                Ok(false)
            }
            (None, _) => Ok(false),
        }
    }
}

/// One step of chroot-style path resolution.
enum Step {
    Name(OsString),
    Up,
}

fn push_steps(todo: &mut Vec<Step>, target: &Path) {
    for c in target.components().rev() {
        match c {
            Component::Normal(n) => todo.push(Step::Name(n.to_owned())),
            Component::ParentDir => todo.push(Step::Up),
            Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
        }
    }
}

/// The paths (relative to the root) that resolving the symlink `link` goes through, as if the
/// root were `/` (absolute targets start at the root, `..` stops there), or `None` if the link
/// does not resolve today (already dangling, a loop, an unreadable directory). Only `lstat` and
/// `readlink` are used, each on a path whose directories were all checked not to be symlinks,
/// so nothing outside the root is ever looked at.
fn resolve(root: &Path, link: &Path) -> Option<Vec<PathBuf>> {
    // Linux gives up after 40 links (MAXSYMLINKS); a loop must not hang the plan.
    const MAX_HOPS: usize = 40;
    let mut cur = link.parent().map(Path::to_path_buf).unwrap_or_default();
    let target = fs::read_link(root.join(link)).ok()?;
    if target.has_root() {
        cur = PathBuf::new();
    }
    let mut todo = Vec::new();
    push_steps(&mut todo, &target);
    let mut visited = Vec::new();
    let mut hops = 0;
    while let Some(step) = todo.pop() {
        match step {
            Step::Up => {
                cur.pop();
            }
            Step::Name(n) => {
                let next = cur.join(&n);
                let md = fs::symlink_metadata(root.join(&next)).ok()?;
                visited.push(next.clone());
                if md.file_type().is_symlink() {
                    hops += 1;
                    if hops > MAX_HOPS {
                        return None;
                    }
                    let t = fs::read_link(root.join(&next)).ok()?;
                    if t.has_root() {
                        cur = PathBuf::new();
                    }
                    push_steps(&mut todo, &t);
                } else {
                    if !md.is_dir() && !todo.is_empty() {
                        return None;
                    }
                    cur = next;
                }
            }
        }
    }
    Some(visited)
}

fn dangling_links(
    root: &Path,
    links: &[PathBuf],
    removals: &[Entry],
    names: &[String],
) -> Vec<DanglingLink> {
    if removals.is_empty() {
        return Vec::new();
    }
    let removed: HashMap<&Path, usize> = removals
        .iter()
        .map(|e| (e.path.as_path(), e.rule))
        .collect();
    let mut out = Vec::new();
    for link in links {
        let Some(visited) = resolve(root, link) else {
            continue;
        };
        if let Some(rule) = visited.iter().find_map(|p| removed.get(p.as_path())) {
            let target = fs::read_link(root.join(link)).unwrap_or_default();
            out.push(DanglingLink {
                link: display(link),
                target: display_target(&target),
                rule: names[*rule].clone(),
            });
        }
    }
    // `links` is in walk order, which is path order, like every other list in a plan.
    out
}
