//! Glob patterns matched against root-relative paths, one path component at a time.

use std::fmt;

/// One unit of a file name as the matcher sees it: a Unicode scalar value, or, for a byte that is
/// not part of valid UTF-8, `RAW_BYTE + byte`.
///
/// Matching on scalars (not bytes) makes `?` match one character of `naïve`; keeping stray bytes
/// as their own units (rather than U+FFFD) keeps two distinct non-UTF-8 names distinct, and lets
/// `*` and `?` still match them.
pub(crate) type Unit = u32;
const RAW_BYTE: Unit = 0x11_0000;

/// Splits a file name into [`Unit`]s.
pub(crate) fn units(mut name: &[u8]) -> Vec<Unit> {
    let mut out = Vec::with_capacity(name.len());
    while !name.is_empty() {
        match std::str::from_utf8(name) {
            Ok(s) => {
                out.extend(s.chars().map(Unit::from));
                break;
            }
            Err(e) => {
                let (good, rest) = name.split_at(e.valid_up_to());
                // `valid_up_to` bytes are valid UTF-8 by the contract of Utf8Error.
                out.extend(String::from_utf8_lossy(good).chars().map(Unit::from));
                let bad = e.error_len().unwrap_or(rest.len());
                out.extend(rest[..bad].iter().map(|&b| RAW_BYTE + Unit::from(b)));
                name = &rest[bad..];
            }
        }
    }
    out
}

/// A compiled glob such as `/usr/share/doc/*/copyright` or `/**/__pycache__`.
///
/// The syntax:
///
/// - A glob starts with `/`, which stands for the root of the tree, and is matched against the
///   whole path of an entry (`/usr/share/doc/bash`), never a part of it.
/// - `*` matches any run of characters within one path component, including none and including
///   a leading `.`; `?` matches exactly one character; neither matches `/`.
/// - `[abc]`, `[a-z]`, `[!a-z]` (or `[^a-z]`) match one character from (or not from) the set;
///   a `]` right after `[` or `[!` is literal, as is a `-` first or last.
/// - `**` as a whole component matches any number of components: `/**/x` matches `/x` and
///   `/a/b/x`, `/a/**/b` matches `/a/b` and `/a/x/y/b`. A trailing `/**` matches everything
///   *below* a directory but not the directory itself, so `/var/cache/**` empties `/var/cache`
///   and keeps the directory.
/// - `\` makes the next character literal (`\*`, `\[`, `\{`). In a TOML basic string that
///   backslash must itself be doubled; a literal string (`'/a/\*'`) needs no doubling.
///
/// Rejected, so that a typo cannot silently match nothing or everything: a glob not starting
/// with `/`, the glob `/` itself, empty components (`//`, a trailing `/`), `.` and `..`
/// components, `**` mixed with other characters in one component, `{a,b}` alternation, an
/// unclosed `[`, a reversed range `[z-a]` and a trailing `\`.
///
/// ```
/// use cvmkit_debloat::Glob;
///
/// let g = Glob::new("/usr/share/doc/*/copyright").unwrap();
/// assert!(g.matches_path("/usr/share/doc/bash/copyright"));
/// assert!(!g.matches_path("/usr/share/doc/bash/examples/copyright"));
///
/// let g = Glob::new("/**/*.a").unwrap();
/// assert!(g.matches_path("/usr/lib/x86_64-linux-gnu/libc_nonshared.a"));
///
/// let err = Glob::new("/usr/[a-").unwrap_err();
/// assert_eq!(err.position, 6);
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Glob {
    text: String,
    components: Vec<Component>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Component {
    /// `**` before the last component: zero or more components.
    Globstar,
    /// `**` as the last component: one or more components.
    TrailingGlobstar,
    Segment(Vec<Token>),
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Token {
    Unit(Unit),
    Any,
    Star,
    Class {
        negated: bool,
        ranges: Vec<(Unit, Unit)>,
    },
}

/// Why a glob was rejected, and where.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{kind} (at character {position})")]
#[non_exhaustive]
pub struct GlobError {
    /// 1-based position, in characters, of the offending character in the glob.
    pub position: usize,
    /// What is wrong.
    pub kind: GlobErrorKind,
}

/// The kinds of [`GlobError`]; each message says how to fix the glob.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GlobErrorKind {
    /// The glob does not start with `/`.
    #[error("globs are matched from the root and must start with '/'; write '/**/…' to match at any depth")]
    NotAbsolute,
    /// The glob is `/`, the root itself, which is never removed.
    #[error(
        "'/' is the root itself, which is never removed; write '/**' to match everything below it"
    )]
    Root,
    /// `//` or a trailing `/`.
    #[error("empty path component (a doubled or trailing '/'); remove the extra '/'")]
    EmptyComponent,
    /// A `.` or `..` component.
    #[error("'.' and '..' components are not allowed: globs cannot leave the root; write the path without them")]
    DotComponent,
    /// `**` next to other characters in one component.
    #[error("'**' must be a whole path component, as in '/a/**/b'; use '*' within a component")]
    BadGlobstar,
    /// `[` without its `]`.
    #[error("unclosed '['; close the set with ']' or write '\\[' for a literal '['")]
    UnclosedClass,
    /// A range such as `[z-a]`.
    #[error("range in '[...]' is reversed; write the smaller character first")]
    ReversedRange,
    /// A `\` with nothing after it.
    #[error("'\\' at the end escapes nothing; write '\\\\' for a literal backslash")]
    TrailingEscape,
    /// `{` or `}`, which other glob dialects use for alternation.
    #[error("'{{a,b}}' alternation is not supported; list one glob per alternative, or write '\\{{' and '\\}}' for literal braces")]
    Braces,
}

impl Glob {
    /// Compiles `text`; see the type's documentation for the syntax.
    pub fn new(text: &str) -> Result<Glob, GlobError> {
        let err = |position: usize, kind| Err(GlobError { position, kind });
        let Some(rest) = text.strip_prefix('/') else {
            return err(1, GlobErrorKind::NotAbsolute);
        };
        if rest.is_empty() {
            return err(1, GlobErrorKind::Root);
        }
        let mut components = Vec::new();
        // Character position (1-based) of the first character of the current component.
        let mut start: usize = 2;
        let parts: Vec<&str> = rest.split('/').collect();
        for (i, part) in parts.iter().enumerate() {
            let last = i + 1 == parts.len();
            match *part {
                "" => {
                    return err(
                        start.saturating_sub(1).max(1),
                        GlobErrorKind::EmptyComponent,
                    )
                }
                "." | ".." => return err(start, GlobErrorKind::DotComponent),
                "**" => {
                    // `/**/**/x` means the same as `/**/x`; collapsing keeps matching linear.
                    if components.last() != Some(&Component::Globstar) {
                        components.push(Component::Globstar);
                    }
                    if last {
                        components.pop();
                        components.push(Component::TrailingGlobstar);
                    }
                }
                _ => components.push(Component::Segment(parse_segment(part, start)?)),
            }
            start += part.chars().count() + 1;
        }
        Ok(Glob {
            text: text.to_owned(),
            components,
        })
    }

    /// The glob as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether the glob matches `path`, a `/`-separated path relative to the root with a leading
    /// `/` (`/usr/share/doc`).
    pub fn matches_path(&self, path: &str) -> bool {
        let comps: Vec<Vec<Unit>> = path
            .split('/')
            .filter(|c| !c.is_empty())
            .map(|c| units(c.as_bytes()))
            .collect();
        let refs: Vec<&[Unit]> = comps.iter().map(Vec::as_slice).collect();
        self.matches(&refs)
    }

    /// Whether the glob matches the path made of `components` (each already split into units).
    pub(crate) fn matches(&self, components: &[&[Unit]]) -> bool {
        match_components(&self.components, components)
    }
}

impl fmt::Debug for Glob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Glob({:?})", self.text)
    }
}

impl fmt::Display for Glob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

fn parse_segment(part: &str, start: usize) -> Result<Vec<Token>, GlobError> {
    let err = |position: usize, kind| Err(GlobError { position, kind });
    let chars: Vec<char> = part.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let pos = start + i;
        match chars[i] {
            '*' => {
                if chars.get(i + 1) == Some(&'*') {
                    return err(pos, GlobErrorKind::BadGlobstar);
                }
                tokens.push(Token::Star);
            }
            '?' => tokens.push(Token::Any),
            '{' | '}' => return err(pos, GlobErrorKind::Braces),
            '\\' => {
                i += 1;
                match chars.get(i) {
                    Some(&c) => tokens.push(Token::Unit(Unit::from(c))),
                    None => return err(pos, GlobErrorKind::TrailingEscape),
                }
            }
            '[' => {
                let (token, next) = parse_class(&chars, i, start)?;
                tokens.push(token);
                i = next;
                continue;
            }
            c => tokens.push(Token::Unit(Unit::from(c))),
        }
        i += 1;
    }
    Ok(tokens)
}

/// Parses the set starting at `chars[open] == '['`; returns it and the index after its `]`.
fn parse_class(chars: &[char], open: usize, start: usize) -> Result<(Token, usize), GlobError> {
    let unclosed = GlobError {
        position: start + open,
        kind: GlobErrorKind::UnclosedClass,
    };
    let mut i = open + 1;
    let negated = matches!(chars.get(i), Some('!' | '^'));
    if negated {
        i += 1;
    }
    let mut first = true;
    // Reads one (possibly escaped) character of the set.
    let read = |i: &mut usize| -> Result<char, GlobError> {
        if chars.get(*i) == Some(&'\\') {
            *i += 1;
        }
        let c = chars.get(*i).copied().ok_or_else(|| unclosed.clone())?;
        *i += 1;
        Ok(c)
    };
    let mut ranges = Vec::new();
    loop {
        let at = i;
        match chars.get(i) {
            None => return Err(unclosed),
            Some(']') if !first => {
                i += 1;
                break;
            }
            _ => {}
        }
        first = false;
        let lo = read(&mut i)?;
        // `a-z` is a range unless the `-` is the last character before `]`.
        if chars.get(i) == Some(&'-') && !matches!(chars.get(i + 1), Some(']') | None) {
            i += 1;
            let hi = read(&mut i)?;
            if hi < lo {
                return Err(GlobError {
                    position: start + at,
                    kind: GlobErrorKind::ReversedRange,
                });
            }
            ranges.push((Unit::from(lo), Unit::from(hi)));
        } else {
            ranges.push((Unit::from(lo), Unit::from(lo)));
        }
    }
    Ok((Token::Class { negated, ranges }, i))
}

/// Matches components the way [`match_segment`] matches units: every segment consumes exactly
/// one component and `**` any number, so backtracking to the most recent `**` only is enough.
/// Linear in the path for each `**` (the recursive form was exponential: seven `**` over a
/// 40-deep path took seconds per entry).
fn match_components(pattern: &[Component], path: &[&[Unit]]) -> bool {
    let (mut p, mut n) = (0, 0);
    let mut backtrack: Option<(usize, usize)> = None;
    while n < path.len() {
        match pattern.get(p) {
            Some(Component::Globstar) => {
                backtrack = Some((p, n));
                p += 1;
                continue;
            }
            // Only ever last (see `Glob::new`): one or more components, and one is left.
            Some(Component::TrailingGlobstar) => return true,
            Some(Component::Segment(tokens)) if match_segment(tokens, path[n]) => {
                p += 1;
                n += 1;
                continue;
            }
            _ => {}
        }
        match backtrack {
            Some((bp, bn)) => {
                p = bp + 1;
                n = bn + 1;
                backtrack = Some((bp, bn + 1));
            }
            None => return false,
        }
    }
    pattern[p..].iter().all(|c| *c == Component::Globstar)
}

/// Wildcard match of one component. Every token but `*` consumes exactly one unit, so
/// backtracking to the most recent `*` only is enough (the classic linear-space algorithm).
fn match_segment(tokens: &[Token], name: &[Unit]) -> bool {
    let (mut t, mut n) = (0, 0);
    let mut backtrack: Option<(usize, usize)> = None;
    while n < name.len() {
        match tokens.get(t) {
            Some(Token::Star) => {
                backtrack = Some((t, n));
                t += 1;
                continue;
            }
            Some(tok) if one(tok, name[n]) => {
                t += 1;
                n += 1;
                continue;
            }
            _ => {}
        }
        match backtrack {
            Some((bt, bn)) => {
                t = bt + 1;
                n = bn + 1;
                backtrack = Some((bt, bn + 1));
            }
            None => return false,
        }
    }
    tokens[t..].iter().all(|tok| *tok == Token::Star)
}

fn one(token: &Token, u: Unit) -> bool {
    match token {
        Token::Unit(c) => *c == u,
        Token::Any => true,
        Token::Star => unreachable!("handled by match_segment"),
        Token::Class { negated, ranges } => {
            ranges.iter().any(|&(lo, hi)| lo <= u && u <= hi) != *negated
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(glob: &str, path: &str) -> bool {
        Glob::new(glob).unwrap().matches_path(path)
    }

    #[test]
    fn wildcards() {
        assert!(m("/usr/share/doc", "/usr/share/doc"));
        assert!(!m("/usr/share/doc", "/usr/share/doc/x"));
        assert!(!m("/usr/share/doc", "/usr/share"));
        assert!(m("/a/*", "/a/.hidden"));
        assert!(m("/a/*", "/a/x"));
        assert!(!m("/a/*", "/a/x/y"));
        assert!(m("/a/x*y", "/a/xy"));
        assert!(m("/a/x*y", "/a/x-long-y"));
        assert!(!m("/a/x*y", "/a/x-long-yz"));
        assert!(m("/a/*.gz", "/a/b.tar.gz"));
        assert!(m("/a/?", "/a/é"));
        assert!(!m("/a/?", "/a/ab"));
        assert!(m("/a/*a*b*c", "/a/xaybzc"));
        assert!(!m("/a/*a*b*c", "/a/xaybzcd"));
    }

    #[test]
    fn classes() {
        assert!(m("/z/[a-c]", "/z/b"));
        assert!(!m("/z/[a-c]", "/z/d"));
        assert!(m("/z/[!a-c]", "/z/d"));
        assert!(m("/z/[^a-c]", "/z/d"));
        assert!(m("/z/[]]", "/z/]"));
        assert!(m("/z/[!]]", "/z/a"));
        assert!(m("/z/[a-]", "/z/-"));
        assert!(m("/z/[\\]]", "/z/]"));
        assert!(m("/z/libc[.-]*", "/z/libc-2.36.so"));
        assert!(m("/z/LICEN[CS]E*", "/z/LICENSE.txt"));
    }

    #[test]
    fn globstar() {
        assert!(m("/**/x", "/x"));
        assert!(m("/**/x", "/a/b/x"));
        assert!(!m("/**/x", "/a/b/x/y"));
        assert!(m("/a/**/b", "/a/b"));
        assert!(m("/a/**/b", "/a/x/y/b"));
        assert!(m("/a/**", "/a/x"));
        assert!(m("/a/**", "/a/x/y"));
        assert!(!m("/a/**", "/a"));
        assert!(m("/**", "/a"));
        assert!(m("/**/**/*.a", "/usr/lib/libc.a"));
        assert!(m("/**/*.a", "/libc.a"));
    }

    /// The old recursive matcher, kept as the oracle of the linear one.
    fn reference(pattern: &[Component], path: &[&[Unit]]) -> bool {
        match pattern.split_first() {
            None => path.is_empty(),
            Some((Component::Globstar, rest)) => (0..=path.len()).any(|skip| reference(rest, &path[skip..])),
            Some((Component::TrailingGlobstar, _)) => !path.is_empty(),
            Some((Component::Segment(tokens), rest)) => match path.split_first() {
                Some((first, tail)) => match_segment(tokens, first) && reference(rest, tail),
                None => false,
            },
        }
    }

    #[test]
    fn globstar_matching_equals_the_recursive_definition() {
        // Every glob of up to 5 components over {a, b, *, **} (`**` last becomes the trailing
        // form) against every path of up to 6 components over {a, b, c}.
        let parts = ["a", "b", "*", "**"];
        let mut globs = vec![];
        for len in 1..=5u32 {
            for mut code in 0..4usize.pow(len) {
                let mut g = String::new();
                for _ in 0..len {
                    g.push('/');
                    g.push_str(parts[code % 4]);
                    code /= 4;
                }
                globs.push(Glob::new(&g).unwrap());
            }
        }
        let mut paths: Vec<Vec<Vec<Unit>>> = vec![vec![]];
        for len in 1..=6u32 {
            for mut code in 0..3usize.pow(len) {
                let mut p = vec![];
                for _ in 0..len {
                    p.push(units(["a", "b", "c"][code % 3].as_bytes()));
                    code /= 3;
                }
                paths.push(p);
            }
        }
        for g in &globs {
            for p in &paths {
                let comps: Vec<&[Unit]> = p.iter().map(Vec::as_slice).collect();
                assert_eq!(g.matches(&comps), reference(&g.components, &comps), "{g} {p:?}");
            }
        }
    }

    /// Seven `**` over a 40-deep path that does not match: the recursive form tried ~40^7/7!
    /// splits (over 20 s); this is one pass per `**`.
    #[test]
    fn many_globstars_over_a_deep_path_do_not_explode() {
        let g = Glob::new("/**/a/**/b/**/c/**/d/**/e/**/f/**/nomatch").unwrap();
        let path: String = (0..40).map(|i| format!("/{}", ["a", "b", "c", "d", "e", "f"][i % 6])).collect();
        assert!(!g.matches_path(&path));
        assert!(Glob::new("/**/a/**/b/**/c/**/d/**/e/**/f/**").unwrap().matches_path(&path));
    }

    #[test]
    fn escapes_and_raw_bytes() {
        assert!(m("/a/\\*", "/a/*"));
        assert!(!m("/a/\\*", "/a/b"));
        let g = Glob::new("/a/*").unwrap();
        let raw = units(b"\xff\xfename");
        assert_eq!(raw[0], RAW_BYTE + 0xff);
        assert!(g.matches(&[&units(b"a"), &raw]));
        let g = Glob::new("/a/??name").unwrap();
        assert!(g.matches(&[&units(b"a"), &raw]));
        assert_eq!(units("é\u{80}".as_bytes()), vec![0xe9, 0x80]);
        assert_ne!(units(b"\xc3"), units(b"\xc4"));
    }

    #[test]
    fn errors() {
        let e = |g: &str| {
            let e = Glob::new(g).unwrap_err();
            (e.position, e.kind)
        };
        use GlobErrorKind::*;
        assert_eq!(e("usr/share"), (1, NotAbsolute));
        assert_eq!(e("**/*.a"), (1, NotAbsolute));
        assert_eq!(e("/"), (1, Root));
        assert_eq!(e("/usr//doc"), (5, EmptyComponent));
        assert_eq!(e("/usr/"), (5, EmptyComponent));
        assert_eq!(e("/usr/../etc"), (6, DotComponent));
        assert_eq!(e("/./etc"), (2, DotComponent));
        assert_eq!(e("/usr/**x"), (6, BadGlobstar));
        assert_eq!(e("/usr/[ab"), (6, UnclosedClass));
        assert_eq!(e("/usr/[a/b]"), (6, UnclosedClass));
        assert_eq!(e("/usr/[z-a]"), (7, ReversedRange));
        assert_eq!(e("/usr/a\\"), (7, TrailingEscape));
        assert_eq!(e("/usr/{a,b}"), (6, Braces));
        assert_eq!(e("/usr/é/{a,b}"), (8, Braces));
    }
}
