//! End to end under QEMU: an image built with the workspace's own initramfs and UKI builders
//! (busybox + an /init that loads the NIC driver, runs DHCP and starts the *static*
//! cvmkit-runtime) boots with OVMF from a FAT ESP. The guest's network is `restrict=on`: it can
//! reach nothing but the two forwards, `guestfwd` 10.0.2.2:8090 → a relay to the test's metadata
//! server on 127.0.0.1, and `hostfwd` 127.0.0.1:PORT → guest port 3001. The test serves a
//! manifest and an app, and checks that the app answers through the forwarded port.
//!
//! The VM also has a TPM 2.0 (swtpm, `tpm-crb`): the runtime finds `/dev/tpmrm0` and extends the
//! manifest events into PCR 15 before fetching the app, and the app reports PCR 15 (read with
//! `cvmkit-runtime read-pcr`) in its answer, so the test checks the binding end to end against
//! `measure::expected_pcr`.
//!
//! QEMU's slirp refuses a `guestfwd` on its own host address, so the virtual host (gateway) is
//! moved to 10.0.2.254 and 10.0.2.2 is free to be the forwarded metadata address.
//!
//! Needs the example inputs (scripts/setup.sh) and a static runtime binary: the test builds it
//! with `RUSTFLAGS=-C target-feature=+crt-static cargo build --release --target
//! x86_64-unknown-linux-gnu -p cvmkit-runtime` into the same target directory, or takes
//! $CVMKIT_RUNTIME_STATIC_BIN.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use std::os::unix::process::CommandExt as _;

use crate::support::*;

const MARKER: &str = "CVMKIT-HARNESS-WORKLOAD-OK";

/// The guest's /init: pseudo-filesystems, busybox applets, NIC driver, DHCP, then the runtime.
const INIT: &str = r#"#!/bin/sh
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sysfs /sys
/bin/busybox mount -t devtmpfs devtmpfs /dev
/bin/busybox --install -s /bin
mkdir -p /run /var /etc /usr/share/udhcpc
insmod /lib/modules/e1000e.ko
ip link set lo up
ip link set eth0 up
udhcpc -i eth0 -s /etc/udhcpc.script -t 20 -T 1 -q -n || echo "CVMKIT-HARNESS: DHCP failed"
echo "CVMKIT-HARNESS: network up: $(ip -4 addr show eth0 | grep inet)"
/bin/cvmkit-runtime run --config /etc/cvmkit/runtime.conf &
# Stay PID 1 and reap orphans.
while :; do wait; sleep 1; done
"#;

/// The udhcpc hook: configure the address, the default route and resolv.conf.
const UDHCPC_SCRIPT: &str = r#"#!/bin/sh
case "$1" in
  deconfig) ifconfig "$interface" 0.0.0.0 ;;
  bound|renew)
    ifconfig "$interface" "$ip" netmask "${subnet:-255.255.255.0}"
    for r in $router; do route add default gw "$r" dev "$interface"; break; done
    : > /etc/resolv.conf
    for d in $dns; do echo "nameserver $d" >> /etc/resolv.conf; done ;;
esac
exit 0
"#;

/// The runtime's settings in the image: the QEMU source only (the guest cannot reach any other).
const RUNTIME_CONF: &str = "# cvmkit-runtime settings for the QEMU harness\nsources = qemu\nqemu-url = http://10.0.2.2:8090/\ndiscover-wait-secs = 120\n";

/// The workload: busybox httpd serving the marker on $PORT.
const APP: &str = "#!/bin/sh\nmkdir -p /tmp/www\npcr=$(/bin/cvmkit-runtime read-pcr --pcr 15 2>&1)\n\
echo \"CVMKIT-HARNESS-WORKLOAD-OK port=$PORT pcr15=$pcr\" > /tmp/www/index.html\nexec /bin/busybox httpd -f -p 0.0.0.0:$PORT -h /tmp/www\n";

/// Entries an unprivileged builder could not create on disk (gen_init_cpio format).
const SPEC: &str = "dir /dev 0755 0 0\nnod /dev/console 0600 0 0 c 5 1\nnod /dev/null 0666 0 0 c 1 3\n\
dir /proc 0555 0 0\ndir /sys 0555 0 0\ndir /tmp 1777 0 0\nslink /bin/sh busybox 0777 0 0\n";

fn static_runtime() -> PathBuf {
    if let Some(p) = std::env::var_os("CVMKIT_RUNTIME_STATIC_BIN") {
        return p.into();
    }
    let target_dir =
        std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| repo_root().join("target"));
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut build = Command::new(cargo)
        .current_dir(repo_root())
        .env("CARGO_TARGET_DIR", &target_dir)
        .env("RUSTFLAGS", "-C target-feature=+crt-static")
        .args(["build", "--quiet", "--release", "-p", "cvmkit-runtime", "--target", "x86_64-unknown-linux-gnu"])
        .stdin(Stdio::null())
        .spawn()
        .expect("cannot run cargo to build the static runtime");
    let status =
        cvmkit_testutil::wait_deadline(&mut build, Duration::from_secs(1800), "the static build of cvmkit-runtime");
    assert!(status.success(), "static build of cvmkit-runtime failed");
    target_dir.join("x86_64-unknown-linux-gnu/release/cvmkit-runtime")
}

fn copy_exec(from: &Path, to: &Path) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    std::fs::copy(from, to).unwrap_or_else(|e| panic!("copy {}: {e}", from.display()));
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn write_file(to: &Path, text: &str, mode: u32) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    std::fs::write(to, text).unwrap();
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Builds the UKI: initramfs with cvmkit-initrd, UKI with cvmkit-uki (Debian's kernel and stub).
fn build_uki(dir: &Path, runtime: &Path) -> PathBuf {
    // Each from its environment variable or inputs.env; a missing one fails naming it.
    let get = cvmkit_testutil::input;
    let kernel = get("KERNEL");
    // .../linux-image-V/boot/vmlinuz-V → .../linux-image-V/lib/modules/V/kernel/…/e1000e.ko
    let version = kernel.file_name().unwrap().to_str().unwrap().trim_start_matches("vmlinuz-").to_string();
    let pkg = kernel.parent().unwrap().parent().unwrap();
    let e1000e = pkg.join(format!("lib/modules/{version}/kernel/drivers/net/ethernet/intel/e1000e/e1000e.ko"));

    let root = dir.join("root");
    copy_exec(&get("BUSYBOX"), &root.join("bin/busybox"));
    copy_exec(runtime, &root.join("bin/cvmkit-runtime"));
    std::fs::create_dir_all(root.join("lib/modules")).unwrap();
    std::fs::copy(&e1000e, root.join("lib/modules/e1000e.ko")).unwrap_or_else(|e| panic!("{}: {e}", e1000e.display()));
    write_file(&root.join("init"), INIT, 0o755);
    write_file(&root.join("etc/udhcpc.script"), UDHCPC_SCRIPT, 0o755);
    write_file(&root.join("etc/cvmkit/runtime.conf"), RUNTIME_CONF, 0o644);

    let spec = cvmkit_initrd::Spec::parse(SPEC, Path::new("harness.spec")).unwrap();
    let mut initrd = Vec::new();
    cvmkit_initrd::build(
        Some(&root),
        Some(&spec),
        &cvmkit_initrd::Options::default(),
        cvmkit_initrd::Compression::None,
        &mut initrd,
    )
    .unwrap();
    let stub = std::fs::read(get("STUB")).unwrap();
    let linux = std::fs::read(&kernel).unwrap();
    let parts = cvmkit_uki::UkiParts {
        linux: &linux,
        initrds: vec![&initrd],
        cmdline: Some("console=ttyS0 panic=-1 loglevel=4 no_timer_check"),
        uname: Some(&version),
        ..Default::default()
    };
    let uki = cvmkit_uki::build_uki(&stub, &parts, 0).unwrap();
    let path = dir.join("uki.efi");
    std::fs::write(&path, uki).unwrap();
    path
}

/// Puts `uki` on a FAT ESP as \EFI\BOOT\BOOTX64.EFI with mkfs.vfat + mtools.
fn make_esp(dir: &Path, uki: &Path) -> PathBuf {
    let esp = dir.join("esp.img");
    let kib = std::fs::metadata(uki).unwrap().len() / 1024 + 8 * 1024;
    let run = |c: &mut Command| {
        let out = cvmkit_testutil::output_deadline(c, TOOL_TIMEOUT);
        assert!(out.status.success(), "{c:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    };
    run(Command::new(require_tool("mkfs.vfat")).arg("-C").arg(&esp).arg(kib.to_string()));
    run(Command::new(require_tool("mmd")).arg("-i").arg(&esp).args(["::/EFI", "::/EFI/BOOT"]));
    run(Command::new(require_tool("mcopy")).arg("-i").arg(&esp).arg(uki).arg("::/EFI/BOOT/BOOTX64.EFI"));
    esp
}

#[test]
fn boots_and_serves_the_workload_through_hostfwd() {
    let ovmf = cvmkit_testutil::ovmf();
    // The guestfwd relay runs `bash -c '… cat …'`: a missing one must fail here, not time out.
    require_tool("bash");
    require_tool("cat");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let runtime = static_runtime();
    let uki = build_uki(d, &runtime);
    let esp = make_esp(d, &uki);

    // The metadata server the guest reaches as 10.0.2.2:8090.
    let meta = Server::start(Flavor::Plain);
    meta.set("/app", Reply::Body(APP.as_bytes().to_vec()));
    meta.set(
        "/manifest",
        Reply::Body(manifest_value("http://10.0.2.2:8090/app", &sha256_hex(APP.as_bytes())).into_bytes()),
    );
    let relay = format!("bash -c 'exec 3<>/dev/tcp/127.0.0.1/{}; cat <&3 & exec cat >&3'", meta.addr.port());
    let host_port = free_ports(1);
    let nic = format!(
        "user,model=e1000e,restrict=on,net=10.0.2.0/24,host=10.0.2.254,guestfwd=tcp:10.0.2.2:8090-cmd:{relay},hostfwd=tcp:127.0.0.1:{host_port}-:3001"
    );
    // The vTPM: swtpm on a Unix socket in the temp dir, as QEMU's TPM emulator backend.
    std::fs::create_dir_all(d.join("tpm")).unwrap();
    let tpm_sock = d.join("tpm/swtpm.sock");
    let swtpm = Command::new(require_tool("swtpm"))
        .args(["socket", "--tpm2"])
        .arg("--tpmstate")
        .arg(format!("dir={}", d.join("tpm").display()))
        .arg("--ctrl")
        .arg(format!("type=unixio,path={}", tpm_sock.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap();
    let _swtpm = Killed(swtpm);
    wait_for(Duration::from_secs(10), || tpm_sock.exists().then_some(())).expect("swtpm did not start");

    let serial = d.join("serial.log");
    let start = Instant::now();
    let child = Command::new(require_tool("qemu-system-x86_64"))
        .args(["-machine", "q35", "-accel", "tcg", "-m", "512", "-smp", "1"])
        .arg("-bios")
        .arg(&ovmf)
        .arg("-drive")
        .arg(format!("if=virtio,format=raw,file={}", esp.display()))
        .args(["-display", "none", "-monitor", "none", "-no-reboot", "-nic", &nic])
        .arg("-chardev")
        .arg(format!("socket,id=chrtpm,path={}", tpm_sock.display()))
        .args(["-tpmdev", "emulator,id=tpm0,chardev=chrtpm", "-device", "tpm-crb,tpmdev=tpm0"])
        .arg("-serial")
        .arg(format!("file:{}", serial.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .expect("cannot start qemu-system-x86_64");
    let mut qemu = Killed(child);
    let answer = wait_for(Duration::from_secs(300), || {
        if let Ok(Some(status)) = qemu.0.try_wait() {
            let log = std::fs::read_to_string(&serial).unwrap_or_default();
            panic!("qemu exited ({status}); serial log:\n{log}");
        }
        http_get(&format!("http://127.0.0.1:{host_port}/")).filter(|(code, body)| *code == 200 && body.contains(MARKER))
    });
    let elapsed = start.elapsed();
    let log = std::fs::read_to_string(&serial).unwrap_or_default();
    let tail = &log[log.len().saturating_sub(4000)..];
    let (_, body) = answer
        .unwrap_or_else(|| panic!("the workload never answered on 127.0.0.1:{host_port}; serial log tail:\n{tail}"));
    // PCR 15 in the guest's TPM is what a verifier computes from the manifest alone.
    let digest = cvmkit_runtime::manifest::Sha256Digest::from_hex(&sha256_hex(APP.as_bytes())).unwrap();
    let events = cvmkit_runtime::measure::events(&[digest], &[], 3001);
    let pcr15 = cvmkit_runtime::manifest::hex(&cvmkit_runtime::measure::expected_pcr(&events));
    assert_eq!(body, format!("{MARKER} port=3001 pcr15={pcr15}\n"));
    eprintln!("qemu harness: workload answered {:.1}s after QEMU started", elapsed.as_secs_f64());
    for line in
        log.lines().filter(|l| l.contains("cvmkit-runtime") || l.contains("[app-") || l.contains("CVMKIT-HARNESS"))
    {
        eprintln!("  guest: {}", line.trim_end());
    }
    assert!(log.contains("cvmkit-runtime: metadata source qemu: answered with 1 workload(s)"), "{tail}");
    assert!(log.contains("cvmkit-runtime: app-0: fetched http://10.0.2.2:8090/app and verified sha256"), "{tail}");
    assert!(log.contains("cvmkit-runtime: extended 2 event(s) into PCR 15 (SHA-256 bank) via /dev/tpmrm0"), "{tail}");
    // The guest fetched the manifest and the app through the relay, from this test's server only.
    let paths: Vec<String> = meta.requests().into_iter().map(|r| r.path).collect();
    assert!(paths.contains(&"/manifest".to_string()) && paths.contains(&"/app".to_string()), "{paths:?}");
    drop(qemu.0.stderr.take());
}
