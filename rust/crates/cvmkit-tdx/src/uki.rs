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
//! Section contents are measured as systemd-stub sees them in memory: `VirtualSize` bytes,
//! zero-filled past `SizeOfRawData`, for stubs before 256 (`pe_memory_locate_sections`) and from
//! 257 on (257.13's `measure_sections()` hashes `PeSectionVector.memory_size` = `VirtualSize`
//! bytes of the loaded image, and `linux_exec()` `LoadImage()`s the same `memory_size` buffer
//! of `.linux`; cvmkit-tpm's boot test confirms both, PCR 11 and PCR 4, on Debian's 257 stub);
//! for 256 the file-backed `min(VirtualSize, SizeOfRawData)` bytes are assumed, and a `.linux`
//! whose `VirtualSize` exceeds its raw data is refused, since which of the two `LoadImage()`
//! gets is not established here.
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
                 stub version decides what is measured; give it explicitly (cvmkit measure tdx: --stub-version N)",
            )
        })
    }

    /// A line for the notes of a measurement document naming the stub RTMR1/RTMR2 were
    /// predicted for, e.g. `predicted for systemd-stub 257 (detected from the stub's .sdmagic:
    /// "systemd-stub 257.13-1~deb13u1")`.
    pub fn stub_note(&self) -> Result<String, TdxError> {
        let stub = self.stub()?;
        Ok(match self.stub_version {
            Some(_) => format!(
                "predicted for systemd-stub {} (version given, not read from the UKI's .sdmagic)",
                stub.version
            ),
            None => format!(
                "predicted for systemd-stub {} (detected from the stub's .sdmagic: \"systemd-stub {}\")",
                stub.version, stub.version_text
            ),
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
        if stub.version != 256 {
            // The zero fill is bounded by what firmware loads: a section past SizeOfImage would
            // be refused at boot, and an arbitrary VirtualSize must not size an allocation.
            let size_of_image = u64::from(pe.optional_header().size_of_image);
            let end = u64::from(section.header.virtual_address) + u64::from(section.header.virtual_size);
            if end > size_of_image {
                return Err(self.error(format!(
                    "section {} (VirtualAddress {:#x}, VirtualSize {:#x}) ends past SizeOfImage {size_of_image:#x}; firmware would not load this image",
                    section.name(),
                    section.header.virtual_address,
                    section.header.virtual_size
                )));
            }
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
        if stub.version == 256 && linux.header.virtual_size > linux.header.size_of_raw_data {
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

/// systemd-stub's `mangle_stub_cmdline()`, applied to `.cmdline` before it becomes the kernel's
/// `LoadOptions`. 252 (252.39's `util.c`): control characters (< 0x20) become spaces, trailing
/// spaces are chopped. 257 (257.13's `util.c`): leading whitespace and control characters
/// (≤ 0x20, 0x7f) are skipped, inner ones become spaces, trailing ones are chopped. Versions in
/// between are taken to behave as 252, later ones as 257 (not read). Both confirmed by the
/// kernel's `LoadOptions` measurement in cvmkit-tpm's boot test, on a `.cmdline` ending in a
/// newline.
fn mangle_stub_cmdline(cmdline: &str, version: u32) -> String {
    if version >= 257 {
        let ws = |c: char| c <= '\u{20}' || c == '\u{7f}';
        cmdline
            .trim_start_matches(ws)
            .trim_end_matches(ws)
            .chars()
            .map(|c| if ws(c) { ' ' } else { c })
            .collect()
    } else {
        let spaced: String = cmdline
            .chars()
            .map(|c| if c < '\u{20}' { ' ' } else { c })
            .collect();
        spaced.trim_end_matches(' ').to_string()
    }
}

/// A cpio archive as systemd-stub 257's `pack_cpio_literal()` writes it: the directory
/// `dir` (mode 0555), the file `dir/name` (0444), the trailer; inodes from 1, no mtimes.
fn stub_cpio_literal(dir: &str, name: &str, data: &[u8]) -> Vec<u8> {
    fn header(out: &mut Vec<u8>, inode: u32, mode: u32, size: usize, name: &str) {
        out.extend_from_slice(b"070701");
        let words = [
            inode,
            mode,
            0,
            0,
            1,
            0,
            size as u32,
            0,
            0,
            0,
            0,
            name.len() as u32 + 1,
            0,
        ];
        for w in words {
            out.extend_from_slice(format!("{w:08x}").as_bytes());
        }
        out.extend_from_slice(name.as_bytes());
        out.push(0);
        out.resize(out.len().next_multiple_of(4), 0);
    }
    let mut out = Vec::new();
    header(&mut out, 1, 0o040555, 0, dir);
    header(&mut out, 2, 0o100444, data.len(), &format!("{dir}/{name}"));
    out.extend_from_slice(data);
    out.resize(out.len().next_multiple_of(4), 0);
    // pack_cpio_trailer(): a fixed record (its name size is written "0000000B").
    out.extend_from_slice(b"070701");
    for w in [0u32, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0x0b, 0] {
        out.extend_from_slice(format!("{w:08X}").as_bytes());
    }
    out.extend_from_slice(b"TRAILER!!!\0\0\0\0");
    out
}

/// The initrd systemd-stub hands the kernel (`LINUX_INITRD_MEDIA`), `None` when none.
///
/// Before 257 only a plain `.initrd` is modelled. 257 (`run()`: `generate_embedded_initrds()`,
/// `lookup_embedded_initrds()`, `extend_initrds()`, `combine_initrds()`) passes, in this order,
/// `.ucode`, `.initrd`, then one `pack_cpio_literal()` archive under `.extra/` per section
/// `.pcrsig` (`tpm2-pcr-signature.json`), `.pcrpkey` (`tpm2-pcr-public-key.pem`) and `.osrel`
/// (`os-release`); a single part as is, several each padded to 4 bytes and concatenated.
/// Credentials, system/configuration extensions and add-ons from the ESP are assumed absent;
/// `.profile` is refused before this.
fn stub_initrd(
    boot: &UkiBoot<'_>,
    pe: &PeFile<'_>,
    stub: &SystemdStub,
) -> Result<Option<Vec<u8>>, TdxError> {
    let bytes = |name: &str| -> Result<Option<Vec<u8>>, TdxError> {
        match pe.section_by_name(name) {
            Some(s) => Ok(Some(boot.section_bytes(pe, s, stub)?).filter(|b| !b.is_empty())),
            None => Ok(None),
        }
    };
    if stub.version == 257 {
        let mut parts = Vec::new();
        for name in [".ucode", ".initrd"] {
            parts.extend(bytes(name)?);
        }
        for (name, file) in [
            (".pcrsig", "tpm2-pcr-signature.json"),
            (".pcrpkey", "tpm2-pcr-public-key.pem"),
            (".osrel", "os-release"),
        ] {
            if let Some(data) = bytes(name)? {
                parts.push(stub_cpio_literal(".extra", file, &data));
            }
        }
        return Ok(match parts.len() {
            0 => None,
            1 => parts.pop(),
            _ => Some(parts.iter().fold(Vec::new(), |mut all, p| {
                all.extend_from_slice(p);
                all.resize(all.len().next_multiple_of(4), 0);
                all
            })),
        });
    }
    let mut generated: Vec<&str> = [".pcrsig", ".pcrpkey"]
        .into_iter()
        .filter(|n| pe.section_by_name(n).is_some())
        .collect();
    if stub.version >= 256 && pe.section_by_name(".ucode").is_some() {
        generated.push(".ucode");
    }
    if stub.version >= 258 && pe.section_by_name(".osrel").is_some() {
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
    bytes(".initrd")
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
            // The stub passes mangle_stub_cmdline() of the section as LoadOptions.
            let cmdline = mangle_stub_cmdline(cmdline, stub.version);
            events.push(Event::hashed(
                "LOADED_IMAGE::LoadOptions (.cmdline)",
                EventType::EV_EVENT_TAG,
                &utf16le_nul(&cmdline),
            ));
        }
        if let Some(initrd) = stub_initrd(boot, &pe, &stub)? {
            if !initrd.is_empty() {
                let label = if stub.version == 257 {
                    "Linux initrd (as systemd-stub 257 combines it)"
                } else {
                    "Linux initrd (.initrd)"
                };
                events.push(Event::hashed(label, EventType::EV_EVENT_TAG, &initrd));
            }
        }
    }
    Ok(events)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cmdline_mangling() {
        let text = " \tconsole=ttyS0\npanic=-1 \n";
        assert_eq!(mangle_stub_cmdline(text, 257), "console=ttyS0 panic=-1");
        assert_eq!(mangle_stub_cmdline(text, 252), "  console=ttyS0 panic=-1");
        assert_eq!(mangle_stub_cmdline("a\u{7f}b", 257), "a b");
        assert_eq!(mangle_stub_cmdline("a\u{7f}b", 252), "a\u{7f}b");
    }

    /// The bytes `pack_cpio_literal()` writes for `.extra/os-release` = "ID=x\n" (hand-checked
    /// against systemd 257.13's cpio.c: 110-byte headers, names padded to 4, 124-byte trailer).
    #[test]
    fn cpio_literal_layout() {
        let c = stub_cpio_literal(".extra", "os-release", b"ID=x\n");
        // dir: 110 + ".extra\0" = 117 -> 120; file: 110 + 18 = 128, data 5 -> 8; trailer 124.
        assert_eq!(c.len(), 120 + 128 + 8 + 124);
        assert!(c.starts_with(b"070701000000010000416d000000000000000000000001"));
        assert_eq!(&c[120..126], b"070701");
        assert_eq!(&c[120 + 6..120 + 22], b"0000000200008124");
        assert_eq!(&c[120 + 110..120 + 128], b".extra/os-release\0");
        assert_eq!(&c[248..256], b"ID=x\n\0\0\0");
        assert_eq!(
            &c[256..],
            concat!(
                "070701",
                "00000000",
                "00000000",
                "00000000",
                "00000000",
                "00000001",
                "00000000",
                "00000000",
                "00000000",
                "00000000",
                "00000000",
                "00000000",
                "0000000B",
                "00000000",
                "TRAILER!!!\0\0\0\0"
            )
            .as_bytes()
        );
    }

    #[test]
    fn stub_note_names_a_given_version() {
        let mut boot = UkiBoot::new(b"not read", Vec::new());
        boot.stub_version = Some(257);
        assert_eq!(
            boot.stub_note().unwrap(),
            "predicted for systemd-stub 257 (version given, not read from the UKI's .sdmagic)"
        );
    }
}
