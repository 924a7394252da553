//! Fetching apps: over HTTPS from a real TLS server on 127.0.0.1 (`openssl s_server -WWW` with a
//! test CA), over HTTP with redirects and truncation, and from file:// — each verified before it
//! is made executable, refused on a wrong hash or an untrusted certificate.

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use cvmkit_runtime::fetch::{staging_path, FetchError, Fetcher};
use cvmkit_runtime::http::{Client, HttpError, TlsRoots};
use cvmkit_runtime::manifest::{decode, Manifest};

use crate::support::*;

fn openssl(dir: &Path, args: &[&str]) {
    let out = cvmkit_testutil::output_deadline(
        Command::new(require_tool("openssl")).current_dir(dir).args(args),
        TOOL_TIMEOUT,
    );
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A test CA (`ca.pem`) and a leaf for IP 127.0.0.1 it signed (`leaf.pem`, `leaf.key`).
fn test_pki(dir: &Path) {
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    openssl(
        dir,
        &[
            &["req", "-x509"][..],
            &ec,
            &["-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=cvmkit test CA"],
        ]
        .concat(),
    );
    openssl(dir, &[&["req"][..], &ec, &["-keyout", "leaf.key", "-out", "leaf.csr", "-subj", "/CN=127.0.0.1"]].concat());
    std::fs::write(
        dir.join("leaf.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "leaf.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "leaf.pem",
            "-days",
            "2",
            "-extfile",
            "leaf.ext",
        ],
    );
}

struct SServer(std::process::Child, u16);

impl Drop for SServer {
    fn drop(&mut self) {
        cvmkit_testutil::kill_and_reap(&mut self.0);
    }
}

/// `openssl s_server -WWW` on 127.0.0.1 serving the files of `dir/www`.
fn s_server(dir: &Path) -> SServer {
    let port = free_ports(1);
    let child = Command::new(require_tool("openssl"))
        .current_dir(dir.join("www"))
        .args(["s_server", "-quiet", "-WWW", "-accept", &format!("127.0.0.1:{port}")])
        .arg("-cert")
        .arg(dir.join("leaf.pem"))
        .arg("-key")
        .arg(dir.join("leaf.key"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let s = SServer(child, port);
    wait_for(Duration::from_secs(10), || std::net::TcpStream::connect(("127.0.0.1", port)).ok())
        .expect("s_server did not start");
    s
}

fn manifest(url: &str, sha256: &str) -> Manifest {
    decode(&manifest_value(url, sha256)).unwrap().remove(0)
}

fn fetcher(tls: TlsRoots) -> Fetcher {
    Fetcher {
        client: Client { connect_timeout: Duration::from_secs(2), timeout: Duration::from_secs(10), max_body: 0, tls },
        max_size: 1 << 20,
        app_dir: None,
        timeout: Duration::from_secs(10),
    }
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
#[cfg(feature = "https")]
fn https_app_verified_with_a_custom_ca() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    test_pki(d);
    std::fs::create_dir_all(d.join("www")).unwrap();
    let app = b"#!/bin/sh\necho tls app\n";
    std::fs::write(d.join("www/app"), app).unwrap();
    let server = s_server(d);
    let url = format!("https://127.0.0.1:{}/app", server.1);
    let f = fetcher(TlsRoots::from_pem_file(&d.join("ca.pem")).unwrap());

    let dest = d.join("app-0");
    f.fetch_verified(&manifest(&url, &sha256_hex(app)), &dest).unwrap();
    assert_eq!(std::fs::read(&dest).unwrap(), app);
    assert_eq!(mode(&dest), 0o755);

    // Same server, wrong digest: refused, nothing left.
    let dest = d.join("app-1");
    let e = f.fetch_verified(&manifest(&url, &"0".repeat(64)), &dest).unwrap_err();
    assert!(matches!(e, FetchError::Mismatch { .. }), "{e}");
    assert!(!dest.exists() && !staging_path(&dest).exists());

    // The built-in roots do not trust the test CA: refused before any byte is kept.
    let dest = d.join("app-2");
    let e = fetcher(TlsRoots::default()).fetch_verified(&manifest(&url, &sha256_hex(app)), &dest).unwrap_err();
    // rustls reports the refused certificate as an InvalidData I/O error mid-handshake, which
    // the client maps to Tls.
    assert!(
        matches!(&e, FetchError::Http(HttpError::Tls { reason, .. })
            if reason == "invalid peer certificate: UnknownIssuer"),
        "{e:?}"
    );
    assert!(!dest.exists() && !staging_path(&dest).exists());
}

#[test]
fn http_redirects_status_and_truncation() {
    let dir = tempfile::tempdir().unwrap();
    let app = b"#!/bin/sh\nexit 0\n".to_vec();
    let s = Server::start(Flavor::Plain);
    s.set("/real", Reply::Chunked(app.clone()));
    s.set("/missing", Reply::Status(404));
    s.set("/broken", Reply::Close);
    let f = fetcher(TlsRoots::default());
    // A 302 to the real file: the redirect server is a second loopback server.
    let redirect = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let raddr = redirect.local_addr().unwrap();
    let target = format!("{}real", s.url());
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        if let Ok((mut c, _)) = redirect.accept() {
            let mut buf = [0u8; 1024];
            let _ = c.read(&mut buf);
            let _ = c
                .write_all(format!("HTTP/1.1 302 Found\r\nLocation: {target}\r\nContent-Length: 0\r\n\r\n").as_bytes());
        }
    });
    let dest = dir.path().join("a");
    f.fetch_verified(&manifest(&format!("http://{raddr}/start"), &sha256_hex(&app)), &dest).unwrap();
    assert_eq!(std::fs::read(&dest).unwrap(), app);

    let dest = dir.path().join("b");
    let e = f.fetch_verified(&manifest(&format!("{}missing", s.url()), &sha256_hex(&app)), &dest).unwrap_err();
    assert!(matches!(e, FetchError::Status { status: 404, .. }), "{e}");
    let e = f.fetch_verified(&manifest(&format!("{}broken", s.url()), &sha256_hex(&app)), &dest).unwrap_err();
    // Closed without a status line: an I/O error (end of stream), not a digest mismatch.
    assert!(
        matches!(&e, FetchError::Http(HttpError::Io { source, .. }) if source.kind() == std::io::ErrorKind::UnexpectedEof),
        "{e:?}"
    );
    assert!(!dest.exists() && !staging_path(&dest).exists());
}

#[test]
fn file_url_is_copied_then_verified() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src app");
    std::fs::write(&src, b"payload").unwrap();
    let url = format!("file://{}", src.display()).replace(' ', "%20");
    let f = Fetcher { app_dir: Some(dir.path().to_path_buf()), ..fetcher(TlsRoots::default()) };
    let dest = dir.path().join("app");
    f.fetch_verified(&manifest(&url, &sha256_hex(b"payload")), &dest).unwrap();
    assert_eq!(mode(&dest), 0o755);
    // The source changes afterwards: the verified copy does not.
    std::fs::write(&src, b"changed").unwrap();
    assert_eq!(std::fs::read(&dest).unwrap(), b"payload");
    // A size limit below the file's size refuses it.
    let small = Fetcher { max_size: 3, ..f };
    let e = small.fetch_verified(&manifest(&url, &sha256_hex(b"changed")), &dir.path().join("x")).unwrap_err();
    assert!(matches!(e, FetchError::TooLarge { .. }), "{e}");
}
