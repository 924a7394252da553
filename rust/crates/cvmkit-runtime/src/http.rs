//! A minimal blocking HTTP/1.1 client over [`std::net::TcpStream`], enough for cloud metadata
//! services and app downloads: `GET` only, one request per connection (`Connection: close`),
//! bodies framed by `Content-Length`, `chunked` or the end of the stream. `https://` goes through
//! rustls (feature `https`) with the Mozilla roots built in, or the roots of a PEM file.
//!
//! Every request has a connect timeout and an overall deadline (each read waits at most until the
//! deadline), so a silent or slow-dripping server cannot stall discovery.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

/// Why an HTTP request failed. Messages are one line and name the URL.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HttpError {
    /// The URL is not `http://HOST[:PORT]/PATH`.
    #[error("bad URL '{url}': {reason}")]
    BadUrl {
        /// The URL given.
        url: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The host name did not resolve, or no address accepted the connection in time.
    #[error("cannot connect to {url}: {source}")]
    Connect {
        /// The URL requested.
        url: String,
        /// The last connect (or resolve) error.
        source: std::io::Error,
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
    /// TLS setup or the handshake failed, or `https` support is not built in.
    #[error("TLS error for {url}: {reason}")]
    Tls {
        /// The URL requested.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// The body is larger than the configured limit.
    #[error("response from {url} exceeds the limit of {limit} bytes")]
    TooLarge {
        /// The URL requested.
        url: String,
        /// The limit.
        limit: u64,
    },
}

/// A parsed `http://` or `https://` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpUrl {
    /// `https://`.
    pub tls: bool,
    /// Host name or IP address (IPv6 without brackets).
    pub host: String,
    /// TCP port (80 or 443 if the URL has none).
    pub port: u16,
    /// Path and query, starting with `/`.
    pub path: String,
}

impl HttpUrl {
    /// Parses `http(s)://HOST[:PORT][/PATH][?QUERY]`. Userinfo and fragments are refused.
    pub fn parse(url: &str) -> Result<Self, HttpError> {
        let bad = |reason| HttpError::BadUrl { url: url.to_string(), reason };
        let (tls, rest) = match (url.strip_prefix("http://"), url.strip_prefix("https://")) {
            (Some(r), _) => (false, r),
            (_, Some(r)) => (true, r),
            _ => return Err(bad("only http:// and https:// are supported here")),
        };
        let (authority, path) = match rest.find(['/', '?']) {
            Some(i) if rest.as_bytes()[i] == b'/' => (&rest[..i], rest[i..].to_string()),
            Some(i) => (&rest[..i], format!("/{}", &rest[i..])),
            None => (rest, "/".to_string()),
        };
        if path.contains('#') {
            return Err(bad("fragments are not allowed"));
        }
        if path.bytes().any(|b| b <= b' ' || b == 0x7f) {
            return Err(bad("the path contains spaces or control characters"));
        }
        if authority.contains('@') {
            return Err(bad("user names are not allowed"));
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let end = v6.find(']').ok_or_else(|| bad("unclosed '[' in the host"))?;
            let host = &v6[..end];
            match &v6[end + 1..] {
                "" => (host, None),
                p => (host, Some(p.strip_prefix(':').ok_or_else(|| bad("junk after ']'"))?)),
            }
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        if host.is_empty() {
            return Err(bad("the host is empty"));
        }
        if !host.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._:".contains(&b)) {
            return Err(bad("the host has characters other than letters, digits, '-', '.', ':'"));
        }
        let port = match port {
            None if tls => 443,
            None => 80,
            Some(p) => p.parse::<u16>().ok().filter(|&p| p != 0).ok_or_else(|| bad("the port is not 1-65535"))?,
        };
        Ok(Self { tls, host: host.to_string(), port, path })
    }

    /// `host:port` as sent in the `Host` header.
    fn host_header(&self) -> String {
        let host = if self.host.contains(':') { format!("[{}]", self.host) } else { self.host.clone() };
        if self.port == if self.tls { 443 } else { 80 } {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

/// Timeouts, limits and TLS roots of a client.
#[derive(Debug, Clone)]
pub struct Client {
    /// Maximum time to establish the TCP connection (per resolved address).
    pub connect_timeout: Duration,
    /// Maximum time for the whole request, connection included.
    pub timeout: Duration,
    /// Largest body [`Client::get`] accepts.
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
    #[cfg(feature = "https")]
    config: Option<std::sync::Arc<rustls::ClientConfig>>,
}

impl std::fmt::Debug for TlsRoots {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        #[cfg(feature = "https")]
        let custom = self.config.is_some();
        #[cfg(not(feature = "https"))]
        let custom = false;
        f.debug_struct("TlsRoots").field("custom", &custom).finish()
    }
}

impl TlsRoots {
    /// Trusts exactly the certificates in the PEM file `path` (instead of the built-in roots).
    #[cfg(feature = "https")]
    pub fn from_pem_file(path: &std::path::Path) -> Result<Self, String> {
        use rustls_pki_types::pem::PemObject as _;
        use rustls_pki_types::CertificateDer;
        let what = |e: &dyn std::fmt::Display| format!("CA file {}: {e}", path.display());
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(path).map_err(|e| what(&e))? {
            roots.add(cert.map_err(|e| what(&e))?).map_err(|e| what(&e))?;
        }
        if roots.is_empty() {
            return Err(what(&"no certificate in it"));
        }
        Ok(Self { config: Some(std::sync::Arc::new(client_config(roots)?)) })
    }

    /// Without the `https` feature there is nothing to trust.
    #[cfg(not(feature = "https"))]
    pub fn from_pem_file(path: &std::path::Path) -> Result<Self, String> {
        Err(format!("CA file {}: this build has no https support", path.display()))
    }

    #[cfg(feature = "https")]
    fn config(&self) -> Result<std::sync::Arc<rustls::ClientConfig>, String> {
        static BUILTIN: std::sync::OnceLock<Result<std::sync::Arc<rustls::ClientConfig>, String>> =
            std::sync::OnceLock::new();
        match &self.config {
            Some(c) => Ok(c.clone()),
            None => BUILTIN
                .get_or_init(|| {
                    let roots = rustls::RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
                    client_config(roots).map(std::sync::Arc::new)
                })
                .clone(),
        }
    }
}

#[cfg(feature = "https")]
fn client_config(roots: rustls::RootCertStore) -> Result<rustls::ClientConfig, String> {
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

trait Stream: Read + Write + Send {}
impl<T: Read + Write + Send> Stream for T {}

/// A complete response.
#[derive(Debug, Clone)]
pub struct Response {
    /// The status code, e.g. 200.
    pub status: u16,
    /// Header fields in the order received, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// The body, de-chunked.
    pub body: Vec<u8>,
}

impl Response {
    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers.iter().find(|(k, _)| *k == name).map(|(_, v)| v.as_str())
    }
}

/// A response whose body is still to be read (see [`Client::get_streaming`]).
pub struct StreamingResponse {
    /// The status code.
    pub status: u16,
    /// Header fields, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// The body; reads fail with [`std::io::ErrorKind::TimedOut`] once the deadline has passed.
    pub body: Body,
}

/// The body of a [`StreamingResponse`].
pub struct Body {
    conn: Conn,
    framing: Framing,
}

enum Framing {
    Length(u64),
    Chunked { left_in_chunk: u64, done: bool },
    UntilClose,
}

struct Conn {
    reader: BufReader<Box<dyn Stream>>,
    /// The socket under `reader` (a clone of the same file descriptor), for its timeouts.
    tcp: TcpStream,
    deadline: Instant,
}

impl Conn {
    fn arm(&mut self) -> std::io::Result<()> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "deadline passed"));
        }
        self.tcp.set_read_timeout(Some(left))?;
        self.tcp.set_write_timeout(Some(left))
    }

    fn read_line(&mut self, limit: usize) -> std::io::Result<String> {
        let mut line = Vec::new();
        loop {
            self.arm()?;
            let buf = self.reader.fill_buf()?;
            if buf.is_empty() {
                return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "connection closed mid-line"));
            }
            let (used, done) = match buf.iter().position(|&b| b == b'\n') {
                Some(i) => (i + 1, true),
                None => (buf.len(), false),
            };
            line.extend_from_slice(&buf[..used]);
            self.reader.consume(used);
            if line.len() > limit {
                return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "header line too long"));
            }
            if done {
                while line.last().is_some_and(|&b| b == b'\n' || b == b'\r') {
                    line.pop();
                }
                return String::from_utf8(line)
                    .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, "header is not UTF-8"));
            }
        }
    }

    fn read_some(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.arm()?;
        self.reader.read(buf)
    }
}

impl Read for Body {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        match &mut self.framing {
            Framing::Length(0) => Ok(0),
            Framing::Length(left) => {
                let want = buf.len().min(usize::try_from(*left).unwrap_or(usize::MAX));
                let n = self.conn.read_some(&mut buf[..want])?;
                if n == 0 {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "connection closed before Content-Length bytes arrived",
                    ));
                }
                *left -= n as u64;
                Ok(n)
            }
            // A TLS peer that closes without close_notify ends the body too (truncation is caught
            // by the caller's digest check, the only integrity check that matters here).
            Framing::UntilClose => match self.conn.read_some(buf) {
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(0),
                r => r,
            },
            Framing::Chunked { left_in_chunk, done } => {
                if *done {
                    return Ok(0);
                }
                if *left_in_chunk == 0 {
                    let line = self.conn.read_line(1024)?;
                    let size = line.split(';').next().unwrap_or("").trim();
                    let size = u64::from_str_radix(size, 16).map_err(|_| {
                        std::io::Error::new(std::io::ErrorKind::InvalidData, format!("bad chunk size '{size}'"))
                    })?;
                    if size == 0 {
                        // Trailer fields up to the empty line.
                        while !self.conn.read_line(8192)?.is_empty() {}
                        *done = true;
                        return Ok(0);
                    }
                    *left_in_chunk = size;
                }
                let want = buf.len().min(usize::try_from(*left_in_chunk).unwrap_or(usize::MAX));
                let n = self.conn.read_some(&mut buf[..want])?;
                if n == 0 {
                    return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "connection closed mid-chunk"));
                }
                *left_in_chunk -= n as u64;
                if *left_in_chunk == 0 {
                    let end = self.conn.read_line(2)?;
                    if !end.is_empty() {
                        return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "chunk not followed by CRLF"));
                    }
                }
                Ok(n)
            }
        }
    }
}

impl Client {
    /// `GET url` with extra request headers; reads the whole body (up to [`Client::max_body`]).
    pub fn get(&self, url: &str, headers: &[(&str, &str)]) -> Result<Response, HttpError> {
        let mut resp = self.get_streaming(url, headers)?;
        let mut body = Vec::new();
        let limit = self.max_body;
        let n = (&mut resp.body).take(limit + 1).read_to_end(&mut body).map_err(|e| self.io_error(url, e))?;
        if n as u64 > limit {
            return Err(HttpError::TooLarge { url: url.to_string(), limit });
        }
        Ok(Response { status: resp.status, headers: resp.headers, body })
    }

    /// `GET url`, returning once the status line and headers are in; the caller reads the body.
    pub fn get_streaming(&self, url: &str, headers: &[(&str, &str)]) -> Result<StreamingResponse, HttpError> {
        let parsed = HttpUrl::parse(url)?;
        let start = Instant::now();
        let deadline = start + self.timeout;
        let tcp = self.connect(url, &parsed, deadline)?;
        let clone = tcp.try_clone().map_err(|e| self.io_error(url, e))?;
        let stream: Box<dyn Stream> = if parsed.tls { self.tls_stream(url, &parsed, tcp)? } else { Box::new(tcp) };
        let mut conn = Conn { reader: BufReader::new(stream), tcp: clone, deadline };
        let mut request = format!(
            "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: cvmkit-runtime\r\nAccept: */*\r\nConnection: close\r\n",
            parsed.path,
            parsed.host_header()
        );
        for (k, v) in headers {
            request.push_str(&format!("{k}: {v}\r\n"));
        }
        request.push_str("\r\n");
        conn.arm().map_err(|e| self.io_error(url, e))?;
        let w = conn.reader.get_mut();
        w.write_all(request.as_bytes()).and_then(|_| w.flush()).map_err(|e| self.io_error(url, e))?;

        let bad = |reason: String| HttpError::BadResponse { url: url.to_string(), reason };
        let status_line = conn.read_line(8192).map_err(|e| self.io_error(url, e))?;
        let mut parts = status_line.splitn(3, ' ');
        let version = parts.next().unwrap_or("");
        if !version.starts_with("HTTP/1.") {
            return Err(bad(format!("status line '{}' is not HTTP/1.x", truncate(&status_line))));
        }
        let status = parts
            .next()
            .and_then(|s| s.parse::<u16>().ok())
            .filter(|s| (100..1000).contains(s))
            .ok_or_else(|| bad(format!("no status code in '{}'", truncate(&status_line))))?;
        let mut headers = Vec::new();
        loop {
            let line = conn.read_line(8192).map_err(|e| self.io_error(url, e))?;
            if line.is_empty() {
                break;
            }
            if headers.len() >= 100 {
                return Err(bad("more than 100 header fields".into()));
            }
            let (k, v) = line.split_once(':').ok_or_else(|| bad(format!("header line '{}'", truncate(&line))))?;
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
        let get = |name: &str| headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
        let framing = if get("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked")) {
            Framing::Chunked { left_in_chunk: 0, done: false }
        } else if let Some(len) = get("content-length") {
            Framing::Length(len.parse().map_err(|_| bad(format!("Content-Length '{}'", truncate(len))))?)
        } else if status == 204 || status == 304 {
            Framing::Length(0)
        } else {
            Framing::UntilClose
        };
        Ok(StreamingResponse { status, headers, body: Body { conn, framing } })
    }

    /// `GET url`, following up to `max` redirects (301, 302, 303, 307, 308 with a `Location`).
    pub fn get_following(
        &self,
        url: &str,
        headers: &[(&str, &str)],
        max: usize,
    ) -> Result<StreamingResponse, HttpError> {
        let mut url = url.to_string();
        for _ in 0..=max {
            let resp = self.get_streaming(&url, headers)?;
            let location = resp.headers.iter().find(|(k, _)| k == "location").map(|(_, v)| v.clone());
            match (resp.status, location) {
                (301 | 302 | 303 | 307 | 308, Some(loc)) => url = resolve(&url, &loc)?,
                _ => return Ok(resp),
            }
        }
        Err(HttpError::BadResponse { url, reason: format!("more than {max} redirects") })
    }

    #[cfg(feature = "https")]
    fn tls_stream(&self, url: &str, parsed: &HttpUrl, tcp: TcpStream) -> Result<Box<dyn Stream>, HttpError> {
        let tls = |reason: String| HttpError::Tls { url: url.to_string(), reason };
        let config = self.tls.config().map_err(tls)?;
        let name = rustls_pki_types::ServerName::try_from(parsed.host.clone()).map_err(|e| tls(e.to_string()))?;
        let conn = rustls::ClientConnection::new(config, name).map_err(|e| tls(e.to_string()))?;
        Ok(Box::new(rustls::StreamOwned::new(conn, tcp)))
    }

    #[cfg(not(feature = "https"))]
    fn tls_stream(&self, url: &str, _parsed: &HttpUrl, _tcp: TcpStream) -> Result<Box<dyn Stream>, HttpError> {
        Err(HttpError::Tls {
            url: url.to_string(),
            reason: "this build has no https support; use http:// or file://".into(),
        })
    }

    fn connect(&self, url: &str, parsed: &HttpUrl, deadline: Instant) -> Result<TcpStream, HttpError> {
        let addrs: Vec<SocketAddr> = (parsed.host.as_str(), parsed.port)
            .to_socket_addrs()
            .map_err(|source| HttpError::Connect { url: url.to_string(), source })?
            .collect();
        let mut last = std::io::Error::new(std::io::ErrorKind::NotFound, "the host has no address");
        for addr in addrs {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(HttpError::Timeout { url: url.to_string(), after: self.timeout });
            }
            match TcpStream::connect_timeout(&addr, self.connect_timeout.min(left)) {
                Ok(s) => {
                    let _ = s.set_nodelay(true);
                    return Ok(s);
                }
                Err(e) => last = e,
            }
        }
        Err(HttpError::Connect { url: url.to_string(), source: last })
    }

    /// Maps an I/O error while talking to `url`; timeouts become [`HttpError::Timeout`].
    pub(crate) fn io_error(&self, url: &str, e: std::io::Error) -> HttpError {
        match e.kind() {
            std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => {
                HttpError::Timeout { url: url.to_string(), after: self.timeout }
            }
            std::io::ErrorKind::InvalidData => HttpError::BadResponse { url: url.to_string(), reason: e.to_string() },
            _ => HttpError::Io { url: url.to_string(), source: e },
        }
    }
}

/// Resolves a `Location` value against the URL it came from.
fn resolve(base: &str, location: &str) -> Result<String, HttpError> {
    if location.starts_with("http://") || location.starts_with("https://") {
        return Ok(location.to_string());
    }
    let b = HttpUrl::parse(base)?;
    let scheme = if b.tls { "https" } else { "http" };
    let host = if b.host.contains(':') { format!("[{}]", b.host) } else { b.host.clone() };
    if let Some(rest) = location.strip_prefix("//") {
        return Ok(format!("{scheme}://{rest}"));
    }
    if location.starts_with('/') {
        return Ok(format!("{scheme}://{host}:{}{location}", b.port));
    }
    let dir = &b.path[..b.path.split('?').next().unwrap_or("/").rfind('/').map_or(1, |i| i + 1)];
    Ok(format!("{scheme}://{host}:{}{dir}{location}", b.port))
}

fn truncate(s: &str) -> String {
    let mut out: String = s.chars().take(80).collect();
    if s.chars().count() > 80 {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_urls() {
        let u = HttpUrl::parse("http://10.0.2.2:8090/manifest").unwrap();
        assert_eq!((u.host.as_str(), u.port, u.path.as_str()), ("10.0.2.2", 8090, "/manifest"));
        let u = HttpUrl::parse("http://169.254.169.254/metadata/x?api-version=2021-02-01").unwrap();
        assert_eq!((u.port, u.path.as_str()), (80, "/metadata/x?api-version=2021-02-01"));
        let u = HttpUrl::parse("http://[::1]:81").unwrap();
        assert_eq!((u.host.as_str(), u.port, u.path.as_str()), ("::1", 81, "/"));
        assert_eq!(u.host_header(), "[::1]:81");
        let u = HttpUrl::parse("http://h?q=1").unwrap();
        assert_eq!(u.path, "/?q=1");
        let u = HttpUrl::parse("https://example.com/a").unwrap();
        assert_eq!((u.tls, u.port, u.host_header().as_str()), (true, 443, "example.com"));
        assert_eq!(resolve("http://h:1/a/b?x", "c").unwrap(), "http://h:1/a/c");
        assert_eq!(resolve("https://h/a", "/z").unwrap(), "https://h:443/z");
        assert_eq!(resolve("https://h/a", "http://o/p").unwrap(), "http://o/p");
        for (bad, why) in [
            ("ftp://x/", "only http:// and https:// are supported here"),
            ("http://", "the host is empty"),
            ("http://a:0/", "the port is not 1-65535"),
            ("http://a:99999/", "the port is not 1-65535"),
            ("http://u@h/", "user names are not allowed"),
            ("http://h/a b", "the path contains spaces or control characters"),
            ("http://h/#f", "fragments are not allowed"),
        ] {
            let r = HttpUrl::parse(bad);
            assert!(matches!(&r, Err(HttpError::BadUrl { url, reason }) if url == bad && *reason == why), "{bad}: {r:?}");
        }
    }
}
