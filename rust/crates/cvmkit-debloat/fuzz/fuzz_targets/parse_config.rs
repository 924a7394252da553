//! Arbitrary text as a debloat config (`Config::parse`: TOML, then the rules and their globs).
//! An error must format (its line is computed from a span); a config that parses must hold what
//! its API promises: every rule applies to some kind of entry, every glob re-compiles from its
//! text to the same glob, and matching never panics. None of it may panic.
//!
//! Run with `cargo +nightly fuzz run parse_config` from this directory; seed the corpus with the
//! built-in config (`mkdir -p corpus/parse_config && cp ../default.toml corpus/parse_config/`).
#![no_main]

use cvmkit_debloat::{Config, Glob};
use libfuzzer_sys::fuzz_target;

const PATHS: [&str; 8] = [
    "/",
    "/usr",
    "/usr/share/doc/bash/copyright",
    "/usr/share/locale/de/LC_MESSAGES/x.mo",
    "/var/cache/apt/archives/partial",
    "/usr/lib/python3/dist-packages/__pycache__/a.pyc",
    "/a/b/c/d/e/f/g/h",
    "/naïve/[x]/*?",
];

fuzz_target!(|data: &[u8]| {
    // Configs are read with read_to_string: only UTF-8 reaches the parser.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let config = match Config::parse(text, "fuzz.toml") {
        Ok(c) => c,
        Err(e) => {
            let message = e.to_string();
            assert!(message.starts_with("fuzz.toml:"), "{message}");
            return;
        }
    };
    for rule in config.remove_rules().iter().chain(config.keep_rules()) {
        assert!(!rule.types().is_empty());
        assert!(!rule.paths.is_empty());
        for glob in &rule.paths {
            assert_eq!(Glob::new(glob.as_str()).as_ref(), Ok(glob));
            for p in PATHS {
                let _ = glob.matches_path(p);
            }
        }
    }
});
