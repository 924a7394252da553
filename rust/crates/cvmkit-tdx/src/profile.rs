//! What the VMM, the firmware and the kernel do that changes the measurements, as knobs with
//! defaults for current versions.

use crate::mrtd::PageOrder;

/// QEMU's behaviour, by version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct QemuProfile {
    /// The order pages are added and extended (MRTD).
    pub page_order: PageOrder,
    /// Whether QEMU writes boot-protocol fields into the kernel's setup header before handing
    /// the kernel to OVMF over fw_cfg (direct boot). QEMU < 10.2 does it for TDX guests too (only
    /// SEV was spared: `if (!sev_enabled() && protocol > 0)`), so the kernel OVMF measures is the
    /// patched one; QEMU ≥ 10.2 skips the patch for every confidential guest
    /// (`if (!MACHINE(x86ms)->cgs && protocol > 0)` in `x86_load_linux`, `hw/i386/x86-common.c`),
    /// so the file is measured as it is.
    ///
    /// The boundary, read from QEMU's sources: commit a7542a38f399 ("x86/loader: Don't update
    /// kernel header for CoCo VMs") was applied "for 10.2" and pulled on 2025-08-27, the day after
    /// 10.1.0 was released; 10.0.2 and 10.0.13 (Debian's bookworm-backports and trixie source
    /// packages) still test `!sev_enabled()`, 10.2.2 (Debian sid) tests `!MACHINE(x86ms)->cgs`, and
    /// the 10.1.x stable round-ups (10.1.1–10.1.3) do not carry it.
    pub patch_kernel_header: bool,
    /// `acpi_data_size` of the machine type: the initrd is placed below
    /// `below_4g_mem_size - acpi_data_size`. 0x28000 for every q35 machine type TDX supports.
    pub acpi_data_size: u32,
}

impl QemuProfile {
    /// QEMU 8.x with the TDX patches (two-pass page add, patched kernel header).
    pub const QEMU_8: QemuProfile = QemuProfile {
        page_order: PageOrder::TwoPass,
        patch_kernel_header: true,
        acpi_data_size: 0x28000,
    };
    /// QEMU 9.x and 10.0 TDX trees (interleaved page add, patched kernel header): what dstack-mr
    /// and tinfoil tdx-measure model by default.
    pub const QEMU_9: QemuProfile = QemuProfile {
        page_order: PageOrder::Interleaved,
        patch_kernel_header: true,
        acpi_data_size: 0x28000,
    };
    /// Upstream QEMU 10.1, the first release with TDX upstream: interleaved page add, kernel
    /// header still patched for TDX guests.
    pub const QEMU_10_1: QemuProfile = QemuProfile {
        page_order: PageOrder::Interleaved,
        patch_kernel_header: true,
        acpi_data_size: 0x28000,
    };
    /// Upstream QEMU ≥ 10.2: interleaved page add, kernel header left alone for every
    /// confidential guest. The default.
    pub const QEMU_10_2: QemuProfile = QemuProfile {
        page_order: PageOrder::Interleaved,
        patch_kernel_header: false,
        acpi_data_size: 0x28000,
    };

    /// The profile of QEMU `major.minor`.
    pub fn for_version(major: u32, minor: u32) -> QemuProfile {
        if major < 9 {
            QemuProfile::QEMU_8
        } else if (major, minor) < (10, 1) {
            QemuProfile::QEMU_9
        } else if (major, minor) < (10, 2) {
            QemuProfile::QEMU_10_1
        } else {
            QemuProfile::QEMU_10_2
        }
    }
}

impl Default for QemuProfile {
    /// [`QemuProfile::QEMU_10_2`].
    fn default() -> QemuProfile {
        QemuProfile::QEMU_10_2
    }
}

/// Where OVMF's ReadyToBoot separator goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SeparatorLayout {
    /// edk2 before `edk2-stable202411`: TdTcg2Dxe's ReadyToBoot separator is extended into
    /// RTMR0 a second time and RTMR1 gets none (the bug edk2 commit efaf8931 "OvmfPkg/TdTcg2Dxe:
    /// Fix the SeparatorEvent issue in RTMRs" fixed). Seen in the trustee and Intel QEMU logs of
    /// the fixtures (`CCEL_data_ovmf`, `CCEL_data_grub`, `CCEL_unpadded.data.bin`).
    Edk2Before202411,
    /// edk2-stable202411 and later: one separator in RTMR0 (after the Secure Boot variables) and
    /// one in RTMR1 (after "Calling EFI Application from Boot Option"), as in dstack's logs and
    /// GCE's.
    #[default]
    Edk2Since202411,
}

/// How OVMF's QEMU kernel loader (`X86QemuLoadImageLib`) builds the kernel's `LoadOptions`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum LoadOptionsLayout {
    /// `CMDLINE initrd=initrd` (the suffix only with an initrd): edk2 up to and including
    /// edk2-stable202505, e.g. Debian's and dstack's OVMF.
    #[default]
    InitrdAppended,
    /// `initrd=initrd CMDLINE` (`initrd=initrd ` without a command line): edk2 after PR #11115
    /// ("\[QemuLoadImageLib\] Prefix initrd=initrd in cmdline", merged after edk2-stable202505).
    InitrdPrefixed,
}

/// The firmware's measurement behaviour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct OvmfProfile {
    /// Whether the firmware extends RTMRs at all: it must produce
    /// `EFI_CC_MEASUREMENT_PROTOCOL` (`TdTcg2Dxe`) and measure the TD HOB and CFV. Debian
    /// bookworm's OVMF.fd (edk2 2022.11) boots as a TD but has no `TdTcg2Dxe` and no TD HOB/CFV
    /// measurement (TDX measurement reached OvmfPkgX64 in edk2-stable202302), so RTMR0-2 stay
    /// zero: see [`OvmfProfile::NO_CC_MEASUREMENT`].
    pub cc_measurement: bool,
    /// Where the ReadyToBoot separator goes.
    pub separator: SeparatorLayout,
    /// How the direct-boot command line is built.
    pub load_options: LoadOptionsLayout,
}

impl OvmfProfile {
    /// edk2-stable202411 to edk2-stable202502 (and snapshots between): the RTMR0 event list of
    /// dstack's "pre202505" OVMF, which dstack-mr and tinfoil tdx-measure model. The default.
    pub const EDK2_202411: OvmfProfile = OvmfProfile {
        cc_measurement: true,
        separator: SeparatorLayout::Edk2Since202411,
        load_options: LoadOptionsLayout::InitrdAppended,
    };
    /// edk2-stable202302 to edk2-stable202408 (e.g. Ubuntu 24.04's OVMF): two separators in RTMR0,
    /// none in RTMR1.
    pub const EDK2_BEFORE_202411: OvmfProfile = OvmfProfile {
        cc_measurement: true,
        separator: SeparatorLayout::Edk2Before202411,
        load_options: LoadOptionsLayout::InitrdAppended,
    };
    /// A TDX-capable build without CC measurement (Debian bookworm's OVMF.fd, edk2 2022.11):
    /// every RTMR stays zero.
    pub const NO_CC_MEASUREMENT: OvmfProfile = OvmfProfile {
        cc_measurement: false,
        separator: SeparatorLayout::Edk2Before202411,
        load_options: LoadOptionsLayout::InitrdAppended,
    };
}

impl Default for OvmfProfile {
    /// [`OvmfProfile::EDK2_202411`].
    fn default() -> OvmfProfile {
        OvmfProfile::EDK2_202411
    }
}

/// Whether the Linux kernel's EFI stub measures its command line and initrd into RTMR2.
///
/// The stub extends `LOADED_IMAGE::LoadOptions` (the UTF-16 `LoadOptions` with its NUL, as
/// given) and `Linux initrd` (the initrd served through `LINUX_EFI_INITRD_MEDIA_GUID`) as
/// `EV_EVENT_TAG` events into PCR 9, which maps to RTMR2 — but only through a measurement
/// protocol the firmware provides. In a TD that is `EFI_CC_MEASUREMENT_PROTOCOL`, which only
/// stubs with the CC-measurement fallback of Kuppuswamy Sathyanarayanan's libstub series
/// ("efi/libstub: … CC measurement") use; older stubs know only `EFI_TCG2_PROTOCOL`, absent in a
/// TD. Debian bookworm's 6.1 kernel has such an older stub: its image holds the "Linux initrd" and
/// "LOADED_IMAGE::LoadOptions" events and references the TCG2 protocol GUID, but not the CC one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum LinuxStubMeasurement {
    /// The stub measures through the CC protocol (what dstack-mr and tinfoil tdx-measure
    /// assume). The default.
    #[default]
    CcMeasurement,
    /// The stub does not measure into RTMRs.
    None,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kernel_header_is_patched_up_to_qemu_10_1_and_left_alone_from_10_2() {
        for (major, minor) in [(8, 2), (9, 2), (10, 0), (10, 1)] {
            assert!(QemuProfile::for_version(major, minor).patch_kernel_header, "{major}.{minor}");
        }
        for (major, minor) in [(10, 2), (10, 3), (11, 0)] {
            assert!(!QemuProfile::for_version(major, minor).patch_kernel_header, "{major}.{minor}");
        }
        assert_eq!(QemuProfile::default(), QemuProfile::for_version(10, 2));
        assert_eq!(QemuProfile::for_version(10, 1).page_order, PageOrder::Interleaved);
        assert_eq!(QemuProfile::for_version(8, 2).page_order, PageOrder::TwoPass);
    }
}
