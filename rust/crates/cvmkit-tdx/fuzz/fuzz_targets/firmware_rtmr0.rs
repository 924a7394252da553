//! Arbitrary bytes as a TDVF firmware image through what RTMR0 reads from it: the CFV (the UEFI
//! variable store, `cfv`), the TD HOB QEMU builds from the TDVF sections (`td_hob`) and the whole
//! event list (`rtmr0_events`). The image's footer table and TDVF descriptor are parsed by
//! cvmkit-ovmf (`Firmware::parse_named`, `Firmware::tdx_metadata`; fuzzed there as
//! `parse_firmware`). The CFV must lie inside the image, the HOB must be a PHIT plus whole
//! resource descriptors. None of it may panic.
//!
//! Input: the guest memory size (u64 LE), then the firmware image.
//!
//! Run with `cargo +nightly fuzz run firmware_rtmr0` from this directory; seed the corpus with
//! `cvmkit_tdx::testing::tiny_tdvf()` behind 8 bytes of memory size.
#![no_main]

use cvmkit_tdx::cvmkit_ovmf::Firmware;
use cvmkit_tdx::{
    cfv, rtmr0_events, td_hob, MemoryLayout, OvmfProfile, Rtmr0Inputs, SecureBootVariables,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((memory, image)) = data.split_first_chunk::<8>() else {
        return;
    };
    let layout = MemoryLayout::q35(u64::from_le_bytes(*memory));
    let Ok(fw) = Firmware::parse_named(image, "fuzz.fd") else {
        return;
    };
    let Ok(Some(metadata)) = fw.tdx_metadata() else {
        return;
    };

    if let Ok(store) = cfv(&fw, &metadata) {
        let (start, end) = (
            image.as_ptr() as usize,
            image.as_ptr() as usize + image.len(),
        );
        let at = store.as_ptr() as usize;
        assert!(store.is_empty() || (start <= at && at + store.len() <= end));
    }
    match td_hob(&metadata, fw.name(), layout) {
        Ok(hob) => assert!(
            hob.len() >= 56 && (hob.len() - 56) % 48 == 0,
            "{}",
            hob.len()
        ),
        Err(e) => {
            let _ = e.to_string();
        }
    }
    let inputs = Rtmr0Inputs {
        secure_boot: SecureBootVariables::setup_mode(),
        acpi: Some(Vec::new()),
        ..Rtmr0Inputs::default()
    };
    for ovmf in [OvmfProfile::EDK2_202411, OvmfProfile::EDK2_BEFORE_202411] {
        if let Err(e) = rtmr0_events(&fw, &metadata, layout, &inputs, &ovmf) {
            let _ = e.to_string();
        }
    }
});
