//! An Azure IMDS `tagsList` answer from the host (JSON array of `{"name", "value"}`): nothing may
//! panic, and every name found is lower-case (lookups are case-insensitive).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(map) = cvmkit_runtime::metadata::parse_azure_tags(data) {
        assert!(map.keys().all(|k| *k == k.to_ascii_lowercase()));
    }
});
