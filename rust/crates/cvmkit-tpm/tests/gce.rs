//! The GCE firmware models against real GCE vTPM logs (testdata/PROVENANCE.md). The images in
//! those logs are not ours, so the registers that hold an image digest are checked event by
//! event (our GPT event rebuilt from the log's disk layout, the image events by type, the fixed
//! events by digest), and the registers without one by value.
//!
//! - `dstack/tpm_eventlog.bin`: a GCE **TDX** VM (dstack on c3) booting a systemd-stub UKI.
//! - `go-eventlog-jkl73/tpm/cos-121-amd-sev.bin`, `go-tpm-tools/eventlogs/
//!   confidential-gke-debug-251000_eventlog.bin`: GCE VMs without TDX (SEV), shim → GRUB.

mod util;

use cvmkit_tcg_log::{Event, EventLog, HashAlg, Register};
use cvmkit_tpm::{predict, Bank, EventType, Firmware, RegisterPrediction, TpmOptions};
use cvmkit_uki::LinuxVirtualSize;
use util::*;

const BANKS: [(Bank, HashAlg); 3] = [
    (Bank::Sha1, HashAlg::SHA1),
    (Bank::Sha256, HashAlg::SHA256),
    (Bank::Sha384, HashAlg::SHA384),
];

fn log(rel: &str) -> EventLog {
    EventLog::parse(&cvmkit_testutil::read_testdata(rel)).unwrap()
}

fn pcr_events(log: &EventLog, pcr: u32) -> Vec<&Event> {
    log.events().iter().filter(|e| e.register == Register::Pcr(pcr) && e.is_extended()).collect()
}

/// A disk whose GPT is the one a `UEFI_GPT_DATA` payload records (header at LBA 1, the
/// non-empty entries first in the array): what the VM booted, as far as the firmware hashed it.
fn gpt_data_of_the_logged_disk(log: &EventLog) -> Vec<u8> {
    let gpt = log
        .events()
        .iter()
        .find(|e| e.event_type.0 == EventType::EV_EFI_GPT_EVENT.0)
        .unwrap();
    let p = &gpt.data;
    let header = &p[..92];
    let count = u64::from_le_bytes(p[92..100].try_into().unwrap()) as usize;
    let entries_lba = u64::from_le_bytes(header[72..80].try_into().unwrap()) as usize;
    let n = u32::from_le_bytes(header[80..84].try_into().unwrap()) as usize;
    let size = u32::from_le_bytes(header[84..88].try_into().unwrap()) as usize;
    let mut disk = vec![0u8; entries_lba * 512 + n * size];
    disk[512..512 + 92].copy_from_slice(header);
    disk[entries_lba * 512..entries_lba * 512 + count * size].copy_from_slice(&p[100..100 + count * size]);
    let data = cvmkit_tdx::uefi_gpt_data(&disk, 512, None).unwrap();
    assert_eq!(data, *p, "the GPT event re-encodes from the disk");
    data
}

fn uki() -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let initrd = build_initrd(dir.path());
    build_uki(Stub::V257, &initrd, LinuxVirtualSize::FileSize)
}

fn types(events: &[&Event]) -> Vec<u32> {
    events.iter().map(|e| e.event_type.0).collect()
}

fn predicted_types(r: &RegisterPrediction) -> Vec<u32> {
    r.events.iter().map(|e| e.event_type.0).collect()
}

/// In a TD, Google's firmware logs the GPT and the images started into PCR 2: PCR 4 (action,
/// separator) and PCR 5 (separator, ExitBootServices) are the same for every image and equal the
/// real log's values in every bank; PCR 2 has the log's events, the separator and our GPT event
/// with the log's digests, the UKI and `.linux` where the log has dstack's.
#[test]
fn gce_td_places_the_boot_manager_events_as_a_real_gce_td() {
    let log = log("dstack/tpm_eventlog.bin");
    let replay = log.replay();
    let gpt = gpt_data_of_the_logged_disk(&log);
    let opts = TpmOptions::default().with_firmware(Firmware::GceTd).with_gpt_data(Some(gpt));
    let p = predict(&uki(), &opts).unwrap();
    let pcrs: Vec<u32> = p.registers.iter().map(|r| r.pcr).collect();
    assert_eq!(pcrs, [2, 2, 2, 4, 4, 4, 5, 5, 5, 11, 11, 11]);
    for (bank, alg) in BANKS {
        for pcr in [4, 5] {
            let want = replay.get(Register::Pcr(pcr), alg).unwrap();
            assert_eq!(p.get(pcr, bank).unwrap().value, want.as_bytes(), "PCR {pcr} {bank}");
        }
        let ours = p.get(2, bank).unwrap();
        let theirs = pcr_events(&log, 2);
        assert_eq!(predicted_types(ours), types(&theirs), "PCR 2 {bank}");
        for (i, (o, t)) in ours.events.iter().zip(&theirs).take(2).enumerate() {
            assert_eq!(o.digest, t.digest(alg).unwrap().as_bytes(), "PCR 2 event {i} {bank}");
        }
        // The same register with dstack's image digests in place of ours is the log's value.
        let mut v = bank.zero();
        for (i, e) in ours.events.iter().enumerate() {
            let d = if i < 2 { e.digest.clone() } else { theirs[i].digest(alg).unwrap().as_bytes().to_vec() };
            v = bank.extend(&v, &d);
        }
        assert_eq!(v, replay.get(Register::Pcr(2), alg).unwrap().as_bytes(), "PCR 2 {bank}");
    }
}

/// Without TDX, Google's firmware places them as OVMF does: PCR 5 (separator, GPT,
/// ExitBootServices) equals the real logs' values in every bank; PCR 4 starts with the same
/// action and separator, then the images started (the logs' are shim, GRUB and a kernel).
#[test]
fn gce_without_td_places_the_boot_manager_events_as_real_gce_sev_vms() {
    let uki = uki();
    for source in ["go-eventlog-jkl73/tpm/cos-121-amd-sev.bin", "go-tpm-tools/eventlogs/confidential-gke-debug-251000_eventlog.bin"] {
        let log = log(source);
        let replay = log.replay();
        let opts = TpmOptions::default().with_firmware(Firmware::Gce).with_gpt_data(Some(gpt_data_of_the_logged_disk(&log)));
        let p = predict(&uki, &opts).unwrap();
        let pcrs: Vec<u32> = p.registers.iter().map(|r| r.pcr).collect();
        assert_eq!(pcrs, [4, 4, 4, 5, 5, 5, 11, 11, 11], "{source}");
        for (bank, alg) in BANKS {
            let want = replay.get(Register::Pcr(5), alg).unwrap();
            assert_eq!(p.get(5, bank).unwrap().value, want.as_bytes(), "{source}: PCR 5 {bank}");
            let ours = p.get(4, bank).unwrap();
            let theirs = pcr_events(&log, 4);
            for (i, (o, t)) in ours.events.iter().zip(&theirs).take(2).enumerate() {
                assert_eq!(o.event_type.0, t.event_type.0, "{source}");
                assert_eq!(o.digest, t.digest(alg).unwrap().as_bytes(), "{source}: PCR 4 event {i} {bank}");
            }
            let images = |t: &[u32]| t[2..].iter().all(|&t| t == EventType::EV_EFI_BOOT_SERVICES_APPLICATION.0);
            assert!(images(&predicted_types(ours)) && images(&types(&theirs)), "{source}");
            assert_eq!(ours.events.len(), 4, "the UKI and its .linux");
        }
    }
}

/// OVMF's prediction is what it was: PCR 4 and PCR 11, a GPT given or not; a GCE model without
/// the disk's GPT leaves out the register the GPT goes into rather than guess it.
#[test]
fn ovmf_ignores_the_gpt_and_gce_without_one_predicts_less() {
    let uki = uki();
    let log = log("dstack/tpm_eventlog.bin");
    let gpt = gpt_data_of_the_logged_disk(&log);
    let plain = predict(&uki, &TpmOptions::default()).unwrap();
    let with_gpt = predict(&uki, &TpmOptions::default().with_gpt_data(Some(gpt))).unwrap();
    assert_eq!(plain, with_gpt);
    assert_eq!(plain.registers.iter().map(|r| r.pcr).collect::<Vec<_>>(), [4, 4, 4, 11, 11, 11]);
    let td = predict(&uki, &TpmOptions::default().with_firmware(Firmware::GceTd)).unwrap();
    assert_eq!(td.registers.iter().map(|r| r.pcr).collect::<Vec<_>>(), [4, 4, 4, 5, 5, 5, 11, 11, 11]);
    let vm = predict(&uki, &TpmOptions::default().with_firmware(Firmware::Gce)).unwrap();
    assert_eq!(vm.registers.iter().map(|r| r.pcr).collect::<Vec<_>>(), [4, 4, 4, 11, 11, 11]);
    // Off TDX, GCE's PCR 4 is OVMF's (no boot option failed before the disk on GCE).
    assert_eq!(vm.get(4, Bank::Sha256), plain.get(4, Bank::Sha256));
    assert_eq!(td.get(11, Bank::Sha384), plain.get(11, Bank::Sha384));
}
