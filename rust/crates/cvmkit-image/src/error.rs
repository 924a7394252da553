//! One error type: a message, and the error that caused it (printed after it by the CLI).

use std::fmt;

/// An error: what failed (naming the file or the spec key), and why.
#[derive(Debug)]
pub struct Error {
    msg: String,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An error with a message and no cause.
    pub fn msg(msg: impl Into<String>) -> Error {
        Error {
            msg: msg.into(),
            source: None,
        }
    }

    /// `msg`, caused by `source`.
    pub fn with_source(
        msg: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Error {
        Error {
            msg: msg.into(),
            source: Some(Box::new(source)),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.msg)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// `anyhow`-style context on results and options.
pub trait Context<T> {
    /// The error, with `msg` before it.
    fn context(self, msg: impl Into<String>) -> Result<T>;
    /// As [`Context::context`], the message computed only on error.
    fn with_context<S: Into<String>>(self, msg: impl FnOnce() -> S) -> Result<T>;
}

impl<T, E: std::error::Error + Send + Sync + 'static> Context<T> for std::result::Result<T, E> {
    fn context(self, msg: impl Into<String>) -> Result<T> {
        self.map_err(|e| Error::with_source(msg, e))
    }
    fn with_context<S: Into<String>>(self, msg: impl FnOnce() -> S) -> Result<T> {
        self.map_err(|e| Error::with_source(msg(), e))
    }
}

impl<T> Context<T> for Option<T> {
    fn context(self, msg: impl Into<String>) -> Result<T> {
        self.ok_or_else(|| Error::msg(msg))
    }
    fn with_context<S: Into<String>>(self, msg: impl FnOnce() -> S) -> Result<T> {
        self.ok_or_else(|| Error::msg(msg()))
    }
}

/// Returns early with an [`Error`] made by `format!`.
macro_rules! bail {
    ($($arg:tt)*) => {
        return Err($crate::error::Error::msg(format!($($arg)*)))
    };
}
pub(crate) use bail;

/// Reads a whole input file, naming it in the error.
pub fn read_input(path: &std::path::Path, what: &str) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {what} {}", path.display()))
}
