//! A manifest metadata value from the host: base64 of JSON (`decode`), the JSON itself
//! (`decode_json`), and the workload-count check on what decodes. Nothing may panic; what decodes
//! must give events, and a list the check accepts must have distinct ports.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(m) = cvmkit_manifest::decode(text) {
            assert!(!m.is_empty());
            check(&m);
        }
    }
    if let Ok(m) = cvmkit_manifest::decode_json(data) {
        check(&m);
    }
});

fn check(m: &[cvmkit_manifest::Manifest]) {
    let digests: Vec<_> = m.iter().map(|x| x.sha256).collect();
    let base = cvmkit_manifest::BASE_PORT;
    let events = cvmkit_manifest::events(&digests, &[], base);
    assert_eq!(events.len(), m.len() + 1);
    if cvmkit_manifest::check_workloads(m.len(), base, cvmkit_manifest::MAX_WORKLOADS).is_ok() {
        let ports: std::collections::BTreeSet<u16> =
            (0..m.len()).map(|i| cvmkit_manifest::workload_port(base, i)).collect();
        assert_eq!(ports.len(), m.len());
    }
}
