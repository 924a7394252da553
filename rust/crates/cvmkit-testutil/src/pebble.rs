//! Pebble, Let's Encrypt's ACME test server (Debian's `pebble`), on loopback for tests: with
//! pebble-challtestsrv as its DNS (every name resolves to 127.0.0.1, its own challenge servers
//! off), so that it validates HTTP-01 for real against whatever answers on the given port.
//! Both processes are killed (with their process groups) when the [`Pebble`] is dropped.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// A child in its own process group, killed and reaped on drop.
struct Group(std::process::Child);

impl Drop for Group {
    fn drop(&mut self) {
        crate::kill_group(self.0.id());
        crate::kill_and_reap(&mut self.0);
    }
}

/// A free TCP port on 127.0.0.1 (bound, then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// `pebble` (or `pebble-challtestsrv`), or a failure saying how to get it.
fn pebble_tool(name: &str) -> PathBuf {
    crate::require_tool(name, "pebble")
}

/// A CA and a TLS certificate for Pebble's listeners (127.0.0.1, 10.0.2.2 as a QEMU guest sees
/// the host, localhost), made with rcgen: the Debian package ships none.
fn listener_cert(dir: &Path) -> PathBuf {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, SanType};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(rcgen::DnType::CommonName, "cvmkit test Pebble listener CA");
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let mut leaf = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    for ip in ["127.0.0.1", "10.0.2.2"] {
        leaf.subject_alt_names.push(SanType::IpAddress(ip.parse().unwrap()));
    }
    let cert = leaf.signed_by(&key, &Issuer::new(ca, &ca_key)).unwrap();
    std::fs::write(dir.join("listener.pem"), cert.pem()).unwrap();
    std::fs::write(dir.join("listener-key.pem"), key.serialize_pem()).unwrap();
    std::fs::write(dir.join("listener-ca.pem"), ca_cert.pem()).unwrap();
    dir.join("listener-ca.pem")
}

fn wait_listening(port: u16, what: &str, child: &mut std::process::Child, log: &Path) {
    let end = std::time::Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(s)) = child.try_wait() {
            panic!("{what} exited ({s}): {}", std::fs::read_to_string(log).unwrap_or_default());
        }
        assert!(
            std::time::Instant::now() < end,
            "{what} does not listen on {port}: {}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Pebble and its DNS, killed on drop.
pub struct Pebble {
    /// `https://127.0.0.1:PORT/dir`.
    pub directory: String,
    /// The ACME port (the QEMU test forwards the guest to it).
    pub port: u16,
    /// The root of Pebble's listener certificate: the runtime's `acme-ca-file`.
    pub listener_ca: PathBuf,
    mgmt: u16,
    dir: PathBuf,
    _children: Vec<Group>,
}

impl Pebble {
    /// Starts pebble-challtestsrv (DNS only, every name → 127.0.0.1) and Pebble, which validates
    /// HTTP-01 on `http_port`; `env` adds Pebble variables (e.g. `PEBBLE_VA_ALWAYS_INVALID`).
    pub fn start(dir: &Path, http_port: u16, env: &[(&str, &str)]) -> Self {
        Self::start_on(dir, http_port, env, None)
    }

    /// [`Pebble::start`] on ACME port `port` (`None`: a free one). The listener certificate in
    /// `dir` is reused if there is one, so a second Pebble can replace a first one for a client
    /// that already trusts its listener CA.
    pub fn start_on(dir: &Path, http_port: u16, env: &[(&str, &str)], port: Option<u16>) -> Self {
        let listener_ca = if dir.join("listener-ca.pem").is_file() { dir.join("listener-ca.pem") } else { listener_cert(dir) };
        let (dns, chall_mgmt, mgmt) = (free_port(), free_port(), free_port());
        let port = port.unwrap_or_else(free_port);
        let spawn = |cmd: &mut Command, log: &str| {
            std::os::unix::process::CommandExt::process_group(cmd, 0);
            let out = std::fs::File::create(dir.join(log)).unwrap();
            Group(cmd.stdin(Stdio::null()).stdout(out.try_clone().unwrap()).stderr(out).spawn().unwrap())
        };
        let mut chall = spawn(
            Command::new(pebble_tool("pebble-challtestsrv"))
                .args(["-defaultIPv4", "127.0.0.1", "-defaultIPv6", ""])
                .args(["-dns01", &format!("127.0.0.1:{dns}"), "-management", &format!("127.0.0.1:{chall_mgmt}")])
                .args(["-http01", "", "-https01", "", "-tlsalpn01", ""]),
            "challtestsrv.log",
        );
        wait_listening(chall_mgmt, "pebble-challtestsrv", &mut chall.0, &dir.join("challtestsrv.log"));
        // Listening on every address: run-local's relay reaches it on 127.0.0.1 for the guest.
        let config = format!(
            r#"{{"pebble": {{"listenAddress": "0.0.0.0:{port}", "managementListenAddress": "127.0.0.1:{mgmt}",
 "certificate": "{}", "privateKey": "{}", "httpPort": {http_port}, "tlsPort": {},
 "ocspResponderURL": "", "externalAccountBindingRequired": false}}}}"#,
            dir.join("listener.pem").display(),
            dir.join("listener-key.pem").display(),
            free_port()
        );
        std::fs::write(dir.join("pebble.json"), config).unwrap();
        let mut cmd = Command::new(pebble_tool("pebble"));
        cmd.arg("-config").arg(dir.join("pebble.json")).args(["-dnsserver", &format!("127.0.0.1:{dns}")]);
        // No random sleeps before validation; no random nonce rejections.
        cmd.env("PEBBLE_VA_NOSLEEP", "1").env("PEBBLE_WFE_NONCEREJECT", "0");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut pebble = spawn(&mut cmd, "pebble.log");
        wait_listening(port, "pebble", &mut pebble.0, &dir.join("pebble.log"));
        wait_listening(mgmt, "pebble management", &mut pebble.0, &dir.join("pebble.log"));
        Self {
            directory: format!("https://127.0.0.1:{port}/dir"),
            port,
            listener_ca,
            mgmt,
            dir: dir.to_path_buf(),
            _children: vec![pebble, chall],
        }
    }

    /// Pebble's issuing root (its management interface's `/roots/0`), written to a file: what
    /// `curl --cacert` trusts.
    pub fn root(&self) -> PathBuf {
        let file = self.dir.join("pebble-root.pem");
        let out = crate::output_deadline(
            Command::new(crate::require_tool("curl", "curl"))
                .args(["-sS", "--fail", "--max-time", "10", "--noproxy", "*", "--cacert"])
                .arg(&self.listener_ca)
                .arg("-o")
                .arg(&file)
                .arg(format!("https://127.0.0.1:{}/roots/0", self.mgmt)),
            Duration::from_secs(120),
        );
        assert!(out.status.success(), "cannot fetch Pebble's root: {}", String::from_utf8_lossy(&out.stderr));
        file
    }

    /// Pebble's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("pebble.log")).unwrap_or_default()
    }
}

