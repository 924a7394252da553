//! `EFI_GUID`: the 16-byte identifiers of disks, partitions and partition types, and the
//! seed-derived (RFC 9562 version 8, SHA-256 name-based) GUIDs cvmkit writes.

use std::fmt;
use std::str::FromStr;

use sha2::{Digest, Sha256};

/// An `EFI_GUID` (UEFI spec appendix A): `Data1` (u32), `Data2` (u16), `Data3` (u16) and
/// `Data4` (8 bytes).
///
/// On disk the first three fields are little-endian ([`Guid::to_bytes_le`]); the text form and
/// RFC 9562 ([`Guid::to_bytes_be`]) are big-endian. `Display` prints the canonical upper-case
/// form `C12A7328-F81F-11D2-BA4B-00A0C93EC93B`, as the UEFI spec and `sgdisk` write it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Guid {
    /// `Data1`.
    pub data1: u32,
    /// `Data2`.
    pub data2: u16,
    /// `Data3`; its high nibble is the RFC 9562 version.
    pub data3: u16,
    /// `Data4`; the high bits of `data4[0]` are the RFC 9562 variant.
    pub data4: [u8; 8],
}

/// EFI System Partition, `C12A7328-F81F-11D2-BA4B-00A0C93EC93B`.
pub const ESP: Guid = Guid::new(
    0xC12A_7328,
    0xF81F,
    0x11D2,
    [0xBA, 0x4B, 0x00, 0xA0, 0xC9, 0x3E, 0xC9, 0x3B],
);
/// Root partition for x86-64 (UAPI.2 Discoverable Partitions Specification, `SD_GPT_ROOT_X86_64`),
/// `4F68BCE3-E8CD-4C1D-AF4F-D4A87B7C6F8B`.
pub const LINUX_ROOT_X86_64: Guid = Guid::new(
    0x4F68_BCE3,
    0xE8CD,
    0x4C1D,
    [0xAF, 0x4F, 0xD4, 0xA8, 0x7B, 0x7C, 0x6F, 0x8B],
);
/// Generic Linux data partition, `0FC63DAF-8483-4772-8E79-3D69D8477DE4`.
pub const LINUX_DATA: Guid = Guid::new(
    0x0FC6_3DAF,
    0x8483,
    0x4772,
    [0x8E, 0x79, 0x3D, 0x69, 0xD8, 0x47, 0x7D, 0xE4],
);

/// The RFC 9562 namespace of every GUID cvmkit derives from a seed,
/// `8E4A1B6C-3F0D-4C52-9B7A-C6D2E5F10A39` (an arbitrary constant, fixed forever).
pub const CVMKIT_NAMESPACE: Guid = Guid::new(
    0x8E4A_1B6C,
    0x3F0D,
    0x4C52,
    [0x9B, 0x7A, 0xC6, 0xD2, 0xE5, 0xF1, 0x0A, 0x39],
);

impl Guid {
    /// The all-zero GUID, which marks an unused partition entry.
    pub const ZERO: Guid = Guid::new(0, 0, 0, [0; 8]);

    /// A GUID from its four fields, e.g. `Guid::new(0xC12A7328, 0xF81F, 0x11D2, [0xBA, 0x4B, …])`.
    pub const fn new(data1: u32, data2: u16, data3: u16, data4: [u8; 8]) -> Guid {
        Guid {
            data1,
            data2,
            data3,
            data4,
        }
    }

    /// The on-disk (mixed-endian) encoding: `Data1..Data3` little-endian, `Data4` as is.
    pub fn to_bytes_le(&self) -> [u8; 16] {
        let mut b = [0u8; 16];
        b[0..4].copy_from_slice(&self.data1.to_le_bytes());
        b[4..6].copy_from_slice(&self.data2.to_le_bytes());
        b[6..8].copy_from_slice(&self.data3.to_le_bytes());
        b[8..16].copy_from_slice(&self.data4);
        b
    }

    /// Decodes the on-disk (mixed-endian) encoding.
    pub fn from_bytes_le(b: [u8; 16]) -> Guid {
        let mut data4 = [0u8; 8];
        data4.copy_from_slice(&b[8..16]);
        Guid {
            data1: u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            data2: u16::from_le_bytes([b[4], b[5]]),
            data3: u16::from_le_bytes([b[6], b[7]]),
            data4,
        }
    }

    /// The RFC 9562 (big-endian, text-order) encoding.
    pub fn to_bytes_be(&self) -> [u8; 16] {
        let mut b = [0u8; 16];
        b[0..4].copy_from_slice(&self.data1.to_be_bytes());
        b[4..6].copy_from_slice(&self.data2.to_be_bytes());
        b[6..8].copy_from_slice(&self.data3.to_be_bytes());
        b[8..16].copy_from_slice(&self.data4);
        b
    }

    /// Decodes the RFC 9562 (big-endian, text-order) encoding.
    pub fn from_bytes_be(b: [u8; 16]) -> Guid {
        let mut data4 = [0u8; 8];
        data4.copy_from_slice(&b[8..16]);
        Guid {
            data1: u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
            data2: u16::from_be_bytes([b[4], b[5]]),
            data3: u16::from_be_bytes([b[6], b[7]]),
            data4,
        }
    }

    /// A name-based RFC 9562 **version 8** UUID with SHA-256, as in RFC 9562 appendix B.2: the
    /// first 16 bytes of `SHA-256(namespace (big-endian bytes) || name)`, then the version nibble
    /// set to 8 and the variant bits to `10`.
    pub fn v8_sha256(namespace: Guid, name: &[u8]) -> Guid {
        let mut h = Sha256::new();
        h.update(namespace.to_bytes_be());
        h.update(name);
        let digest = h.finalize();
        let mut b = [0u8; 16];
        b.copy_from_slice(&digest[..16]);
        b[6] = (b[6] & 0x0F) | 0x80; // version 8
        b[8] = (b[8] & 0x3F) | 0x80; // variant 10xx (RFC 9562)
        Guid::from_bytes_be(b)
    }

    /// The GUID cvmkit derives for `purpose` (e.g. `"gpt-disk"`, `"gpt-partition-1"`) from a
    /// user's `seed`: [`Guid::v8_sha256`] in [`CVMKIT_NAMESPACE`] over the name
    /// `purpose || 0x00 || seed` (UTF-8). Same seed and purpose, same GUID; different purposes
    /// give unrelated GUIDs.
    ///
    /// ```
    /// use cvmkit_gpt::Guid;
    /// let a = Guid::from_seed("my-image", "gpt-disk");
    /// assert_eq!(a, Guid::from_seed("my-image", "gpt-disk"));
    /// assert_ne!(a, Guid::from_seed("my-image", "gpt-partition-1"));
    /// assert_eq!(a.version(), 8);
    /// ```
    pub fn from_seed(seed: &str, purpose: &str) -> Guid {
        let mut name = Vec::with_capacity(purpose.len() + 1 + seed.len());
        name.extend_from_slice(purpose.as_bytes());
        name.push(0);
        name.extend_from_slice(seed.as_bytes());
        Guid::v8_sha256(CVMKIT_NAMESPACE, &name)
    }

    /// The RFC 9562 version nibble (the high 4 bits of `Data3`).
    pub fn version(&self) -> u8 {
        (self.data3 >> 12) as u8
    }

    /// Whether this is the all-zero GUID.
    pub fn is_zero(&self) -> bool {
        *self == Guid::ZERO
    }
}

impl fmt::Display for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = &self.data4;
        write!(
            f,
            "{:08X}-{:04X}-{:04X}-{:02X}{:02X}-{:02X}{:02X}{:02X}{:02X}{:02X}{:02X}",
            self.data1, self.data2, self.data3, d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]
        )
    }
}

/// A string that is not a GUID in the `8-4-4-4-12` hex form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid GUID {text:?}: expected 8-4-4-4-12 hex digits such as C12A7328-F81F-11D2-BA4B-00A0C93EC93B")]
#[non_exhaustive]
pub struct ParseGuidError {
    /// The text given (cut to 64 characters).
    pub text: String,
}

impl FromStr for Guid {
    type Err = ParseGuidError;

    fn from_str(s: &str) -> Result<Guid, ParseGuidError> {
        let err = || ParseGuidError {
            text: s.chars().take(64).collect(),
        };
        let t = s.trim();
        let t = t
            .strip_prefix('{')
            .and_then(|t| t.strip_suffix('}'))
            .unwrap_or(t);
        let groups: Vec<&str> = t.split('-').collect();
        if groups.len() != 5
            || groups
                .iter()
                .zip([8, 4, 4, 4, 12])
                .any(|(g, n)| g.len() != n)
        {
            return Err(err());
        }
        let hex: String = groups.concat();
        let mut b = [0u8; 16];
        for (i, byte) in b.iter_mut().enumerate() {
            let pair = hex.get(2 * i..2 * i + 2).ok_or_else(err)?;
            *byte = u8::from_str_radix(pair, 16).map_err(|_| err())?;
        }
        Ok(Guid::from_bytes_be(b))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_disk_forms() {
        assert_eq!(ESP.to_string(), "C12A7328-F81F-11D2-BA4B-00A0C93EC93B");
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
            assert_eq!(Guid::from_bytes_be(g.to_bytes_be()), g);
        }
        assert_eq!(
            "{4f68bce3-e8cd-4c1d-af4f-d4a87b7c6f8b}"
                .parse::<Guid>()
                .unwrap(),
            LINUX_ROOT_X86_64
        );
        assert!("4f68bce3-e8cd-4c1d-af4f-d4a87b7c6f8"
            .parse::<Guid>()
            .is_err());
        assert!("4f68bce3e-8cd-4c1d-af4f-d4a87b7c6f8b"
            .parse::<Guid>()
            .is_err());
        assert!("4f68bce3-e8cd-4c1d-af4f-d4a87b7c6fxb"
            .parse::<Guid>()
            .is_err());
        assert!("é".parse::<Guid>().is_err());
    }

    #[test]
    fn rfc9562_appendix_b2_v8_name_based() {
        // RFC 9562 B.2: SHA-256 of the DNS namespace and "www.example.com".
        let dns: Guid = "6ba7b810-9dad-11d1-80b4-00c04fd430c8".parse().unwrap();
        let g = Guid::v8_sha256(dns, b"www.example.com");
        assert_eq!(g.to_string(), "5C146B14-3C52-8AFD-938A-375D0DF1FBF6");
        assert_eq!(g.version(), 8);
        assert_eq!(g.data4[0] >> 6, 0b10);
    }
}
