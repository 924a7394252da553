//! Arbitrary kernel bytes, initrd length, command line and memory layout through the x86 boot
//! protocol reader of direct boot (`patch_setup_header`, which runs the private
//! `LoaderPlan::new` checks of QEMU's loader, then writes the setup header fields), and the
//! direct-boot RTMR1/RTMR2 events built on it (`direct_boot_rtmr1`: the same checks, then the
//! kernel's Authenticode; `direct_boot_rtmr2`). A patched image keeps its length and differs only
//! in the fields QEMU writes. None of it may panic.
//!
//! Input: `below_4g` (u64 LE), `acpi_data_size` (u32 LE), a flag byte (bit 0: an initrd;
//! bit 1: QEMU < 10.2, which patches; bit 2: the initrd length is the next u64, else the next
//! u16), the initrd length, a command-line length byte and the command line, then the kernel.
//!
//! Run with `cargo +nightly fuzz run setup_header` from this directory.
#![no_main]

use cvmkit_tdx::{
    direct_boot_rtmr1, direct_boot_rtmr2, patch_setup_header, DirectBoot, LinuxStubMeasurement,
    MemoryLayout, OvmfProfile, QemuProfile,
};
use libfuzzer_sys::fuzz_target;

struct Input<'a>(&'a [u8]);

impl<'a> Input<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
    fn u16(&mut self) -> Option<u16> {
        Some(u16::from_le_bytes(self.take(2)?.try_into().ok()?))
    }
    fn u8(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }
}

/// Where QEMU's loader writes: `vid_mode`, `type_of_loader`, `loadflags`, `ramdisk_image`,
/// `ramdisk_size`, `heap_end_ptr`, `cmd_line_ptr`, and the old protocol's 0x20/0x22 words.
fn written(offset: usize) -> bool {
    matches!(offset, 0x1fa..=0x1fb | 0x210..=0x211 | 0x218..=0x21f | 0x224..=0x225 | 0x228..=0x22b | 0x20..=0x23)
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    let (Some(below_4g), Some(acpi_data_size), Some(flags)) =
        (input.u64(), input.u32(), input.u8())
    else {
        return;
    };
    let initrd_len = if flags & 4 != 0 {
        input.u64()
    } else {
        input.u16().map(u64::from)
    };
    let Some(initrd_len) = initrd_len else { return };
    let Some(cmdline_len) = input.u8() else {
        return;
    };
    let Some(cmdline) = input.take(usize::from(cmdline_len)) else {
        return;
    };
    let cmdline = String::from_utf8_lossy(cmdline);
    let kernel = input.0;
    let layout = MemoryLayout {
        below_4g,
        above_4g: 0,
    };
    let initrd = (flags & 1 != 0).then_some(initrd_len);

    match patch_setup_header(kernel, initrd, &cmdline, layout, acpi_data_size) {
        Ok(patched) => {
            assert_eq!(patched.len(), kernel.len());
            for (i, (a, b)) in kernel.iter().zip(&patched).enumerate() {
                assert!(a == b || written(i), "byte {i:#x} changed");
            }
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }

    // The same reader behind the events, with a real (small) initrd of the given length.
    let initrd_bytes = vec![0x5a; (initrd_len % 4096) as usize];
    let boot = DirectBoot {
        kernel,
        initrd: (flags & 1 != 0).then_some(&initrd_bytes[..]),
        cmdline: &cmdline,
    };
    let qemu = if flags & 2 != 0 {
        QemuProfile::QEMU_9
    } else {
        QemuProfile::QEMU_10_2
    };
    let ovmf = OvmfProfile::EDK2_202411;
    if let Err(e) = direct_boot_rtmr1(&boot, layout, &qemu, &ovmf) {
        let _ = e.to_string();
    }
    let _ = direct_boot_rtmr2(&boot, &ovmf, LinuxStubMeasurement::CcMeasurement);
});
