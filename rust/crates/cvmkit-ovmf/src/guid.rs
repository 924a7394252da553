//! EFI GUIDs as stored in firmware (`EFI_GUID`, mixed endian) and the GUIDs OVMF uses.

use std::fmt;
use std::str::FromStr;

/// An EFI GUID in its on-disk form: `Data1` (u32), `Data2` (u16) and `Data3` (u16) little endian,
/// then the 8 bytes of `Data4` as written. Python's `uuid.UUID(...).bytes_le` gives the same bytes.
///
/// `Display` and `FromStr` use the registry text form, `96b582de-1fb2-45f7-baea-a366c55a082d`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Guid([u8; 16]);

impl Guid {
    /// Builds a GUID from its text-form fields: `d1-d2-d3-d4[0..2]-d4[2..8]`.
    pub const fn from_fields(d1: u32, d2: u16, d3: u16, d4: [u8; 8]) -> Guid {
        let a = d1.to_le_bytes();
        let b = d2.to_le_bytes();
        let c = d3.to_le_bytes();
        Guid([
            a[0], a[1], a[2], a[3], b[0], b[1], c[0], c[1], d4[0], d4[1], d4[2], d4[3], d4[4],
            d4[5], d4[6], d4[7],
        ])
    }

    /// Wraps 16 bytes in on-disk (`EFI_GUID`) order.
    pub const fn from_bytes(bytes: [u8; 16]) -> Guid {
        Guid(bytes)
    }

    /// The 16 bytes in on-disk (`EFI_GUID`) order.
    pub const fn to_bytes(self) -> [u8; 16] {
        self.0
    }

    /// The 16 bytes in on-disk (`EFI_GUID`) order.
    pub const fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }
}

impl fmt::Display for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = &self.0;
        write!(
            f,
            "{:02x}{:02x}{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
            b[3], b[2], b[1], b[0], b[5], b[4], b[7], b[6], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]
        )
    }
}

impl fmt::Debug for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Guid({self})")
    }
}

/// The text is not a GUID of the form `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not a GUID: expected 8-4-4-4-12 hexadecimal digits such as 96b582de-1fb2-45f7-baea-a366c55a082d")]
pub struct ParseGuidError(String);

impl FromStr for Guid {
    type Err = ParseGuidError;

    fn from_str(s: &str) -> Result<Guid, ParseGuidError> {
        let err = || ParseGuidError(s.to_owned());
        let text = s
            .strip_prefix('{')
            .and_then(|t| t.strip_suffix('}'))
            .unwrap_or(s);
        let groups: Vec<&str> = text.split('-').collect();
        let lens = [8usize, 4, 4, 4, 12];
        if groups.len() != lens.len()
            || groups
                .iter()
                .zip(lens)
                .any(|(g, l)| g.len() != l || !g.bytes().all(|c| c.is_ascii_hexdigit()))
        {
            return Err(err());
        }
        let hex: String = groups.concat();
        let mut raw = [0u8; 16];
        for (i, byte) in raw.iter_mut().enumerate() {
            let pair = hex.get(2 * i..2 * i + 2).ok_or_else(err)?;
            *byte = u8::from_str_radix(pair, 16).map_err(|_| err())?;
        }
        // `raw` is big-endian text order; convert the first three fields to on-disk order.
        let d1 = u32::from_be_bytes([raw[0], raw[1], raw[2], raw[3]]);
        let d2 = u16::from_be_bytes([raw[4], raw[5]]);
        let d3 = u16::from_be_bytes([raw[6], raw[7]]);
        let mut d4 = [0u8; 8];
        d4.copy_from_slice(&raw[8..16]);
        Ok(Guid::from_fields(d1, d2, d3, d4))
    }
}

/// OVMF footer table GUID, `96b582de-1fb2-45f7-baea-a366c55a082d`
/// (edk2 `OvmfPkg/ResetVector/Ia16/ResetVectorVtf0.asm`, "guidedStructureEnd").
pub const OVMF_TABLE_FOOTER_GUID: Guid = Guid::from_fields(
    0x96b5_82de,
    0x1fb2,
    0x45f7,
    [0xba, 0xea, 0xa3, 0x66, 0xc5, 0x5a, 0x08, 0x2d],
);

/// SEV metadata offset entry, `dc886566-984a-4798-a75e-5585a7bf67cc`: u32 offset from the end of
/// the firmware to the `"ASEV"` descriptor.
pub const SEV_METADATA_GUID: Guid = Guid::from_fields(
    0xdc88_6566,
    0x984a,
    0x4798,
    [0xa7, 0x5e, 0x55, 0x85, 0xa7, 0xbf, 0x67, 0xcc],
);

/// SEV hash table entry, `7255371f-3a3b-4b04-927b-1da6efa8d454`: u32 GPA and u32 size of the area
/// where QEMU writes the kernel/initrd/cmdline hashes table (GPA 0 when unsupported).
pub const SEV_HASH_TABLE_RV_GUID: Guid = Guid::from_fields(
    0x7255_371f,
    0x3a3b,
    0x4b04,
    [0x92, 0x7b, 0x1d, 0xa6, 0xef, 0xa8, 0xd4, 0x54],
);

/// SEV-ES reset block, `00f771de-1a7e-4fcb-890e-68c77e2fb44e`: u32 reset EIP of the AP vCPUs.
pub const SEV_ES_RESET_BLOCK_GUID: Guid = Guid::from_fields(
    0x00f7_71de,
    0x1a7e,
    0x4fcb,
    [0x89, 0x0e, 0x68, 0xc7, 0x7e, 0x2f, 0xb4, 0x4e],
);

/// SEV secret block, `4c2eb361-7d9b-4cc3-8081-127c90d3d294`: u32 GPA and u32 size of the launch
/// secret area (SEV/SEV-ES `LAUNCH_SECRET`).
pub const SEV_SECRET_BLOCK_GUID: Guid = Guid::from_fields(
    0x4c2e_b361,
    0x7d9b,
    0x4cc3,
    [0x80, 0x81, 0x12, 0x7c, 0x90, 0xd3, 0xd2, 0x94],
);

/// TDX metadata offset entry, `e47a6535-984a-4798-865e-4685a7bf8ec2`: u32 offset from the end of
/// the firmware to the `"TDVF"` descriptor.
pub const TDX_METADATA_OFFSET_GUID: Guid = Guid::from_fields(
    0xe47a_6535,
    0x984a,
    0x4798,
    [0x86, 0x5e, 0x46, 0x85, 0xa7, 0xbf, 0x8e, 0xc2],
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_form_round_trips() {
        assert_eq!(
            OVMF_TABLE_FOOTER_GUID.to_string(),
            "96b582de-1fb2-45f7-baea-a366c55a082d"
        );
        assert_eq!(
            SEV_METADATA_GUID.to_string(),
            "dc886566-984a-4798-a75e-5585a7bf67cc"
        );
        assert_eq!(
            SEV_HASH_TABLE_RV_GUID.to_string(),
            "7255371f-3a3b-4b04-927b-1da6efa8d454"
        );
        assert_eq!(
            SEV_ES_RESET_BLOCK_GUID.to_string(),
            "00f771de-1a7e-4fcb-890e-68c77e2fb44e"
        );
        assert_eq!(
            SEV_SECRET_BLOCK_GUID.to_string(),
            "4c2eb361-7d9b-4cc3-8081-127c90d3d294"
        );
        assert_eq!(
            TDX_METADATA_OFFSET_GUID.to_string(),
            "e47a6535-984a-4798-865e-4685a7bf8ec2"
        );
        let parsed: Guid = "{96B582DE-1FB2-45F7-BAEA-A366C55A082D}".parse().unwrap();
        assert_eq!(parsed, OVMF_TABLE_FOOTER_GUID);
        // On-disk bytes as Python's uuid.UUID(...).bytes_le.
        assert_eq!(
            &OVMF_TABLE_FOOTER_GUID.as_bytes()[..4],
            &[0xde, 0x82, 0xb5, 0x96]
        );
        assert!("96b582de-1fb2-45f7-baea-a366c55a082"
            .parse::<Guid>()
            .is_err());
        assert!("96b582de+1fb2-45f7-baea-a366c55a082d"
            .parse::<Guid>()
            .is_err());
        assert!("96b582de-1fb2-45f7-baea-a366c55a08ég"
            .parse::<Guid>()
            .is_err());
    }
}
