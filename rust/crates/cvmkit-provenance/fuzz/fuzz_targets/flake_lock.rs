//! Arbitrary text as a flake.lock (`cvmkit provenance --flake-lock`): never a panic, errors are
//! one line naming the file.
#![no_main]

use cvmkit_provenance::statement::parse_flake_lock;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Err(e) = parse_flake_lock(text, "flake.lock") {
        let e = e.to_string();
        assert!(!e.contains('\n') && e.starts_with("flake lock flake.lock: "), "{e}");
    }
});
