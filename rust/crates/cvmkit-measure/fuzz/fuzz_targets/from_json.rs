//! Arbitrary text as a measurement document (`Measurements::from_json`, what `cvmkit measure
//! check` and `cvmkit replay --expect` read). A document that parses must print and read back
//! to itself (`to_json`), compare with itself (`compare`), and take one more event on each of
//! its registers (`Register::push`); a digest of the wrong length is refused. None of it may panic.
//!
//! Run with `cargo +nightly fuzz run from_json` from this directory; seed the corpus with real
//! documents (`mkdir -p corpus/from_json && cp ../../../../testdata/*/expected*.json corpus/from_json/`).
#![no_main]

use cvmkit_measure::{check, compare, Extra, Measurements, SCHEMA};
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
    // Not asserted to match: a document may name one register twice with different values.
    for row in compare(&doc, &doc, Extra::Unexpected) {
        let _ = row.first_difference();
    }
    let _ = check(std::slice::from_ref(&doc), std::slice::from_ref(&doc)).is_match();
    let mut grown = doc.clone();
    for r in &mut grown.registers {
        let len = r.bank.digest_size();
        r.push("fuzz", None, &vec![0xa5; len]).unwrap();
        assert_eq!(r.value.as_bytes().len(), len);
        assert!(r.push("short", None, &vec![0; len - 1]).is_err());
    }
});
