//! Intel TDX measurements of a QEMU + OVMF (TDVF) guest, predicted before boot: MRTD and RTMR0–2,
//! each with the ordered, labelled events that produce it, for a verifier to pin.
//!
//! - **MRTD** ([`mrtd`]) — the TDX module's hash of the initial TD memory, from the firmware's
//!   TDVF metadata, for either page order QEMU uses ([`PageOrder`]).
//! - **RTMR0** ([`rtmr0_events`]) — firmware configuration: the TD HOB QEMU builds from the
//!   memory size ([`td_hob`]), the CFV (the variable store, hashed from the given firmware), the
//!   Secure Boot variables, QEMU's ACPI blobs, the boot variables; or values captured on a real
//!   VM ([`Rtmr0Source::Captured`], [`Captured`]).
//! - **RTMR1 / RTMR2** — the boot path: direct kernel boot ([`DirectBoot`]: the kernel's
//!   Authenticode digest as QEMU hands it over, the command line OVMF builds, the initrd) or a UKI
//!   started from a GPT disk ([`UkiBoot`]: the GPT, the UKI and its `.linux`, systemd-stub's
//!   section measurements by stub version).
//!
//! Every register is `SHA-384(register ‖ digest)` folded from 48 zero bytes over its events
//! ([`fold`]). What the VMM, firmware and kernel versions change is explicit: [`QemuProfile`],
//! [`OvmfProfile`], [`LinuxStubMeasurement`]; the defaults are the current versions (QEMU ≥ 10.2,
//! edk2-stable202411…202502, a kernel whose EFI stub measures through the CC protocol).
//!
//! **Debian bookworm's OVMF.fd (edk2 2022.11) does not extend RTMRs at all**: it has TDX metadata
//! and boots as a TD, but has no `TdTcg2Dxe` (no `EFI_CC_MEASUREMENT_PROTOCOL`, no CCEL table) and
//! no TD HOB / CFV measurement, so a TD booted with it reports RTMR0–2 = 0. Use
//! [`OvmfProfile::NO_CC_MEASUREMENT`] for it; its MRTD is still meaningful. Likewise the EFI stub
//! of Debian's 6.1 kernel only knows the TCG2 protocol, so it measures nothing into RTMR2 even
//! under a measuring firmware ([`LinuxStubMeasurement::None`]).
//!
//! ```
//! use cvmkit_tdx::{fold, measure, Boot, DirectBoot, OvmfProfile, QemuProfile, Rtmr0Inputs,
//!                  Rtmr0Source, TdxConfig};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let data = cvmkit_tdx::testing::tiny_tdvf();
//! let firmware = cvmkit_ovmf::Firmware::parse_named(&data, "OVMF.fd")?;
//! # let kernel = cvmkit_tdx::testing::tiny_bzimage();
//! let config = TdxConfig {
//!     memory: 2 << 30,
//!     qemu: QemuProfile::QEMU_9,
//!     rtmr0: Rtmr0Source::Computed(Rtmr0Inputs {
//!         acpi: Some(Vec::new()), // normally etc/table-loader, etc/acpi/rsdp, etc/acpi/tables
//!         ..Rtmr0Inputs::default()
//!     }),
//!     ..TdxConfig::default()
//! };
//! let boot = Boot::Direct(DirectBoot { kernel: &kernel, initrd: Some(b"initrd"), cmdline: "console=ttyS0" });
//! let m = measure(&firmware, &config, &boot)?;
//!
//! assert_eq!(m.rtmr0.as_ref().unwrap().events[0].label, "TD HOB");
//! assert_eq!(m.rtmr1.value, fold(m.rtmr1.events.iter().map(|e| &e.digest)));
//! let labels: Vec<&str> = m.rtmr2.events.iter().map(|e| e.label.as_str()).collect();
//! assert_eq!(labels, ["LOADED_IMAGE::LoadOptions \"console=ttyS0 initrd=initrd\"", "Linux initrd"]);
//!
//! // Without TDX metadata, the error names the missing table.
//! let plain = cvmkit_ovmf::Firmware::parse_named(&[0u8; 4096], "plain.fd")?;
//! let err = measure(&plain, &config, &boot).unwrap_err();
//! assert!(err.to_string().starts_with("firmware plain.fd has no OVMF footer GUID table"));
//! # Ok(()) }
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs)]

#[cfg(feature = "captured")]
mod captured;
mod document;
mod direct;
mod error;
mod event;
mod gpt;
mod mrtd;
mod names;
mod profile;
mod rtmr0;
mod tdhob;
#[cfg(feature = "testing")]
pub mod testing;
pub mod uefi;
mod uki;

pub use cvmkit_ovmf;
use cvmkit_ovmf::Firmware;

#[cfg(feature = "captured")]
pub use captured::Captured;
pub use document::{cloud_disk_boot_document, document, document_with, Sources};
pub use names::{QemuVersion, UnknownName};
pub use direct::{
    direct_boot_rtmr1, direct_boot_rtmr2, kernel_digest, load_options, patch_setup_header,
    DirectBoot,
};
pub use error::TdxError;
pub use event::{
    fold, hex, parse_digest, sha384, Digest384, Event, EventType, Register, DIGEST_LEN,
};
pub use gpt::{uefi_gpt_data, uefi_gpt_data_from_reader, GPT_HEADER_SIZE, GPT_SIGNATURE};
pub use mrtd::{mrtd, mrtd_with_metadata, PageOrder, MR_EXTEND_CHUNK, PAGE_SIZE};
pub use profile::{
    LinuxStubMeasurement, LoadOptionsLayout, OvmfProfile, QemuProfile, SeparatorLayout,
};
pub use rtmr0::{
    acpi_blobs, cfv, rtmr0_events, secure_boot_events, AcpiBlob, BootVariables, Rtmr0Inputs,
    Rtmr0Source, SecureBootVariables, TdHobSource,
};
pub use tdhob::{td_hob, MemoryLayout};
pub use cvmkit_uefi_boot::{pcr11_sections, StubInfo};
pub use uki::{uki_rtmr1, uki_rtmr2, UkiBoot};

/// Everything but the firmware and the boot payload.
#[derive(Debug, Clone)]
pub struct TdxConfig<'a> {
    /// Guest RAM in bytes (QEMU `-m`); laid out as q35 does ([`MemoryLayout::q35`]). The vCPU
    /// count matters only through the ACPI tables (MADT), which are an input of RTMR0.
    pub memory: u64,
    /// The VMM.
    pub qemu: QemuProfile,
    /// The firmware's measurement behaviour.
    pub ovmf: OvmfProfile,
    /// Whether the kernel's EFI stub measures into RTMR2.
    pub linux_stub: LinuxStubMeasurement,
    /// RTMR0's inputs or captured values.
    pub rtmr0: Rtmr0Source<'a>,
}

impl Default for TdxConfig<'_> {
    /// 2 GiB, current QEMU and edk2, a measuring kernel stub, RTMR0 computed from
    /// [`Rtmr0Inputs::default`] (which lacks the ACPI tables).
    fn default() -> Self {
        TdxConfig {
            memory: 2 << 30,
            qemu: QemuProfile::default(),
            ovmf: OvmfProfile::default(),
            linux_stub: LinuxStubMeasurement::default(),
            rtmr0: Rtmr0Source::Computed(Rtmr0Inputs::default()),
        }
    }
}

/// How the guest boots.
#[derive(Debug, Clone)]
pub enum Boot<'a> {
    /// QEMU `-kernel` / `-initrd` / `-append`.
    Direct(DirectBoot<'a>),
    /// A UKI from a GPT disk.
    Uki(UkiBoot<'a>),
}

/// The predicted registers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TdxMeasurements {
    /// MRTD.
    pub mrtd: Digest384,
    /// RTMR0 (firmware configuration); `None` when its source is [`Rtmr0Source::Unknown`].
    pub rtmr0: Option<Register>,
    /// RTMR1 (boot loaders and kernel).
    pub rtmr1: Register,
    /// RTMR2 (OS configuration: command line, initrd, UKI sections).
    pub rtmr2: Register,
}

/// What of a TD's measurements follows from the firmware and the configuration alone, before
/// the boot payload exists: `cvmkit build` computes it while the initrd compresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirmwareMeasurements {
    /// MRTD.
    pub mrtd: Digest384,
    /// RTMR0, as in [`TdxMeasurements::rtmr0`].
    pub rtmr0: Option<Register>,
}

/// MRTD and RTMR0 of a TD launched with `firmware` and `config` (see [`measure`]).
pub fn measure_firmware(
    firmware: &Firmware<'_>,
    config: &TdxConfig<'_>,
) -> Result<FirmwareMeasurements, TdxError> {
    let metadata = firmware.require_tdx_metadata()?;
    let mrtd = mrtd_with_metadata(
        firmware.data(),
        firmware.name(),
        &metadata,
        config.qemu.page_order,
    )?;
    if config.memory == 0 {
        return Err(TdxError::Memory {
            memory: 0,
            reason: "a guest needs memory".to_owned(),
        });
    }
    let layout = MemoryLayout::q35(config.memory);
    let rtmr0 = match &config.rtmr0 {
        Rtmr0Source::Unknown => None,
        Rtmr0Source::Captured { value, events } => {
            let r = Register {
                value: *value,
                events: events.clone(),
            };
            if !r.events.is_empty() && !r.events_replay() {
                return Err(TdxError::Captured {
                    reason: "the captured RTMR0 events do not fold to the captured value"
                        .to_owned(),
                });
            }
            Some(r)
        }
        Rtmr0Source::Computed(_) if !config.ovmf.cc_measurement => Some(Register::default()),
        Rtmr0Source::Computed(inputs) => Some(Register::from_events(rtmr0_events(
            firmware,
            &metadata,
            layout,
            inputs,
            &config.ovmf,
        )?)),
    };
    Ok(FirmwareMeasurements { mrtd, rtmr0 })
}

/// Predicts MRTD and RTMR0–2 of a TD booted with `firmware`, `config` and `boot`.
pub fn measure(
    firmware: &Firmware<'_>,
    config: &TdxConfig<'_>,
    boot: &Boot<'_>,
) -> Result<TdxMeasurements, TdxError> {
    measure_with(firmware, config, boot, None)
}

/// [`measure`] with MRTD and RTMR0 already computed by [`measure_firmware`] for the same
/// `firmware` and `config` (`None`: computed here).
pub fn measure_with(
    firmware: &Firmware<'_>,
    config: &TdxConfig<'_>,
    boot: &Boot<'_>,
    known: Option<&FirmwareMeasurements>,
) -> Result<TdxMeasurements, TdxError> {
    let FirmwareMeasurements { mrtd, rtmr0 } = match known {
        Some(k) => k.clone(),
        None => measure_firmware(firmware, config)?,
    };
    let layout = MemoryLayout::q35(config.memory);
    let (rtmr1, rtmr2) = match boot {
        Boot::Direct(d) => {
            let rtmr1 = direct_boot_rtmr1(d, layout, &config.qemu, &config.ovmf)?;
            (rtmr1, direct_boot_rtmr2(d, &config.ovmf, config.linux_stub))
        }
        Boot::Uki(u) => (
            uki_rtmr1(u, &config.ovmf)?,
            uki_rtmr2(u, config.linux_stub)?,
        ),
    };
    let (rtmr1, rtmr2) = if config.ovmf.cc_measurement {
        (Register::from_events(rtmr1), Register::from_events(rtmr2))
    } else {
        (Register::default(), Register::default())
    };
    Ok(TdxMeasurements {
        mrtd,
        rtmr0,
        rtmr1,
        rtmr2,
    })
}
