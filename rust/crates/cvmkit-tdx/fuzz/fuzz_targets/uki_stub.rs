//! Arbitrary bytes as a UKI through the boot-path model the TDX prediction uses (cvmkit-uefi-boot
//! via `UkiBoot`: the systemd-stub version from `.sdmagic`, `#### LoaderInfo: systemd-stub
//! VERSION ####`, the sections it measures, then RTMR1 and RTMR2). The PE image is parsed by
//! cvmkit-pe (`PeFile::parse`; fuzzed there as `parse_authenticode`). None of it may panic.
//!
//! Run with `cargo +nightly fuzz run uki_stub -- -max_len=131072` from this directory; seed the
//! corpus with real stubs (`mkdir -p corpus/uki_stub && cp $STUB $STUB_TRIXIE corpus/uki_stub/`,
//! see `.cache/inputs/inputs.env`).
#![no_main]

use cvmkit_tdx::{uki_rtmr1, uki_rtmr2, LinuxStubMeasurement, OvmfProfile, UkiBoot};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let boot = UkiBoot::new(data, vec![0; 92]);
    match boot.stub() {
        Ok(stub) => {
            assert!(stub.version >= 252, "{stub:?}");
            assert!(boot.stub_note().unwrap().contains(&stub.version.to_string()));
            let _ = uki_rtmr1(&boot, &OvmfProfile::EDK2_202411).map(|e| e.len());
            let _ = uki_rtmr2(&boot, LinuxStubMeasurement::CcMeasurement).map(|e| e.len());
        }
        Err(e) => {
            assert!(!e.to_string().contains('\n'), "{e}");
        }
    }
});
