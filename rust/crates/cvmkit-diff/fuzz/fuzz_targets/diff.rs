//! Sniffing and recursion on two arbitrary inputs: the first two bytes say where the data
//! splits into A and B. Must never panic, hang or take unbounded memory; the small limits keep
//! each run fast.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((split, rest)) = data.split_first_chunk::<2>() else {
        return;
    };
    let at = usize::from(u16::from_le_bytes(*split)).min(rest.len());
    let (a, b) = rest.split_at(at);
    let opts = cvmkit_diff::Options::default()
        .with_max_depth(12)
        .with_max_decompressed(8 << 20);
    let report = cvmkit_diff::diff_bytes("fuzz", a, b, &opts);
    if a == b {
        assert!(report.is_identical());
    } else {
        assert!(!report.is_identical());
    }
    let _ = report.render();
    let _ = report.to_json();
    let _ = cvmkit_diff::detect(a);
});
