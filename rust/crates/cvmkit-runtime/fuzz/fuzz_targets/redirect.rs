//! A redirect `Location` from the network, resolved against an app URL: nothing may panic, and
//! a target is always an `http(s)://` URL (never a file or another scheme).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    // The first line is the base URL (if it is one), the rest the Location.
    let (base, location) = text.split_once('\n').unwrap_or(("http://h/a/b?q", text));
    if let Ok(target) = cvmkit_runtime::http::redirect_target(base, location) {
        let scheme = target.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
        assert!(matches!(scheme.as_deref(), Some("http") | Some("https")), "{base} + {location} = {target}");
    }
});
