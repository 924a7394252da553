//! Predicts the TPM PCRs that a Unified Kernel Image (UKI) leaves behind when OVMF boots it
//! from an EFI System Partition: PCR 4 (the EFI binaries started) and PCR 11 (the UKI's
//! payload, measured by systemd-stub), per bank, each with the ordered events that build it.
//!
//! [`predict`] reads the stub version from the UKI's `.sdmagic` section (`#### LoaderInfo:
//! systemd-stub 252.39-1~deb12u2 ####`) because the measured sections, how they are found and
//! whether the kernel is measured into PCR 4 differ between systemd versions; see [`stub`] for
//! the table, read from systemd's sources.
//!
//! **PCR 11** (systemd-stub, `EV_IPL` events): for each section of the version's list that
//! the UKI has, `H(name ‖ NUL)` then `H(content)`, where the content is `VirtualSize` bytes as
//! the stub reads them from the loaded image (raw data cut to `VirtualSize`, or followed by
//! the loader's zero fill). Then, optionally, the boot-phase strings `systemd-pcrphase` extends
//! later (`enter-initrd`, `leave-initrd`, `sysinit`, `ready`; no NUL), see
//! [`TpmOptions::phases`]. With no phases this equals `systemd-measure calculate --phase=`; with
//! [`PHASES_BOOTED`] it equals systemd-measure's last default phase.
//!
//! **PCR 4** (OVMF / EDK2 `Tcg2Dxe` and `DxeTpm2MeasureBootLib`):
//! 1. `EV_EFI_ACTION` "Calling EFI Application from Boot Option" (at `ReadyToBoot`);
//! 2. `EV_SEPARATOR` (four zero bytes), closing the pre-boot environment;
//! 3. for each boot option that failed to load before the UKI
//!    ([`TpmOptions::failed_boot_attempts`]), `EV_EFI_ACTION` "Returning from EFI Application
//!    from Boot Option" and "Calling EFI Application from Boot Option" again;
//! 4. `EV_EFI_BOOT_SERVICES_APPLICATION` with the Authenticode digest of each image the
//!    firmware's `LoadImage()` starts: boot loaders if any ([`BootPath::ChainLoaded`]), the UKI,
//!    then — systemd-stub 252–257 without Secure Boot — the `.linux` section the stub hands to
//!    `LoadImage()`.
//!
//! `tests/boot.rs` proves both against real boots of systemd-stub 252 (Debian bookworm) and 257
//! (Debian trixie, the generation of nixos-25.05) under QEMU, OVMF and swtpm: the TPM's PCRs,
//! the replayed event log and each logged event equal the prediction. [`StubInfo::note`] names
//! the stub a prediction is for, for the notes of a measurement document.
//!
//! Booting from the removable-media path (`\EFI\BOOT\BOOTX64.EFI`) and from a `Boot####`
//! entry that points at the UKI give the same PCR 4; they differ in PCRs 1 and 5, which this
//! crate does not predict for OVMF.
//!
//! **Google's firmware** ([`Firmware::Gce`], [`Firmware::GceTd`], with the boot disk's GPT in
//! [`TpmOptions::gpt_data`]): without TDX it places these events as OVMF does, and PCR 5 —
//! separator, GPT, the two ExitBootServices actions — is predicted too; in a TD it logs the GPT
//! and the images it starts into PCR 2, leaving PCR 4 with the action and its separator.
//! `tests/gce.rs` checks both against real GCE logs (values of the registers without an image
//! digest, events of the others).
//!
//! ```
//! use cvmkit_tpm::{predict, Bank, Error, TpmOptions, PHASES_BOOTED};
//!
//! let err = predict(b"not a PE file", &TpmOptions::default()).unwrap_err();
//! assert_eq!(err.to_string(), "the UKI is not a valid PE image: not a PE file: missing MZ signature");
//!
//! let opts = TpmOptions::default()
//!     .with_banks([Bank::Sha256, Bank::Sha384])
//!     .with_phases(PHASES_BOOTED);
//! assert_eq!(opts.phases, ["enter-initrd", "leave-initrd", "sysinit", "ready"]);
//!
//! // systemd-stub 252 does not measure .uname or .sbat; 254 does.
//! assert!(!cvmkit_tpm::pcr11_sections(252)?.contains(&".sbat"));
//! assert!(cvmkit_tpm::pcr11_sections(254)?.contains(&".sbat"));
//! # Ok::<(), Error>(())
//! ```
//!
//! Predicting a real UKI:
//!
//! ```no_run
//! use cvmkit_tpm::{predict, Bank, TpmOptions};
//!
//! use cvmkit_measure::hex;
//! let uki = std::fs::read("uki.efi")?;
//! let p = predict(&uki, &TpmOptions::default())?;
//! println!("systemd-stub {}", p.stub.version);
//! for r in &p.registers {
//!     println!("PCR{} {} {}", r.pcr, r.bank, hex(&r.value));
//!     for e in &r.events {
//!         println!("  {} {} {}", e.event_type, hex(&e.digest), e.label);
//!     }
//! }
//! let pcr11 = p.get(11, Bank::Sha256).unwrap();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod error;

use std::borrow::Cow;

use std::sync::Arc;

use cvmkit_uefi_boot::{BootEvent, BootManager, Origin, Uki};

pub use cvmkit_measure::{Bank, EventType, UnknownBank};
pub use cvmkit_uefi_boot::{authenticode, pcr11_sections, stub, BootError, DigestCache, StubInfo};
pub use error::Error;

/// Not a TCG event type: a measurement made from userspace (`systemd-pcrphase`), which is
/// recorded in `/run/log/systemd/tpm2-measure.log`, not in the firmware's event log.
pub const EVENT_TYPE_USERSPACE: EventType = EventType(0);

/// The phase strings `systemd-pcrphase` extends into PCR 11 on a full boot, in order: in the
/// initrd, leaving it, at `sysinit.target`, at `multi-user.target`.
pub const PHASES_BOOTED: [&str; 4] = ["enter-initrd", "leave-initrd", "sysinit", "ready"];

/// PCR 4, `boot-loader-code`: the EFI applications started.
pub const PCR_BOOT_LOADER_CODE: u32 = 4;
/// PCR 11, systemd's `TPM2_PCR_KERNEL_BOOT`: the UKI's sections and the boot phases.
pub const PCR_KERNEL_BOOT: u32 = 11;

/// How the firmware gets to the UKI; this decides the images measured into PCR 4 before it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum BootPath {
    /// The firmware's boot manager starts `\EFI\BOOT\BOOTX64.EFI` of the ESP (the
    /// removable-media path, no `Boot####` variable needed). The default.
    #[default]
    RemovableMedia,
    /// A `Boot####` entry that points directly at the UKI (e.g. made with `efibootmgr`).
    BootEntry,
    /// The firmware starts these boot loaders first (PE images, in order; e.g. systemd-boot),
    /// the last of which starts the UKI through `LoadImage()`. Only their Authenticode events
    /// are modelled, not what they measure themselves (shim's own PCR 4 and PCR 7 events,
    /// systemd-boot's PCR 12 events).
    ChainLoaded {
        /// The loaders' PE files.
        loaders: Vec<Vec<u8>>,
    },
}

/// Whose firmware starts the UKI: it decides which PCRs the boot manager's events land in.
///
/// Real logs (testdata/): every GCE vTPM log of a VM without TDX — COS 85 to 121 on SEV, the
/// 2025 confidential GKE node, RHEL 8 and Ubuntu Shielded VMs, "GCE Virtual Firmware" v1 and v2 —
/// puts the GPT into PCR 5 and the images started into PCR 4, as OVMF does; the log of a GCE
/// **TDX** VM (dstack's, "GCE Virtual Firmware v2", c3 machines) has both in **PCR 2**, with
/// PCR 4 holding only the action and its separator. PCR 2 is the CC-measurement index of RTMR1,
/// where a TD's firmware records PCR 2-6: Google's firmware in a TD logs the boot manager's
/// `LoadImage()` and GPT measurements to the vTPM under that index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Firmware {
    /// OVMF (QEMU, cvmkit run-local): PCR 4 only is predicted from the boot manager. Default.
    #[default]
    Ovmf,
    /// Google's firmware in a VM without TDX (SEV, SEV-SNP, Shielded VM): PCR 4 (action,
    /// separator, the UKI, `.linux`) and, given the disk's GPT, PCR 5 (separator, GPT,
    /// ExitBootServices).
    Gce,
    /// Google's firmware in a TDX VM: PCR 2 (separator, GPT, the UKI, `.linux`; needs the
    /// disk's GPT), PCR 4 (action, separator) and PCR 5 (separator, ExitBootServices).
    GceTd,
}

impl Firmware {
    /// The PCR the boot manager's `LoadImage()` events and the GPT event land in, and the one
    /// the GPT lands in.
    fn placement(self) -> (u32, u32) {
        match self {
            Firmware::Ovmf | Firmware::Gce => (PCR_BOOT_LOADER_CODE, 5),
            Firmware::GceTd => (2, 2),
        }
    }

    /// How documents name it (`inputs.firmware_model`).
    pub fn name(self) -> &'static str {
        match self {
            Firmware::Ovmf => "ovmf",
            Firmware::Gce => "gce",
            Firmware::GceTd => "gce-td",
        }
    }
}

/// What to predict; start from `TpmOptions::default()` and the `with_` methods.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TpmOptions {
    /// Banks to compute, in output order. Default: sha1, sha256, sha384.
    pub banks: Vec<Bank>,
    /// The systemd-stub major version; `None` (default) reads it from `.sdmagic`.
    pub stub_version: Option<u32>,
    /// How the firmware reaches the UKI (PCR 4).
    pub boot_path: BootPath,
    /// Whether UEFI Secure Boot is enabled: then systemd-stub 252–257 start `.linux` without
    /// the firmware measuring it into PCR 4. Default: off.
    pub secure_boot: bool,
    /// Phase strings extended into PCR 11 after the sections, e.g. [`PHASES_BOOTED`] or its
    /// first element for "in the initrd". Default: none, the value when the initrd starts.
    pub phases: Vec<String>,
    /// Boot options the firmware tried before the UKI that failed to load (nothing started, so
    /// nothing measured but the attempt). Each repeats `ReadyToBoot`, which `Tcg2Dxe` records
    /// as "Returning from EFI Application from Boot Option" then "Calling EFI Application from
    /// Boot Option" in PCR 4. QEMU's `q35` machine has an empty SATA DVD-ROM unless started
    /// with `-nodefaults`, and OVMF tries it first: 1 there. Default: 0.
    pub failed_boot_attempts: u32,
    /// The UKI profile the stub boots (systemd-stub ≥ 257, multi-profile UKIs). `None` means
    /// what the stub does without an `@N` argument: profile 0 if the UKI has profiles.
    pub profile: Option<u32>,
    /// Whose firmware boots the UKI ([`Firmware`]). Default: OVMF.
    pub firmware: Firmware,
    /// The boot disk's `UEFI_GPT_DATA` (the firmware's GPT event): with a GCE firmware the PCR
    /// holding it (5, or 2 in a TD) is predicted too. Default: none.
    pub gpt_data: Option<Vec<u8>>,
}

impl Default for TpmOptions {
    fn default() -> Self {
        TpmOptions {
            banks: vec![Bank::Sha1, Bank::Sha256, Bank::Sha384],
            stub_version: None,
            boot_path: BootPath::default(),
            secure_boot: false,
            phases: Vec::new(),
            failed_boot_attempts: 0,
            profile: None,
            firmware: Firmware::Ovmf,
            gpt_data: None,
        }
    }
}

impl TpmOptions {
    /// Sets [`TpmOptions::banks`].
    pub fn with_banks(mut self, banks: impl IntoIterator<Item = Bank>) -> Self {
        self.banks = banks.into_iter().collect();
        self
    }

    /// Sets [`TpmOptions::stub_version`].
    pub fn with_stub_version(mut self, version: Option<u32>) -> Self {
        self.stub_version = version;
        self
    }

    /// Sets [`TpmOptions::boot_path`].
    pub fn with_boot_path(mut self, path: BootPath) -> Self {
        self.boot_path = path;
        self
    }

    /// Sets [`TpmOptions::secure_boot`].
    pub fn with_secure_boot(mut self, on: bool) -> Self {
        self.secure_boot = on;
        self
    }

    /// Sets [`TpmOptions::phases`].
    pub fn with_phases<S: Into<String>>(mut self, phases: impl IntoIterator<Item = S>) -> Self {
        self.phases = phases.into_iter().map(Into::into).collect();
        self
    }

    /// Sets [`TpmOptions::failed_boot_attempts`].
    pub fn with_failed_boot_attempts(mut self, n: u32) -> Self {
        self.failed_boot_attempts = n;
        self
    }

    /// Sets [`TpmOptions::profile`].
    pub fn with_profile(mut self, profile: Option<u32>) -> Self {
        self.profile = profile;
        self
    }

    /// Sets [`TpmOptions::firmware`].
    pub fn with_firmware(mut self, firmware: Firmware) -> Self {
        self.firmware = firmware;
        self
    }

    /// Sets [`TpmOptions::gpt_data`].
    pub fn with_gpt_data(mut self, gpt: Option<Vec<u8>>) -> Self {
        self.gpt_data = gpt;
        self
    }
}

/// Who makes a measurement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EventOrigin {
    /// The firmware (OVMF), logged in the TCG event log.
    Firmware,
    /// systemd-stub, through the firmware's `EFI_TCG2_PROTOCOL`, logged in the TCG event log.
    Stub,
    /// `systemd-pcrphase` in the booted system; not in the firmware's log.
    Userspace,
}

/// One extend operation.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PredictedEvent {
    /// What is measured, e.g. `.linux content`, `UKI Authenticode`.
    pub label: String,
    /// The TCG event type (`EV_IPL`, `EV_EFI_ACTION`, …), or [`EVENT_TYPE_USERSPACE`].
    pub event_type: EventType,
    /// The digest extended, in the register's bank.
    pub digest: Vec<u8>,
    /// Who measures it.
    pub origin: EventOrigin,
}

/// The predicted value of one PCR in one bank, and how it is reached from zero.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RegisterPrediction {
    /// The PCR index (4 or 11).
    pub pcr: u32,
    /// The bank.
    pub bank: Bank,
    /// The value after all `events`, starting from zeros.
    pub value: Vec<u8>,
    /// The extends, in order.
    pub events: Vec<PredictedEvent>,
}

/// The result of [`predict`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TpmPrediction {
    /// The stub the prediction assumes.
    pub stub: StubInfo,
    /// By PCR index (2, 4, 5, 11: those [`TpmOptions::firmware`] predicts), each in the order of
    /// [`TpmOptions::banks`].
    pub registers: Vec<RegisterPrediction>,
}

impl TpmPrediction {
    /// The prediction for `pcr` in `bank`.
    pub fn get(&self, pcr: u32, bank: Bank) -> Option<&RegisterPrediction> {
        self.registers
            .iter()
            .find(|r| r.pcr == pcr && r.bank == bank)
    }
}

/// Predicts PCR 4 and PCR 11 for OVMF booting `uki`; see the crate documentation.
///
/// Never panics on malformed input; a UKI the stub or the firmware would refuse gives an error.
pub fn predict(uki: &[u8], opts: &TpmOptions) -> Result<TpmPrediction, Error> {
    predict_with(uki, opts, None)
}

/// [`predict`], looking digests up in (and adding them to) `digests`, shared with other
/// predictions from the same UKI bytes ([`cvmkit_uefi_boot::Uki::prefetch`]).
pub fn predict_with(uki: &[u8], opts: &TpmOptions, digests: Option<Arc<DigestCache>>) -> Result<TpmPrediction, Error> {
    let mut banks: Vec<Bank> = Vec::with_capacity(opts.banks.len());
    for b in &opts.banks {
        if !banks.contains(b) {
            banks.push(*b);
        }
    }
    if banks.is_empty() {
        return Err(Error::NoBanks);
    }
    let uki = Uki::open(uki, opts.stub_version, opts.profile)?.with_cache(digests);
    let loaders: Vec<&[u8]> = match &opts.boot_path {
        BootPath::RemovableMedia | BootPath::BootEntry => Vec::new(),
        BootPath::ChainLoaded { loaders } => loaders.iter().map(Vec::as_slice).collect(),
    };
    let manager = BootManager {
        failed_boot_attempts: opts.failed_boot_attempts,
        gpt_data: opts.gpt_data.as_deref().map(Cow::Borrowed),
        loaders,
        secure_boot: opts.secure_boot,
        uki_name: None,
    };
    let mut layout = place(uki.boot_manager_events(&manager)?, opts.firmware, opts.gpt_data.is_some());
    layout.push((PCR_KERNEL_BOOT, uki.section_events()));

    // Each bank hashes the whole UKI about twice (Authenticode, then the sections): the banks are
    // independent, so they run on their own threads; the output stays in PCR order.
    let project = |bank: Bank, pcr: u32, events: &[BootEvent<'_>]| {
        let mut out: Vec<PredictedEvent> = events
            .iter()
            .map(|e| PredictedEvent {
                label: e.label.clone(),
                event_type: e.event_type,
                digest: uki.digest(e, bank),
                origin: match e.origin {
                    Origin::Stub => EventOrigin::Stub,
                    _ => EventOrigin::Firmware,
                },
            })
            .collect();
        if pcr == PCR_KERNEL_BOOT {
            for phase in &opts.phases {
                out.push(PredictedEvent {
                    label: format!("phase {phase}"),
                    event_type: EVENT_TYPE_USERSPACE,
                    digest: bank.hash(phase.as_bytes()),
                    origin: EventOrigin::Userspace,
                });
            }
        }
        register(pcr, bank, out)
    };
    let per_bank: Vec<Vec<RegisterPrediction>> = std::thread::scope(|scope| {
        let handles: Vec<_> = banks
            .iter()
            .map(|&bank| {
                let (layout, project) = (&layout, &project);
                scope.spawn(move || layout.iter().map(|(pcr, events)| project(bank, *pcr, events)).collect())
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("hashing does not panic")).collect()
    });
    let mut registers = Vec::with_capacity(layout.len() * banks.len());
    for i in 0..layout.len() {
        registers.extend(per_bank.iter().map(|regs| regs[i].clone()));
    }
    Ok(TpmPrediction { stub: uki.stub, registers })
}

/// The boot manager's events (OVMF's placement: PCR 4 and 5) grouped into the PCRs `firmware`
/// puts them in, in PCR order, each keeping the log's order. Only the PCRs the firmware model
/// knows completely are returned: PCR 4 for OVMF (PCR 5 of QEMU is not modelled); for GCE also
/// the PCR holding the GPT when `has_gpt`, and PCR 5 in a TD (no GPT there).
fn place<'a>(events: Vec<BootEvent<'a>>, firmware: Firmware, has_gpt: bool) -> Vec<(u32, Vec<BootEvent<'a>>)> {
    let (images, gpt) = firmware.placement();
    let mut pcrs: Vec<u32> = match firmware {
        Firmware::Ovmf => vec![PCR_BOOT_LOADER_CODE],
        Firmware::Gce if has_gpt => vec![PCR_BOOT_LOADER_CODE, 5],
        Firmware::Gce => vec![PCR_BOOT_LOADER_CODE],
        Firmware::GceTd if has_gpt => vec![2, PCR_BOOT_LOADER_CODE, 5],
        Firmware::GceTd => vec![PCR_BOOT_LOADER_CODE, 5],
    };
    pcrs.sort_unstable();
    let mut out: Vec<(u32, Vec<BootEvent<'a>>)> = pcrs.iter().map(|&p| (p, Vec::new())).collect();
    let mut push = |pcr: u32, e: BootEvent<'a>| {
        if let Some((_, list)) = out.iter_mut().find(|(p, _)| *p == pcr) {
            list.push(BootEvent { pcr, ..e });
        }
    };
    for e in events {
        if e.is_separator() {
            // ReadyToBoot closes PCR 0-7 with one separator each, before the GPT and images.
            for &p in &pcrs {
                push(p, e.clone());
            }
            continue;
        }
        let pcr = match e.event_type {
            EventType::EV_EFI_GPT_EVENT => gpt,
            EventType::EV_EFI_BOOT_SERVICES_APPLICATION => images,
            _ => e.pcr,
        };
        push(pcr, e);
    }
    out
}

/// Builds a register from its events.
fn register(pcr: u32, bank: Bank, events: Vec<PredictedEvent>) -> RegisterPrediction {
    let value = events
        .iter()
        .fold(bank.zero(), |v, e| bank.extend(&v, &e.digest));
    RegisterPrediction {
        pcr,
        bank,
        value,
        events,
    }
}

/// [`predict`] as a measurement document (`cvmkit.measurements/v1`): PCR 4 and PCR 11 in each
/// bank with their events, the inputs (`uki_path` names the UKI) and the assumptions.
pub fn document(uki_path: &str, uki: &[u8], opts: &TpmOptions) -> Result<cvmkit_measure::Measurements, Error> {
    document_with(uki_path, uki, opts, None)
}

/// [`document`] with shared digests ([`predict_with`]).
pub fn document_with(
    uki_path: &str,
    uki: &[u8],
    opts: &TpmOptions,
    digests: Option<Arc<DigestCache>>,
) -> Result<cvmkit_measure::Measurements, Error> {
    use cvmkit_measure::{Input, Measurements, Platform, Register};
    let p = predict_with(uki, opts, digests.clone())?;
    let mut doc = Measurements::new(Platform::Tpm);
    let sha256 = match &digests {
        Some(c) => c.file_sha256(uki),
        None => Bank::Sha256.hash(uki),
    };
    doc.inputs.insert("uki".into(), Input { path: Some(uki_path.into()), sha256: Some(cvmkit_measure::hex(&sha256)), value: None });
    doc.add_value("failed_boot_attempts", opts.failed_boot_attempts);
    doc.add_value("secure_boot", opts.secure_boot);
    if !opts.phases.is_empty() {
        doc.add_value("phases", opts.phases.join(","));
    }
    let firmware = match opts.firmware {
        Firmware::Ovmf => "OVMF",
        Firmware::Gce => "Google's GCE firmware (a VM without TDX: PCR 4 and 5 as OVMF places them)",
        Firmware::GceTd => "Google's GCE firmware in a TDX VM (the GPT and the images started in PCR 2)",
    };
    if opts.firmware != Firmware::Ovmf {
        doc.add_value("firmware_model", opts.firmware.name());
    }
    doc.notes.push(format!(
        "assumes {firmware} starting the UKI from the ESP's removable-media path, systemd-stub {}{}",
        p.stub.version,
        p.stub.loader_info.as_deref().map(|i| format!(" ({i})")).unwrap_or_default()
    ));
    if opts.firmware != Firmware::Ovmf && opts.gpt_data.is_some() {
        doc.notes.push(format!(
            "PCR {} holds the boot disk's GPT as built (primary header and entries): a tool that rewrites the partition table in the VM changes it for the next boot",
            opts.firmware.placement().1
        ));
    }
    for r in &p.registers {
        let mut reg = Register::with_value(format!("PCR{}", r.pcr), r.bank, &r.value)?;
        for e in &r.events {
            let ty = match e.origin {
                EventOrigin::Userspace => "userspace".to_string(),
                _ => e.event_type.to_string(),
            };
            reg.note_event(e.label.clone(), Some(&ty), &e.digest)?;
        }
        doc.registers.push(reg);
    }
    Ok(doc)
}
