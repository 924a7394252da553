//! Arbitrary bytes as QEMU's `etc/table-loader` (`acpi_blobs`, what `cvmkit measure tdx
//! --acpi-dir` reads): the blobs OVMF measures into RTMR0, in order. The loader itself comes
//! first, then one blob per ALLOCATE command, each a file that was given. None of it may panic.
//!
//! Run with `cargo +nightly fuzz run table_loader` from this directory; seed the corpus with a
//! loader dumped from QEMU (`etc/table-loader` of an `--acpi-dir`).
#![no_main]

use std::collections::BTreeMap;

use cvmkit_tdx::acpi_blobs;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let files: BTreeMap<String, &[u8]> = BTreeMap::from([
        ("etc/acpi/rsdp".to_owned(), &b"RSD PTR "[..]),
        ("etc/acpi/tables".to_owned(), &b"FACSDSDT"[..]),
        ("etc/tpm/log".to_owned(), &b""[..]),
        ("".to_owned(), &b"empty name"[..]),
    ]);
    match acpi_blobs(data, &files) {
        Ok(blobs) => {
            assert_eq!(blobs[0].name, "etc/table-loader");
            assert_eq!(blobs[0].data, data);
            assert!(blobs.len() <= 1 + data.len() / 128);
            for b in &blobs[1..] {
                assert_eq!(files.get(&b.name).copied(), Some(b.data));
            }
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
