//! The `hostname` metadata value from the host: nothing may panic; accepted names are
//! normalized DNS names (they go into nginx's configuration and the measured event), and the log
//! escaping leaves no control character.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let escaped = cvmkit_runtime::log::escape(text);
    assert!(!escaped.chars().any(char::is_control));
    if let Ok(names) = cvmkit_runtime::routes::parse_hostnames(text) {
        for n in &names {
            assert!(!n.is_empty() && n.len() <= 253);
            assert!(n.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.'));
        }
        let mut sorted = names.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), names.len());
        let plan = cvmkit_runtime::routes::plan(&names, 3, 3001);
        assert_eq!(plan.routes.len(), names.len());
    }
});
