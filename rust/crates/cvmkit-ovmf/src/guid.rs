//! The GUIDs OVMF uses (the [`Guid`] type itself is cvmkit-measure's).

pub use cvmkit_measure::{Guid, ParseGuidError};

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
            &OVMF_TABLE_FOOTER_GUID.to_bytes_le()[..4],
            &[0xde, 0x82, 0xb5, 0x96]
        );
        // ParseGuidError is non-exhaustive (cvmkit-measure's): match its one field.
        for bad in [
            "96b582de-1fb2-45f7-baea-a366c55a082",
            "96b582de+1fb2-45f7-baea-a366c55a082d",
            "96b582de-1fb2-45f7-baea-a366c55a08ég",
        ] {
            assert_eq!(bad.parse::<Guid>().unwrap_err().text, bad);
        }
    }
}
