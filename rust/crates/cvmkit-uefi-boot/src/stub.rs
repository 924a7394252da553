//! Which systemd-stub built the UKI, and how that version measures.
//!
//! Read from systemd's sources: the systemd/systemd-stable tags v252 (and v252.31, the newest
//! 252 there; Debian's 252.39 stub behaves the same in the boot test), v253, v254, v255, v256,
//! Debian trixie's systemd 257.13 source package, and systemd/systemd main:
//! `src/fundamental/tpm-pcr.{c,h}` (252, 253) and `uki.{c,h}` (later) for the list,
//! `src/boot/efi/stub.c` (`efi_main()`, later `measure_sections()`), `measure.c`
//! (`tpm_log_event_ascii()`, later `tpm_log_ipl_event_ascii()`), `pe.c` (`locate_sections()`,
//! later `pe_locate_sections_internal()` and the profile functions), `linux.c` and
//! `secure-boot.c`.
//!
//! | version | sections measured into PCR 11, in this order | lookup | `.linux` started by |
//! |---|---|---|---|
//! | 252, 253 | `.linux .osrel .cmdline .initrd .splash .dtb .pcrpkey` | prefix, last wins | `LoadImage()` |
//! | 254, 255 | `.linux .osrel .cmdline .initrd .splash .dtb .uname .sbat .pcrpkey` | prefix, last wins | `LoadImage()` |
//! | 256 | `.linux .osrel .cmdline .initrd .ucode .splash .dtb .uname .sbat .pcrpkey` | prefix, last wins | `LoadImage()` |
//! | 257 | `.linux .osrel .cmdline .initrd .ucode .splash .dtb .uname .sbat .pcrpkey .profile .dtbauto .hwids` | exact, first wins, per profile | `LoadImage()` |
//! | ≥ 258 | as 257, then `.efifw` | as 257 | the stub's own PE loader |
//!
//! - `.pcrsig` is in the stub's list but never measured (`unified_section_measure()`).
//!   `.efifw` arrives after 257 (257.13's `UnifiedSection` ends with `.hwids`), so a 257 stub
//!   ignores it. A UKI with `.dtbauto` (257 on), or `.efifw` for a stub that knows it, is
//!   refused, since the stub measures the one that matches the machine.
//! - 252–256 `locate_sections()` compares `strlen(name)` bytes of the 8-byte header name
//!   (`memcmp`), so `.linuxX` counts as `.linux` and `.dtbauto` as `.dtb`, and keeps the *last*
//!   matching table entry. Newer `pe_locate_sections_internal()` compares whole names
//!   (`pe_section_name_equal()`) and keeps the first, looking in the base sections (those
//!   before the first `.profile`) and then in the chosen profile's sections, which override.
//! - Every version measures `VirtualSize` bytes at the section's address in the loaded image
//!   (252: `szs[]` = `VirtualSize`; 257: `PeSectionVector.memory_size` = `VirtualSize`): the
//!   raw data cut to `VirtualSize`, or followed by the loader's zero fill when `VirtualSize`
//!   exceeds `SizeOfRawData`. A section with `VirtualSize` 0 counts as absent. `systemd-measure`
//!   252 hashes the file it is given as is, so for a `.linux` whose `VirtualSize` is the
//!   kernel's `SizeOfImage` (current ukify) it disagrees with the 252 stub unless given the
//!   zero-padded kernel; newer `systemd-measure` pads `--linux` to `SizeOfImage` itself.
//! - Each section gives two `EV_IPL` events in PCR 11, `H(name ‖ NUL)` then `H(content)`; both
//!   carry the name as UTF-16 with NUL as event data (`tpm_log_event_ascii()`). Nothing else
//!   lands in PCR 11 before the kernel: 257's other stub measurements — a profile other than
//!   0, add-ons, credentials, system/configuration extensions, a `LoadOptions` or SMBIOS
//!   command line — go to PCR 12 and 13 (`EV_EVENT_TAG` for the new ones), not predicted here.
//! - 252–257 hand `.linux` (`VirtualSize` bytes from memory) to the firmware's `LoadImage()`,
//!   which measures its Authenticode into PCR 4 as `EV_EFI_BOOT_SERVICES_APPLICATION` — unless
//!   Secure Boot is on, when the stub's security-protocol override
//!   (`install_security_override()`, installed only under Secure Boot) accepts the buffer
//!   without calling the firmware handler that measures it. Kernels whose `MajorImageVersion`
//!   is 0 go through the EFI handover protocol instead (x86), also unmeasured. From 258
//!   (systemd PR #37372, "stub: call inner kernel directly") the stub copies the kernel's
//!   sections itself and nothing lands in PCR 4, except under Secure Boot with shim, which this
//!   crate does not model.
//!
//! cvmkit-tpm's `tests/boot.rs` boots UKIs of Debian's 252 (bookworm) and 257 (trixie) stubs under QEMU,
//! OVMF and swtpm and compares PCR 4 and PCR 11, event by event.

use cvmkit_pe::PeFile;

use crate::BootError as Error;

/// PCR 11 sections of systemd-stub 252 and 253.
const SECTIONS_252: &[&str] = &[
    ".linux", ".osrel", ".cmdline", ".initrd", ".splash", ".dtb", ".pcrpkey",
];
/// PCR 11 sections of systemd-stub 254 and 255 (`.uname` and `.sbat` added).
const SECTIONS_254: &[&str] = &[
    ".linux", ".osrel", ".cmdline", ".initrd", ".splash", ".dtb", ".uname", ".sbat", ".pcrpkey",
];
/// PCR 11 sections of systemd-stub 256 (`.ucode` added).
const SECTIONS_256: &[&str] = &[
    ".linux", ".osrel", ".cmdline", ".initrd", ".ucode", ".splash", ".dtb", ".uname", ".sbat",
    ".pcrpkey",
];
/// PCR 11 sections of systemd-stub 257 (`.profile`, `.dtbauto`, `.hwids` added).
const SECTIONS_257: &[&str] = &[
    ".linux", ".osrel", ".cmdline", ".initrd", ".ucode", ".splash", ".dtb", ".uname", ".sbat",
    ".pcrpkey", ".profile", ".dtbauto", ".hwids",
];
/// PCR 11 sections of systemd-stub 258 and later (`.efifw` added).
const SECTIONS_258: &[&str] = &[
    ".linux", ".osrel", ".cmdline", ".initrd", ".ucode", ".splash", ".dtb", ".uname", ".sbat",
    ".pcrpkey", ".profile", ".dtbauto", ".hwids", ".efifw",
];

/// The stub versions whose measurements a real boot confirms, event by event (cvmkit-tpm's
/// `tests/boot.rs`: Debian bookworm's 252 and trixie's 257 under QEMU, OVMF and swtpm).
pub const BOOT_CONFIRMED: [u32; 2] = [252, 257];

/// The oldest stub version this crate models (the first with PCR 11 and `LoadImage()`).
pub const MIN_STUB_VERSION: u32 = 252;

/// How a stub version finds and measures sections; see the module table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StubBehaviour {
    /// Measured into PCR 11, in this order.
    pub sections: &'static [&'static str],
    /// 252–256: `memcmp` on the name's length, last table entry wins, no profiles.
    pub prefix_last_wins: bool,
    /// ≤ 257: `.linux` goes through the firmware's `LoadImage()`.
    pub kernel_load_image: bool,
}

impl StubBehaviour {
    /// The behaviour of systemd-stub `major`; before 252 there is nothing to predict.
    pub fn for_version(major: u32) -> Result<StubBehaviour, Error> {
        let (sections, prefix_last_wins) = match major {
            0..=251 => return Err(Error::UnsupportedStubVersion { version: major }),
            252..=253 => (SECTIONS_252, true),
            254..=255 => (SECTIONS_254, true),
            256 => (SECTIONS_256, true),
            257 => (SECTIONS_257, false),
            _ => (SECTIONS_258, false),
        };
        Ok(StubBehaviour {
            sections,
            prefix_last_wins,
            kernel_load_image: major <= 257,
        })
    }
}

/// The section names systemd-stub `version` measures into PCR 11, in its order (before the
/// profile and device-tree rules narrow them down).
///
/// ```
/// assert_eq!(
///     cvmkit_uefi_boot::pcr11_sections(252)?,
///     [".linux", ".osrel", ".cmdline", ".initrd", ".splash", ".dtb", ".pcrpkey"]
/// );
/// assert_eq!(cvmkit_uefi_boot::pcr11_sections(255)?[6..8], [".uname", ".sbat"]);
/// assert_eq!(
///     cvmkit_uefi_boot::pcr11_sections(251),
///     Err(cvmkit_uefi_boot::BootError::UnsupportedStubVersion { version: 251 })
/// );
/// # Ok::<(), cvmkit_uefi_boot::BootError>(())
/// ```
pub fn pcr11_sections(version: u32) -> Result<&'static [&'static str], Error> {
    StubBehaviour::for_version(version).map(|b| b.sections)
}

/// The stub's identification, from its `.sdmagic` section.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StubInfo {
    /// Major systemd version, e.g. 252.
    pub version: u32,
    /// The `.sdmagic` text without the `#### LoaderInfo:` frame, e.g.
    /// `systemd-stub 252.39-1~deb12u2`; `None` when the version was given, not detected.
    pub loader_info: Option<String>,
}

impl StubInfo {
    /// A line for the notes of a measurement document, naming the stub the prediction is for
    /// and where its version came from, e.g. `predicted for systemd-stub 257 (detected from the
    /// stub's .sdmagic: "systemd-stub 257.13-1~deb13u1")`.
    /// For a version no real boot has confirmed, the note says so: a prediction says when it is
    /// unsure.
    pub fn note(&self) -> String {
        let mut note = match &self.loader_info {
            Some(info) => format!(
                "predicted for systemd-stub {} (detected from the stub's .sdmagic: {info:?})",
                self.version
            ),
            None => format!(
                "predicted for systemd-stub {} (version given, not read from the UKI's .sdmagic)",
                self.version
            ),
        };
        if !BOOT_CONFIRMED.contains(&self.version) {
            note.push_str(&format!(
                "; this version is modelled from systemd's sources, not confirmed by a boot (boots confirm {} and {})",
                BOOT_CONFIRMED[0], BOOT_CONFIRMED[1]
            ));
        }
        note
    }
}

/// Reads `#### LoaderInfo: systemd-stub <version> ####` from `.sdmagic` (`stub.c` puts
/// `GIT_VERSION` there, e.g. `252.39-1~deb12u2`, `257.4-3`, `v258-rc1-12-gabcdef`).
pub fn detect(pe: &PeFile<'_>) -> Result<StubInfo, Error> {
    let section = pe
        .sections()
        .iter()
        .find(|s| s.header.name_bytes() == b".sdmagic")
        .ok_or(Error::NoSdMagic)?;
    let data = pe.section_virtual_data(section).map_err(Error::Pe)?;
    let end = data.iter().position(|&b| b == 0).unwrap_or(data.len());
    let text = String::from_utf8_lossy(&data[..end]);
    let info = text
        .trim()
        .strip_prefix("#### LoaderInfo:")
        .and_then(|t| t.strip_suffix("####"))
        .map(str::trim);
    let Some(info) = info else {
        return Err(Error::BadSdMagic {
            text: text.escape_debug().to_string(),
        });
    };
    let version = info
        .strip_prefix("systemd-stub ")
        .and_then(parse_major)
        .ok_or_else(|| Error::NotSystemdStub {
            loader_info: info.escape_debug().to_string(),
        })?;
    Ok(StubInfo {
        version,
        loader_info: Some(info.to_string()),
    })
}

/// The leading decimal number of a version string, after an optional `v`.
fn parse_major(v: &str) -> Option<u32> {
    let v = v.trim_start_matches('v');
    let digits = v.bytes().take_while(u8::is_ascii_digit).count();
    v[..digits].parse().ok()
}

/// systemd-stub's `mangle_stub_cmdline()`, applied to `.cmdline` before it becomes the kernel's
/// `LoadOptions`. 252 (252.39's `util.c`): control characters (< 0x20) become spaces, trailing
/// spaces are chopped. 257 (257.13's `util.c`): leading whitespace and control characters
/// (≤ 0x20, 0x7f) are skipped, inner ones become spaces, trailing ones are chopped. Versions in
/// between are taken to behave as 252, later ones as 257 (not read). Both confirmed by the
/// kernel's `LoadOptions` measurement in cvmkit-tpm's boot test, on a `.cmdline` ending in a
/// newline.
pub fn mangle_stub_cmdline(cmdline: &str, version: u32) -> String {
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
pub(crate) fn stub_cpio_literal(dir: &str, name: &str, data: &[u8]) -> Vec<u8> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn majors() {
        assert_eq!(parse_major("252.39-1~deb12u2"), Some(252));
        assert_eq!(parse_major("v258-rc1-12-gabcdef"), Some(258));
        assert_eq!(parse_major("257.4-3"), Some(257));
        assert_eq!(parse_major("~rc"), None);
        assert_eq!(parse_major("99999999999"), None);
    }

    #[test]
    fn notes() {
        let detected = StubInfo {
            version: 257,
            loader_info: Some("systemd-stub 257.13-1~deb13u1".into()),
        };
        assert_eq!(
            detected.note(),
            "predicted for systemd-stub 257 (detected from the stub's .sdmagic: \"systemd-stub 257.13-1~deb13u1\")"
        );
        let given = StubInfo {
            version: 252,
            loader_info: None,
        };
        assert_eq!(
            given.note(),
            "predicted for systemd-stub 252 (version given, not read from the UKI's .sdmagic)"
        );
        let unconfirmed = StubInfo { version: 256, loader_info: None };
        assert_eq!(
            unconfirmed.note(),
            "predicted for systemd-stub 256 (version given, not read from the UKI's .sdmagic); this version is modelled from systemd's sources, not confirmed by a boot (boots confirm 252 and 257)"
        );
    }

    #[test]
    fn behaviours() {
        let b = StubBehaviour::for_version(252).unwrap();
        assert!(b.prefix_last_wins && b.kernel_load_image);
        assert!(!b.sections.contains(&".sbat"));
        let b = StubBehaviour::for_version(257).unwrap();
        assert!(!b.prefix_last_wins && b.kernel_load_image);
        assert_eq!(b.sections.last(), Some(&".hwids"), "257.13 knows no .efifw");
        let b = StubBehaviour::for_version(258).unwrap();
        assert!(!b.kernel_load_image);
        assert_eq!(b.sections.last(), Some(&".efifw"));
        assert_eq!(
            StubBehaviour::for_version(250).unwrap_err().to_string(),
            "systemd-stub 250 is not supported: PCR 11 predictions need systemd-stub 252 or later"
        );
    }

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

}
