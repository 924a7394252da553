//! The hostname → workload mapping and the nginx configuration: each case of the issue (equal
//! counts, more hostnames → 502, more workloads → HTTP only, duplicates, missing certificate →
//! HTTP), every generated file checked with the real `nginx -t`, and one live nginx on loopback
//! ports answering through curl with SNI; plus the runtime's fallback when nginx refuses a
//! certificate.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use cvmkit_runtime::nginx::{render, NginxConfig, NginxOptions};
use cvmkit_runtime::routes::{parse_hostnames, plan, Target};

use crate::support::*;

fn options(dir: &Path) -> NginxOptions {
    NginxOptions {
        tls_dir: dir.join("tls"),
        run_dir: dir.join("run"),
        log_dir: dir.join("log"),
        listen_addr: Some("127.0.0.1".into()),
        https_port: 8443,
        http_port: 8080,
        user: None,
        force_http: false,
        acme_challenge_dir: None,
    }
}

/// Writes `conf` and runs `nginx -t` on it (as root, every path under `dir`); returns stderr.
fn nginx_t(dir: &Path, conf: &NginxConfig) -> Result<String, String> {
    for d in ["run", "log"] {
        std::fs::create_dir_all(dir.join(d)).unwrap();
    }
    let file = dir.join("nginx.conf");
    std::fs::write(&file, &conf.text).unwrap();
    let out = cvmkit_testutil::output_deadline(
        Command::new(require_tool("nginx"))
            .arg("-t")
            .arg("-c")
            .arg(&file)
            .arg("-e")
            .arg(dir.join("log/startup-error.log")),
        TOOL_TIMEOUT,
    );
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    if out.status.success() {
        Ok(err)
    } else {
        Err(err)
    }
}

fn check(dir: &Path, conf: &NginxConfig) {
    let out = nginx_t(dir, conf).unwrap_or_else(|e| panic!("nginx -t refused:\n{e}\n{}", conf.text));
    assert!(out.contains("test is successful"), "{out}");
}

fn count(text: &str, needle: &str) -> usize {
    text.matches(needle).count()
}

#[test]
fn as_many_hostnames_as_workloads_all_https() {
    let dir = tempfile::tempdir().unwrap();
    let o = options(dir.path());
    self_signed(&o.tls_dir, "a.example");
    self_signed(&o.tls_dir, "b.example");
    let p = plan(&parse_hostnames("a.example,b.example").unwrap(), 2, 3001);
    let conf = render(&p, &o);
    assert_eq!(conf.https, ["a.example", "b.example"]);
    assert!(conf.http_fallback.is_empty());
    assert_eq!(count(&conf.text, "listen 127.0.0.1:8443 ssl;"), 2);
    assert!(conf.text.contains("server_name a.example;\n        ssl_certificate"));
    assert!(conf.text.contains("proxy_pass http://127.0.0.1:3001;"));
    assert!(conf.text.contains("proxy_pass http://127.0.0.1:3002;"));
    assert_eq!(count(&conf.text, "return 301 https://$host$request_uri;"), 2);
    assert!(conf.text.contains("ssl_reject_handshake on;"));
    check(dir.path(), &conf);
}

#[test]
fn more_hostnames_than_workloads_answer_502() {
    let dir = tempfile::tempdir().unwrap();
    let o = options(dir.path());
    for h in ["a.example", "b.example", "c.example"] {
        self_signed(&o.tls_dir, h);
    }
    let p = plan(&parse_hostnames("a.example,b.example,c.example").unwrap(), 1, 3001);
    assert_eq!(p.routes[1].target, Target::BadGateway);
    let conf = render(&p, &o);
    assert_eq!(count(&conf.text, "return 502;"), 2);
    assert_eq!(count(&conf.text, "proxy_pass"), 1);
    assert!(conf.text.contains("# c.example -> no workload (502)"));
    check(dir.path(), &conf);
}

#[test]
fn more_workloads_than_hostnames_stay_http_only() {
    let dir = tempfile::tempdir().unwrap();
    let o = options(dir.path());
    self_signed(&o.tls_dir, "a.example");
    let p = plan(&parse_hostnames("a.example").unwrap(), 3, 3001);
    assert_eq!(p.http_only, [1, 2]);
    let conf = render(&p, &o);
    assert_eq!(count(&conf.text, "proxy_pass"), 1);
    assert!(conf.text.contains("# workload 1: no hostname, plain HTTP on its own port only"));
    assert!(conf.text.contains("# workload 2: no hostname"));
    assert!(!conf.text.contains(":3002;") && !conf.text.contains(":3003;"));
    check(dir.path(), &conf);
}

#[test]
fn duplicates_are_removed_keeping_the_first() {
    let dir = tempfile::tempdir().unwrap();
    let o = options(dir.path());
    for h in ["a.example", "b.example"] {
        self_signed(&o.tls_dir, h);
    }
    let names = parse_hostnames("a.example, A.EXAMPLE ,b.example,a.example").unwrap();
    assert_eq!(names, ["a.example", "b.example"]);
    let p = plan(&names, 2, 3001);
    let conf = render(&p, &o);
    // b.example is hostname 1 (not 3), so it maps to workload 1.
    assert!(conf.text.contains("# b.example -> workload 1 (127.0.0.1:3002)"), "{}", conf.text);
    assert_eq!(count(&conf.text, "server_name a.example;"), 2); // HTTPS + redirect
    check(dir.path(), &conf);
}

#[test]
fn missing_certificate_or_key_serves_that_hostname_over_http() {
    let dir = tempfile::tempdir().unwrap();
    let o = options(dir.path());
    self_signed(&o.tls_dir, "a.example");
    self_signed(&o.tls_dir, "b.example");
    std::fs::remove_file(o.tls_dir.join("b.example/privkey.pem")).unwrap();
    // c.example has no directory at all.
    let p = plan(&parse_hostnames("a.example,b.example,c.example").unwrap(), 3, 3001);
    let conf = render(&p, &o);
    assert_eq!(conf.https, ["a.example"]);
    assert_eq!(conf.http_fallback, ["b.example", "c.example"]);
    assert!(conf.text.contains(
        "    server {\n        listen 127.0.0.1:8080;\n        server_name b.example;\n        location / {\n            proxy_pass http://127.0.0.1:3002;"
    ));
    assert!(!conf.text.contains("b.example/privkey.pem"));
    check(dir.path(), &conf);
    // No certificate at all: no HTTPS server, no default TLS server either.
    let none = render(&p, &NginxOptions { tls_dir: dir.path().join("nothing"), ..o.clone() });
    assert!(none.https.is_empty() && !none.text.contains("listen 127.0.0.1:8443"), "{}", none.text);
    check(dir.path(), &none);
}

#[test]
fn no_hostname_gives_a_valid_config_that_serves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let conf = render(&plan(&[], 2, 3001), &options(dir.path()));
    assert_eq!(count(&conf.text, "server {"), 1);
    check(dir.path(), &conf);
}

#[test]
fn unusable_certificate_is_caught_by_nginx_t() {
    let dir = tempfile::tempdir().unwrap();
    let o = options(dir.path());
    std::fs::create_dir_all(o.tls_dir.join("a.example")).unwrap();
    std::fs::write(o.tls_dir.join("a.example/fullchain.pem"), "not a certificate\n").unwrap();
    std::fs::write(o.tls_dir.join("a.example/privkey.pem"), "not a key\n").unwrap();
    let p = plan(&parse_hostnames("a.example").unwrap(), 1, 3001);
    let conf = render(&p, &o);
    assert_eq!(conf.https, ["a.example"]); // present, so tried
    let err = nginx_t(dir.path(), &conf).unwrap_err();
    assert!(err.contains("fullchain.pem"), "{err}");
    let fallback = render(&p, &NginxOptions { force_http: true, ..o });
    assert_eq!(fallback.http_fallback, ["a.example"]);
    check(dir.path(), &fallback);
}

/// curl through nginx: `--resolve` pins the hostname to 127.0.0.1 so SNI and Host are real.
/// `(status, body)`, or curl's exit code and stderr, so that a test can tell which failure it got.
fn curl(scheme: &str, host: &str, port: u16, ca: Option<&Path>) -> Result<(u16, String), (Option<i32>, String)> {
    let mut c = Command::new(require_tool("curl"));
    c.args(["-sS", "--max-time", "5", "-o", "-", "-w", "\n%{http_code}", "--noproxy", "*"])
        .arg("--resolve")
        .arg(format!("{host}:{port}:127.0.0.1"));
    if let Some(ca) = ca {
        c.arg("--cacert").arg(ca);
    }
    let out = cvmkit_testutil::output_deadline(c.arg(format!("{scheme}://{host}:{port}/")), TOOL_TIMEOUT);
    if !out.status.success() {
        return Err((out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned()));
    }
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap();
    Ok((code.parse().unwrap(), body.to_string()))
}

struct Nginx(std::process::Child, PathBuf);

impl Nginx {
    fn start(dir: &Path, conf: &NginxConfig) -> Self {
        check(dir, conf);
        let file = dir.join("nginx.conf");
        let child = Command::new(require_tool("nginx"))
            .arg("-c")
            .arg(&file)
            .arg("-e")
            .arg(dir.join("log/startup-error.log"))
            .args(["-g", "daemon off;"])
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        Self(child, dir.join("run/nginx.pid"))
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGQUIT to the master so its workers go too (by syscall: no `kill` binary needed); if
        // it has not exited within 10 s, SIGKILL. Never an unbounded wait.
        cvmkit_testutil::signal_process(self.0.id(), cvmkit_testutil::Signal::QUIT);
        let end = std::time::Instant::now() + Duration::from_secs(10);
        while std::time::Instant::now() < end && matches!(self.0.try_wait(), Ok(None)) {
            std::thread::sleep(Duration::from_millis(20));
        }
        cvmkit_testutil::kill_and_reap(&mut self.0);
    }
}

#[test]
fn live_nginx_routes_hostnames_by_sni() {
    let dir = tempfile::tempdir().unwrap();
    let base = free_ports(2);
    let w0 = Server::start_at(Flavor::Plain, base);
    w0.set("/", Reply::Body(b"workload 0".to_vec()));
    let w1 = Server::start_at(Flavor::Plain, base + 1);
    w1.set("/", Reply::Body(b"workload 1".to_vec()));
    let ports = free_ports(2);
    let o = NginxOptions { https_port: ports, http_port: ports + 1, ..options(dir.path()) };
    // a: HTTPS -> workload 0; b: no certificate -> HTTP -> workload 1; c: HTTPS, no workload -> 502.
    self_signed(&o.tls_dir, "a.example");
    self_signed(&o.tls_dir, "c.example");
    let p = plan(&parse_hostnames("a.example,b.example,c.example").unwrap(), 2, base);
    let conf = render(&p, &o);
    let _nginx = Nginx::start(dir.path(), &conf);
    let ca_a = o.tls_dir.join("a.example/fullchain.pem");
    let ca_c = o.tls_dir.join("c.example/fullchain.pem");
    let a = wait_for(Duration::from_secs(10), || curl("https", "a.example", o.https_port, Some(&ca_a)).ok());
    assert_eq!(a, Some((200, "workload 0".to_string())));
    assert_eq!(curl("https", "c.example", o.https_port, Some(&ca_c)).unwrap().0, 502);
    assert_eq!(curl("http", "b.example", o.http_port, None).unwrap(), (200, "workload 1".to_string()));
    assert_eq!(curl("http", "a.example", o.http_port, None).unwrap().0, 301);
    // b has no certificate: no TLS for it; an unknown name gets no TLS either.
    // curl exits 35 (CURLE_SSL_CONNECT_ERROR): the handshake is refused, not a bad certificate.
    for host in ["b.example", "unknown.example"] {
        let r = curl("https", host, o.https_port, Some(&ca_a));
        assert!(matches!(r, Err((Some(35), _))), "{host}: {r:?}");
    }
    // Unknown Host over HTTP: connection closed without a response (444), curl exits 52
    // (CURLE_GOT_NOTHING).
    let r = curl("http", "unknown.example", o.http_port, None);
    assert!(matches!(r, Err((Some(52), _))), "{r:?}");
}

#[test]
fn runtime_falls_back_to_http_when_nginx_refuses_the_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir_all(d.join("tls/a.example")).unwrap();
    std::fs::write(d.join("tls/a.example/fullchain.pem"), "garbage\n").unwrap();
    std::fs::write(d.join("tls/a.example/privkey.pem"), "garbage\n").unwrap();
    let http_port = free_ports(1);
    let (_runtime, base, _https, _meta) =
        runtime_behind_nginx(d, http_port, "a.example", &[("gcp-url", closed_url()), ("azure-url", closed_url())]);
    // The workload is reachable directly and, through nginx, over plain HTTP by its hostname.
    let direct =
        wait_for(Duration::from_secs(20), || http_get(&format!("http://127.0.0.1:{base}/")).filter(|r| r.0 == 200));
    assert_eq!(direct.expect("workload never answered").1, "served-by-app\n");
    let via =
        wait_for(Duration::from_secs(20), || curl("http", "a.example", http_port, None).ok().filter(|r| r.0 == 200));
    assert_eq!(via, Some((200, "served-by-app\n".to_string())));
    let log = std::fs::read_to_string(d.join("log/runtime.log")).unwrap();
    assert!(log.contains("nginx refused the HTTPS configuration"), "{log}");
    assert!(log.contains("falling back to HTTP only"), "{log}");
    let conf = std::fs::read_to_string(d.join("etc/nginx.conf")).unwrap();
    assert!(!conf.contains("ssl_certificate"), "{conf}");
    // Stop nginx's master politely so its workers go too (the group kill follows).
    quit_nginx(d);
}
