//! Event encodings and orders checked against event logs and quotes of real TDX guests
//! (the repository's testdata/, see testdata/PROVENANCE.md):
//!
//! - dstack `quote-report.json` (qemu 9.2.1, 64 GiB) and `tdx-lite-getquote.json` (qemu 8.2.2,
//!   2 GiB): event logs with payloads, and the quotes' RTMRs;
//! - trustee `CCEL_data_ovmf` (QEMU + OVMF direct boot), `CCEL_data_grub` (QEMU + Ubuntu OVMF,
//!   Secure Boot, shim → grub from disk), `CCEL_data_gcp` (GCE);
//! - Intel's sample QEMU/OVMF log (`go-eventlog/…/CCEL_unpadded.data.bin`);
//! - GCE COS (`go-tdx-guest/ccel/ccel_data.dat`, with its quote) and GCE Ubuntu 24.04
//!   (`go-eventlog-jkl73/ccel/ubuntu-2404-intel-tdx.bin`);
//! - dstack's GCE vTPM log of a systemd-stub UKI (`dstack/tpm_eventlog.bin`).
//!
//! Each event this crate computes from inputs is re-encoded from the log's payload (or from the
//! known inputs) and its digest compared; events whose inputs are not in the fixtures (CFV,
//! ACPI blobs, kernel images) take the log's digest, and the fold must reproduce the quote or the
//! replayed register.

mod common;

use common::{digest, fixture, json, unhex};
use cvmkit_ovmf::{Firmware, Guid};
use cvmkit_tcg_log::{EventLog, HashAlg, Register as LogRegister};
use cvmkit_tdx::uefi::{uefi_variable_data, LoadOption};
use cvmkit_tdx::*;

/// One extended event of a log, with its RTMR index.
#[derive(Debug, Clone)]
struct LogEvent {
    rtmr: u32,
    event_type: EventType,
    digest: Digest384,
    data: Vec<u8>,
}

fn ccel(rel: &str) -> (Vec<LogEvent>, [Digest384; 3]) {
    let log = EventLog::parse(&fixture(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
    let events = log
        .events()
        .iter()
        .filter(|e| e.is_extended())
        .filter_map(|e| match e.register {
            LogRegister::Rtmr(n) => Some(LogEvent {
                rtmr: n,
                event_type: EventType(e.event_type.0),
                digest: e.digest(HashAlg::SHA384)?.as_bytes().try_into().ok()?,
                data: e.data.clone(),
            }),
            _ => None,
        })
        .collect();
    let replay = log.replay();
    let reg = |n| -> Digest384 {
        replay
            .get(LogRegister::Rtmr(n), HashAlg::SHA384)
            .map(|d| d.as_bytes().try_into().unwrap())
            .unwrap_or([0; 48])
    };
    (events, [reg(0), reg(1), reg(2)])
}

/// A dstack quote JSON: its events and its quote's RTMR0-2.
fn dstack(name: &str) -> (Vec<LogEvent>, [Digest384; 3], u64) {
    let v = json(&format!("dstack/{name}"));
    let log = match &v["event_log"] {
        serde_json::Value::String(s) => serde_json::from_str(s).unwrap(),
        other => other.clone(),
    };
    let events = log
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["imr"].as_u64().unwrap() < 3)
        .map(|e| LogEvent {
            rtmr: e["imr"].as_u64().unwrap() as u32,
            event_type: EventType(e["event_type"].as_u64().unwrap() as u32),
            digest: digest(e["digest"].as_str().unwrap()),
            data: unhex(e["event_payload"].as_str().unwrap_or("")),
        })
        .collect();
    let expected = json("dstack/expected-values.derived.json");
    let report = &expected[name]["quote_td_report"];
    let quote = [0, 1, 2].map(|i| digest(report[format!("rt_mr{i}")].as_str().unwrap()));
    let vm_config = match &v["vm_config"] {
        serde_json::Value::String(s) => serde_json::from_str(s).unwrap(),
        other => other.clone(),
    };
    (events, quote, vm_config["memory_size"].as_u64().unwrap())
}

fn rtmr(events: &[LogEvent], n: u32) -> Vec<&LogEvent> {
    events.iter().filter(|e| e.rtmr == n).collect()
}

/// `UEFI_VARIABLE_DATA` fields of a payload: vendor, name, data.
fn variable(payload: &[u8]) -> (Guid, String, Vec<u8>) {
    let guid = Guid::from_bytes_le(payload[..16].try_into().unwrap());
    let name_len = u64::from_le_bytes(payload[16..24].try_into().unwrap()) as usize;
    let data_len = u64::from_le_bytes(payload[24..32].try_into().unwrap()) as usize;
    let units: Vec<u16> = payload[32..32 + 2 * name_len]
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    let name = String::from_utf16(&units).unwrap();
    let data = payload[32 + 2 * name_len..32 + 2 * name_len + data_len].to_vec();
    (guid, name, data)
}

/// The TDVF memory layout of edk2's OvmfPkgX64, shared by Debian's and dstack's OVMF and the
/// trustee/Intel logs' firmware (dstack's `td_hob` witness `80100904000609020b021010` encodes it).
fn ovmf_metadata() -> cvmkit_ovmf::TdxMetadata {
    let data = testing::tiny_tdvf();
    Firmware::parse(&data)
        .unwrap()
        .require_tdx_metadata()
        .unwrap()
}

const LOGS: [&str; 6] = [
    "trustee/CCEL_data_ovmf",
    "trustee/CCEL_data_grub",
    "trustee/CCEL_data_gcp",
    "go-eventlog/eventlogs/ccel/CCEL_unpadded.data.bin",
    "go-tdx-guest/ccel/ccel_data.dat",
    "go-eventlog-jkl73/ccel/ubuntu-2404-intel-tdx.bin",
];

fn all_logs() -> Vec<(String, Vec<LogEvent>)> {
    let mut logs: Vec<(String, Vec<LogEvent>)> =
        LOGS.iter().map(|l| (l.to_string(), ccel(l).0)).collect();
    for name in ["quote-report.json", "tdx-lite-getquote.json"] {
        logs.push((name.to_owned(), dstack(name).0));
    }
    logs
}

#[test]
fn uefi_variable_events_reencode_from_their_payloads() {
    let mut checked = 0;
    for (name, events) in all_logs() {
        for e in events.iter().filter(|e| !e.data.is_empty()) {
            match e.event_type {
                EventType::EV_EFI_VARIABLE_DRIVER_CONFIG => {
                    let (guid, var, data) = variable(&e.data);
                    let encoded = uefi_variable_data(&guid, &var, &data);
                    assert_eq!(encoded, e.data, "{name}: {var}");
                    assert_eq!(sha384(&encoded), e.digest, "{name}: {var}");
                    checked += 1;
                }
                EventType::EV_EFI_VARIABLE_BOOT => {
                    let (guid, var, data) = variable(&e.data);
                    assert_eq!(uefi_variable_data(&guid, &var, &data), e.data);
                    // edk2 hashes only the variable data of boot variables.
                    assert_eq!(sha384(&data), e.digest, "{name}: {var}");
                    if var == "Boot0000" {
                        assert_eq!(data, LoadOption::ovmf_ui_app().to_bytes(), "{name}: UiApp");
                    }
                    checked += 1;
                }
                _ => {}
            }
        }
    }
    assert!(checked > 60, "{checked}");
}

#[test]
fn separators_and_actions_match_every_log() {
    let sep = Event::separator().digest;
    for (name, events) in all_logs() {
        for e in &events {
            if e.event_type == EventType::EV_SEPARATOR {
                assert_eq!(e.digest, sep, "{name}");
            }
            if e.event_type == EventType::EV_EFI_ACTION && !e.data.is_empty() {
                let text = std::str::from_utf8(&e.data).unwrap();
                assert_eq!(Event::action(text).digest, e.digest, "{name}: {text}");
            }
        }
    }
}

#[test]
fn td_hob_matches_real_guests_at_2_8_10_and_64_gib() {
    let meta = ovmf_metadata();
    let cases: [(&str, u64); 5] = [
        ("dstack tdx-lite-getquote.json", 2 << 30),
        ("dstack quote-report.json", 64 << 30),
        ("trustee/CCEL_data_ovmf", 2 << 30),
        ("go-eventlog/eventlogs/ccel/CCEL_unpadded.data.bin", 8 << 30),
        ("trustee/CCEL_data_grub", 10 << 30),
    ];
    for (source, memory) in cases {
        let first = if let Some(name) = source.strip_prefix("dstack ") {
            dstack(name).0[0].clone()
        } else {
            ccel(source).0[0].clone()
        };
        assert_eq!(first.event_type, EventType::EV_EFI_HANDOFF_TABLES2);
        let hob = td_hob(&meta, None, MemoryLayout::q35(memory)).unwrap();
        assert_eq!(sha384(&hob), first.digest, "{source} at {memory:#x}");
        if !first.data.is_empty() {
            // "TdxTable", one table, the TD_HOB section's GPA as its address.
            assert_eq!(first.data.get(1..9), Some(&b"TdxTable"[..]));
            assert_eq!(first.data[34..42], 0x80_9000u64.to_le_bytes());
        }
    }
}

/// RTMR0 as this crate computes it for an OVMF direct boot, with the log's CFV and ACPI digests.
fn rtmr0_with_log_digests(
    log0: &[&LogEvent],
    memory: u64,
    secure_boot: SecureBootVariables<'_>,
    ovmf: &OvmfProfile,
) -> Vec<Event> {
    let meta = ovmf_metadata();
    let mut events = vec![Event::hashed(
        "TD HOB",
        EventType::EV_EFI_HANDOFF_TABLES2,
        &td_hob(&meta, None, MemoryLayout::q35(memory)).unwrap(),
    )];
    assert_eq!(
        log0[1].event_type,
        EventType::EV_EFI_PLATFORM_FIRMWARE_BLOB2
    );
    events.push(Event::new(
        "CFV",
        EventType::EV_EFI_PLATFORM_FIRMWARE_BLOB2,
        log0[1].digest,
    ));
    events.extend(secure_boot_events(&secure_boot));
    events.push(Event::separator());
    for e in log0
        .iter()
        .filter(|e| e.event_type == EventType::EV_PLATFORM_CONFIG_FLAGS)
    {
        events.push(Event::new("ACPI DATA", e.event_type, e.digest));
    }
    events.extend(BootVariables::ovmf_direct_boot().events());
    if ovmf.separator == SeparatorLayout::Edk2Before202411 {
        events.push(Event::separator());
    }
    events
}

fn same_events(ours: &[Event], log: &[&LogEvent], what: &str) {
    let ours: Vec<(EventType, Digest384)> = ours.iter().map(|e| (e.event_type, e.digest)).collect();
    let theirs: Vec<(EventType, Digest384)> =
        log.iter().map(|e| (e.event_type, e.digest)).collect();
    assert_eq!(ours, theirs, "{what}");
}

#[test]
fn dstack_quotes_reproduce_from_this_crates_events() {
    for name in ["quote-report.json", "tdx-lite-getquote.json"] {
        let (events, quote, memory) = dstack(name);
        let log0 = rtmr(&events, 0);
        let ours0 = rtmr0_with_log_digests(
            &log0,
            memory,
            SecureBootVariables::absent(),
            &OvmfProfile::EDK2_202411,
        );
        same_events(&ours0, &log0, name);
        assert_eq!(Register::from_events(ours0).value, quote[0], "{name} RTMR0");

        // RTMR1: the kernel (digest from the log: the image is not in the fixtures), then
        // the ReadyToBoot and ExitBootServices events of edk2 ≥ 202411.
        let log1 = rtmr(&events, 1);
        let mut ours1 = vec![Event::new(
            "kernel",
            EventType::EV_EFI_BOOT_SERVICES_APPLICATION,
            log1[0].digest,
        )];
        ours1.push(Event::action("Calling EFI Application from Boot Option"));
        ours1.push(Event::separator());
        ours1.push(Event::action("Exit Boot Services Invocation"));
        ours1.push(Event::action("Exit Boot Services Returned with Success"));
        same_events(&ours1, &log1, name);
        assert_eq!(Register::from_events(ours1).value, quote[1], "{name} RTMR1");

        // RTMR2: the kernel stub's two tagged events.
        let log2 = rtmr(&events, 2);
        assert_eq!(log2.len(), 2);
        assert!(log2.iter().all(|e| e.event_type == EventType::EV_EVENT_TAG));
        let r2 = fold(log2.iter().map(|e| &e.digest));
        assert_eq!(r2, quote[2], "{name} RTMR2");
    }
}

#[test]
fn edk2_before_202411_puts_the_second_separator_in_rtmr0() {
    let cases = [
        (
            "trustee/CCEL_data_ovmf",
            2u64 << 30,
            SecureBootVariables::absent(),
        ),
        (
            "go-eventlog/eventlogs/ccel/CCEL_unpadded.data.bin",
            8 << 30,
            SecureBootVariables::setup_mode(),
        ),
    ];
    for (source, memory, sb) in cases {
        let (events, replay) = ccel(source);
        let log0 = rtmr(&events, 0);
        let ours0 = rtmr0_with_log_digests(&log0, memory, sb, &OvmfProfile::EDK2_BEFORE_202411);
        same_events(&ours0, &log0, source);
        assert_eq!(Register::from_events(ours0).value, replay[0]);
        let log1 = rtmr(&events, 1);
        let ours1 = vec![
            Event::new(
                "kernel",
                EventType::EV_EFI_BOOT_SERVICES_APPLICATION,
                log1[0].digest,
            ),
            Event::action("Calling EFI Application from Boot Option"),
            Event::action("Exit Boot Services Invocation"),
            Event::action("Exit Boot Services Returned with Success"),
        ];
        same_events(&ours1, &log1, source);
        assert_eq!(Register::from_events(ours1).value, replay[1]);
    }
}

#[test]
fn secure_boot_on_variables_and_disk_boot_variables_of_the_grub_log() {
    // QEMU + Ubuntu OVMF with Secure Boot keys enrolled, booting shim → grub from disk, 10 GiB.
    let (events, _) = ccel("trustee/CCEL_data_grub");
    let log0 = rtmr(&events, 0);
    let vars: Vec<Vec<u8>> = log0[2..7].iter().map(|e| variable(&e.data).2).collect();
    let sb = SecureBootVariables {
        secure_boot: &vars[0],
        pk: &vars[1],
        kek: &vars[2],
        db: &vars[3],
        dbx: &vars[4],
        dbt: None,
    };
    assert_eq!(sb.secure_boot, [1]);
    let mut boot = BootVariables {
        boot_order: vec![],
        options: Default::default(),
    };
    for e in log0
        .iter()
        .filter(|e| e.event_type == EventType::EV_EFI_VARIABLE_BOOT)
    {
        let (_, name, data) = variable(&e.data);
        if name == "BootOrder" {
            boot.boot_order = data
                .chunks_exact(2)
                .map(|c| u16::from_le_bytes([c[0], c[1]]))
                .collect();
        } else {
            boot.options
                .insert(u16::from_str_radix(&name[4..], 16).unwrap(), data);
        }
    }
    assert_eq!(boot.boot_order, [1, 0]);
    let meta = ovmf_metadata();
    let mut ours = vec![Event::hashed(
        "TD HOB",
        EventType::EV_EFI_HANDOFF_TABLES2,
        &td_hob(&meta, None, MemoryLayout::q35(10 << 30)).unwrap(),
    )];
    ours.push(Event::new(
        "CFV",
        EventType::EV_EFI_PLATFORM_FIRMWARE_BLOB2,
        log0[1].digest,
    ));
    ours.extend(secure_boot_events(&sb));
    ours.push(Event::separator());
    ours.extend(
        log0[8..11]
            .iter()
            .map(|e| Event::new("ACPI", e.event_type, e.digest)),
    );
    ours.extend(boot.events());
    ours.push(Event::separator()); // edk2 before 202411
                                   // After these come EV_EFI_VARIABLE_AUTHORITY events (db/MOK entries that verified shim and
                                   // grub), which Secure Boot adds and this crate does not model.
    same_events(&ours, &log0[..ours.len()], "CCEL_data_grub RTMR0 prefix");
    assert!(log0[ours.len()..]
        .iter()
        .all(|e| e.event_type == EventType::EV_EFI_VARIABLE_AUTHORITY));
}

/// A disk image rebuilt from a `UEFI_GPT_DATA` payload: the header at LBA 1, the non-empty
/// entries first in the entry array (zeros after), protective MBR left out.
fn disk_from_gpt_event(payload: &[u8]) -> Vec<u8> {
    let header = &payload[..GPT_HEADER_SIZE];
    let count = u64::from_le_bytes(payload[92..100].try_into().unwrap()) as usize;
    let entries_lba = u64::from_le_bytes(header[72..80].try_into().unwrap()) as usize;
    let n = u32::from_le_bytes(header[80..84].try_into().unwrap()) as usize;
    let size = u32::from_le_bytes(header[84..88].try_into().unwrap()) as usize;
    let mut disk = vec![0u8; entries_lba * 512 + n * size];
    disk[512..512 + GPT_HEADER_SIZE].copy_from_slice(header);
    let entries = &payload[100..100 + count * size];
    disk[entries_lba * 512..entries_lba * 512 + entries.len()].copy_from_slice(entries);
    disk
}

#[test]
fn gpt_events_reencode_from_a_disk_image() {
    for source in [
        "trustee/CCEL_data_grub",
        "trustee/CCEL_data_gcp",
        "go-tdx-guest/ccel/ccel_data.dat",
        "go-eventlog-jkl73/ccel/ubuntu-2404-intel-tdx.bin",
    ] {
        let (events, _) = ccel(source);
        let gpt = events
            .iter()
            .find(|e| e.event_type == EventType::EV_EFI_GPT_EVENT)
            .unwrap();
        assert_eq!(gpt.rtmr, 1, "{source}");
        let disk = disk_from_gpt_event(&gpt.data);
        let data = uefi_gpt_data(&disk, 512, Some(source)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(data, gpt.data, "{source}");
        assert_eq!(sha384(&data), gpt.digest, "{source}");
    }
}

#[test]
fn gce_disk_boots_have_the_rtmr1_order_of_this_crate() {
    // GCE COS 113 (with the quote) and GCE Ubuntu 24.04 (16 boot options failed first):
    // Calling, separator, [Returning, Calling]×n, GPT, images (shim, grub: digests from the log),
    // ExitBootServices ×2.
    let quote_rtmr1 = digest(
        json("go-tdx-guest/expected.derived.json")["ccel/cos-113-tdx-quote.dat"]["rt_mr1"]
            .as_str()
            .unwrap(),
    );
    for (source, failed) in [
        ("go-tdx-guest/ccel/ccel_data.dat", 0),
        ("go-eventlog-jkl73/ccel/ubuntu-2404-intel-tdx.bin", 16),
    ] {
        let (events, replay) = ccel(source);
        let log1 = rtmr(&events, 1);
        let gpt = log1
            .iter()
            .find(|e| e.event_type == EventType::EV_EFI_GPT_EVENT)
            .unwrap();
        let mut ours = vec![
            Event::action("Calling EFI Application from Boot Option"),
            Event::separator(),
        ];
        for _ in 0..failed {
            ours.push(Event::action(
                "Returning from EFI Application from Boot Option",
            ));
            ours.push(Event::action("Calling EFI Application from Boot Option"));
        }
        ours.push(Event::hashed(
            "GPT",
            EventType::EV_EFI_GPT_EVENT,
            &uefi_gpt_data(&disk_from_gpt_event(&gpt.data), 512, None).unwrap(),
        ));
        for e in log1
            .iter()
            .filter(|e| e.event_type == EventType::EV_EFI_BOOT_SERVICES_APPLICATION)
        {
            ours.push(Event::new("image", e.event_type, e.digest));
        }
        ours.push(Event::action("Exit Boot Services Invocation"));
        ours.push(Event::action("Exit Boot Services Returned with Success"));
        same_events(&ours, &log1, source);
        assert_eq!(Register::from_events(ours).value, replay[1], "{source}");
        if failed == 0 {
            assert_eq!(replay[1], quote_rtmr1);
        }
    }
}

#[test]
fn systemd_stub_uki_log_has_the_modelled_order_and_name_digests() {
    // dstack's GCE vTPM log of a systemd-stub UKI booted from disk: PCR 2-6 (RTMR1 in a TD) and
    // PCR 8-15 (RTMR2) in order, separators aside.
    let log = EventLog::parse(&fixture("dstack/tpm_eventlog.bin")).unwrap();
    let pcr = |e: &cvmkit_tcg_log::Event| match e.register {
        LogRegister::Pcr(n) => n,
        _ => unreachable!(),
    };
    let after_calling: Vec<_> = log
        .events()
        .iter()
        .skip_while(|e| e.event_type.0 != EventType::EV_EFI_ACTION.0)
        .filter(|e| e.event_type.0 != EventType::EV_SEPARATOR.0)
        .collect();
    let rtmr1: Vec<u32> = after_calling
        .iter()
        .filter(|e| (2..=6).contains(&pcr(e)))
        .map(|e| e.event_type.0)
        .collect();
    assert_eq!(
        rtmr1,
        [
            EventType::EV_EFI_ACTION.0,
            EventType::EV_EFI_GPT_EVENT.0,
            EventType::EV_EFI_BOOT_SERVICES_APPLICATION.0, // the UKI
            EventType::EV_EFI_BOOT_SERVICES_APPLICATION.0, // .linux, LoadImage()d by the stub
            EventType::EV_EFI_ACTION.0,
            EventType::EV_EFI_ACTION.0,
        ]
    );
    let rtmr2: Vec<_> = after_calling
        .iter()
        .filter(|e| (8..=15).contains(&pcr(e)))
        .collect();
    let sections = [".linux", ".osrel", ".cmdline", ".initrd", ".uname", ".sbat"];
    assert_eq!(rtmr2.len(), 2 * sections.len() + 2);
    for (i, name) in sections.iter().enumerate() {
        assert!(pcr11_sections(256).unwrap().contains(name));
        let name_event = rtmr2[2 * i];
        assert_eq!(name_event.event_type.0, EventType::EV_IPL.0);
        let mut nul = name.as_bytes().to_vec();
        nul.push(0);
        assert_eq!(
            name_event.digest(HashAlg::SHA384).unwrap().as_bytes(),
            sha384(&nul),
            "{name}"
        );
    }
    // The sections appear in the stub's order.
    let positions: Vec<usize> = sections
        .iter()
        .map(|s| pcr11_sections(256).unwrap().iter().position(|m| m == s).unwrap())
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(rtmr2[12].event_type.0, EventType::EV_EVENT_TAG.0);
    assert_eq!(rtmr2[13].event_type.0, EventType::EV_EVENT_TAG.0);
}

#[test]
fn captured_values_read_from_a_dstack_event_log() {
    let text = String::from_utf8(fixture("dstack/quote-report.json")).unwrap();
    let c = Captured::from_json(&text).unwrap();
    let (_, quote, _) = dstack("quote-report.json");
    for (captured, quote) in c.rtmr.iter().zip(quote) {
        assert_eq!(captured.as_ref().unwrap().value, quote);
    }
    let r0 = c.rtmr[0].clone().unwrap();
    let config = TdxConfig {
        rtmr0: Rtmr0Source::captured(r0.clone()),
        ..TdxConfig::default()
    };
    let data = testing::tiny_tdvf();
    let fw = Firmware::parse(&data).unwrap();
    let kernel = testing::tiny_bzimage();
    let m = measure(
        &fw,
        &config,
        &Boot::Direct(DirectBoot {
            kernel: &kernel,
            initrd: None,
            cmdline: "",
        }),
    )
    .unwrap();
    assert_eq!(m.rtmr0.as_ref(), Some(&r0));
    assert_eq!(m.rtmr0.as_ref().unwrap().events.len(), 13);
}
