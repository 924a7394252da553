//! Direct kernel boot: QEMU `-kernel` / `-initrd` / `-append` with OVMF.
//!
//! QEMU hands OVMF the kernel over fw_cfg; OVMF's `QemuKernelLoaderFsDxe` serves it as the file
//! `kernel` and `X86QemuLoadImageLib` `LoadImage()`s it, so the firmware extends its Authenticode
//! digest into RTMR1 (`EV_EFI_BOOT_SERVICES_APPLICATION`). Before QEMU 10.2 the bytes are those
//! of the file after QEMU's x86 Linux loader wrote its boot-protocol fields into the setup
//! header ([`patch_setup_header`]); since 10.2 a confidential guest's kernel is left alone.
//!
//! OVMF then signals ReadyToBoot ("Calling EFI Application from Boot Option", the separator) and
//! starts the kernel, whose EFI stub measures the `LoadOptions` OVMF built and the initrd into
//! RTMR2 when it can ([`LinuxStubMeasurement`]); ExitBootServices adds two actions to RTMR1.

use crate::error::TdxError;
use crate::event::{Event, EventType};
use crate::profile::{
    LinuxStubMeasurement, LoadOptionsLayout, OvmfProfile, QemuProfile, SeparatorLayout,
};
use crate::tdhob::MemoryLayout;
use crate::uefi::utf16le_nul;

/// The inputs of a direct kernel boot.
#[derive(Debug, Clone, Copy)]
pub struct DirectBoot<'a> {
    /// The bzImage (`-kernel`), as a file.
    pub kernel: &'a [u8],
    /// The initrd (`-initrd`), if any. An empty file is no initrd to OVMF.
    pub initrd: Option<&'a [u8]>,
    /// The command line (`-append`), without the `initrd=initrd` OVMF adds.
    pub cmdline: &'a str,
}

/// `"HdrS"`, the magic of the Linux x86 boot protocol header at 0x202.
const HDRS: [u8; 4] = *b"HdrS";
/// `XLF_CAN_BE_LOADED_ABOVE_4G` in `xloadflags`.
const XLF_CAN_BE_LOADED_ABOVE_4G: u16 = 1 << 1;

fn kernel_error(what: &'static str, reason: impl Into<String>) -> TdxError {
    TdxError::Kernel {
        what,
        reason: reason.into(),
    }
}

fn u16_at(d: &[u8], o: usize) -> Option<u16> {
    Some(u16::from_le_bytes(d.get(o..o + 2)?.try_into().ok()?))
}

fn u32_at(d: &[u8], o: usize) -> Option<u32> {
    Some(u32::from_le_bytes(d.get(o..o + 4)?.try_into().ok()?))
}

fn put(d: &mut [u8], o: usize, bytes: &[u8]) {
    // Callers write below 0x260, inside the setup area QEMU checked to be in the file.
    if let Some(dst) = d.get_mut(o..o + bytes.len()) {
        dst.copy_from_slice(bytes);
    }
}

/// Parses QEMU's `vga=` value (`qemu_strtoui` base 0: decimal, `0x` hex, leading-0 octal) that
/// must end at the end of the string or a space.
fn vga_mode(cmdline: &str) -> Result<Option<u16>, TdxError> {
    let Some(pos) = cmdline.find("vga=") else {
        return Ok(None);
    };
    let v = &cmdline[pos + 4..];
    if v.starts_with("normal") {
        return Ok(Some(0xffff));
    }
    if v.starts_with("ext") {
        return Ok(Some(0xfffe));
    }
    if v.starts_with("ask") {
        return Ok(Some(0xfffd));
    }
    let word = v.split(' ').next().unwrap_or("");
    let parsed = if let Some(hex) = word.strip_prefix("0x").or_else(|| word.strip_prefix("0X")) {
        u32::from_str_radix(hex, 16).ok()
    } else if word.len() > 1 && word.starts_with('0') {
        u32::from_str_radix(&word[1..], 8).ok()
    } else {
        word.parse::<u32>().ok()
    };
    match parsed {
        // QEMU stores the low 16 bits (stw_le_p).
        Some(mode) => Ok(Some(mode as u16)),
        None => Err(kernel_error(
            "command line",
            format!("invalid 'vga=' parameter {word:?}: QEMU refuses to start"),
        )),
    }
}

/// The kernel image as OVMF receives it from QEMU < 10.2: the file with the fields QEMU's
/// `x86_load_linux` (`hw/i386/x86-common.c`) writes into the setup header:
///
/// | offset | field | value |
/// |---|---|---|
/// | 0x1fa | `vid_mode` | from `vga=` in the command line, when present |
/// | 0x210 | `type_of_loader` | 0xB0 (QEMU) for protocol ≥ 2.00 |
/// | 0x211 | `loadflags` | `|= CAN_USE_HEAP` (0x80) for protocol ≥ 2.01 |
/// | 0x218 | `ramdisk_image` | `(initrd_max - size) & !0xfff`, with an initrd |
/// | 0x21c | `ramdisk_size` | the initrd size, with an initrd |
/// | 0x224 | `heap_end_ptr` (u16) | `cmdline_addr - real_addr - 0x200` for protocol ≥ 2.01 |
/// | 0x228 | `cmd_line_ptr` | 0x20000 (protocol ≥ 2.02; older ones get 0xA33F/offset at 0x20) |
///
/// `initrd_max` is `u32::MAX` when protocol ≥ 2.12 and `XLF_CAN_BE_LOADED_ABOVE_4G`, else
/// `initrd_addr_max` (2.03+) or 0x37ffffff, and at most `below_4g_mem_size - acpi_data_size - 1`:
/// only this field depends on the memory size (q35 keeps 2 GiB below 4 GiB from 0xB000_0000
/// bytes of RAM on, so 2 GiB and 4 GiB give the same image).
pub fn patch_setup_header(
    kernel: &[u8],
    initrd_len: Option<u64>,
    cmdline: &str,
    layout: MemoryLayout,
    acpi_data_size: u32,
) -> Result<Vec<u8>, TdxError> {
    let plan = LoaderPlan::new(kernel, initrd_len, cmdline, layout, acpi_data_size)?;
    let mut k = kernel.to_vec();
    let protocol = plan.protocol;
    if protocol >= 0x202 {
        put(&mut k, 0x228, &plan.cmdline_addr.to_le_bytes());
    } else {
        put(&mut k, 0x20, &0xA33Fu16.to_le_bytes());
        put(
            &mut k,
            0x22,
            &(plan.cmdline_addr.wrapping_sub(plan.real_addr) as u16).to_le_bytes(),
        );
    }
    if let Some(mode) = vga_mode(cmdline)? {
        put(&mut k, 0x1fa, &mode.to_le_bytes());
    }
    if protocol >= 0x200 {
        put(&mut k, 0x210, &[0xB0]);
    }
    if protocol >= 0x201 {
        let flags = k.get(0x211).copied().unwrap_or(0) | 0x80;
        put(&mut k, 0x211, &[flags]);
        let heap_end = plan
            .cmdline_addr
            .wrapping_sub(plan.real_addr)
            .wrapping_sub(0x200) as u16;
        put(&mut k, 0x224, &heap_end.to_le_bytes());
    }
    if let Some((addr, size)) = plan.initrd {
        put(&mut k, 0x218, &addr.to_le_bytes());
        put(&mut k, 0x21c, &size.to_le_bytes());
    }
    Ok(k)
}

/// What QEMU's loader decides for a kernel, before it writes anything.
struct LoaderPlan {
    protocol: u16,
    real_addr: u32,
    cmdline_addr: u32,
    /// `(ramdisk_image, ramdisk_size)`.
    initrd: Option<(u32, u32)>,
}

impl LoaderPlan {
    /// The checks QEMU makes before it starts a guest with this kernel (it exits on failure).
    fn new(
        kernel: &[u8],
        initrd_len: Option<u64>,
        cmdline: &str,
        layout: MemoryLayout,
        acpi_data_size: u32,
    ) -> Result<LoaderPlan, TdxError> {
        if kernel.get(0x202..0x206) != Some(&HDRS[..]) {
            return Err(kernel_error(
                "image",
                "no Linux boot protocol header (\"HdrS\" at 0x202): not a bzImage, and OVMF's \
                 TDX direct boot needs one",
            ));
        }
        let protocol = u16_at(kernel, 0x206).unwrap_or(0);
        let loadflags = kernel.get(0x211).copied().unwrap_or(0);
        let setup_sects = match kernel.get(0x1f1).copied().unwrap_or(0) {
            0 => 4,
            n => n,
        };
        let setup_size = (usize::from(setup_sects) + 1) * 512;
        if setup_size > kernel.len() {
            return Err(kernel_error(
                "image",
                format!(
                    "setup area of {setup_size} bytes is larger than the {}-byte file: QEMU \
                     reports an invalid kernel header",
                    kernel.len()
                ),
            ));
        }
        let cmdline_size = ((cmdline.len() + 16) & !15) as u32;
        let (real_addr, cmdline_addr) =
            if protocol < 0x200 || loadflags & 0x01 == 0 || protocol < 0x202 {
                (0x90000u32, 0x9a000u32.saturating_sub(cmdline_size))
            } else {
                (0x10000, 0x20000)
            };
        let mut initrd_max: u64 = if protocol >= 0x20c
            && u16_at(kernel, 0x236).unwrap_or(0) & XLF_CAN_BE_LOADED_ABOVE_4G != 0
        {
            u64::from(u32::MAX)
        } else if protocol >= 0x203 {
            u64::from(u32_at(kernel, 0x22c).unwrap_or(0))
        } else {
            0x37ff_ffff
        };
        let ceiling = layout.below_4g.saturating_sub(u64::from(acpi_data_size));
        if initrd_max >= ceiling {
            initrd_max = ceiling.saturating_sub(1);
        }
        let initrd = match initrd_len {
            None => None,
            Some(size) => {
                if protocol < 0x200 {
                    return Err(kernel_error(
                        "image",
                        "too old to load a ram disk (boot protocol < 2.00)",
                    ));
                }
                if size >= initrd_max {
                    return Err(kernel_error(
                        "initrd",
                        format!(
                            "{size} bytes is too large: QEMU places it below {initrd_max:#x} \
                             with this memory size"
                        ),
                    ));
                }
                Some((((initrd_max - size) & !0xfff) as u32, size as u32))
            }
        };
        Ok(LoaderPlan {
            protocol,
            real_addr,
            cmdline_addr,
            initrd,
        })
    }
}

/// The command line OVMF gives the kernel as `LoadOptions` (without the UTF-16 NUL), `None`
/// when `LoadOptionsSize` is 0 (no command line and no initrd), in which case the stub measures
/// nothing. QEMU always passes the command line, empty when `-append` is absent.
pub fn load_options(cmdline: &str, has_initrd: bool, layout: LoadOptionsLayout) -> Option<String> {
    match (cmdline.is_empty(), has_initrd, layout) {
        (true, false, _) => None,
        (_, false, _) => Some(cmdline.to_owned()),
        (_, true, LoadOptionsLayout::InitrdAppended) => Some(format!("{cmdline} initrd=initrd")),
        (_, true, LoadOptionsLayout::InitrdPrefixed) => Some(format!("initrd=initrd {cmdline}")),
    }
}

/// The kernel's Authenticode SHA-384 as OVMF measures it (EDK2's rules: no padding to 8 bytes),
/// after QEMU's patches when `qemu.patch_kernel_header`.
pub fn kernel_digest(
    boot: &DirectBoot<'_>,
    layout: MemoryLayout,
    qemu: &QemuProfile,
) -> Result<crate::Digest384, TdxError> {
    let initrd_len = boot
        .initrd
        .filter(|i| !i.is_empty())
        .map(|i| i.len() as u64);
    // QEMU validates (and may refuse) the kernel whether or not it patches it.
    let patched = patch_setup_header(
        boot.kernel,
        initrd_len,
        boot.cmdline,
        layout,
        qemu.acpi_data_size,
    )?;
    let image: &[u8] = if qemu.patch_kernel_header {
        &patched
    } else {
        boot.kernel
    };
    authenticode_sha384(image, "kernel")
}

/// Authenticode SHA-384 of a PE image, named `what` in errors.
pub(crate) fn authenticode_sha384(image: &[u8], what: &str) -> Result<crate::Digest384, TdxError> {
    let pe = cvmkit_pe::PeFile::parse(image).map_err(|source| TdxError::Pe {
        what: what.to_owned(),
        source,
    })?;
    Ok(pe.authenticode_sha256_sha384().sha384)
}

/// The ExitBootServices actions that close RTMR1.
pub(crate) fn exit_boot_services() -> [Event; 2] {
    [
        Event::action(cvmkit_uefi_boot::EXIT_BOOT_SERVICES_INVOCATION),
        Event::action(cvmkit_uefi_boot::EXIT_BOOT_SERVICES_SUCCEEDED),
    ]
}

/// RTMR1 events of a direct boot: the kernel, "Calling EFI Application from Boot Option", the
/// separator (edk2 ≥ 202411), the ExitBootServices actions.
pub fn direct_boot_rtmr1(
    boot: &DirectBoot<'_>,
    layout: MemoryLayout,
    qemu: &QemuProfile,
    ovmf: &OvmfProfile,
) -> Result<Vec<Event>, TdxError> {
    let label = if qemu.patch_kernel_header {
        "kernel (Authenticode, setup header patched by QEMU)"
    } else {
        "kernel (Authenticode)"
    };
    let mut events = vec![Event::new(
        label,
        EventType::EV_EFI_BOOT_SERVICES_APPLICATION,
        kernel_digest(boot, layout, qemu)?,
    )];
    events.push(Event::action(cvmkit_uefi_boot::CALLING_EFI_APPLICATION));
    if ovmf.separator == SeparatorLayout::Edk2Since202411 {
        events.push(Event::separator());
    }
    events.extend(exit_boot_services());
    Ok(events)
}

/// RTMR2 events of a direct boot: the kernel EFI stub's `LOADED_IMAGE::LoadOptions` (UTF-16LE
/// with NUL) and `Linux initrd` (SHA-384 of the file), when the stub measures
/// ([`LinuxStubMeasurement`]).
pub fn direct_boot_rtmr2(
    boot: &DirectBoot<'_>,
    ovmf: &OvmfProfile,
    stub: LinuxStubMeasurement,
) -> Vec<Event> {
    if stub == LinuxStubMeasurement::None {
        return Vec::new();
    }
    let initrd = boot.initrd.filter(|i| !i.is_empty());
    let mut events = Vec::new();
    if let Some(options) = load_options(boot.cmdline, initrd.is_some(), ovmf.load_options) {
        events.push(Event::hashed(
            format!("LOADED_IMAGE::LoadOptions \"{options}\""),
            EventType::EV_EVENT_TAG,
            &utf16le_nul(&options),
        ));
    }
    if let Some(initrd) = initrd {
        events.push(Event::hashed(
            "Linux initrd",
            EventType::EV_EVENT_TAG,
            initrd,
        ));
    }
    events
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bzimage(protocol: u16, xlf: u16) -> Vec<u8> {
        let mut k = vec![0u8; 0x2000];
        k[0x1f1] = 3;
        k[0x202..0x206].copy_from_slice(b"HdrS");
        k[0x206..0x208].copy_from_slice(&protocol.to_le_bytes());
        k[0x211] = 0x01;
        k[0x22c..0x230].copy_from_slice(&0x7fff_ffffu32.to_le_bytes());
        k[0x236..0x238].copy_from_slice(&xlf.to_le_bytes());
        k
    }

    #[test]
    fn patches_the_fields_qemu_writes() {
        let k = bzimage(0x20f, 0x7f);
        let p = patch_setup_header(
            &k,
            Some(0x1000),
            "vga=0x317 quiet",
            MemoryLayout::q35(2 << 30),
            0x28000,
        )
        .unwrap();
        assert_eq!(p[0x210], 0xB0);
        assert_eq!(p[0x211], 0x81);
        assert_eq!(u16_at(&p, 0x224), Some(0xfe00));
        assert_eq!(u32_at(&p, 0x228), Some(0x20000));
        assert_eq!(u16_at(&p, 0x1fa), Some(0x317));
        // 2 GiB - 0x28000 - 1, minus the size, page aligned down.
        assert_eq!(u32_at(&p, 0x218), Some((0x7ffd_7fff - 0x1000) & !0xfff));
        assert_eq!(u32_at(&p, 0x21c), Some(0x1000));
        let diff: Vec<usize> = (0..k.len()).filter(|&i| k[i] != p[i]).collect();
        assert!(
            diff.iter().all(|&i| (0x1fa..0x22c).contains(&i)),
            "{diff:x?}"
        );
    }

    #[test]
    fn initrd_max_follows_xloadflags_between_2g_and_the_hole() {
        let layout = MemoryLayout::q35(0xA000_0000);
        let above =
            patch_setup_header(&bzimage(0x20f, 0x02), Some(0x1000), "", layout, 0x28000).unwrap();
        let below =
            patch_setup_header(&bzimage(0x20f, 0x00), Some(0x1000), "", layout, 0x28000).unwrap();
        assert_eq!(u32_at(&above, 0x218), Some((0x9ffd_7fff - 0x1000) & !0xfff));
        assert_eq!(u32_at(&below, 0x218), Some((0x7fff_ffff - 0x1000) & !0xfff));
    }

    #[test]
    fn refuses_what_qemu_refuses() {
        let k = bzimage(0x20f, 0x7f);
        let small = MemoryLayout::q35(64 << 20);
        assert!(matches!(
            patch_setup_header(&k, Some(64 << 20), "", small, 0x28000),
            Err(TdxError::Kernel { what: "initrd", .. })
        ));
        assert!(matches!(
            patch_setup_header(&k, None, "vga=bogus", small, 0x28000),
            Err(TdxError::Kernel {
                what: "command line",
                ..
            })
        ));
        assert!(matches!(
            patch_setup_header(b"MZ", None, "", small, 0x28000),
            Err(TdxError::Kernel { what: "image", .. })
        ));
        let mut short = bzimage(0x20f, 0);
        short.truncate(0x600);
        let r = patch_setup_header(&short, None, "", small, 0x28000);
        assert!(
            matches!(r, Err(TdxError::Kernel { what: "image", .. })),
            "{r:?}"
        );
    }

    #[test]
    fn load_options_follow_the_ovmf_layout() {
        use LoadOptionsLayout::*;
        assert_eq!(load_options("", false, InitrdAppended), None);
        assert_eq!(
            load_options("", true, InitrdAppended).as_deref(),
            Some(" initrd=initrd")
        );
        assert_eq!(
            load_options("a b", true, InitrdAppended).as_deref(),
            Some("a b initrd=initrd")
        );
        assert_eq!(
            load_options("a b", true, InitrdPrefixed).as_deref(),
            Some("initrd=initrd a b")
        );
        assert_eq!(
            load_options("a", false, InitrdPrefixed).as_deref(),
            Some("a")
        );
    }
}
