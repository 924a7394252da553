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
    table.extend_from_slice(&cvmkit_ovmf::TDX_METADATA_OFFSET_GUID.to_bytes_le());
    table.extend_from_slice(&((table.len() + 18) as u16).to_le_bytes());
    table.extend_from_slice(&cvmkit_ovmf::OVMF_TABLE_FOOTER_GUID.to_bytes_le());
    let end = len - 32;
    fw[end - table.len()..end].copy_from_slice(&table);
    fw
}

/// The TDVF memory sections of edk2's OvmfPkgX64: TEMP_MEM 0x800000+0x6000, TD_HOB
/// 0x809000+0x2000, TEMP_MEM 0x80B000+0x2000 and 0x810000+0x10000 (Debian's OVMF.fd lists the
/// same four in the reverse order: [`debian_shaped_tdvf`]).
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
    k[opt + 44..opt + 46].copy_from_slice(&1u16.to_le_bytes()); // MajorImageVersion
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

/// A 2 MiB TDVF image shaped like Debian bookworm's `OVMF.fd` (ovmf 2022.11-6+deb12u2): the
/// same TDVF sections in the same order — a BFV of 0x1E0000 bytes at file offset 0x20000
/// (MR_EXTEND) mapped at 0xFFE20000, a CFV of the first 0x20000 bytes at 0xFFE00000, then
/// TEMP_MEM 0x810000+0x10000, TEMP_MEM 0x80B000+0x2000, TD_HOB 0x809000+0x2000 and TEMP_MEM
/// 0x800000+0x6000 — over [`stream`] bytes instead of edk2's code. Its MRTD walks the same pages
/// as Debian's and its TD HOB is the same; `tests/peers.rs` records what dstack-mr and tinfoil
/// tdx-measure compute on it. Its sha256 is
/// `fca80a5ad98753b67dbd785249c2ca6a197707bfc137e30de46caacc864a50d3`.
pub fn debian_shaped_tdvf() -> Vec<u8> {
    use section::*;
    tdvf_image(
        b"cvmkit-tdx debian-shaped firmware",
        0x20_0000,
        &[
            (0x2_0000, 0x1E_0000, 0xFFE2_0000, 0x1E_0000, BFV, MR_EXTEND),
            (0, 0x2_0000, 0xFFE0_0000, 0x2_0000, CFV, 0),
            (0, 0, 0x81_0000, 0x1_0000, TEMP_MEM, 0),
            (0, 0, 0x80_B000, 0x2000, TEMP_MEM, 0),
            (0, 0, 0x80_9000, 0x2000, TD_HOB, 0),
            (0, 0, 0x80_0000, 0x6000, TEMP_MEM, 0),
        ],
    )
}

/// A 4 MiB TDVF image with the layout of edk2's 4 MiB OvmfPkgX64 builds (`OVMF_CODE_4M` +
/// `OVMF_VARS_4M`): a CFV of 0x84000 bytes at 0xFFC00000, a BFV of 0x37C000 bytes (MR_EXTEND) at
/// 0xFFC84000, and [`OVMF_MEMORY_SECTIONS`]. Its sha256 is
/// `45df6843ea7adca992af15fb8ca085873ec1300f6f69b0b9ae07fd5d84f5df79`.
pub fn tdvf_4m() -> Vec<u8> {
    use section::*;
    let mut sections = vec![
        (0x8_4000, 0x37_C000, 0xFFC8_4000, 0x37_C000, BFV, MR_EXTEND),
        (0, 0x8_4000, 0xFFC0_0000, 0x8_4000, CFV, 0),
    ];
    sections.extend(OVMF_MEMORY_SECTIONS);
    tdvf_image(b"4 MiB", 0x40_0000, &sections)
}

/// Sizes of [`synthetic_kernel`]'s parts.
const SK_HEADERS: usize = 0x1000;
const SK_SETUP: usize = 0x2000;
const SK_COMPAT: usize = 0x1000;
const SK_TEXT: usize = 0x1_0000;
const SK_DATA_RAW: usize = 0x400;
const SK_DATA_VIRTUAL: usize = 0x3000;
const SK_CERT: usize = 0x5C0;

/// A signed-bzImage-shaped PE32+ EFI application of 84416 bytes, laid out like Debian's signed
/// `vmlinuz-6.1.0-*-amd64` at a smaller scale; it boots nothing. `tests/peers.rs` records what
/// dstack-mr and tinfoil tdx-measure compute on it.
///
/// - Linux boot protocol 2.15 setup header at 0x1F1 with the values of Debian's kernel
///   (`setup_sects` 31 — the setup area is the PE headers, `.setup` and `.compat` —, boot flag
///   0xAA55, "HdrS", `loadflags` LOADED_HIGH, `code32_start` 0x100000, `initrd_addr_max`
///   0x7FFFFFFF, `kernel_alignment` 2 MiB, relocatable, `xloadflags` 0x7F, `cmdline_size`
///   0x7FF, `pref_address` 0x1000000), a `kernel_version` string at 0x300;
/// - the PE header at 0x40: x86-64, 4 sections, a PE32+ optional header with 6 data
///   directories, `SizeOfHeaders` 0x1000, `FileAlignment` 0x200, `SectionAlignment` 0x1000,
///   image version 1.0, subsystem 10 (EFI application), NX-compatible, and a valid `CheckSum`;
/// - sections `.setup` (0x2000 bytes at 0x1000), `.compat` (0x1000 at 0x3000), `.text`
///   (0x10000 at 0x4000) and `.data` (0x400 in the file at 0x14000, 0x3000 in memory);
/// - a certificate table of 0x5C0 bytes at the end (a `WIN_CERTIFICATE` of type PKCS#7 whose
///   content is [`stream`] bytes, not a verifiable signature), so the file length is a multiple
///   of 8 and Authenticode excludes the table.
///
/// Every byte not set above is [`stream`]`(b"cvmkit-tdx kernel", 84416)`, except the gap
/// between the section table and the setup header (zero). Its sha256 is
/// `74e6d40250c90360ed2f7d73e33b888bbfac57b3440247af880de2e4112cc3b0`.
pub fn synthetic_kernel() -> Vec<u8> {
    let text_at = SK_HEADERS + SK_SETUP + SK_COMPAT;
    let data_at = text_at + SK_TEXT;
    let cert_at = data_at + SK_DATA_RAW;
    let len = cert_at + SK_CERT;
    let mut k = stream(b"cvmkit-tdx kernel", len);
    let put = |k: &mut Vec<u8>, at: usize, bytes: &[u8]| {
        k[at..at + bytes.len()].copy_from_slice(bytes);
    };
    let u16le = |v: u16| v.to_le_bytes();
    let u32le = |v: u32| v.to_le_bytes();

    // DOS header: "MZ", e_lfanew = 0x40; the rest of the first 0x40 bytes zero.
    k[..0x40].fill(0);
    put(&mut k, 0, b"MZ");
    put(&mut k, 0x3c, &u32le(0x40));

    // PE signature, COFF header, optional header, section table: 0x40..0x1A8, zero first.
    let pe = 0x40;
    k[pe..0x1f1].fill(0);
    put(&mut k, pe, b"PE\0\0");
    let coff = pe + 4;
    put(&mut k, coff, &u16le(0x8664));
    put(&mut k, coff + 2, &u16le(4));
    put(&mut k, coff + 12, &u32le(1)); // NumberOfSymbols, as Linux sets it
    put(&mut k, coff + 16, &u16le(112 + 6 * 8));
    put(&mut k, coff + 18, &u16le(0x206));
    let opt = coff + 20;
    let image_size = data_at + SK_DATA_VIRTUAL;
    put(&mut k, opt, &u16le(0x20b));
    k[opt + 2] = 2; // linker version 2.20
    k[opt + 3] = 20;
    put(&mut k, opt + 4, &u32le(SK_TEXT as u32)); // SizeOfCode
    put(
        &mut k,
        opt + 8,
        &u32le((SK_SETUP + SK_COMPAT + SK_DATA_VIRTUAL) as u32),
    );
    put(&mut k, opt + 16, &u32le((text_at + 0x1234) as u32)); // AddressOfEntryPoint
    put(&mut k, opt + 20, &u32le(text_at as u32)); // BaseOfCode
    put(&mut k, opt + 32, &u32le(0x1000)); // SectionAlignment
    put(&mut k, opt + 36, &u32le(0x200)); // FileAlignment
    put(&mut k, opt + 44, &u16le(1)); // MajorImageVersion
    put(&mut k, opt + 56, &u32le(image_size as u32)); // SizeOfImage
    put(&mut k, opt + 60, &u32le(SK_HEADERS as u32)); // SizeOfHeaders
    put(&mut k, opt + 68, &u16le(10)); // EFI application
    put(&mut k, opt + 70, &u16le(0x100)); // NX_COMPAT
    put(&mut k, opt + 108, &u32le(6)); // NumberOfRvaAndSizes
    let security = opt + 112 + 4 * 8;
    put(&mut k, security, &u32le(cert_at as u32));
    put(&mut k, security + 4, &u32le(SK_CERT as u32));
    let sections: [(&[u8], usize, usize, usize, u32); 4] = [
        (b".setup", SK_HEADERS, SK_SETUP, SK_SETUP, 0x4200_0040),
        (
            b".compat",
            SK_HEADERS + SK_SETUP,
            SK_COMPAT,
            SK_COMPAT,
            0x4200_0040,
        ),
        (b".text", text_at, SK_TEXT, SK_TEXT, 0x6000_0020),
        (b".data", data_at, SK_DATA_VIRTUAL, SK_DATA_RAW, 0xC000_0040),
    ];
    for (i, &(name, at, virtual_size, raw, flags)) in sections.iter().enumerate() {
        let s = opt + 112 + 6 * 8 + 40 * i;
        put(&mut k, s, name);
        put(&mut k, s + 8, &u32le(virtual_size as u32));
        put(&mut k, s + 12, &u32le(at as u32)); // VirtualAddress = file offset
        put(&mut k, s + 16, &u32le(raw as u32));
        put(&mut k, s + 20, &u32le(at as u32));
        put(&mut k, s + 36, &u32le(flags));
    }

    // The boot protocol setup header (Documentation/arch/x86/boot.rst), 0x1F1..0x26C.
    k[0x1f1..0x26c].fill(0);
    let setup_sects = (text_at / 512 - 1) as u8;
    k[0x1f1] = setup_sects;
    put(&mut k, 0x1f2, &u16le(1)); // root_flags
    put(&mut k, 0x1f4, &u32le(((SK_TEXT + SK_DATA_RAW) / 16) as u32)); // syssize
    put(&mut k, 0x1fa, &u16le(0xffff)); // vid_mode: normal
    put(&mut k, 0x1fe, &u16le(0xaa55)); // boot_flag
    put(&mut k, 0x200, &[0xeb, 0x6a]); // jump
    put(&mut k, 0x202, b"HdrS");
    put(&mut k, 0x206, &u16le(0x020f)); // version 2.15
    put(&mut k, 0x20c, &u16le(0x1000)); // start_sys_seg
    put(&mut k, 0x20e, &u16le(0x300 - 0x200)); // kernel_version
    k[0x211] = 0x01; // loadflags: LOADED_HIGH
    put(&mut k, 0x212, &u16le(0x8000)); // setup_move_size
    put(&mut k, 0x214, &u32le(0x10_0000)); // code32_start
    put(&mut k, 0x22c, &u32le(0x7fff_ffff)); // initrd_addr_max
    put(&mut k, 0x230, &u32le(0x20_0000)); // kernel_alignment
    k[0x234] = 1; // relocatable_kernel
    k[0x235] = 21; // min_alignment
    put(&mut k, 0x236, &u16le(0x7f)); // xloadflags
    put(&mut k, 0x238, &u32le(0x7ff)); // cmdline_size
    put(&mut k, 0x248, &u32le(0x2cc)); // payload_offset
    put(&mut k, 0x24c, &u32le(0x8000)); // payload_length
    put(&mut k, 0x258, &0x100_0000u64.to_le_bytes()); // pref_address
    put(&mut k, 0x260, &u32le(0x40_0000)); // init_size
    put(&mut k, 0x264, &u32le(0x1_0000)); // handover_offset
    let version = b"6.1.0-cvmkit-synthetic (cvmkit-tdx testing::synthetic_kernel, boots nothing)\0";
    put(&mut k, 0x300, version);

    // WIN_CERTIFICATE: dwLength (the content, unpadded), revision 2.0, type PKCS_SIGNED_DATA;
    // the table is padded with zeros to 8 bytes.
    let cert_len = SK_CERT - 7;
    put(&mut k, cert_at, &u32le(cert_len as u32));
    put(&mut k, cert_at + 4, &u16le(0x0200));
    put(&mut k, cert_at + 6, &u16le(0x0002));
    k[cert_at + cert_len..].fill(0);

    let checksum = cvmkit_pe::pe_checksum(&k, opt + 64);
    put(&mut k, opt + 64, &u32le(checksum));
    k
}
