//! The proof: boot UKIs built from Debian's systemd-stub 252 (bookworm) and 257 (trixie, the
//! generation of the flake's nixos-25.05 stub) with Debian's kernel under QEMU (TCG) with OVMF
//! and a software TPM (swtpm), read the TPM's PCRs and the firmware event log in the guest, and
//! compare them with the prediction, the log's own replay, and (252) systemd-measure. Each stub
//! has tests of its own (`stub_252_…`, `stub_257_…`); the 257 stub comes from
//! scripts/fetch-inputs.sh (`STUB_TRIXIE`), and its tests fail, never skip, without it.
//!
//! Needs qemu-system-x86, swtpm (+ swtpm-tools), mtools and dosfstools; fails with an install
//! hint when one is missing. Takes about 15–30 s on two cores.

mod util;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cvmkit_tcg_log::{EventLog, HashAlg, Register};
use cvmkit_tpm::{predict, Bank, TpmOptions, TpmPrediction};
use cvmkit_uki::LinuxVirtualSize;
use util::*;

/// Kills and reaps a child process when dropped (the test may fail half-way), waiting a bounded
/// time.
struct Reaper(Option<Child>);

impl Drop for Reaper {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            cvmkit_testutil::kill_and_reap(&mut c);
        }
    }
}

/// A FAT image holding `uki` as `\EFI\BOOT\BOOTX64.EFI`, made with mkfs.vfat and mtools.
fn make_esp(dir: &Path, uki: &[u8]) -> PathBuf {
    let mkfs = require_tool("mkfs.vfat", "dosfstools");
    let mmd = require_tool("mmd", "mtools");
    let mcopy = require_tool("mcopy", "mtools");
    let esp = dir.join("esp.img");
    let uki_path = dir.join("uki.efi");
    std::fs::write(&uki_path, uki).unwrap();
    // KiB: the UKI plus room for FAT overhead.
    let kib = (uki.len() as u64 / 1024) * 5 / 4 + 4096;
    run(Command::new(mkfs).arg("-C").arg(&esp).arg(kib.to_string()));
    let img = esp.to_str().unwrap();
    run(Command::new(&mmd).args(["-i", img, "::/EFI", "::/EFI/BOOT"]));
    run(Command::new(mcopy)
        .args(["-i", img])
        .arg(&uki_path)
        .arg("::/EFI/BOOT/BOOTX64.EFI"));
    esp
}

/// What the guest printed.
struct Guest {
    log: Vec<u8>,
    /// (bank, pcr) → value from /sys/class/tpm/tpm0/pcr-<bank>/<pcr>.
    pcrs: BTreeMap<(String, u32), Vec<u8>>,
}

fn parse_serial(serial: &str) -> Guest {
    let begin = serial
        .find("CVMKIT-TPM-LOG-BEGIN")
        .expect("no CVMKIT-TPM-LOG-BEGIN on the serial console");
    let end = serial[begin..]
        .find("CVMKIT-TPM-LOG-END")
        .map(|e| begin + e)
        .expect("no CVMKIT-TPM-LOG-END on the serial console");
    let b64: String = serial[begin..end]
        .lines()
        .skip(1)
        .map(str::trim)
        .filter(|l| {
            !l.is_empty()
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(&b))
        })
        .collect();
    let log = base64_decode(&b64);
    let mut pcrs = BTreeMap::new();
    for line in serial.lines() {
        let Some(rest) = line.trim().strip_prefix("CVMKIT-PCR ") else {
            continue;
        };
        let f: Vec<&str> = rest.split_whitespace().collect();
        assert_eq!(f.len(), 3, "bad PCR line {line:?}");
        pcrs.insert(
            (f[0].to_string(), f[1].parse().unwrap()),
            unhex(&f[2].to_ascii_lowercase()),
        );
    }
    Guest { log, pcrs }
}

fn base64_decode(s: &str) -> Vec<u8> {
    let val = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => (c - b'A') as u32,
            b'a'..=b'z' => (c - b'a' + 26) as u32,
            b'0'..=b'9' => (c - b'0' + 52) as u32,
            b'+' => 62,
            b'/' => 63,
            _ => panic!("bad base64 byte {c:#x}"),
        }
    };
    let bytes = s.as_bytes();
    assert!(
        bytes.len() % 4 == 0,
        "base64 length {} not a multiple of 4",
        bytes.len()
    );
    let mut out = Vec::with_capacity(bytes.len() / 4 * 3);
    for chunk in bytes.chunks(4) {
        let pad = chunk.iter().filter(|&&c| c == b'=').count();
        let mut n = 0u32;
        for &c in chunk {
            n = (n << 6) | if c == b'=' { 0 } else { val(c) };
        }
        let b = n.to_be_bytes();
        out.extend_from_slice(&b[1..4 - pad]);
    }
    out
}

/// Boots `esp` with OVMF and a fresh swtpm; returns the serial console output.
fn boot(dir: &Path, esp: &Path) -> String {
    let qemu = require_tool("qemu-system-x86_64", "qemu-system-x86");
    let swtpm = require_tool("swtpm", "swtpm swtpm-tools");
    let ovmf = input("OVMF");

    let state = dir.join("tpm");
    std::fs::create_dir_all(&state).unwrap();
    let sock = dir.join("swtpm.sock");
    let tpm = Command::new(swtpm)
        .args(["socket", "--tpm2"])
        .arg("--tpmstate")
        .arg(format!("dir={}", state.display()))
        .arg("--ctrl")
        .arg(format!("type=unixio,path={}", sock.display()))
        .args(["--flags", "startup-clear"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start swtpm");
    let mut tpm = Reaper(Some(tpm));
    let t0 = Instant::now();
    while !sock.exists() {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "swtpm did not create {}",
            sock.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    let serial = dir.join("serial.log");
    let child = Command::new(qemu)
        .args(["-machine", "q35", "-accel", "tcg", "-m", "512"])
        .arg("-bios")
        .arg(&ovmf)
        .arg("-chardev")
        .arg(format!("socket,id=chrtpm,path={}", sock.display()))
        .args(["-tpmdev", "emulator,id=tpm0,chardev=chrtpm"])
        .args(["-device", "tpm-tis,tpmdev=tpm0"])
        .arg("-drive")
        .arg(format!("if=virtio,format=raw,file={}", esp.display()))
        .args(["-display", "none", "-no-reboot", "-nic", "none"])
        .arg("-serial")
        .arg(format!("file:{}", serial.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start qemu");
    let mut qemu = Reaper(Some(child));
    let deadline = Duration::from_secs(120);
    let status = loop {
        if let Some(status) = qemu.0.as_mut().unwrap().try_wait().unwrap() {
            break Some(status);
        }
        if t0.elapsed() > deadline {
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let out = std::fs::read(&serial).unwrap_or_default();
    let out = String::from_utf8_lossy(&out).into_owned();
    let mut qemu_err = String::new();
    if let Some(mut c) = qemu.0.take() {
        if status.is_none() {
            cvmkit_testutil::kill_and_reap(&mut c);
        }
        if let Some(mut e) = c.stderr.take() {
            let _ = e.read_to_string(&mut qemu_err);
        }
    }
    if let Some(mut c) = tpm.0.take() {
        cvmkit_testutil::kill_and_reap(&mut c);
    }
    eprintln!("guest booted and powered off in {:.1?}", t0.elapsed());
    match status {
        None => panic!(
            "the guest did not power off within {deadline:?}; serial console:\n{out}\nqemu: {qemu_err}"
        ),
        Some(s) if !out.contains("CVMKIT-TPM-DONE") => {
            panic!("qemu exited ({s}) before the guest finished; serial console:\n{out}\nqemu: {qemu_err}")
        }
        Some(_) => out,
    }
}

fn alg(bank: Bank) -> HashAlg {
    HashAlg(bank.tpm_alg_id())
}

/// Prints the prediction, for the test log and the report.
fn print_prediction(p: &TpmPrediction) {
    for r in &p.registers {
        eprintln!("PCR{} {} = {}", r.pcr, r.bank, hex(&r.value));
        for e in &r.events {
            eprintln!("    {:#010x} {} {}", e.event_type.0, hex(&e.digest), e.label);
        }
    }
}

/// A scratch directory; CVMKIT_TEST_KEEP=1 keeps it (UKI, ESP, serial log, event log) and
/// prints its path.
fn scratch(name: &str) -> (Option<tempfile::TempDir>, PathBuf) {
    let tmp = tempfile::Builder::new()
        .prefix(&format!("cvmkit-tpm-{name}-"))
        .tempdir()
        .unwrap();
    if std::env::var_os("CVMKIT_TEST_KEEP").is_some() {
        let path = tmp.keep();
        eprintln!("keeping {}", path.display());
        (None, path)
    } else {
        let path = tmp.path().to_owned();
        (Some(tmp), path)
    }
}

/// Boots `uki` and checks, for every bank the log has: (a) the TPM's PCR 4 and PCR 11 (read
/// in the guest) equal the prediction, (b) the guest's event log replays to them, (c) the log's
/// PCR 4 and PCR 11 events equal the predicted events one by one (type and digest).
fn boot_and_check(dir: &Path, uki: &[u8], prediction: &TpmPrediction) {
    let esp = make_esp(dir, uki);
    let serial = boot(dir, &esp);
    let guest = parse_serial(&serial);
    std::fs::write(dir.join("eventlog.bin"), &guest.log).unwrap();
    let log = EventLog::parse(&guest.log).expect("parse the guest's event log");
    let replay = log.replay();
    let banks: Vec<Bank> = log
        .algorithms()
        .iter()
        .filter_map(|a| Bank::from_tpm_alg_id(a.0))
        .collect();
    eprintln!(
        "log banks {banks:?}; guest PCR files {:?}",
        guest.pcrs.keys().collect::<Vec<_>>()
    );
    for e in log.events() {
        if matches!(
            e.register,
            Register::Pcr(4) | Register::Pcr(11) | Register::Pcr(12) | Register::Pcr(13)
        ) {
            eprintln!("log: {e}");
        }
    }
    // The stub's other measurements (PCR 12: a LoadOptions command line, add-ons, credentials,
    // a profile other than 0; PCR 13: system extensions) are not predicted; this boot has none
    // of them, and OVMF passes no LoadOptions to the removable-media path.
    let others: Vec<String> = log
        .events()
        .iter()
        .filter(|e| matches!(e.register, Register::Pcr(12) | Register::Pcr(13)))
        .map(|e| e.to_string())
        .collect();
    assert!(
        others.is_empty(),
        "unexpected stub measurements in PCR 12/13: {others:#?}"
    );
    assert!(banks.contains(&Bank::Sha256), "the log has no sha256 bank");

    let mut checked_sysfs = 0;
    for &bank in &banks {
        for pcr in [4u32, 11] {
            let predicted = prediction.get(pcr, bank).unwrap();
            // (b) the log replays to the prediction ...
            let replayed = replay
                .get(Register::Pcr(pcr), alg(bank))
                .expect("replayed PCR");
            assert_eq!(
                hex(replayed.as_bytes()),
                hex(&predicted.value),
                "PCR{pcr} {bank}: the guest's event log replays to another value than predicted"
            );
            // (a) ... and so does the TPM.
            if let Some(real) = guest.pcrs.get(&(bank.name().to_string(), pcr)) {
                assert_eq!(
                    hex(real),
                    hex(&predicted.value),
                    "PCR{pcr} {bank}: the TPM holds another value than predicted"
                );
                checked_sysfs += 1;
            }
            // (c) event by event.
            let want: Vec<String> = predicted
                .events
                .iter()
                .map(|e| format!("{:#010x} {}", e.event_type.0, hex(&e.digest)))
                .collect();
            let got: Vec<String> = log
                .events()
                .iter()
                .filter(|e| e.register == Register::Pcr(pcr) && e.is_extended())
                .map(|e| {
                    let d = e.digest(alg(bank)).map(|d| d.to_hex()).unwrap_or_default();
                    format!("{:#010x} {d}", e.event_type.0)
                })
                .collect();
            assert_eq!(
                got, want,
                "PCR{pcr} {bank}: logged events differ from the predicted ones"
            );
        }
    }
    assert!(
        checked_sysfs >= 2,
        "the guest printed no /sys/class/tpm/tpm0/pcr-* values to compare"
    );

    // cvmkit-tdx's RTMR2 model of the same UKI: what a TD extends into RTMR2 (PCRs 8-15) is the
    // stub's PCR 11 events (systemd-stub ≥ 256 measures through the CC protocol too; 252 does
    // not) and the kernel's PCR 9 events (LoadOptions, then the initrd the stub handed it), in
    // the sha384 bank. Debian's 6.1 kernel measures those through the TCG2 protocol only, so the
    // TPM log stands in for a TD's.
    let sha384 = alg(Bank::Sha384);
    let stub_cc = prediction.stub.version >= 256;
    let logged: Vec<String> = log
        .events()
        .iter()
        .filter(|e| e.is_extended())
        .filter(|e| match e.register {
            Register::Pcr(11) => stub_cc,
            Register::Pcr(n) => (8..=15).contains(&n),
            _ => false,
        })
        .map(|e| {
            let d = e.digest(sha384).map(|d| d.to_hex()).unwrap_or_default();
            format!("{:#010x} {d}", e.event_type.0)
        })
        .collect();
    let boot = cvmkit_tdx::UkiBoot::new(uki, Vec::new());
    let rtmr2 = cvmkit_tdx::uki_rtmr2(&boot, cvmkit_tdx::LinuxStubMeasurement::CcMeasurement)
        .expect("cvmkit-tdx RTMR2 model");
    for e in &rtmr2 {
        eprintln!(
            "tdx rtmr2: {:#010x} {} {}",
            e.event_type.0,
            hex(&e.digest),
            e.label
        );
    }
    let modelled: Vec<String> = rtmr2
        .iter()
        .map(|e| format!("{:#010x} {}", e.event_type.0, hex(&e.digest)))
        .collect();
    assert_eq!(
        logged, modelled,
        "the guest's PCR 8-15 events (sha384) differ from cvmkit-tdx's RTMR2 model"
    );
    // ... and its RTMR1 images: the UKI and the `.linux` buffer LoadImage() got (PCR 4, sha384).
    let logged: Vec<String> = log
        .events()
        .iter()
        .filter(|e| e.register == Register::Pcr(4) && e.event_type.0 == 0x8000_0003)
        .map(|e| e.digest(sha384).map(|d| d.to_hex()).unwrap_or_default())
        .collect();
    let rtmr1 = cvmkit_tdx::uki_rtmr1(&boot, &cvmkit_tdx::OvmfProfile::EDK2_202411)
        .expect("cvmkit-tdx RTMR1 model");
    let modelled: Vec<String> = rtmr1
        .iter()
        .filter(|e| e.event_type.0 == 0x8000_0003)
        .map(|e| hex(&e.digest))
        .collect();
    assert_eq!(
        logged, modelled,
        "the guest's PCR 4 images (sha384) differ from cvmkit-tdx's RTMR1 model"
    );
}

/// OVMF first tries q35's empty default DVD-ROM ("BdsDxe: failed to load Boot0001 \"UEFI QEMU
/// DVD-ROM QM00005 \"") and only then the ESP's removable-media path.
fn options() -> TpmOptions {
    TpmOptions::default()
        .with_banks(Bank::ALL)
        .with_failed_boot_attempts(1)
}

/// Checks the prediction names the stub `stub` (version and `.sdmagic` text).
fn check_stub(prediction: &TpmPrediction, stub: Stub) {
    assert_eq!(prediction.stub.version, stub.major());
    let info = prediction.stub.loader_info.as_deref().unwrap_or_default();
    match stub {
        Stub::V252 => assert_eq!(info, "systemd-stub 252.39-1~deb12u2"),
        Stub::V257 => assert!(info.starts_with("systemd-stub 257."), "{info}"),
    }
}

/// The PCR 11 labels of the boot test's UKI: `.uname` is in the UKI and the stub's own `.sbat`
/// too, but systemd-stub 252 measures neither; 257 measures both, after `.initrd`.
fn expected_pcr11_labels(stub: Stub) -> Vec<&'static str> {
    let mut labels = vec![
        ".linux name",
        ".linux content",
        ".osrel name",
        ".osrel content",
        ".cmdline name",
        ".cmdline content",
        ".initrd name",
        ".initrd content",
    ];
    if stub == Stub::V257 {
        labels.extend([
            ".uname name",
            ".uname content",
            ".sbat name",
            ".sbat content",
        ]);
    }
    labels
}

/// The UKI as cvmkit-uki builds it by default (`.linux` VirtualSize = the kernel's file size):
/// the real boot agrees with the prediction; for 252 so does systemd-measure.
fn uki_boots_as_predicted(stub: Stub) {
    let t0 = Instant::now();
    let (_guard, dir) = scratch(&format!("boot-{}", stub.major()));
    let initrd = build_initrd(&dir);
    let uki = build_uki(stub, &initrd, LinuxVirtualSize::FileSize);
    let prediction = predict(&uki, &options()).expect("predict");
    check_stub(&prediction, stub);
    print_prediction(&prediction);

    if stub == Stub::V252 {
        // systemd-measure 252, the oracle for PCR 11, on the same section files.
        let oracle = systemd_measure(&uki, &dir);
        assert_eq!(oracle.len(), 3);
        for (bank, value) in &oracle {
            let bank: Bank = bank.parse().unwrap();
            assert_eq!(
                hex(&prediction.get(11, bank).unwrap().value),
                *value,
                "PCR11 {bank} differs from systemd-measure"
            );
        }
    }
    let pcr11 = prediction.get(11, Bank::Sha256).unwrap();
    let labels: Vec<&str> = pcr11.events.iter().map(|e| e.label.as_str()).collect();
    assert_eq!(labels, expected_pcr11_labels(stub));

    boot_and_check(&dir, &uki, &prediction);
    eprintln!("total {:.1?}", t0.elapsed());
}

#[test]
fn stub_252_uki_boots_as_predicted() {
    uki_boots_as_predicted(Stub::V252);
}

#[test]
fn stub_257_uki_boots_as_predicted() {
    uki_boots_as_predicted(Stub::V257);
}

/// `.linux` with VirtualSize = the kernel's SizeOfImage (current ukify): the stub measures the
/// kernel followed by zeros into PCR 11 and hands the same buffer to LoadImage() (PCR 4), 252
/// (`szs[]`) and 257 (`PeSectionVector.memory_size`) alike. systemd-measure 252 given the kernel
/// file predicts another PCR 11; given the buffer as the stub reads it, the same.
fn measures_linux_zero_fill(stub: Stub) {
    let t0 = Instant::now();
    let (_guard, dir) = scratch(&format!("boot-soi-{}", stub.major()));
    let initrd = build_initrd(&dir);
    let uki = build_uki(stub, &initrd, LinuxVirtualSize::SizeOfImage);
    let pe = cvmkit_pe::PeFile::parse(&uki).unwrap();
    let linux = pe.section_by_name(".linux").unwrap();
    assert!(
        linux.zero_fill() > 0,
        "the kernel's SizeOfImage exceeds its file size"
    );
    let prediction = predict(&uki, &options()).expect("predict");
    check_stub(&prediction, stub);
    print_prediction(&prediction);

    let mut buffer = pe.section_virtual_data(linux).unwrap().to_vec();
    buffer.resize(linux.header.virtual_size as usize, 0);
    for bank in Bank::ALL {
        let content = &prediction.get(11, bank).unwrap().events[1];
        assert_eq!(content.label, ".linux content");
        assert_eq!(content.digest, bank.hash(&buffer), "{bank}: kernel ‖ zeros");
    }
    if stub == Stub::V252 {
        let kernel_file = systemd_measure_with(&uki, &dir, &[(".linux", input("KERNEL"))]);
        let memory = dir.join("linux-in-memory");
        std::fs::write(&memory, &buffer).unwrap();
        let memory_view = systemd_measure_with(&uki, &dir, &[(".linux", memory)]);
        for ((bank, file_value), (_, memory_value)) in kernel_file.iter().zip(&memory_view) {
            let predicted = hex(&prediction.get(11, bank.parse().unwrap()).unwrap().value);
            assert_ne!(
                predicted, *file_value,
                "{bank}: systemd-measure --linux=vmlinuz"
            );
            assert_eq!(
                predicted, *memory_value,
                "{bank}: systemd-measure --linux=<memory>"
            );
        }
    }

    boot_and_check(&dir, &uki, &prediction);
    eprintln!("total {:.1?}", t0.elapsed());
}

#[test]
fn stub_252_measures_linux_zero_fill() {
    measures_linux_zero_fill(Stub::V252);
}

#[test]
fn stub_257_measures_linux_zero_fill() {
    measures_linux_zero_fill(Stub::V257);
}
