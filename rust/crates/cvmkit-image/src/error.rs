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

/// A firmware image's bytes: mapped from the file when it is a regular file of at least 1 MiB
/// (no copy into fresh, zeroed pages: ~3 ms of a 4 MiB firmware's ~14 ms launch digest), else
/// read. As ripgrep maps files it searches: the file must not be truncated while cvmkit runs
/// (the pages would be gone); predictions read each byte of it at most a few times, in
/// milliseconds.
pub fn read_firmware(path: &std::path::Path) -> Result<FirmwareBytes> {
    let ctx = || format!("cannot read firmware {}", path.display());
    let file = std::fs::File::open(path).with_context(ctx)?;
    let meta = file.metadata().with_context(ctx)?;
    if meta.is_file() && meta.len() >= 1 << 20 {
        // SAFETY: the mapping is read-only and private; see the doc comment on truncation.
        if let Ok(map) = unsafe { memmap2::MmapOptions::new().populate().map(&file) } {
            return Ok(FirmwareBytes::Mapped(map));
        }
    }
    read_input(path, "firmware").map(FirmwareBytes::Read)
}

/// The bytes of [`read_firmware`].
pub enum FirmwareBytes {
    /// The file, mapped.
    Mapped(memmap2::Mmap),
    /// The file, read.
    Read(Vec<u8>),
}

impl std::ops::Deref for FirmwareBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            FirmwareBytes::Mapped(m) => m,
            FirmwareBytes::Read(v) => v,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A firmware of 1 MiB or more is mapped, a smaller one read; the bytes are the file's either
    /// way, and a missing file is the usual one-line error.
    #[test]
    fn firmware_mapped_or_read() {
        let dir = tempfile::tempdir().unwrap();
        for (name, len) in [("small.fd", 4096usize), ("large.fd", 2 << 20)] {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
            let path = dir.path().join(name);
            std::fs::write(&path, &bytes).unwrap();
            let input = read_firmware(&path).unwrap();
            assert_eq!(matches!(input, FirmwareBytes::Mapped(_)), len >= 1 << 20, "{name}");
            assert_eq!(&input[..], &bytes[..], "{name}");
        }
        let missing = dir.path().join("missing.fd");
        let err = read_firmware(&missing).err().unwrap().to_string();
        assert_eq!(err, format!("cannot read firmware {}", missing.display()));
    }
}
