//! The debloat config: a TOML file of named remove and keep rules.

use std::borrow::Cow;
use std::fmt;

use serde::{Deserialize, Serialize};
use toml::de::{DeTable, DeValue};
use toml::Spanned;

use crate::glob::{Glob, GlobError};

/// The built-in config, as text: what [`Config::default_config`] parses.
pub const DEFAULT_CONFIG: &str = include_str!("../default.toml");

/// The kind of a directory entry, as `lstat` reports it (symlinks are never followed).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryKind {
    /// A regular file (`"file"` in a config's `types`).
    File,
    /// A directory (`"dir"`).
    Dir,
    /// A symbolic link (`"link"`).
    Link,
    /// Anything else: a device node, FIFO or socket (`"other"`).
    Other,
}

impl EntryKind {
    const ALL: [EntryKind; 4] = [
        EntryKind::File,
        EntryKind::Dir,
        EntryKind::Link,
        EntryKind::Other,
    ];

    /// The name used in configs and reports: `file`, `dir`, `link` or `other`.
    pub fn as_str(self) -> &'static str {
        match self {
            EntryKind::File => "file",
            EntryKind::Dir => "dir",
            EntryKind::Link => "link",
            EntryKind::Other => "other",
        }
    }

    fn bit(self) -> u8 {
        1 << self as u8
    }
}

impl fmt::Display for EntryKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One named rule: a remove rule (`[[remove]]`) or a keep rule (`[[keep]]`).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Rule {
    /// Unique among all the rules of a config; the report is keyed by it.
    pub name: String,
    /// Why the rule exists; shown to people, never interpreted.
    pub comment: Option<String>,
    /// The globs; an entry matching any of them matches the rule.
    pub paths: Vec<Glob>,
    /// 1-based line of the rule's `[[remove]]` or `[[keep]]` header.
    pub line: usize,
    kinds: u8,
}

impl Rule {
    /// Whether the rule's `types` admit entries of `kind` (all kinds when `types` is absent).
    pub fn applies_to(&self, kind: EntryKind) -> bool {
        self.kinds & kind.bit() != 0
    }

    /// The kinds of entry the rule's globs may match, in the order file, dir, link, other.
    pub fn types(&self) -> Vec<EntryKind> {
        EntryKind::ALL
            .into_iter()
            .filter(|k| self.applies_to(*k))
            .collect()
    }

    pub(crate) fn matches(&self, kind: EntryKind, path: &[&[crate::glob::Unit]]) -> bool {
        self.applies_to(kind) && self.paths.iter().any(|g| g.matches(path))
    }
}

/// A parsed debloat config; see the [crate documentation](crate) for the format.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    name: String,
    remove: Vec<Rule>,
    keep: Vec<Rule>,
}

/// Why a config was rejected. Every message starts with `FILE:LINE:` and says how to fix it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// Not valid TOML.
    #[error("{file}:{line}: invalid TOML: {message}")]
    Syntax {
        /// The config's name, as given to [`Config::parse`].
        file: String,
        /// 1-based line.
        line: usize,
        /// The TOML parser's message, on one line.
        message: String,
    },
    /// A key the format does not have (a typo, usually).
    #[error("{file}:{line}: unknown key '{key}' in {table}; expected {expected}")]
    UnknownKey {
        /// The config's name.
        file: String,
        /// 1-based line.
        line: usize,
        /// The key as written.
        key: String,
        /// Where it was found: `the top level` or `[[remove]] 'docs'`.
        table: String,
        /// The keys allowed there.
        expected: &'static str,
    },
    /// A value of the wrong TOML type.
    #[error("{file}:{line}: '{key}' must be {expected}, not {found}")]
    WrongType {
        /// The config's name.
        file: String,
        /// 1-based line.
        line: usize,
        /// The key whose value is wrong.
        key: String,
        /// What it must be, with an example.
        expected: &'static str,
        /// The TOML type found.
        found: &'static str,
    },
    /// A required key is absent.
    #[error("{file}:{line}: {table} has no '{key}'; add {example}")]
    MissingKey {
        /// The config's name.
        file: String,
        /// 1-based line of the table's header.
        line: usize,
        /// `[[remove]]` or `[[keep]]`, with the rule's name when known.
        table: String,
        /// The missing key.
        key: &'static str,
        /// A line that would fix it.
        example: &'static str,
    },
    /// A rule's name is empty or has characters that would be awkward on a command line.
    #[error("{file}:{line}: bad rule name '{name}'; use letters, digits, '-', '_' and '.' only")]
    BadName {
        /// The config's name.
        file: String,
        /// 1-based line.
        line: usize,
        /// The name as written.
        name: String,
    },
    /// Two rules share a name.
    #[error("{file}:{line}: rule name '{name}' is already used on line {first_line}; rename one of them")]
    DuplicateName {
        /// The config's name.
        file: String,
        /// 1-based line of the second use.
        line: usize,
        /// The name.
        name: String,
        /// 1-based line of the first use.
        first_line: usize,
    },
    /// A rule's `paths` is empty.
    #[error("{file}:{line}: rule '{rule}' has an empty 'paths'; list at least one glob or delete the rule")]
    EmptyPaths {
        /// The config's name.
        file: String,
        /// 1-based line.
        line: usize,
        /// The rule.
        rule: String,
    },
    /// A glob that does not compile.
    #[error("{file}:{line}: bad glob '{glob}' in rule '{rule}': {reason}")]
    Glob {
        /// The config's name.
        file: String,
        /// 1-based line of the glob.
        line: usize,
        /// The rule.
        rule: String,
        /// The glob as written.
        glob: String,
        /// What is wrong and where.
        reason: GlobError,
    },
    /// An entry of `types` that is not a kind of entry.
    #[error("{file}:{line}: unknown type '{value}' in 'types'; expected \"file\", \"dir\", \"link\" or \"other\"")]
    UnknownType {
        /// The config's name.
        file: String,
        /// 1-based line.
        line: usize,
        /// The value as written.
        value: String,
    },
}

const TOP_KEYS: &str = "'remove' or 'keep' (each written as [[remove]] / [[keep]] tables)";
const RULE_KEYS: &str = "'name', 'comment', 'paths' or 'types'";

impl Config {
    /// Parses a config. `name` (usually the file's path) only prefixes error messages.
    ///
    /// ```
    /// let err = cvmkit_debloat::Config::parse(
    ///     "[[remove]]\nname = \"docs\"\nremvoe = [\"/usr/share/doc\"]\n",
    ///     "debloat.toml",
    /// )
    /// .unwrap_err();
    /// assert!(err.to_string().starts_with("debloat.toml:3: unknown key 'remvoe'"));
    /// ```
    pub fn parse(text: &str, name: &str) -> Result<Config, ConfigError> {
        let p = Parser { text, file: name };
        let table = DeTable::parse(text).map_err(|e| ConfigError::Syntax {
            file: name.to_owned(),
            line: p.line(e.span().map_or(0, |s| s.start)),
            message: one_line(e.message()),
        })?;
        let mut config = Config {
            name: name.to_owned(),
            remove: Vec::new(),
            keep: Vec::new(),
        };
        for (key, value) in table.get_ref() {
            let (rules, header) = match key.get_ref().as_ref() {
                "remove" => (&mut config.remove, "[[remove]]"),
                "keep" => (&mut config.keep, "[[keep]]"),
                other => {
                    return Err(ConfigError::UnknownKey {
                        file: name.to_owned(),
                        line: p.line(key.span().start),
                        key: other.to_owned(),
                        table: "the top level".to_owned(),
                        expected: TOP_KEYS,
                    })
                }
            };
            let DeValue::Array(items) = value.get_ref() else {
                return Err(p.wrong_type(
                    key,
                    value,
                    "an array of tables, written as repeated [[remove]] / [[keep]] headers",
                ));
            };
            for item in items.iter() {
                let DeValue::Table(t) = item.get_ref() else {
                    return Err(p.wrong_type(
                        key,
                        item,
                        "an array of tables, written as repeated [[remove]] / [[keep]] headers",
                    ));
                };
                rules.push(p.rule(header, item.span().start, t)?);
            }
        }
        // Names are unique across both kinds so that a report line is never ambiguous.
        let mut seen: Vec<&Rule> = Vec::new();
        let mut all: Vec<&Rule> = config.remove.iter().chain(&config.keep).collect();
        all.sort_by_key(|r| r.line);
        for rule in all {
            if let Some(first) = seen.iter().find(|r| r.name == rule.name) {
                return Err(ConfigError::DuplicateName {
                    file: name.to_owned(),
                    line: rule.line,
                    name: rule.name.clone(),
                    first_line: first.line,
                });
            }
            seen.push(rule);
        }
        Ok(config)
    }

    /// The built-in config ([`DEFAULT_CONFIG`], `default.toml` in this crate): documentation,
    /// translations, caches, logs, development files and other things a confidential VM never
    /// reads at run time. Each rule's `comment` says what it removes and why that is safe.
    pub fn default_config() -> Config {
        Config::parse(DEFAULT_CONFIG, "<built-in default.toml>")
            .expect("the built-in config parses (checked by the crate's tests)")
    }

    /// The name given to [`Config::parse`].
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The remove rules, in file order: an entry belongs to the first one that matches it or
    /// one of its ancestors.
    pub fn remove_rules(&self) -> &[Rule] {
        &self.remove
    }

    /// The keep rules, in file order.
    pub fn keep_rules(&self) -> &[Rule] {
        &self.keep
    }
}

/// Folds a multi-line parser message onto one line.
fn one_line(message: &str) -> String {
    message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

fn type_name(v: &DeValue<'_>) -> &'static str {
    match v {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a date-time",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

struct Parser<'a> {
    text: &'a str,
    file: &'a str,
}

impl Parser<'_> {
    /// 1-based line of a byte offset.
    fn line(&self, offset: usize) -> usize {
        let end = offset.min(self.text.len());
        self.text.as_bytes()[..end]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1
    }

    fn wrong_type(
        &self,
        key: &Spanned<Cow<'_, str>>,
        value: &Spanned<DeValue<'_>>,
        expected: &'static str,
    ) -> ConfigError {
        ConfigError::WrongType {
            file: self.file.to_owned(),
            line: self.line(value.span().start),
            key: key.get_ref().to_string(),
            expected,
            found: type_name(value.get_ref()),
        }
    }

    fn rule(&self, header: &str, start: usize, t: &DeTable<'_>) -> Result<Rule, ConfigError> {
        let line = self.line(start);
        let file = || self.file.to_owned();
        let string = |key, value: &Spanned<DeValue<'_>>, expected| match value.get_ref() {
            DeValue::String(s) => Ok(s.to_string()),
            _ => Err(self.wrong_type(key, value, expected)),
        };
        let mut name = None;
        let mut comment = None;
        let mut paths = None;
        let mut types = None;
        for (key, value) in t {
            match key.get_ref().as_ref() {
                "name" => {
                    let n = string(key, value, "a string, as in name = \"docs\"")?;
                    if n.is_empty()
                        || !n
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
                    {
                        return Err(ConfigError::BadName {
                            file: file(),
                            line: self.line(value.span().start),
                            name: n,
                        });
                    }
                    name = Some(n);
                }
                "comment" => comment = Some(string(key, value, "a string")?),
                "paths" => paths = Some((key, value)),
                "types" => types = Some((key, value)),
                other => {
                    return Err(ConfigError::UnknownKey {
                        file: file(),
                        line: self.line(key.span().start),
                        key: other.to_owned(),
                        table: header.to_owned(),
                        expected: RULE_KEYS,
                    })
                }
            }
        }
        let Some(name) = name else {
            return Err(ConfigError::MissingKey {
                file: file(),
                line,
                table: header.to_owned(),
                key: "name",
                example: "name = \"docs\"",
            });
        };
        let Some((paths_key, paths_value)) = paths else {
            return Err(ConfigError::MissingKey {
                file: file(),
                line,
                table: format!("{header} '{name}'"),
                key: "paths",
                example: "paths = [\"/usr/share/doc\"]",
            });
        };
        let expected_paths = "an array of glob strings, as in paths = [\"/usr/share/doc/**\"]";
        let DeValue::Array(items) = paths_value.get_ref() else {
            return Err(self.wrong_type(paths_key, paths_value, expected_paths));
        };
        if items.is_empty() {
            return Err(ConfigError::EmptyPaths {
                file: file(),
                line: self.line(paths_value.span().start),
                rule: name,
            });
        }
        let mut globs = Vec::with_capacity(items.len());
        for item in items.iter() {
            let DeValue::String(text) = item.get_ref() else {
                return Err(self.wrong_type(paths_key, item, expected_paths));
            };
            let glob = Glob::new(text).map_err(|reason| ConfigError::Glob {
                file: file(),
                line: self.line(item.span().start),
                rule: name.clone(),
                glob: text.to_string(),
                reason,
            })?;
            globs.push(glob);
        }
        let mut kinds = 0;
        match types {
            None => kinds = EntryKind::ALL.iter().fold(0, |k, e| k | e.bit()),
            Some((key, value)) => {
                let expected = "an array of \"file\", \"dir\", \"link\", \"other\", as in types = [\"file\", \"link\"]";
                let DeValue::Array(items) = value.get_ref() else {
                    return Err(self.wrong_type(key, value, expected));
                };
                if items.is_empty() {
                    return Err(self.wrong_type(key, value, expected));
                }
                for item in items.iter() {
                    let DeValue::String(s) = item.get_ref() else {
                        return Err(self.wrong_type(key, item, expected));
                    };
                    let Some(kind) = EntryKind::ALL.into_iter().find(|k| k.as_str() == s) else {
                        return Err(ConfigError::UnknownType {
                            file: file(),
                            line: self.line(item.span().start),
                            value: s.to_string(),
                        });
                    };
                    kinds |= kind.bit();
                }
            }
        }
        Ok(Rule {
            name,
            comment,
            paths: globs,
            line,
            kinds,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        Config::parse(text, "debloat.toml").unwrap_err().to_string()
    }

    #[test]
    fn parses_rules_in_order() {
        let c = Config::parse(
            r#"
# a comment
[[remove]]
name = "docs"
comment = "nobody reads them"
paths = ["/usr/share/doc/**", '/usr/share/info']

[[keep]]
name = "copyright"
paths = ["/usr/share/doc/*/copyright"]

[[remove]]
name = "logs"
paths = ["/var/log/**"]
types = ["file", "link"]
"#,
            "x.toml",
        )
        .unwrap();
        let names: Vec<_> = c.remove_rules().iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["docs", "logs"]);
        assert_eq!(
            c.remove_rules()[0].comment.as_deref(),
            Some("nobody reads them")
        );
        assert_eq!(c.remove_rules()[0].line, 3);
        assert_eq!(c.remove_rules()[0].paths[1].as_str(), "/usr/share/info");
        assert_eq!(c.remove_rules()[0].types().len(), 4);
        assert_eq!(
            c.remove_rules()[1].types(),
            [EntryKind::File, EntryKind::Link]
        );
        assert_eq!(c.keep_rules()[0].name, "copyright");
        assert_eq!(c.keep_rules()[0].line, 8);
        assert_eq!(c.name(), "x.toml");
    }

    #[test]
    fn empty_config_is_valid() {
        let c = Config::parse("# nothing\n", "x").unwrap();
        assert!(c.remove_rules().is_empty() && c.keep_rules().is_empty());
    }

    #[test]
    fn error_messages() {
        let cases: &[(&str, &str)] = &[
            (
                "[[remove]]\nname = \"docs\"\nremvoe = [\"/a\"]\n",
                "debloat.toml:3: unknown key 'remvoe' in [[remove]]; expected 'name', 'comment', 'paths' or 'types'",
            ),
            (
                "[[remove]]\nname = \"docs\"\npaths = [\"/a\"]\n\n[[remvoe]]\nname = \"x\"\n",
                "debloat.toml:5: unknown key 'remvoe' in the top level; expected 'remove' or 'keep' (each written as [[remove]] / [[keep]] tables)",
            ),
            (
                "[[remove]]\nname = \"docs\"\npaths = [\"/usr/[a\"]\n",
                "debloat.toml:3: bad glob '/usr/[a' in rule 'docs': unclosed '['; close the set with ']' or write '\\[' for a literal '[' (at character 6)",
            ),
            (
                "[[keep]]\nname = \"k\"\npaths = [\n  \"/a\",\n  \"../etc\",\n]\n",
                "debloat.toml:5: bad glob '../etc' in rule 'k': globs are matched from the root and must start with '/'; write '/**/…' to match at any depth (at character 1)",
            ),
            (
                "[[remove]]\nname = \"x\"\npaths = [\"/usr/../etc\"]\n",
                "debloat.toml:3: bad glob '/usr/../etc' in rule 'x': '.' and '..' components are not allowed: globs cannot leave the root; write the path without them (at character 6)",
            ),
            (
                "[[remove]]\npaths = [\"/a\"]\n",
                "debloat.toml:1: [[remove]] has no 'name'; add name = \"docs\"",
            ),
            (
                "\n[[remove]]\nname = \"a\"\n",
                "debloat.toml:2: [[remove]] 'a' has no 'paths'; add paths = [\"/usr/share/doc\"]",
            ),
            (
                "[[remove]]\nname = \"a\"\npaths = []\n",
                "debloat.toml:3: rule 'a' has an empty 'paths'; list at least one glob or delete the rule",
            ),
            (
                "[[remove]]\nname = \"a\"\npaths = \"/a\"\n",
                "debloat.toml:3: 'paths' must be an array of glob strings, as in paths = [\"/usr/share/doc/**\"], not a string",
            ),
            (
                "[[remove]]\nname = \"a\"\npaths = [\"/a\"]\n[[keep]]\nname = \"a\"\npaths = [\"/b\"]\n",
                "debloat.toml:4: rule name 'a' is already used on line 1; rename one of them",
            ),
            (
                "[[remove]]\nname = \"has space\"\npaths = [\"/a\"]\n",
                "debloat.toml:2: bad rule name 'has space'; use letters, digits, '-', '_' and '.' only",
            ),
            (
                "[[remove]]\nname = \"a\"\npaths = [\"/a\"]\ntypes = [\"file\", \"fiel\"]\n",
                "debloat.toml:4: unknown type 'fiel' in 'types'; expected \"file\", \"dir\", \"link\" or \"other\"",
            ),
            (
                "[remove]\nname = \"a\"\n",
                "debloat.toml:1: 'remove' must be an array of tables, written as repeated [[remove]] / [[keep]] headers, not a table",
            ),
        ];
        for (text, want) in cases {
            assert_eq!(&err(text), want, "for config:\n{text}");
        }
    }

    #[test]
    fn syntax_error_names_line_on_one_line() {
        let e = err("[[remove]]\nname = \"a\"\npaths = [\"/a\"\n");
        assert!(e.starts_with("debloat.toml:"), "{e}");
        assert!(!e.contains('\n'), "{e}");
        let e = err("[[remove]]\nname = a\n");
        assert!(e.starts_with("debloat.toml:2: invalid TOML:"), "{e}");
    }

    #[test]
    fn default_config_parses() {
        let c = Config::default_config();
        assert!(c.remove_rules().len() >= 10);
        for rule in c.remove_rules().iter().chain(c.keep_rules()) {
            assert!(rule.comment.is_some(), "rule {} has no comment", rule.name);
        }
    }
}
