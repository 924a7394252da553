//! The UKI-from-disk path (no peer models it): UKIs built with cvmkit-uki from the
//! systemd-stub 252 and the signed vmlinuz that scripts/fetch-inputs.sh takes from the Debian
//! archive (`STUB` and `KERNEL`, from the environment or .cache/inputs/inputs.env), a GPT disk
//! image made here, the event lists per stub version; then error cases and inputs that must not
//! panic.
//!
//! The archive keeps only the current kernel and stub, so no value here belongs to one file:
//! each Authenticode digest is derived live from the files in use by signify (PyPI, in the
//! project's venv: `$CVMKIT_VENV`, default .cache/venv), and the stub's version by pefile from
//! its `.sdmagic` section (choice (b), stated by each test that uses them). A missing venv or
//! input fails the test and names it (cvmkit-testutil).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::sha256_hex;
use cvmkit_ovmf::Firmware;
use cvmkit_tdx::uefi::utf16le_nul;
use cvmkit_tdx::*;
use cvmkit_uki::{build_uki_with, LinuxVirtualSize, UkiOptions, UkiParts};

const CMDLINE: &str = "console=ttyS0 root=PARTLABEL=root ro";
const OS_RELEASE: &[u8] = b"ID=debian\nVERSION_ID=12\n";

/// The venv's Python (signify, pefile) running `script` with `args`; its stdout.
fn run_python(script: &str, args: &[&Path]) -> String {
    cvmkit_testutil::run(
        Command::new(cvmkit_testutil::python())
            .arg("-c")
            .arg(script)
            .args(args),
    )
}

/// signify's Authenticode SHA-384 of each file (`SignedPEFile.get_fingerprints`: the file
/// without the CheckSum, the Security directory entry and the certificate table).
fn signify_sha384(paths: &[&Path]) -> Vec<Digest384> {
    cvmkit_testutil::signify(paths)
        .into_iter()
        .map(|(_, sha384)| parse_digest(&sha384).expect("signify's SHA-384"))
        .collect()
}

/// A scratch directory of this test binary.
fn scratch(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("uki")
        .join(name);
    std::fs::create_dir_all(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display()));
    d
}

fn write(dir: &Path, name: &str, data: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, data).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    p
}

struct Inputs {
    stub: Vec<u8>,
    stub_path: PathBuf,
    kernel: Vec<u8>,
    kernel_path: PathBuf,
    initrd: Vec<u8>,
}

/// Whatever stub and kernel the archive ships today: no value below is recorded for them.
fn inputs() -> Inputs {
    let read = |p: &Path| std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    let stub_path = cvmkit_testutil::stub();
    let kernel_path = cvmkit_testutil::kernel();
    Inputs {
        stub: read(&stub_path),
        stub_path,
        kernel: read(&kernel_path),
        kernel_path,
        initrd: testing::stream(b"cvmkit-tdx initrd", 100_003),
    }
}

/// pefile's reading of the stub's `.sdmagic` ("#### LoaderInfo: systemd-stub VERSION ####"):
/// the version text.
fn pefile_stub_version(stub: &Path) -> String {
    const SCRIPT: &str = r#"
import sys, re, pefile
pe = pefile.PE(sys.argv[1], fast_load=True)
s = [s for s in pe.sections if s.Name.rstrip(b'\0') == b'.sdmagic']
assert s, 'no .sdmagic section'
m = re.search(rb'#### LoaderInfo: systemd-stub (\S+) ####', s[0].get_data())
assert m, s[0].get_data()
print(m.group(1).decode())
"#;
    run_python(SCRIPT, &[stub]).trim().to_owned()
}

fn uki(i: &Inputs, linux_size: LinuxVirtualSize, osrel: bool) -> Vec<u8> {
    let parts = UkiParts {
        linux: &i.kernel,
        initrds: vec![&i.initrd],
        cmdline: Some(CMDLINE),
        os_release: osrel.then_some(OS_RELEASE),
        // The release the file name carries (vmlinuz-6.1.0-N-amd64), for the .uname section.
        uname: i
            .kernel_path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_prefix("vmlinuz-"))
            .or(Some("unknown")),
        ..UkiParts::default()
    };
    build_uki_with(
        &i.stub,
        &parts,
        0,
        &UkiOptions::default().with_linux_virtual_size(linux_size),
    )
    .unwrap()
}

/// A 1 MiB disk with a GPT: an ESP and a Linux root partition in entries 0 and 2.
fn disk() -> Vec<u8> {
    let mut d = vec![0u8; 1 << 20];
    let mut entries = vec![0u8; 128 * 128];
    let esp_type = "c12a7328-f81f-11d2-ba4b-00a0c93ec93b"
        .parse::<cvmkit_ovmf::Guid>()
        .unwrap();
    let root_type = "4f68bce3-e8cd-4db1-96e7-fbcaf984b709"
        .parse::<cvmkit_ovmf::Guid>()
        .unwrap();
    for (slot, ty, first, last, name) in [
        (0usize, esp_type, 34u64, 1023u64, "ESP"),
        (2, root_type, 1024, 2014, "root"),
    ] {
        let e = &mut entries[slot * 128..slot * 128 + 128];
        e[..16].copy_from_slice(&ty.to_bytes_le());
        e[16..32].copy_from_slice(&testing::stream(name.as_bytes(), 16));
        e[32..40].copy_from_slice(&first.to_le_bytes());
        e[40..48].copy_from_slice(&last.to_le_bytes());
        let n = utf16le_nul(name);
        e[56..56 + n.len()].copy_from_slice(&n);
    }
    let h = &mut d[512..512 + 92];
    h[..8].copy_from_slice(b"EFI PART");
    h[8..12].copy_from_slice(&0x0001_0000u32.to_le_bytes());
    h[12..16].copy_from_slice(&92u32.to_le_bytes());
    h[24..32].copy_from_slice(&1u64.to_le_bytes());
    h[32..40].copy_from_slice(&2047u64.to_le_bytes());
    h[40..48].copy_from_slice(&34u64.to_le_bytes());
    h[48..56].copy_from_slice(&2014u64.to_le_bytes());
    h[56..72].copy_from_slice(&testing::stream(b"disk", 16));
    h[72..80].copy_from_slice(&2u64.to_le_bytes());
    h[80..84].copy_from_slice(&128u32.to_le_bytes());
    h[84..88].copy_from_slice(&128u32.to_le_bytes());
    d[1024..1024 + entries.len()].copy_from_slice(&entries);
    d
}

fn labels(events: &[Event]) -> Vec<&str> {
    events.iter().map(|e| e.label.as_str()).collect()
}

fn section(uki: &[u8], name: &str) -> Vec<u8> {
    let pe = cvmkit_pe::PeFile::parse(uki).unwrap();
    let s = pe.section_by_name(name).unwrap();
    pe.section_virtual_data(s).unwrap().to_vec()
}

#[test]
fn gpt_data_is_header_count_and_used_entries() {
    let d = disk();
    let data = uefi_gpt_data(&d, 512, Some("disk.img")).unwrap();
    assert_eq!(data.len(), 92 + 8 + 2 * 128);
    assert_eq!(&data[..92], &d[512..604]);
    assert_eq!(u64::from_le_bytes(data[92..100].try_into().unwrap()), 2);
    assert_eq!(&data[100..228], &d[1024..1152]);
    assert_eq!(&data[228..356], &d[1024 + 256..1024 + 384]);
    let mut reader = std::io::Cursor::new(&d);
    assert_eq!(
        uefi_gpt_data_from_reader(&mut reader, 512, None).unwrap(),
        data
    );
    // Truncated entry array, bad sizes, no GPT.
    let e = uefi_gpt_data(&d[..2000], 512, Some("disk.img"))
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("disk image disk.img: cannot read the 128 partition entries"),
        "{e}"
    );
    let mut bad = d.clone();
    bad[512 + 84..512 + 88].copy_from_slice(&64u32.to_le_bytes());
    assert_eq!(
        uefi_gpt_data(&bad, 512, None).unwrap_err(),
        TdxError::Gpt {
            file: String::new(),
            reason: "SizeOfPartitionEntry 64 is not a multiple of 8 of at least 128".into(),
        }
    );
    // Read with 4096-byte sectors, LBA 1 of a 512-byte-sector disk holds no header.
    assert_eq!(
        uefi_gpt_data(&d, 4096, None).unwrap_err(),
        TdxError::Gpt {
            file: String::new(),
            reason: "no GPT header (\"EFI PART\") at LBA 1".into(),
        }
    );
}

// (b) The stub's version comes from pefile, the UKI's and the kernel's Authenticode digests from
// signify, each on the files in use: whatever stub 252 and kernel Debian ships.
#[test]
fn debian_stub_252_is_detected_and_loads_the_kernel_with_loadimage() {
    let i = inputs();
    let image = uki(&i, LinuxVirtualSize::FileSize, true);
    let boot = UkiBoot {
        name: Some("BOOTX64.EFI"),
        ..UkiBoot::new(&image, uefi_gpt_data(&disk(), 512, None).unwrap())
    };
    let stub = boot.stub().unwrap();
    let version_text = pefile_stub_version(&i.stub_path);
    assert!(
        version_text.starts_with("252."),
        "STUB {} is systemd-stub {version_text}; these tests model 252 (Debian bookworm)",
        i.stub_path.display()
    );
    assert_eq!(
        (stub.version, stub.loader_info),
        (252, Some(format!("systemd-stub {version_text}")))
    );

    let rtmr1 = uki_rtmr1(&boot, &OvmfProfile::EDK2_202411).unwrap();
    assert_eq!(
        labels(&rtmr1),
        [
            "Calling EFI Application from Boot Option",
            "separator",
            "GPT",
            "UKI BOOTX64.EFI (Authenticode)",
            "UKI .linux (Authenticode, LoadImage by systemd-stub 252)",
            "Exit Boot Services Invocation",
            "Exit Boot Services Returned with Success",
        ]
    );
    assert_eq!(rtmr1[2].digest, sha384(&boot.gpt_data));
    let uki_path = write(&scratch("stub-252"), "BOOTX64.EFI", &image);
    // .linux has VirtualSize = the kernel's file size: LoadImage gets the kernel file.
    let [uki_digest, kernel_digest] = signify_sha384(&[&uki_path, &i.kernel_path])[..] else {
        panic!("signify: not two digests")
    };
    assert_eq!(rtmr1[3].digest, uki_digest);
    assert_eq!(rtmr1[4].digest, kernel_digest);

    // Before edk2-stable202411 the separator is not in RTMR1.
    let old = uki_rtmr1(&boot, &OvmfProfile::EDK2_BEFORE_202411).unwrap();
    assert_eq!(old.len(), 6);
    // Failed boot options before this one.
    let retried = uki_rtmr1(
        &UkiBoot {
            failed_boot_attempts: 2,
            ..boot.clone()
        },
        &OvmfProfile::EDK2_202411,
    )
    .unwrap();
    assert_eq!(
        labels(&retried)[2..6],
        [
            "Returning from EFI Application from Boot Option",
            "Calling EFI Application from Boot Option",
            "Returning from EFI Application from Boot Option",
            "Calling EFI Application from Boot Option"
        ]
    );
    // A boot loader in front of the UKI.
    let with_loader = uki_rtmr1(
        &UkiBoot {
            boot_loader: Some(&i.stub),
            ..boot.clone()
        },
        &OvmfProfile::EDK2_202411,
    )
    .unwrap();
    assert_eq!(with_loader[3].label, "boot loader 1 (Authenticode)");

    // Stub 252 measures nothing into RTMR2; Linux 6.1 neither.
    assert!(uki_rtmr2(&boot, LinuxStubMeasurement::None)
        .unwrap()
        .is_empty());
    // A kernel that measures through the CC protocol: the .cmdline and the .initrd as is.
    let r2 = uki_rtmr2(&boot, LinuxStubMeasurement::CcMeasurement).unwrap();
    assert_eq!(
        labels(&r2),
        [
            "LOADED_IMAGE::LoadOptions (.cmdline)",
            "Linux initrd (.initrd)"
        ]
    );
    assert_eq!(r2[0].digest, sha384(&utf16le_nul(CMDLINE)));
    assert_eq!(r2[1].digest, sha384(&i.initrd));
}

// (b) The expected digest is signify's, on a file derived from the kernel in use.
#[test]
fn stub_252_hashes_linux_with_its_zero_filled_virtual_size() {
    let i = inputs();
    let image = uki(&i, LinuxVirtualSize::SizeOfImage, false);
    let boot = UkiBoot::new(&image, uefi_gpt_data(&disk(), 512, None).unwrap());
    let rtmr1 = uki_rtmr1(&boot, &OvmfProfile::EDK2_202411).unwrap();
    // LoadImage gets the .linux section as mapped: the kernel file zero-filled to its
    // SizeOfImage (read here by pefile). EDK2 hashes that buffer's headers and sections, then
    // the bytes up to the buffer's end less the certificate table's size; signify leaves out the
    // certificate table where the Security directory says it is. So the file given to signify
    // is the buffer with the directory pointing at its last CertSize bytes (the directory entry
    // itself is not hashed): the same bytes are hashed.
    const SCRIPT: &str = r#"
import sys, pefile
pe = pefile.PE(sys.argv[1], fast_load=True)
size = pe.OPTIONAL_HEADER.SizeOfImage
security = pe.OPTIONAL_HEADER.DATA_DIRECTORY[pefile.DIRECTORY_ENTRY['IMAGE_DIRECTORY_ENTRY_SECURITY']]
data = bytearray(open(sys.argv[1], 'rb').read())
assert size > len(data), (size, len(data))
data += bytes(size - len(data))
pe = pefile.PE(data=bytes(data), fast_load=True)
pe.OPTIONAL_HEADER.DATA_DIRECTORY[4].VirtualAddress = size - security.Size
pe.write(sys.argv[2])
"#;
    let dir = scratch("zero-filled");
    let buffer = dir.join("linux-as-loaded.efi");
    run_python(SCRIPT, &[&i.kernel_path, &buffer]);
    let [expected, file] = signify_sha384(&[&buffer, &i.kernel_path])[..] else {
        panic!("signify: not two digests")
    };
    assert_eq!(rtmr1[4].digest, expected);
    assert_ne!(rtmr1[4].digest, file);
    // 256 (read from its sources by cvmkit-uefi-boot) hands LoadImage() the same zero-filled
    // VirtualSize bytes.
    let r256 = uki_rtmr1(
        &UkiBoot {
            stub_version: Some(256),
            ..boot.clone()
        },
        &OvmfProfile::EDK2_202411,
    )
    .unwrap();
    assert_eq!(r256[4].digest, expected);
    // From 258 the stub starts the kernel itself: no .linux event.
    let r = uki_rtmr1(
        &UkiBoot {
            stub_version: Some(258),
            ..boot
        },
        &OvmfProfile::EDK2_202411,
    )
    .unwrap();
    assert!(r.iter().all(|e| !e.label.contains(".linux")));
}

#[test]
fn newer_stubs_measure_sections_into_rtmr2_in_unified_section_order() {
    let i = inputs();
    let image = uki(&i, LinuxVirtualSize::FileSize, true);
    let boot = UkiBoot {
        stub_version: Some(256),
        ..UkiBoot::new(&image, uefi_gpt_data(&disk(), 512, None).unwrap())
    };
    let r2 = uki_rtmr2(&boot, LinuxStubMeasurement::None).unwrap();
    let present: Vec<&str> = pcr11_sections(256)
        .unwrap()
        .iter()
        .copied()
        .filter(|n| {
            cvmkit_pe::PeFile::parse(&image)
                .unwrap()
                .section_by_name(n)
                .is_some()
        })
        .collect();
    assert_eq!(
        present,
        [".linux", ".osrel", ".cmdline", ".initrd", ".uname", ".sbat"]
    );
    assert_eq!(r2.len(), 2 * present.len());
    for (pair, name) in r2.chunks(2).zip(&present) {
        let mut nul = name.as_bytes().to_vec();
        nul.push(0);
        assert_eq!(pair[0].digest, sha384(&nul), "{name}");
        assert_eq!(pair[0].event_type, EventType::EV_IPL);
        assert_eq!(pair[1].digest, sha384(&section(&image, name)), "{name}");
    }
    assert_eq!(r2[1].digest, sha384(&i.kernel));
    assert_eq!(r2[5].digest, sha384(CMDLINE.as_bytes()));
    // 256 with a measuring kernel: sections, then LoadOptions and the initrd.
    let full = uki_rtmr2(&boot, LinuxStubMeasurement::CcMeasurement).unwrap();
    assert_eq!(full.len(), r2.len() + 2);
    // 257 appends a generated os-release cpio to the initrd it hands the kernel, so a measuring
    // kernel's initrd event is of the combined initrd (checked against a real swtpm boot's PCR 9
    // events in cvmkit-tpm's boot test).
    let r257 = uki_rtmr2(
        &UkiBoot {
            stub_version: Some(257),
            ..boot.clone()
        },
        LinuxStubMeasurement::CcMeasurement,
    )
    .unwrap();
    assert_eq!(
        r257.last().unwrap().label,
        "Linux initrd (as systemd-stub 257 combines it)"
    );
    assert_ne!(r257.last().unwrap().digest, full.last().unwrap().digest);
    assert!(uki_rtmr2(
        &UkiBoot {
            stub_version: Some(257),
            ..boot
        },
        LinuxStubMeasurement::None
    )
    .is_ok());
}

#[test]
fn measure_folds_a_uki_boot() {
    let i = inputs();
    let image = uki(&i, LinuxVirtualSize::FileSize, true);
    let fw_data = testing::tiny_tdvf();
    let fw = Firmware::parse_named(&fw_data, "tiny.fd").unwrap();
    let loader = [0u8; 128];
    let config = TdxConfig {
        linux_stub: LinuxStubMeasurement::None,
        rtmr0: Rtmr0Source::Computed(Rtmr0Inputs {
            acpi: Some(vec![AcpiBlob {
                name: "etc/table-loader".into(),
                data: &loader,
            }]),
            boot_variables: BootVariables {
                boot_order: vec![1, 0],
                options: [(1, vec![1, 2, 3])].into(),
            },
            ..Rtmr0Inputs::default()
        }),
        ..TdxConfig::default()
    };
    let boot = Boot::Uki(UkiBoot::new(
        &image,
        uefi_gpt_data(&disk(), 512, None).unwrap(),
    ));
    let m = measure(&fw, &config, &boot).unwrap();
    for r in [m.rtmr0.as_ref().unwrap(), &m.rtmr1, &m.rtmr2] {
        assert_eq!(r.value, fold(r.events.iter().map(|e| &e.digest)));
    }
    // BootOrder lists 0001 and 0000, but only Boot0001 was given.
    assert_eq!(
        labels(&m.rtmr0.as_ref().unwrap().events)[8..],
        ["ACPI DATA etc/table-loader", "BootOrder", "Boot0001"]
    );
    assert!(m.rtmr2.events.is_empty());
    assert_eq!(sha256_hex(&fw_data).len(), 64);
}

// ---------------------------------------------------------------------------------------------
// Errors name what is missing.

#[test]
fn firmware_without_tdx_metadata_names_the_table() {
    // An OVMF footer table whose only entry is the SEV metadata offset.
    let mut sev_only = vec![0u8; 4096 - 32];
    let mut table = 0x100u32.to_le_bytes().to_vec();
    table.extend_from_slice(&22u16.to_le_bytes());
    table.extend_from_slice(&cvmkit_ovmf::SEV_METADATA_GUID.to_bytes_le());
    table.extend_from_slice(&40u16.to_le_bytes());
    table.extend_from_slice(&cvmkit_ovmf::OVMF_TABLE_FOOTER_GUID.to_bytes_le());
    let end = sev_only.len();
    sev_only[end - table.len()..].copy_from_slice(&table);
    sev_only.extend_from_slice(&[0u8; 32]);
    let fw = Firmware::parse_named(&sev_only, "AmdSev.fd").unwrap();
    let e = mrtd(&fw, PageOrder::default()).unwrap_err().to_string();
    assert_eq!(
        e,
        "firmware AmdSev.fd has no TDX metadata (GUID e47a6535-984a-4798-865e-4685a7bf8ec2): \
         not a TDX-capable OVMF (TDVF) build"
    );
}

#[test]
fn missing_inputs_and_bad_images_are_named() {
    let fw_data = testing::tiny_tdvf();
    let fw = Firmware::parse(&fw_data).unwrap();
    let kernel = testing::tiny_bzimage();
    let direct = Boot::Direct(DirectBoot {
        kernel: &kernel,
        initrd: None,
        cmdline: "",
    });
    let e = measure(&fw, &TdxConfig::default(), &direct)
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("ACPI tables not given:"), "{e}");

    let config = TdxConfig {
        rtmr0: Rtmr0Source::Captured {
            value: [0; 48],
            events: vec![],
        },
        ..TdxConfig::default()
    };
    let e = measure(
        &fw,
        &TdxConfig {
            memory: 0,
            ..config.clone()
        },
        &direct,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("a guest needs memory"), "{e}");
    // The firmware's TEMP_MEM at 0x800000 does not fit in 4 MiB of RAM.
    let e = td_hob(
        &fw.require_tdx_metadata().unwrap(),
        Some("tiny.fd"),
        MemoryLayout::q35(4 << 20),
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("TEMP_MEM section 0x800000..0x806000 is not inside"),
        "{e}"
    );

    let e = measure(
        &fw,
        &config,
        &Boot::Direct(DirectBoot {
            kernel: b"not a kernel",
            initrd: None,
            cmdline: "",
        }),
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.starts_with("kernel image: no Linux boot protocol header"),
        "{e}"
    );

    let e = measure(&fw, &config, &Boot::Uki(UkiBoot::new(&kernel, vec![])))
        .unwrap_err()
        .to_string();
    assert!(e.contains(".sdmagic"), "{e}");
    let e = measure(
        &fw,
        &config,
        &Boot::Uki(UkiBoot {
            name: Some("x.efi"),
            ..UkiBoot::new(b"MZ", vec![])
        }),
    )
    .unwrap_err()
    .to_string();
    assert!(e.starts_with("UKI x.efi: the UKI is not a valid PE image"), "{e}");

    let bad = Rtmr0Source::Captured {
        value: [1; 48],
        events: vec![Event::separator()],
    };
    let e = measure(
        &fw,
        &TdxConfig {
            rtmr0: bad,
            ..TdxConfig::default()
        },
        &direct,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("do not fold"), "{e}");
}

#[test]
fn table_loader_orders_the_acpi_blobs() {
    let mut loader = vec![0u8; 128 * 4];
    let allocate = |loader: &mut Vec<u8>, i: usize, name: &str| {
        loader[i * 128..i * 128 + 4].copy_from_slice(&1u32.to_le_bytes());
        loader[i * 128 + 4..i * 128 + 4 + name.len()].copy_from_slice(name.as_bytes());
    };
    allocate(&mut loader, 0, "etc/acpi/rsdp");
    allocate(&mut loader, 1, "etc/acpi/tables");
    loader[2 * 128] = 2; // ADD_POINTER: not a blob
    allocate(&mut loader, 3, "etc/tpm/log");
    let files = std::collections::BTreeMap::from([
        ("etc/acpi/tables".to_owned(), &b"T"[..]),
        ("etc/acpi/rsdp".to_owned(), &b"R"[..]),
        ("etc/tpm/log".to_owned(), &b"L"[..]),
    ]);
    let blobs = acpi_blobs(&loader, &files).unwrap();
    let names: Vec<&str> = blobs.iter().map(|b| b.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "etc/table-loader",
            "etc/acpi/rsdp",
            "etc/acpi/tables",
            "etc/tpm/log"
        ]
    );
    let mut fewer = files.clone();
    fewer.remove("etc/tpm/log");
    let e = acpi_blobs(&loader, &fewer).unwrap_err().to_string();
    assert_eq!(
        e,
        "ACPI table-loader: command 3 allocates fw_cfg file \"etc/tpm/log\", which was not given"
    );
    assert_eq!(
        acpi_blobs(&loader[..100], &files).unwrap_err(),
        TdxError::TableLoader {
            reason: "100 bytes is not a whole number of 128-byte commands".into()
        }
    );
}

// ---------------------------------------------------------------------------------------------
// Odd inputs: errors, never panics.

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn mutate(&mut self, data: &[u8], hot: std::ops::Range<usize>) -> Vec<u8> {
        let mut d = data.to_vec();
        match self.next() % 4 {
            0 => d.truncate((self.next() as usize) % (d.len() + 1)),
            _ => {
                for _ in 0..1 + self.next() % 8 {
                    let span = hot.end.min(d.len()).saturating_sub(hot.start).max(1);
                    let at =
                        (hot.start + (self.next() as usize) % span).min(d.len().saturating_sub(1));
                    if let Some(b) = d.get_mut(at) {
                        *b = self.next() as u8;
                    }
                }
            }
        }
        d
    }
}

#[test]
fn odd_inputs_give_errors_not_panics() {
    let mut rng = Rng(0x6376_6d6b_6974);
    let fw = testing::tiny_tdvf();
    let kernel = testing::tiny_bzimage();
    let d = disk();
    let len = fw.len();
    for _ in 0..1500 {
        // Firmware: mutate the TDVF descriptor and footer table.
        let f = rng.mutate(&fw, len - 0x1000..len);
        if let Ok(parsed) = Firmware::parse(&f) {
            let _ = mrtd(&parsed, PageOrder::TwoPass);
            if let Ok(Some(meta)) = parsed.tdx_metadata() {
                let _ = td_hob(&meta, None, MemoryLayout::q35(rng.next() % (8 << 30)));
                let _ = cfv(&parsed, &meta);
            }
        }
        // Kernels: mutate the setup header and PE headers.
        let k = rng.mutate(&kernel, 0..0x400);
        let boot = DirectBoot {
            kernel: &k,
            initrd: Some(b"x"),
            cmdline: "vga=ask",
        };
        let _ = direct_boot_rtmr1(
            &boot,
            MemoryLayout::q35(rng.next() % (4 << 30)),
            &QemuProfile::QEMU_9,
            &OvmfProfile::default(),
        );
        // UKIs and disks.
        let u = rng.mutate(&kernel, 0..0x300);
        let g = rng.mutate(&d, 512..1200);
        let _ = uefi_gpt_data(&g, 512, None);
        let ub = UkiBoot {
            stub_version: Some(250 + (rng.next() % 10) as u32),
            ..UkiBoot::new(&u, g)
        };
        let _ = uki_rtmr1(&ub, &OvmfProfile::default());
        let _ = uki_rtmr2(&ub, LinuxStubMeasurement::CcMeasurement);
        let loader: Vec<u8> = (0..128 * (rng.next() % 3) as usize)
            .map(|_| rng.next() as u8 % 3)
            .collect();
        let _ = acpi_blobs(&loader, &Default::default());
        const ALPHABET: &[u8] = b"{}[]\":,0123456789abcdefimrtd_ ";
        let json: String = (0..(rng.next() % 40))
            .map(|_| char::from(ALPHABET[(rng.next() % ALPHABET.len() as u64) as usize]))
            .collect();
        let _ = Captured::from_json(&json);
    }
}

/// A section whose VirtualSize reaches past SizeOfImage is refused, not zero-filled: the fill
/// would size an allocation from an attacker's header (found by reading the code after fuzzing
/// the stub reader: 0xF0000000 made the prediction try to allocate 4 GB).
#[test]
fn a_section_past_size_of_image_is_refused_not_allocated() {
    let i = inputs();
    let mut image = uki(&i, LinuxVirtualSize::FileSize, true);
    let e_lfanew = u32::from_le_bytes(image[0x3c..0x40].try_into().unwrap()) as usize;
    let sections = u16::from_le_bytes(image[e_lfanew + 6..e_lfanew + 8].try_into().unwrap()) as usize;
    let opt_size = u16::from_le_bytes(image[e_lfanew + 20..e_lfanew + 22].try_into().unwrap()) as usize;
    let table = e_lfanew + 24 + opt_size;
    let cmdline = (0..sections)
        .map(|n| table + 40 * n)
        .find(|&h| image[h..h + 8].starts_with(b".cmdline"))
        .expect(".cmdline section");
    image[cmdline + 8..cmdline + 12].copy_from_slice(&0xF000_0000u32.to_le_bytes());
    let boot = UkiBoot::new(&image, vec![0; 92]);
    let e = uki_rtmr2(&boot, LinuxStubMeasurement::CcMeasurement).unwrap_err().to_string();
    assert!(e.contains("section .cmdline") && e.contains("ends past SizeOfImage"), "{e}");
}
