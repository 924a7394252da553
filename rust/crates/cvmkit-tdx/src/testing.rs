//! Deterministic synthetic inputs, for tests, examples and peer comparisons.
//!
//! The bytes come from SHA-256 in counter mode (`SHA-256(label || u64 LE counter)` blocks), so any
//! tool can regenerate them; `tests/peers.rs` records what dstack-mr and tinfoil tdx-measure
//! compute on them.

use sha2::{Digest, Sha256};

/// `len` pseudo-random bytes: `SHA-256(label || i as u64 LE)` for i = 0, 1, … concatenated.
pub fn stream(label: &[u8], len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 32);
    let mut i = 0u64;
    while out.len() < len {
        let mut h = Sha256::new();
        h.update(label);
        h.update(i.to_le_bytes());
        out.extend_from_slice(&h.finalize());
        i += 1;
    }
    out.truncate(len);
    out
}

/// TDVF section type and attribute values, for [`tdvf_image`].
pub mod section {
    /// `BFV`.
    pub const BFV: u32 = 0;
    /// `CFV`.
    pub const CFV: u32 = 1;
    /// `TD_HOB`.
    pub const TD_HOB: u32 = 2;
    /// `TEMP_MEM`.
    pub const TEMP_MEM: u32 = 3;
    /// Attribute `MR_EXTEND`.
    pub const MR_EXTEND: u32 = 1;
    /// Attribute `PAGE_AUG`.
    pub const PAGE_AUG: u32 = 2;
}

/// A firmware image of `len` bytes of [`stream`]`(label)` carrying a TDVF descriptor with
/// `sections` (`DataOffset, RawDataSize, MemoryAddress, MemoryDataSize, Type, Attributes`) at
/// `len - 0x1000`, and an OVMF footer table with the TDX metadata offset entry. `len` must be at
/// least 8 KiB.
pub fn tdvf_image(
    label: &[u8],
    len: usize,
    sections: &[(u32, u32, u64, u64, u32, u32)],
) -> Vec<u8> {
    let mut fw = stream(label, len);
    let desc_off = len - 0x1000;
    let mut desc = b"TDVF".to_vec();
    for v in [16 + 32 * sections.len() as u32, 1, sections.len() as u32] {
        desc.extend_from_slice(&v.to_le_bytes());
    }
    for &(data_offset, raw, addr, size, kind, attr) in sections {
        desc.extend_from_slice(&data_offset.to_le_bytes());
        desc.extend_from_slice(&raw.to_le_bytes());
        desc.extend_from_slice(&addr.to_le_bytes());
        desc.extend_from_slice(&size.to_le_bytes());
        desc.extend_from_slice(&kind.to_le_bytes());
        desc.extend_from_slice(&attr.to_le_bytes());
    }
    fw[desc_off..desc_off + desc.len()].copy_from_slice(&desc);
    let mut table = ((len - desc_off) as u32).to_le_bytes().to_vec();
    table.extend_from_slice(&22u16.to_le_bytes());
    table.extend_from_slice(cvmkit_ovmf::TDX_METADATA_OFFSET_GUID.as_bytes());
    table.extend_from_slice(&((table.len() + 18) as u16).to_le_bytes());
    table.extend_from_slice(cvmkit_ovmf::OVMF_TABLE_FOOTER_GUID.as_bytes());
    let end = len - 32;
    fw[end - table.len()..end].copy_from_slice(&table);
    fw
}

/// The TDVF memory sections of edk2's OvmfPkgX64 (and Debian's OVMF.fd): TEMP_MEM
/// 0x800000+0x6000, TD_HOB 0x809000+0x2000, TEMP_MEM 0x80B000+0x2000 and 0x810000+0x10000.
pub const OVMF_MEMORY_SECTIONS: [(u32, u32, u64, u64, u32, u32); 4] = [
    (0, 0, 0x80_0000, 0x6000, section::TEMP_MEM, 0),
    (0, 0, 0x80_9000, 0x2000, section::TD_HOB, 0),
    (0, 0, 0x80_B000, 0x2000, section::TEMP_MEM, 0),
    (0, 0, 0x81_0000, 0x1_0000, section::TEMP_MEM, 0),
];

/// The 1 MiB synthetic TDVF image of the peer comparisons (`tests/peers.rs`): a BFV of 0xC0000
/// bytes at file offset 0x40000 (MR_EXTEND) mapped at 0xFFF40000, a CFV of the first 0x40000 bytes
/// at 0xFFF00000, TD_HOB 0x809000+0x2000, TEMP_MEM 0x800000+0x6000 and 0x80B000+0x2000, and a
/// PAGE_AUG TEMP_MEM 0x810000+0x10000. Its sha256 is
/// `88acae94d92e27a55a073b9410f516c614cf3cef2173b7bffd95e9684f1388d2`.
pub fn synthetic_tdvf() -> Vec<u8> {
    use section::*;
    tdvf_image(
        b"cvmkit-tdx firmware",
        0x10_0000,
        &[
            (0x4_0000, 0xC_0000, 0xFFF4_0000, 0xC_0000, BFV, MR_EXTEND),
            (0, 0x4_0000, 0xFFF0_0000, 0x4_0000, CFV, 0),
            (0, 0, 0x80_9000, 0x2000, TD_HOB, 0),
            (0, 0, 0x80_0000, 0x6000, TEMP_MEM, 0),
            (0, 0, 0x80_B000, 0x2000, TEMP_MEM, 0),
            (0, 0, 0x81_0000, 0x1_0000, TEMP_MEM, PAGE_AUG),
        ],
    )
}

/// A 64 KiB TDVF image for examples: BFV (2 pages, MR_EXTEND), CFV (1 page), and
/// [`OVMF_MEMORY_SECTIONS`].
pub fn tiny_tdvf() -> Vec<u8> {
    use section::*;
    let mut sections = vec![
        (0xE000, 0x2000, 0xFFFF_E000, 0x2000, BFV, MR_EXTEND),
        (0, 0x1000, 0xFFFF_0000, 0x1000, CFV, 0),
    ];
    sections.extend(OVMF_MEMORY_SECTIONS);
    tdvf_image(b"cvmkit-tdx tiny firmware", 0x1_0000, &sections)
}

/// A minimal bzImage-shaped PE file (boot protocol 2.15, an empty `.text` section) for examples;
/// it boots nothing.
pub fn tiny_bzimage() -> Vec<u8> {
    let mut k = vec![0u8; 0x1200];
    k[0..2].copy_from_slice(b"MZ");
    k[0x3c..0x40].copy_from_slice(&0x80u32.to_le_bytes());
    k[0x1f1] = 3; // setup_sects: setup is 0x800 bytes
    k[0x202..0x206].copy_from_slice(b"HdrS");
    k[0x206..0x208].copy_from_slice(&0x020fu16.to_le_bytes());
    k[0x211] = 0x01; // LOADED_HIGH
    k[0x236..0x238].copy_from_slice(&0x7fu16.to_le_bytes());
    // PE header at 0x80: signature, COFF header, PE32+ optional header with 16 directories.
    let pe = 0x80;
    k[pe..pe + 4].copy_from_slice(b"PE\0\0");
    let coff = pe + 4;
    k[coff..coff + 2].copy_from_slice(&0x8664u16.to_le_bytes());
    k[coff + 2..coff + 4].copy_from_slice(&1u16.to_le_bytes()); // one section
    k[coff + 16..coff + 18].copy_from_slice(&240u16.to_le_bytes());
    let opt = coff + 20;
    k[opt..opt + 2].copy_from_slice(&0x20bu16.to_le_bytes());
    k[opt + 32..opt + 36].copy_from_slice(&0x1000u32.to_le_bytes()); // SectionAlignment
    k[opt + 36..opt + 40].copy_from_slice(&0x200u32.to_le_bytes()); // FileAlignment
    k[opt + 48..opt + 50].copy_from_slice(&1u16.to_le_bytes()); // MajorImageVersion
    k[opt + 56..opt + 60].copy_from_slice(&0x2000u32.to_le_bytes()); // SizeOfImage
    k[opt + 60..opt + 64].copy_from_slice(&0x1000u32.to_le_bytes()); // SizeOfHeaders
    k[opt + 68..opt + 70].copy_from_slice(&10u16.to_le_bytes()); // EFI application
    k[opt + 108..opt + 112].copy_from_slice(&16u32.to_le_bytes());
    let sec = opt + 240;
    k[sec..sec + 5].copy_from_slice(b".text");
    k[sec + 8..sec + 12].copy_from_slice(&0x200u32.to_le_bytes());
    k[sec + 12..sec + 16].copy_from_slice(&0x1000u32.to_le_bytes());
    k[sec + 16..sec + 20].copy_from_slice(&0x200u32.to_le_bytes());
    k[sec + 20..sec + 24].copy_from_slice(&0x1000u32.to_le_bytes());
    k
}
