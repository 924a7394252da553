//! The one error type of disk assembly.

use std::path::PathBuf;

/// Why a disk could not be planned or written. Every message is one line naming the input at
/// fault and what would fix it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// [`crate::DiskSpec::seed`] is empty.
    #[error("the seed is empty: give any non-empty text (e.g. the image name); the same seed gives the same GUIDs and serial numbers")]
    EmptySeed,
    /// An input file (UKI or root image) cannot be read.
    #[error("cannot read {what} {path}: {source}")]
    Unreadable {
        /// "UKI" or "root image".
        what: &'static str,
        /// The path given.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// An input is a directory or device, not a regular file.
    #[error("{what} {path} is not a regular file; give the path of an image file")]
    NotAFile {
        /// "UKI" or "root image".
        what: &'static str,
        /// The path given.
        path: PathBuf,
    },
    /// An input file is empty.
    #[error("{what} {path} is empty")]
    EmptyInput {
        /// "UKI" or "root image".
        what: &'static str,
        /// The path given.
        path: PathBuf,
    },
    /// The UKI does not fit in the ESP size given.
    #[error("UKI {path} of {size} bytes does not fit in an ESP of {esp_size} bytes; give an ESP of at least {needed} bytes, or leave the ESP size unset")]
    UkiDoesNotFit {
        /// The UKI.
        path: PathBuf,
        /// Its size.
        size: u64,
        /// The ESP size asked for.
        esp_size: u64,
        /// The smallest ESP (in whole MiB) that holds it.
        needed: u64,
    },
    /// The UKI is 4 GiB or larger: no FAT32 file can hold it.
    #[error(
        "UKI {path} of {size} bytes is larger than the 4294967295 bytes a FAT32 file can hold"
    )]
    UkiTooLargeForFat {
        /// The UKI.
        path: PathBuf,
        /// Its size.
        size: u64,
    },
    /// The ESP size given is below what FAT32 needs.
    #[error("an ESP of {size} bytes is too small for FAT32; give at least {min} bytes")]
    EspTooSmall {
        /// The ESP size asked for.
        size: u64,
        /// The smallest FAT32 ESP (in whole MiB).
        min: u64,
    },
    /// A size of zero where a partition or disk was asked for.
    #[error("{what} is 0 bytes; give at least 1 MiB, or leave it unset")]
    ZeroSize {
        /// Which size ("data partition size", "ESP size", "disk size").
        what: &'static str,
    },
    /// A size beyond what cvmkit (or the output format) supports.
    #[error("{what} of {size} bytes is larger than the {max} bytes {limit}")]
    TooLarge {
        /// Which size.
        what: &'static str,
        /// The size.
        size: u64,
        /// The limit.
        max: u64,
        /// Whose limit it is.
        limit: &'static str,
    },
    /// The disk size given cannot hold the partitions.
    #[error("a disk of {size} bytes cannot hold the partitions, which need {needed} bytes; give at least {needed}, or leave the disk size unset")]
    DiskTooSmall {
        /// Disk size asked for.
        size: u64,
        /// Size needed.
        needed: u64,
    },
    /// The output already holds data, which sparse writing would leave in place.
    #[error("the output already holds {len} bytes; write to a new or truncated file (the disk is written sparsely and would keep old bytes)")]
    OutputNotEmpty {
        /// Its length.
        len: u64,
    },
    /// An input changed size while the disk was being written.
    #[error("{path} changed while the disk was written: it was {expected} bytes when planned, then {actual}")]
    InputChanged {
        /// The input.
        path: PathBuf,
        /// Size when planned.
        expected: u64,
        /// Bytes read (at least).
        actual: u64,
    },
    /// The partition table could not be laid out.
    #[error("partition table: {0}")]
    Gpt(#[from] cvmkit_gpt::WriteError),
    /// The ESP could not be laid out.
    #[error("ESP: {0}")]
    Fat(#[from] cvmkit_fat::WriteError),
    /// Writing the output failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The I/O error.
        source: std::io::Error,
    },
}

impl Error {
    pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
        let what = what.into();
        move |source| Error::Io { what, source }
    }
}
