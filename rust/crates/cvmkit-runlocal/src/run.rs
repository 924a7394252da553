//! Running: swtpm, the metadata server and QEMU started, watched until the workload answers, the
//! time is up, QEMU exits or a signal arrives; then everything stopped and the outcome reported.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use cvmkit_manifest::{BASE_PORT, QEMU_METADATA_ADDR, QEMU_METADATA_PORT};
use serde::Serialize;

use crate::metadata::MetadataServer;
use crate::plan::SerialLog;
use crate::process::{install_signal_handlers, stop_requested, Group};
use crate::{Accel, Event, Observer, Options, Plan};

/// Serial console lines shown when the workload did not answer.
const TAIL_LINES: usize = 40;

/// One workload in the report.
#[derive(Clone, Debug, Serialize)]
pub struct WorkloadReport {
    /// Its index N (manifest order).
    pub index: usize,
    /// The app's SHA-256 the manifest names, when it names one.
    pub sha256: Option<String>,
    /// Where it is reachable on the host.
    pub host_url: Option<String>,
    /// Its port in the guest (3001 + N).
    pub guest_port: u16,
}

/// What `--json` prints.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// The image as given.
    pub image: String,
    /// The firmware used.
    pub firmware: String,
    /// The accelerator used.
    pub accel: &'static str,
    /// The workloads.
    pub workloads: Vec<WorkloadReport>,
    /// Paths the guest asked the metadata server for, in order.
    pub metadata_requests: Vec<String>,
    /// Whether workload 0 answered as expected.
    pub answered: bool,
    /// How it ended ([`Outcome::name`]).
    pub outcome: &'static str,
    /// From QEMU's start to the answer (or the end), to a tenth of a second.
    pub seconds: f64,
    /// The serial console log; null when it was a temporary file and was removed.
    pub serial_log: Option<String>,
}

/// How a run ended.
#[derive(Debug)]
pub enum Outcome {
    /// Workload 0 answered 200 with the expected text.
    Answered,
    /// It did not within the timeout.
    Timeout,
    /// QEMU exited on its own.
    QemuExited(ExitStatus),
    /// A signal asked this process to stop.
    Interrupted,
    /// KVM failed inside QEMU, which then sits paused instead of exiting.
    KvmFailed,
    /// The guest did not ask the metadata server for anything within --metadata-timeout.
    NoMetadataRequest,
}

impl Outcome {
    /// The name in the report.
    pub fn name(&self) -> &'static str {
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

/// QEMU has started: what to tell the user.
#[derive(Debug)]
pub struct Started {
    /// The accelerator.
    pub accel: &'static str,
    /// Where the serial console goes.
    pub serial: PathBuf,
    /// (index, host port, guest port) of each workload.
    pub workloads: Vec<(usize, u16, u16)>,
    /// (host port, guest port) of the forwards to no workload.
    pub other_forwards: Vec<(u16, u16)>,
}

/// Why a run failed, for the user.
#[derive(Debug)]
pub struct Failure {
    /// One line: what went wrong, what QEMU said, a hint.
    pub why: String,
    /// The last serial console lines, control characters removed.
    pub serial_tail: Vec<String>,
    /// The (kept) serial log.
    pub serial_log: PathBuf,
}

/// The end of a run.
#[derive(Debug)]
pub struct Finished {
    /// The report.
    pub report: Report,
    /// Exit 0 (else 1): answered, or without `expect` stopped by a signal or a clean power-off.
    pub success: bool,
    /// Why not, when not.
    pub failure: Option<Failure>,
    /// The host port of workload 0, if any.
    pub workload0: Option<u16>,
}

impl Plan {
    /// Boots and reports; `None` (only with `kvm_fallback`) when KVM failed and nothing was
    /// reported, so the caller boots again with TCG.
    pub(crate) fn launch(
        mut self,
        args: &Options,
        observer: &Observer,
        kvm_fallback: bool,
    ) -> Result<Option<Finished>> {
        install_signal_handlers().context("cannot install signal handlers")?;
        // Free host ports for workloads nobody forwarded (bound and released: QEMU binds them).
        for w in &mut self.workloads {
            if w.host_port.is_none() {
                let port = free_port()?;
                w.host_port = Some(port);
                self.forwards.push((port, w.guest_port));
            }
        }
        let metadata = MetadataServer::start(std::mem::take(&mut self.routes), observer.clone())?;

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
        let mut cmd = self.qemu_command(&args.relay, metadata.port(), tpm_socket.as_deref());
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
        // With `expect`: workload 0's port and the text to wait for.
        let probe = match (&args.expect, workload0) {
            (Some(text), Some(port)) => Some((port, text)),
            (Some(_), None) => bail!("--expect needs workload 0"),
            (None, _) => None,
        };
        observer(Event::Started(&Started {
            accel: self.accel.name(),
            serial: self.serial.path().to_path_buf(),
            workloads: self
                .workloads
                .iter()
                .map(|w| (w.index, w.host_port.unwrap_or(0), w.guest_port))
                .collect(),
            other_forwards: self
                .forwards
                .iter()
                .filter(|(_, g)| !self.workloads.iter().any(|w| w.guest_port == *g))
                .copied()
                .collect(),
        }));
        let timeout = Duration::from_secs(args.timeout);
        let outcome = loop {
            if stop_requested() {
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
            std::thread::sleep(Duration::from_millis(if probe.is_some() {
                500
            } else {
                200
            }));
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
        let why = (!success).then(|| self.why(args, &outcome, elapsed, workload0, &qemu_stderr));
        // A temporary serial log is kept only when something went wrong.
        let serial_log = match self.serial {
            SerialLog::User(p) => Some(p),
            SerialLog::Temp(t) if !success => Some(t.keep().context("cannot keep the serial log")?),
            SerialLog::Temp(_) => None,
        };
        let failure = match (why, &serial_log) {
            (Some(why), Some(log)) => Some(Failure {
                why,
                serial_tail: serial_tail(log),
                serial_log: log.clone(),
            }),
            _ => None,
        };

        let answered = matches!(outcome, Outcome::Answered);
        let report = Report {
            image: self.image.display().to_string(),
            firmware: self.firmware.display().to_string(),
            accel: self.accel.name(),
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
            serial_log: serial_log.map(|p| p.display().to_string()),
        };
        Ok(Some(Finished {
            report,
            success,
            failure,
            workload0,
        }))
    }

    /// One line on why the run failed: the outcome, what QEMU said, a hint about KVM.
    fn why(
        &self,
        args: &Options,
        outcome: &Outcome,
        elapsed: Duration,
        workload0: Option<u16>,
        qemu_stderr: &Path,
    ) -> String {
        let said = std::fs::read_to_string(qemu_stderr).unwrap_or_default();
        // (Its note that this command stopped it is no news.)
        let said: Vec<&str> = said
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.contains("terminating on signal"))
            .take(5)
            .collect();
        let mut why = match outcome {
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
                "the guest did not ask the metadata server ({QEMU_METADATA_ADDR}:{QEMU_METADATA_PORT}) for its manifest within {} s: \
                 does the image have a driver for --nic-model {} (Debian's kernel builds NIC drivers as modules), \
                 and does it start cvmkit-runtime? (--metadata-timeout 0 waits)",
                args.metadata_timeout, self.nic_model
            ),
            Outcome::Answered => "the workload answered".to_string(),
        };
        if !said.is_empty() {
            why.push_str(&format!("; QEMU said: {}", said.join(" | ")));
        }
        if self.accel == Accel::Kvm && !matches!(outcome, Outcome::Interrupted) {
            why.push_str(" (KVM was used; if it does not work on this host, try --accel tcg)");
        }
        why
    }

    fn qemu_command(
        &self,
        relay: &(PathBuf, Vec<String>),
        metadata_port: u16,
        tpm_socket: Option<&Path>,
    ) -> Command {
        // QEMU runs the guestfwd command with /bin/sh -c: quote the words for the shell, then
        // double the commas for QEMU's option syntax.
        let mut words = vec![shell_quote(&relay.0.display().to_string())];
        words.extend(relay.1.iter().map(|a| shell_quote(a)));
        let relay_to = |port: u16| format!("{} 127.0.0.1:{port}", words.join(" "));
        let mut nic = format!(
            "user,model={},restrict=on,net=10.0.2.0/24,host=10.0.2.254,\
             guestfwd=tcp:{QEMU_METADATA_ADDR}:{QEMU_METADATA_PORT}-cmd:{}",
            qemu_escape(&self.nic_model),
            qemu_escape(&relay_to(metadata_port))
        );
        for (g, h) in &self.guest_forwards {
            nic.push_str(&format!(
                ",guestfwd=tcp:{QEMU_METADATA_ADDR}:{g}-cmd:{}",
                qemu_escape(&relay_to(*h))
            ));
        }
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
        cmd.args(["-machine", "q35", "-accel", self.accel.name()]);
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
        cmd
    }
}

/// The last [`TAIL_LINES`] lines of the serial log, printable.
fn serial_tail(log: &Path) -> Vec<String> {
    let log = std::fs::read(log).unwrap_or_default();
    let log = String::from_utf8_lossy(&log);
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(TAIL_LINES)..]
        .iter()
        .map(|l| printable(l))
        .collect()
}

/// Whether a KVM boot failed in a way that TCG may not: QEMU reported a KVM error, or it died
/// early with a failure status (before the guest asked the metadata server for anything, within
/// a minute), which is how a host whose /dev/kvm opens but cannot run guests shows it ("failed
/// to set MSR", SIGABRT).
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
/// The workload is the user's program, whatever server it has: this client only needs a status
/// and a body, and reads at most 4 MiB.
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

#[cfg(test)]
mod tests {
    use super::*;

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
    }
}
