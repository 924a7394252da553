//! Peers without a boot: systemd-measure 252 (Debian's, `/usr/lib/systemd/systemd-measure`) on a
//! UKI from the real 252 stub and kernel, for every boot phase, and on the sections it knows of
//! a UKI from the real 257 stub (for 257 the real boot in tests/boot.rs is the oracle); and the
//! event encoding of a newer systemd-stub in a real GCE vTPM log (testdata/dstack/tpm_eventlog.bin).

mod util;

use std::process::Command;

use cvmkit_tcg_log::{EventLog, HashAlg, Register};
use cvmkit_tpm::{predict, Bank, EventType, TpmOptions, PHASES_BOOTED};
use cvmkit_uki::LinuxVirtualSize;
use util::*;

#[test]
fn stub_252_systemd_measure_agrees_for_every_phase() {
    let dir = tempfile::tempdir().unwrap();
    let initrd = build_initrd(dir.path());
    let uki = build_uki(Stub::V252, &initrd, LinuxVirtualSize::FileSize);
    // systemd-measure's default phases: each prefix of enter-initrd:leave-initrd:sysinit:ready.
    for n in 0..=PHASES_BOOTED.len() {
        let phases = &PHASES_BOOTED[..n];
        let p = predict(
            &uki,
            &TpmOptions::default().with_phases(phases.iter().copied()),
        )
        .unwrap();
        let oracle = systemd_measure_phase(&uki, dir.path(), &[], &phases.join(":"));
        assert_eq!(oracle.len(), 3);
        for (bank, value) in oracle {
            let bank: Bank = bank.parse().unwrap();
            assert_eq!(
                hex(&p.get(11, bank).unwrap().value),
                value,
                "PCR 11 {bank} after phases {phases:?}"
            );
        }
    }
}

/// The dstack GCE log (testdata/PROVENANCE.md, dstack) of a newer systemd-stub: its PCR 11 events
/// are name/content pairs of EV_IPL events whose data is the section name in UTF-16 with NUL; the
/// name event's digest is H(name ‖ NUL) in every bank; the sections come in the order of the
/// ≥ 254 list and include `.uname` and `.sbat`, which 252 does not measure.
#[test]
fn newer_stub_event_encoding_in_a_real_log() {
    let bytes = cvmkit_testutil::read_testdata("dstack/tpm_eventlog.bin");
    let log = EventLog::parse(&bytes).unwrap();
    let events: Vec<_> = log
        .events()
        .iter()
        .filter(|e| e.register == Register::Pcr(11) && e.is_extended())
        .collect();
    assert_eq!(events.len() % 2, 0);
    let mut names = Vec::new();
    for pair in events.chunks(2) {
        let utf16: Vec<u16> = pair[0]
            .data
            .chunks(2)
            .map(|c| u16::from_le_bytes([c[0], c.get(1).copied().unwrap_or(0)]))
            .collect();
        assert_eq!(utf16.last(), Some(&0), "NUL-terminated UTF-16 event data");
        let name = String::from_utf16(&utf16[..utf16.len() - 1]).unwrap();
        for e in pair {
            assert_eq!(e.event_type, EventType::EV_IPL);
            assert_eq!(e.data, pair[0].data, "both events carry the name");
        }
        let mut with_nul = name.clone().into_bytes();
        with_nul.push(0);
        for bank in [Bank::Sha1, Bank::Sha256, Bank::Sha384] {
            let logged = pair[0].digest(HashAlg(bank.tpm_alg_id())).unwrap();
            assert_eq!(logged.as_bytes(), bank.hash(&with_nul), "{name} {bank}");
        }
        names.push(name);
    }
    assert_eq!(
        names,
        [".linux", ".osrel", ".cmdline", ".initrd", ".uname", ".sbat"]
    );
    let order = cvmkit_tpm::pcr11_sections(255).unwrap();
    let positions: Vec<usize> = names
        .iter()
        .map(|n| order.iter().position(|o| o == n).unwrap())
        .collect();
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "{names:?} in {order:?}"
    );
    assert!(!cvmkit_tpm::pcr11_sections(252).unwrap().contains(&".uname"));
}

/// The real stub names itself in `.sdmagic`; a UKI built from it predicts without a boot, with
/// `.linux` (LoadImage()) last in PCR 4.
fn real_stub_is_detected(stub: Stub) -> cvmkit_tpm::TpmPrediction {
    let dir = tempfile::tempdir().unwrap();
    let initrd = build_initrd(dir.path());
    let uki = build_uki(stub, &initrd, LinuxVirtualSize::FileSize);
    let p = predict(&uki, &TpmOptions::default()).unwrap();
    assert_eq!(p.stub.version, stub.major());
    let info = p.stub.loader_info.clone().unwrap();
    assert!(
        info.starts_with(&format!("systemd-stub {}.", stub.major())),
        "{info}"
    );
    assert_eq!(
        p.stub.note(),
        format!(
            "predicted for systemd-stub {} (detected from the stub's .sdmagic: {info:?})",
            stub.major()
        )
    );
    assert_eq!(p.registers.len(), 6);
    let pcr4 = p.get(4, Bank::Sha256).unwrap();
    let kernel = std::fs::read(input("KERNEL")).unwrap();
    let kernel_digest = cvmkit_pe::PeFile::parse(&kernel)
        .unwrap()
        .authenticode_sha256_sha384();
    assert_eq!(pcr4.events.last().unwrap().digest, kernel_digest.sha256);
    p
}

#[test]
fn stub_252_is_detected() {
    let p = real_stub_is_detected(Stub::V252);
    let labels: Vec<&str> = p
        .get(11, Bank::Sha256)
        .unwrap()
        .events
        .iter()
        .map(|e| e.label.as_str())
        .collect();
    assert!(!labels.contains(&".uname name") && !labels.contains(&".sbat name"));
}

/// 257 measures `.uname` and the stub's own `.sbat` after the sections systemd-measure 252 knows:
/// folding the prediction's events up to `.initrd` gives systemd-measure's value, and the two
/// further pairs hash the names and the sections' bytes (read here with objcopy).
#[test]
fn stub_257_is_detected_and_systemd_measure_252_agrees_on_its_sections() {
    let p = real_stub_is_detected(Stub::V257);
    let dir = tempfile::tempdir().unwrap();
    let initrd = build_initrd(dir.path());
    let uki = build_uki(Stub::V257, &initrd, LinuxVirtualSize::FileSize);
    let oracle = systemd_measure(&uki, dir.path());
    assert_eq!(oracle.len(), 3);
    let path = dir.path().join("uki.efi");
    std::fs::write(&path, &uki).unwrap();
    let section = |name: &str| {
        let out = dir.path().join(format!("objcopy{name}"));
        run(Command::new(require_tool("objcopy", "binutils"))
            .args(["-O", "binary"])
            .arg(format!("--only-section={name}"))
            .arg(&path)
            .arg(&out));
        std::fs::read(&out).unwrap()
    };
    for (bank, value) in oracle {
        let bank: Bank = bank.parse().unwrap();
        let events = &p.get(11, bank).unwrap().events;
        let labels: Vec<&str> = events.iter().map(|e| e.label.as_str()).collect();
        assert_eq!(
            labels,
            [
                ".linux name",
                ".linux content",
                ".osrel name",
                ".osrel content",
                ".cmdline name",
                ".cmdline content",
                ".initrd name",
                ".initrd content",
                ".uname name",
                ".uname content",
                ".sbat name",
                ".sbat content",
            ]
        );
        let folded = events[..8]
            .iter()
            .fold(bank.zero(), |v, e| bank.extend(&v, &e.digest));
        assert_eq!(hex(&folded), value, "{bank}: PCR 11 up to .initrd");
        for (i, name) in [(8, ".uname"), (10, ".sbat")] {
            assert_eq!(events[i].digest, bank.hash(format!("{name}\0").as_bytes()));
            // objcopy writes the raw data, padded to the file alignment; the stub measures
            // VirtualSize bytes (the UKI's .uname/.sbat have no zero fill).
            let pe = cvmkit_pe::PeFile::parse(&uki).unwrap();
            let vs = pe.section_by_name(name).unwrap().header.virtual_size as usize;
            let raw = section(name);
            assert_eq!(events[i + 1].digest, bank.hash(&raw[..vs]), "{bank} {name}");
        }
    }
}
