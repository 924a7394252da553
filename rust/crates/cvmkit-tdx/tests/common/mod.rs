//! Helpers shared by the integration tests: test data and input paths, hashing, JSON.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../..")
}

/// The repository's `testdata/` (real event logs and quotes, see testdata/PROVENANCE.md).
pub fn fixtures() -> PathBuf {
    cvmkit_testutil::testdata_dir()
}

/// The bytes of `testdata/<rel>`.
pub fn fixture(rel: &str) -> Vec<u8> {
    cvmkit_testutil::read_testdata(rel)
}

pub fn sha256_hex(data: &[u8]) -> String {
    cvmkit_tdx::hex(&Sha256::digest(data))
}

pub fn digest(hex: &str) -> cvmkit_tdx::Digest384 {
    cvmkit_tdx::parse_digest(hex).unwrap_or_else(|| panic!("not a SHA-384 hex value: {hex}"))
}

/// The example inputs: each key of `.cache/inputs/inputs.env` (or `$CVMKIT_INPUTS_ENV`), with the
/// environment variable of the same name taking precedence, as `cvmkit_testutil::input` reads them.
pub fn inputs() -> BTreeMap<String, PathBuf> {
    let env_file = cvmkit_testutil::inputs_env_file();
    let text = std::fs::read_to_string(&env_file).unwrap_or_default();
    let mut keys: Vec<String> = text
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, _)| k.trim().to_owned())
        .collect();
    keys.extend(["KERNEL", "STUB", "OVMF", "BUSYBOX"].map(String::from));
    let map: BTreeMap<String, PathBuf> = keys
        .into_iter()
        .filter_map(|k| cvmkit_testutil::input_source(&k).map(|(p, _)| (k, p)))
        .collect();
    assert!(
        !map.is_empty(),
        "no example inputs: set KERNEL, STUB, OVMF, BUSYBOX or run scripts/setup.sh (or \
         scripts/fetch-inputs.sh) to write {}",
        env_file.display()
    );
    map
}

/// The input `key` (its environment variable, else inputs.env), checked against `sha256`; a
/// mismatch (e.g. Debian replaced the package in a point release) fails with `regenerate`, the
/// peer command that yields the new expected values.
pub fn pinned_input(key: &str, sha256: &str, regenerate: &str) -> Vec<u8> {
    let path = cvmkit_testutil::input(key);
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

#[allow(unused_imports)] // not every test binary uses it
pub use cvmkit_testutil::unhex;
