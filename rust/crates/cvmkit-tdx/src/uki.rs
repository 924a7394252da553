//! A UKI booted from a GPT disk by OVMF (no VMM kernel loading): cvmkit-uefi-boot's model of
//! the boot path (shared with cvmkit-tpm), mapped onto RTMRs — PCR 4/5 to RTMR1, PCR 9/11 to
//! RTMR2 — and hashed with SHA-384.
//!
//! **RTMR1** (firmware, `DxeTpm2MeasureBootLib` / TdTcg2Dxe): "Calling EFI Application from Boot
//! Option" at the first ReadyToBoot, the separator (edk2 ≥ 202411), a "Returning from …" /
//! "Calling …" pair per boot option that failed before, the disk's `UEFI_GPT_DATA` (once, before
//! the first image from that disk), the Authenticode digest of every image `LoadImage()`d — an
//! optional boot loader, the UKI, and the UKI's `.linux` when the stub loads the kernel with
//! `LoadImage()` — then the two ExitBootServices actions. Confirmed on the GCE Ubuntu 24.04 and
//! COS CCEL logs, the trustee GCP and grub logs, and dstack's GCE vTPM log of a systemd-stub UKI
//! (whose PCR 4 holds the UKI and then `VenMedia(55c5d1f8-…)`, the `.linux` the stub loaded).
//!
//! **RTMR2** (systemd-stub and the kernel's EFI stub), by systemd-stub version, read from the
//! UKI's `.sdmagic` (`#### LoaderInfo: systemd-stub 252.39-1~deb12u2 ####`):
//!
//! | stub | RTMR2 from the stub | `.linux` in RTMR1 |
//! |---|---|---|
//! | < 252 | none | no: the kernel is started by the EFI handover protocol or relocated in place |
//! | 252–255 (Debian bookworm: 252) | none: `tpm_log_event` uses only `EFI_TCG2_PROTOCOL`, which a TD lacks | yes: `linux_exec` `LoadImage()`s the `.linux` buffer (systemd PR #24777, in 252), for kernels with PE `MajorImageVersion` ≥ 1 (Linux ≥ 5.8); older kernels go through the handover protocol |
//! | 256, 257 | per present section, in `UnifiedSection` order (`.linux .osrel .cmdline .initrd .ucode .splash .dtb .uname .sbat .pcrpkey`; never `.pcrsig`): `EV_IPL` of the name with its NUL, then `EV_IPL` of the contents — through `EFI_CC_MEASUREMENT_PROTOCOL` (systemd PR #30996, commit 7ff0e0a5, 2024-01-24, first in 256) into PCR 11 = RTMR2 | yes (`LoadImage()`) |
//! | ≥ 258 | as 256 | no: the stub calls the kernel's entry point itself (systemd PR #37372 "stub: call inner kernel directly", cab9c7b5) |
//!
//! Section contents are measured as systemd-stub sees them in memory: `VirtualSize` bytes,
//! zero-filled past `SizeOfRawData`, for stubs before 256 (`pe_memory_locate_sections`) and from
//! 257 on (257.13's `measure_sections()` hashes `PeSectionVector.memory_size` = `VirtualSize`
//! bytes of the loaded image, and `linux_exec()` `LoadImage()`s the same `memory_size` buffer
//! of `.linux`; cvmkit-tpm's boot test confirms both, PCR 11 and PCR 4, on Debian's 257 stub);
//! 256 is taken to do the same (read from the v256 sources by cvmkit-uefi-boot; not confirmed
//! by a boot).
//!
//! After the stub, the kernel's EFI stub may measure `LOADED_IMAGE::LoadOptions` (the `.cmdline`
//! the stub passes after its `mangle_stub_cmdline()`, UTF-16 with NUL) and the initrd
//! ([`LinuxStubMeasurement`]). Before 257 the initrd is predicted only when it is the `.initrd`
//! section as is (no `.pcrsig`, `.pcrpkey`, and from 256 no `.ucode`), since otherwise the stub
//! appends cpio archives it generates, which are not modelled there. For 257 those archives are
//! modelled (`.ucode`, `.initrd`, then `.extra/` cpio archives of `.pcrsig`, `.pcrpkey` and
//! `.osrel`, which 257 always adds when the UKI has `.osrel`); cvmkit-tpm's boot test checks
//! this model — RTMR2 as PCR 11 then PCR 9 in the sha384 bank — against a real boot of
//! Debian's 257 stub whose kernel measures the initrd into PCR 9. Not modelled: credentials,
//! system extensions and add-ons read from the ESP (assumed absent), a `LoadOptions` command
//! line override (assumed absent: OVMF's auto-created boot options have no optional data) and
//! multi-profile UKIs.

use std::borrow::Cow;

use cvmkit_measure::Bank;
use cvmkit_uefi_boot::{BootEvent, BootManager, DigestCache, StubInfo, Uki};

use crate::error::{label, TdxError};
use crate::event::Event;
use crate::profile::{LinuxStubMeasurement, OvmfProfile, SeparatorLayout};

/// The inputs of a UKI booted from a GPT disk.
#[derive(Debug, Clone)]
pub struct UkiBoot<'a> {
    /// The UKI, as on the ESP.
    pub uki: &'a [u8],
    /// Its name for messages (e.g. `BOOTX64.EFI`).
    pub name: Option<&'a str>,
    /// The boot disk's `UEFI_GPT_DATA` ([`crate::uefi_gpt_data`]).
    pub gpt_data: Vec<u8>,
    /// A boot loader the firmware starts first and that `LoadImage()`s the UKI (e.g.
    /// systemd-boot); only its Authenticode digest is modelled.
    pub boot_loader: Option<&'a [u8]>,
    /// The systemd-stub major version, when it should not be read from `.sdmagic`.
    pub stub_version: Option<u32>,
    /// Boot options that failed before this one (each adds "Returning from …" and "Calling …").
    pub failed_boot_attempts: u32,
    /// Digests shared with other predictions from the same UKI bytes (e.g. the TPM's SHA-384
    /// bank), see [`Uki::prefetch`].
    pub digests: Option<std::sync::Arc<DigestCache>>,
}

impl<'a> UkiBoot<'a> {
    /// A UKI with its disk's GPT data, the stub version read from the UKI, no boot loader, no
    /// failed boot attempts.
    pub fn new(uki: &'a [u8], gpt_data: Vec<u8>) -> UkiBoot<'a> {
        UkiBoot { uki, name: None, gpt_data, boot_loader: None, stub_version: None, failed_boot_attempts: 0, digests: None }
    }

    /// The UKI with its stub and measured sections (cvmkit-uefi-boot).
    pub fn open(&self) -> Result<Uki<'a>, TdxError> {
        Uki::open(self.uki, self.stub_version, None)
            .map(|u| u.with_cache(self.digests.clone()))
            .map_err(|source| TdxError::Boot { file: label(self.name), source })
    }

    /// The stub: [`UkiBoot::stub_version`] if set, else `.sdmagic`.
    pub fn stub(&self) -> Result<StubInfo, TdxError> {
        Ok(self.open()?.stub)
    }

    /// A line for the notes of a measurement document naming the stub RTMR1/RTMR2 were
    /// predicted for, e.g. `predicted for systemd-stub 257 (detected from the stub's .sdmagic:
    /// "systemd-stub 257.13-1~deb13u1")`.
    pub fn stub_note(&self) -> Result<String, TdxError> {
        Ok(self.stub()?.note())
    }

    fn boot_error(&self, source: cvmkit_uefi_boot::BootError) -> TdxError {
        TdxError::Boot { file: label(self.name), source }
    }
}

/// The events as TDX records them: SHA-384 digests.
fn sha384_events(uki: &Uki<'_>, events: &[BootEvent<'_>]) -> Vec<Event> {
    events
        .iter()
        .map(|e| {
            let d = uki.digest(e, Bank::Sha384);
            let mut digest = [0u8; 48];
            digest.copy_from_slice(&d);
            Event::new(e.label.clone(), e.event_type, digest)
        })
        .collect()
}

/// RTMR1 events of a UKI boot from disk: the boot manager's PCR 4 and PCR 5 events. The
/// ReadyToBoot separator lands in RTMR1 only with edk2 ≥ 202411 ([`SeparatorLayout`]).
pub fn uki_rtmr1(boot: &UkiBoot<'_>, ovmf: &OvmfProfile) -> Result<Vec<Event>, TdxError> {
    let uki = boot.open()?;
    let manager = BootManager {
        failed_boot_attempts: boot.failed_boot_attempts,
        gpt_data: Some(Cow::Borrowed(&boot.gpt_data)),
        loaders: boot.boot_loader.into_iter().collect(),
        secure_boot: false,
        uki_name: boot.name,
    };
    let events: Vec<BootEvent<'_>> = uki
        .boot_manager_events(&manager)
        .map_err(|e| boot.boot_error(e))?
        .into_iter()
        .filter(|e| matches!(e.pcr, 2..=6))
        .filter(|e| !e.is_separator() || ovmf.separator == SeparatorLayout::Edk2Since202411)
        .collect();
    Ok(sha384_events(&uki, &events))
}

/// RTMR2 events of a UKI boot from disk: systemd-stub's PCR 11 events (from 256, the first
/// stub that measures through `EFI_CC_MEASUREMENT_PROTOCOL`), then the kernel's PCR 9 events
/// when its EFI stub measures ([`LinuxStubMeasurement::CcMeasurement`]).
pub fn uki_rtmr2(boot: &UkiBoot<'_>, linux_stub: LinuxStubMeasurement) -> Result<Vec<Event>, TdxError> {
    let uki = boot.open()?;
    let mut events = Vec::new();
    if uki.stub.version >= 256 {
        events.extend(uki.section_events());
    }
    if linux_stub == LinuxStubMeasurement::CcMeasurement {
        events.extend(uki.kernel_stub_events().map_err(|e| boot.boot_error(e))?);
    }
    Ok(sha384_events(&uki, &events))
}
