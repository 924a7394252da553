//! The real `cvmkit-runtime` binary against loopback metadata servers: the env file, apps fetched
//! and verified before they run, a wrong hash never executed nor made executable, restarts with
//! bounded backoff, fail-closed measurement, and the `events` verifier aid.

use std::os::unix::fs::PermissionsExt as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use crate::support::*;

/// A fresh temp dir with every path setting pointing into it and metadata at `qemu` only.
struct Setup {
    dir: tempfile::TempDir,
    base_port: u16,
}

impl Setup {
    fn new() -> Self {
        Self { dir: tempfile::tempdir().unwrap(), base_port: free_ports(3) }
    }

    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    /// The binary with all paths in the temp dir, metadata at `qemu_url`, fast timeouts.
    fn cmd(&self, sub: &str, qemu_url: &str) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_cvmkit-runtime"));
        // Its own process group, so the workloads it starts can be killed with it.
        c.arg(sub).current_dir(self.dir.path()).process_group(0);
        let d = self.dir.path().display();
        for (k, v) in [
            ("config", "/dev/null".to_string()),
            ("sources", "qemu".into()),
            ("qemu-url", qemu_url.into()),
            // Never the defaults, even if a source were added.
            ("gcp-url", closed_url()),
            ("azure-url", closed_url()),
            ("connect-timeout-ms", "300".into()),
            ("timeout-ms", "1000".into()),
            ("discover-wait-secs", "0".into()),
            ("env-file", format!("{d}/etc/cloud-config.env")),
            ("state-dir", format!("{d}/state")),
            ("app-dir", d.to_string()),
            ("log-dir", format!("{d}/log")),
            ("events-file", format!("{d}/run/events.txt")),
            ("nginx-conf", format!("{d}/etc/nginx.conf")),
            ("nginx-run-dir", format!("{d}/run/nginx")),
            ("tls-dir", format!("{d}/tls")),
            ("base-port", self.base_port.to_string()),
            ("measure", "none".into()),
            ("fetch-attempts", "1".into()),
            ("backoff-initial-ms", "100".into()),
            ("backoff-max-ms", "400".into()),
        ] {
            c.arg(format!("--{k}")).arg(v);
        }
        c
    }
}

fn write_exec(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// A workload: a shell script that serves `marker` over HTTP on $PORT with busybox httpd.
fn httpd_app(marker: &str) -> String {
    format!(
        "#!/bin/sh\nset -e\nmkdir -p www-$PORT\necho \"{marker} port=$PORT workload=$CVMKIT_WORKLOAD\" > www-$PORT/index.html\nexec {} httpd -f -p 127.0.0.1:$PORT -h www-$PORT\n",
        busybox().display()
    )
}

/// Runs the runtime to completion, at most `timeout`: past it its process group (the runtime and
/// its workloads) is killed and the test fails.
fn output_with_timeout(mut cmd: Command, timeout: Duration) -> Output {
    cvmkit_testutil::output_deadline(&mut cmd, timeout)
}

#[test]
fn runs_verified_apps_on_their_ports_and_refuses_a_wrong_hash() {
    let s = Setup::new();
    let good0 = httpd_app("hello-0");
    let good1 = httpd_app("hello-1");
    // The bad app would leave a marker if it were ever executed.
    let ran = s.path("BAD-APP-RAN");
    let bad = format!("#!/bin/sh\ntouch {}\n", ran.display());
    std::fs::write(s.path("app1.sh"), &good1).unwrap();
    let meta = Server::start(Flavor::Plain);
    meta.set("/app0", Reply::Body(good0.clone().into_bytes()));
    meta.set("/bad", Reply::Body(bad.clone().into_bytes()));
    // Workload 0 over HTTP, workload 1 claims the good hash but serves the bad content,
    // workload 2 from a file:// URL.
    let list = b64(&format!(
        r#"[{{"app":"{}app0","sha256":"{}"}},{{"app":"{}bad","sha256":"{}"}}]"#,
        meta.url(),
        sha256_hex(good0.as_bytes()),
        meta.url(),
        sha256_hex(good1.as_bytes())
    ));
    meta.set("/manifest", Reply::Body(list.into_bytes()));
    meta.set(
        "/manifest-1",
        Reply::Body(
            manifest_value(&format!("file://{}", s.path("app1.sh").display()), &sha256_hex(good1.as_bytes()))
                .into_bytes(),
        ),
    );
    meta.set("/hostname", Reply::Body(b"a.example,a.example".to_vec()));

    let child = s.cmd("run", &meta.url()).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let _guard = Killed(child);
    let p0 = s.base_port;
    let p2 = s.base_port + 2;
    let body0 =
        wait_for(Duration::from_secs(20), || http_get(&format!("http://127.0.0.1:{p0}/")).filter(|r| r.0 == 200));
    let body2 =
        wait_for(Duration::from_secs(20), || http_get(&format!("http://127.0.0.1:{p2}/")).filter(|r| r.0 == 200));
    assert_eq!(body0.expect("workload 0 never answered").1, format!("hello-0 port={p0} workload=0\n"));
    assert_eq!(body2.expect("workload 2 never answered").1, format!("hello-1 port={p2} workload=2\n"));

    // The wrong-hash app: never executed, never executable, not even left on disk.
    assert!(!ran.exists(), "the app with the wrong hash was executed");
    assert!(!s.path("state/apps/app-1").exists());
    assert!(!s.path("state/apps/app-1.part").exists());
    assert!(http_get(&format!("http://127.0.0.1:{}/", s.base_port + 1)).is_none());
    let mode = std::fs::metadata(s.path("state/apps/app-0")).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o755);

    // The env file, in its fixed order.
    let env = std::fs::read_to_string(s.path("etc/cloud-config.env")).unwrap();
    let expected = format!(
        "CVMKIT_SOURCE=qemu\nCVMKIT_WORKLOADS=3\nCVMKIT_HOSTNAMES=a.example\n\
         CVMKIT_WORKLOAD_0_APP={u}app0\nCVMKIT_WORKLOAD_0_SHA256={h0}\nCVMKIT_WORKLOAD_0_PORT={p0}\nCVMKIT_WORKLOAD_0_HOSTNAME=a.example\nCVMKIT_WORKLOAD_0_KEY=manifest\n\
         CVMKIT_WORKLOAD_1_APP={u}bad\nCVMKIT_WORKLOAD_1_SHA256={h1}\nCVMKIT_WORKLOAD_1_PORT={p1}\nCVMKIT_WORKLOAD_1_HOSTNAME=''\nCVMKIT_WORKLOAD_1_KEY=manifest\n\
         CVMKIT_WORKLOAD_2_APP=file://{f}\nCVMKIT_WORKLOAD_2_SHA256={h1}\nCVMKIT_WORKLOAD_2_PORT={p2}\nCVMKIT_WORKLOAD_2_HOSTNAME=''\nCVMKIT_WORKLOAD_2_KEY=manifest-1\n",
        u = meta.url(),
        h0 = sha256_hex(good0.as_bytes()),
        h1 = sha256_hex(good1.as_bytes()),
        p1 = s.base_port + 1,
        f = s.path("app1.sh").display(),
    );
    assert_eq!(env, expected);
    let leftovers: Vec<_> = std::fs::read_dir(s.path("etc")).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(leftovers.len(), 2, "temp files left next to the env file: {leftovers:?}");

    // Logs: the runtime's own file and each workload's file.
    let log = std::fs::read_to_string(s.path("log/runtime.log")).unwrap();
    assert!(log.contains("metadata source qemu: answered with 3 workload(s), hostname 'a.example,a.example'"), "{log}");
    assert!(log.contains("app-1: sha256 mismatch for"), "{log}");
    assert!(log.contains("refusing to run it"), "{log}");
    assert!(log.contains("no TPM or TDX RTMR found") || log.contains("not bound"), "{log}");
    let app0_log = s.path("log/app-0.log");
    assert!(app0_log.exists());
    // The nginx configuration was written (no nginx-bin: not started).
    let conf = std::fs::read_to_string(s.path("etc/nginx.conf")).unwrap();
    assert!(conf.contains(&format!("# a.example -> workload 0 (127.0.0.1:{p0})")), "{conf}");
}

#[test]
fn restarts_with_bounded_exponential_backoff() {
    let s = Setup::new();
    let runs = s.path("runs");
    let app = format!("#!/bin/sh\necho run >> {}\necho \"exiting on port $PORT\"\nexit 3\n", runs.display());
    let meta = Server::start(Flavor::Plain);
    meta.set("/a", Reply::Body(app.clone().into_bytes()));
    meta.set(
        "/manifest",
        Reply::Body(manifest_value(&format!("{}a", meta.url()), &sha256_hex(app.as_bytes())).into_bytes()),
    );
    let mut cmd = s.cmd("run", &meta.url());
    cmd.args(["--max-restarts", "4"]);
    let out = output_with_timeout(cmd, Duration::from_secs(30));
    assert_eq!(out.status.code(), Some(2));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim(), "error: every workload has stopped");
    // 1 start + 4 restarts; delays 100, 200, 400 (the bound), 400.
    assert_eq!(std::fs::read_to_string(&runs).unwrap().lines().count(), 5);
    let delays: Vec<&str> = stdout.lines().filter_map(|l| l.split("restarting in ").nth(1)).collect();
    assert_eq!(delays, ["100ms", "200ms", "400ms", "400ms"], "{stdout}");
    assert!(stdout.contains("exit status: 3 after"), "{stdout}");
    assert!(stdout.contains("restart limit 4 reached"), "{stdout}");
    // Workload output on the console with its prefix, and in its own file without.
    assert!(stdout.contains(&format!("[app-0] exiting on port {}", s.base_port)), "{stdout}");
    let file = std::fs::read_to_string(s.path("log/app-0.log")).unwrap();
    assert_eq!(file.lines().filter(|l| *l == format!("exiting on port {}", s.base_port)).count(), 5);
}

#[test]
fn only_wrong_hashes_means_nothing_runs() {
    let s = Setup::new();
    let ran = s.path("RAN");
    let app = format!("#!/bin/sh\ntouch {}\n", ran.display());
    let meta = Server::start(Flavor::Plain);
    meta.set("/a", Reply::Body(app.into_bytes()));
    meta.set("/manifest", Reply::Body(manifest_value(&format!("{}a", meta.url()), &"0".repeat(64)).into_bytes()));
    let out = output_with_timeout(s.cmd("run", &meta.url()), Duration::from_secs(20));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no workload could be started"));
    assert!(String::from_utf8_lossy(&out.stdout).contains("sha256 mismatch"));
    assert!(!ran.exists());
    let apps: Vec<_> = std::fs::read_dir(s.path("state/apps")).unwrap().collect();
    assert!(apps.is_empty(), "files left: {apps:?}");
}

#[test]
fn requested_measurement_that_fails_stops_the_launch() {
    let s = Setup::new();
    let ran = s.path("RAN");
    let app = format!("#!/bin/sh\ntouch {}\n", ran.display());
    let meta = Server::start(Flavor::Plain);
    meta.set("/a", Reply::Body(app.clone().into_bytes()));
    meta.set(
        "/manifest",
        Reply::Body(manifest_value(&format!("{}a", meta.url()), &sha256_hex(app.as_bytes())).into_bytes()),
    );
    let mut cmd = s.cmd("run", &meta.url());
    cmd.args(["--measure", "tpm", "--tpm-device"]).arg(s.path("no-such-tpm"));
    let out = output_with_timeout(cmd, Duration::from_secs(20));
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with("error: cannot bind the manifest to the attestation: open "), "{err}");
    assert!(!ran.exists());
    assert!(!s.path("state/apps").exists(), "an app was fetched before the measurement");
}

#[test]
fn rtmr_events_are_written_as_48_byte_extends() {
    let s = Setup::new();
    let app = "#!/bin/sh\nexit 0\n".to_string();
    let meta = Server::start(Flavor::Plain);
    meta.set("/a", Reply::Body(app.clone().into_bytes()));
    meta.set(
        "/manifest",
        Reply::Body(manifest_value(&format!("{}a", meta.url()), &sha256_hex(app.as_bytes())).into_bytes()),
    );
    meta.set("/hostname", Reply::Body(b"B.example,a.example".to_vec()));
    let rtmr = s.path("rtmr3");
    std::fs::write(&rtmr, b"").unwrap();
    let mut cmd = s.cmd("run", &meta.url());
    cmd.args(["--measure", "tdx", "--max-restarts", "0", "--rtmr-file"]).arg(&rtmr);
    let out = output_with_timeout(cmd, Duration::from_secs(20));
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    // A regular file stands in for the sysfs attribute: each extend is one 48-byte write at
    // offset 0, so the file holds the digest of the last event.
    use sha2::Digest as _;
    let last = "cvmkit-runtime/v1 hostnames=b.example,a.example";
    assert_eq!(std::fs::read(&rtmr).unwrap(), sha2::Sha384::digest(last.as_bytes()).to_vec());
    let events = std::fs::read_to_string(s.path("run/events.txt")).unwrap();
    let expected = format!(
        "cvmkit-runtime/v1 workload=0 port={} sha256={}\n{last}\n# extended into RTMR via {}\n",
        s.base_port,
        sha256_hex(app.as_bytes()),
        rtmr.display()
    );
    assert_eq!(events, expected);
}

#[test]
fn discover_subcommand_prints_and_writes_the_env_file() {
    let s = Setup::new();
    let meta = Server::start(Flavor::Plain);
    let h = "ab".repeat(32);
    meta.set("/manifest", Reply::Body(manifest_value("http://127.0.0.1:9/x'y", &h).into_bytes()));
    let out = output_with_timeout(s.cmd("discover", &meta.url()), Duration::from_secs(20));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let printed = String::from_utf8(out.stdout).unwrap();
    // The runtime's own log lines go to stdout too; the env lines are the ones printed bare.
    let lines: Vec<&str> = printed.lines().filter(|l| l.starts_with("CVMKIT_")).collect();
    let expected = [
        "CVMKIT_SOURCE=qemu".to_string(),
        "CVMKIT_WORKLOADS=1".into(),
        "CVMKIT_HOSTNAMES=''".into(),
        "CVMKIT_WORKLOAD_0_APP='http://127.0.0.1:9/x'\\''y'".into(),
        format!("CVMKIT_WORKLOAD_0_SHA256={h}"),
        format!("CVMKIT_WORKLOAD_0_PORT={}", s.base_port),
        "CVMKIT_WORKLOAD_0_HOSTNAME=''".into(),
        "CVMKIT_WORKLOAD_0_KEY=manifest".into(),
    ];
    assert_eq!(lines, expected);
    let file = std::fs::read_to_string(s.path("etc/cloud-config.env")).unwrap();
    assert_eq!(file.lines().collect::<Vec<_>>(), lines);
}

#[test]
fn discover_with_no_source_fails_with_one_error_line() {
    let s = Setup::new();
    let out = output_with_timeout(s.cmd("discover", &closed_url()), Duration::from_secs(20));
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("error: no manifest found in any metadata source (tried qemu)"), "{err}");
    assert!(!s.path("etc/cloud-config.env").exists());
}

#[test]
fn events_subcommand_matches_the_library() {
    let h = "cd".repeat(32);
    let value = manifest_value("http://h/a", &h);
    let out = cvmkit_testutil::output_deadline(
        Command::new(env!("CARGO_BIN_EXE_cvmkit-runtime")).args([
            "events",
            "--manifest",
            &value,
            "--hostname",
            "a.example,a.example",
        ]),
        TOOL_TIMEOUT,
    );
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let events = vec![
        format!("cvmkit-runtime/v1 workload=0 port=3001 sha256={h}"),
        "cvmkit-runtime/v1 hostnames=a.example".to_string(),
    ];
    let pcr = cvmkit_runtime::manifest::hex(&cvmkit_runtime::measure::expected_pcr(&events));
    let rtmr = cvmkit_runtime::manifest::hex(&cvmkit_runtime::measure::expected_rtmr([0; 48], &events));
    assert_eq!(text, format!("event {}\nevent {}\npcr15-sha256 {pcr}\nrtmr3-sha384 {rtmr}\n", events[0], events[1]));
}

/// modules/runtime.nix checks `runtime.settings` names at evaluation against its own list; that
/// list must be exactly the settings this binary accepts in runtime.conf (all but `config`).
#[test]
fn the_nix_module_knows_exactly_the_runtime_settings() {
    let module = std::fs::read_to_string(repo_root().join("modules/runtime.nix")).unwrap();
    let start = module.find("knownSettings = [").expect("knownSettings list in modules/runtime.nix");
    let end = start + module[start..].find("];").unwrap();
    let nix: Vec<&str> = module[start..end]
        .lines()
        .skip(1)
        .map(|l| l.trim().trim_matches('"'))
        .filter(|l| !l.is_empty())
        .collect();
    let rust: Vec<&str> =
        cvmkit_runtime::config::SETTINGS.iter().map(|s| s.0).filter(|n| *n != "config").collect();
    assert_eq!(nix, rust, "modules/runtime.nix knownSettings differs from config::SETTINGS");
}
