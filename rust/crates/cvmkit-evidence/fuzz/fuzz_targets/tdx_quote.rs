//! A DCAP quote from an untrusted host: parsing and every check must return, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = cvmkit_evidence::tdx::verify(data, &cvmkit_evidence::tdx::Options::new(1_700_000_000));
});
