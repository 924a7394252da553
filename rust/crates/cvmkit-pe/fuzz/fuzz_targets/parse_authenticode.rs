//! Parses arbitrary bytes as a PE image and, when that succeeds, exercises everything that
//! reads through the validated offsets: Authenticode (plain, padded, one-pass), the checksum,
//! section data and the symbol table. None of it may panic.
//!
//! Run with `cargo +nightly fuzz run parse_authenticode` from this directory; seed the corpus
//! with real images (`mkdir -p corpus/parse_authenticode && cp $STUB corpus/parse_authenticode/`).
#![no_main]

use cvmkit_pe::sha2::Sha256;
use cvmkit_pe::PeFile;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(pe) = PeFile::parse(data) else { return };
    let ranges = pe.authenticode_ranges();
    assert!(ranges
        .iter()
        .all(|r| r.start < r.end && r.end <= data.len()));
    let both = pe.authenticode_sha256_sha384();
    assert_eq!(both.sha256.to_vec(), pe.authenticode::<Sha256>());
    let _ = pe.authenticode_padded::<Sha256>();
    let _ = pe.computed_checksum();
    let _ = pe.coff_symbol_table();
    let _ = pe.certificate_table();
    for s in pe.sections() {
        let raw = pe.section_data(s).expect("validated by parse");
        let virt = pe.section_virtual_data(s).expect("validated by parse");
        assert!(virt.len() <= raw.len());
        let _ = s.name();
    }
});
