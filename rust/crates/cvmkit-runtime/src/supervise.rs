//! Running workloads and restarting them with bounded exponential backoff.
//!
//! Each workload runs in its own thread: verify the file's SHA-256 (refuse and stop supervising
//! it on a mismatch), start it with `PORT` set, copy its stdout and stderr line by line to the
//! console (`[app-N] …`) and its log file, wait for it to exit, then sleep and start it again.
//! The sleep starts at [`Backoff::initial`], doubles after each quick exit and never exceeds
//! [`Backoff::max`]; a run that lasted at least [`Backoff::reset_after`] resets it.

use std::ffi::OsString;
use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::fetch::verify_file;
use crate::log::Logger;
use crate::manifest::Sha256Digest;

/// Restart delays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// First delay.
    pub initial: Duration,
    /// Upper bound of the delay.
    pub max: Duration,
    /// A run at least this long resets the delay to `initial`.
    pub reset_after: Duration,
    /// Stop restarting after this many restarts (`None`: forever).
    pub max_restarts: Option<u32>,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(60),
            reset_after: Duration::from_secs(60),
            max_restarts: None,
        }
    }
}

impl Backoff {
    /// The delay after `delay`: doubled, at most `max`.
    pub fn next(&self, delay: Duration) -> Duration {
        delay.saturating_mul(2).min(self.max)
    }
}

/// A program to supervise.
#[derive(Debug, Clone)]
pub struct Program {
    /// Name used in logs (`app-0`, `nginx`).
    pub name: String,
    /// The executable.
    pub path: PathBuf,
    /// Arguments.
    pub args: Vec<OsString>,
    /// Extra environment variables.
    pub env: Vec<(String, String)>,
    /// Working directory (`None`: inherited).
    pub cwd: Option<PathBuf>,
    /// Digest the executable must have before each start (`None`: not checked).
    pub sha256: Option<Sha256Digest>,
    /// File the program's output is appended to.
    pub log_file: Option<PathBuf>,
}

/// A supervised program; dropping it does not stop it (call [`Supervised::stop`]).
#[derive(Debug)]
pub struct Supervised {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Supervised {
    /// Kills the program, stops restarting it and waits for the supervisor thread.
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }

    /// Waits until supervision ends by itself (refusal or restart limit).
    pub fn join(mut self) {
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }

    /// Whether supervision has ended.
    pub fn is_finished(&self) -> bool {
        self.thread.as_ref().is_none_or(|t| t.is_finished())
    }
}

const POLL: Duration = Duration::from_millis(50);

/// Starts supervising `program`; `log` receives the supervisor's own lines.
pub fn supervise(program: Program, backoff: Backoff, log: Logger) -> std::io::Result<Supervised> {
    let stop = Arc::new(AtomicBool::new(false));
    let out = Logger::new(&format!("[{}] ", program.name), program.log_file.as_deref(), true)?;
    let flag = stop.clone();
    let thread = std::thread::Builder::new()
        .name(format!("supervise-{}", program.name))
        .spawn(move || run_loop(&program, backoff, &log, &out, &flag))?;
    Ok(Supervised { stop, thread: Some(thread) })
}

fn sleep_unless_stopped(d: Duration, stop: &AtomicBool) -> bool {
    let end = Instant::now() + d;
    while Instant::now() < end {
        if stop.load(Ordering::SeqCst) {
            return false;
        }
        std::thread::sleep(POLL.min(end.saturating_duration_since(Instant::now())));
    }
    !stop.load(Ordering::SeqCst)
}

fn pump(r: impl Read + Send + 'static, out: Logger) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut reader = BufReader::new(r);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match reader.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    while buf.last().is_some_and(|&b| b == b'\n' || b == b'\r') {
                        buf.pop();
                    }
                    out.line(&String::from_utf8_lossy(&buf));
                }
            }
        }
    })
}

fn run_loop(p: &Program, backoff: Backoff, log: &Logger, out: &Logger, stop: &AtomicBool) {
    let name = &p.name;
    let mut delay = backoff.initial;
    let mut restarts = 0u32;
    loop {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        if let Some(h) = &p.sha256 {
            if let Err(e) = verify_file(&p.path, h) {
                log.info(format!("{name}: {e}; not starting it again"));
                return;
            }
        }
        let mut cmd = Command::new(&p.path);
        cmd.args(&p.args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        for (k, v) in &p.env {
            cmd.env(k, v);
        }
        if let Some(cwd) = &p.cwd {
            cmd.current_dir(cwd);
        }
        let started = Instant::now();
        let status = match cmd.spawn() {
            Ok(mut child) => {
                log.info(format!("{name}: started {} (pid {})", p.path.display(), child.id()));
                let pumps =
                    [pump(child.stdout.take().unwrap(), out.clone()), pump(child.stderr.take().unwrap(), out.clone())];
                let status = loop {
                    match child.try_wait() {
                        Ok(Some(s)) => break Some(s),
                        Ok(None) if stop.load(Ordering::SeqCst) => {
                            let _ = child.kill();
                            let _ = child.wait();
                            log.info(format!("{name}: stopped"));
                            return;
                        }
                        Ok(None) => std::thread::sleep(POLL),
                        Err(e) => {
                            log.info(format!("{name}: cannot wait for it: {e}"));
                            break None;
                        }
                    }
                };
                // The output threads end when the pipes close; a grandchild may still hold them,
                // so they are not waited for.
                drop(pumps);
                status.map(|s| s.to_string()).unwrap_or_else(|| "unknown status".into())
            }
            Err(e) => format!("failed to start: {e}"),
        };
        let ran = started.elapsed();
        if ran >= backoff.reset_after {
            delay = backoff.initial;
        }
        if backoff.max_restarts.is_some_and(|m| restarts >= m) {
            log.info(format!("{name}: {status} after {:.1}s; restart limit {restarts} reached", ran.as_secs_f64()));
            return;
        }
        log.info(format!("{name}: {status} after {:.1}s; restarting in {}ms", ran.as_secs_f64(), delay.as_millis()));
        if !sleep_unless_stopped(delay, stop) {
            return;
        }
        restarts += 1;
        delay = backoff.next(delay);
    }
}
