//! Arbitrary text as a `gen_init_cpio` spec (`Spec::parse`). A spec that parses and has no
//! `file` lines (those read the build machine's files) is applied to an empty image
//! (`Initrd::apply_spec`), its symlinks checked (`Initrd::check_symlinks`) and written as a cpio
//! archive (`Initrd::write_cpio`), whose size must be the one `Initrd::cpio_size` announced.
//! None of it may panic.
//!
//! Run with `cargo +nightly fuzz run parse_spec` from this directory; seed the corpus with real
//! specs (`mkdir -p corpus/parse_spec && cp ../../../../examples/minimal/initrd.spec corpus/parse_spec/`).
#![no_main]

use std::path::Path;

use cvmkit_initrd::{Initrd, Options, Spec, SpecKind, MAX_NAME_LEN, MAX_SYMLINK_TARGET};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Spec files are read with read_to_string: only UTF-8 reaches the parser.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(spec) = Spec::parse(text, Path::new("fuzz/initrd.spec")) else {
        return;
    };
    for e in spec.entries() {
        // Names come out normalized: relative, no empty, `.` or `..` components.
        assert!(
            !e.name.is_empty() && e.name.len() <= MAX_NAME_LEN,
            "{:?}",
            e.name
        );
        assert!(
            e.name.split('/').all(|c| !matches!(c, "" | "." | "..")),
            "{:?}",
            e.name
        );
        assert!(e.mode <= 0o7777);
        if let SpecKind::Slink { target } = &e.kind {
            assert!(target.len() <= MAX_SYMLINK_TARGET);
        }
    }
    if spec
        .entries()
        .iter()
        .any(|e| matches!(e.kind, SpecKind::File { .. }))
    {
        return;
    }
    let mut image = Initrd::new();
    if image.apply_spec(&spec).is_err() {
        return;
    }
    let _ = image.check_symlinks();
    let opts = Options {
        allow_dangling_symlinks: true,
        ..Options::default()
    };
    let mut out = Vec::new();
    let written = image
        .write_cpio(&opts, &mut out)
        .expect("an image without files on disk writes");
    assert_eq!(written, out.len() as u64);
    assert_eq!(written, image.cpio_size());
});
