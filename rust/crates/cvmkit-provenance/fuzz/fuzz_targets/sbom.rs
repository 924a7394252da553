//! Arbitrary text as two SBOMs (split at the first NUL): what `cvmkit diff` and `cvmkit verify
//! --candidate` read from image directories, which may come from anyone. Parsing, diffing and
//! explaining every register name must not panic, and errors are one line.
//!
//! Run with `cargo +nightly fuzz run sbom` from this directory; seed the corpus with a real
//! SBOM (`cvmkit build` of examples/own-program writes one).
#![no_main]

use cvmkit_provenance::{compare, sbom};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (a, b) = text.split_once('\0').unwrap_or((text, text));
    let (a, b) = match (sbom::parse(a, "a.json"), sbom::parse(b, "b.json")) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => {
            assert!(!e.to_string().contains('\n'), "{e}");
            return;
        }
    };
    let changes = compare::diff(&a, &b);
    for c in &changes {
        let _ = c.to_string();
    }
    assert!(compare::diff(&a, &a).is_empty(), "an SBOM differs from itself");
    for (platform, register) in [("tdx", "RTMR1"), ("tdx", "RTMR2"), ("tdx", "MRTD"), ("tpm", "PCR4"), ("tpm", "PCR99"), ("snp", "LAUNCH_DIGEST"), ("snp-direct-boot", "LAUNCH_DIGEST"), ("tpm", "PCR")] {
        let _ = compare::explain(platform, register, &a, Some(("b", &b)));
        let _ = compare::explain(platform, register, &a, None);
    }
    let printed = sbom::to_json(&a);
    assert_eq!(sbom::parse(&printed, "printed").expect("a printed SBOM parses"), a);
});
