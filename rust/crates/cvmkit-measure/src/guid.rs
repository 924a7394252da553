//! [`Guid`]: `EFI_GUID`, as firmware, GPT and event logs store it, and RFC 9562 name-based GUIDs.

use std::fmt;
use std::str::FromStr;

use sha2::{Digest as _, Sha256};

/// An `EFI_GUID` (UEFI spec appendix A): `Data1` (u32), `Data2` (u16), `Data3` (u16) and
/// `Data4` (8 bytes).
///
/// On disk and in firmware the first three fields are little-endian ([`Guid::to_bytes_le`];
/// Python's `uuid.UUID(...).bytes_le`); the text form and RFC 9562 ([`Guid::to_bytes_be`]) are
/// big-endian. `Display` prints the registry form in lower case,
/// `96b582de-1fb2-45f7-baea-a366c55a082d`; `{:X}` prints upper case, as the UEFI spec and
/// `sgdisk` write partition GUIDs.
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

impl Guid {
    /// The all-zero GUID (an unused GPT entry).
    pub const ZERO: Guid = Guid::from_fields(0, 0, 0, [0; 8]);

    /// A GUID from its text-form fields: `d1-d2-d3-d4[0..2]-d4[2..8]`.
    pub const fn from_fields(data1: u32, data2: u16, data3: u16, data4: [u8; 8]) -> Guid {
        Guid { data1, data2, data3, data4 }
    }

    /// The on-disk (mixed-endian) encoding: `Data1..Data3` little-endian, `Data4` as is.
    pub const fn to_bytes_le(&self) -> [u8; 16] {
        let a = self.data1.to_le_bytes();
        let b = self.data2.to_le_bytes();
        let c = self.data3.to_le_bytes();
        let d = self.data4;
        [a[0], a[1], a[2], a[3], b[0], b[1], c[0], c[1], d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]]
    }

    /// Decodes the on-disk (mixed-endian) encoding.
    pub const fn from_bytes_le(b: [u8; 16]) -> Guid {
        Guid {
            data1: u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            data2: u16::from_le_bytes([b[4], b[5]]),
            data3: u16::from_le_bytes([b[6], b[7]]),
            data4: [b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]],
        }
    }

    /// The RFC 9562 (big-endian, text-order) encoding.
    pub const fn to_bytes_be(&self) -> [u8; 16] {
        let a = self.data1.to_be_bytes();
        let b = self.data2.to_be_bytes();
        let c = self.data3.to_be_bytes();
        let d = self.data4;
        [a[0], a[1], a[2], a[3], b[0], b[1], c[0], c[1], d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]]
    }

    /// Decodes the RFC 9562 (big-endian, text-order) encoding.
    pub const fn from_bytes_be(b: [u8; 16]) -> Guid {
        Guid {
            data1: u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
            data2: u16::from_be_bytes([b[4], b[5]]),
            data3: u16::from_be_bytes([b[6], b[7]]),
            data4: [b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]],
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

    /// The RFC 9562 version nibble (the high 4 bits of `Data3`).
    pub const fn version(&self) -> u8 {
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
            "{:08x}-{:04x}-{:04x}-{:02x}{:02x}-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
            self.data1, self.data2, self.data3, d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]
        )
    }
}

impl fmt::UpperHex for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_string().to_ascii_uppercase())
    }
}

/// A string that is not a GUID in the `8-4-4-4-12` hex form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{text}' is not a GUID: expected 8-4-4-4-12 hexadecimal digits such as 96b582de-1fb2-45f7-baea-a366c55a082d")]
#[non_exhaustive]
pub struct ParseGuidError {
    /// The text given (cut to 64 characters).
    pub text: String,
}

impl FromStr for Guid {
    type Err = ParseGuidError;

    /// Accepts either case, with or without surrounding braces.
    fn from_str(s: &str) -> Result<Guid, ParseGuidError> {
        let err = || ParseGuidError { text: s.chars().take(64).collect() };
        let t = s.trim();
        let t = t.strip_prefix('{').and_then(|t| t.strip_suffix('}')).unwrap_or(t);
        let groups: Vec<&str> = t.split('-').collect();
        if groups.len() != 5
            || groups
                .iter()
                .zip([8, 4, 4, 4, 12])
                .any(|(g, n)| g.len() != n || !g.bytes().all(|c| c.is_ascii_hexdigit()))
        {
            return Err(err());
        }
        let b: [u8; 16] = crate::unhex(&groups.concat()).and_then(|v| v.try_into().ok()).ok_or_else(err)?;
        Ok(Guid::from_bytes_be(b))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FOOTER: Guid = Guid::from_fields(0x96b5_82de, 0x1fb2, 0x45f7, [0xba, 0xea, 0xa3, 0x66, 0xc5, 0x5a, 0x08, 0x2d]);

    #[test]
    fn text_and_byte_forms() {
        assert_eq!(FOOTER.to_string(), "96b582de-1fb2-45f7-baea-a366c55a082d");
        assert_eq!(format!("{FOOTER:X}"), "96B582DE-1FB2-45F7-BAEA-A366C55A082D");
        assert_eq!("{96B582DE-1FB2-45F7-BAEA-A366C55A082D}".parse::<Guid>().unwrap(), FOOTER);
        // On-disk bytes as Python's uuid.UUID(...).bytes_le.
        assert_eq!(&FOOTER.to_bytes_le()[..4], &[0xde, 0x82, 0xb5, 0x96]);
        assert_eq!(Guid::from_bytes_le(FOOTER.to_bytes_le()), FOOTER);
        assert_eq!(Guid::from_bytes_be(FOOTER.to_bytes_be()), FOOTER);
        for bad in [
            "96b582de-1fb2-45f7-baea-a366c55a082",
            "96b582de+1fb2-45f7-baea-a366c55a082d",
            "96b582de-1fb2-45f7-baea-a366c55a08ég",
            "96b582de1-fb2-45f7-baea-a366c55a082d",
            "é",
        ] {
            assert_eq!(bad.parse::<Guid>(), Err(ParseGuidError { text: bad.into() }), "{bad}");
        }
    }

    #[test]
    fn rfc9562_appendix_b2_v8_name_based() {
        // RFC 9562 B.2: SHA-256 of the DNS namespace and "www.example.com".
        let dns: Guid = "6ba7b810-9dad-11d1-80b4-00c04fd430c8".parse().unwrap();
        let g = Guid::v8_sha256(dns, b"www.example.com");
        assert_eq!(format!("{g:X}"), "5C146B14-3C52-8AFD-938A-375D0DF1FBF6");
        assert_eq!(g.version(), 8);
        assert_eq!(g.data4[0] >> 6, 0b10);
    }
}
