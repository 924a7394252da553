//! Arbitrary text as an image spec (`Spec::parse`, what `cvmkit build --spec` reads: JSON written
//! by the Nix library's mkSpec or by hand). A spec that parses must print and parse back to the
//! same value, with its paths already resolved. None of it may panic.
//!
//! Run with `cargo +nightly fuzz run parse_spec` from this directory; seed the corpus with real
//! specs (`mkdir -p corpus/parse_spec && cp ../../../../examples/own-program/image.json corpus/parse_spec/`).
#![no_main]

use std::path::Path;

use cvmkit_image::Spec;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match Spec::parse(text, "fuzz.json", Path::new("/base")) {
        Ok(spec) => {
            let printed = serde_json::to_string(&spec).expect("a parsed spec serializes");
            let again = Spec::parse(&printed, "printed.json", Path::new("/base")).expect("printed spec parses");
            assert_eq!(serde_json::to_string(&again).unwrap(), printed);
        }
        Err(e) => assert!(!e.to_string().contains('\n'), "{e}"),
    }
});
