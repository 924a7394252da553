//! `cvmkit run-local`: boot an image under QEMU the way a cloud would run it, with nothing but
//! the host in reach, and check that its workload answers.
//!
//! The guest gets QEMU user networking with `restrict=on`: it can reach only two forwards.
//!
//! * `guestfwd` 10.0.2.2:8090 → a relay (this binary, `run-local --relay`, spawned by QEMU once
//!   per guest connection with the connection on stdin/stdout) → the metadata server this command
//!   runs on 127.0.0.1. That is where cvmkit-runtime's QEMU source looks: `manifest`,
//!   `manifest-1`, … up to the first 404, then `hostname`; the `--app` files are served at
//!   `/apps/N`.
//! * `hostfwd` 127.0.0.1:HOST_PORT → guest port 3001+N, one per workload.
//!
//! QEMU's slirp refuses a `guestfwd` on its own host address, so the virtual host (the gateway)
//! is moved to 10.0.2.254 and 10.0.2.2 is free to be the forwarded metadata address.
//!
//! Every input is checked before anything is started; QEMU and swtpm run in process groups of
//! their own that a guard kills on every way out (and they get SIGKILL if this process dies).

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde::Serialize;

use crate::output::sha256_file;

/// Where the guest finds the metadata server (cvmkit-runtime's default QEMU source).
const METADATA_GUEST_ADDR: &str = "10.0.2.2";
const METADATA_GUEST_PORT: u16 = 8090;
/// Workload N listens on this + N (cvmkit-runtime's `base-port`).
const BASE_PORT: u16 = 3001;
/// Firmware looked for when --firmware is not given (Debian/Ubuntu's `ovmf` package).
const DEFAULT_FIRMWARE: [&str; 2] = ["/usr/share/ovmf/OVMF.fd", "/usr/share/qemu/OVMF.fd"];
/// Serial console lines shown when the workload did not answer.
const TAIL_LINES: usize = 40;

/// How QEMU runs the guest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Accel {
    /// Emulation: slow (a UKI boots in tens of seconds) but works everywhere.
    Tcg,
    /// Hardware virtualization through /dev/kvm.
    Kvm,
    /// kvm if /dev/kvm opens read-write, else tcg.
    Auto,
}

#[derive(clap::Args)]
pub struct Args {
    /// The image: a UKI, a raw GPT disk, a qcow2 disk, or a directory holding uki.efi (what the
    /// Nix image derivations output). Recognized by content; never modified (disks boot with
    /// snapshot=on, a UKI is put on a temporary disk).
    #[arg(value_name = "IMAGE", required = true)]
    image: Option<PathBuf>,
    /// A workload program (repeatable): the N-th --app is workload N, served to the guest at
    /// /apps/N with its sha256 in the manifest key `manifest` (N=0), `manifest-N` (N>0), and
    /// listening on guest port 3001+N.
    #[arg(long, value_name = "FILE")]
    app: Vec<PathBuf>,
    /// A manifest JSON served as is (base64-encoded) as the next manifest key after the --app
    /// ones (repeatable): for apps hosted elsewhere, or deliberately wrong hashes.
    #[arg(long, value_name = "FILE")]
    manifest_json: Vec<PathBuf>,
    /// The `hostname` metadata value (the runtime's HTTPS mapping); absent (404) without it.
    #[arg(long, value_name = "NAMES")]
    hostname: Option<String>,
    /// Forward 127.0.0.1:HOST_PORT to a guest port (repeatable). Every workload whose port is not
    /// forwarded this way gets a free host port.
    #[arg(long, value_name = "HOST_PORT:GUEST_PORT")]
    forward: Vec<String>,
    /// The UEFI firmware (default: $CVMKIT_FIRMWARE, which the flake's app sets to nixpkgs'
    /// OVMF, else /usr/share/ovmf/OVMF.fd or /usr/share/qemu/OVMF.fd).
    #[arg(long, value_name = "FILE")]
    firmware: Option<PathBuf>,
    /// Guest memory (QEMU -m): a size such as 1G or 512M; a plain number is MiB, as for QEMU.
    #[arg(long, value_name = "SIZE", default_value = "1G")]
    memory: String,
    /// Number of virtual CPUs (QEMU -smp).
    #[arg(long = "vcpus", visible_alias = "smp", value_name = "N", default_value_t = 1)]
    smp: u32,
    /// The guest's NIC (a QEMU device model); the image must have its driver. The default,
    /// e1000e, is QEMU's own default NIC on q35: built into the flake's guest kernel, and a single
    /// module without dependencies in Debian's (which builds every NIC driver as a module), so an
    /// image carries it with one `insmod`. virtio-net-pci needs 8 modules on Debian's kernel.
    #[arg(long, value_name = "MODEL", default_value = "e1000e")]
    nic_model: String,
    /// Give the guest a TPM 2.0 (swtpm, tpm-crb), so the runtime binds the manifest to PCR 15.
    #[arg(long)]
    tpm: bool,
    /// Accelerator.
    #[arg(long, value_enum, default_value_t = Accel::Auto)]
    accel: Accel,
    /// Write the serial console here (default: a temporary file, kept and named on failure).
    #[arg(long, value_name = "FILE")]
    serial: Option<PathBuf>,
    /// The QEMU binary (default: qemu-system-x86_64 on PATH).
    #[arg(long, value_name = "PATH")]
    qemu: Option<PathBuf>,
    /// Wait until workload 0 answers 200 with a body containing TEXT, then stop the VM (exit 0;
    /// 1 on timeout or if QEMU exits first). Without it: boot, print the URLs, run until QEMU
    /// exits or Ctrl-C.
    #[arg(long, value_name = "TEXT")]
    expect: Option<String>,
    /// The path --expect requests.
    #[arg(long, value_name = "PATH", default_value = "/", requires = "expect")]
    expect_path: String,
    /// Seconds --expect waits, from QEMU's start.
    #[arg(long, value_name = "SECS", default_value_t = 300, requires = "expect")]
    timeout: u64,
    /// With --app: seconds the guest has, from QEMU's start, to ask the metadata server for its
    /// manifest; a guest that never asks (no network driver for --nic-model, no runtime in the
    /// image, a boot that hangs) fails then with that reason instead of after --timeout. 0: wait.
    #[arg(long, value_name = "SECS", default_value_t = 120)]
    metadata_timeout: u64,
    /// Print one JSON object with the result.
    #[arg(long)]
    json: bool,
    /// Internal: QEMU's guestfwd command; copies stdin/stdout to and from ADDR.
    #[arg(long, value_name = "ADDR", hide = true, exclusive = true)]
    relay: Option<String>,
}

pub fn run(args: Args) -> Result<ExitCode> {
    if let Some(addr) = &args.relay {
        return relay(addr);
    }
    let plan = Plan::check(&args)?;
    // `auto` chose KVM because /dev/kvm opens; some hosts' KVM still cannot run a guest (QEMU
    // stops with "KVM internal error", or dies at start, e.g. "failed to set MSR" then SIGABRT):
    // then boot again with TCG instead of failing.
    let fallback = args.accel == Accel::Auto && plan.accel == Accel::Kvm;
    match plan.launch(&args, fallback)? {
        Some(code) => Ok(code),
        None => {
            eprintln!("run-local: KVM cannot run the guest on this host; booting again with TCG");
            let mut plan = Plan::check(&args)?;
            plan.accel = Accel::Tcg;
            Ok(plan.launch(&args, false)?.expect("no fallback from TCG"))
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Checking the inputs (nothing is started here).

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ImageKind {
    Uki,
    Raw,
    Qcow2,
}

/// What the metadata server answers for one path.
enum Route {
    Bytes(Vec<u8>),
    File(PathBuf),
}

struct Workload {
    index: usize,
    sha256: Option<String>,
    guest_port: u16,
    host_port: Option<u16>,
}

struct Plan {
    image: PathBuf,
    firmware: PathBuf,
    qemu: PathBuf,
    swtpm: Option<PathBuf>,
    accel: Accel,
    memory: u32,
    smp: u32,
    nic_model: String,
    /// The disk QEMU boots and its format; `snapshot` when it is the user's file.
    disk: PathBuf,
    disk_format: &'static str,
    snapshot: bool,
    routes: HashMap<String, Route>,
    workloads: Vec<Workload>,
    /// (host port, guest port).
    forwards: Vec<(u16, u16)>,
    serial: SerialLog,
    /// Holds the temporary disk, swtpm's state and QEMU's stderr; removed on drop.
    tmp: tempfile::TempDir,
}

enum SerialLog {
    User(PathBuf),
    Temp(tempfile::TempPath),
}

impl SerialLog {
    fn path(&self) -> &Path {
        match self {
            Self::User(p) => p,
            Self::Temp(t) => t,
        }
    }
}

impl Plan {
    fn check(args: &Args) -> Result<Plan> {
        let image = args
            .image
            .clone()
            .expect("clap requires IMAGE without --relay");
        let (image_file, kind) = detect_image(&image)?;

        let mut routes = HashMap::new();
        let mut manifests = Vec::new();
        let mut workloads = Vec::new();
        for (n, app) in args.app.iter().enumerate() {
            let sha = sha256_file(app)
                .with_context(|| format!("cannot read --app file {}", app.display()))?;
            let json = serde_json::json!({
                "app": format!("http://{METADATA_GUEST_ADDR}:{METADATA_GUEST_PORT}/apps/{n}"),
                "sha256": sha,
            });
            manifests.push(json.to_string());
            routes.insert(format!("/apps/{n}"), Route::File(app.clone()));
            workloads.push(Workload {
                index: n,
                sha256: Some(sha),
                guest_port: 0,
                host_port: None,
            });
        }
        for file in &args.manifest_json {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("cannot read --manifest-json file {}", file.display()))?;
            // Served exactly as given (a wrong hash or a broken value is a legitimate test); the
            // workloads are counted as the runtime will, when it is JSON at all.
            let entries = match serde_json::from_str::<serde_json::Value>(&text) {
                Ok(serde_json::Value::Array(list)) => list,
                Ok(v) => vec![v],
                Err(_) => vec![serde_json::Value::Null],
            };
            for e in entries {
                let sha = e
                    .get("sha256")
                    .and_then(|s| s.as_str())
                    .map(|s| s.to_ascii_lowercase());
                workloads.push(Workload {
                    index: workloads.len(),
                    sha256: sha,
                    guest_port: 0,
                    host_port: None,
                });
            }
            manifests.push(text);
        }
        for (i, json) in manifests.iter().enumerate() {
            let key = if i == 0 {
                "/manifest".to_string()
            } else {
                format!("/manifest-{i}")
            };
            let value = base64(json.trim_end().as_bytes());
            routes.insert(key, Route::Bytes(value.into_bytes()));
        }
        if let Some(h) = &args.hostname {
            routes.insert("/hostname".into(), Route::Bytes(h.clone().into_bytes()));
        }

        let mut forwards = Vec::new();
        for f in &args.forward {
            forwards.push(parse_forward(f)?);
        }
        for w in &mut workloads {
            w.guest_port = u16::try_from(w.index)
                .ok()
                .and_then(|i| BASE_PORT.checked_add(i))
                .context("too many workloads")?;
            w.host_port = forwards
                .iter()
                .find(|(_, g)| *g == w.guest_port)
                .map(|(h, _)| *h);
        }
        if args.expect.is_some() {
            if !args.expect_path.starts_with('/') {
                bail!("--expect-path {:?} must start with /", args.expect_path);
            }
            let forwarded = forwards.iter().any(|(_, g)| *g == BASE_PORT);
            if workloads.is_empty() && !forwarded {
                bail!("--expect needs workload 0: give --app or --manifest-json, or --forward HOST_PORT:{BASE_PORT}");
            }
        }

        let firmware = find_firmware(args.firmware.as_deref())?;
        let qemu = find_tool(
            args.qemu.as_deref(),
            "qemu-system-x86_64",
            "--qemu",
            "qemu-system-x86",
        )?;
        let swtpm = if args.tpm {
            Some(find_tool(None, "swtpm", "--tpm", "swtpm")?)
        } else {
            None
        };
        let memory = cvmkit_image::parse_memory(&args.memory).context("--memory")?;
        if memory % (1 << 20) != 0 || memory < (64 << 20) {
            bail!("--memory {}: a whole number of MiB, at least 64M", args.memory);
        }
        let memory = u32::try_from(memory >> 20).context("--memory: too large")?;
        let accel = match args.accel {
            Accel::Auto if kvm_usable() => Accel::Kvm,
            Accel::Auto => Accel::Tcg,
            a => a,
        };
        if accel == Accel::Kvm && !kvm_usable() {
            bail!("--accel kvm: cannot open /dev/kvm read-write; use --accel tcg");
        }

        let serial = match &args.serial {
            Some(p) => {
                File::create(p)
                    .with_context(|| format!("cannot create --serial file {}", p.display()))?;
                SerialLog::User(p.clone())
            }
            None => SerialLog::Temp(
                tempfile::Builder::new()
                    .prefix("cvmkit-run-local-")
                    .suffix(".serial.log")
                    .tempfile()
                    .context("cannot create a temporary serial log")?
                    .into_temp_path(),
            ),
        };
        let tmp = tempfile::Builder::new()
            .prefix("cvmkit-run-local.")
            .tempdir()
            .context("cannot create a temporary directory")?;
        let (disk, disk_format, snapshot) = match kind {
            ImageKind::Uki => {
                let disk = tmp.path().join("disk.raw");
                let spec = cvmkit_disk::DiskSpec::new(&image_file, "cvmkit-run-local", 0);
                cvmkit_disk::write_disk_file(&spec, cvmkit_disk::Format::Raw, &disk).with_context(
                    || format!("cannot put the UKI {} on a disk", image_file.display()),
                )?;
                (disk, "raw", false)
            }
            ImageKind::Raw => (image_file.clone(), "raw", true),
            ImageKind::Qcow2 => (image_file.clone(), "qcow2", true),
        };

        Ok(Plan {
            image,
            firmware,
            qemu,
            swtpm,
            accel,
            memory,
            smp: args.smp,
            nic_model: args.nic_model.clone(),
            disk,
            disk_format,
            snapshot,
            routes,
            workloads,
            forwards,
            serial,
            tmp,
        })
    }
}

/// Resolves a directory to its uki.efi and tells the format by the first bytes.
fn detect_image(image: &Path) -> Result<(PathBuf, ImageKind)> {
    let meta = std::fs::metadata(image)
        .with_context(|| format!("cannot read image {}", image.display()))?;
    let file = if meta.is_dir() {
        let uki = image.join("uki.efi");
        if !uki.is_file() {
            bail!("image {} is a directory without uki.efi", image.display());
        }
        uki
    } else {
        image.to_path_buf()
    };
    let mut head = Vec::with_capacity(520);
    File::open(&file)
        .and_then(|f| f.take(520).read_to_end(&mut head))
        .with_context(|| format!("cannot read image {}", file.display()))?;
    let kind = if head.starts_with(b"MZ") {
        ImageKind::Uki
    } else if head.starts_with(b"QFI\xfb") {
        ImageKind::Qcow2
    } else if head.get(512..520) == Some(b"EFI PART") {
        ImageKind::Raw
    } else {
        bail!(
            "image {} is not a UKI (PE, starts with MZ), a raw GPT disk (\"EFI PART\" at byte 512) \
             or a qcow2 disk (starts with QFI\\xfb)",
            file.display()
        );
    };
    Ok((file, kind))
}


fn parse_forward(s: &str) -> Result<(u16, u16)> {
    let bad = || format!("--forward {s:?}: want HOST_PORT:GUEST_PORT, two ports from 1 to 65535");
    let (h, g) = s.split_once(':').with_context(bad)?;
    let port = |p: &str| p.trim().parse::<u16>().ok().filter(|&p| p != 0);
    match (port(h), port(g)) {
        (Some(h), Some(g)) => Ok((h, g)),
        _ => bail!(bad()),
    }
}

fn find_firmware(given: Option<&Path>) -> Result<PathBuf> {
    if let Some(p) = given {
        let meta = std::fs::metadata(p)
            .with_context(|| format!("cannot read firmware {} (--firmware)", p.display()))?;
        if !meta.is_file() {
            bail!(
                "firmware {} (--firmware) is not a regular file",
                p.display()
            );
        }
        return Ok(p.to_path_buf());
    }
    if let Some(p) = std::env::var_os("CVMKIT_FIRMWARE").filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        if !p.is_file() {
            bail!("firmware {} (CVMKIT_FIRMWARE) is not a regular file", p.display());
        }
        return Ok(p);
    }
    DEFAULT_FIRMWARE.iter().map(PathBuf::from).find(|p| p.is_file()).with_context(|| {
        format!(
            "no UEFI firmware found at {}; install it (apt-get install ovmf) or give --firmware FILE",
            DEFAULT_FIRMWARE.join(" or ")
        )
    })
}

/// `given` (a path, or a name looked up on PATH), else `default` on PATH.
fn find_tool(given: Option<&Path>, default: &str, flag: &str, package: &str) -> Result<PathBuf> {
    let name = given.unwrap_or(Path::new(default));
    if name.components().count() > 1 {
        if !name.is_file() {
            bail!("{} ({flag}) does not exist", name.display());
        }
        return Ok(name.to_path_buf());
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .with_context(|| {
            format!(
                "{} not found on PATH; install it (apt-get install {package}) or give {flag}",
                name.display()
            )
        })
}

fn kvm_usable() -> bool {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .is_ok()
}

// ---------------------------------------------------------------------------------------------
// Running.

#[derive(Serialize)]
struct WorkloadReport {
    index: usize,
    sha256: Option<String>,
    host_url: Option<String>,
    guest_port: u16,
}

#[derive(Serialize)]
struct Report {
    image: String,
    firmware: String,
    accel: &'static str,
    workloads: Vec<WorkloadReport>,
    /// Paths the guest asked the metadata server for, in order.
    metadata_requests: Vec<String>,
    answered: bool,
    /// How it ended: answered, timeout, qemu-exited, interrupted.
    outcome: &'static str,
    /// From QEMU's start to the answer (or the end).
    seconds: f64,
    /// The serial console log; null when it was a temporary file and was removed.
    serial_log: Option<String>,
}

enum Outcome {
    Answered,
    Timeout,
    QemuExited(ExitStatus),
    Interrupted,
    /// KVM failed inside QEMU, which then sits paused instead of exiting.
    KvmFailed,
    /// The guest did not ask the metadata server for anything within --metadata-timeout.
    NoMetadataRequest,
}

impl Outcome {
    fn name(&self) -> &'static str {
        match self {
            Self::Answered => "answered",
            Self::Timeout => "timeout",
            Self::QemuExited(_) => "qemu-exited",
            Self::Interrupted => "interrupted",
            Self::KvmFailed => "kvm-failed",
            Self::NoMetadataRequest => "no-metadata-request",
        }
    }
}

impl Plan {
    /// Boots and reports; `None` (only with `kvm_fallback`) when KVM failed and nothing was
    /// reported, so the caller boots again with TCG.
    fn launch(mut self, args: &Args, kvm_fallback: bool) -> Result<Option<ExitCode>> {
        install_signal_handlers();
        // Free host ports for workloads nobody forwarded (bound and released: QEMU binds them).
        for w in &mut self.workloads {
            if w.host_port.is_none() {
                let port = free_port()?;
                w.host_port = Some(port);
                self.forwards.push((port, w.guest_port));
            }
        }
        let metadata = MetadataServer::start(std::mem::take(&mut self.routes))?;

        let mut swtpm_guard = None;
        let mut tpm_socket = None;
        if let Some(swtpm) = &self.swtpm {
            let state = self.tmp.path().join("tpm");
            std::fs::create_dir_all(&state).context("cannot create swtpm's state directory")?;
            let sock = state.join("swtpm.sock");
            let mut cmd = Command::new(swtpm);
            cmd.args(["socket", "--tpm2", "--terminate"])
                .arg("--tpmstate")
                .arg(format!("dir={}", qemu_escape(&state.display().to_string())))
                .arg("--ctrl")
                .arg(format!(
                    "type=unixio,path={}",
                    qemu_escape(&sock.display().to_string())
                ))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            let guard = Group::spawn(&mut cmd)
                .with_context(|| format!("cannot start {}", swtpm.display()))?;
            swtpm_guard = Some(guard);
            let end = Instant::now() + Duration::from_secs(10);
            while !sock.exists() {
                if Instant::now() > end {
                    bail!(
                        "swtpm did not create its socket {} within 10 s",
                        sock.display()
                    );
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            tpm_socket = Some(sock);
        }

        let qemu_stderr = self.tmp.path().join("qemu.stderr");
        let mut cmd = self.qemu_command(metadata.port, tpm_socket.as_deref())?;
        cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(
            File::create(&qemu_stderr).context("cannot create a file for QEMU's messages")?,
        );
        let start = Instant::now();
        let mut qemu = Group::spawn(&mut cmd)
            .with_context(|| format!("cannot start {}", self.qemu.display()))?;

        let workload0 = self
            .forwards
            .iter()
            .find(|(_, g)| *g == BASE_PORT)
            .map(|(h, _)| *h);
        let mut answered_at = None;
        // With --expect: workload 0's port and the text to wait for.
        let probe = args
            .expect
            .as_ref()
            .map(|text| (workload0.expect("checked: --expect has workload 0"), text));
        if probe.is_none() && !args.json {
            println!(
                "run-local: QEMU is running ({} accel); serial console: {}",
                accel_name(self.accel),
                self.serial.path().display()
            );
            for w in &self.workloads {
                println!(
                    "run-local: workload {}: http://127.0.0.1:{}/ (guest port {})",
                    w.index,
                    w.host_port.unwrap_or(0),
                    w.guest_port
                );
            }
            for (h, g) in self
                .forwards
                .iter()
                .filter(|(_, g)| !self.workloads.iter().any(|w| w.guest_port == *g))
            {
                println!("run-local: forward: 127.0.0.1:{h} -> guest port {g}");
            }
            println!("run-local: stop with Ctrl-C");
            let _ = std::io::stdout().flush();
        }
        let timeout = Duration::from_secs(args.timeout);
        let outcome = loop {
            if STOP.load(Ordering::SeqCst) {
                break Outcome::Interrupted;
            }
            if let Some(status) = qemu.try_wait() {
                break Outcome::QemuExited(status);
            }
            if kvm_failed(self.accel, &qemu_stderr) {
                break Outcome::KvmFailed;
            }
            if !self.workloads.is_empty()
                && args.metadata_timeout > 0
                && start.elapsed() > Duration::from_secs(args.metadata_timeout)
                && metadata.requests().is_empty()
            {
                break Outcome::NoMetadataRequest;
            }
            if let Some((port, text)) = probe {
                if let Some((200, body)) = http_get(port, &args.expect_path) {
                    if contains(&body, text.as_bytes()) {
                        answered_at = Some(start.elapsed());
                        break Outcome::Answered;
                    }
                }
                if start.elapsed() > timeout {
                    break Outcome::Timeout;
                }
            }
            std::thread::sleep(Duration::from_millis(if probe.is_some() { 500 } else { 200 }));
        };
        let elapsed = answered_at.unwrap_or_else(|| start.elapsed());
        qemu.stop();
        if let Some(mut g) = swtpm_guard.take() {
            g.stop();
        }
        let requests = metadata.requests();
        if kvm_fallback && kvm_gave_up(&outcome, elapsed, &requests) {
            return Ok(None);
        }

        let success = match &outcome {
            Outcome::Answered => true,
            Outcome::Interrupted => args.expect.is_none(),
            Outcome::QemuExited(status) => args.expect.is_none() && status.success(),
            Outcome::Timeout | Outcome::KvmFailed | Outcome::NoMetadataRequest => false,
        };
        if !success {
            let said = std::fs::read_to_string(&qemu_stderr).unwrap_or_default();
            // (Its note that this command stopped it is no news.)
            let said: Vec<&str> = said
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.contains("terminating on signal"))
                .take(5)
                .collect();
            let mut why = match &outcome {
                Outcome::Timeout => format!(
                    "workload 0 did not answer http://127.0.0.1:{}{} with 200 and {:?} within {} s",
                    workload0.unwrap_or(0),
                    args.expect_path,
                    args.expect.as_deref().unwrap_or(""),
                    args.timeout
                ),
                Outcome::QemuExited(status) if args.expect.is_some() => format!(
                    "QEMU exited ({status}) after {:.1} s, before the workload answered",
                    elapsed.as_secs_f64()
                ),
                Outcome::QemuExited(status) => format!("QEMU exited ({status})"),
                Outcome::Interrupted => "interrupted before the workload answered".to_string(),
                Outcome::KvmFailed => "KVM failed to run the guest".to_string(),
                Outcome::NoMetadataRequest => format!(
                    "the guest did not ask the metadata server ({METADATA_GUEST_ADDR}:{METADATA_GUEST_PORT}) for its manifest within {} s: \
                     does the image have a driver for --nic-model {} (Debian's kernel builds NIC drivers as modules), \
                     and does it start cvmkit-runtime? (--metadata-timeout 0 waits)",
                    args.metadata_timeout, self.nic_model
                ),
                Outcome::Answered => unreachable!("an answer is a success"),
            };
            if !said.is_empty() {
                why.push_str(&format!("; QEMU said: {}", said.join(" | ")));
            }
            if self.accel == Accel::Kvm && !matches!(outcome, Outcome::Interrupted) {
                why.push_str(" (KVM was used; if it does not work on this host, try --accel tcg)");
            }
            eprintln!("run-local: {why}");
            let log = std::fs::read(self.serial.path()).unwrap_or_default();
            let log = String::from_utf8_lossy(&log);
            let lines: Vec<&str> = log.lines().collect();
            let tail = &lines[lines.len().saturating_sub(TAIL_LINES)..];
            eprintln!(
                "run-local: last {} serial console lines (full log: {}):",
                tail.len(),
                self.serial.path().display()
            );
            for l in tail {
                eprintln!("  {}", printable(l));
            }
        }
        // A temporary serial log is kept only when something went wrong.
        let serial_log = match self.serial {
            SerialLog::User(p) => Some(p.display().to_string()),
            SerialLog::Temp(t) if !success => {
                let p = t.keep().context("cannot keep the serial log")?;
                Some(p.display().to_string())
            }
            SerialLog::Temp(_) => None,
        };

        let answered = matches!(outcome, Outcome::Answered);
        let report = Report {
            image: self.image.display().to_string(),
            firmware: self.firmware.display().to_string(),
            accel: accel_name(self.accel),
            workloads: self
                .workloads
                .iter()
                .map(|w| WorkloadReport {
                    index: w.index,
                    sha256: w.sha256.clone(),
                    host_url: w.host_port.map(|p| format!("http://127.0.0.1:{p}/")),
                    guest_port: w.guest_port,
                })
                .collect(),
            metadata_requests: requests,
            answered,
            outcome: outcome.name(),
            seconds: (elapsed.as_secs_f64() * 10.0).round() / 10.0,
            serial_log,
        };
        if args.json {
            crate::output::print_json(&report)?;
        } else if answered {
            println!(
                "run-local: workload 0 answered http://127.0.0.1:{}{} after {:.1} s",
                workload0.unwrap_or(0),
                args.expect_path,
                report.seconds
            );
        }
        Ok(Some(if success {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        }))
    }

    fn qemu_command(&self, metadata_port: u16, tpm_socket: Option<&Path>) -> Result<Command> {
        let exe = std::env::current_exe()
            .context("cannot find this program's path for the metadata relay")?;
        // QEMU runs the guestfwd command with /bin/sh -c: quote the path for the shell, then
        // double the commas for QEMU's option syntax.
        let relay = format!(
            "{} run-local --relay 127.0.0.1:{metadata_port}",
            shell_quote(&exe.display().to_string())
        );
        let mut nic = format!(
            "user,model={},restrict=on,net=10.0.2.0/24,host=10.0.2.254,\
             guestfwd=tcp:{METADATA_GUEST_ADDR}:{METADATA_GUEST_PORT}-cmd:{}",
            qemu_escape(&self.nic_model),
            qemu_escape(&relay)
        );
        for (h, g) in &self.forwards {
            nic.push_str(&format!(",hostfwd=tcp:127.0.0.1:{h}-:{g}"));
        }
        let mut drive = format!(
            "if=virtio,format={},file={}",
            self.disk_format,
            qemu_escape(&self.disk.display().to_string())
        );
        if self.snapshot {
            drive.push_str(",snapshot=on");
        }
        let mut cmd = Command::new(&self.qemu);
        cmd.args(["-machine", "q35", "-accel", accel_name(self.accel)]);
        if self.accel == Accel::Kvm {
            cmd.args(["-cpu", "host"]);
        }
        cmd.arg("-m")
            .arg(self.memory.to_string())
            .arg("-smp")
            .arg(self.smp.to_string())
            .arg("-bios")
            .arg(&self.firmware)
            .arg("-drive")
            .arg(drive)
            .args([
                "-display",
                "none",
                "-monitor",
                "none",
                "-no-reboot",
                "-nic",
                &nic,
            ])
            .arg("-chardev")
            .arg(format!(
                "file,id=serial0,path={}",
                qemu_escape(&self.serial.path().display().to_string())
            ))
            .args(["-serial", "chardev:serial0"]);
        if let Some(sock) = tpm_socket {
            cmd.arg("-chardev")
                .arg(format!(
                    "socket,id=chrtpm,path={}",
                    qemu_escape(&sock.display().to_string())
                ))
                .args([
                    "-tpmdev",
                    "emulator,id=tpm0,chardev=chrtpm",
                    "-device",
                    "tpm-crb,tpmdev=tpm0",
                ]);
        }
        Ok(cmd)
    }
}

/// Whether a KVM boot failed in a way that TCG may not: QEMU reported a KVM error, or it died
/// early with a failure status (before the guest asked the metadata server for anything, within a
/// minute), which is
/// how a host whose /dev/kvm opens but cannot run guests shows it ("failed to set MSR", SIGABRT).
fn kvm_gave_up(outcome: &Outcome, elapsed: Duration, requests: &[String]) -> bool {
    match outcome {
        Outcome::KvmFailed => true,
        Outcome::QemuExited(status) => {
            !status.success() && requests.is_empty() && elapsed < Duration::from_secs(60)
        }
        _ => false,
    }
}

/// Whether QEMU reported that KVM cannot run the guest (a host where /dev/kvm opens but does
/// not work): QEMU then stops the VM without exiting, so waiting longer is pointless.
fn kvm_failed(accel: Accel, qemu_stderr: &Path) -> bool {
    accel == Accel::Kvm
        && std::fs::read(qemu_stderr).is_ok_and(|m| contains(&m, b"KVM internal error"))
}

fn accel_name(a: Accel) -> &'static str {
    match a {
        Accel::Tcg => "tcg",
        Accel::Kvm => "kvm",
        Accel::Auto => "auto",
    }
}

/// A serial console line without the firmware's terminal escapes and other control characters.
fn printable(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            // CSI: ESC [ parameters… final byte in @..~; other escapes: ESC + one character.
            if chars.next_if_eq(&'[').is_some() {
                for p in chars.by_ref() {
                    if ('@'..='~').contains(&p) {
                        break;
                    }
                }
            } else {
                chars.next();
            }
        } else if c == '\t' || !c.is_control() {
            out.push(c);
        }
    }
    out
}

/// Doubles commas, QEMU's escape inside `key=value,…` options.
fn qemu_escape(s: &str) -> String {
    s.replace(',', ",,")
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}

fn free_port() -> Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0").context("cannot find a free port on 127.0.0.1")?;
    Ok(l.local_addr()?.port())
}

/// GET http://127.0.0.1:`port``path` (HTTP/1.0, so no chunking): status and body, or `None`.
fn http_get(port: u16, path: &str) -> Option<(u16, Vec<u8>)> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.set_write_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(
        format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n")
            .as_bytes(),
    )
    .ok()?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        match s.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                if buf.len() > 4 << 20 {
                    break;
                }
            }
            // A server that keeps the connection open after its answer: use what came.
            Err(_) if !buf.is_empty() => break,
            Err(_) => return None,
        }
    }
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&buf[..end]).ok()?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, buf[end + 4..].to_vec()))
}

// ---------------------------------------------------------------------------------------------
// Child processes and signals.

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: std::os::raw::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

/// SIGINT, SIGTERM and SIGHUP stop the VM cleanly instead of killing this process (QEMU and
/// swtpm are in their own process groups, so a terminal's Ctrl-C does not reach them).
fn install_signal_handlers() {
    for sig in [sys::SIGINT, sys::SIGTERM, sys::SIGHUP] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe {
            sys::signal(
                sig,
                on_signal as extern "C" fn(std::os::raw::c_int) as usize,
            );
        }
    }
}

/// A child in a process group of its own; the whole group is stopped on drop.
struct Group {
    child: Child,
    done: bool,
}

impl Group {
    fn spawn(cmd: &mut Command) -> std::io::Result<Group> {
        cmd.process_group(0);
        // SAFETY: prctl is async-signal-safe. If this process dies without running the guard
        // (SIGKILL), the child gets SIGKILL too.
        #[cfg(target_os = "linux")]
        unsafe {
            cmd.pre_exec(|| {
                sys::prctl(sys::PR_SET_PDEATHSIG, sys::SIGKILL as std::os::raw::c_ulong);
                Ok(())
            });
        }
        Ok(Group {
            child: cmd.spawn()?,
            done: false,
        })
    }

    fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// SIGTERM to the group, SIGKILL after 5 s, then reaps the leader.
    fn stop(&mut self) {
        if self.done {
            return;
        }
        self.done = true;
        let pgid = self.child.id() as std::os::raw::c_int;
        // SAFETY: plain syscalls on the group this guard created.
        unsafe { sys::kill(-pgid, sys::SIGTERM) };
        let end = Instant::now() + Duration::from_secs(5);
        while Instant::now() < end {
            if self.child.try_wait().ok().flatten().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        // Whatever is left of the group (the leader, or helpers it started).
        // SAFETY: as above.
        unsafe { sys::kill(-pgid, sys::SIGKILL) };
        let _ = self.child.wait();
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        self.stop();
    }
}

// ---------------------------------------------------------------------------------------------
// The metadata server: HTTP/1.1 on 127.0.0.1, a thread per connection, `Connection: close`.

struct MetadataServer {
    port: u16,
    requests: Arc<Mutex<Vec<String>>>,
}

impl MetadataServer {
    fn start(routes: HashMap<String, Route>) -> Result<MetadataServer> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .context("cannot start the metadata server on 127.0.0.1")?;
        let port = listener.local_addr()?.port();
        let requests: Arc<Mutex<Vec<String>>> = Arc::default();
        let routes = Arc::new(routes);
        let log = requests.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let (routes, log) = (routes.clone(), log.clone());
                std::thread::spawn(move || serve(conn, &routes, &log));
            }
        });
        Ok(MetadataServer { port, requests })
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().map(|r| r.clone()).unwrap_or_default()
    }
}

fn serve(conn: TcpStream, routes: &HashMap<String, Route>, log: &Mutex<Vec<String>>) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(30)));
    let _ = conn.set_write_timeout(Some(Duration::from_secs(60)));
    // The guest is not trusted: its request head is read up to 64 KiB, no more.
    let mut reader = BufReader::new(match conn.try_clone() {
        Ok(c) => c.take(64 << 10),
        Err(_) => return,
    });
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    // The header fields are read and ignored.
    loop {
        let mut h = String::new();
        match reader.read_line(&mut h) {
            Ok(0) | Err(_) => break,
            Ok(_) if h.trim().is_empty() => break,
            Ok(_) => {}
        }
    }
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    // Printed and reported escaped: it is the guest's text (no terminal escapes reach the user).
    let target: String = target.escape_debug().collect();
    let target = target.as_str();
    if let Ok(mut l) = log.lock() {
        l.push(target.to_string());
    }
    let mut out = conn;
    let status = match (method, routes.get(path)) {
        ("GET" | "HEAD", Some(route)) => {
            let body = match route {
                Route::Bytes(b) => Ok(b.clone()),
                Route::File(p) => std::fs::read(p),
            };
            match body {
                Ok(body) => {
                    let head = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\n\
                         Connection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = out.write_all(head.as_bytes());
                    if method == "GET" {
                        let _ = out.write_all(&body);
                    }
                    200
                }
                Err(_) => respond(&mut out, 500, "Internal Server Error"),
            }
        }
        ("GET" | "HEAD", None) => respond(&mut out, 404, "Not Found"),
        _ => respond(&mut out, 405, "Method Not Allowed"),
    };
    eprintln!("run-local: metadata {method} {target} -> {status}");
    let _ = out.flush();
    let _ = out.shutdown(Shutdown::Write);
    // Drain so the client sees an orderly close rather than a reset.
    let mut sink = [0u8; 512];
    let _ = out.set_read_timeout(Some(Duration::from_millis(500)));
    while matches!(reader.read(&mut sink), Ok(n) if n > 0) {}
}

fn respond(out: &mut TcpStream, status: u16, reason: &str) -> u16 {
    let body = format!("{status} {reason}\n");
    let _ = out.write_all(
        format!(
            "HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    );
    status
}

// ---------------------------------------------------------------------------------------------
// The relay QEMU runs per guest connection to 10.0.2.2:8090.

/// Copies stdin → ADDR and ADDR → stdout until both directions are closed.
fn relay(addr: &str) -> Result<ExitCode> {
    let sock = match TcpStream::connect(addr) {
        Ok(s) => s,
        // Under QEMU, stderr is the guest's connection too: say nothing there.
        Err(_) if !stderr_is_separate() => return Ok(ExitCode::from(1)),
        Err(e) => return Err(e).with_context(|| format!("--relay: cannot connect to {addr}")),
    };
    let mut up = sock
        .try_clone()
        .context("--relay: cannot clone the socket")?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin().lock();
        let mut buf = [0u8; 16384];
        loop {
            match stdin.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if up.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            }
        }
        let _ = up.shutdown(Shutdown::Write);
        let _ = tx.send(());
    });
    let mut down = sock;
    {
        let mut stdout = std::io::stdout().lock();
        let mut buf = [0u8; 16384];
        loop {
            match down.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if stdout
                        .write_all(&buf[..n])
                        .and_then(|_| stdout.flush())
                        .is_err()
                    {
                        break;
                    }
                }
            }
        }
        let _ = stdout.flush();
    }
    // The far end is done: tell the near end (a socket when QEMU runs us, where stdin is the
    // same socket and closing fd 1 alone would not end the connection; a pipe otherwise).
    {
        use std::os::fd::FromRawFd as _;
        // SAFETY: fd 1 is open (stdout, flushed above) and not used after this point; the
        // File takes it over and closes it.
        let fd1 = unsafe { File::from_raw_fd(1) };
        // SAFETY: the same fd, borrowed for the shutdown only (ManuallyDrop: closed once, above).
        let sock = std::mem::ManuallyDrop::new(unsafe { TcpStream::from_raw_fd(1) });
        let _ = sock.shutdown(Shutdown::Write);
        drop(fd1);
    }
    // Let the near end finish sending; a peer that never closes does not keep us forever.
    let _ = rx.recv_timeout(Duration::from_secs(30));
    Ok(ExitCode::SUCCESS)
}

/// Whether fd 2 is another file than fd 1 (under QEMU both are the guest's connection).
fn stderr_is_separate() -> bool {
    use std::os::unix::fs::MetadataExt as _;
    let id = |fd: &str| std::fs::metadata(fd).ok().map(|m| (m.dev(), m.ino()));
    match (id("/proc/self/fd/1"), id("/proc/self/fd/2")) {
        (Some(a), Some(b)) => a != b,
        _ => true,
    }
}

/// Standard base64 with padding (RFC 4648 §4), for the manifest values.
fn base64(data: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(data)
}

/// The few libc calls std does not wrap (std links libc; no extra crate needed).
mod sys {
    use std::os::raw::c_int;

    pub const SIGHUP: c_int = 1;
    pub const SIGINT: c_int = 2;
    pub const SIGKILL: c_int = 9;
    pub const SIGTERM: c_int = 15;
    #[cfg(target_os = "linux")]
    pub const PR_SET_PDEATHSIG: c_int = 1;

    extern "C" {
        pub fn kill(pid: c_int, sig: c_int) -> c_int;
        /// glibc's signal(): BSD semantics (the handler stays, syscalls restart).
        pub fn signal(signum: c_int, handler: usize) -> usize;
        #[cfg(target_os = "linux")]
        pub fn prctl(option: c_int, ...) -> c_int;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The guest talks to this server: an oversized request head is cut off, a terminal escape
    /// in the path is logged escaped, and the server keeps answering.
    #[test]
    fn metadata_server_bounds_and_escapes_guest_requests() {
        let mut routes = HashMap::new();
        routes.insert("/manifest".to_string(), Route::Bytes(b"m".to_vec()));
        let server = MetadataServer::start(routes).unwrap();
        let ask = |request: &[u8]| {
            let mut c = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
            c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let _ = c.write_all(request);
            let _ = c.shutdown(Shutdown::Write);
            let mut answer = Vec::new();
            let _ = c.read_to_end(&mut answer);
            String::from_utf8_lossy(&answer).into_owned()
        };
        let mut huge = b"GET /".to_vec();
        huge.extend(std::iter::repeat_n(b'a', 1 << 20));
        assert!(ask(&huge).starts_with("HTTP/1.1 404"));
        assert!(ask(b"GET /\x1b[2J HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 404"));
        assert!(ask(b"GET /manifest HTTP/1.1\r\n\r\n").ends_with("\r\n\r\nm"));
        let log = server.requests();
        assert!(log[0].len() <= 64 << 10, "the head is read up to 64 KiB");
        assert_eq!(log[1], "/\\u{1b}[2J");
        assert_eq!(log[2], "/manifest");
    }

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (plain, enc) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(plain.as_bytes()), enc);
        }
        assert_eq!(base64(&[0xfb, 0xff, 0xbf]), "+/+/");
    }

    /// `--accel auto` boots again with TCG when KVM reported an error, or when QEMU died with a
    /// failure status before the guest asked for anything (a KVM that aborts at start, e.g.
    /// "failed to set MSR 0x10a" then SIGABRT); never after the guest got going, never for a
    /// clean power-off, never for a timeout.
    #[test]
    fn kvm_falls_back_to_tcg_only_on_an_early_death() {
        use std::os::unix::process::ExitStatusExt as _;
        let abort = ExitStatus::from_raw(6); // killed by SIGABRT
        let failed = ExitStatus::from_raw(1 << 8); // exit 1
        let clean = ExitStatus::from_raw(0);
        let none: Vec<String> = vec![];
        let asked = vec!["/manifest".to_string()];
        let s = Duration::from_secs;
        assert!(kvm_gave_up(&Outcome::KvmFailed, s(300), &asked));
        assert!(kvm_gave_up(&Outcome::QemuExited(abort), s(1), &none));
        assert!(kvm_gave_up(&Outcome::QemuExited(failed), s(30), &none));
        assert!(!kvm_gave_up(&Outcome::QemuExited(clean), s(1), &none));
        assert!(!kvm_gave_up(&Outcome::QemuExited(abort), s(1), &asked));
        assert!(!kvm_gave_up(&Outcome::QemuExited(abort), s(90), &none));
        assert!(!kvm_gave_up(&Outcome::Timeout, s(1), &none));
        assert!(!kvm_gave_up(&Outcome::NoMetadataRequest, s(1), &none));
    }

    #[test]
    fn qemu_and_shell_quoting() {
        assert_eq!(qemu_escape("/a,b/c"), "/a,,b/c");
        assert_eq!(shell_quote("/it's here"), r"'/it'\''s here'");
        assert_eq!(printable("\x1b[2J\x1b[01;01Hboot\r"), "boot");
        assert_eq!(parse_forward("8080:3001").unwrap(), (8080, 3001));
        assert!(parse_forward("0:3001").is_err() && parse_forward("80").is_err());
    }
}
