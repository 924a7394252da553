//! Why a prediction could not be made.

/// Why [`crate::predict`] refused a UKI or its options. Each message is one line that says
/// what is wrong and, where there is one, what would fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The UKI's boot path cannot be predicted (the PE image, the stub, its sections).
    #[error(transparent)]
    Boot(#[from] cvmkit_uefi_boot::BootError),
    /// No bank was asked for.
    #[error("no PCR bank selected; ask for at least one of sha1, sha256, sha384, sha512")]
    NoBanks,
    /// A predicted digest that does not fit its bank (a bug, reported rather than hidden).
    #[error("cannot write the measurement document: {0}")]
    Document(#[from] cvmkit_measure::DocumentError),
}
