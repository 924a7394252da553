//! HTTP(S) `GET` for metadata and app downloads, through [ureq] (a maintained client; the
//! runtime used to carry its own HTTP/1.1 parser, and a parser of input the host controls is
//! better written and fuzzed once, upstream). `https://` goes through rustls with the *ring*
//! provider (feature `https`) and the Mozilla roots built in, or the roots of a PEM file.
//!
//! What this module adds around ureq is policy, because the host and the network are the
//! adversary:
//!
//! - every request has a connect timeout and an overall deadline (body included), so a silent or
//!   slow-dripping server cannot stall the runtime;
//! - bodies have a size limit, and a declared `Content-Length` over it is refused before a byte of
//!   the body is read;
//! - redirects are followed only where asked ([`Client::get_following`]) and only to `http://` or
//!   `https://` URLs: a `Location` of any other scheme is refused, never turned into a path.
//!   They are followed here, one request per hop ([`redirect_target`]), not by ureq: ureq 3.5
//!   resolves `Location: file:///etc/passwd` as the path `/etc/passwd` on the same server;
//! - no proxy from the environment, no cookies, no decompression.

use std::io::Read;
use std::time::Duration;

/// Why an HTTP request failed. Messages are one line and name the URL.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HttpError {
    /// The URL is not `http(s)://HOST[:PORT]/PATH`.
    #[error("bad URL '{url}': {reason}")]
    BadUrl {
        /// The URL given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The host name did not resolve, or no address accepted the connection in time.
    #[error("cannot connect to {url}: {reason}")]
    Connect {
        /// The URL requested.
        url: String,
        /// What failed.
        reason: String,
    },
    /// The deadline passed before the response was complete.
    #[error("timed out after {after:?} waiting for {url}")]
    Timeout {
        /// The URL requested.
        url: String,
        /// The configured overall timeout.
        after: Duration,
    },
    /// Reading or writing the connection failed.
    #[error("I/O error talking to {url}: {source}")]
    Io {
        /// The URL requested.
        url: String,
        /// The error.
        source: std::io::Error,
    },
    /// The server's answer is not valid HTTP/1.x.
    #[error("bad HTTP response from {url}: {reason}")]
    BadResponse {
        /// The URL requested.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// A redirect that is not followed: another scheme than http(s), or too many.
    #[error("refused redirect from {url}: {reason}")]
    Redirect {
        /// The URL that answered with the redirect.
        url: String,
        /// Why it is refused.
        reason: String,
    },
    /// TLS setup or the handshake failed, or `https` support is not built in.
    #[error("TLS error for {url}: {reason}")]
    Tls {
        /// The URL requested.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// The body is (or is declared) larger than the configured limit.
    #[error("response from {url} exceeds the limit of {limit} bytes")]
    TooLarge {
        /// The URL requested.
        url: String,
        /// The limit.
        limit: u64,
    },
}

/// Timeouts, limits and TLS roots of a client.
#[derive(Debug, Clone)]
pub struct Client {
    /// Maximum time to establish the TCP connection.
    pub connect_timeout: Duration,
    /// Maximum time for the whole request, connection and body included.
    pub timeout: Duration,
    /// Largest body accepted, in bytes.
    pub max_body: u64,
    /// Trust roots for `https://`.
    pub tls: TlsRoots,
}

impl Default for Client {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(2),
            timeout: Duration::from_secs(5),
            max_body: 1 << 20,
            tls: TlsRoots::default(),
        }
    }
}

/// Trust roots for `https://`: the built-in Mozilla roots (default) or those of a PEM file.
#[derive(Clone, Default)]
pub struct TlsRoots {
    /// `None`: the built-in roots.
    #[cfg(feature = "https")]
    custom: Option<ureq::tls::RootCerts>,
}

impl std::fmt::Debug for TlsRoots {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        #[cfg(feature = "https")]
        let custom = self.custom.is_some();
        #[cfg(not(feature = "https"))]
        let custom = false;
        f.debug_struct("TlsRoots").field("custom", &custom).finish()
    }
}

impl TlsRoots {
    /// Trusts exactly the certificates in the PEM file `path` (instead of the built-in roots).
    #[cfg(feature = "https")]
    pub fn from_pem_file(path: &std::path::Path) -> Result<Self, String> {
        let what = |e: &dyn std::fmt::Display| format!("CA file {}: {e}", path.display());
        let pem = std::fs::read(path).map_err(|e| what(&e))?;
        let mut certs = Vec::new();
        for item in ureq::tls::parse_pem(&pem) {
            if let ureq::tls::PemItem::Certificate(c) = item.map_err(|e| what(&e))? {
                certs.push(c);
            }
        }
        if certs.is_empty() {
            return Err(what(&"no certificate in it"));
        }
        Ok(Self { custom: Some(ureq::tls::RootCerts::new_with_certs(&certs)) })
    }

    /// Without the `https` feature there is nothing to trust.
    #[cfg(not(feature = "https"))]
    pub fn from_pem_file(path: &std::path::Path) -> Result<Self, String> {
        Err(format!("CA file {}: this build has no https support", path.display()))
    }
}

/// A complete response.
#[derive(Debug, Clone)]
pub struct Response {
    /// The status code, e.g. 200.
    pub status: u16,
    /// The body.
    pub body: Vec<u8>,
}

/// A response whose body is still to be read (see [`Client::get_following`]).
pub struct StreamingResponse {
    /// The final status code (after redirects).
    pub status: u16,
    /// The declared `Content-Length`, if any.
    pub content_length: Option<u64>,
    /// The body; reads fail once the deadline has passed or past the size limit.
    pub body: Box<dyn Read + Send>,
    /// The URL requested, for errors while reading the body.
    url: String,
}

impl std::fmt::Debug for StreamingResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamingResponse")
            .field("status", &self.status)
            .field("content_length", &self.content_length)
            .finish()
    }
}

impl Client {
    fn agent(&self, timeout: Duration) -> ureq::Agent {
        let builder = ureq::Agent::config_builder()
            .timeout_connect(Some(self.connect_timeout.min(timeout)))
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            // A 3xx is returned, not followed: see the module docs.
            .max_redirects(0)
            .max_redirects_will_error(false)
            .proxy(None)
            .user_agent("cvmkit-runtime")
            .max_response_header_size(64 << 10);
        #[cfg(feature = "https")]
        let builder = {
            let mut tls = ureq::tls::TlsConfig::builder();
            if let Some(roots) = &self.tls.custom {
                tls = tls.root_certs(roots.clone());
            }
            builder.tls_config(tls.build())
        };
        builder.build().into()
    }

    /// `GET url` with extra request headers, without following redirects; reads the whole body
    /// (at most [`Client::max_body`] bytes, a larger `Content-Length` is refused unread).
    pub fn get(&self, url: &str, headers: &[(&str, &str)]) -> Result<Response, HttpError> {
        let mut resp = self.request(url, headers, 0)?;
        let mut body = Vec::new();
        resp.body.read_to_end(&mut body).map_err(|e| self.io_error(url, e))?;
        Ok(Response { status: resp.status, body })
    }

    /// `GET url`, following up to `max` redirects to `http://` / `https://` URLs; returns once
    /// the final status line and headers are in, the caller reads the body (at most
    /// [`Client::max_body`] bytes; a larger declared `Content-Length` is refused here).
    pub fn get_following(
        &self,
        url: &str,
        headers: &[(&str, &str)],
        max: u32,
    ) -> Result<StreamingResponse, HttpError> {
        self.request(url, headers, max)
    }

    fn request(&self, url: &str, headers: &[(&str, &str)], max_redirects: u32) -> Result<StreamingResponse, HttpError> {
        check_scheme(url).map_err(|reason| HttpError::BadUrl { url: url.into(), reason })?;
        let deadline = std::time::Instant::now() + self.timeout;
        let mut url = url.to_string();
        let mut hops = 0;
        let resp = loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return Err(HttpError::Timeout { url, after: self.timeout });
            }
            let mut req = self.agent(left).get(&url);
            for (k, v) in headers {
                req = req.header(*k, *v);
            }
            let resp = req.call().map_err(|e| self.error(&url, e))?;
            let location = resp.headers().get("location");
            if max_redirects == 0 || !resp.status().is_redirection() || location.is_none() {
                break resp;
            }
            let redirect = |reason: String| HttpError::Redirect { url: url.clone(), reason };
            if hops == max_redirects {
                return Err(redirect(format!("more than {max_redirects} redirects")));
            }
            let location = location
                .and_then(|l| l.to_str().ok())
                .ok_or_else(|| redirect("the Location header is not visible ASCII".into()))?;
            url = redirect_target(&url, location).map_err(redirect)?;
            hops += 1;
        };
        let url = url.as_str();
        let status = resp.status().as_u16();
        let body = resp.into_body();
        let content_length = body.content_length();
        if content_length.is_some_and(|n| n > self.max_body) {
            return Err(HttpError::TooLarge { url: url.into(), limit: self.max_body });
        }
        // One byte over the limit makes ureq fail with BodyExceedsLimit, mapped to TooLarge.
        let reader = body.into_with_config().limit(self.max_body).reader();
        Ok(StreamingResponse { status, content_length, body: Box::new(reader), url: url.into() })
    }

    /// Maps an error of reading a [`StreamingResponse`] body.
    pub fn body_error(&self, resp: &StreamingResponse, e: std::io::Error) -> HttpError {
        self.io_error(&resp.url, e)
    }

    fn io_error(&self, url: &str, e: std::io::Error) -> HttpError {
        // ureq's body readers wrap its own errors in io::Error; take them back out.
        if e.get_ref().is_some_and(|inner| inner.is::<ureq::Error>()) {
            let inner = e.into_inner().expect("checked above").downcast::<ureq::Error>().expect("checked above");
            return self.error(url, *inner);
        }
        match e.kind() {
            std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => {
                HttpError::Timeout { url: url.into(), after: self.timeout }
            }
            _ => HttpError::Io { url: url.into(), source: e },
        }
    }

    fn error(&self, url: &str, e: ureq::Error) -> HttpError {
        let url = url.to_string();
        match e {
            ureq::Error::Timeout(_) => HttpError::Timeout { url, after: self.timeout },
            ureq::Error::BodyExceedsLimit(_) => HttpError::TooLarge { url, limit: self.max_body },
            ureq::Error::HostNotFound | ureq::Error::ConnectionFailed => {
                HttpError::Connect { url, reason: e.to_string() }
            }
            ureq::Error::Io(source) => match source.kind() {
                std::io::ErrorKind::ConnectionRefused => HttpError::Connect { url, reason: source.to_string() },
                std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => {
                    HttpError::Timeout { url, after: self.timeout }
                }
                // rustls reports a refused certificate as InvalidData mid-handshake.
                std::io::ErrorKind::InvalidData if url.starts_with("https://") => {
                    HttpError::Tls { url, reason: source.to_string() }
                }
                _ => HttpError::Io { url, source },
            },
            ureq::Error::BadUri(reason) => HttpError::BadUrl { url, reason },
            ureq::Error::TooManyRedirects | ureq::Error::RedirectFailed => {
                HttpError::Redirect { url, reason: e.to_string() }
            }
            ureq::Error::Tls(_) | ureq::Error::TlsRequired => HttpError::Tls { url, reason: e.to_string() },
            #[cfg(feature = "https")]
            ureq::Error::Rustls(_) | ureq::Error::Pem(_) => HttpError::Tls { url, reason: e.to_string() },
            e => HttpError::BadResponse { url, reason: e.to_string() },
        }
    }
}

/// Only `http://` and `https://` URLs are requested (a manifest `file://` is not HTTP's).
fn check_scheme(url: &str) -> Result<(), String> {
    let scheme = url.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
    match scheme.as_deref() {
        Some("http") | Some("https") => Ok(()),
        _ => Err("only http:// and https:// are supported here".into()),
    }
}

/// Where a redirect from `base` to `location` goes (RFC 3986 §5.2: an absolute `http(s)` URL as
/// it is, a relative reference resolved against `base`), or why it is refused: any other scheme
/// (`file:`, `ftp:`, …), or a `base` that is not `http(s)://`.
///
/// ```
/// use cvmkit_runtime::http::redirect_target;
/// assert_eq!(redirect_target("http://h:1/a/b?q", "../x").unwrap(), "http://h:1/x");
/// assert_eq!(redirect_target("https://h/a/b", "/c?d").unwrap(), "https://h/c?d");
/// assert_eq!(redirect_target("http://h/a", "//o/p").unwrap(), "http://o/p");
/// assert!(redirect_target("http://h/a", "file:///etc/passwd").is_err());
/// ```
pub fn redirect_target(base: &str, location: &str) -> Result<String, String> {
    let loc = location.trim();
    // A scheme is ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) before the first ':' (§3.1).
    if let Some((scheme, _)) = loc.split_once(':') {
        let is_scheme = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            && scheme.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
        if is_scheme {
            return match scheme.to_ascii_lowercase().as_str() {
                "http" | "https" if loc[scheme.len() + 1..].starts_with("//") => Ok(loc.to_string()),
                "http" | "https" => Err(format!("Location '{loc}' is not an absolute URL (scheme://host/…)")),
                other => Err(format!("Location '{loc}' has the scheme '{other}:'; only http and https are followed")),
            };
        }
    }
    let (scheme, rest) = base
        .split_once("://")
        .filter(|(s, _)| s.eq_ignore_ascii_case("http") || s.eq_ignore_ascii_case("https"))
        .ok_or_else(|| format!("cannot resolve '{loc}' against '{base}'"))?;
    let rest = rest.split('#').next().unwrap_or("");
    let path_start = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path_query) = rest.split_at(path_start);
    let (path, query) = match path_query.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (path_query, None),
    };
    let loc = loc.split('#').next().unwrap_or("");
    let (target, tail) = if let Some(net) = loc.strip_prefix("//") {
        return Ok(format!("{scheme}://{net}"));
    } else if loc.is_empty() {
        (path.to_string(), query.map(|q| format!("?{q}")).unwrap_or_default())
    } else if let Some(q) = loc.strip_prefix('?') {
        (path.to_string(), format!("?{q}"))
    } else {
        let (lpath, lquery) = match loc.split_once('?') {
            Some((p, q)) => (p, format!("?{q}")),
            None => (loc, String::new()),
        };
        let merged = if lpath.starts_with('/') {
            lpath.to_string()
        } else {
            // §5.2.3: the base path up to its last '/', then the reference.
            let dir = path.rfind('/').map_or("/", |i| &path[..=i]);
            format!("{dir}{lpath}")
        };
        (remove_dot_segments(&merged), lquery)
    };
    let target = if target.is_empty() { "/".to_string() } else { target };
    Ok(format!("{scheme}://{authority}{target}{tail}"))
}

/// RFC 3986 §5.2.4 on an absolute path: `.` and `..` segments removed, never above the root.
fn remove_dot_segments(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    for (i, seg) in segments.iter().enumerate() {
        let last = i + 1 == segments.len();
        match *seg {
            "." => {
                if last {
                    out.push("");
                }
            }
            ".." => {
                out.pop();
                if last {
                    out.push("");
                }
            }
            s => out.push(s),
        }
    }
    format!("/{}", out.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_targets() {
        for (base, loc, want) in [
            ("http://h/a/b/c", "../x", "http://h/a/x"),
            ("http://h/a/b/c", "../../../../x", "http://h/x"),
            ("http://h/a/b/c", "./", "http://h/a/b/"),
            ("http://h/a/b/c", "..", "http://h/a/"),
            ("http://h/a/b/c", "g?y#s", "http://h/a/b/g?y"),
            ("http://h/a/b/c?q", "", "http://h/a/b/c?q"),
            ("http://h/a/b/c?q", "?z", "http://h/a/b/c?z"),
            ("http://h", "x", "http://h/x"),
            ("http://[::1]:8/a", "/b/./c/../d", "http://[::1]:8/b/d"),
            ("http://h/a", "HTTPS://o/p", "HTTPS://o/p"),
        ] {
            assert_eq!(redirect_target(base, loc).unwrap(), want, "{base} + {loc}");
        }
        for loc in ["file:///etc/passwd", "FILE:/etc/passwd", "ftp://h/x", "javascript:x", "a:b"] {
            let e = redirect_target("http://h/a", loc).unwrap_err();
            assert!(e.contains("only http and https are followed"), "{loc}: {e}");
        }
        assert!(redirect_target("http://h/a", "http:x").unwrap_err().contains("not an absolute URL"));
    }
}
