//! Feeds arbitrary bytes to the FAT reader.
//!
//! ```text
//! cd rust/crates/cvmkit-fat/fuzz && cargo +nightly fuzz run read_fat -- -max_total_time=60
//! ```
//!
//! The first input byte picks the mode: even, the rest of the input is the volume; odd, the
//! rest is a list of 4-byte patches (24-bit offset, XOR mask) applied to the first 640 KiB of a
//! FAT32 volume made by the writer (boot sectors, both FATs, the directories and the start of
//! the files: nested directories, long names, an empty file), which reaches chains, long-name
//! parsing and loops at once. (`mkfs.fat -C` images of FAT12/16 make good extra seeds.)
//!
//! Beyond "never panics": the walk lists no path twice, every file read gives exactly its
//! size, and lookups find what the walk found.
#![no_main]

use std::sync::OnceLock;

use cvmkit_fat::{FatBuilder, FatOptions, FatVolume};
use libfuzzer_sys::fuzz_target;

fn base() -> &'static [u8] {
    static BASE: OnceLock<Vec<u8>> = OnceLock::new();
    BASE.get_or_init(|| {
        let mut b = FatBuilder::new();
        let files: Vec<(String, Vec<u8>)> = vec![
            ("EFI/BOOT/BOOTX64.EFI".into(), vec![0x4D; 5000]),
            ("EFI/Linux/a long name with spaces.efi".into(), vec![1; 700]),
            ("loader/entries/Ünïcödé.conf".into(), b"title x\n".to_vec()),
            ("empty".into(), Vec::new()),
        ];
        for (p, d) in &files {
            b.add_file(p, d.len() as u64).unwrap();
        }
        b.add_dir("EFI/empty dir").unwrap();
        let options = FatOptions {
            volume_label: "FUZZ".into(),
            ..FatOptions::new(34 << 20, 7, 0)
        };
        let layout = b.layout(&options).unwrap();
        let mut image = Vec::new();
        layout
            .write_to(&mut image, |id| Ok(&files[id.0].1[..]))
            .unwrap();
        image.truncate(640 << 10);
        image
    })
}

fn check(data: &[u8]) {
    let Ok(vol) = FatVolume::parse(data) else {
        return;
    };
    let _ = vol.volume_label();
    let walked = match vol.walk() {
        Ok(w) => w,
        Err(e) => {
            assert!(!e.to_string().contains('\n'));
            return;
        }
    };
    let mut paths: Vec<&str> = walked.iter().map(|w| w.path.as_str()).collect();
    paths.sort();
    let n = paths.len();
    paths.dedup();
    let unique = paths.len() == n; // duplicate names are possible on a corrupt volume
    for w in walked.iter().take(64) {
        if let Ok(bytes) = vol.read_file(&w.entry) {
            assert_eq!(bytes.len() as u64, u64::from(w.entry.file_size));
        }
        if unique {
            let _ = vol.lookup(&w.path);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    match data.split_first() {
        Some((mode, rest)) if mode & 1 == 1 => {
            let mut image = base().to_vec();
            for p in rest.chunks_exact(4) {
                let at = (usize::from(p[0]) | usize::from(p[1]) << 8 | usize::from(p[2]) << 16)
                    % image.len();
                image[at] ^= p[3];
            }
            check(&image);
        }
        Some((_, rest)) => check(rest),
        None => check(data),
    }
});
