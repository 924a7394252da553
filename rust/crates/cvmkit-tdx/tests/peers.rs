//! cvmkit-tdx against two peer tools, run by hand on this machine on the same inputs; their
//! outputs are recorded here as expected values.
//!
//! Peers (built outside the repo, in /work/peers):
//! - dstack-mr, Dstack-TEE/dstack @ 312dc605ebaaf93372534ffb135ea011533d28e9 (`dstack/dstack-mr`
//!   built as its own workspace with `dstack-types` and `size-parser`). `measure` needs
//!   `dstack-acpi-tables` (a patched QEMU) for RTMR0; a stand-in that prints six 36-byte ACPI
//!   headers (DSDT FACP APIC MCFG WAET RSDT) was put on PATH, so only its MRTD, RTMR1, RTMR2 and
//!   the RTMR0 events it computes from inputs are used.
//!   `dstack-mr measure --memory MEM --two-pass-add-pages {false,true} meta.json` with
//!   `meta.json` = `{"cmdline": "console=ttyS0 root=/dev/vda1 ro", "kernel": "vmlinuz",
//!   "initrd": "initrd.img", "bios": FIRMWARE, "version": "0.5.10"}` (dstack-mr appends
//!   " initrd=initrd" itself), and `dstack-mr diagnose --vm-config vm.json --image-dir img --json`
//!   with `vm.json` = `{"cpu_count": 1, "memory_size": MEM}` for the RTMR0 event digests.
//! - tinfoil tdx-measure, tinfoilsh/tdx-measure @ 33a8526088fb1850f5a4368a9b973ddeeb2d970f:
//!   `tdx-measure tinfoil.json [--two-pass-add-pages]` with `{"boot_config": {"cpus": 1,
//!   "memory": MEM, "bios": FIRMWARE, …}, "direct": {"kernel": "vmlinuz", "initrd":
//!   "initrd.img", "cmdline": "console=ttyS0 root=/dev/vda1 ro"}}`.
//!
//! Both peers agree on every value below. They model QEMU 9 (interleaved page add by default,
//! patched kernel header), edk2 202411 (separator in RTMR1) and a kernel stub that measures
//! through the CC protocol: `QemuProfile::QEMU_9`, `OvmfProfile::EDK2_202411`,
//! `LinuxStubMeasurement::CcMeasurement` here.
//!
//! Inputs: the synthetic TDVF image `testing::synthetic_tdvf()` (cannot drift), Debian
//! bookworm's OVMF.fd and signed vmlinuz 6.1 from .cache/inputs/inputs.env (checked by sha256
//! first), and the initrd `testing::stream(b"cvmkit-tdx initrd", 1060921)`.

mod common;

use common::{digest, pinned_input, sha256_hex};
use cvmkit_ovmf::Firmware;
use cvmkit_tdx::*;

const SYNTH_SHA256: &str = "88acae94d92e27a55a073b9410f516c614cf3cef2173b7bffd95e9684f1388d2";
const OVMF_SHA256: &str = "7b456907dd0786d415999e801a1ac4637b8ed4d7cf5378cfc6edbe5e574dd773";
const KERNEL_SHA256: &str = "26f2e57c99338feaf71c46fa4babdc7e1a6c115943002d109fdb746667104f5f";
const INITRD_SHA256: &str = "8d3b924e4fba32467b02350a520c77f693de84bb7114f9aefa0da6722d236bc3";
const CMDLINE: &str = "console=ttyS0 root=/dev/vda1 ro";

const REGENERATE: &str = "build dstack-mr (Dstack-TEE/dstack 312dc605, dstack/dstack-mr) and \
    tinfoil tdx-measure (tinfoilsh/tdx-measure 33a85260) outside the repo and run \
    `dstack-mr measure --memory 2G --two-pass-add-pages false meta.json` and \
    `tdx-measure tinfoil.json` as described at the top of tests/peers.rs";

fn initrd() -> Vec<u8> {
    let i = testing::stream(b"cvmkit-tdx initrd", 1_060_921);
    assert_eq!(sha256_hex(&i), INITRD_SHA256);
    i
}

fn debian_ovmf() -> Vec<u8> {
    pinned_input("OVMF", OVMF_SHA256, REGENERATE)
}

fn debian_kernel() -> Vec<u8> {
    pinned_input("KERNEL", KERNEL_SHA256, REGENERATE)
}

// ---------------------------------------------------------------------------------------------
// MRTD

#[test]
fn synthetic_firmware_mrtd_matches_both_peers_in_both_orders() {
    let data = testing::synthetic_tdvf();
    assert_eq!(
        sha256_hex(&data),
        SYNTH_SHA256,
        "testing::synthetic_tdvf() changed"
    );
    let fw = Firmware::parse_named(&data, "synth-tdvf.fd").unwrap();
    // dstack-mr measure --two-pass-add-pages false / true; tinfoil tdx-measure [--two-pass-add-pages]
    assert_eq!(
        hex(&mrtd(&fw, PageOrder::Interleaved).unwrap()),
        "75b3b062303cd4bf53183f9e181a910de419d7c54b888e5fca01c3f0928acb14aed23b74e0a63f7be13c4d4b3a47926d"
    );
    assert_eq!(
        hex(&mrtd(&fw, PageOrder::TwoPass).unwrap()),
        "ab12ec8fda0c6bf70e43d5dd32fb72ce77458a98a25e8e89439483fcdb41370208f01dd07263e1478eb4f980ec28d1c1"
    );
}

#[test]
fn debian_ovmf_mrtd_matches_both_peers_in_both_orders() {
    let data = debian_ovmf();
    let fw = Firmware::parse_named(&data, "OVMF.fd").unwrap();
    let interleaved = mrtd(&fw, PageOrder::Interleaved).unwrap();
    let two_pass = mrtd(&fw, PageOrder::TwoPass).unwrap();
    assert_eq!(
        hex(&interleaved),
        "4c7206f0f483c524f12c366c711e9049030a8d47c471ee5aa9c4999a08de4057fb887fed0744d5631a212967fb231c47"
    );
    assert_eq!(
        hex(&two_pass),
        "acccbcc870a381adab0d3919d90a7f268ac3b0364771f202ed4bb4e892d045b33db3b32e6924cba830a724eed443f7e1"
    );
    assert_ne!(interleaved, two_pass);
    assert_eq!(PageOrder::default(), PageOrder::Interleaved);
    assert_eq!(PageOrder::for_qemu(8, 2), PageOrder::TwoPass);
    assert_eq!(PageOrder::for_qemu(9, 2), PageOrder::Interleaved);
}

#[test]
fn mrtd_of_a_4_mib_firmware_takes_milliseconds() {
    use testing::section::*;
    let mut sections = vec![
        (0x8_4000, 0x37_C000, 0xFFC8_4000, 0x37_C000, BFV, MR_EXTEND),
        (0, 0x8_4000, 0xFFC0_0000, 0x8_4000, CFV, 0),
    ];
    sections.extend(testing::OVMF_MEMORY_SECTIONS);
    let data = testing::tdvf_image(b"4 MiB", 0x40_0000, &sections);
    let fw = Firmware::parse(&data).unwrap();
    let start = std::time::Instant::now();
    mrtd(&fw, PageOrder::Interleaved).unwrap();
    let elapsed = start.elapsed();
    // About 5.5 MB of SHA-384 input; generous bound for debug builds on a loaded machine.
    assert!(elapsed.as_millis() < 2000, "{elapsed:?}");
}

// ---------------------------------------------------------------------------------------------
// RTMR1 / RTMR2, direct boot

fn direct_boot_values(memory: u64) -> (String, String) {
    let kernel = debian_kernel();
    let initrd = initrd();
    let boot = DirectBoot {
        kernel: &kernel,
        initrd: Some(&initrd),
        cmdline: CMDLINE,
    };
    let layout = MemoryLayout::q35(memory);
    let ovmf = OvmfProfile::EDK2_202411;
    let rtmr1 = Register::from_events(
        direct_boot_rtmr1(&boot, layout, &QemuProfile::QEMU_9, &ovmf).unwrap(),
    );
    let rtmr2 = Register::from_events(direct_boot_rtmr2(
        &boot,
        &ovmf,
        LinuxStubMeasurement::CcMeasurement,
    ));
    (hex(&rtmr1.value), hex(&rtmr2.value))
}

const RTMR2: &str = "272c1980eb9dc1a8a2bc1ad43e7af5929d6c20583f5a04f414a3b4e558901d66a16f4d9d5ea33330d043e1fc90ede39d";
const RTMR1_2G: &str = "d24da1aea8a5bc5871d51bde456f027af1d7312e8856f3e05d850721288987fcb8eec0c3bf3c907bc04c9392ade53e09";

#[test]
fn direct_boot_matches_both_peers_at_2g_and_4g() {
    // dstack-mr measure --memory 2G|4G (both page orders) and tinfoil tdx-measure, memory "2G"|"4G".
    for memory in [2u64 << 30, 4 << 30, 3 << 30] {
        let (rtmr1, rtmr2) = direct_boot_values(memory);
        assert_eq!(rtmr1, RTMR1_2G, "memory {memory:#x}");
        assert_eq!(rtmr2, RTMR2, "memory {memory:#x}");
    }
}

#[test]
fn direct_boot_rtmr1_follows_the_initrd_placement_below_2g_and_in_the_hole() {
    // dstack-mr measure --memory 1G / 2560M; tinfoil tdx-measure memory "1G" / "0xA0000000".
    assert_eq!(
        direct_boot_values(1 << 30).0,
        "e6f1dda2325e4a2d1c9768d46a709d39404be47afca13ebca16b8e535f932ee07e7ddf6891fe2dcfe5501931e62b0a80"
    );
    assert_eq!(
        direct_boot_values(0xA000_0000).0,
        "c213e057fac63154aa3d62db2e27acd53527e1e71ceeb397e0aea3edd3a625d725ce53812a35fbeb91b1be6dbe3f2855"
    );
}

#[test]
fn qemu_10_1_measures_the_kernel_file_as_it_is() {
    let kernel = debian_kernel();
    let initrd = initrd();
    let boot = DirectBoot {
        kernel: &kernel,
        initrd: Some(&initrd),
        cmdline: CMDLINE,
    };
    let layout = MemoryLayout::q35(2 << 30);
    let unpatched = kernel_digest(&boot, layout, &QemuProfile::QEMU_10_1).unwrap();
    let file = cvmkit_pe::PeFile::parse(&kernel)
        .unwrap()
        .authenticode_sha256_sha384()
        .sha384;
    assert_eq!(unpatched, file);
    let patched = kernel_digest(&boot, layout, &QemuProfile::QEMU_9).unwrap();
    assert_ne!(patched, file);
    // The patch touches only the setup header fields QEMU documents.
    let p =
        patch_setup_header(&kernel, Some(initrd.len() as u64), CMDLINE, layout, 0x28000).unwrap();
    let changed: Vec<usize> = (0..kernel.len()).filter(|&i| kernel[i] != p[i]).collect();
    assert!(
        !changed.is_empty() && changed.iter().all(|&i| (0x210..0x22c).contains(&i)),
        "{changed:x?}"
    );
}

#[test]
fn direct_boot_event_lists_are_labelled_and_ordered() {
    let kernel = debian_kernel();
    let initrd = initrd();
    let boot = DirectBoot {
        kernel: &kernel,
        initrd: Some(&initrd),
        cmdline: CMDLINE,
    };
    let layout = MemoryLayout::q35(2 << 30);
    let types = |events: &[Event]| events.iter().map(|e| e.event_type).collect::<Vec<_>>();
    let since = direct_boot_rtmr1(
        &boot,
        layout,
        &QemuProfile::QEMU_9,
        &OvmfProfile::EDK2_202411,
    )
    .unwrap();
    assert_eq!(
        types(&since),
        [
            EventType::EV_EFI_BOOT_SERVICES_APPLICATION,
            EventType::EV_EFI_ACTION,
            EventType::EV_SEPARATOR,
            EventType::EV_EFI_ACTION,
            EventType::EV_EFI_ACTION
        ]
    );
    let before = direct_boot_rtmr1(
        &boot,
        layout,
        &QemuProfile::QEMU_9,
        &OvmfProfile::EDK2_BEFORE_202411,
    )
    .unwrap();
    assert_eq!(before.len(), 4);
    assert!(before
        .iter()
        .all(|e| e.event_type != EventType::EV_SEPARATOR));
    let rtmr2 = direct_boot_rtmr2(
        &boot,
        &OvmfProfile::EDK2_202411,
        LinuxStubMeasurement::CcMeasurement,
    );
    assert_eq!(
        rtmr2[0].label,
        format!("LOADED_IMAGE::LoadOptions \"{CMDLINE} initrd=initrd\"")
    );
    assert_eq!(rtmr2[1].digest, sha384(&initrd));
    assert!(
        direct_boot_rtmr2(&boot, &OvmfProfile::EDK2_202411, LinuxStubMeasurement::None).is_empty()
    );
    let prefixed = OvmfProfile {
        load_options: LoadOptionsLayout::InitrdPrefixed,
        ..OvmfProfile::EDK2_202411
    };
    let r = direct_boot_rtmr2(&boot, &prefixed, LinuxStubMeasurement::CcMeasurement);
    assert_eq!(
        r[0].digest,
        sha384(&uefi::utf16le_nul(&format!("initrd=initrd {CMDLINE}")))
    );
}

// ---------------------------------------------------------------------------------------------
// RTMR0

#[test]
fn rtmr0_events_match_dstack_mr_diagnose() {
    // dstack-mr diagnose --json on Debian's OVMF.fd: RTMR0 event digests by label.
    let data = debian_ovmf();
    let fw = Firmware::parse_named(&data, "OVMF.fd").unwrap();
    let meta = fw.require_tdx_metadata().unwrap();
    let td_hob = [
        (2u64 << 30, "0b8772e5b0b41b83e6044a68397e02f49fb47066b4fbe4917ea2c45c64f323fdacbb37948f821ebaf8bc9c938ba8a749", "bf44ef6c9b6da50074f90150ee7275e24d09af1a8d6570e613f595ebfe58c827fd4017c3256ea5514ba7c834fda4cf98"),
        (4 << 30, "5b684faf8d02a733945f821d9cdd170802e72103977acf66949c9382500283adc90cbec57f8e7653f8bee1cab83689de", "ae1d0763821416966763d7d1c9cf8c10017cf8dd879e96d6f6cfbdb5abed45b43a3682cd66becfe26c69aa1a995209a8"),
        (64 << 30, "8ae1e425351df7992c444586eff99d35af3b779aa2b0e981cb4b73bc5b279f2ade19b6a62a203fc3c3bbdaae80af596d", "aaa17f8f962652e8ca31e289f1f5c441d56cbbcc2808e46b7b69093ea92b4eb8550ce7265c7da009ce72948ce3246a3b"),
    ];
    // Digests dstack-mr takes from elsewhere: its hard-coded CFV (of dstack's own OVMF) and the
    // ACPI blobs it builds from the stand-in QEMU dump.
    let dstack_cfv = digest("344bc51c980ba621aaa00da3ed7436f7d6e549197dfe699515dfa2c6583d95e6412af21c097d473155875ffd561d6790");
    let dstack_acpi = [
        digest("21f6b2c98dc9394fb7ec762a65f73595aad055f1d90dde98dc701479f7455f96236ab8ce5e401298a02aae2921b4218e"),
        digest("0b0426da18b1fc01c08856102419636129c18c04cde7702bdebb8a5da708180a89853541f69e3b0d54218001f4eb4ebf"),
        digest("64d239c6f8c1a36d7fb509626e8469d7eb589185624994a5fa729df1b638ee1edaa58cdb6eaf85bc1333b8c6abbb7978"),
    ];
    let expected_rest = [
        ("SecureBoot", "9dc3a1f80bcec915391dcda5ffbb15e7419f77eab462bbf72b42166fb70d50325e37b36f93537a863769bcf9bedae6fb"),
        ("PK", "6f2e3cbc14f9def86980f5f66fd85e99d63e69a73014ed8a5633ce56eca5b64b692108c56110e22acadcef58c3250f1b"),
        ("KEK", "d607c0efb41c0d757d69bca0615c3a9ac0b1db06c557d992e906c6b7dee40e0e031640c7bfd7bcd35844ef9edeadc6f9"),
        ("db", "08a74f8963b337acb6c93682f934496373679dd26af1089cb4eaf0c30cf260a12e814856385ab8843e56a9acea19e127"),
        ("dbx", "18cc6e01f0c6ea99aa23f8a280423e94ad81d96d0aeb5180504fc0f7a40cb3619dd39bd6a95ec1680a86ed6ab0f9828d"),
        ("separator", "394341b7182cd227c5c6b07ef8000cdfd86136c4292b8e576573ad7ed9ae41019f5818b4b971c9effc60e1ad9f1289f0"),
    ];
    let blobs: Vec<Vec<u8>> = (0..3).map(|i| vec![i as u8]).collect();
    for (memory, hob, dstack_rtmr0) in td_hob {
        let inputs = Rtmr0Inputs {
            acpi: Some(
                blobs
                    .iter()
                    .enumerate()
                    .map(|(i, b)| AcpiBlob {
                        name: format!("blob{i}"),
                        data: b,
                    })
                    .collect(),
            ),
            ..Rtmr0Inputs::default()
        };
        let mut events = rtmr0_events(
            &fw,
            &meta,
            MemoryLayout::q35(memory),
            &inputs,
            &OvmfProfile::EDK2_202411,
        )
        .unwrap();
        assert_eq!(events.len(), 13);
        assert_eq!(hex(&events[0].digest), hob, "TD HOB at {memory:#x}");
        for (event, (label, d)) in events[2..8].iter().zip(expected_rest) {
            assert_eq!(
                (event.label.as_str(), hex(&event.digest)),
                (label, d.to_owned())
            );
        }
        assert_eq!(hex(&events[11].digest), "1dd6f7b457ad880d840d41c961283bab688e94e4b59359ea45686581e90feccea3c624b1226113f824f315eb60ae0a7c");
        assert_eq!(hex(&events[12].digest), "23ada07f5261f12f34a0bd8e46760962d6b4d576a416f1fea1c64bc656b1d28eacf7047ae6e967c58fd2a98bfa74c298");
        // Our CFV is Debian's variable store, not dstack's constant.
        assert_eq!(events[1].digest, sha384(cfv(&fw, &meta).unwrap()));
        assert_ne!(events[1].digest, dstack_cfv);
        events[1].digest = dstack_cfv;
        for (e, d) in events[8..11].iter_mut().zip(dstack_acpi) {
            e.digest = d;
        }
        assert_eq!(hex(&Register::from_events(events).value), dstack_rtmr0);
    }
}

#[test]
fn debian_ovmf_measures_nothing_into_rtmrs() {
    // Debian bookworm's OVMF.fd has no TdTcg2Dxe: RTMR0-2 stay zero whatever boots.
    let data = debian_ovmf();
    let fw = Firmware::parse_named(&data, "OVMF.fd").unwrap();
    let kernel = debian_kernel();
    let config = TdxConfig {
        ovmf: OvmfProfile::NO_CC_MEASUREMENT,
        ..TdxConfig::default()
    };
    let boot = Boot::Direct(DirectBoot {
        kernel: &kernel,
        initrd: None,
        cmdline: "",
    });
    let m = measure(&fw, &config, &boot).unwrap();
    assert_eq!(hex(&m.mrtd), "4c7206f0f483c524f12c366c711e9049030a8d47c471ee5aa9c4999a08de4057fb887fed0744d5631a212967fb231c47");
    for r in [&m.rtmr0, &m.rtmr1, &m.rtmr2] {
        assert_eq!(r.value, [0; 48]);
        assert!(r.events.is_empty());
    }
}

/// Evidence for `OvmfProfile::NO_CC_MEASUREMENT`: Debian's OVMF.fd carries TdxDxe but not
/// TdTcg2Dxe, the driver that produces `EFI_CC_MEASUREMENT_PROTOCOL` and the CCEL table.
#[test]
fn debian_ovmf_has_no_cc_measurement_driver() {
    let data = debian_ovmf();
    // The LZMA-compressed firmware volume (EFI_SECTION_GUID_DEFINED with the LZMA GUID).
    let lzma_guid: cvmkit_ovmf::Guid = "ee4e5898-3914-4259-9d6e-dc7bd79403cf".parse().unwrap();
    let at = data
        .windows(16)
        .position(|w| w == lzma_guid.as_bytes())
        .expect("no LZMA section")
        - 4;
    let size = u32::from_le_bytes([data[at], data[at + 1], data[at + 2], 0]) as usize;
    let data_offset = u16::from_le_bytes([data[at + 20], data[at + 21]]) as usize;
    let mut dxe = Vec::new();
    lzma_rs::lzma_decompress(&mut &data[at + data_offset..at + size], &mut dxe).unwrap();
    let has = |guid: &str| {
        let g: cvmkit_ovmf::Guid = guid.parse().unwrap();
        dxe.windows(16).any(|w| w == g.as_bytes())
    };
    let utf16 = |s: &str| uefi::utf16le_nul(s);
    let has_ui = |name: &str| dxe.windows(utf16(name).len()).any(|w| w == utf16(name));
    assert!(has_ui("TdxDxe"), "the TDX support driver is there");
    assert!(
        has("fdff263d-5f68-4591-87ba-b768f445a9af"),
        "Tcg2Dxe (vTPM) is there"
    );
    assert!(
        !has("f062221e-c607-44c2-b0b4-c3886331d351"),
        "TdTcg2Dxe is absent"
    );
    assert!(!has_ui("TdTcg2Dxe"));
    // gEfiCcFinalEventsTableGuid, which TdTcg2Dxe produces.
    assert!(!has("dd4a4648-2de7-4665-964d-21d9ef5fb446"));
}
