//! Fetching an app and verifying its SHA-256 before it can run.
//!
//! The bytes are streamed into `DEST.part`, created fresh with mode `0600` (never executable;
//! the umask can only remove bits), hashed as they are written, and synced. Only if the digest
//! equals the manifest's is the file made `0755` and renamed to `DEST`; on a mismatch (or any
//! error) `DEST.part` is removed, so a file with the wrong content never carries an execute bit
//! and is never at the path that gets executed. `file://` apps are copied the same way rather
//! than run in place, so a later change to the source cannot reach the verified copy.
//!
//! [`verify_file`] re-checks a file against its digest; the supervisor calls it before every
//! (re)start.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use crate::http::{Client, HttpError};
use crate::manifest::{AppSource, Manifest, Sha256Digest};

/// Why an app was not made runnable. Messages are one line.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    /// The content's digest differs from the manifest's; the app was refused.
    #[error("sha256 mismatch for {url}: manifest says {expected}, content is {actual}; refusing to run it")]
    Mismatch {
        /// The app URL.
        url: String,
        /// The manifest's digest.
        expected: Sha256Digest,
        /// The content's digest.
        actual: Sha256Digest,
    },
    /// The HTTP request failed.
    #[error(transparent)]
    Http(#[from] HttpError),
    /// The server answered with a status other than 200.
    #[error("GET {url} answered HTTP status {status}")]
    Status {
        /// The app URL.
        url: String,
        /// The status.
        status: u16,
    },
    /// The app is larger than allowed.
    #[error("{url} is larger than the limit of {limit} bytes")]
    TooLarge {
        /// The app URL.
        url: String,
        /// The limit.
        limit: u64,
    },
    /// Reading the source or writing the destination failed.
    #[error("{what} {path}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The path concerned.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

/// Fetches apps: HTTP(S) settings (timeouts, TLS roots) and the size limit.
#[derive(Debug, Clone)]
pub struct Fetcher {
    /// Client for `http(s)://` apps (its `max_body` is not used; see [`Fetcher::max_size`]).
    pub client: Client,
    /// Largest app accepted, in bytes.
    pub max_size: u64,
}

impl Default for Fetcher {
    fn default() -> Self {
        Self {
            client: Client {
                connect_timeout: std::time::Duration::from_secs(5),
                timeout: std::time::Duration::from_secs(600),
                max_body: 0,
                tls: Default::default(),
            },
            max_size: 2 << 30,
        }
    }
}

fn io<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> FetchError + 'a {
    move |source| FetchError::Io { what, path: path.to_path_buf(), source }
}

/// The staging path for `dest`: `dest` + `.part`.
pub fn staging_path(dest: &Path) -> PathBuf {
    let mut s = dest.as_os_str().to_owned();
    s.push(".part");
    PathBuf::from(s)
}

impl Fetcher {
    /// Fetches `m.app` to `dest` if and only if its SHA-256 is `m.sha256` (see the module docs).
    pub fn fetch_verified(&self, m: &Manifest, dest: &Path) -> Result<(), FetchError> {
        let part = staging_path(dest);
        let result = self.fetch_to(m, &part).and_then(|actual| {
            if actual != m.sha256 {
                return Err(FetchError::Mismatch { url: m.app_url.clone(), expected: m.sha256, actual });
            }
            std::fs::set_permissions(&part, std::fs::Permissions::from_mode(0o755)).map_err(io("chmod", &part))?;
            std::fs::rename(&part, dest).map_err(io("rename to", dest))?;
            Ok(())
        });
        if result.is_err() {
            let _ = std::fs::remove_file(&part);
        }
        result
    }

    /// Streams the app into `part` (mode 0600), returning the digest of what was written.
    fn fetch_to(&self, m: &Manifest, part: &Path) -> Result<Sha256Digest, FetchError> {
        match std::fs::remove_file(part) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io("remove stale", part)(e)),
            _ => {}
        }
        let mut out =
            OpenOptions::new().write(true).create_new(true).mode(0o600).open(part).map_err(io("create", part))?;
        let digest = match &m.app {
            AppSource::File(path) => {
                let mut src = File::open(path).map_err(io("open", path))?;
                self.copy(&m.app_url, &mut src, &mut out, part)?
            }
            AppSource::Http(url) | AppSource::Https(url) => {
                let mut resp = self.client.get_following(url, &[], 5)?;
                if resp.status != 200 {
                    return Err(FetchError::Status { url: url.clone(), status: resp.status });
                }
                self.copy(url, &mut resp.body, &mut out, part).map_err(|e| match e {
                    FetchError::Io { source, .. } if source.kind() != std::io::ErrorKind::Other => {
                        FetchError::Http(self.client.io_error(url, source))
                    }
                    e => e,
                })?
            }
        };
        out.sync_all().map_err(io("sync", part))?;
        Ok(digest)
    }

    fn copy(&self, url: &str, src: &mut dyn Read, out: &mut File, part: &Path) -> Result<Sha256Digest, FetchError> {
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 64 << 10];
        let mut total = 0u64;
        loop {
            let n = match src.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(FetchError::Io { what: "read", path: PathBuf::from(url), source: e }),
            };
            total += n as u64;
            if total > self.max_size {
                return Err(FetchError::TooLarge { url: url.to_string(), limit: self.max_size });
            }
            hasher.update(&buf[..n]);
            out.write_all(&buf[..n]).map_err(io("write", part))?;
        }
        Ok(Sha256Digest(hasher.finalize().into()))
    }
}

/// Hashes the file at `path`.
pub fn sha256_file(path: &Path) -> std::io::Result<Sha256Digest> {
    let mut f = File::open(path)?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut f, &mut hasher)?;
    Ok(Sha256Digest(hasher.finalize().into()))
}

/// Checks that the file at `path` still has digest `expected`.
pub fn verify_file(path: &Path, expected: &Sha256Digest) -> Result<(), FetchError> {
    let actual = sha256_file(path).map_err(io("hash", path))?;
    if actual != *expected {
        return Err(FetchError::Mismatch { url: format!("file://{}", path.display()), expected: *expected, actual });
    }
    Ok(())
}
