//! Prints the MRTD of a firmware image for both page orders, with the time taken.
//!
//! `cargo run --release -p cvmkit-tdx --example mrtd -- OVMF.fd`

use std::process::ExitCode;
use std::time::Instant;

fn main() -> ExitCode {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: mrtd FIRMWARE");
        return ExitCode::from(2);
    };
    let data = match std::fs::read(&path) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: reading {path}: {e}");
            return ExitCode::from(2);
        }
    };
    let firmware = match cvmkit_ovmf::Firmware::parse_named(&data, path.as_str()) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    for order in [
        cvmkit_tdx::PageOrder::Interleaved,
        cvmkit_tdx::PageOrder::TwoPass,
    ] {
        let start = Instant::now();
        match cvmkit_tdx::mrtd(&firmware, order) {
            Ok(m) => println!("{order:?}: {} ({:?})", cvmkit_tdx::hex(&m), start.elapsed()),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(1);
            }
        }
    }
    ExitCode::SUCCESS
}
