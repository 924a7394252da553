//! `cvmkit run-local`: a real boot under QEMU (TCG) of a UKI built here with the CLI (busybox,
//! an /init that loads e1000e and runs DHCP, the static cvmkit-runtime), the workload answering
//! through the forwarded port; a second workload with a wrong hash that must never run; input
//! errors (exit 2, one line, nothing started); the guestfwd relay on its own; and ACME end to
//! end: the guest's runtime gets a certificate from Pebble on the host (reached through
//! `--guest-forward`, validating HTTP-01 through a `--forward` to the guest's nginx), first
//! refused (the workload stays on HTTP), then granted (curl reaches it over HTTPS by name).
//!
//! Nothing here talks to anything but 127.0.0.1 (the guest's network is `restrict=on`).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::util::*;

const MARKER: &str = "CVMKIT-RUN-LOCAL-WORKLOAD-OK";

/// The guest's /init: pseudo-filesystems, busybox applets, NIC driver, DHCP, then the runtime.
const INIT: &str = r#"#!/bin/sh
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sysfs /sys
/bin/busybox mount -t devtmpfs devtmpfs /dev
/bin/busybox --install -s /bin
mkdir -p /run /var /etc
insmod /lib/modules/e1000e.ko
ip link set lo up
ip link set eth0 up
udhcpc -i eth0 -s /etc/udhcpc.script -t 20 -T 1 -q -n || echo "RUN-LOCAL-TEST: DHCP failed"
echo "RUN-LOCAL-TEST: network up: $(ip -4 addr show eth0 | grep inet)"
/bin/cvmkit-runtime run --config /etc/cvmkit/runtime.conf &
while :; do wait; sleep 1; done
"#;

/// The udhcpc hook: address and default route.
const UDHCPC_SCRIPT: &str = r#"#!/bin/sh
case "$1" in
  deconfig) ifconfig "$interface" 0.0.0.0 ;;
  bound|renew)
    ifconfig "$interface" "$ip" netmask "${subnet:-255.255.255.0}"
    for r in $router; do route add default gw "$r" dev "$interface"; break; done ;;
esac
exit 0
"#;

const RUNTIME_CONF: &str =
    "sources = qemu\nqemu-url = http://10.0.2.2:8090/\ndiscover-wait-secs = 120\n";

/// Entries an unprivileged builder could not create on disk (gen_init_cpio format).
const SPEC: &str =
    "dir /dev 0755 0 0\nnod /dev/console 0600 0 0 c 5 1\nnod /dev/null 0666 0 0 c 1 3\n\
dir /proc 0555 0 0\ndir /sys 0555 0 0\ndir /tmp 1777 0 0\nslink /bin/sh busybox 0777 0 0\n";

/// The workload: busybox httpd serving the marker on $PORT.
const APP: &str = "#!/bin/sh\nmkdir -p /tmp/www\necho \"CVMKIT-RUN-LOCAL-WORKLOAD-OK port=$PORT\" > /tmp/www/index.html\n\
exec /bin/busybox httpd -f -p 0.0.0.0:$PORT -h /tmp/www\n";

/// The static cvmkit-runtime: $CVMKIT_RUNTIME_STATIC_BIN, or built into this run's target dir.
fn static_runtime() -> PathBuf {
    if let Some(p) = std::env::var_os("CVMKIT_RUNTIME_STATIC_BIN") {
        return p.into();
    }
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target"));
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    // A cold release build on 2 cores takes minutes; a hung one fails the test.
    let out = cvmkit_testutil::output_deadline(
        Command::new(cargo)
            .current_dir(repo_root())
            .env("CARGO_TARGET_DIR", &target_dir)
            .env("RUSTFLAGS", "-C target-feature=+crt-static")
            .args(["build", "--quiet", "--locked", "--release", "-p", "cvmkit-runtime"])
            .args(["--target", "x86_64-unknown-linux-gnu"]),
        Duration::from_secs(1800),
    );
    assert!(
        out.status.success(),
        "static build of cvmkit-runtime failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    target_dir.join("x86_64-unknown-linux-gnu/release/cvmkit-runtime")
}

fn write_file(to: &Path, data: &[u8], mode: u32) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    std::fs::write(to, data).unwrap();
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Builds `dir/image/uki.efi` with `cvmkit initrd` and `cvmkit uki`; returns the image dir.
fn build_image(dir: &Path, inputs: &Inputs, runtime: &Path) -> PathBuf {
    build_image_with(dir, inputs, runtime, RUNTIME_CONF, &[])
}

/// [`build_image`] with this runtime.conf and more files (path in the image, bytes, mode).
fn build_image_with(
    dir: &Path,
    inputs: &Inputs,
    runtime: &Path,
    conf: &str,
    extra: &[(&str, Vec<u8>, u32)],
) -> PathBuf {
    // .../linux-image-V/boot/vmlinuz-V → .../linux-image-V/lib/modules/V/kernel/…/e1000e.ko
    let version = inputs
        .kernel
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .trim_start_matches("vmlinuz-")
        .to_string();
    let pkg = inputs.kernel.parent().unwrap().parent().unwrap();
    let e1000e = pkg.join(format!(
        "lib/modules/{version}/kernel/drivers/net/ethernet/intel/e1000e/e1000e.ko"
    ));

    let root = dir.join("root");
    let read = |p: &Path| std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    write_file(&root.join("bin/busybox"), &read(&inputs.busybox), 0o755);
    write_file(&root.join("bin/cvmkit-runtime"), &read(runtime), 0o755);
    write_file(&root.join("lib/modules/e1000e.ko"), &read(&e1000e), 0o644);
    write_file(&root.join("init"), INIT.as_bytes(), 0o755);
    write_file(
        &root.join("etc/udhcpc.script"),
        UDHCPC_SCRIPT.as_bytes(),
        0o755,
    );
    write_file(&root.join("etc/cvmkit/runtime.conf"), conf.as_bytes(), 0o644);
    for (path, data, mode) in extra {
        write_file(&root.join(path), data, *mode);
    }
    write_file(&dir.join("initrd.spec"), SPEC.as_bytes(), 0o644);

    let initrd = dir.join("initrd.img");
    run(
        cvmkit(dir)
            .arg("initrd")
            .arg(&root)
            .arg("--spec")
            .arg(dir.join("initrd.spec"))
            .arg("-o")
            .arg(&initrd),
        true,
    );
    let image = dir.join("image");
    std::fs::create_dir_all(&image).unwrap();
    run(
        cvmkit(dir)
            .arg("uki")
            .arg("--stub")
            .arg(&inputs.stub)
            .arg("--linux")
            .arg(&inputs.kernel)
            .arg("--initrd")
            .arg(&initrd)
            .arg("--cmdline=console=ttyS0 panic=-1 loglevel=4 no_timer_check")
            .args(["--uname", &version, "-o"])
            .arg(image.join("uki.efi")),
        true,
    );
    image
}

/// GET http://127.0.0.1:`port`/ → (status, body), `None` if nothing answered.
fn http_get(port: u16) -> Option<(u16, String)> {
    let mut s =
        TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(1)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(3))).ok()?;
    s.write_all(b"GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .ok()?;
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n")?;
    Some((
        head.split_whitespace().nth(1)?.parse().ok()?,
        body.to_string(),
    ))
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Processes whose command line contains `needle` (to prove nothing was left running).
fn processes_with(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        if !e
            .file_name()
            .to_string_lossy()
            .chars()
            .all(|c| c.is_ascii_digit())
        {
            continue;
        }
        if let Ok(cmdline) = std::fs::read(e.path().join("cmdline")) {
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if cmdline.contains(needle) {
                found.push(format!("{}: {cmdline}", e.file_name().to_string_lossy()));
            }
        }
    }
    found
}

#[test]
fn boots_an_image_dir_and_the_workload_answers() {
    let inputs = inputs();
    require_tool("qemu-system-x86_64");
    require_tool("swtpm");
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let t0 = Instant::now();
    let runtime = static_runtime();
    let image = build_image(d, &inputs, &runtime);
    let uki_before = std::fs::read(image.join("uki.efi")).unwrap();
    write_file(&d.join("app.sh"), APP.as_bytes(), 0o755);
    // Workload 1: the same app with a wrong hash; the runtime must refuse it, so guest port 3002
    // never answers.
    let wrong = "00".repeat(32);
    write_file(
        &d.join("wrong.json"),
        format!(r#"{{"app": "http://10.0.2.2:8090/apps/0", "sha256": "{wrong}"}}"#).as_bytes(),
        0o644,
    );
    let port1 = free_port();
    let stop = Arc::new(AtomicBool::new(false));
    let poller = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut answers = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                if let Some(a) = http_get(port1) {
                    answers.push(a);
                }
                std::thread::sleep(Duration::from_millis(500));
            }
            answers
        })
    };
    let serial = d.join("serial.log");
    eprintln!(
        "run-local test: image built in {:.1}s",
        t0.elapsed().as_secs_f64()
    );

    let start = Instant::now();
    let out = run(
        cvmkit(d)
            .args(["run-local"])
            .arg(&image)
            .args(["--app", "app.sh", "--manifest-json", "wrong.json"])
            .args(["--forward", &format!("{port1}:3002")])
            // The defaults, as the README writes the command: --nic-model e1000e (the image
            // carries its driver) and --accel auto (KVM when /dev/kvm opens; on hosts whose KVM
            // aborts the guest at start, as this kind of machine's does, a second boot with TCG).
            .args(["--expect", MARKER, "--json", "--tpm"])
            .args(["--memory", "512", "--timeout", "240"])
            .arg("--firmware")
            .arg(&inputs.ovmf)
            .arg("--serial")
            .arg(&serial),
        true,
    );
    let took = start.elapsed();
    stop.store(true, Ordering::SeqCst);
    let answers = poller.join().unwrap();
    let err = stderr(&out);
    eprintln!(
        "run-local test: run-local took {:.1}s; its stderr:\n{err}",
        took.as_secs_f64()
    );

    let json: serde_json::Value =
        serde_json::from_str(&stdout(&out)).expect("one JSON object on stdout");
    assert_eq!(json["answered"], true, "{json}");
    assert_eq!(json["outcome"], "answered", "{json}");
    assert!(json["accel"] == "tcg" || json["accel"] == "kvm", "{json}");
    if err.contains("KVM cannot run the guest on this host") {
        assert_eq!(json["accel"], "tcg", "the fallback boots with TCG: {json}");
    }
    assert_eq!(json["image"], image.display().to_string(), "{json}");
    assert_eq!(
        json["firmware"],
        inputs.ovmf.display().to_string(),
        "{json}"
    );
    assert_eq!(json["serial_log"], serial.display().to_string(), "{json}");
    assert!(json["seconds"].as_f64().unwrap() > 0.0, "{json}");
    let workloads = json["workloads"].as_array().unwrap();
    assert_eq!(workloads.len(), 2, "{json}");
    assert_eq!(workloads[0]["index"], 0);
    assert_eq!(workloads[0]["guest_port"], 3001);
    assert_eq!(workloads[0]["sha256"], sha256_hex(&d.join("app.sh")));
    let url0 = workloads[0]["host_url"].as_str().unwrap();
    assert!(
        url0.starts_with("http://127.0.0.1:") && url0.ends_with('/'),
        "{url0}"
    );
    assert_eq!(workloads[1]["guest_port"], 3002);
    assert_eq!(workloads[1]["sha256"], wrong.as_str());
    assert_eq!(
        workloads[1]["host_url"],
        format!("http://127.0.0.1:{port1}/")
    );
    let paths: Vec<&str> = json["metadata_requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    for p in [
        "/manifest",
        "/manifest-1",
        "/manifest-2",
        "/hostname",
        "/apps/0",
    ] {
        assert!(paths.contains(&p), "{p} not requested: {paths:?}");
    }
    assert!(
        err.contains("run-local: metadata GET /manifest -> 200"),
        "{err}"
    );
    assert!(
        err.contains("run-local: metadata GET /manifest-2 -> 404"),
        "{err}"
    );

    let log = std::fs::read_to_string(&serial).unwrap();
    let tail = &log[log.len().saturating_sub(4000)..];
    assert!(
        log.contains("app-0: fetched http://10.0.2.2:8090/apps/0 and verified sha256"),
        "{tail}"
    );
    assert!(log.contains("app-1: sha256 mismatch"), "{tail}");
    assert!(
        log.contains("via /dev/tpmrm0"),
        "the vTPM was not used:\n{tail}"
    );
    assert!(
        answers.iter().all(|(code, _)| *code != 200),
        "the wrong-hash workload answered: {answers:?}"
    );

    // The image was not modified, and nothing run-local started is still running.
    assert_eq!(std::fs::read(image.join("uki.efi")).unwrap(), uki_before);
    std::thread::sleep(Duration::from_millis(300));
    let left: Vec<_> = processes_with(&serial.display().to_string())
        .into_iter()
        .chain(
            processes_with("cvmkit-run-local.")
                .into_iter()
                .filter(|p| p.contains("swtpm")),
        )
        .collect();
    assert!(left.is_empty(), "left running: {left:?}");
}

/// A guest without a driver for its NIC never reaches the metadata server: run-local says so
/// after --metadata-timeout instead of waiting for --timeout.
#[test]
fn a_guest_that_never_asks_the_metadata_server_fails_fast_with_the_reason() {
    let inputs = inputs();
    require_tool("qemu-system-x86_64");
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let image = build_image(d, &inputs, &static_runtime());
    write_file(&d.join("app.sh"), APP.as_bytes(), 0o755);
    let start = Instant::now();
    // virtio-net is a module on Debian's kernel, and the image carries only e1000e.
    let out = run(
        cvmkit(d)
            .arg("run-local")
            .arg(&image)
            .args(["--app", "app.sh", "--expect", MARKER, "--nic-model", "virtio-net-pci", "--accel", "tcg"])
            .args(["--memory", "512", "--timeout", "600", "--metadata-timeout", "45"])
            .arg("--firmware")
            .arg(&inputs.ovmf),
        false,
    );
    let took = start.elapsed();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("the guest did not ask the metadata server (10.0.2.2:8090) for its manifest within 45 s")
            && err.contains("--nic-model virtio-net-pci"),
        "{err}"
    );
    assert!(took < Duration::from_secs(120), "took {took:?}, not --metadata-timeout 45 s");
}

/// Asserts exit status 2 and one `error: …` line naming every `needles`.
fn assert_input_error(cmd: &mut Command, needles: &[&str]) {
    let start = Instant::now();
    let out = run(cmd, false);
    assert_eq!(out.status.code(), Some(2), "exit status");
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "want one line, got:\n{err}");
    assert!(err.starts_with("error: "), "{err}");
    for n in needles {
        assert!(err.contains(n), "error {err:?} does not mention {n:?}");
    }
    assert!(stdout(&out).is_empty(), "{}", stdout(&out));
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "an input error took {:?}",
        start.elapsed()
    );
}

#[test]
fn input_errors_name_the_file_and_start_nothing() {
    let inputs = inputs();
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let text = d.join("notes.txt");
    std::fs::write(&text, "not an image\n".repeat(100)).unwrap();
    // Detection is by content: an MZ file is taken as a UKI, whatever its name.
    let uki = d.join("fake-uki.img");
    std::fs::write(&uki, b"MZ fake").unwrap();
    let app = d.join("app.sh");
    std::fs::write(&app, APP).unwrap();
    let run_local = || {
        let mut c = cvmkit(d);
        c.arg("run-local");
        c
    };

    assert_input_error(
        run_local()
            .arg("no-such-image.efi")
            .args(["--app", "app.sh"]),
        &["no-such-image.efi"],
    );
    assert_input_error(
        run_local().arg(&text).args(["--app", "app.sh"]),
        &["notes.txt", "not a UKI", "raw GPT disk", "qcow2"],
    );
    assert_input_error(run_local().arg(d), &["uki.efi"]);
    assert_input_error(
        run_local()
            .arg(&uki)
            .args(["--app", "app.sh", "--app", "missing-app.sh"]),
        &["--app", "missing-app.sh"],
    );
    assert_input_error(
        run_local()
            .arg(&uki)
            .args(["--manifest-json", "missing.json"]),
        &["--manifest-json", "missing.json"],
    );
    assert_input_error(
        run_local()
            .arg(&uki)
            .args(["--app", "app.sh", "--firmware", "/nonexistent/OVMF.fd"]),
        &["/nonexistent/OVMF.fd", "--firmware"],
    );
    // The default firmware from the environment (the flake's app sets it to nixpkgs' OVMF).
    assert_input_error(
        run_local().arg(&uki).args(["--app", "app.sh"]).env("CVMKIT_FIRMWARE", "/nonexistent/env-OVMF.fd"),
        &["/nonexistent/env-OVMF.fd", "CVMKIT_FIRMWARE"],
    );
    assert_input_error(
        run_local()
            .arg(&uki)
            .args([
                "--app",
                "app.sh",
                "--qemu",
                "/nonexistent/qemu-system-x86_64",
            ])
            .arg("--firmware")
            .arg(&inputs.ovmf),
        &["/nonexistent/qemu-system-x86_64", "--qemu"],
    );
    assert_input_error(
        run_local()
            .arg(&uki)
            .args(["--app", "app.sh", "--forward", "80"]),
        &["--forward", "80"],
    );
}

#[test]
fn relay_copies_both_ways() {
    // A TCP echo server on 127.0.0.1 that echoes until EOF, then closes.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        let mut copy = conn.try_clone().unwrap();
        std::io::copy(&mut conn, &mut copy).unwrap();
        copy.shutdown(std::net::Shutdown::Write).unwrap();
    });
    let tmp = tempfile::tempdir().unwrap();
    let mut child = cvmkit(tmp.path())
        .args(["run-local", "--relay", &format!("127.0.0.1:{port}")])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    // No read below can hang: after 60 s a watchdog kills the relay, which closes its stdout, so
    // a blocked read returns and the test fails.
    let pid = child.id();
    let done = Arc::new(AtomicBool::new(false));
    let watchdog = {
        let done = done.clone();
        std::thread::spawn(move || {
            let end = Instant::now() + Duration::from_secs(60);
            while !done.load(Ordering::SeqCst) && Instant::now() < end {
                std::thread::sleep(Duration::from_millis(50));
            }
            if !done.load(Ordering::SeqCst) {
                cvmkit_testutil::signal_process(pid, cvmkit_testutil::Signal::KILL);
            }
        })
    };
    // A first message must come back before the input is closed (an interactive exchange).
    stdin.write_all(b"hello").unwrap();
    stdin.flush().unwrap();
    let mut first = [0u8; 5];
    stdout.read_exact(&mut first).unwrap();
    assert_eq!(&first, b"hello");
    // Then 1 MiB of every byte value, read concurrently, and EOF both ways.
    let data: Vec<u8> = (0..(1u32 << 20)).map(|i| (i * 7 % 256) as u8).collect();
    let reader = std::thread::spawn(move || {
        let mut back = Vec::new();
        stdout.read_to_end(&mut back).unwrap();
        back
    });
    stdin.write_all(&data).unwrap();
    drop(stdin);
    let back = reader.join().unwrap();
    assert!(
        back == data,
        "relayed {} bytes, got {} back (or different ones)",
        data.len(),
        back.len()
    );
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the relay did not exit after both sides closed"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    done.store(true, Ordering::SeqCst);
    watchdog.join().unwrap();
    assert!(status.success(), "{status}");
    server.join().unwrap();
}

/// The images' static nginx (nix/nginx-static.nix's flags): $CVMKIT_NGINX_STATIC, else the one
/// scripts/check-nginx-static.sh built under .cache/nginx-static.
fn static_nginx() -> PathBuf {
    if let Some(p) = std::env::var_os("CVMKIT_NGINX_STATIC").filter(|p| !p.is_empty()) {
        return p.into();
    }
    let cache = repo_root().join(".cache/nginx-static");
    let found = std::fs::read_dir(&cache).ok().and_then(|dirs| {
        dirs.flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("build-"))
            .flat_map(|e| std::fs::read_dir(e.path()).into_iter().flatten().flatten())
            .map(|e| e.path().join("objs/nginx"))
            .find(|p| p.is_file())
    });
    found.unwrap_or_else(|| {
        panic!(
            "no static nginx under {}: run `bash scripts/check-nginx-static.sh` (scripts/test.sh does) \
             or set CVMKIT_NGINX_STATIC",
            cache.display()
        )
    })
}

/// curl `scheme://app.test:PORT/` pinned to 127.0.0.1, trusting `ca`: (status, body).
fn curl_app(scheme: &str, port: u16, ca: Option<&Path>) -> Option<(u16, String)> {
    let mut c = Command::new(require_tool("curl"));
    c.args(["-sS", "--max-time", "10", "-o", "-", "-w", "\n%{http_code}", "--noproxy", "*"])
        .arg("--resolve")
        .arg(format!("app.test:{port}:127.0.0.1"));
    if let Some(ca) = ca {
        c.arg("--cacert").arg(ca);
    }
    let out = cvmkit_testutil::output_deadline(
        c.arg(format!("{scheme}://app.test:{port}/")),
        Duration::from_secs(60),
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n')?;
    out.status
        .success()
        .then(|| (code.parse().ok(), body.to_string()))
        .and_then(|(c, b)| Some((c?, b)))
}

/// Waits until the serial log has `needle`; fails at once if run-local (`child`) has exited,
/// with its stderr (`err`).
fn wait_serial(
    serial: &Path,
    needle: &str,
    timeout: Duration,
    child: &mut std::process::Child,
    err: &Path,
) -> String {
    let end = Instant::now() + timeout;
    loop {
        let log = std::fs::read_to_string(serial).unwrap_or_default();
        if log.contains(needle) {
            return log;
        }
        let tail = &log[log.len().saturating_sub(4000)..];
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "run-local exited ({status}) before the guest logged {needle:?}; its stderr:\n{}\nserial tail:\n{tail}",
                std::fs::read_to_string(err).unwrap_or_default()
            );
        }
        assert!(
            Instant::now() < end,
            "the guest never logged {needle:?}; run-local's stderr:\n{}\nserial tail:\n{tail}",
            std::fs::read_to_string(err).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// The ACME port the guest sees on 10.0.2.2 (run-local's --guest-forward).
const GUEST_ACME_PORT: u16 = 14000;

#[test]
fn guest_gets_a_certificate_from_pebble_on_the_host_and_serves_https_by_name() {
    use cvmkit_testutil::pebble::Pebble;
    let inputs = inputs();
    require_tool("qemu-system-x86_64");
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let runtime = static_runtime();
    let nginx = std::fs::read(static_nginx()).unwrap();
    let (http_host, https_host) = (free_port(), free_port());
    // First a Pebble that validates on a port where nothing answers: it refuses the order, as
    // Let's Encrypt does for a name that does not point at the VM.
    let refusing = Pebble::start(d, free_port(), &[]);
    let acme_port = refusing.port;
    let conf = format!(
        "{RUNTIME_CONF}nginx-bin = /usr/sbin/nginx\nnginx-user = nobody nogroup\n\
         acme-directory = https://10.0.2.2:{GUEST_ACME_PORT}/dir\nacme-ca-file = /etc/cvmkit/acme-ca.pem\n\
         acme-retry-secs = 5\n"
    );
    let image = build_image_with(
        d,
        &inputs,
        &runtime,
        &conf,
        &[
            ("usr/sbin/nginx", nginx, 0o755),
            ("etc/passwd", b"root:x:0:0:root:/:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n".to_vec(), 0o644),
            ("etc/group", b"root:x:0:\nnogroup:x:65534:\n".to_vec(), 0o644),
            ("etc/cvmkit/acme-ca.pem", std::fs::read(&refusing.listener_ca).unwrap(), 0o644),
        ],
    );
    write_file(&d.join("app.sh"), APP.as_bytes(), 0o755);
    let serial = d.join("serial.log");
    let mut cmd = cvmkit(d);
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    cmd.arg("run-local")
        .arg(&image)
        .args(["--app", "app.sh", "--hostname", "app.test"])
        .args(["--forward", &format!("{http_host}:80")])
        .args(["--forward", &format!("{https_host}:443")])
        .args(["--guest-forward", &format!("{GUEST_ACME_PORT}:{acme_port}")])
        .args(["--memory", "512", "--accel", "tcg"])
        .arg("--firmware")
        .arg(&inputs.ovmf)
        .arg("--serial")
        .arg(&serial)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(d.join("run-local.err")).unwrap());
    let mut child = cmd.spawn().unwrap();
    struct Stop(u32);
    impl Drop for Stop {
        fn drop(&mut self) {
            cvmkit_testutil::kill_group(self.0);
        }
    }
    let _stop = Stop(child.id());
    let t0 = Instant::now();

    let err = d.join("run-local.err");
    let log = wait_serial(
        &serial,
        "acme: the CA could not validate app.test",
        Duration::from_secs(600),
        &mut child,
        &err,
    );
    eprintln!("run-local acme test: refusal logged after {:.0}s", t0.elapsed().as_secs_f64());
    assert!(log.contains("serving app.test over HTTP (workloads unaffected)"), "{log}");
    let http = wait_for_answer(|| curl_app("http", http_host, None).filter(|r| r.0 == 200));
    assert!(http.1.contains(MARKER), "{http:?}");
    assert!(curl_app("https", https_host, Some(&refusing.listener_ca)).is_none());

    // Then a Pebble on the same port that validates through the forward to the guest's port 80:
    // the runtime's next attempt gets the certificate and reloads nginx with HTTPS.
    drop(refusing);
    let pebble = Pebble::start_on(d, http_host, &[], Some(acme_port));
    wait_serial(
        &serial,
        "acme: nginx reloaded with HTTPS",
        Duration::from_secs(300),
        &mut child,
        &err,
    );
    eprintln!("run-local acme test: HTTPS after {:.0}s", t0.elapsed().as_secs_f64());
    let root = pebble.root();
    let https = wait_for_answer(|| curl_app("https", https_host, Some(&root)).filter(|r| r.0 == 200));
    assert!(https.1.contains(MARKER), "{https:?}");
    // Plain HTTP by name now redirects to HTTPS.
    assert_eq!(curl_app("http", http_host, None).map(|r| r.0), Some(301));
    let _ = child.try_wait();
}

/// Polls `f` for up to a minute.
fn wait_for_answer<T>(mut f: impl FnMut() -> Option<T>) -> T {
    let end = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < end, "no answer within 60 s");
        std::thread::sleep(Duration::from_millis(500));
    }
}
