//! The host as the adversary (issue #15): it controls the metadata, the network and the
//! devices. Each test replays one attack of the issue against loopback servers and files and
//! checks that it is refused: `d1_…` to `d10_…` name the issue's points, `unmeasured_…` the
//! fail-closed launch. No test can hang: every blocking step runs under a deadline that fails
//! the test.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cvmkit_runtime::fetch::{staging_path, FetchError, Fetcher};
use cvmkit_runtime::http::{Client, HttpError, TlsRoots};
use cvmkit_runtime::manifest::{decode, Manifest, WorkloadsError};
use cvmkit_runtime::metadata::{DiscoverError, Discovery, Endpoints, SourceKind};

use crate::support::*;

fn manifest(url: &str, sha256: &str) -> Manifest {
    decode(&manifest_value(url, sha256)).unwrap().remove(0)
}

fn fetcher(app_dir: Option<&Path>) -> Fetcher {
    Fetcher {
        client: Client {
            connect_timeout: Duration::from_secs(2),
            timeout: Duration::from_secs(10),
            max_body: 0,
            tls: TlsRoots::default(),
        },
        max_size: 1 << 20,
        app_dir: app_dir.map(Path::to_path_buf),
        timeout: Duration::from_secs(5),
    }
}

/// Runs `f` on a thread and fails the test if it takes longer than `limit`.
fn within<T: Send + 'static>(limit: Duration, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(limit).unwrap_or_else(|_| panic!("blocked for more than {limit:?}"))
}

/// A one-route HTTP server that answers every connection with `head` then `body`, counting the
/// connections; it writes `body` and keeps the connection open for up to 10 s.
fn raw_server(head: String, body: Vec<u8>) -> (String, Arc<AtomicUsize>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", l.local_addr().unwrap());
    let count = Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(mut conn) = conn else { continue };
            c.fetch_add(1, Ordering::SeqCst);
            let (head, body) = (head.clone(), body.clone());
            std::thread::spawn(move || {
                let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
                let mut buf = [0u8; 4096];
                let _ = conn.read(&mut buf);
                let _ = conn.write_all(head.as_bytes()).and_then(|_| conn.write_all(&body));
                std::thread::sleep(Duration::from_secs(10));
            });
        }
    });
    (url, count)
}

#[test]
fn d1_file_outside_the_app_dir_is_refused_and_no_digest_is_printed() {
    let dir = tempfile::tempdir().unwrap();
    let apps = dir.path().join("apps");
    std::fs::create_dir(&apps).unwrap();
    // A "secret" outside the app directory, named directly and through a symlink inside it.
    let secret = dir.path().join("shadow");
    std::fs::write(&secret, b"root:$6$weak:19000::::::\n").unwrap();
    let secret_sha = sha256_hex(b"root:$6$weak:19000::::::\n");
    std::os::unix::fs::symlink(&secret, apps.join("link")).unwrap();
    let f = fetcher(Some(&apps));
    for url in [
        format!("file://{}", secret.display()),
        format!("file://{}/link", apps.display()),
        format!("file://{}/../shadow", apps.display()),
        "file:///etc/passwd".to_string(),
    ] {
        let dest = dir.path().join("app-0");
        let e = f.fetch_verified(&manifest(&url, &"0".repeat(64)), &dest).unwrap_err();
        assert!(matches!(e, FetchError::OutsideAppDir { .. }), "{url}: {e}");
        assert!(e.is_final());
        let msg = e.to_string();
        assert!(!msg.contains(&secret_sha), "{msg}");
        assert!(msg.contains("setting app-dir"), "{msg}");
        assert!(!dest.exists() && !staging_path(&dest).exists());
    }
    // A missing file inside the app directory is named as such (the image's own files); a
    // missing one outside is "outside", so the host learns nothing about what exists.
    let e = f.fetch_verified(&manifest(&format!("file://{}/missing", apps.display()), &"0".repeat(64)), &dir.path().join("m"));
    assert!(matches!(e, Err(FetchError::Io { what: "open", .. })), "{e:?}");
    let e = f.fetch_verified(&manifest("file:///nonexistent/x", &"0".repeat(64)), &dir.path().join("m"));
    assert!(matches!(e, Err(FetchError::OutsideAppDir { .. })), "{e:?}");
    // No app directory at all: no file:// app.
    let e = fetcher(None).fetch_verified(&manifest("file:///etc/passwd", &"0".repeat(64)), &dir.path().join("x"));
    assert!(matches!(e, Err(FetchError::OutsideAppDir { .. })), "{e:?}");
    // Inside the app directory with the wrong digest: refused, and the content's digest is not
    // in the message (the console is the host's).
    std::fs::write(apps.join("app"), b"123456").unwrap();
    let e = f
        .fetch_verified(&manifest(&format!("file://{}/app", apps.display()), &"0".repeat(64)), &dir.path().join("y"))
        .unwrap_err();
    assert!(matches!(e, FetchError::Mismatch { .. }), "{e}");
    assert!(!e.to_string().contains(&sha256_hex(b"123456")), "{e}");
}

#[test]
fn d2_a_fifo_as_app_is_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    let out = cvmkit_testutil::output_deadline(
        std::process::Command::new(require_tool("mkfifo")).arg(&fifo),
        Duration::from_secs(10),
    );
    assert!(out.status.success());
    let f = fetcher(Some(dir.path()));
    let url = format!("file://{}", fifo.display());
    let dest = dir.path().join("app-0");
    let start = Instant::now();
    let e = within(Duration::from_secs(10), move || f.fetch_verified(&manifest(&url, &"0".repeat(64)), &dest))
        .unwrap_err();
    assert!(matches!(e, FetchError::NotRegular { .. }), "{e}");
    assert!(e.is_final());
    assert!(start.elapsed() < Duration::from_secs(2), "{:?}", start.elapsed());
    // A character device (endless /dev/zero) is not a regular file either.
    let f = fetcher(Some(Path::new("/dev")));
    let e = within(Duration::from_secs(10), move || {
        f.fetch_verified(&manifest("file:///dev/zero", &"0".repeat(64)), Path::new("/nonexistent/app"))
    })
    .unwrap_err();
    assert!(matches!(e, FetchError::NotRegular { .. }), "{e}");
}

#[test]
fn d2_a_fifo_app_does_not_block_the_next_workload() {
    // The whole runtime: workload 0 is a FIFO in the app directory, workload 1 a good HTTP app;
    // workload 1 must answer (before the fix the runtime blocked on the FIFO forever).
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let fifo = d.join("fifo");
    let out = cvmkit_testutil::output_deadline(
        std::process::Command::new(require_tool("mkfifo")).arg(&fifo),
        Duration::from_secs(10),
    );
    assert!(out.status.success());
    let app = format!(
        "#!/bin/sh\nmkdir -p www\necho alive > www/index.html\nexec {} httpd -f -p 127.0.0.1:$PORT -h www\n",
        busybox().display()
    );
    let meta = Server::start(Flavor::Plain);
    meta.set("/app", Reply::Body(app.clone().into_bytes()));
    let list = b64(&format!(
        r#"[{{"app":"file://{}","sha256":"{}"}},{{"app":"{}app","sha256":"{}"}}]"#,
        fifo.display(),
        "0".repeat(64),
        meta.url(),
        sha256_hex(app.as_bytes())
    ));
    meta.set("/manifest", Reply::Body(list.into_bytes()));
    let port = free_ports(2);
    let child = runtime_cmd(d, &meta.url(), port)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let _guard = Killed(child);
    let body = wait_for(Duration::from_secs(20), || {
        http_get(&format!("http://127.0.0.1:{}/", port + 1)).filter(|r| r.0 == 200)
    });
    assert_eq!(body.expect("workload 1 never answered: the FIFO blocked the runtime").1.trim(), "alive");
    let log = std::fs::read_to_string(d.join("log/runtime.log")).unwrap();
    assert!(log.contains("is not a regular file; refusing to read it"), "{log}");
}

/// The runtime binary with every path in `d`, metadata at `qemu`, workloads from `port`.
fn runtime_cmd(d: &Path, qemu: &str, port: u16) -> std::process::Command {
    runtime_cmd_sub("run", d, qemu, port)
}

/// [`runtime_cmd`] with another subcommand.
fn runtime_cmd_sub(sub: &str, d: &Path, qemu: &str, port: u16) -> std::process::Command {
    use std::os::unix::process::CommandExt as _;
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_cvmkit-runtime"));
    c.arg(sub).current_dir(d).process_group(0);
    let p = d.display();
    for (k, v) in [
        ("config", "/dev/null".to_string()),
        ("sources", "qemu".into()),
        ("qemu-url", qemu.into()),
        ("gcp-url", closed_url()),
        ("azure-url", closed_url()),
        ("connect-timeout-ms", "300".into()),
        ("timeout-ms", "1000".into()),
        ("discover-wait-secs", "0".into()),
        ("env-file", format!("{p}/etc/cloud-config.env")),
        ("state-dir", format!("{p}/state")),
        ("log-dir", format!("{p}/log")),
        ("app-dir", p.to_string()),
        ("events-file", format!("{p}/run/events.txt")),
        ("nginx-conf", format!("{p}/etc/nginx.conf")),
        ("nginx-run-dir", format!("{p}/run/nginx")),
        ("tls-dir", format!("{p}/tls")),
        ("base-port", port.to_string()),
        ("measure", "none".into()),
        ("fetch-attempts", "5".into()),
        ("backoff-initial-ms", "50".into()),
        ("backoff-max-ms", "100".into()),
        ("fetch-timeout-secs", "5".into()),
    ] {
        c.arg(format!("--{k}")).arg(v);
    }
    c
}

fn discovery(qemu: &str) -> Discovery {
    Discovery {
        sources: vec![SourceKind::Gcp, SourceKind::Qemu],
        endpoints: Endpoints {
            gcp: String::new(),
            azure: String::new(),
            qemu: qemu.to_string(),
            manifest_key: "manifest".into(),
            hostname_key: "hostname".into(),
        },
        client: Client { connect_timeout: Duration::from_millis(500), timeout: Duration::from_secs(5), ..Client::default() },
        max_workloads: cvmkit_runtime::manifest::MAX_WORKLOADS,
        base_port: cvmkit_runtime::manifest::BASE_PORT,
    }
}

fn list_of(n: usize) -> String {
    let one = format!(r#"{{"app":"http://h/a","sha256":"{}"}}"#, "1".repeat(64));
    b64(&format!("[{}]", vec![one; n].join(",")))
}

#[test]
fn d3_more_workloads_than_the_limit_are_refused() {
    // The issue's attack: many keys of 1,665-entry lists (106,560 workloads). Refused at the
    // first key, whatever follows.
    let qemu = Server::start(Flavor::Plain);
    qemu.set("/manifest", Reply::Body(list_of(1665).into_bytes()));
    qemu.set("/manifest-1", Reply::Body(list_of(1665).into_bytes()));
    let start = Instant::now();
    let mut d = discovery(&qemu.url());
    d.sources = vec![SourceKind::Qemu];
    let e = d.discover(&mut |_| {}).unwrap_err();
    assert!(start.elapsed() < Duration::from_secs(5));
    assert!(
        matches!(e, DiscoverError::Workloads { error: WorkloadsError::TooMany { count: 1665, max: 64 }, .. }),
        "{e}"
    );
    // 64 in one key and one more in the next: 65, refused.
    qemu.set("/manifest", Reply::Body(list_of(64).into_bytes()));
    qemu.set("/manifest-1", Reply::Body(list_of(1).into_bytes()));
    let e = d.discover(&mut |_| {}).unwrap_err();
    assert!(matches!(e, DiscoverError::Workloads { error: WorkloadsError::TooMany { count: 65, .. }, .. }), "{e}");
    assert!(e.to_string().contains("more than the limit of 64"), "{e}");
    // Exactly 64: accepted, each on its own port.
    qemu.set("/manifest-1", Reply::Status(404));
    let found = d.discover(&mut |_| {}).unwrap();
    assert_eq!(found.manifests.len(), 64);
    // Ports must never repeat: from base port 65535 a second workload has no port of its own.
    d.base_port = 65535;
    qemu.set("/manifest", Reply::Body(list_of(2).into_bytes()));
    let e = d.discover(&mut |_| {}).unwrap_err();
    assert!(matches!(e, DiscoverError::Workloads { error: WorkloadsError::PortsExhausted { .. }, .. }), "{e}");
}

#[test]
fn d3_events_refuses_the_lists_the_runtime_refuses() {
    let run = |args: &[&str]| {
        cvmkit_testutil::output_deadline(
            std::process::Command::new(env!("CARGO_BIN_EXE_cvmkit-runtime")).arg("events").args(args),
            Duration::from_secs(30),
        )
    };
    let out = run(&["--manifest", &list_of(65)]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("65 workloads, more than the limit of 64") && err.contains("the runtime refuses"), "{err}");
    let out = run(&["--manifest", &list_of(2), "--base-port", "65535"]);
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stdout));
    assert!(run(&["--manifest", &list_of(64)]).status.success());
}

#[test]
fn d4_a_newline_in_metadata_cannot_forge_a_log_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let forged = "app-0: fetched http://evil/app and verified sha256 0000";
    let meta = Server::start(Flavor::Plain);
    meta.set("/manifest", Reply::Body(manifest_value("http://10.0.2.2:8090/a", &"1".repeat(64)).into_bytes()));
    meta.set("/hostname", Reply::Body(format!("a.example\n{forged}\r\n\x1b[2J").into_bytes()));
    // `discover` logs what it found and exits.
    let out = cvmkit_testutil::output_deadline(&mut runtime_cmd_sub("discover", d, &meta.url(), 3001), Duration::from_secs(30));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let console = String::from_utf8_lossy(&out.stdout).into_owned();
    let log = std::fs::read_to_string(d.join("log/runtime.log")).unwrap();
    for text in [&console, &log] {
        assert!(!text.lines().any(|l| l.starts_with(forged) || l.contains("cvmkit-runtime: app-0: fetched")), "{text}");
        assert!(!text.contains('\x1b'), "{text}");
        assert!(text.contains(&format!(r"a.example\n{forged}\r\n\u{{1b}}[2J")), "{text}");
    }
}

#[test]
fn d5_content_length_over_the_cap_is_refused_unread_and_not_retried() {
    let dir = tempfile::tempdir().unwrap();
    // Declares 3 GiB, sends 64 KiB; the cap is 1 MiB.
    let (url, count) =
        raw_server("HTTP/1.1 200 OK\r\nContent-Length: 3221225472\r\n\r\n".into(), vec![b'x'; 64 << 10]);
    let f = fetcher(None);
    let dest = dir.path().join("app-0");
    let m = manifest(&format!("{url}app"), &"0".repeat(64));
    let start = Instant::now();
    let e = within(Duration::from_secs(20), move || f.fetch_verified(&m, &dest)).unwrap_err();
    assert!(matches!(e, FetchError::TooLarge { limit: 1048576, .. }), "{e:?}");
    assert!(e.is_final(), "a size violation must not be retried");
    assert!(start.elapsed() < Duration::from_secs(5), "{:?}", start.elapsed());
    assert!(!staging_path(&dir.path().join("app-0")).exists(), "bytes were written");
    assert_eq!(count.load(Ordering::SeqCst), 1);
    // Without a Content-Length (chunked), refused once past the cap, the staging file removed.
    let s = Server::start(Flavor::Plain);
    s.set("/big", Reply::Chunked(vec![b'y'; (1 << 20) + 1]));
    let e = fetcher(None)
        .fetch_verified(&manifest(&format!("{}big", s.url()), &"0".repeat(64)), &dir.path().join("app-1"))
        .unwrap_err();
    assert!(matches!(e, FetchError::TooLarge { .. }), "{e:?}");
    assert!(e.is_final());
    assert!(!staging_path(&dir.path().join("app-1")).exists());
}

#[test]
fn d5_the_runtime_does_not_retry_a_too_large_app() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (url, count) =
        raw_server("HTTP/1.1 200 OK\r\nContent-Length: 3221225472\r\n\r\n".into(), vec![b'x'; 1024]);
    let meta = Server::start(Flavor::Plain);
    meta.set("/manifest", Reply::Body(manifest_value(&format!("{url}app"), &"0".repeat(64)).into_bytes()));
    let mut cmd = runtime_cmd(d, &meta.url(), free_ports(1));
    cmd.args(["--max-app-bytes", "1000000"]);
    let out = cvmkit_testutil::output_deadline(&mut cmd, Duration::from_secs(30));
    assert_eq!(out.status.code(), Some(2));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("is larger than the limit of 1000000 bytes"), "{stdout}");
    assert!(!stdout.contains("attempt 2/5"), "{stdout}");
    assert_eq!(count.load(Ordering::SeqCst), 1, "{stdout}");
}

#[test]
fn d6_redirects_to_other_schemes_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let app = b"#!/bin/sh\nexit 0\n".to_vec();
    for location in ["file:///etc/passwd", "ftp://127.0.0.1/x", "gopher://127.0.0.1:70/x"] {
        let s = Server::start(Flavor::Plain);
        s.set("/a/b", Reply::Redirect(location.into()));
        // Even with /etc as the app directory, a redirect is never a file.
        let f = fetcher(Some(Path::new("/etc")));
        let dest = dir.path().join("app");
        let m = manifest(&format!("{}a/b", s.url()), &sha256_hex(&app));
        let e = within(Duration::from_secs(20), move || f.fetch_verified(&m, &dest)).unwrap_err();
        assert!(matches!(e, FetchError::Http(HttpError::Redirect { .. })), "{location}: {e:?}");
        assert!(e.is_final(), "{location}");
        assert_eq!(s.requests().len(), 1);
    }
    // A relative redirect is resolved as RFC 3986 says (`../x` from /a/b is /x), on the same
    // server: never a path on this machine.
    let s = Server::start(Flavor::Plain);
    s.set("/a/b", Reply::Redirect("../x".into()));
    s.set("/x", Reply::Body(app.clone()));
    let dest = dir.path().join("r");
    fetcher(None).fetch_verified(&manifest(&format!("{}a/b", s.url()), &sha256_hex(&app)), &dest).unwrap();
    assert_eq!(std::fs::read(&dest).unwrap(), app);
    let paths: Vec<_> = s.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(paths, ["/a/b", "/x"]);
}

#[test]
fn d10_an_oversized_or_non_utf8_value_is_final() {
    // GCP (first) has an unreadable manifest; QEMU (second) a good one: discovery must fail
    // rather than fall through to QEMU.
    let good = Server::start(Flavor::Plain);
    good.set("/manifest", Reply::Body(manifest_value("http://h/a", &"1".repeat(64)).into_bytes()));
    for (what, body) in [("larger than", vec![b'A'; (256 << 10) + 4]), ("not UTF-8", vec![0xff, 0xfe, b'A'])] {
        let gcp = Server::start(Flavor::Gcp);
        gcp.set("/attr/manifest", Reply::Body(body));
        let mut d = discovery(&good.url());
        d.endpoints.gcp = format!("http://{}/attr/", gcp.addr);
        let e = d.discover(&mut |_| {}).unwrap_err();
        assert!(matches!(&e, DiscoverError::Unreadable { source_kind: SourceKind::Gcp, key, reason }
            if key == "manifest" && reason.contains(what)), "{e}");
        // The same for the hostname value of the source that has the manifest.
        let gcp = Server::start(Flavor::Gcp);
        gcp.set("/attr/manifest", Reply::Body(manifest_value("http://h/a", &"1".repeat(64)).into_bytes()));
        gcp.set("/attr/hostname", Reply::Body(vec![0xff]));
        d.endpoints.gcp = format!("http://{}/attr/", gcp.addr);
        let e = d.discover(&mut |_| {}).unwrap_err();
        assert!(matches!(&e, DiscoverError::Unreadable { key, .. } if key == "hostname"), "{e}");
    }
}

fn unmeasured_run(extra: &[&str]) -> (std::process::Output, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let app = "#!/bin/sh\nexit 0\n";
    let meta = Server::start(Flavor::Plain);
    meta.set("/a", Reply::Body(app.into()));
    meta.set("/manifest", Reply::Body(manifest_value(&format!("{}a", meta.url()), &sha256_hex(app.as_bytes())).into_bytes()));
    let mut cmd = runtime_cmd(d, &meta.url(), free_ports(1));
    cmd.args(["--measure", "auto", "--max-restarts", "0"]);
    cmd.arg("--tpm-device").arg(d.join("no-tpm")).arg("--rtmr-file").arg(d.join("no-rtmr"));
    cmd.args(extra);
    (cvmkit_testutil::output_deadline(&mut cmd, Duration::from_secs(30)), dir)
}

#[test]
fn unmeasured_launch_is_refused_on_tdx_and_snp() {
    for platform in ["tdx", "snp"] {
        let (out, dir) = unmeasured_run(&["--platform", platform]);
        assert_eq!(out.status.code(), Some(2));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(&format!("on this {platform} image; refusing to launch")), "{err}");
        assert!(!dir.path().join("state/apps").exists(), "an app was fetched");
        // `measure = none` on such an image is no way around it.
        let (out, _) = unmeasured_run(&["--platform", platform, "--measure", "none"]);
        assert!(String::from_utf8_lossy(&out.stderr).contains("refusing to launch"));
    }
}

#[test]
fn unmeasured_launch_is_allowed_only_when_asked_and_then_loudly() {
    let (out, _) = unmeasured_run(&["--platform", "tdx", "--unmeasured", "allow"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("WARNING: no TPM or TDX RTMR found: the manifest is NOT bound"), "{stdout}");
    assert!(stdout.contains("app-0: supervised on port"), "{stdout}");
    // A non-confidential image (platform none, the default) launches with the same warning,
    // unless told to refuse.
    let (out, _) = unmeasured_run(&[]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("WARNING: no TPM"));
    let (out, _) = unmeasured_run(&["--unmeasured", "refuse"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("refusing to launch"));
}
