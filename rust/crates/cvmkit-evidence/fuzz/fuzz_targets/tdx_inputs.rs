//! The other TDX inputs a host or a file hands over: a quote as hex or dstack JSON, an event log
//! (binary CCEL or dstack JSON) and PCCS collateral JSON. None may panic.
#![no_main]

use cvmkit_evidence::tdx;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = tdx::read_quote(data);
    let _ = tdx::parse_event_log(data);
    let _ = tdx::parse_collateral(data);
});
