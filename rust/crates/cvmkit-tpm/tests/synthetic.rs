//! The version rules of `cvmkit_tpm::stub` on small hand-made PE images: which sections each
//! systemd-stub version measures and how it finds them, zero fill, profiles, the PCR 4 rules for
//! `.linux`, and errors (never panics) on malformed input.

use cvmkit_pe::sha2::{Digest, Sha256};
use cvmkit_pe::PeFile;
use cvmkit_tpm::{
    predict, Bank, BootError, BootPath, Error, EventOrigin, EventType, TpmOptions, EVENT_TYPE_USERSPACE,
};

/// One section of a test image.
#[derive(Clone)]
struct Sec {
    name: Vec<u8>,
    data: Vec<u8>,
    /// `VirtualSize`; the data length when `None`.
    virtual_size: Option<u32>,
    /// `VirtualAddress`; after the previous section when `None`.
    virtual_address: Option<u32>,
}

fn sec(name: &str, data: &[u8]) -> Sec {
    Sec {
        name: name.as_bytes().to_vec(),
        data: data.to_vec(),
        virtual_size: None,
        virtual_address: None,
    }
}

const FILE_ALIGNMENT: u32 = 0x200;
const SECTION_ALIGNMENT: u32 = 0x1000;
const SIZE_OF_HEADERS: u32 = 0x400;

fn align(x: u32, a: u32) -> u32 {
    x.div_ceil(a) * a
}

/// A PE32+ x86-64 EFI application with `sections`, `MajorImageVersion` = `image_version`.
fn pe_image(sections: &[Sec], image_version: u16, size_of_image: Option<u32>) -> Vec<u8> {
    let mut layout = Vec::new();
    let (mut raw, mut va) = (SIZE_OF_HEADERS, SECTION_ALIGNMENT);
    for s in sections {
        let vs = s.virtual_size.unwrap_or(s.data.len() as u32);
        let raw_size = align(s.data.len() as u32, FILE_ALIGNMENT);
        let this_va = s.virtual_address.unwrap_or(va);
        layout.push((raw, raw_size, this_va, vs));
        raw += raw_size;
        va = align(this_va + vs.max(raw_size).max(1), SECTION_ALIGNMENT);
    }
    let size_of_image = size_of_image.unwrap_or(va);

    let mut out = vec![0u8; raw as usize];
    out[0..2].copy_from_slice(b"MZ");
    out[0x3c..0x40].copy_from_slice(&0x40u32.to_le_bytes());
    let mut w = Vec::new();
    w.extend_from_slice(b"PE\0\0");
    w.extend_from_slice(&0x8664u16.to_le_bytes()); // IMAGE_FILE_MACHINE_AMD64
    w.extend_from_slice(&(sections.len() as u16).to_le_bytes());
    w.extend_from_slice(&[0; 12]); // TimeDateStamp, PointerToSymbolTable, NumberOfSymbols
    w.extend_from_slice(&240u16.to_le_bytes()); // SizeOfOptionalHeader (PE32+, 16 directories)
    w.extend_from_slice(&0x22u16.to_le_bytes()); // EXECUTABLE_IMAGE | LARGE_ADDRESS_AWARE
    w.extend_from_slice(&0x20bu16.to_le_bytes()); // PE32+
    w.extend_from_slice(&[0; 2 + 4 * 5]); // linker version, sizes, entry point, BaseOfCode
    w.extend_from_slice(&0x1000_0000u64.to_le_bytes()); // ImageBase
    w.extend_from_slice(&SECTION_ALIGNMENT.to_le_bytes());
    w.extend_from_slice(&FILE_ALIGNMENT.to_le_bytes());
    w.extend_from_slice(&[0; 4]); // OS version
    w.extend_from_slice(&image_version.to_le_bytes());
    w.extend_from_slice(&[0; 2 + 4 + 4]); // MinorImageVersion, subsystem version, Win32VersionValue
    w.extend_from_slice(&size_of_image.to_le_bytes());
    w.extend_from_slice(&SIZE_OF_HEADERS.to_le_bytes());
    w.extend_from_slice(&[0; 4]); // CheckSum
    w.extend_from_slice(&10u16.to_le_bytes()); // IMAGE_SUBSYSTEM_EFI_APPLICATION
    w.extend_from_slice(&[0; 2 + 8 * 4 + 4]); // DllCharacteristics, stack/heap, LoaderFlags
    w.extend_from_slice(&16u32.to_le_bytes()); // NumberOfRvaAndSizes
    w.extend_from_slice(&[0; 16 * 8]);
    for (s, &(raw, raw_size, va, vs)) in sections.iter().zip(&layout) {
        let mut name = [0u8; 8];
        name[..s.name.len()].copy_from_slice(&s.name);
        w.extend_from_slice(&name);
        for v in [vs, va, raw_size, raw, 0, 0] {
            w.extend_from_slice(&v.to_le_bytes());
        }
        w.extend_from_slice(&[0; 4]); // relocation and line-number counts
        w.extend_from_slice(&0x4000_0040u32.to_le_bytes());
    }
    assert!(
        0x40 + w.len() <= SIZE_OF_HEADERS as usize,
        "too many sections"
    );
    out[0x40..0x40 + w.len()].copy_from_slice(&w);
    for (s, &(raw, ..)) in sections.iter().zip(&layout) {
        out[raw as usize..raw as usize + s.data.len()].copy_from_slice(&s.data);
    }
    out
}

/// A tiny "kernel": a PE image whose `MajorImageVersion` says whether it supports
/// `LINUX_INITRD_MEDIA_GUID` (1) or only the EFI handover protocol (0).
fn kernel(image_version: u16) -> Vec<u8> {
    pe_image(&[sec(".text", &[0xc3; 100])], image_version, None)
}

fn sdmagic(version: &str) -> Sec {
    sec(
        ".sdmagic",
        format!("#### LoaderInfo: systemd-stub {version} ####\0").as_bytes(),
    )
}

fn sha256(parts: &[&[u8]]) -> Vec<u8> {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().to_vec()
}

fn opts() -> TpmOptions {
    TpmOptions::default().with_banks([Bank::Sha256])
}

/// (label, digest) of PCR 11 sha256.
fn pcr11(uki: &[u8], opts: &TpmOptions) -> Vec<(String, Vec<u8>)> {
    let p = predict(uki, opts).unwrap();
    let r = p.get(11, Bank::Sha256).unwrap();
    let mut value = vec![0u8; 32];
    for e in &r.events {
        value = sha256(&[&value, &e.digest]);
    }
    assert_eq!(value, r.value, "value is the fold of the events");
    r.events
        .iter()
        .map(|e| (e.label.clone(), e.digest.clone()))
        .collect()
}

fn labels(events: &[(String, Vec<u8>)]) -> Vec<&str> {
    events.iter().map(|(l, _)| l.as_str()).collect()
}

/// The digest of the content event of `name`.
fn content<'a>(events: &'a [(String, Vec<u8>)], name: &str) -> &'a [u8] {
    &events
        .iter()
        .find(|(l, _)| *l == format!("{name} content"))
        .unwrap_or_else(|| panic!("no {name} content event"))
        .1
}

/// A UKI with every section some version measures.
fn full_uki(version: &str) -> Vec<u8> {
    let k = kernel(1);
    pe_image(
        &[
            sec(".text", &[0x90; 16]),
            sec(".sbat", b"sbat,1,x\n"),
            sdmagic(version),
            sec(".osrel", b"ID=test\n"),
            sec(".cmdline", b"console=ttyS0"),
            sec(".uname", b"6.1.0"),
            sec(".splash", b"BM"),
            sec(".dtb", b"\xd0\x0d\xfe\xed"),
            sec(".pcrsig", b"{}"),
            sec(".pcrpkey", b"-----BEGIN PUBLIC KEY-----"),
            sec(".ucode", b"ucode"),
            sec(".hwids", b"hwids"),
            sec(".initrd", b"070701"),
            sec(".linux", &k),
        ],
        0,
        None,
    )
}

#[test]
fn sections_and_order_per_version() {
    let names = |v: &str| -> Vec<String> {
        pcr11(&full_uki(v), &opts())
            .iter()
            .filter_map(|(l, _)| l.strip_suffix(" name").map(str::to_string))
            .collect()
    };
    assert_eq!(
        names("252.39-1~deb12u2"),
        [".linux", ".osrel", ".cmdline", ".initrd", ".splash", ".dtb", ".pcrpkey"]
    );
    assert_eq!(names("253.5-1"), names("252.1"));
    assert_eq!(
        names("255.4-1ubuntu8"),
        [
            ".linux", ".osrel", ".cmdline", ".initrd", ".splash", ".dtb", ".uname", ".sbat",
            ".pcrpkey"
        ]
    );
    assert_eq!(
        names("256.7-1"),
        [
            ".linux", ".osrel", ".cmdline", ".initrd", ".ucode", ".splash", ".dtb", ".uname",
            ".sbat", ".pcrpkey"
        ]
    );
    // Debian trixie's stub; full_uki has no .profile, so 257 and 258 measure the same here.
    assert_eq!(names("257.13-1~deb13u1"), names("v258-rc1-12-gabcdef"));
    assert_eq!(
        names("v258-rc1-12-gabcdef"),
        [
            ".linux", ".osrel", ".cmdline", ".initrd", ".ucode", ".splash", ".dtb", ".uname",
            ".sbat", ".pcrpkey", ".hwids"
        ]
    );
    for v in [252, 255, 256, 257, 258] {
        assert!(!cvmkit_tpm::pcr11_sections(v).unwrap().is_empty());
    }
}

#[test]
fn name_and_content_digests() {
    let events = pcr11(&full_uki("252"), &opts());
    assert_eq!(
        events[0],
        (".linux name".to_string(), sha256(&[b".linux\0"]))
    );
    assert_eq!(content(&events, ".cmdline"), sha256(&[b"console=ttyS0"]));
    let p = predict(&full_uki("252"), &opts()).unwrap();
    for e in &p.get(11, Bank::Sha256).unwrap().events {
        assert_eq!(e.event_type, EventType::EV_IPL);
        assert_eq!(e.origin, EventOrigin::Stub);
    }
}

#[test]
fn phases_follow_the_sections() {
    let uki = full_uki("252");
    let base = pcr11(&uki, &opts());
    let with = pcr11(&uki, &opts().with_phases(cvmkit_tpm::PHASES_BOOTED));
    assert_eq!(with[..base.len()], base[..]);
    assert_eq!(
        labels(&with[base.len()..]),
        [
            "phase enter-initrd",
            "phase leave-initrd",
            "phase sysinit",
            "phase ready"
        ]
    );
    assert_eq!(with[base.len()].1, sha256(&[b"enter-initrd"]));
    let p = predict(&uki, &opts().with_phases(["ready"])).unwrap();
    let last = p
        .get(11, Bank::Sha256)
        .unwrap()
        .events
        .last()
        .unwrap()
        .clone();
    assert_eq!(last.event_type, EVENT_TYPE_USERSPACE);
    assert_eq!(last.origin, EventOrigin::Userspace);
}

/// 252–256 compare `strlen(name)` bytes and keep the last match; 257+ compare the whole name
/// and keep the first.
#[test]
fn section_lookup_rules() {
    let k = kernel(1);
    let uki = |v: &str| {
        pe_image(
            &[
                sdmagic(v),
                sec(".osrelXY", b"prefix"),
                sec(".initrd", b"first"),
                sec(".initrd", b"second"),
                sec(".linux", &k),
            ],
            0,
            None,
        )
    };
    let old = pcr11(&uki("252"), &opts());
    assert_eq!(content(&old, ".osrel"), sha256(&[b"prefix"]));
    assert_eq!(content(&old, ".initrd"), sha256(&[b"second"]));
    let new = pcr11(&uki("257"), &opts());
    assert!(!labels(&new).contains(&".osrel name"));
    assert_eq!(content(&new, ".initrd"), sha256(&[b"first"]));
}

/// The stub measures `VirtualSize` bytes: raw data cut to it, or followed by zeros.
#[test]
fn virtual_size_rules() {
    let k = kernel(1);
    let mut long = sec(".cmdline", b"abc");
    long.virtual_size = Some(10);
    let mut short = sec(".osrel", b"ID=x\nGARBAGE");
    short.virtual_size = Some(5);
    let mut empty = sec(".initrd", b"ignored");
    empty.virtual_size = Some(0);
    let uki = pe_image(
        &[sdmagic("252"), long, short, empty, sec(".linux", &k)],
        0,
        None,
    );
    let events = pcr11(&uki, &opts());
    assert_eq!(content(&events, ".cmdline"), sha256(&[b"abc", &[0; 7]]));
    assert_eq!(content(&events, ".osrel"), sha256(&[b"ID=x\n"]));
    assert!(
        !labels(&events).contains(&".initrd name"),
        "VirtualSize 0 is 'not found'"
    );
}

#[test]
fn profiles() {
    let k = kernel(1);
    let uki = |v: &str| {
        pe_image(
            &[
                sdmagic(v),
                sec(".linux", &k),
                sec(".cmdline", b"base"),
                sec(".profile", b"ID=zero"),
                sec(".cmdline", b"zero"),
                sec(".profile", b"ID=one"),
            ],
            0,
            None,
        )
    };
    let p0 = pcr11(&uki("257"), &opts());
    assert_eq!(
        labels(&p0),
        [
            ".linux name",
            ".linux content",
            ".cmdline name",
            ".cmdline content",
            ".profile name",
            ".profile content"
        ]
    );
    assert_eq!(content(&p0, ".cmdline"), sha256(&[b"zero"]));
    assert_eq!(content(&p0, ".profile"), sha256(&[b"ID=zero"]));
    assert_eq!(pcr11(&uki("257"), &opts().with_profile(Some(0))), p0);
    let p1 = pcr11(&uki("257"), &opts().with_profile(Some(1)));
    assert_eq!(content(&p1, ".cmdline"), sha256(&[b"base"]));
    assert_eq!(content(&p1, ".profile"), sha256(&[b"ID=one"]));
    assert_eq!(
        predict(&uki("257"), &opts().with_profile(Some(2))).unwrap_err(),
        Error::Boot(BootError::ProfileNotFound {
            profile: 2,
            available: 2
        })
    );
    // 256 knows no profiles: the last .cmdline wins, .profile is not measured.
    let old = pcr11(&uki("256"), &opts());
    assert_eq!(content(&old, ".cmdline"), sha256(&[b"zero"]));
    assert!(!labels(&old).contains(&".profile name"));
    assert_eq!(
        predict(&uki("256"), &opts().with_profile(Some(1)))
            .unwrap_err()
            .to_string(),
        "profile 1 requested, but systemd-stub 256 has no profiles (257 or later does)"
    );
    // Without any .profile, profile 0 is implied.
    let plain = pe_image(&[sdmagic("257"), sec(".linux", &k)], 0, None);
    assert!(predict(&plain, &opts().with_profile(Some(0))).is_ok());
}

#[test]
fn hardware_dependent_sections_are_refused() {
    let k = kernel(1);
    let uki = |v: &str| {
        pe_image(
            &[sdmagic(v), sec(".linux", &k), sec(".dtbauto", b"dtb")],
            0,
            None,
        )
    };
    assert_eq!(
        predict(&uki("258"), &opts()).unwrap_err().to_string(),
        "the UKI has a .dtbauto section, which systemd-stub 258 measures only if it matches the hardware; such UKIs cannot be predicted offline"
    );
    // 252 matches ".dtb" as a prefix of ".dtbauto" and measures it as .dtb.
    let events = pcr11(&uki("252"), &opts());
    assert_eq!(content(&events, ".dtb"), sha256(&[b"dtb"]));
    assert!(predict(&uki("257.13-1~deb13u1"), &opts())
        .unwrap_err()
        .to_string()
        .contains(".dtbauto section, which systemd-stub 257 measures only if"));

    // .efifw came after 257: 257 ignores it, 258 refuses.
    let efifw = |v: &str| {
        pe_image(
            &[sdmagic(v), sec(".linux", &k), sec(".efifw", b"fw")],
            0,
            None,
        )
    };
    assert_eq!(
        labels(&pcr11(&efifw("257.13-1~deb13u1"), &opts())),
        [".linux name", ".linux content"]
    );
    assert_eq!(
        predict(&efifw("258.1-1"), &opts()).unwrap_err().to_string(),
        "the UKI has a .efifw section, which systemd-stub 258 measures only if it matches the hardware; such UKIs cannot be predicted offline"
    );
}

/// PCR 4: the firmware's events, the UKI, and `.linux` when the firmware's LoadImage()
/// measures it.
#[test]
fn pcr4_rules() {
    let kernel_pe = kernel(1);
    let kernel_digest = PeFile::parse(&kernel_pe).unwrap().authenticode::<Sha256>();
    let uki = |v: &str, k: &[u8]| pe_image(&[sdmagic(v), sec(".linux", k)], 0, None);
    let pcr4 = |uki: &[u8], opts: &TpmOptions| {
        predict(uki, opts)
            .unwrap()
            .get(4, Bank::Sha256)
            .unwrap()
            .events
            .iter()
            .map(|e| (e.label.clone(), e.event_type, e.digest.clone()))
            .collect::<Vec<_>>()
    };

    let u = uki("252.39-1~deb12u2", &kernel_pe);
    let uki_digest = PeFile::parse(&u).unwrap().authenticode::<Sha256>();
    let events = pcr4(&u, &opts());
    assert_eq!(
        events,
        [
            (
                "Calling EFI Application from Boot Option".to_string(),
                EventType::EV_EFI_ACTION,
                sha256(&[b"Calling EFI Application from Boot Option"])
            ),
            ("separator".to_string(), EventType::EV_SEPARATOR, sha256(&[&[0; 4]])),
            (
                "UKI (Authenticode)".to_string(),
                EventType::EV_EFI_BOOT_SERVICES_APPLICATION,
                uki_digest.clone()
            ),
            (
                "UKI .linux (Authenticode, LoadImage by systemd-stub 252)".to_string(),
                EventType::EV_EFI_BOOT_SERVICES_APPLICATION,
                kernel_digest
            ),
        ]
    );
    // Secure Boot: the stub's security override skips the firmware's measurement.
    assert_eq!(pcr4(&u, &opts().with_secure_boot(true)), events[..3]);
    // A kernel without LINUX_INITRD_MEDIA_GUID support is started through the handover protocol.
    assert_eq!(pcr4(&uki("252", &kernel(0)), &opts()).len(), 3);
    // 258 loads the kernel itself.
    assert_eq!(pcr4(&uki("258.1", &kernel_pe), &opts()).len(), 3);
    assert_eq!(pcr4(&uki("257.4", &kernel_pe), &opts()).len(), 4);

    // A failed boot option before the UKI.
    let retried = pcr4(&u, &opts().with_failed_boot_attempts(1));
    assert_eq!(retried.len(), 6);
    assert_eq!(
        retried[2].0,
        "Returning from EFI Application from Boot Option"
    );
    assert_eq!(retried[3], events[0]);

    // A boot loader first.
    let loader = pe_image(&[sec(".text", b"loader")], 0, None);
    let chained = pcr4(
        &u,
        &opts().with_boot_path(BootPath::ChainLoaded {
            loaders: vec![loader.clone()],
        }),
    );
    assert_eq!(chained.len(), 5);
    assert_eq!(
        chained[2].2,
        PeFile::parse(&loader).unwrap().authenticode::<Sha256>()
    );
    assert_eq!(chained[3].2, uki_digest);
    assert_eq!(
        pcr4(&u, &opts().with_boot_path(BootPath::BootEntry)),
        events
    );
    let err = predict(
        &u,
        &opts().with_boot_path(BootPath::ChainLoaded {
            loaders: vec![b"MZ".to_vec()],
        }),
    )
    .unwrap_err();
    assert!(matches!(err, Error::Boot(BootError::LoaderNotPe { index: 0, .. })), "{err}");
}

#[test]
fn errors() {
    let k = kernel(1);
    let no_magic = pe_image(&[sec(".linux", &k)], 0, None);
    assert_eq!(predict(&no_magic, &opts()).unwrap_err(), Error::Boot(BootError::NoSdMagic));
    let p = predict(&no_magic, &opts().with_stub_version(Some(252))).unwrap();
    assert_eq!(p.stub.version, 252);
    assert_eq!(p.stub.loader_info, None);

    let boot = pe_image(
        &[
            sec(".sdmagic", b"#### LoaderInfo: systemd-boot 252.39 ####\0"),
            sec(".linux", &k),
        ],
        0,
        None,
    );
    assert_eq!(
        predict(&boot, &opts()).unwrap_err().to_string(),
        "the UKI's stub is \"systemd-boot 252.39\", not systemd-stub <version>; pass the systemd-stub version explicitly (cvmkit measure: --stub-version N) if it measures like one"
    );
    let junk = pe_image(&[sec(".sdmagic", b"hello"), sec(".linux", &k)], 0, None);
    assert!(matches!(
        predict(&junk, &opts()),
        Err(Error::Boot(BootError::BadSdMagic { .. }))
    ));
    let old = pe_image(&[sdmagic("251.3"), sec(".linux", &k)], 0, None);
    assert_eq!(
        predict(&old, &opts()).unwrap_err(),
        Error::Boot(BootError::UnsupportedStubVersion { version: 251 })
    );

    let no_linux = pe_image(&[sdmagic("252"), sec(".cmdline", b"x")], 0, None);
    assert_eq!(predict(&no_linux, &opts()).unwrap_err(), Error::Boot(BootError::NoLinux));
    let not_pe = pe_image(&[sdmagic("252"), sec(".linux", b"not a kernel")], 0, None);
    assert!(matches!(
        predict(&not_pe, &opts()),
        Err(Error::Boot(BootError::LinuxNotPe(_)))
    ));
    assert!(matches!(
        predict(&not_pe, &opts().with_secure_boot(true)),
        Err(Error::Boot(BootError::LinuxNotPe(_)))
    ));

    let outside = pe_image(&[sdmagic("252"), sec(".linux", &k)], 0, Some(0x1000));
    assert!(matches!(
        predict(&outside, &opts()),
        Err(Error::Boot(BootError::SectionOutsideImage { .. }))
    ));
    let mut over = sec(".sbat", b"sbat");
    over.virtual_address = Some(0x3000);
    let mut linux = sec(".linux", &k);
    linux.virtual_address = Some(0x3000);
    let overlap = pe_image(&[sdmagic("252"), linux, over], 0, None);
    assert_eq!(
        predict(&overlap, &opts()).unwrap_err(),
        Error::Boot(BootError::OverlappingSections {
            overwritten: ".linux".into(),
            by: ".sbat".into()
        })
    );
    let mut huge = sec(".cmdline", b"x");
    huge.virtual_size = Some(u32::MAX - 0x10_0000);
    let huge = pe_image(&[sdmagic("252"), sec(".linux", &k), huge], 0, None);
    assert!(matches!(
        predict(&huge, &opts()),
        Err(Error::Boot(BootError::ZeroFillTooLarge { .. }))
    ));

    assert_eq!(
        predict(&full_uki("252"), &TpmOptions::default().with_banks([])).unwrap_err(),
        Error::NoBanks
    );
}

#[test]
fn banks_dedupe_and_order() {
    let p = predict(
        &full_uki("252"),
        &TpmOptions::default().with_banks([Bank::Sha384, Bank::Sha1, Bank::Sha384]),
    )
    .unwrap();
    let order: Vec<(u32, Bank)> = p.registers.iter().map(|r| (r.pcr, r.bank)).collect();
    assert_eq!(
        order,
        [
            (4, Bank::Sha384),
            (4, Bank::Sha1),
            (11, Bank::Sha384),
            (11, Bank::Sha1)
        ]
    );
    for r in &p.registers {
        assert_eq!(r.value.len(), r.bank.digest_size());
        assert!(r
            .events
            .iter()
            .all(|e| e.digest.len() == r.bank.digest_size()));
    }
}

/// Truncations and byte flips of a valid UKI give errors or predictions, never panics.
#[test]
fn malformed_input_never_panics() {
    let uki = full_uki("252");
    let opts = opts();
    for len in (0..uki.len()).step_by(7) {
        let _ = predict(&uki[..len], &opts);
    }
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..3000 {
        let mut m = uki.clone();
        for _ in 0..(next() % 4 + 1) {
            // Mostly the headers, where the interesting fields are.
            let at = if next() % 4 == 0 {
                next() as usize % m.len()
            } else {
                next() as usize % 0x400
            };
            m[at] = next() as u8;
        }
        let _ = predict(&m, &opts);
        let _ = predict(&m, &opts.clone().with_stub_version(Some(257)));
    }
}
