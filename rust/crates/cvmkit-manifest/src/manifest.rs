//! The manifest: which app to run and the SHA-256 it must have.
//!
//! A metadata value holds base64 (standard alphabet, padding optional, surrounding whitespace
//! ignored) of UTF-8 JSON that is either one object or a non-empty list of objects:
//!
//! ```json
//! {"app": "https://example.com/app", "sha256": "<64 hex digits>"}
//! [{"app": "file:///opt/a", "sha256": "…"}, {"app": "http://10.0.2.2:8090/b", "sha256": "…"}]
//! ```
//!
//! Unknown fields are refused, so a typo (`"sha265"`) fails loudly instead of being ignored.

use std::fmt;
use std::path::PathBuf;

use base64::Engine as _;

/// Why a manifest value was refused. Messages are one line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ManifestError {
    /// The value is not base64.
    #[error("manifest is not base64: {0}")]
    Base64(String),
    /// The decoded bytes are not the expected JSON.
    #[error("manifest is not valid JSON of the form {{\"app\": URL, \"sha256\": HEX}} (or a list of them): {0}")]
    Json(String),
    /// A list with no entry.
    #[error("manifest is an empty list; give at least one {{\"app\", \"sha256\"}} object")]
    Empty,
    /// `sha256` is not 64 hex digits.
    #[error("manifest sha256 '{0}' is not 64 hexadecimal digits")]
    Sha256(String),
    /// `app` is not a supported URL.
    #[error("manifest app '{url}': {reason}")]
    App {
        /// The URL given.
        url: String,
        /// Why it is refused.
        reason: &'static str,
    },
}

/// A SHA-256 digest.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sha256Digest(pub [u8; 32]);

impl Sha256Digest {
    /// Parses 64 hexadecimal digits (either case).
    pub fn from_hex(s: &str) -> Result<Self, ManifestError> {
        cvmkit_measure::unhex(s)
            .and_then(|v| <[u8; 32]>::try_from(v).ok())
            .map(Self)
            .ok_or_else(|| ManifestError::Sha256(s.to_string()))
    }

    /// Lower-case hex.
    pub fn to_hex(&self) -> String {
        hex(&self.0)
    }
}

pub use cvmkit_measure::hex;

impl fmt::Display for Sha256Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Sha256Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sha256Digest({})", self.to_hex())
    }
}

/// Where an app is fetched from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppSource {
    /// `file:///absolute/path` (or `file://localhost/…`), percent-escapes decoded.
    File(PathBuf),
    /// `http://…`.
    Http(String),
    /// `https://…`.
    Https(String),
}

impl AppSource {
    /// Parses an app URL.
    pub fn parse(url: &str) -> Result<Self, ManifestError> {
        let bad = |reason| ManifestError::App { url: url.to_string(), reason };
        if url.bytes().any(|b| b <= b' ' || b == 0x7f) {
            return Err(bad("the URL contains spaces or control characters"));
        }
        if let Some(rest) = url.strip_prefix("file://") {
            let path = rest.strip_prefix("localhost").unwrap_or(rest);
            if !path.starts_with('/') {
                return Err(bad("file:// URLs must name an absolute path on this machine (file:///path)"));
            }
            let decoded = percent_decode(path).ok_or_else(|| bad("bad %-escape in the path"))?;
            use std::os::unix::ffi::OsStringExt as _;
            return Ok(Self::File(PathBuf::from(std::ffi::OsString::from_vec(decoded))));
        }
        if url.starts_with("http://") {
            return Ok(Self::Http(url.to_string()));
        }
        if url.starts_with("https://") {
            return Ok(Self::Https(url.to_string()));
        }
        Err(bad("only file://, http:// and https:// URLs are supported"))
    }
}

impl fmt::Display for AppSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File(p) => write!(f, "file://{}", p.display()),
            Self::Http(u) | Self::Https(u) => f.write_str(u),
        }
    }
}

fn percent_decode(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let pair = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(*cvmkit_measure::unhex(pair)?.first()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    if out.contains(&0) {
        return None;
    }
    Some(out)
}

/// One workload: its source and the digest it must have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// The URL as written in the manifest.
    pub app_url: String,
    /// The parsed URL.
    pub app: AppSource,
    /// The SHA-256 the fetched file must have before it may run.
    pub sha256: Sha256Digest,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    app: String,
    sha256: String,
}

#[derive(serde::Deserialize)]
#[serde(untagged)]
enum RawValue {
    One(RawManifest),
    Many(Vec<RawManifest>),
}

/// Decodes one metadata value: base64 of a JSON object or of a non-empty JSON list of objects.
///
/// ```
/// use base64::Engine as _;
/// let json = r#"{"app": "file:///opt/app", "sha256": "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855"}"#;
/// let value = base64::engine::general_purpose::STANDARD.encode(json);
/// let m = cvmkit_manifest::decode(&value)?;
/// assert_eq!(m[0].sha256.to_hex(), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
/// # Ok::<(), cvmkit_manifest::ManifestError>(())
/// ```
pub fn decode(value: &str) -> Result<Vec<Manifest>, ManifestError> {
    let compact: String = value.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let engine = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
    );
    let bytes = engine.decode(compact.as_bytes()).map_err(|e| ManifestError::Base64(e.to_string()))?;
    decode_json(&bytes)
}

/// Decodes the JSON inside a manifest value (already base64-decoded).
pub fn decode_json(bytes: &[u8]) -> Result<Vec<Manifest>, ManifestError> {
    let raw: RawValue = serde_json::from_slice(bytes).map_err(|e| ManifestError::Json(one_line(&e.to_string())))?;
    let raws = match raw {
        RawValue::One(m) => vec![m],
        RawValue::Many(v) if v.is_empty() => return Err(ManifestError::Empty),
        RawValue::Many(v) => v,
    };
    raws.into_iter()
        .map(|r| {
            Ok(Manifest { app: AppSource::parse(&r.app)?, sha256: Sha256Digest::from_hex(&r.sha256)?, app_url: r.app })
        })
        .collect()
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::STANDARD;

    const H: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn one_and_many() {
        let one = STANDARD.encode(format!(r#"{{"app":"http://h/a","sha256":"{H}"}}"#));
        assert_eq!(decode(&one).unwrap().len(), 1);
        let many = STANDARD
            .encode(format!(r#"[{{"app":"http://h/a","sha256":"{H}"}},{{"app":"file:///b%20c","sha256":"{H}"}}]"#));
        let m = decode(&format!(" {}\n", many.trim_end_matches('='))).unwrap();
        assert_eq!(m[1].app, AppSource::File("/b c".into()));
    }

    #[test]
    fn refusals() {
        assert!(matches!(decode("not base64!"), Err(ManifestError::Base64(_))));
        assert!(matches!(decode(&STANDARD.encode("{")), Err(ManifestError::Json(_))));
        assert!(matches!(decode(&STANDARD.encode("[]")), Err(ManifestError::Empty)));
        let typo = STANDARD.encode(format!(r#"{{"app":"http://h/a","sha265":"{H}"}}"#));
        assert!(matches!(decode(&typo), Err(ManifestError::Json(_))));
        let short = STANDARD.encode(r#"{"app":"http://h/a","sha256":"abc"}"#);
        assert!(matches!(decode(&short), Err(ManifestError::Sha256(_))));
        let ftp = STANDARD.encode(format!(r#"{{"app":"ftp://h/a","sha256":"{H}"}}"#));
        assert!(matches!(decode(&ftp), Err(ManifestError::App { .. })));
        let rel = STANDARD.encode(format!(r#"{{"app":"file://host/a","sha256":"{H}"}}"#));
        assert!(matches!(decode(&rel), Err(ManifestError::App { .. })));
    }
}
