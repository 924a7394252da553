//! Why the boot path of a UKI cannot be predicted. Messages are one line and say what to do.

/// Why a UKI's boot cannot be predicted: the stub or the firmware would refuse it, or what it
/// measures depends on something not known offline.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BootError {
    /// The UKI is not a PE image.
    #[error("the UKI is not a valid PE image: {0}")]
    Pe(#[source] cvmkit_pe::Error),
    /// No `.sdmagic` section to tell the stub version.
    #[error("the UKI has no .sdmagic section to tell the systemd-stub version; pass the version explicitly (cvmkit measure: --stub-version N)")]
    NoSdMagic,
    /// `.sdmagic` is not `#### LoaderInfo: … ####`.
    #[error("the UKI's .sdmagic section is not '#### LoaderInfo: … ####' but \"{text}\"; pass the systemd-stub version explicitly (cvmkit measure: --stub-version N)")]
    BadSdMagic {
        /// The section text, escaped.
        text: String,
    },
    /// `.sdmagic` names another loader, or a version without a number.
    #[error("the UKI's stub is \"{loader_info}\", not systemd-stub <version>; pass the systemd-stub version explicitly (cvmkit measure: --stub-version N) if it measures like one")]
    NotSystemdStub {
        /// The `LoaderInfo` text, escaped.
        loader_info: String,
    },
    /// A stub older than 252.
    #[error("systemd-stub {version} is not supported: PCR 11 predictions need systemd-stub 252 or later")]
    UnsupportedStubVersion {
        /// The major version.
        version: u32,
    },
    /// The stub would not find `.linux` and refuse to boot.
    #[error("the UKI has no .linux section (or its VirtualSize is 0), so systemd-stub would refuse to boot it")]
    NoLinux,
    /// A measured section does not fit in `SizeOfImage`, so the firmware would not load the image.
    #[error("section {name} (VirtualAddress {virtual_address:#x}, VirtualSize {virtual_size:#x}) ends past SizeOfImage {size_of_image:#x}; firmware would not load this image")]
    SectionOutsideImage {
        /// The section name.
        name: String,
        /// Its `VirtualAddress`.
        virtual_address: u32,
        /// Its `VirtualSize`.
        virtual_size: u32,
        /// The image's `SizeOfImage`.
        size_of_image: u32,
    },
    /// A measured section's `VirtualSize` exceeds its raw data by more than 256 MiB.
    #[error("section {name} has {bytes} bytes of zero fill (VirtualSize beyond SizeOfRawData); more than 256 MiB is refused as implausible")]
    ZeroFillTooLarge {
        /// The section name.
        name: String,
        /// `VirtualSize` minus the raw data in memory.
        bytes: u64,
    },
    /// A later section overwrites a measured one when the image is loaded.
    #[error("section {overwritten} is overwritten in memory by the later section {by}, so what the stub measures is not the section's data; rebuild the UKI without overlapping sections")]
    OverlappingSections {
        /// The measured section.
        overwritten: String,
        /// The section loaded over it.
        by: String,
    },
    /// A section whose measurement depends on the machine it boots on.
    #[error("the UKI has a {name} section, which systemd-stub {version} measures only if it matches the hardware; such UKIs cannot be predicted offline")]
    HardwareDependentSection {
        /// `.dtbauto` or `.efifw`.
        name: String,
        /// The stub's major version.
        version: u32,
    },
    /// The requested profile does not exist.
    #[error("the UKI has no profile {profile} (it has {available} .profile sections)")]
    ProfileNotFound {
        /// The requested profile.
        profile: u32,
        /// Number of `.profile` sections.
        available: usize,
    },
    /// Profiles need systemd-stub 257.
    #[error("profile {profile} requested, but systemd-stub {version} has no profiles (257 or later does)")]
    ProfilesUnsupported {
        /// The requested profile.
        profile: u32,
        /// The stub's major version.
        version: u32,
    },
    /// The `.linux` content that the stub hands to `LoadImage()` is not a PE image.
    #[error("the .linux section is not a PE image the firmware could load: {0}")]
    LinuxNotPe(#[source] cvmkit_pe::Error),
    /// A boot loader given in `BootPath::ChainLoaded` is not a PE image.
    #[error("boot loader {index} is not a PE image: {source}")]
    LoaderNotPe {
        /// Its position in the list, from 0.
        index: usize,
        /// Why it could not be parsed.
        #[source]
        source: cvmkit_pe::Error,
    },
    /// The kernel's EFI stub would measure an initrd systemd-stub assembles in a way this crate
    /// does not model.
    #[error("the kernel measures the initrd systemd-stub {version} assembles from .initrd and {generated}, which is not modelled; predict without the kernel's measurements if its EFI stub does not measure (e.g. Linux 6.1)")]
    InitrdNotModelled {
        /// The stub version.
        version: u32,
        /// The sections that make it up besides `.initrd`.
        generated: String,
    },
    /// `.cmdline` is not UTF-8, so its UTF-16 `LoadOptions` cannot be built.
    #[error("the UKI's .cmdline section is not UTF-8")]
    CmdlineNotUtf8,
}
