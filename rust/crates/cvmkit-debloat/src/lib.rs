//! Remove documentation, translations, caches, logs and other dead weight from a root file
//! system tree, by named glob rules with keep rules, reporting what each rule removed,
//! deterministically.
//!
//! The work is in two steps so that a dry run is the real thing minus the removal:
//! [`plan`] walks the tree and decides, changing nothing; [`apply`] removes what the plan lists.
//! [`Plan::report`] and [`apply`] return the same [`Report`] (per rule: files, directories,
//! links, other entries, bytes), which serializes to JSON with serde.
//!
//! ```
//! use cvmkit_debloat::{apply, plan, Config};
//!
//! let root = tempfile::tempdir()?;
//! let doc = root.path().join("usr/share/doc/bash");
//! std::fs::create_dir_all(&doc)?;
//! std::fs::write(doc.join("copyright"), "GPL-3+\n")?;
//! std::fs::write(doc.join("changelog.gz"), [0u8; 1000])?;
//!
//! let config = Config::parse(
//!     r#"
//!     [[remove]]
//!     name = "docs"
//!     paths = ["/usr/share/doc/**"]
//!
//!     [[keep]]
//!     name = "copyright"
//!     comment = "licences must ship with the binaries"
//!     paths = ["/usr/share/doc/*/copyright"]
//!     "#,
//!     "debloat.toml",
//! )?;
//! let plan = plan(root.path(), &config)?;
//! let dry = plan.report();
//! assert_eq!((dry.rules[0].counts.files, dry.rules[0].counts.bytes), (1, 1000));
//! assert!(doc.join("changelog.gz").exists()); // planning changes nothing
//!
//! let done = apply(root.path(), &plan)?;
//! assert_eq!(done.total, dry.total);
//! assert!(!doc.join("changelog.gz").exists());
//! assert!(doc.join("copyright").exists());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Config format
//!
//! A TOML file of `[[remove]]` and `[[keep]]` tables, each with these keys:
//!
//! | key       | required | value |
//! |-----------|----------|-------|
//! | `name`    | yes      | letters, digits, `-`, `_`, `.`; unique across all rules |
//! | `paths`   | yes      | non-empty array of globs (syntax: [`Glob`]) |
//! | `comment` | no       | why the rule exists; carried along, never interpreted |
//! | `types`   | no       | which kinds of entry the globs match: any of `"file"`, `"dir"`, `"link"`, `"other"`; default all |
//!
//! ```toml
//! [[remove]]
//! name = "docs"
//! comment = "Nobody reads documentation on a headless VM."
//! paths = ["/usr/share/doc/**", "/usr/share/man", "/usr/share/info"]
//!
//! [[remove]]
//! name = "logs"
//! comment = "Build-time logs; the directories stay for the daemons that write there."
//! paths = ["/var/log/**"]
//! types = ["file", "link", "other"]
//!
//! [[keep]]
//! name = "copyright"
//! paths = ["/usr/share/doc/*/copyright"]
//! ```
//!
//! Any other key, a value of the wrong type or a glob that does not compile is an error naming
//! the file and line and saying what would fix it:
//! `debloat.toml:12: unknown key 'remvoe' in [[remove]]; expected 'name', 'comment', 'paths' or 'types'`,
//! `debloat.toml:3: bad glob '/usr/[a' in rule 'docs': unclosed '['; close the set with ']' or
//! write '\[' for a literal '[' (at character 6)`.
//!
//! [`Config::default_config`] is the built-in config (the crate's `default.toml`, also
//! available as text in [`DEFAULT_CONFIG`]): every rule in it has a comment saying what it
//! removes and why a confidential VM does not need it.
//!
//! # How rules decide
//!
//! - Globs match the path of an entry relative to the root, written with a leading `/`
//!   (`/usr/share/doc/bash`). They cannot name anything outside the root: `..` is rejected.
//! - An entry is claimed by the **first remove rule, in file order, that matches it or one of
//!   its ancestors**. A matched directory thus claims its whole subtree, and each entry is
//!   counted under exactly one rule. `types` limits what a rule's globs match, not what a
//!   matched directory takes with it.
//! - An entry is kept if a keep rule matches it or one of its ancestors. **Keep wins**: a kept
//!   entry stays whatever remove rule claims it, and so do the directories above it (they are
//!   then not removed and not counted, while the rest of their contents is). The report
//!   counts, per keep rule, what it saved.
//! - Symlinks are entries like any other: a matched symlink is removed as a link, and the walk
//!   never follows one, so a symlinked directory is neither entered nor emptied, and a link
//!   pointing outside the root cannot lead there. The walk does not enter other file systems
//!   (mount points); a remove rule claiming one is an error.
//! - The root itself is never removed.
//! - Directory entries are visited in sorted (bytewise) order, so equal trees give equal plans
//!   and reports whatever order their files were created in. Reports list rules in file order
//!   and paths sorted within each rule.
//! - Bytes are the apparent size (`st_size`) of removed regular files; see [`Counts::bytes`].
//! - After deciding, the plan resolves every symlink that stays (inside the root, as a chroot
//!   would) and lists in [`Report::dangling`] those whose target goes away, so a missing keep
//!   rule shows up before the image boots.
//!
//! File names need not be UTF-8: globs match them unit by unit (a character, or a byte that
//! is not part of valid UTF-8), and reports show such bytes as `\xNN`.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod apply;
mod config;
mod glob;
mod path;
mod plan;
mod report;

pub use apply::{apply, ApplyError};
pub use config::{Config, ConfigError, EntryKind, Rule, DEFAULT_CONFIG};
pub use glob::{Glob, GlobError, GlobErrorKind};
pub use plan::{plan, Entry, Plan, PlanError};
pub use report::{Counts, DanglingLink, Report, RuleReport};
