//! Fetching an app and verifying its SHA-256 before it can run.
//!
//! The bytes are streamed into `DEST.part`, created fresh with mode `0600` (never executable;
//! the umask can only remove bits), hashed as they are written, and synced. Only if the digest
//! equals the manifest's is the file made `0755` and renamed to `DEST`; on a mismatch (or any
//! error) `DEST.part` is removed, so a file with the wrong content never carries an execute bit
//! and is never at the path that gets executed. `file://` apps are copied the same way rather
//! than run in place, so a later change to the source cannot reach the verified copy.
//!
//! The manifest comes from the host, so what it may name is limited:
//!
//! - `file://` paths must lie, after resolving symlinks, inside [`Fetcher::app_dir`] (the
//!   image's app directory): otherwise a manifest naming `/etc/shadow` turns the runtime into a
//!   reader of root-only files. Only regular files are read (a FIFO or a device would block or
//!   never end), and within [`Fetcher::timeout`].
//! - An app over [`Fetcher::max_size`] is refused as soon as that is known: from a declared
//!   `Content-Length` before any byte is read, else when the limit is passed.
//! - A refusal never prints the digest of the content that failed the check: the console is the
//!   host's to read, and the digest of a low-entropy file is as good as its content.
//!
//! [`verify_file`] re-checks a file against its digest; the supervisor calls it before every
//! (re)start.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sha2::{Digest as _, Sha256};

use crate::http::{Client, HttpError};
use crate::manifest::{AppSource, Manifest, Sha256Digest};

/// Why an app was not made runnable. Messages are one line.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    /// The content's digest differs from the manifest's; the app was refused. (The content's
    /// own digest is deliberately not kept: see the module docs.)
    #[error("sha256 mismatch for {url}: the content does not have the manifest's sha256 {expected}; refusing to run it")]
    Mismatch {
        /// The app URL.
        url: String,
        /// The manifest's digest.
        expected: Sha256Digest,
    },
    /// A `file://` app outside the app directory (or with no app directory configured).
    #[error("{url}: file:// apps must be inside the app directory {dir} (setting app-dir); refusing to read it")]
    OutsideAppDir {
        /// The app URL.
        url: String,
        /// The app directory, or `(none)`.
        dir: String,
    },
    /// A `file://` app that is not a regular file (a FIFO, a device, a directory).
    #[error("{url} is not a regular file; refusing to read it")]
    NotRegular {
        /// The app URL.
        url: String,
    },
    /// Reading a `file://` app took longer than the fetch timeout.
    #[error("reading {url} took longer than {after:?}")]
    Timeout {
        /// The app URL.
        url: String,
        /// The timeout.
        after: Duration,
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

impl FetchError {
    /// Whether trying again cannot help: the content, its size, or where it is, is refused.
    /// Only network trouble (connect, timeout, I/O, a status other than 200) is retried.
    pub fn is_final(&self) -> bool {
        match self {
            Self::Mismatch { .. } | Self::TooLarge { .. } | Self::OutsideAppDir { .. } | Self::NotRegular { .. } => true,
            Self::Http(e) => matches!(e, HttpError::TooLarge { .. } | HttpError::Redirect { .. } | HttpError::BadUrl { .. }),
            _ => false,
        }
    }
}

/// Fetches apps: HTTP(S) settings (timeouts, TLS roots), the size limit, the app directory.
#[derive(Debug, Clone)]
pub struct Fetcher {
    /// Client for `http(s)://` apps: its timeouts and roots (its `max_body` is replaced by
    /// [`Fetcher::max_size`]).
    pub client: Client,
    /// Largest app accepted, in bytes.
    pub max_size: u64,
    /// The only directory `file://` apps may come from (`None`: no `file://` apps).
    pub app_dir: Option<PathBuf>,
    /// Longest time reading one `file://` app may take.
    pub timeout: Duration,
}

/// The default app directory: where an image puts apps that a `file://` manifest may name.
pub const DEFAULT_APP_DIR: &str = "/opt/cvmkit/apps";

impl Default for Fetcher {
    fn default() -> Self {
        Self {
            client: Client {
                connect_timeout: Duration::from_secs(5),
                timeout: Duration::from_secs(600),
                max_body: 2 << 30,
                tls: Default::default(),
            },
            max_size: 2 << 30,
            app_dir: Some(DEFAULT_APP_DIR.into()),
            timeout: Duration::from_secs(600),
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
                return Err(FetchError::Mismatch { url: m.app_url.clone(), expected: m.sha256 });
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
        // The source is opened (and for HTTP its size checked) before the staging file exists.
        let digest = match &m.app {
            AppSource::File(path) => {
                let mut src = self.open_app_file(&m.app_url, path)?;
                let mut out = create_part(part)?;
                let d = self.copy(&m.app_url, &mut src, &mut out, part)?;
                out.sync_all().map_err(io("sync", part))?;
                d
            }
            AppSource::Http(url) | AppSource::Https(url) => {
                let client = Client { max_body: self.max_size, ..self.client.clone() };
                let mut resp = client.get_following(url, &[], 5).map_err(|e| match e {
                    HttpError::TooLarge { url, limit } => FetchError::TooLarge { url, limit },
                    e => FetchError::Http(e),
                })?;
                if resp.status != 200 {
                    return Err(FetchError::Status { url: url.clone(), status: resp.status });
                }
                let mut out = create_part(part)?;
                let mut body = std::mem::replace(&mut resp.body, Box::new(std::io::empty()));
                let d = self.copy(url, &mut body, &mut out, part).map_err(|e| match e {
                    FetchError::Io { what: "read", source, .. } => match client.body_error(&resp, source) {
                        HttpError::TooLarge { url, limit } => FetchError::TooLarge { url, limit },
                        e => FetchError::Http(e),
                    },
                    e => e,
                })?;
                out.sync_all().map_err(io("sync", part))?;
                d
            }
        };
        Ok(digest)
    }

    /// Opens a `file://` app: inside the app directory after resolving symlinks, a regular file
    /// (opened non-blocking, so a FIFO cannot hang the open itself).
    fn open_app_file(&self, url: &str, path: &Path) -> Result<File, FetchError> {
        let outside = |dir: &str| FetchError::OutsideAppDir { url: url.to_string(), dir: dir.to_string() };
        let dir = self.app_dir.as_deref().ok_or_else(|| outside("(none)"))?;
        let shown = dir.display().to_string();
        // A missing directory or file is "outside" too: the message must not tell the host which
        // paths exist.
        let dir = dir.canonicalize().map_err(|_| outside(&shown))?;
        let lexically_inside =
            path.starts_with(&dir) && !path.components().any(|c| c == std::path::Component::ParentDir);
        let real = path.canonicalize().map_err(|e| {
            // Inside the app directory a missing file may be named (the image's own files);
            // outside it, whether a path exists is not the host's to learn.
            if lexically_inside {
                FetchError::Io { what: "open", path: path.to_path_buf(), source: e }
            } else {
                outside(&shown)
            }
        })?;
        if !real.starts_with(&dir) || real == dir {
            return Err(outside(&shown));
        }
        // O_NONBLOCK (0o4000 on Linux): opening a FIFO without a writer returns at once instead of
        // waiting for one; the file type is checked on the open descriptor, so a swap between the
        // check and the open cannot slip a FIFO or device through.
        let f = OpenOptions::new()
            .read(true)
            .custom_flags(O_NONBLOCK | O_NOFOLLOW)
            .open(&real)
            .map_err(io("open", &real))?;
        let meta = f.metadata().map_err(io("stat", &real))?;
        if !meta.file_type().is_file() {
            return Err(FetchError::NotRegular { url: url.to_string() });
        }
        Ok(f)
    }

    fn copy(&self, url: &str, src: &mut dyn Read, out: &mut File, part: &Path) -> Result<Sha256Digest, FetchError> {
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 64 << 10];
        let mut total = 0u64;
        let deadline = Instant::now() + self.timeout;
        loop {
            if Instant::now() > deadline {
                return Err(FetchError::Timeout { url: url.to_string(), after: self.timeout });
            }
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

/// `O_NONBLOCK` and `O_NOFOLLOW` of Linux (x86_64 and aarch64), which std does not name.
const O_NONBLOCK: i32 = 0o4000;
const O_NOFOLLOW: i32 = 0o400000;

fn create_part(part: &Path) -> Result<File, FetchError> {
    OpenOptions::new().write(true).create_new(true).mode(0o600).open(part).map_err(io("create", part))
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
        return Err(FetchError::Mismatch { url: format!("file://{}", path.display()), expected: *expected });
    }
    Ok(())
}
