//! What a cvmkit image is made of, and how it was made.
//!
//! - [`sbom`]: the image's CycloneDX 1.6 SBOM (`sbom.cdx.json`): kernel, systemd-stub, the firmware
//!   the measurements assume, every package whose files are in the initrd (with each file's path
//!   in the image and sha256), from the build's own inputs plus what Nix knows (name, version,
//!   licence, source) where it was given.
//! - [`compare`]: which components two SBOMs differ in, and for a register that does not match
//!   its prediction, which components feed it and what changed in them.
//! - [`statement`]: an in-toto Statement with a SLSA v1 provenance predicate naming the image's
//!   outputs and the flake (locked inputs) that built them. Written unsigned: signing is cosign's
//!   or GitHub's job (README "Provenance").
//!
//! Everything is deterministic: no clock, no host path outside the Nix store, sorted lists.

#![forbid(unsafe_code)]

pub mod compare;
pub mod sbom;
pub mod statement;

use std::io::Read;
use std::path::Path;

use sha2::{Digest, Sha256};

/// Errors name the file and what is wrong with it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read {what} {path}: {source}")]
    Read {
        what: &'static str,
        path: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The SHA-256 of a file, streamed in 64 KiB reads (inputs can be GBs; a buffer that stays in
/// cache is faster to hash than a large one: see cvmkit-snp's `sha256_file`).
pub fn sha256_file(path: &Path, what: &'static str) -> Result<[u8; 32]> {
    let err = |source| Error::Read {
        what,
        path: path.display().to_string(),
        source,
    };
    let mut f = std::fs::File::open(path).map_err(err)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let n = f.read(&mut buf).map_err(err)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().into())
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
