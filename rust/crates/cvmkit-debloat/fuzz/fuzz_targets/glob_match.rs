//! Arbitrary text as a glob (`Glob::new`) and paths to match it against (`Glob::matches_path`):
//! the first line is the glob, each further line a path. A glob that compiles is translated
//! here, from the syntax documented on `Glob`, into an anchored regular expression, and both
//! must agree on every path: the linear `*` and `**` matchers against the regex crate's
//! automaton. None of it may panic.
//!
//! Run with `cargo +nightly fuzz run glob_match` from this directory; seed the corpus with a
//! few `glob\npath\n…` files (`printf '/usr/share/doc/**\n/usr/share/doc/a\n' > corpus/glob_match/1`).
#![no_main]

use cvmkit_debloat::Glob;
use libfuzzer_sys::fuzz_target;
use regex::RegexBuilder;

/// `\x{…}`: one literal character, whatever it is.
fn lit(c: char) -> String {
    format!("\\x{{{:x}}}", c as u32)
}

/// The regex of one `[...]` set starting after its `[`; returns it and the rest of the segment.
fn class(mut chars: &[char]) -> (String, &[char]) {
    let negated = matches!(chars.first(), Some('!' | '^'));
    if negated {
        chars = &chars[1..];
    }
    let mut items = String::new();
    let mut first = true;
    loop {
        match chars.first() {
            None => panic!("Glob::new accepted an unclosed set"),
            Some(']') if !first => {
                chars = &chars[1..];
                break;
            }
            _ => {}
        }
        first = false;
        let mut read = || {
            if chars.first() == Some(&'\\') {
                chars = &chars[1..];
            }
            let c = *chars.first().expect("Glob::new accepted an unclosed set");
            chars = &chars[1..];
            c
        };
        let lo = read();
        if chars.first() == Some(&'-') && !matches!(chars.get(1), Some(']') | None) {
            chars = &chars[1..];
            let hi = {
                if chars.first() == Some(&'\\') {
                    chars = &chars[1..];
                }
                let c = *chars.first().expect("Glob::new accepted an unclosed set");
                chars = &chars[1..];
                c
            };
            assert!(lo <= hi, "Glob::new accepted a reversed range");
            items.push_str(&format!("{}-{}", lit(lo), lit(hi)));
        } else {
            items.push_str(&lit(lo));
        }
    }
    // A set never matches the separator: intersect with "not '/'".
    let neg = if negated { "^" } else { "" };
    (format!("[[{neg}{items}]&&[^/]]"), chars)
}

/// The regex of one path component that is not `**`.
fn segment(part: &str) -> String {
    let chars: Vec<char> = part.chars().collect();
    let mut rest = &chars[..];
    let mut out = String::new();
    while let Some((&c, tail)) = rest.split_first() {
        rest = tail;
        match c {
            '*' => out.push_str("[^/]*"),
            '?' => out.push_str("[^/]"),
            '\\' => {
                let (&e, tail) = rest
                    .split_first()
                    .expect("Glob::new accepted a trailing '\\'");
                rest = tail;
                out.push_str(&lit(e));
            }
            '[' => {
                let (re, tail) = class(rest);
                out.push_str(&re);
                rest = tail;
            }
            c => out.push_str(&lit(c)),
        }
    }
    out
}

/// The whole glob as an anchored regex over `/c1/c2/…` (no empty components).
fn to_regex(glob: &str) -> String {
    let parts: Vec<&str> = glob[1..].split('/').collect();
    let mut re = String::from("^");
    for (i, part) in parts.iter().enumerate() {
        if *part == "**" {
            // In the middle: any number of components; last: at least one.
            re.push_str(if i + 1 == parts.len() {
                "(?:/[^/]+)+"
            } else {
                "(?:/[^/]+)*"
            });
        } else {
            re.push('/');
            re.push_str(&segment(part));
        }
    }
    re.push('$');
    re
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut lines = text.split('\n');
    let Some(glob_text) = lines.next() else {
        return;
    };
    let Ok(glob) = Glob::new(glob_text) else {
        return;
    };
    assert_eq!(glob.as_str(), glob_text);
    let Ok(re) = RegexBuilder::new(&to_regex(glob_text))
        .size_limit(1 << 24)
        .build()
    else {
        return;
    };
    for path in lines.take(32) {
        let normal: String = path
            .split('/')
            .filter(|c| !c.is_empty())
            .map(|c| format!("/{c}"))
            .collect();
        assert_eq!(
            glob.matches_path(path),
            re.is_match(&normal),
            "glob {glob_text:?} path {path:?} regex {}",
            re.as_str()
        );
    }
});
