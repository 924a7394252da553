//! cvmkit-pe against real images (Debian's signed vmlinuz, systemd-stub 252, a PE32 from GNU ld)
//! and independent peers: objdump/objcopy (headers, sections), signify, pesign and osslsigncode
//! (Authenticode), pefile (checksum).

use cvmkit_testutil as util;

use std::path::Path;
use std::process::Command;

use cvmkit_pe::pe::*;
use cvmkit_pe::sha2::{Sha256, Sha384};
use cvmkit_pe::{pe_checksum, Error, PeFile};
use util::*;

fn read(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Parsed headers and section table agree with `objdump -x` (binutils' own PE reader).
mod headers {
    use super::*;

    fn objdump_field(dump: &str, name: &str) -> u64 {
        let line = dump
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("{name} not in objdump output"));
        let v = line.split_whitespace().nth(1).unwrap();
        u64::from_str_radix(v.trim_start_matches("0x"), 16)
            .unwrap_or_else(|e| panic!("{line}: {e}"))
    }

    fn check(path: &Path) {
        let data = read(path);
        let pe = PeFile::parse(&data).unwrap();
        let dump = run(Command::new("objdump").arg("-x").arg(path));
        let oh = pe.optional_header();
        assert_eq!(objdump_field(&dump, "Magic"), u64::from(oh.magic));
        assert_eq!(
            objdump_field(&dump, "SizeOfImage"),
            u64::from(oh.size_of_image)
        );
        assert_eq!(
            objdump_field(&dump, "SizeOfHeaders"),
            u64::from(oh.size_of_headers)
        );
        assert_eq!(objdump_field(&dump, "CheckSum"), u64::from(oh.check_sum));
        assert_eq!(objdump_field(&dump, "Subsystem"), u64::from(oh.subsystem));
        assert_eq!(objdump_field(&dump, "ImageBase"), oh.image_base);
        assert_eq!(
            objdump_field(&dump, "SectionAlignment"),
            u64::from(oh.section_alignment)
        );
        assert_eq!(
            objdump_field(&dump, "FileAlignment"),
            u64::from(oh.file_alignment)
        );
        assert_eq!(
            objdump_field(&dump, "AddressOfEntryPoint"),
            u64::from(oh.address_of_entry_point)
        );
        assert_eq!(
            objdump_field(&dump, "SizeOfInitializedData"),
            u64::from(oh.size_of_initialized_data)
        );
        assert_eq!(
            objdump_field(&dump, "NumberOfRvaAndSizes"),
            u64::from(oh.number_of_rva_and_sizes)
        );
        // Not compared: objdump prints BFD's recomputed file Characteristics (0x20e for the
        // kernel, whose header says 0x206), not the header's.
        assert_eq!(
            pe.data_directories().len(),
            oh.number_of_rva_and_sizes as usize
        );
        let sec = pe
            .data_directory(IMAGE_DIRECTORY_ENTRY_SECURITY)
            .copied()
            .unwrap_or_default();
        let entry4 = dump.lines().find(|l| l.starts_with("Entry 4 ")).unwrap();
        let f: Vec<_> = entry4.split_whitespace().collect();
        assert_eq!(
            u64::from_str_radix(f[2], 16).unwrap(),
            u64::from(sec.virtual_address),
            "{entry4}"
        );
        assert_eq!(
            u64::from_str_radix(f[3], 16).unwrap(),
            u64::from(sec.size),
            "{entry4}"
        );

        // `objdump -h` rows: idx name size vma lma file-off; size is min(VirtualSize, SizeOfRawData).
        let rows: Vec<Vec<String>> = run(Command::new("objdump").arg("-h").arg(path))
            .lines()
            .map(|l| l.split_whitespace().map(str::to_string).collect::<Vec<_>>())
            .filter(|f| f.len() >= 7 && f[0].parse::<usize>().is_ok())
            .collect();
        assert_eq!(rows.len(), pe.sections().len());
        for (s, row) in pe.sections().iter().zip(&rows) {
            let h = &s.header;
            assert_eq!(row[1], s.name());
            assert_eq!(
                u64::from_str_radix(&row[2], 16).unwrap(),
                u64::from(h.virtual_size.min(h.size_of_raw_data))
            );
            assert_eq!(
                u64::from_str_radix(&row[3], 16).unwrap(),
                oh.image_base + u64::from(h.virtual_address)
            );
            assert_eq!(
                u64::from_str_radix(&row[5], 16).unwrap(),
                u64::from(h.pointer_to_raw_data)
            );
        }
    }

    #[test]
    fn stub_matches_objdump() {
        check(&stub());
        let data = read(&stub());
        let pe = PeFile::parse(&data).unwrap();
        assert!(pe.is_pe32_plus());
        assert_eq!(pe.file_header().machine, IMAGE_FILE_MACHINE_AMD64);
        assert_eq!(
            pe.optional_header().subsystem,
            IMAGE_SUBSYSTEM_EFI_APPLICATION
        );
        assert_eq!(pe.sections().len(), 8);
        assert!(!pe.is_signed());
        assert!(pe.section_by_name(".sbat").is_some());
        // The 252 stub still carries its COFF symbol and string table, right up to the end.
        assert_eq!(pe.coff_symbol_table(), Some(0x11400..data.len()));
        assert_eq!(pe.layout().section_table_end, 0x2c8);
    }

    #[test]
    fn kernel_matches_objdump() {
        check(&kernel());
        let data = read(&kernel());
        let pe = PeFile::parse(&data).unwrap();
        assert!(pe.is_signed());
        let cert = pe.certificate_table().unwrap();
        assert_eq!(
            cert.end,
            data.len(),
            "Debian's certificate table is at the end"
        );
        assert_eq!(pe.coff_symbol_table(), None);
    }

    #[test]
    fn pe32_matches_objdump() {
        let dir = tempfile::tempdir().unwrap();
        let path = build_pe32(dir.path());
        check(&path);
        let data = read(&path);
        let pe = PeFile::parse(&data).unwrap();
        assert!(!pe.is_pe32_plus());
        assert!(pe.optional_header().base_of_data.is_some());
        assert_eq!(pe.file_header().machine, IMAGE_FILE_MACHINE_I386);
    }

    /// Serializing the parsed headers reproduces the file's bytes.
    #[test]
    fn headers_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        for path in [stub(), kernel(), build_pe32(dir.path())] {
            let data = read(&path);
            let pe = PeFile::parse(&data).unwrap();
            let l = pe.layout();
            assert_eq!(
                &data[l.file_header..l.file_header + 20],
                pe.file_header().to_bytes()
            );
            let oh = pe.optional_header().to_bytes();
            assert_eq!(
                &data[l.optional_header..l.optional_header + oh.len()],
                &oh[..]
            );
            assert_eq!(l.data_directories, l.optional_header + oh.len());
            for s in pe.sections() {
                assert_eq!(
                    &data[s.header_offset..s.header_offset + 40],
                    s.header.to_bytes()
                );
            }
        }
    }
}

/// Section contents equal what `objcopy -O binary --only-section` extracts.
mod sections {
    use super::*;

    #[test]
    fn section_data_matches_objcopy() {
        let dir = tempfile::tempdir().unwrap();
        for path in [stub(), kernel()] {
            let data = read(&path);
            let pe = PeFile::parse(&data).unwrap();
            for s in pe.sections() {
                let out = dir.path().join("section.bin");
                run(Command::new("objcopy")
                    .args(["-O", "binary", "--only-section"])
                    .arg(s.name().as_ref())
                    .arg(&path)
                    .arg(&out));
                let expected = read(&out);
                let raw = pe.section_data(s).unwrap();
                let virt = pe.section_virtual_data(s).unwrap();
                assert_eq!(raw.len(), s.header.size_of_raw_data as usize);
                assert_eq!(
                    virt.len(),
                    (s.header.virtual_size.min(s.header.size_of_raw_data)) as usize
                );
                // objcopy writes the loaded image: min(VirtualSize, SizeOfRawData) bytes of file data.
                assert_eq!(virt, &expected[..], "{} in {}", s.name(), path.display());
            }
        }
        // The stub's .sbat is 0xe2 bytes in a 0x200-byte slot.
        let data = read(&stub());
        let pe = PeFile::parse(&data).unwrap();
        let sbat = pe.section_by_name(".sbat").unwrap();
        assert_eq!(pe.section_virtual_data(sbat).unwrap().len(), 0xe2);
        assert!(pe
            .section_virtual_data(sbat)
            .unwrap()
            .starts_with(b"sbat,1,SBAT Version"));
        assert_eq!(pe.section_data(sbat).unwrap().len(), 0x200);
        // The kernel's .data is mostly bss: 0x46000 bytes in memory, 0x1200 in the file.
        let data = read(&kernel());
        let pe = PeFile::parse(&data).unwrap();
        let d = pe.section_by_name(".data").unwrap();
        assert_eq!(d.zero_fill(), 0x46000 - 0x1200);
    }
}

/// Authenticode digests agree with signify, pesign and osslsigncode.
mod authenticode {
    use super::*;

    fn ours(path: &Path) -> (String, String, String, String) {
        let data = read(path);
        let pe = PeFile::parse(&data).unwrap();
        let both = pe.authenticode_sha256_sha384();
        assert_eq!(both.sha256.to_vec(), pe.authenticode::<Sha256>());
        assert_eq!(both.sha384.to_vec(), pe.authenticode::<Sha384>());
        (
            hex(&both.sha256),
            hex(&both.sha384),
            hex(&pe.authenticode_padded::<Sha256>()),
            hex(&pe.authenticode_padded::<Sha384>()),
        )
    }

    /// signify (sha256 + sha384) and `pesign -h` (sha256) hash without padding.
    #[test]
    fn unpadded_matches_signify_and_pesign() {
        let dir = tempfile::tempdir().unwrap();
        let pe32 = build_pe32(dir.path());
        let files = [stub(), kernel(), pe32];
        let refs: Vec<&Path> = files.iter().map(|p| p.as_path()).collect();
        let peer = signify(&refs);
        for (path, (s256, s384)) in files.iter().zip(peer) {
            let (a, b, _, _) = ours(path);
            assert_eq!(a, s256, "signify sha256 of {}", path.display());
            assert_eq!(b, s384, "signify sha384 of {}", path.display());
            assert_eq!(
                a,
                pesign_sha256(path, false),
                "pesign -h of {}",
                path.display()
            );
        }
    }

    /// osslsigncode (sha256 + sha384, by signing a copy) and `pesign -h -P` (sha256) pad the
    /// hashed data to 8 bytes; the stub (83297 bytes) and the PE32 are not 8-byte aligned.
    #[test]
    fn padded_matches_osslsigncode_and_pesign_p() {
        let dir = tempfile::tempdir().unwrap();
        let pe32 = build_pe32(dir.path());
        for path in [stub(), pe32] {
            let data = read(&path);
            let pe = PeFile::parse(&data).unwrap();
            assert_ne!(
                pe.authenticode_signing_padding(),
                0,
                "{} is 8-byte aligned",
                path.display()
            );
            let (a, b, pa, pb) = ours(&path);
            assert_ne!(a, pa);
            assert_ne!(b, pb);
            assert_eq!(
                osslsigncode_digests(&path, "sha256", dir.path()),
                [pa.as_str()]
            );
            assert_eq!(osslsigncode_digests(&path, "sha384", dir.path()), [pb]);
            assert_eq!(pesign_sha256(&path, true), pa);
        }
    }

    /// The digest in Debian's own signature of the kernel, plus a nested sha384 signature.
    #[test]
    fn signed_kernel_matches_embedded_digests() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b, pa, pb) = ours(&kernel());
        assert_eq!((&a, &b), (&pa, &pb), "signed files get no padding");
        // Signature 0 is Debian's (sha256); the nested one is ours, over the same bytes.
        assert_eq!(
            osslsigncode_digests(&kernel(), "sha384", dir.path()),
            [a, b]
        );
    }

    #[test]
    fn ranges_skip_checksum_security_entry_and_certificates() {
        let data = read(&kernel());
        let pe = PeFile::parse(&data).unwrap();
        let r = pe.authenticode_ranges();
        let l = pe.layout();
        let sec = l.security_directory.unwrap();
        assert_eq!(r[0], 0..l.checksum);
        assert_eq!(r[1], l.checksum + 4..sec);
        assert_eq!(r[2], sec + 8..pe.optional_header().size_of_headers as usize);
        let cert = pe.certificate_table().unwrap();
        assert!(r.iter().all(|x| x.end <= cert.start));
        let total: usize = r.iter().map(|x| x.len()).sum();
        assert_eq!(total, data.len() - 4 - 8 - cert.len());
        // Ranges never overlap and stay in order for this file.
        assert!(r.windows(2).all(|w| w[0].end <= w[1].start));
    }
}

/// The PE checksum agrees with pefile's generate_checksum() and with the stored CheckSum of
/// the two real files (both have valid checksums).
mod checksum {
    use super::*;

    #[test]
    fn matches_pefile_and_stored_value() {
        let dir = tempfile::tempdir().unwrap();
        let pe32 = build_pe32(dir.path());
        for path in [stub(), kernel(), pe32] {
            let data = read(&path);
            let pe = PeFile::parse(&data).unwrap();
            let (stored, generated) = pefile_checksum(&path);
            assert_eq!(pe.optional_header().check_sum, stored);
            assert_eq!(pe.computed_checksum(), generated, "{}", path.display());
        }
        for path in [stub(), kernel()] {
            let data = read(&path);
            let pe = PeFile::parse(&data).unwrap();
            assert_eq!(
                pe.computed_checksum(),
                pe.optional_header().check_sum,
                "{}",
                path.display()
            );
        }
    }

    /// Odd lengths, a changed CheckSum field and changed bytes, against pefile.
    #[test]
    fn variants_match_pefile() {
        let dir = tempfile::tempdir().unwrap();
        let data = read(&stub());
        let off = PeFile::parse(&data).unwrap().layout().checksum;
        let mut variants = vec![
            data[..data.len() - 1].to_vec(),
            data[..data.len() - 2].to_vec(),
        ];
        let mut v = data.clone();
        v[off..off + 4].copy_from_slice(&0xdead_beef_u32.to_le_bytes());
        variants.push(v);
        let mut v = data.clone();
        for i in (0x500..v.len()).step_by(97) {
            v[i] = 0xff;
        }
        variants.push(v);
        for (i, v) in variants.iter().enumerate() {
            let path = dir.path().join(format!("v{i}.efi"));
            std::fs::write(&path, v).unwrap();
            assert_eq!(pe_checksum(v, off), pefile_checksum(&path).1, "variant {i}");
        }
    }
}

/// Errors name the problem and its offset; no input makes the parser or the hashes panic.
mod errors {
    use super::*;

    #[test]
    fn messages() {
        let data = read(&stub());
        let e = |d: &[u8]| PeFile::parse(d).unwrap_err().to_string();
        assert_eq!(e(b""), "not a PE file: missing MZ signature");
        assert_eq!(e(b"\x7fELF"), "not a PE file: missing MZ signature");
        assert_eq!(
            e(b"MZ"),
            "truncated MS-DOS header e_lfanew at offset 0x3c (file is 0x2 bytes)"
        );
        let mut bad = data.clone();
        bad[0x80] = b'X';
        assert_eq!(
            e(&bad),
            "not a PE file: missing PE\\0\\0 signature at e_lfanew 0x80"
        );
        // The stub's section table starts at 0x188; section 3 is at 0x200.
        assert_eq!(
            e(&data[..0x208]),
            "truncated section table (section 3 at offset 0x200, file is 0x208 bytes)"
        );
        assert_eq!(
            e(&data[..0x300]),
            "SizeOfHeaders 0x400 extends past end of file (0x300 bytes)"
        );
        assert_eq!(
            e(&data[..0x8000]),
            "section .text raw data 0x400+0xc000 extends past end of file (0x8000 bytes)"
        );
        let mut bad = data.clone();
        bad[0x98] = 0x0c; // optional header magic 0x20b -> 0x20c
        assert_eq!(
            e(&bad),
            "unknown optional header magic 0x20c at offset 0x98 (expected 0x10b for PE32 or 0x20b for PE32+)"
        );
        let mut bad = data.clone();
        bad[0x94] = 0x60; // SizeOfOptionalHeader 0xf0 -> 0x60
        assert_eq!(
            e(&bad),
            "SizeOfOptionalHeader 0x60 is too small for a PE32+ optional header with 16 data directories (needs 0xf0)"
        );
        let kdata = read(&kernel());
        assert_eq!(
            e(&kdata[..kdata.len() - 8]),
            format!(
                "certificate table 0x7dd200+0x5c0 extends past end of file (0x{:x} bytes)",
                kdata.len() - 8
            )
        );
        assert!(matches!(
            PeFile::parse(b"MZ").unwrap_err(),
            Error::Truncated { offset: 0x3c, .. }
        ));
    }

    fn exercise(d: &[u8]) {
        if let Ok(pe) = PeFile::parse(d) {
            let _ = pe.authenticode_sha256_sha384();
            let _ = pe.authenticode_padded::<Sha256>();
            let _ = pe.computed_checksum();
            let _ = pe.coff_symbol_table();
            for s in pe.sections() {
                let _ = pe.section_data(s).unwrap();
                let _ = pe.section_virtual_data(s).unwrap();
                let _ = s.name();
            }
        }
    }

    /// Every truncation of the headers, and every single-byte corruption of them, of both real
    /// files (a deterministic stand-in for the fuzz target in `fuzz/`).
    #[test]
    fn no_panic_on_damaged_headers() {
        for path in [stub(), kernel()] {
            let data = read(&path);
            let head = &data[..0x1200.min(data.len())];
            for len in 0..=head.len() {
                exercise(&head[..len]);
            }
            let mut d = head.to_vec();
            for i in 0..0x400 {
                for v in [0x00, 0xff, 0x7f, 0x80] {
                    let old = d[i];
                    d[i] = v;
                    exercise(&d);
                    d[i] = old;
                }
            }
        }
    }

    /// A foreign section header (fields are public) is bounds-checked, not trusted.
    #[test]
    fn foreign_section_is_checked() {
        let data = read(&stub());
        let pe = PeFile::parse(&data).unwrap();
        let mut s = pe.sections()[0];
        s.header.pointer_to_raw_data = u32::MAX;
        assert!(matches!(
            pe.section_data(&s),
            Err(Error::SectionPastEnd { .. })
        ));
        let r = pe.section_virtual_data(&s);
        assert!(matches!(r, Err(Error::SectionPastEnd { .. })), "{r:?}");
    }
}
