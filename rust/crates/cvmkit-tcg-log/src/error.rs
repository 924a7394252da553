//! Parse errors.

use crate::HashAlg;

/// Why a log could not be parsed: the record that failed, the byte offset of the field at fault,
/// and what was wrong.
///
/// Displayed on one line, e.g. `event 17 at offset 0x1a2c: digest count 9 exceeds the 3
/// algorithms declared in the Spec ID event`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("event {event} at offset {offset:#x}: {kind}")]
#[non_exhaustive]
pub struct Error {
    /// Index of the record being read (0 = first record, the Spec ID event in crypto-agile logs).
    pub event: usize,
    /// Byte offset of the field that could not be read or was invalid.
    pub offset: usize,
    /// What went wrong.
    pub kind: ErrorKind,
}

impl Error {
    pub(crate) fn new(event: usize, offset: usize, kind: ErrorKind) -> Error {
        Error {
            event,
            offset,
            kind,
        }
    }

    /// Index of the record being read.
    pub fn event(&self) -> usize {
        self.event
    }

    /// Byte offset of the field at fault.
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// What went wrong.
    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }
}

/// What was wrong with the record named by an [`Error`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The input has no bytes, or only padding.
    #[error("the log is empty (no event before the end of the data or the padding)")]
    Empty,
    /// A fixed-size field runs past the end of the data.
    #[error("{field} needs {needed} bytes but only {available} are left; the log is truncated")]
    Truncated {
        /// The structure or field being read, named as in the TCG specification.
        field: &'static str,
        /// Bytes the field needs.
        needed: usize,
        /// Bytes left in the log.
        available: usize,
    },
    /// `EventSize` claims more bytes than the log has left.
    #[error("EventSize {size} exceeds the {available} bytes left in the log")]
    EventSizeTooLarge {
        /// The claimed size.
        size: u32,
        /// Bytes left in the log.
        available: usize,
    },
    /// `TPML_DIGEST_VALUES.count` is larger than the number of algorithms the Spec ID event declares.
    #[error(
        "digest count {count} exceeds the {declared} algorithms declared in the Spec ID event"
    )]
    DigestCountTooLarge {
        /// The claimed count.
        count: u32,
        /// Algorithms declared in the Spec ID event.
        declared: usize,
    },
    /// A digest's algorithm is missing from the Spec ID event, so its size (and the rest of the
    /// log) cannot be known.
    #[error("digest algorithm {alg} is not declared in the Spec ID event, so its size is unknown")]
    UndeclaredAlgorithm {
        /// The algorithm.
        alg: HashAlg,
    },
    /// Two digests of the same algorithm in one event: the replay would be ambiguous.
    #[error("two {alg} digests in one TPML_DIGEST_VALUES")]
    DuplicateDigest {
        /// The algorithm.
        alg: HashAlg,
    },
    /// The data does not start with the "Spec ID Event03" signature.
    #[error("the event is not a Spec ID Event03")]
    NotSpecIdEvent,
    /// `TCG_EfiSpecIDEvent.numberOfAlgorithms` is zero.
    #[error("the Spec ID event declares no digest algorithms")]
    NoAlgorithms,
    /// `TCG_EfiSpecIDEvent.numberOfAlgorithms` does not fit in the event.
    #[error(
        "the Spec ID event declares {count} algorithms, which need {needed} bytes, but only {available} are left in it"
    )]
    TooManyAlgorithms {
        /// The claimed count.
        count: u32,
        /// Bytes the list needs.
        needed: u64,
        /// Bytes left in the Spec ID event.
        available: usize,
    },
    /// The Spec ID event lists an algorithm twice.
    #[error("the Spec ID event declares {alg} twice")]
    DuplicateAlgorithm {
        /// The algorithm.
        alg: HashAlg,
    },
    /// The Spec ID event gives a known algorithm the wrong digest size.
    #[error("the Spec ID event declares {alg} with {declared}-byte digests, but {alg} digests are {expected} bytes")]
    WrongDigestSize {
        /// The algorithm.
        alg: HashAlg,
        /// The declared size.
        declared: u16,
        /// The size the algorithm has.
        expected: usize,
    },
    /// `vendorInfoSize` overruns the Spec ID event.
    #[error("the Spec ID event's vendorInfoSize {size} exceeds the {available} bytes left in it")]
    VendorInfoTooLarge {
        /// The claimed size.
        size: u8,
        /// Bytes left in the Spec ID event.
        available: usize,
    },
}
