//! Arbitrary bytes as a UKI through the systemd-stub version reader of the TPM model (the
//! private `stub::detect`: `.sdmagic`, `#### LoaderInfo: systemd-stub VERSION ####`), driven
//! through `predict` with no version given, the nearest public function: it detects the stub,
//! then locates the PCR 11 sections and hashes what a stub of that version measures. None of it
//! may panic.
//!
//! Images whose `SizeOfImage` exceeds 1 MiB are skipped: `predict` hashes each section's zero
//! fill up to `VirtualSize` (checked against `SizeOfImage`, at most 4 GiB) as the firmware
//! loads it, which is slow, not wrong.
//!
//! Run with `cargo +nightly fuzz run stub_version -- -max_len=131072` from this directory; seed
//! the corpus with real stubs (`mkdir -p corpus/stub_version && cp $STUB $STUB_TRIXIE
//! corpus/stub_version/`, see `.cache/inputs/inputs.env`).
#![no_main]

use cvmkit_pe::PeFile;
use cvmkit_tpm::stub::MIN_STUB_VERSION;
use cvmkit_tpm::{predict, Bank, TpmOptions};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(pe) = PeFile::parse(data) else { return };
    if pe.optional_header().size_of_image > 1 << 20 {
        return;
    }
    let opts = TpmOptions::default().with_banks([Bank::Sha256]);
    match predict(data, &opts) {
        Ok(p) => {
            assert!(p.stub.version >= MIN_STUB_VERSION);
            let info = p.stub.loader_info.as_deref().expect("detected, not given");
            assert!(info.starts_with("systemd-stub "), "{info:?}");
            let _ = p.stub.note();
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
