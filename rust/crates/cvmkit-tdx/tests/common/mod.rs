//! Helpers shared by the integration tests: fixture and input paths, hashing, JSON.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../..")
}

/// The shared fixtures directory (`/work/shared/fixtures`, or `$CVMKIT_FIXTURES`).
pub fn fixtures() -> PathBuf {
    std::env::var_os("CVMKIT_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../../shared/fixtures"))
}

pub fn fixture(rel: &str) -> Vec<u8> {
    let p = fixtures().join(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("cannot read fixture {}: {e}", p.display()))
}

pub fn sha256_hex(data: &[u8]) -> String {
    cvmkit_tdx::hex(&Sha256::digest(data))
}

pub fn digest(hex: &str) -> cvmkit_tdx::Digest384 {
    cvmkit_tdx::parse_digest(hex).unwrap_or_else(|| panic!("not a SHA-384 hex value: {hex}"))
}

/// `.cache/inputs/inputs.env` (scripts/fetch-inputs.sh), or `$CVMKIT_INPUTS_ENV`.
pub fn inputs() -> BTreeMap<String, PathBuf> {
    let env_file = std::env::var_os("CVMKIT_INPUTS_ENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".cache/inputs/inputs.env"));
    let text = std::fs::read_to_string(&env_file).unwrap_or_else(|e| {
        panic!(
            "cannot read {}: {e}; run scripts/setup.sh (or scripts/fetch-inputs.sh) first",
            env_file.display()
        )
    });
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), PathBuf::from(v)))
        .collect()
}

/// The input `key` of inputs.env, checked against `sha256`; a mismatch (e.g. Debian replaced
/// the package in a point release) fails with `regenerate`, the peer command that yields the new
/// expected values.
pub fn pinned_input(key: &str, sha256: &str, regenerate: &str) -> Vec<u8> {
    let path = inputs()
        .get(key)
        .cloned()
        .unwrap_or_else(|| panic!("inputs.env has no {key}"));
    let data = std::fs::read(&path)
        .unwrap_or_else(|e| panic!("cannot read {key} {}: {e}", path.display()));
    let got = sha256_hex(&data);
    assert_eq!(
        got,
        sha256,
        "{key} {} changed (sha256 {got}, the expected values belong to {sha256}); \
         recompute them with the peers and update this test: {regenerate}",
        path.display()
    );
    data
}

pub fn json(rel: &str) -> serde_json::Value {
    serde_json::from_slice(&fixture(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

pub fn unhex(s: &str) -> Vec<u8> {
    assert!(s.len() % 2 == 0, "odd hex length");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}
