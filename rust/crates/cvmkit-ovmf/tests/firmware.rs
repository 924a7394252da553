//! cvmkit-ovmf against real firmware: Debian bookworm's OVMF.fd (from scripts/fetch-inputs.sh) and
//! the edk2-stable202405 suffix fixtures; plus malformed input that must give errors, not panics.
//!
//! Expected values come from an independent reading: a 30-line Python script (struct/uuid only)
//! that walks the footer table and prints the ASEV/TDVF descriptors, run by hand on each file:
//!
//! ```text
//! OVMF.fd (ovmf 2022.11-6+deb12u2), len 0x200000, footer table length 136
//!  entry 00f771de-1a7e-4fcb-890e-68c77e2fb44e 22 04b08000
//!  entry 4c2eb361-7d9b-4cc3-8081-127c90d3d294 26 0000000000000000
//!  entry 7255371f-3a3b-4b04-927b-1da6efa8d454 26 0000000000000000
//!  entry dc886566-984a-4798-a75e-5585a7bf67cc 22 2c050000
//!  entry e47a6535-984a-4798-865e-4685a7bf8ec2 22 40080000
//! ASEV at 0x1ffad4 length 76 version 1, 5 sections
//!   (0x800000, 0x9000, 1) (0x80a000, 0x3000, 1) (0x80d000, 0x1000, 2) (0x80e000, 0x1000, 3)
//!   (0x80f000, 0x11000, 1)
//! TDVF at 0x1ff7c0 (offset from end 0x840) length 208 version 1, 6 sections
//!   DataOffset RawDataSize MemoryAddress MemoryDataSize Type Attributes
//!   0x20000    0x1e0000    0xffe20000    0x1e0000       0    1
//!   0x0        0x20000     0xffe00000    0x20000        1    0
//!   0x0        0x0         0x810000      0x10000        3    0
//!   0x0        0x0         0x80b000      0x2000         3    0
//!   0x0        0x0         0x809000      0x2000         2    0
//!   0x0        0x0         0x800000      0x6000         3    0
//! ```

use std::path::Path;

use cvmkit_ovmf::*;

/// Debian's OVMF.fd: $OVMF, else .cache/inputs/inputs.env; missing inputs fail with the fix.
fn debian_ovmf() -> Vec<u8> {
    let path = cvmkit_testutil::ovmf();
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read OVMF {}: {e}", path.display()))
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name),
    )
    .unwrap()
}

/// The suffix padded in front with zeros to `size` bytes, so that its last 4 KiB sit where they
/// were in the original image.
fn padded(suffix: &[u8], size: usize) -> Vec<u8> {
    let mut fw = vec![0u8; size - suffix.len()];
    fw.extend_from_slice(suffix);
    fw
}

fn sev(gpa: u32, size: u32, t: u32) -> SevMetadataSection {
    SevMetadataSection {
        gpa,
        size,
        section_type: SevSectionType::from_raw(t),
    }
}

fn tdvf(data_offset: u32, raw: u32, addr: u64, size: u64, t: u32, attr: u32) -> TdvfSection {
    TdvfSection {
        data_offset,
        raw_data_size: raw,
        memory_address: addr,
        memory_data_size: size,
        section_type: TdvfSectionType::from_raw(t).unwrap(),
        attributes: TdvfAttributes(attr),
    }
}

#[test]
fn debian_ovmf_footer_sev_and_tdx_metadata() {
    let data = debian_ovmf();
    assert_eq!(data.len(), 0x200000);
    let fw = Firmware::parse_named(&data, "OVMF.fd").unwrap();

    let table = fw.require_footer_table().unwrap();
    let listed: Vec<(String, usize)> = table
        .entries()
        .iter()
        .map(|e| (e.guid.to_string(), e.data.len() + ENTRY_HEADER_SIZE))
        .collect();
    assert_eq!(
        listed,
        [
            ("00f771de-1a7e-4fcb-890e-68c77e2fb44e".to_owned(), 22),
            ("4c2eb361-7d9b-4cc3-8081-127c90d3d294".to_owned(), 26),
            ("7255371f-3a3b-4b04-927b-1da6efa8d454".to_owned(), 26),
            ("dc886566-984a-4798-a75e-5585a7bf67cc".to_owned(), 22),
            ("e47a6535-984a-4798-865e-4685a7bf8ec2".to_owned(), 22),
        ]
    );
    assert_eq!(table.offset(), 0x200000 - 50 - (136 - 18));

    assert_eq!(fw.sev_es_reset_eip().unwrap(), 0x0080_b004);
    assert_eq!(
        fw.sev_hash_table().unwrap(),
        Some(GpaRange { gpa: 0, size: 0 })
    );
    assert_eq!(
        fw.sev_secret_block().unwrap(),
        Some(GpaRange { gpa: 0, size: 0 })
    );

    let meta = fw.require_sev_metadata().unwrap();
    assert_eq!((meta.offset, meta.length, meta.version), (0x1ffad4, 76, 1));
    assert_eq!(
        meta.sections,
        [
            sev(0x800000, 0x9000, 1),
            sev(0x80a000, 0x3000, 1),
            sev(0x80d000, 0x1000, 2),
            sev(0x80e000, 0x1000, 3),
            sev(0x80f000, 0x11000, 1),
        ]
    );
    assert!(!meta.has_section(SevSectionType::SnpKernelHashes));

    let tdx = fw.require_tdx_metadata().unwrap();
    for (i, s) in tdx.sections.iter().enumerate() {
        println!(
            "TDVF section {i}: DataOffset {:#x} RawDataSize {:#x} MemoryAddress {:#x} MemoryDataSize {:#x} {} {}",
            s.data_offset, s.raw_data_size, s.memory_address, s.memory_data_size, s.section_type, s.attributes
        );
    }
    assert_eq!((tdx.offset, tdx.length, tdx.version), (0x1ff7c0, 208, 1));
    assert_eq!(
        tdx.sections,
        [
            tdvf(0x20000, 0x1e0000, 0xffe20000, 0x1e0000, 0, 1),
            tdvf(0x0, 0x20000, 0xffe00000, 0x20000, 1, 0),
            tdvf(0x0, 0x0, 0x810000, 0x10000, 3, 0),
            tdvf(0x0, 0x0, 0x80b000, 0x2000, 3, 0),
            tdvf(0x0, 0x0, 0x809000, 0x2000, 2, 0),
            tdvf(0x0, 0x0, 0x800000, 0x6000, 3, 0),
        ]
    );
    let bfv = &tdx.sections[0];
    assert_eq!(bfv.section_type, TdvfSectionType::Bfv);
    assert!(bfv.attributes.mr_extend() && !bfv.attributes.page_aug());
    assert_eq!(bfv.raw_data(&data).unwrap().len(), 0x1e0000);
    assert_eq!(bfv.pages(), 0x1e0);
    // The BFV is mapped so that the firmware ends at 4 GiB.
    assert_eq!(bfv.memory_address + bfv.memory_data_size, 1 << 32);
    // The CFV (variable store) starts with an EFI firmware volume header: "_FVH" at offset 40.
    let cfv = tdx.sections[1].raw_data(&data).unwrap();
    assert_eq!(&cfv[40..44], b"_FVH");
}

#[test]
fn amdsev_suffix_has_kernel_hashes() {
    let data = fixture("ovmf_AmdSev_suffix.bin");
    let fw = Firmware::parse(&data).unwrap();
    assert_eq!(fw.sev_es_reset_eip().unwrap(), 0x0080_b004);
    assert_eq!(
        fw.sev_hash_table().unwrap(),
        Some(GpaRange {
            gpa: 0x810c00,
            size: 0x400
        })
    );
    assert_eq!(
        fw.sev_secret_block().unwrap(),
        Some(GpaRange {
            gpa: 0x810000,
            size: 0xc00
        })
    );
    let meta = fw.require_sev_metadata().unwrap();
    assert_eq!(
        meta.sections,
        [
            sev(0x800000, 0x9000, 1),
            sev(0x80a000, 0x3000, 1),
            sev(0x80d000, 0x1000, 2),
            sev(0x80e000, 0x1000, 3),
            sev(0x80f000, 0x1000, 4),
            sev(0x810000, 0x1000, 0x10),
            sev(0x811000, 0xf000, 1),
        ]
    );
    assert!(meta.has_section(SevSectionType::SnpKernelHashes));

    // The TDX metadata describes the original 4 MiB image, so the bare 4 KiB suffix fails
    // validation, while the suffix padded to 4 MiB passes.
    let err = fw.require_tdx_metadata().unwrap_err();
    assert!(
        err.to_string()
            .contains("runs past the end of the 4096-byte file"),
        "{err}"
    );
    let full = padded(&data, 4 << 20);
    let tdx = Firmware::parse(&full)
        .unwrap()
        .require_tdx_metadata()
        .unwrap();
    assert_eq!(
        tdx.sections[0],
        tdvf(0x84000, 0x37c000, 0xffc84000, 0x37c000, 0, 1)
    );
    assert_eq!(tdx.sections[1], tdvf(0, 0x84000, 0xffc00000, 0x84000, 1, 0));
    assert_eq!(tdx.sections.len(), 6);
}

#[test]
fn ovmfx64_suffix_has_no_kernel_hashes() {
    let data = fixture("ovmf_OvmfX64_suffix.bin");
    let fw = Firmware::parse(&data).unwrap();
    let meta = fw.require_sev_metadata().unwrap();
    assert_eq!(meta.sections.len(), 6);
    assert!(!meta.has_section(SevSectionType::SnpKernelHashes));
    assert!(meta.has_section(SevSectionType::SvsmCaa));
    assert_eq!(
        fw.sev_hash_table().unwrap(),
        Some(GpaRange { gpa: 0, size: 0 })
    );
}

#[test]
fn missing_tables_are_named() {
    let zeros = vec![0u8; 8192];
    let fw = Firmware::parse_named(&zeros, "blank.fd").unwrap();
    assert!(fw.footer_table().is_none());
    assert_eq!(fw.sev_metadata().unwrap(), None);
    assert_eq!(fw.tdx_metadata().unwrap(), None);
    assert_eq!(
        fw.require_sev_metadata().unwrap_err().to_string(),
        "firmware blank.fd has no OVMF footer GUID table (GUID 96b582de-1fb2-45f7-baea-a366c55a082d, \
         48 bytes before the end of the file): not an OVMF firmware image (pass the whole OVMF.fd or OVMF_CODE.fd)"
    );
    assert_eq!(
        FooterTable::parse(&zeros).unwrap_err(),
        OvmfError::NoFooterTable { file: None }
    );
    assert!(Firmware::parse(&[]).unwrap().footer_table().is_none());

    // A footer table with only the SEV-ES reset block.
    let mut data = fixture("ovmf_AmdSev_suffix.bin");
    let keep_only_first_entry = |d: &mut Vec<u8>| {
        let n = d.len();
        d[n - 50..n - 48].copy_from_slice(&(22u16 + 18).to_le_bytes());
    };
    keep_only_first_entry(&mut data);
    let fw = Firmware::parse_named(&data, "OVMF.fd").unwrap();
    assert_eq!(fw.require_footer_table().unwrap().entries().len(), 1);
    assert_eq!(fw.sev_es_reset_eip().unwrap(), 0x80b004);
    assert_eq!(
        fw.require_sev_metadata().unwrap_err().to_string(),
        "firmware OVMF.fd has no SEV metadata (GUID dc886566-984a-4798-a75e-5585a7bf67cc): \
         not an SEV-capable OVMF build"
    );
    assert_eq!(fw.sev_hash_table().unwrap(), None);
    assert!(fw
        .require_tdx_metadata()
        .unwrap_err()
        .to_string()
        .contains("has no TDX metadata"));
}

#[test]
fn malformed_descriptors_are_errors() {
    let base = padded(&fixture("ovmf_AmdSev_suffix.bin"), 4 << 20);
    let n = base.len();
    let asev = n - 0x554;
    let tdvf_at = n - 0x9d0;

    let mut d = base.clone();
    d[asev] = b'X';
    let err = Firmware::parse(&d).unwrap().sev_metadata().unwrap_err();
    assert!(err.to_string().contains("expected \"ASEV\""), "{err}");

    let mut d = base.clone();
    d[asev + 12..asev + 16].copy_from_slice(&u32::MAX.to_le_bytes());
    let err = Firmware::parse(&d)
        .unwrap()
        .require_sev_metadata()
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("cannot hold its 4294967295 sections"),
        "{err}"
    );

    // TDVF section 2 (TEMP_MEM) given raw data.
    let mut d = base.clone();
    let s2 = tdvf_at + 16 + 2 * 32;
    d[s2 + 4..s2 + 8].copy_from_slice(&0x1000u32.to_le_bytes());
    let err = Firmware::parse_named(&d, "x.fd")
        .unwrap()
        .require_tdx_metadata()
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "firmware x.fd: TDX metadata (GUID e47a6535-984a-4798-865e-4685a7bf8ec2) is malformed: \
         section 2 (TEMP_MEM) has RawDataSize 0x1000, but it is memory only"
    );
    // Unaligned MemoryAddress.
    let mut d = base.clone();
    d[s2 + 8] = 0x10;
    let err = Firmware::parse(&d)
        .unwrap()
        .require_tdx_metadata()
        .unwrap_err();
    assert!(err.to_string().contains("not 4 KiB aligned"), "{err}");
    // Undefined attribute bits.
    let mut d = base.clone();
    d[s2 + 28] = 0x4;
    let err = Firmware::parse(&d)
        .unwrap()
        .require_tdx_metadata()
        .unwrap_err();
    assert!(
        err.to_string().contains("undefined attribute bits 0x4"),
        "{err}"
    );
    // Length that disagrees with the section count.
    let mut d = base.clone();
    d[tdvf_at + 12] = 7;
    let err = Firmware::parse(&d)
        .unwrap()
        .require_tdx_metadata()
        .unwrap_err();
    assert!(
        err.to_string().contains("does not match its 7 sections"),
        "{err}"
    );

    // Footer table length pointing before the start of the file.
    let mut d = fixture("ovmf_AmdSev_suffix.bin");
    let n = d.len();
    d[n - 50..n - 48].copy_from_slice(&0xffffu16.to_le_bytes());
    let err = Firmware::parse_named(&d, "x.fd").unwrap_err();
    assert!(
        err.to_string()
            .starts_with("firmware x.fd: OVMF footer GUID table is malformed: table length 65535"),
        "{err}"
    );
    // An entry shorter than its own header.
    let mut d = fixture("ovmf_AmdSev_suffix.bin");
    d[n - 50 - 18] = 3;
    let err = Firmware::parse(&d).unwrap_err();
    assert!(
        err.to_string().contains("less than its 18-byte header"),
        "{err}"
    );
}

/// Every parser over every truncation and many single-byte corruptions of the metadata area:
/// results may be errors, never panics. (The `fuzz/` target does the same at random.)
#[test]
fn no_panics_on_corrupted_or_truncated_firmware() {
    fn exercise(data: &[u8]) {
        if let Ok(fw) = Firmware::parse(data) {
            let _ = fw.sev_metadata();
            let _ = fw.require_sev_metadata();
            let _ = fw.tdx_metadata();
            let _ = fw.sev_hash_table();
            let _ = fw.sev_secret_block();
            let _ = fw.sev_es_reset_eip();
            if let Ok(Some(tdx)) = fw.tdx_metadata() {
                for s in &tdx.sections {
                    assert!(s.raw_data(data).is_some());
                }
            }
        }
    }
    let suffix = fixture("ovmf_AmdSev_suffix.bin");
    for cut in 0..suffix.len() {
        exercise(&suffix[cut..]);
        exercise(&suffix[..cut]);
    }
    let full = padded(&suffix, 4 << 20);
    let n = full.len();
    let mut d = full.clone();
    for at in (n - 0xa00)..n {
        for v in [0x00u8, 0x01, 0x10, 0x7f, 0x80, 0xff] {
            let old = d[at];
            d[at] = v;
            exercise(&d);
            d[at] = old;
        }
    }
}
