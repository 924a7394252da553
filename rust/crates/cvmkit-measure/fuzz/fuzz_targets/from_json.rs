//! Arbitrary text as a measurement document (`Measurements::from_json`, what `cvmkit measure
//! check` and `cvmkit replay --expect` read). A document that parses must print and read back
//! to itself (`to_json`), compare with itself (`compare`), and take one more event on each of
//! its registers (`Register::push`, which reads the stored hex). None of it may panic.
//!
//! Run with `cargo +nightly fuzz run from_json` from this directory; seed the corpus with real
//! documents (`mkdir -p corpus/from_json && cp ../../../../testdata/*/expected*.json corpus/from_json/`).
#![no_main]

use cvmkit_measure::{compare, unhex, Event, Measurements, SCHEMA};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(doc) = Measurements::from_json(text) else {
        return;
    };
    assert_eq!(doc.schema, SCHEMA);
    let printed = doc.to_json();
    assert_eq!(Measurements::from_json(&printed).as_ref(), Ok(&doc));
    for row in compare(&doc, &doc) {
        let _ = row.is_match();
    }
    let mut grown = doc.clone();
    for r in &mut grown.registers {
        let len = r.bank.digest_len();
        r.push(Event::new("fuzz", None, vec![0xa5; len]));
        assert_eq!(unhex(&r.value).map(|v| v.len()), Some(len));
    }
});
