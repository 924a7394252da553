//! Arbitrary bytes as a firmware image through every parser of cvmkit-ovmf.
//!
//! Run: `cd rust/crates/cvmkit-ovmf && cargo +nightly fuzz run parse_firmware -- -max_total_time=60`
//! (seed the corpus with `../tests/fixtures/*.bin` for a head start).
#![no_main]

use cvmkit_ovmf::Firmware;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(fw) = Firmware::parse(data) else {
        return;
    };
    let _ = fw.sev_metadata();
    let _ = fw.sev_hash_table();
    let _ = fw.sev_secret_block();
    let _ = fw.sev_es_reset_eip();
    if let Ok(Some(tdx)) = fw.tdx_metadata() {
        for section in &tdx.sections {
            // Validation promises that raw data lies inside the image.
            assert!(section.raw_data(data).is_some());
        }
    }
    if let Some(table) = fw.footer_table() {
        for entry in table.entries() {
            assert!(entry.offset + entry.data.len() <= data.len());
        }
    }
});
