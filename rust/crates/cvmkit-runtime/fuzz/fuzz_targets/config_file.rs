//! `/etc/cvmkit/runtime.conf` text (`name = value` lines): nothing may panic. (The file is the
//! image's, measured with it; fuzzed anyway because a parser bug there would stop every boot.)
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let mut cfg = cvmkit_runtime::config::RuntimeConfig::default();
        if cfg.apply_text(std::path::Path::new("fuzz.conf"), text).is_ok() {
            assert!(cfg.max_workloads >= 1);
            assert!(cfg.tpm_pcr <= 23);
        }
    }
});
