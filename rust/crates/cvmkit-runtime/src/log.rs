//! Console + file logging.
//!
//! Every line goes to stdout (the serial console in an image) and is appended to a file. The
//! runtime's own lines are prefixed `cvmkit-runtime: `; a workload's output lines are prefixed
//! `[app-N] ` on the console and written unprefixed to that workload's own file.
//!
//! The runtime's own messages quote metadata, which the host controls: [`Logger::info`] escapes
//! every control character ([`escape`]), so a value holding a newline cannot forge a line such
//! as `app-0: fetched … and verified sha256 …` on the console or in `runtime.log`. A workload's
//! output ([`Logger::line`]) is the verified app's and is written as it is.

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

    /// A runtime message: [`Logger::line`] of the message with control characters escaped.
    pub fn info(&self, msg: impl AsRef<str>) {
        self.line(&escape(msg.as_ref()))
    }
}

/// `s` with every control character (newline, carriage return, escape, …) written as a Rust
/// escape (`\n`, `\r`, `\u{1b}`), and a backslash as `\\`, so one message is one line and
/// cannot carry terminal sequences; printable text is unchanged.
///
/// ```
/// assert_eq!(cvmkit_runtime::log::escape("a\nb\\c é"), "a\\nb\\\\c é");
/// ```
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        // Line and paragraph separators and bidi overrides act like control characters on
        // some consoles and viewers.
        let special = matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
        if c.is_control() || c == '\\' || special {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}
