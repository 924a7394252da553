//! What `cvmkit diff` will do, for trying the library and timing it:
//!
//! ```text
//! cargo run --release -p cvmkit-diff --example cvmdiff -- A B [--json] [--max-depth N]
//! ```
//!
//! Exit status: 0 identical, 1 different, 2 error.

use std::path::PathBuf;
use std::process::ExitCode;

use cvmkit_diff::{diff_paths, Options};

fn main() -> ExitCode {
    let mut paths = Vec::new();
    let mut json = false;
    let mut opts = Options::default();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--json" => json = true,
            "--max-depth" => match args.next().and_then(|n| n.parse().ok()) {
                Some(n) => opts = opts.with_max_depth(n),
                None => {
                    eprintln!("error: --max-depth needs a number");
                    return ExitCode::from(2);
                }
            },
            _ => paths.push(PathBuf::from(a)),
        }
    }
    let [a, b] = paths.as_slice() else {
        eprintln!("usage: cvmdiff A B [--json] [--max-depth N]");
        return ExitCode::from(2);
    };
    match diff_paths(a, b, &opts) {
        Ok(report) => {
            if json {
                println!("{}", report.to_json());
            } else {
                print!("{}", report.render());
            }
            ExitCode::from(u8::from(!report.is_identical()))
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}
