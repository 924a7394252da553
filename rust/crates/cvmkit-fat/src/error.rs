//! Errors of the writer ([`WriteError`]) and the reader ([`ReadError`]).

/// Why a FAT32 volume cannot be laid out or written as asked. One line each, naming the value
/// at fault and what would fix it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WriteError {
    /// A path component is not a valid FAT long name.
    #[error("cannot put {path:?} on a FAT volume: {reason}")]
    BadName {
        /// The path given.
        path: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The path names something that already exists, or has a file as a parent.
    #[error("cannot add {path:?}: {reason}")]
    Conflict {
        /// The path given.
        path: String,
        /// What it conflicts with.
        reason: &'static str,
    },
    /// A file of 4 GiB or more.
    #[error("{path:?} is {size} bytes; a FAT32 file holds at most 4294967295")]
    FileTooLarge {
        /// The path given.
        path: String,
        /// Its size.
        size: u64,
    },
    /// A directory with more than 65,536 entries (including long-name entries).
    #[error("directory {path:?} needs {entries} entries; FAT directories hold at most 65536")]
    DirectoryTooLarge {
        /// The directory.
        path: String,
        /// Entries it needs.
        entries: u64,
    },
    /// The volume label is not 1–11 upper-case short-name characters.
    #[error("volume label {label:?} is invalid: use 1 to 11 characters among A-Z 0-9 space and $%'-_@~`!(){{}}^#&")]
    BadLabel {
        /// The label given.
        label: String,
    },
    /// The cluster size asked for is not a power of two from 512 to 32768.
    #[error("cluster size {size} is invalid: use a power of two from 512 to 32768")]
    BadClusterSize {
        /// The size given.
        size: u32,
    },
    /// The volume is too small to be FAT32 (at least 65,525 clusters) or not whole sectors.
    #[error("a FAT32 volume of {size} bytes with {cluster_size}-byte clusters has {clusters} clusters, fewer than the 65525 FAT32 needs; make it at least {min} bytes")]
    TooSmall {
        /// Volume size.
        size: u64,
        /// Cluster size.
        cluster_size: u32,
        /// Clusters it would have.
        clusters: u64,
        /// Smallest size that works.
        min: u64,
    },
    /// The volume is larger than FAT32 can address with 512-byte sectors.
    #[error(
        "a FAT32 volume of {size} bytes is too large: the limit with 512-byte sectors is 2 TiB"
    )]
    TooLarge {
        /// Volume size.
        size: u64,
    },
    /// The files and directories need more clusters than the volume has.
    #[error("the files need {needed} bytes ({needed_clusters} clusters of {cluster_size}) but a FAT32 volume of {size} bytes has {free} bytes free; make the volume larger")]
    NoSpace {
        /// Volume size.
        size: u64,
        /// Bytes of clusters needed.
        needed: u64,
        /// Clusters needed.
        needed_clusters: u64,
        /// Cluster size.
        cluster_size: u32,
        /// Bytes of clusters available.
        free: u64,
    },
    /// A file's reader gave more or fewer bytes than the size it was added with.
    #[error(
        "{path:?} was added as {expected} bytes but its reader gave {actual}; did the file change?"
    )]
    SizeChanged {
        /// The path in the volume.
        path: String,
        /// Size given to [`crate::FatBuilder::add_file`].
        expected: u64,
        /// Bytes read (at least).
        actual: u64,
    },
    /// Writing the volume, or reading a file for it, failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// Why bytes are not a FAT volume this reader can walk, or a walk failed. One line each,
/// naming the structure, cluster or path at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// A structure lies (partly) past the end of the volume.
    #[error("truncated {what} at byte 0x{offset:x}: the volume is only 0x{len:x} bytes; is the image cut short?")]
    Truncated {
        /// The structure being read.
        what: &'static str,
        /// Byte offset.
        offset: u64,
        /// Volume length.
        len: u64,
    },
    /// The boot sector does not end in `55 AA`.
    #[error("no FAT boot sector: signature at byte 510 is {found:02x?}, expected [55, aa]")]
    NoBootSignature {
        /// The two bytes found.
        found: [u8; 2],
    },
    /// A BPB field has a value no FAT volume can have.
    #[error("not a FAT volume: BPB {field} is {value}, expected {expected}")]
    BadBpb {
        /// The field (spec name).
        field: &'static str,
        /// Its value.
        value: u64,
        /// What is valid.
        expected: &'static str,
    },
    /// A cluster number outside 2..=max.
    #[error("cluster chain from {start} reaches cluster {cluster}, outside 2..={max}")]
    ClusterOutOfRange {
        /// First cluster of the chain.
        start: u32,
        /// The bad cluster number.
        cluster: u32,
        /// Highest valid cluster.
        max: u32,
    },
    /// A chain runs into a free or bad cluster.
    #[error("cluster chain from {start} runs into {kind} cluster {cluster}")]
    BrokenChain {
        /// First cluster of the chain.
        start: u32,
        /// The cluster whose FAT entry is free or bad.
        cluster: u32,
        /// "free", "reserved" or "bad".
        kind: &'static str,
    },
    /// A chain longer than the volume has clusters: it loops.
    #[error("cluster chain from {start} loops")]
    ChainLoop {
        /// First cluster of the chain.
        start: u32,
    },
    /// A file's chain ends before its size.
    #[error("{path:?} is {size} bytes but its cluster chain holds only {available}")]
    ChainTooShort {
        /// The file.
        path: String,
        /// `DIR_FileSize`.
        size: u64,
        /// Bytes its clusters hold.
        available: u64,
    },
    /// The path does not exist.
    #[error("{path:?} not found on the FAT volume")]
    NotFound {
        /// The path looked up.
        path: String,
    },
    /// A directory was expected.
    #[error("{path:?} is not a directory")]
    NotADirectory {
        /// The path.
        path: String,
    },
    /// A directory contains itself, directly or not.
    #[error("directory {path:?} loops back to one of its parents (cluster {cluster})")]
    DirectoryLoop {
        /// The directory.
        path: String,
        /// Its first cluster.
        cluster: u32,
    },
    /// Directories nested deeper than the reader follows.
    #[error("{path:?} is nested more than {max} directories deep")]
    TooDeep {
        /// The path where the walk stopped.
        path: String,
        /// The limit.
        max: usize,
    },
}
