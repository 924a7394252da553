//! The metadata server the guest reaches as 10.0.2.2:8090 (through QEMU's guestfwd and the
//! relay): `GET`/`HEAD` of a fixed set of paths, 200 with the bytes, 404 for any other path,
//! 405 for any other method, 500 when an app file cannot be read. Every request is recorded
//! (for the report) and told to the observer as `metadata METHOD TARGET -> STATUS`.
//!
//! HTTP is spoken by `tiny_http`: a small, synchronous server (no async runtime and its
//! dependency tree for a handful of requests per boot), widely used (rouille is built on it),
//! rather than request parsing of our own. It bounds neither a request head nor how long a
//! client may take, and the guest is not trusted, so it listens on a Unix socket in a private
//! directory and a front on 127.0.0.1 passes it at most [`REQUEST_LIMIT`] bytes per connection,
//! with read and write timeouts. The front only copies bytes; it does not parse HTTP.

use std::collections::HashMap;
use std::io::Read as _;
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};

use crate::{Event, Observer};

/// Bytes of one connection that reach the server: the guest sends only `GET`s (a head, no
/// body), so anything longer is cut off there and the connection closed without an answer.
pub const REQUEST_LIMIT: u64 = 64 << 10;

/// What the metadata server answers for one path.
#[derive(Clone, Debug)]
pub enum Route {
    /// These bytes.
    Bytes(Vec<u8>),
    /// The file's content, read when asked.
    File(PathBuf),
}

/// A running metadata server; its threads live as long as the process.
pub struct MetadataServer {
    port: u16,
    requests: Arc<Mutex<Vec<String>>>,
    /// Holds the server's socket (mode 0700: only this user reaches it).
    _dir: tempfile::TempDir,
}

impl MetadataServer {
    /// Starts serving `routes` (paths such as `/manifest`) on a free port of 127.0.0.1.
    pub fn start(routes: HashMap<String, Route>, observer: Observer) -> Result<MetadataServer> {
        let dir = tempfile::Builder::new()
            .prefix("cvmkit-metadata.")
            .tempdir()
            .context("cannot create a directory for the metadata server")?;
        let socket = dir.path().join("http.sock");
        let server = tiny_http::Server::http_unix(&socket).map_err(|e| {
            anyhow::anyhow!(
                "cannot start the metadata server on {}: {e}",
                socket.display()
            )
        })?;
        let listener = TcpListener::bind("127.0.0.1:0")
            .context("cannot start the metadata server on 127.0.0.1")?;
        let port = listener.local_addr()?.port();
        let requests: Arc<Mutex<Vec<String>>> = Arc::default();
        let routes = Arc::new(routes);
        let log = requests.clone();
        std::thread::spawn(move || {
            for request in server.incoming_requests() {
                let (routes, log, observer) = (routes.clone(), log.clone(), observer.clone());
                // A thread per request: a slow reader of a large app does not hold up the rest.
                std::thread::spawn(move || serve(request, &routes, &log, &observer));
            }
        });
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let socket = socket.clone();
                std::thread::spawn(move || front(conn, &socket));
            }
        });
        Ok(MetadataServer {
            port,
            requests,
            _dir: dir,
        })
    }

    /// The port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The request targets so far, in order, escaped (they are the guest's text).
    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().map(|r| r.clone()).unwrap_or_default()
    }
}

/// Copies one TCP connection to the server's socket and back, bounded and with timeouts.
fn front(conn: TcpStream, socket: &Path) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(30)));
    let _ = conn.set_write_timeout(Some(Duration::from_secs(60)));
    let Ok(back) = UnixStream::connect(socket) else {
        return;
    };
    let (Ok(from_client), Ok(to_server)) = (conn.try_clone(), back.try_clone()) else {
        return;
    };
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut from_client.take(REQUEST_LIMIT), &mut &to_server);
        let _ = to_server.shutdown(Shutdown::Write);
    });
    let _ = std::io::copy(&mut &back, &mut &conn);
    // The server is done (it closes after `Connection: close` or a bad request): so are we.
    // Dropping `conn` closes it once the other thread lets go of its clone.
    let _ = conn.shutdown(Shutdown::Write);
}

fn serve(
    request: tiny_http::Request,
    routes: &HashMap<String, Route>,
    log: &Mutex<Vec<String>>,
    observer: &Observer,
) {
    let method = request.method().as_str().to_string();
    let path = request.url().split('?').next().unwrap_or("").to_string();
    // Recorded and shown escaped: it is the guest's text (no terminal escapes reach the user).
    let target: String = request.url().escape_debug().collect();
    if let Ok(mut l) = log.lock() {
        l.push(target.clone());
    }
    let octets = || header("Content-Type", "application/octet-stream");
    let (status, response) = match (method.as_str(), routes.get(&path)) {
        ("GET" | "HEAD", Some(Route::Bytes(b))) => (
            200,
            tiny_http::Response::from_data(b.clone())
                .with_header(octets())
                .boxed(),
        ),
        ("GET" | "HEAD", Some(Route::File(p))) => match std::fs::File::open(p) {
            Ok(f) => (
                200,
                tiny_http::Response::from_file(f)
                    .with_header(octets())
                    .boxed(),
            ),
            Err(_) => text(500),
        },
        ("GET" | "HEAD", None) => text(404),
        _ => text(405),
    };
    // Told before answering, so the record is complete once the client has its answer.
    observer(Event::Metadata {
        method: &method,
        target: &target,
        status,
    });
    // (tiny_http leaves out the body of a HEAD answer.) A client that went away is no error.
    let _ = request.respond(response);
}

/// A plain-text answer `STATUS REASON\n`.
fn text(status: u16) -> (u16, tiny_http::ResponseBox) {
    let code = tiny_http::StatusCode(status);
    let body = format!("{status} {}\n", code.default_reason_phrase());
    let r = tiny_http::Response::from_string(body)
        .with_status_code(code)
        .with_header(header("Content-Type", "text/plain"));
    (status, r.boxed())
}

fn header(name: &str, value: &str) -> tiny_http::Header {
    tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes())
        .expect("constant header names and values are valid")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    /// The guest talks to this server: an oversized request is cut off (no answer, nothing
    /// served), a terminal escape in the path is recorded escaped, the status codes are the ones
    /// the runtime relies on, and the server keeps answering.
    #[test]
    fn metadata_server_bounds_and_escapes_guest_requests() {
        let mut routes = HashMap::new();
        routes.insert("/manifest".to_string(), Route::Bytes(b"m".to_vec()));
        routes.insert(
            "/apps/0".to_string(),
            Route::File("/nonexistent/app".into()),
        );
        let lines: Arc<Mutex<Vec<String>>> = Arc::default();
        let seen = lines.clone();
        let observer: Observer = Arc::new(move |e| {
            if let Event::Metadata {
                method,
                target,
                status,
            } = e
            {
                seen.lock()
                    .unwrap()
                    .push(format!("{method} {target} -> {status}"));
            }
        });
        let server = MetadataServer::start(routes, observer).unwrap();
        let ask = |request: &[u8]| {
            let mut c = TcpStream::connect(("127.0.0.1", server.port())).unwrap();
            c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let _ = c.write_all(request);
            let _ = c.shutdown(Shutdown::Write);
            let mut answer = Vec::new();
            let _ = c.read_to_end(&mut answer);
            String::from_utf8_lossy(&answer).into_owned()
        };
        let mut huge = b"GET /".to_vec();
        huge.extend(std::iter::repeat_n(b'a', 1 << 20));
        assert_eq!(ask(&huge), "", "an oversized request is not answered");
        assert!(ask(b"GET /\x1b[2J HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 404"));
        let ok = ask(b"GET /manifest HTTP/1.1\r\nConnection: close\r\n\r\n");
        assert!(
            ok.starts_with("HTTP/1.1 200") && ok.ends_with("\r\n\r\nm"),
            "{ok}"
        );
        let head = ask(b"HEAD /manifest?x=1 HTTP/1.1\r\n\r\n");
        assert!(
            head.starts_with("HTTP/1.1 200") && head.ends_with("\r\n\r\n"),
            "{head}"
        );
        assert!(ask(b"POST /manifest HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 405"));
        assert!(ask(b"GET /apps/0 HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 500"));
        assert_eq!(
            server.requests(),
            [
                "/\\u{1b}[2J",
                "/manifest",
                "/manifest?x=1",
                "/manifest",
                "/apps/0"
            ]
        );
        assert_eq!(
            lines.lock().unwrap().as_slice(),
            [
                "GET /\\u{1b}[2J -> 404",
                "GET /manifest -> 200",
                "HEAD /manifest?x=1 -> 200",
                "POST /manifest -> 405",
                "GET /apps/0 -> 500"
            ]
        );
    }
}
