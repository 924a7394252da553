//! ACME against the real Pebble (Let's Encrypt's test CA, Debian's `pebble`) on loopback, doing
//! real HTTP-01 validation: Pebble resolves the names through pebble-challtestsrv's DNS (every
//! name → 127.0.0.1) and fetches the challenge from the real nginx the runtime configured. Covers
//! the module alone (one SAN certificate, both names served over HTTPS), the runtime binary
//! (certificate installed, nginx reloaded, workload reached over HTTPS by name with Pebble's root),
//! and the fallbacks: Pebble refusing every validation, and no ACME server at all, each leaving
//! the workload on HTTP with the reason logged.

use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use cvmkit_runtime::acme::{self, Acme};
use cvmkit_runtime::log::Logger;
use cvmkit_runtime::nginx::{render, NginxOptions};
use cvmkit_runtime::routes::{parse_hostnames, plan};

use cvmkit_testutil::pebble::Pebble;

use crate::support::*;

/// curl by name, pinned to 127.0.0.1: `(status, body)` or curl's failure.
fn curl(scheme: &str, host: &str, port: u16, ca: Option<&Path>) -> Result<(u16, String), String> {
    let mut c = Command::new(require_tool("curl"));
    c.args(["-sS", "--max-time", "5", "-o", "-", "-w", "\n%{http_code}", "--noproxy", "*"])
        .arg("--resolve")
        .arg(format!("{host}:{port}:127.0.0.1"));
    if let Some(ca) = ca {
        c.arg("--cacert").arg(ca);
    }
    let out = cvmkit_testutil::output_deadline(c.arg(format!("{scheme}://{host}:{port}/")), TOOL_TIMEOUT);
    if !out.status.success() {
        return Err(format!("curl exit {:?}: {}", out.status.code(), String::from_utf8_lossy(&out.stderr)));
    }
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap();
    Ok((code.parse().unwrap(), body.to_string()))
}

/// nginx running `conf`, stopped (SIGQUIT, then SIGKILL) on drop.
struct Nginx(std::process::Child);

impl Nginx {
    fn start(dir: &Path, text: &str) -> Self {
        for d in ["run", "log"] {
            std::fs::create_dir_all(dir.join(d)).unwrap();
        }
        std::fs::write(dir.join("nginx.conf"), text).unwrap();
        let child = Command::new(require_tool("nginx"))
            .arg("-c")
            .arg(dir.join("nginx.conf"))
            .arg("-e")
            .arg(dir.join("log/startup-error.log"))
            .args(["-g", "daemon off;"])
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        Self(child)
    }

    fn reload(&self, dir: &Path, text: &str) {
        std::fs::write(dir.join("nginx.conf"), text).unwrap();
        cvmkit_testutil::signal_process(self.0.id(), cvmkit_testutil::Signal::HUP);
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        cvmkit_testutil::signal_process(self.0.id(), cvmkit_testutil::Signal::QUIT);
        let end = std::time::Instant::now() + Duration::from_secs(10);
        while std::time::Instant::now() < end && matches!(self.0.try_wait(), Ok(None)) {
            std::thread::sleep(Duration::from_millis(20));
        }
        cvmkit_testutil::kill_and_reap(&mut self.0);
    }
}

fn nginx_options(dir: &Path, https_port: u16, http_port: u16) -> NginxOptions {
    NginxOptions {
        tls_dir: dir.join("tls"),
        run_dir: dir.join("run"),
        log_dir: dir.join("log"),
        listen_addr: Some("127.0.0.1".into()),
        https_port,
        http_port,
        user: None,
        force_http: false,
        acme_challenge_dir: Some(dir.join("run/acme-challenge")),
    }
}

#[test]
fn module_gets_one_san_certificate_from_pebble_through_nginx() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let base = free_ports(2);
    let w0 = Server::start_at(Flavor::Plain, base);
    w0.set("/", Reply::Body(b"workload 0".to_vec()));
    let w1 = Server::start_at(Flavor::Plain, base + 1);
    w1.set("/", Reply::Body(b"workload 1".to_vec()));
    let ports = free_ports(2);
    let o = nginx_options(d, ports, ports + 1);
    let names = parse_hostnames("app.test,www.app.test").unwrap();
    let p = plan(&names, 2, base);
    let before = render(&p, &o);
    assert!(before.https.is_empty());
    assert_eq!(before.text.matches("location ^~ /.well-known/acme-challenge/").count(), 2, "{}", before.text);
    let nginx = Nginx::start(d, &before.text);
    let pebble = Pebble::start(d, o.http_port, &[]);
    let cfg = Acme {
        directory: pebble.directory.clone(),
        ca_file: Some(pebble.listener_ca.clone()),
        contact: Some("mailto:ops@app.test".into()),
        challenge_dir: o.acme_challenge_dir.clone().unwrap(),
        timeout: Duration::from_secs(60),
        request_timeout: Duration::from_secs(10),
        poll_interval: Duration::from_millis(200),
        retry: Duration::from_secs(1),
    };
    let log = Logger::new("test: ", Some(&d.join("acme.log")), false).unwrap();
    wait_for(Duration::from_secs(10), || TcpStream::connect(("127.0.0.1", o.http_port)).ok()).expect("nginx");
    let issued = acme::obtain(&cfg, &names, &log).unwrap_or_else(|e| panic!("{e}\npebble:\n{}", pebble.log()));
    // Validation really went through nginx: Pebble fetched both challenges from it.
    // (Pebble, like Let's Encrypt, fetches each challenge from several "perspectives".)
    let access = std::fs::read_to_string(d.join("log/nginx-access.log")).unwrap();
    let mut tokens: Vec<&str> = access
        .lines()
        .filter(|l| l.contains("LetsEncrypt-Pebble-VA"))
        .map(|l| {
            assert!(l.contains("HTTP/1.1\" 200 "), "{l}");
            l.split("/.well-known/acme-challenge/").nth(1).unwrap().split(' ').next().unwrap()
        })
        .collect();
    tokens.sort_unstable();
    tokens.dedup();
    assert_eq!(tokens.len(), 2, "{access}");
    assert!(std::fs::read_dir(&cfg.challenge_dir).unwrap().next().is_none(), "challenge files are removed");
    assert!(issued.key_pem.starts_with("-----BEGIN PRIVATE KEY-----"));
    let life = issued.not_after.duration_since(issued.not_before).unwrap();
    assert!(acme::renew_at(issued.not_before, issued.not_after) == issued.not_before + life / 3 * 2);
    // One certificate for both names: installed for each, nginx reloaded, both reachable over
    // HTTPS with Pebble's root as the only trust anchor.
    acme::install(&o.tls_dir, &names, &issued).unwrap();
    let after = render(&p, &o);
    assert_eq!(after.https, names);
    nginx.reload(d, &after.text);
    let root = pebble.root();
    let a = wait_for(Duration::from_secs(10), || curl("https", "app.test", o.https_port, Some(&root)).ok());
    assert_eq!(a, Some((200, "workload 0".to_string())));
    assert_eq!(curl("https", "www.app.test", o.https_port, Some(&root)).unwrap(), (200, "workload 1".to_string()));
    // HTTP now redirects (once the old worker, which may still accept for a moment after the
    // reload, is gone), but challenges are still answered there (renewal needs them).
    let redirect =
        wait_for(Duration::from_secs(10), || curl("http", "app.test", o.http_port, None).ok().filter(|r| r.0 == 301));
    assert!(redirect.is_some(), "{:?}", curl("http", "app.test", o.http_port, None));
    std::fs::write(cfg.challenge_dir.join("tok-en_1"), "answer").unwrap();
    let mut c = Command::new(require_tool("curl"));
    c.args(["-sS", "--max-time", "5", "--noproxy", "*", "--resolve", &format!("app.test:{}:127.0.0.1", o.http_port)]);
    let out = cvmkit_testutil::output_deadline(
        c.arg(format!("http://app.test:{}/.well-known/acme-challenge/tok-en_1", o.http_port)),
        TOOL_TIMEOUT,
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "answer");
}

fn runtime_log(d: &Path) -> String {
    std::fs::read_to_string(d.join("log/runtime.log")).unwrap_or_default()
}

fn wait_log(d: &Path, needle: &str) -> String {
    wait_for(Duration::from_secs(60), || Some(runtime_log(d)).filter(|l| l.contains(needle)))
        .unwrap_or_else(|| panic!("runtime never logged {needle:?}:\n{}", runtime_log(d)))
}

#[test]
fn runtime_obtains_a_certificate_and_reloads_nginx_to_https() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let http_port = free_ports(1);
    let pebble = Pebble::start(d, http_port, &[]);
    let acme = [
        ("acme-directory", pebble.directory.clone()),
        ("acme-ca-file", pebble.listener_ca.display().to_string()),
    ];
    let (_rt, base, https_port, _meta) = runtime_behind_nginx(d, http_port, "app.test,www.app.test", &acme);
    let log = wait_log(d, "acme: nginx reloaded with HTTPS");
    assert!(log.contains("acme: certificate for app.test,www.app.test installed"), "{log}");
    let root = pebble.root();
    let a = wait_for(Duration::from_secs(10), || curl("https", "app.test", https_port, Some(&root)).ok());
    assert_eq!(a, Some((200, "served-by-app\n".to_string())), "{}", runtime_log(d));
    // The second name has no workload: same certificate, 502.
    assert_eq!(curl("https", "www.app.test", https_port, Some(&root)).unwrap().0, 502);
    assert_eq!(http_get(&format!("http://127.0.0.1:{base}/")).unwrap().1, "served-by-app\n");
    use std::os::unix::fs::PermissionsExt as _;
    let key = std::fs::metadata(d.join("tls/app.test/privkey.pem")).unwrap();
    assert_eq!(key.permissions().mode() & 0o777, 0o600);
    quit_nginx(d);
}

#[test]
fn pebble_refusing_validation_leaves_the_workload_on_http() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let http_port = free_ports(1);
    // Pebble 2.4 has no "always invalid" switch: it validates on a port where nothing answers,
    // as Let's Encrypt would for a name that does not point at the VM, and refuses the order.
    let nothing = free_ports(1);
    let pebble = Pebble::start(d, nothing, &[]);
    let acme = [
        ("acme-directory", pebble.directory.clone()),
        ("acme-ca-file", pebble.listener_ca.display().to_string()),
    ];
    let (_rt, base, https_port, _meta) = runtime_behind_nginx(d, http_port, "app.test", &acme);
    let log = wait_log(d, "serving app.test over HTTP (workloads unaffected)");
    eprintln!("{log}");
    assert!(log.contains("acme: the CA could not validate app.test:"), "{log}");
    assert!(!log.contains("nginx reloaded"), "{log}");
    let via = wait_for(Duration::from_secs(20), || curl("http", "app.test", http_port, None).ok().filter(|r| r.0 == 200));
    assert_eq!(via, Some((200, "served-by-app\n".to_string())));
    assert!(curl("https", "app.test", https_port, None).is_err());
    assert_eq!(http_get(&format!("http://127.0.0.1:{base}/")).unwrap().1, "served-by-app\n");
    quit_nginx(d);
}

#[test]
fn unreachable_acme_server_leaves_the_workload_on_http() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let http_port = free_ports(1);
    let acme = [("acme-directory", format!("{}dir", closed_url().replace("http:", "https:")))];
    let (_rt, _base, _https, _meta) = runtime_behind_nginx(d, http_port, "app.test", &acme);
    let log = wait_log(d, "serving app.test over HTTP (workloads unaffected)");
    eprintln!("{log}");
    assert!(log.contains("acme: ACME server https://127.0.0.1:"), "{log}");
    assert!(log.contains("check acme-directory, acme-ca-file and that the VM reaches it"), "{log}");
    let via = wait_for(Duration::from_secs(20), || curl("http", "app.test", http_port, None).ok().filter(|r| r.0 == 200));
    assert_eq!(via, Some((200, "served-by-app\n".to_string())));
    quit_nginx(d);
}
