//! A UKI booted from a GPT disk by OVMF (no VMM kernel loading).
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
//! Section contents are measured as systemd-stub sees them in memory: up to `VirtualSize`,
//! zero-filled past `SizeOfRawData` for stubs before 256 (`pe_memory_locate_sections`), the
//! file-backed `min(VirtualSize, SizeOfRawData)` bytes from 256 on. A `.linux` whose
//! `VirtualSize` exceeds its raw data is refused for 256 and 257, where which of the two
//! `LoadImage()` gets is not established here.
//!
//! After the stub, the kernel's EFI stub may measure `LOADED_IMAGE::LoadOptions` (the `.cmdline`
//! the stub passes, UTF-16 with NUL) and the initrd ([`LinuxStubMeasurement`]). The initrd is
//! predicted only when it is the `.initrd` section as is: stubs before 257 without `.pcrsig`,
//! `.pcrpkey` (and, from 256, `.ucode`), since otherwise the stub appends cpio archives it
//! generates, which are not modelled; so are credentials, system extensions and add-ons read from
//! the ESP (assumed absent), a `LoadOptions` command line override (assumed absent: OVMF's
//! auto-created boot options have no optional data) and multi-profile UKIs.

use cvmkit_pe::{PeFile, Section};

use crate::direct::{authenticode_sha384, exit_boot_services};
use crate::error::{label, TdxError};
use crate::event::{Event, EventType};
use crate::profile::{LinuxStubMeasurement, OvmfProfile, SeparatorLayout};
use crate::uefi::utf16le_nul;

/// The sections systemd-stub ≥ 256 measures, in its `UnifiedSection` order (`.pcrsig` is never
/// measured).
pub const MEASURED_SECTIONS: [&str; 10] = [
    ".linux", ".osrel", ".cmdline", ".initrd", ".ucode", ".splash", ".dtb", ".uname", ".sbat",
    ".pcrpkey",
];

/// Sections of newer UKIs whose measurement (profiles, automatic devicetree, hardware IDs,
/// firmware) this crate does not model.
const UNMODELLED_SECTIONS: [&str; 4] = [".profile", ".dtbauto", ".hwids", ".efifw"];

/// A systemd-stub identified by its `.sdmagic` text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemdStub {
    /// The major version (252 for `252.39-1~deb12u2`).
    pub version: u32,
    /// The version string as written (`252.39-1~deb12u2`).
    pub version_text: String,
}

impl SystemdStub {
    /// Reads `#### LoaderInfo: systemd-stub VERSION ####` from the `.sdmagic` section, `None`
    /// when the image has no such section or text.
    pub fn detect(pe: &PeFile<'_>) -> Option<SystemdStub> {
        let section = pe.section_by_name(".sdmagic")?;
        let data = pe.section_virtual_data(section).ok()?;
        let text = String::from_utf8_lossy(data);
        let rest = text.split("systemd-stub ").nth(1)?;
        let version_text: String = rest
            .chars()
            .take_while(|c| !c.is_whitespace() && *c != '\0' && *c != '#')
            .collect();
        let major: String = version_text
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        Some(SystemdStub {
            version: major.parse().ok()?,
            version_text,
        })
    }

    /// Whether this stub measures UKI sections into RTMR2 (through the CC measurement protocol).
    pub fn measures_sections(&self) -> bool {
        self.version >= 256
    }

    /// Whether this stub `LoadImage()`s `.linux` (so the firmware measures it into RTMR1), given
    /// the kernel's PE `MajorImageVersion`.
    pub fn loads_kernel_image(&self, kernel_major_image_version: u16) -> bool {
        (252..258).contains(&self.version) && kernel_major_image_version >= 1
    }
}

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
}

impl<'a> UkiBoot<'a> {
    /// A UKI with its disk's GPT data, the stub version read from the UKI, no boot loader, no
    /// failed boot attempts.
    pub fn new(uki: &'a [u8], gpt_data: Vec<u8>) -> UkiBoot<'a> {
        UkiBoot {
            uki,
            name: None,
            gpt_data,
            boot_loader: None,
            stub_version: None,
            failed_boot_attempts: 0,
        }
    }

    fn error(&self, reason: impl Into<String>) -> TdxError {
        TdxError::Uki {
            file: label(self.name),
            reason: reason.into(),
        }
    }

    fn parse(&self) -> Result<PeFile<'a>, TdxError> {
        PeFile::parse(self.uki).map_err(|source| TdxError::Pe {
            what: format!("UKI{}", label(self.name)),
            source,
        })
    }

    /// The stub: [`UkiBoot::stub_version`] if set, else `.sdmagic`.
    pub fn stub(&self) -> Result<SystemdStub, TdxError> {
        if let Some(version) = self.stub_version {
            return Ok(SystemdStub {
                version,
                version_text: version.to_string(),
            });
        }
        SystemdStub::detect(&self.parse()?).ok_or_else(|| {
            self.error(
                "no \"#### LoaderInfo: systemd-stub VERSION ####\" in a .sdmagic section: the \
                 stub version decides what is measured; give it explicitly",
            )
        })
    }

    /// The bytes of section `section` that systemd-stub `stub` sees.
    fn section_bytes(
        &self,
        pe: &PeFile<'a>,
        section: &Section,
        stub: &SystemdStub,
    ) -> Result<Vec<u8>, TdxError> {
        let data = pe
            .section_virtual_data(section)
            .map_err(|source| TdxError::Pe {
                what: format!("UKI{}", label(self.name)),
                source,
            })?;
        let mut bytes = data.to_vec();
        if stub.version < 256 {
            bytes.resize(section.header.virtual_size as usize, 0);
        }
        Ok(bytes)
    }
}

/// RTMR1 events of a UKI boot from disk.
pub fn uki_rtmr1(boot: &UkiBoot<'_>, ovmf: &OvmfProfile) -> Result<Vec<Event>, TdxError> {
    let pe = boot.parse()?;
    let stub = boot.stub()?;
    let mut events = vec![Event::action("Calling EFI Application from Boot Option")];
    if ovmf.separator == SeparatorLayout::Edk2Since202411 {
        events.push(Event::separator());
    }
    for _ in 0..boot.failed_boot_attempts {
        events.push(Event::action(
            "Returning from EFI Application from Boot Option",
        ));
        events.push(Event::action("Calling EFI Application from Boot Option"));
    }
    events.push(Event::hashed(
        "GPT",
        EventType::EV_EFI_GPT_EVENT,
        &boot.gpt_data,
    ));
    if let Some(loader) = boot.boot_loader {
        events.push(Event::new(
            "boot loader (Authenticode)",
            EventType::EV_EFI_BOOT_SERVICES_APPLICATION,
            authenticode_sha384(loader, "boot loader")?,
        ));
    }
    events.push(Event::new(
        format!("UKI{} (Authenticode)", label(boot.name)),
        EventType::EV_EFI_BOOT_SERVICES_APPLICATION,
        pe.authenticode_sha256_sha384().sha384,
    ));
    let linux = pe
        .section_by_name(".linux")
        .ok_or_else(|| boot.error("has no .linux section"))?;
    let linux_bytes = boot.section_bytes(&pe, linux, &stub)?;
    let kernel = PeFile::parse(&linux_bytes).map_err(|source| TdxError::Pe {
        what: format!("UKI{} .linux", label(boot.name)),
        source,
    })?;
    if stub.loads_kernel_image(kernel.optional_header().major_image_version) {
        if (256..258).contains(&stub.version)
            && linux.header.virtual_size > linux.header.size_of_raw_data
        {
            return Err(boot.error(format!(
                ".linux VirtualSize {:#x} exceeds its raw data ({:#x}): which bytes systemd-stub {} \
                 passes to LoadImage() is not modelled; build the UKI with .linux VirtualSize = file size",
                linux.header.virtual_size, linux.header.size_of_raw_data, stub.version
            )));
        }
        events.push(Event::new(
            format!(
                "UKI .linux (Authenticode, LoadImage by systemd-stub {})",
                stub.version
            ),
            EventType::EV_EFI_BOOT_SERVICES_APPLICATION,
            authenticode_sha384(&linux_bytes, "UKI .linux")?,
        ));
    }
    events.extend(exit_boot_services());
    Ok(events)
}

/// RTMR2 events of a UKI boot from disk.
pub fn uki_rtmr2(
    boot: &UkiBoot<'_>,
    linux_stub: LinuxStubMeasurement,
) -> Result<Vec<Event>, TdxError> {
    let pe = boot.parse()?;
    let stub = boot.stub()?;
    if let Some(name) = UNMODELLED_SECTIONS
        .iter()
        .find(|n| pe.section_by_name(n).is_some())
    {
        return Err(boot.error(format!(
            "has a {name} section, whose measurement by systemd-stub {} is not modelled",
            stub.version
        )));
    }
    let mut events = Vec::new();
    if stub.measures_sections() {
        for name in MEASURED_SECTIONS {
            let Some(section) = pe.section_by_name(name) else {
                continue;
            };
            let bytes = boot.section_bytes(&pe, section, &stub)?;
            if bytes.is_empty() {
                continue;
            }
            let mut name_nul = name.as_bytes().to_vec();
            name_nul.push(0);
            events.push(Event::hashed(
                format!("{name} (name)"),
                EventType::EV_IPL,
                &name_nul,
            ));
            events.push(Event::hashed(name, EventType::EV_IPL, &bytes));
        }
    }
    if linux_stub == LinuxStubMeasurement::CcMeasurement {
        if let Some(section) = pe.section_by_name(".cmdline") {
            let bytes = boot.section_bytes(&pe, section, &stub)?;
            let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
            let cmdline = std::str::from_utf8(&bytes[..end])
                .map_err(|_| boot.error(".cmdline is not UTF-8"))?;
            events.push(Event::hashed(
                "LOADED_IMAGE::LoadOptions (.cmdline)",
                EventType::EV_EVENT_TAG,
                &utf16le_nul(cmdline),
            ));
        }
        let mut generated: Vec<&str> = [".pcrsig", ".pcrpkey"]
            .into_iter()
            .filter(|n| pe.section_by_name(n).is_some())
            .collect();
        if stub.version >= 256 && pe.section_by_name(".ucode").is_some() {
            generated.push(".ucode");
        }
        if stub.version >= 257 && pe.section_by_name(".osrel").is_some() {
            generated.push(".osrel");
        }
        if !generated.is_empty() {
            return Err(boot.error(format!(
                "the kernel measures the initrd systemd-stub {} assembles from .initrd and {}, \
                 which is not modelled; use LinuxStubMeasurement::None if the kernel's EFI stub \
                 does not measure (e.g. Linux 6.1)",
                stub.version,
                generated.join(", ")
            )));
        }
        if let Some(section) = pe.section_by_name(".initrd") {
            let bytes = boot.section_bytes(&pe, section, &stub)?;
            if !bytes.is_empty() {
                events.push(Event::hashed(
                    "Linux initrd (.initrd)",
                    EventType::EV_EVENT_TAG,
                    &bytes,
                ));
            }
        }
    }
    Ok(events)
}
