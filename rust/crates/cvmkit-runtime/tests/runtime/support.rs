//! Shared test helpers: a real HTTP/1.1 server on 127.0.0.1 that answers like the GCP metadata
//! server, Azure IMDS or the QEMU host service (headers required, 404s, delays, broken answers),
//! and helpers to find host tools. Nothing here talks to anything but loopback.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;

/// How the server answers one path.
#[derive(Clone, Debug)]
pub enum Reply {
    /// 200 with this body and a Content-Length.
    Body(Vec<u8>),
    /// 200 with this body, chunked in pieces of 7 bytes.
    Chunked(Vec<u8>),
    /// This status and a short body.
    Status(u16),
    /// Accept, read the request, then say nothing for this long (a hung metadata server).
    Hang(Duration),
    /// Accept and close at once without an answer.
    Close,
    /// 302 with this `Location`.
    Redirect(String),
}

/// Which metadata service the server imitates: what header it requires and sends back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    /// Requires `Metadata-Flavor: Google` (403 otherwise), answers with the same header.
    Gcp,
    /// Requires `Metadata: true` (400 otherwise), JSON answers.
    Azure,
    /// No header required.
    Plain,
}

/// A request as received.
#[derive(Clone, Debug)]
pub struct Request {
    /// Path and query.
    pub path: String,
    /// Header fields, names lower-cased.
    pub headers: Vec<(String, String)>,
}

/// A loopback HTTP server; stops when dropped.
pub struct Server {
    pub addr: SocketAddr,
    routes: Arc<Mutex<HashMap<String, Reply>>>,
    requests: Arc<Mutex<Vec<Request>>>,
    stop: Arc<AtomicBool>,
}

impl Server {
    /// Starts a server on 127.0.0.1 with a free port.
    pub fn start(flavor: Flavor) -> Self {
        Self::start_on(flavor, TcpListener::bind("127.0.0.1:0").unwrap())
    }

    fn start_on(flavor: Flavor, listener: TcpListener) -> Self {
        let addr = listener.local_addr().unwrap();
        listener.set_nonblocking(true).unwrap();
        let routes: Arc<Mutex<HashMap<String, Reply>>> = Arc::default();
        let requests: Arc<Mutex<Vec<Request>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (r, q, s) = (routes.clone(), requests.clone(), stop.clone());
        std::thread::spawn(move || {
            while !s.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        let (r, q, s) = (r.clone(), q.clone(), s.clone());
                        std::thread::spawn(move || serve(conn, flavor, &r, &q, &s));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        Self { addr, routes, requests, stop }
    }

    /// `http://127.0.0.1:PORT/`.
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// Answers `path` (with the query, as requested) with `reply`.
    pub fn set(&self, path: &str, reply: Reply) {
        self.routes.lock().unwrap().insert(path.to_string(), reply);
    }

    /// Requests received so far.
    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn serve(
    mut conn: TcpStream,
    flavor: Flavor,
    routes: &Mutex<HashMap<String, Reply>>,
    requests: &Mutex<Vec<Request>>,
    stop: &AtomicBool,
) {
    conn.set_nonblocking(false).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).is_err() || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let has = |k: &str, v: &str| headers.iter().any(|(hk, hv)| hk == k && hv == v);
    let header_ok = match flavor {
        Flavor::Gcp => has("metadata-flavor", "Google"),
        Flavor::Azure => has("metadata", "true"),
        Flavor::Plain => true,
    };
    requests.lock().unwrap().push(Request { path: path.clone(), headers: headers.clone() });
    let reply = if !header_ok {
        Reply::Status(if flavor == Flavor::Gcp { 403 } else { 400 })
    } else {
        routes.lock().unwrap().get(&path).cloned().unwrap_or(Reply::Status(404))
    };
    let extra = match flavor {
        Flavor::Gcp => "Metadata-Flavor: Google\r\nContent-Type: application/text\r\n",
        Flavor::Azure => "Content-Type: application/json; charset=utf-8\r\n",
        Flavor::Plain => "Content-Type: application/octet-stream\r\n",
    };
    let _ = match reply {
        Reply::Body(b) => conn
            .write_all(
                format!("HTTP/1.1 200 OK\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n", b.len())
                    .as_bytes(),
            )
            .and_then(|_| conn.write_all(&b)),
        Reply::Chunked(b) => {
            let mut out = format!("HTTP/1.1 200 OK\r\n{extra}Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
                .into_bytes();
            for c in b.chunks(7) {
                out.extend_from_slice(format!("{:x}\r\n", c.len()).as_bytes());
                out.extend_from_slice(c);
                out.extend_from_slice(b"\r\n");
            }
            out.extend_from_slice(b"0\r\n\r\n");
            conn.write_all(&out)
        }
        Reply::Status(s) => {
            let body = format!("status {s}\n");
            conn.write_all(
                format!("HTTP/1.1 {s} X\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len())
                    .as_bytes(),
            )
        }
        Reply::Hang(d) => {
            let end = std::time::Instant::now() + d;
            while std::time::Instant::now() < end && !stop.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(20));
            }
            Ok(())
        }
        Reply::Close => Ok(()),
        Reply::Redirect(to) => conn.write_all(
            format!("HTTP/1.1 302 Found\r\n{extra}Location: {to}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        ),
    };
    let _ = conn.flush();
    let _ = conn.shutdown(std::net::Shutdown::Write);
    // Drain so the client sees an orderly close rather than a reset.
    let mut sink = [0u8; 256];
    let _ = conn.set_read_timeout(Some(Duration::from_millis(200)));
    while matches!(reader.read(&mut sink), Ok(n) if n > 0) {}
}

/// A loopback address nothing listens on (bound, then released).
pub fn closed_url() -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let a = l.local_addr().unwrap();
    drop(l);
    format!("http://{a}/")
}

/// base64 of `json`.
pub fn b64(json: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(json)
}

/// SHA-256 hex of `data`.
pub fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(data).iter().map(|b| format!("{b:02x}")).collect()
}

/// A manifest value for one app.
pub fn manifest_value(app: &str, sha256: &str) -> String {
    b64(&format!(r#"{{"app": "{app}", "sha256": "{sha256}"}}"#))
}

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../..").canonicalize().unwrap()
}

/// A host tool, or a failure naming the Debian package to install.
pub fn require_tool(name: &str) -> PathBuf {
    let package = match name {
        "mkfs.vfat" => "dosfstools",
        "mmd" | "mcopy" => "mtools",
        "qemu-system-x86_64" => "qemu-system-x86",
        "swtpm" => "swtpm swtpm-tools",
        "busybox" => "busybox-static",
        "cat" => "coreutils",
        other => other,
    };
    cvmkit_testutil::require_tool(name, package)
}

/// A busybox with `httpd`: $CVMKIT_BUSYBOX, else the example input BUSYBOX (its environment
/// variable or inputs.env), else one on PATH; none of them fails the test.
pub fn busybox() -> PathBuf {
    if let Some(p) = std::env::var_os("CVMKIT_BUSYBOX").filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        assert!(p.is_file(), "CVMKIT_BUSYBOX={} does not exist", p.display());
        return p;
    }
    cvmkit_testutil::try_input("BUSYBOX").unwrap_or_else(|| require_tool("busybox"))
}

/// A free TCP port on 127.0.0.1 such that `port + 1 .. port + n` were free too.
pub fn free_ports(n: u16) -> u16 {
    for _ in 0..200 {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = l.local_addr().unwrap().port();
        if base > 65000 {
            continue;
        }
        let rest: Vec<_> = (1..n).filter_map(|i| TcpListener::bind(("127.0.0.1", base + i)).ok()).collect();
        if rest.len() == usize::from(n - 1) {
            return base;
        }
    }
    panic!("no {n} consecutive free ports")
}

/// GETs `url` with the crate's own client; `None` if it cannot connect.
pub fn http_get(url: &str) -> Option<(u16, String)> {
    let c = cvmkit_runtime::http::Client {
        connect_timeout: Duration::from_secs(1),
        timeout: Duration::from_secs(3),
        max_body: 1 << 20,
        ..Default::default()
    };
    c.get(url, &[]).ok().map(|r| (r.status, String::from_utf8_lossy(&r.body).into_owned()))
}

/// Polls `f` until it returns `Some` or `timeout` passes.
pub fn wait_for<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let end = std::time::Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if std::time::Instant::now() > end {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Kills the process group `pgid` (a child started with `process_group(0)`) with SIGKILL, by the
/// kill(2) syscall (no `kill` binary needed).
pub fn kill_group(pgid: u32) {
    cvmkit_testutil::kill_group(pgid);
}

/// A child (started with `process_group(0)`) whose whole process group is killed on drop, then
/// reaped with a bounded wait.
pub struct Killed(pub std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        kill_group(self.0.id());
        cvmkit_testutil::kill_and_reap(&mut self.0);
    }
}

/// Bound of a one-shot tool run by a test (openssl, nginx -t, curl).
pub const TOOL_TIMEOUT: Duration = Duration::from_secs(120);

/// A self-signed certificate and key for `hostname` (`openssl req -x509`), in the certbot layout
/// `{tls_dir}/{hostname}/{fullchain,privkey}.pem`.
pub fn self_signed(tls_dir: &Path, hostname: &str) {
    let dir = tls_dir.join(hostname);
    std::fs::create_dir_all(&dir).unwrap();
    let out = cvmkit_testutil::output_deadline(
        std::process::Command::new(require_tool("openssl"))
            .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2"])
            .arg("-keyout")
            .arg(dir.join("privkey.pem"))
            .arg("-out")
            .arg(dir.join("fullchain.pem"))
            .args(["-subj", &format!("/CN={hostname}"), "-addext", &format!("subjectAltName=DNS:{hostname}")]),
        TOOL_TIMEOUT,
    );
    assert!(out.status.success(), "openssl req: {}", String::from_utf8_lossy(&out.stderr));
}

impl Server {
    /// Starts a server on 127.0.0.1:`port`.
    pub fn start_at(flavor: Flavor, port: u16) -> Self {
        Self::start_on(flavor, TcpListener::bind(("127.0.0.1", port)).unwrap())
    }
}

/// Runs the runtime binary in `d` with one busybox-httpd workload (answering `served-by-app`)
/// behind the host's nginx on 127.0.0.1, its metadata from a local server; `extra` adds or
/// overrides settings. Returns (guard, workload port, nginx HTTPS port, the metadata server).
pub fn runtime_behind_nginx(d: &Path, http_port: u16, hostnames: &str, extra: &[(&str, String)]) -> (Killed, u16, u16, Server) {
    let base = free_ports(1);
    let https_port = free_ports(1);
    let app = format!(
        "#!/bin/sh\nmkdir -p www\necho served-by-app > www/index.html\nexec {} httpd -f -p 127.0.0.1:$PORT -h www\n",
        busybox().display()
    );
    let meta = Server::start(Flavor::Plain);
    meta.set("/app", Reply::Body(app.clone().into_bytes()));
    meta.set(
        "/manifest",
        Reply::Body(manifest_value(&format!("{}app", meta.url()), &sha256_hex(app.as_bytes())).into_bytes()),
    );
    meta.set("/hostname", Reply::Body(hostnames.as_bytes().to_vec()));
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cvmkit-runtime"));
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    cmd.arg("run").current_dir(d);
    let p = |s: &str| d.join(s).display().to_string();
    let mut settings: Vec<(&str, String)> = vec![
        ("config", "/dev/null".to_string()),
        ("sources", "qemu".into()),
        ("qemu-url", meta.url()),
        ("discover-wait-secs", "0".into()),
        ("env-file", p("etc/env")),
        ("state-dir", p("state")),
        ("log-dir", p("log")),
        ("events-file", p("run/events")),
        ("nginx-conf", p("etc/nginx.conf")),
        ("nginx-run-dir", p("run/nginx")),
        ("tls-dir", p("tls")),
        ("nginx-bin", require_tool("nginx").display().to_string()),
        ("nginx-listen", "127.0.0.1".into()),
        ("https-port", https_port.to_string()),
        ("http-port", http_port.to_string()),
        ("base-port", base.to_string()),
        ("measure", "none".into()),
    ];
    settings.extend(extra.iter().cloned());
    for (k, v) in settings {
        cmd.arg(format!("--{k}")).arg(v);
    }
    let guard = Killed(cmd.stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap());
    (guard, base, https_port, meta)
}

/// Stops nginx's master politely (it runs in the runtime's group, which the guard kills too).
pub fn quit_nginx(d: &Path) {
    if let Ok(pid) = std::fs::read_to_string(d.join("run/nginx/nginx.pid")) {
        if let Ok(pid) = pid.trim().parse() {
            cvmkit_testutil::signal_process(pid, cvmkit_testutil::Signal::QUIT);
        }
    }
}
