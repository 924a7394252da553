//! The partition-type GUIDs cvmkit writes, and the seed-derived (RFC 9562 version 8, SHA-256
//! name-based) GUIDs that make a disk's identity a function of its seed. The [`Guid`] type is
//! cvmkit-measure's; `{:X}` prints it upper case, as the UEFI spec and `sgdisk` do.

pub use cvmkit_measure::{Guid, ParseGuidError};

/// EFI System Partition, `C12A7328-F81F-11D2-BA4B-00A0C93EC93B`.
pub const ESP: Guid = Guid::from_fields(
    0xC12A_7328,
    0xF81F,
    0x11D2,
    [0xBA, 0x4B, 0x00, 0xA0, 0xC9, 0x3E, 0xC9, 0x3B],
);
/// Root partition for x86-64 (UAPI.2 Discoverable Partitions Specification, `SD_GPT_ROOT_X86_64`),
/// `4F68BCE3-E8CD-4C1D-AF4F-D4A87B7C6F8B`.
pub const LINUX_ROOT_X86_64: Guid = Guid::from_fields(
    0x4F68_BCE3,
    0xE8CD,
    0x4C1D,
    [0xAF, 0x4F, 0xD4, 0xA8, 0x7B, 0x7C, 0x6F, 0x8B],
);
/// Generic Linux data partition, `0FC63DAF-8483-4772-8E79-3D69D8477DE4`.
pub const LINUX_DATA: Guid = Guid::from_fields(
    0x0FC6_3DAF,
    0x8483,
    0x4772,
    [0x8E, 0x79, 0x3D, 0x69, 0xD8, 0x47, 0x7D, 0xE4],
);

/// The RFC 9562 namespace of every GUID cvmkit derives from a seed,
/// `8E4A1B6C-3F0D-4C52-9B7A-C6D2E5F10A39` (an arbitrary constant, fixed forever).
pub const CVMKIT_NAMESPACE: Guid = Guid::from_fields(
    0x8E4A_1B6C,
    0x3F0D,
    0x4C52,
    [0x9B, 0x7A, 0xC6, 0xD2, 0xE5, 0xF1, 0x0A, 0x39],
);

/// The GUID cvmkit derives for `purpose` (e.g. `"gpt-disk"`, `"gpt-partition-1"`) from a
/// user's `seed`: [`Guid::v8_sha256`] in [`CVMKIT_NAMESPACE`] over the name
/// `purpose || 0x00 || seed` (UTF-8). Same seed and purpose, same GUID; different purposes
/// give unrelated GUIDs.
///
/// ```
/// use cvmkit_gpt::seeded_guid;
/// let a = seeded_guid("my-image", "gpt-disk");
/// assert_eq!(a, seeded_guid("my-image", "gpt-disk"));
/// assert_ne!(a, seeded_guid("my-image", "gpt-partition-1"));
/// assert_eq!(a.version(), 8);
/// ```
pub fn seeded_guid(seed: &str, purpose: &str) -> Guid {
    let mut name = Vec::with_capacity(purpose.len() + 1 + seed.len());
    name.extend_from_slice(purpose.as_bytes());
    name.push(0);
    name.extend_from_slice(seed.as_bytes());
    Guid::v8_sha256(CVMKIT_NAMESPACE, &name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_disk_forms() {
        assert_eq!(format!("{ESP:X}"), "C12A7328-F81F-11D2-BA4B-00A0C93EC93B");
        assert_eq!(
            ESP.to_bytes_le(),
            [
                0x28, 0x73, 0x2A, 0xC1, 0x1F, 0xF8, 0xD2, 0x11, 0xBA, 0x4B, 0x00, 0xA0, 0xC9, 0x3E,
                0xC9, 0x3B
            ]
        );
        for g in [ESP, LINUX_ROOT_X86_64, LINUX_DATA, CVMKIT_NAMESPACE] {
            assert_eq!(g.to_string().parse::<Guid>().unwrap(), g);
            assert_eq!(Guid::from_bytes_le(g.to_bytes_le()), g);
        }
        assert_eq!("{4f68bce3-e8cd-4c1d-af4f-d4a87b7c6f8b}".parse::<Guid>().unwrap(), LINUX_ROOT_X86_64);
    }

    #[test]
    fn seeds_give_version_8() {
        let g = seeded_guid("s", "gpt-disk");
        assert_eq!(g.version(), 8);
        assert_eq!(g.data4[0] >> 6, 0b10);
        assert_ne!(g, seeded_guid("s", "gpt-partition-1"));
    }
}
