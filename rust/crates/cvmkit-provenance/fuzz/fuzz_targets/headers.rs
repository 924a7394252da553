//! Arbitrary bytes as a bzImage and a systemd-stub: the version readers of the SBOM look into
//! inputs by offsets the file itself gives, so they must never read out of bounds or panic.
#![no_main]

use cvmkit_provenance::sbom::{bzimage_release, stub_version, sri_sha256_hex};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = bzimage_release(data);
    let _ = stub_version(data);
    if let Ok(s) = std::str::from_utf8(data) {
        if let Some(h) = sri_sha256_hex(s) {
            assert_eq!(h.len(), 64);
        }
    }
});
