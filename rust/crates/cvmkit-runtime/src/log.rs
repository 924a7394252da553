//! Console + file logging.
//!
//! Every line goes to stdout (the serial console in an image) and is appended to a file. The
//! runtime's own lines are prefixed `cvmkit-runtime: `; a workload's output lines are prefixed
//! `[app-N] ` on the console and written unprefixed to that workload's own file.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// A cloneable line logger writing to stdout and, if opened, a file.
#[derive(Clone)]
pub struct Logger {
    inner: Arc<Mutex<Inner>>,
    prefix: String,
}

struct Inner {
    file: Option<File>,
    console: bool,
}

impl std::fmt::Debug for Logger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Logger").field("prefix", &self.prefix).finish()
    }
}

impl Logger {
    /// A logger with `prefix` writing to stdout (if `console`) and appending to `file` (if any).
    pub fn new(prefix: &str, file: Option<&Path>, console: bool) -> std::io::Result<Self> {
        let file = match file {
            Some(p) => {
                if let Some(dir) = p.parent() {
                    std::fs::create_dir_all(dir)?;
                }
                Some(OpenOptions::new().create(true).append(true).open(p)?)
            }
            None => None,
        };
        Ok(Self { inner: Arc::new(Mutex::new(Inner { file, console })), prefix: prefix.to_string() })
    }

    /// A logger that writes nowhere.
    pub fn discard() -> Self {
        Self { inner: Arc::new(Mutex::new(Inner { file: None, console: false })), prefix: String::new() }
    }

    /// Writes one line: `prefix + line` to the console, `line` (with the runtime's prefix if this
    /// is the runtime's own log) to the file.
    pub fn line(&self, line: &str) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if inner.console {
            let stdout = std::io::stdout();
            let mut out = stdout.lock();
            let _ = writeln!(out, "{}{}", self.prefix, line);
            let _ = out.flush();
        }
        if let Some(f) = inner.file.as_mut() {
            let _ = writeln!(f, "{}", line);
        }
    }

    /// Same as [`Logger::line`] with a formatted message.
    pub fn info(&self, msg: impl AsRef<str>) {
        self.line(msg.as_ref())
    }
}
