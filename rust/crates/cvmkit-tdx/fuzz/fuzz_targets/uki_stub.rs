//! Arbitrary bytes as a UKI through the systemd-stub version reader of the TDX model
//! (`SystemdStub::detect` on the `.sdmagic` section, `#### LoaderInfo: systemd-stub VERSION
//! ####`, and `UkiBoot::stub_note`, which names it). The PE image is parsed by cvmkit-pe
//! (`PeFile::parse`; fuzzed there as `parse_authenticode`). None of it may panic.
//!
//! Run with `cargo +nightly fuzz run uki_stub -- -max_len=131072` from this directory; seed the
//! corpus with real stubs (`mkdir -p corpus/uki_stub && cp $STUB $STUB_TRIXIE corpus/uki_stub/`,
//! see `.cache/inputs/inputs.env`).
#![no_main]

use cvmkit_pe::PeFile;
use cvmkit_tdx::{SystemdStub, UkiBoot};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(pe) = PeFile::parse(data) else { return };
    let stub = SystemdStub::detect(&pe);
    if let Some(s) = &stub {
        let _ = (s.measures_sections(), s.loads_kernel_image(1));
        assert!(
            s.version_text.starts_with(|c: char| c.is_ascii_digit()),
            "{s:?}"
        );
    }
    let boot = UkiBoot::new(data, Vec::new());
    match boot.stub_note() {
        Ok(note) => assert!(stub.is_some(), "{note}"),
        Err(e) => {
            assert!(stub.is_none());
            let _ = e.to_string();
        }
    }
});
