//! The SEV kernel hashes table QEMU writes for measured direct boot
//! (QEMU `target/i386/sev.c`, `SevHashTable`; OVMF `OvmfPkg/AmdSev/BlobVerifierLibSevHashes`).
//!
//! ```text
//! SevHashTable       { GUID 9438d606-…, u16 Length (168), cmdline, initrd, kernel entries }
//! SevHashTableEntry  { GUID, u16 Length (50), SHA-256 (32) }
//! ```
//! padded with zeros to a multiple of 16 bytes (176).

use cvmkit_ovmf::Guid;
use sha2::{Digest, Sha256};

/// `SEV_HASH_TABLE_HEADER_GUID`, `9438d606-4f22-4cc9-b479-a793d411fd21`.
pub const SEV_HASH_TABLE_HEADER_GUID: Guid = Guid::from_fields(
    0x9438_d606,
    0x4f22,
    0x4cc9,
    [0xb4, 0x79, 0xa7, 0x93, 0xd4, 0x11, 0xfd, 0x21],
);
/// `SEV_CMDLINE_ENTRY_GUID`, `97d02dd8-bd20-4c94-aa78-e7714d36ab2a`.
pub const SEV_CMDLINE_ENTRY_GUID: Guid = Guid::from_fields(
    0x97d0_2dd8,
    0xbd20,
    0x4c94,
    [0xaa, 0x78, 0xe7, 0x71, 0x4d, 0x36, 0xab, 0x2a],
);
/// `SEV_INITRD_ENTRY_GUID`, `44baf731-3a2f-4bd7-9af1-41e29169781d`.
pub const SEV_INITRD_ENTRY_GUID: Guid = Guid::from_fields(
    0x44ba_f731,
    0x3a2f,
    0x4bd7,
    [0x9a, 0xf1, 0x41, 0xe2, 0x91, 0x69, 0x78, 0x1d],
);
/// `SEV_KERNEL_ENTRY_GUID`, `4de79437-abd2-427f-b835-d5b172d2045b`.
pub const SEV_KERNEL_ENTRY_GUID: Guid = Guid::from_fields(
    0x4de7_9437,
    0xabd2,
    0x427f,
    [0xb8, 0x35, 0xd5, 0xb1, 0x72, 0xd2, 0x04, 0x5b],
);

/// Size of one `SevHashTableEntry`.
pub const SEV_HASH_TABLE_ENTRY_SIZE: usize = 16 + 2 + 32;
/// Size of `SevHashTable` (header + 3 entries), the value of its `Length` field.
pub const SEV_HASH_TABLE_SIZE: usize = 16 + 2 + 3 * SEV_HASH_TABLE_ENTRY_SIZE;
/// Size of the table as measured: padded to a multiple of 16.
pub const SEV_HASH_TABLE_PADDED_SIZE: usize = (SEV_HASH_TABLE_SIZE + 15) & !15;

/// The three SHA-256 digests of measured direct boot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SevHashes {
    /// SHA-256 of the command line followed by a NUL byte (just the NUL when there is none).
    pub cmdline: [u8; 32],
    /// SHA-256 of the initrd (of nothing when there is none).
    pub initrd: [u8; 32],
    /// SHA-256 of the kernel file as given (e.g. a bzImage).
    pub kernel: [u8; 32],
}

impl SevHashes {
    /// Hashes `kernel`, `initrd` (absent = empty) and `append` (absent or empty = just the NUL).
    pub fn new(kernel: &[u8], initrd: Option<&[u8]>, append: Option<&str>) -> SevHashes {
        // Two independent digests of large files: one core each.
        let (kernel, initrd) = std::thread::scope(|scope| {
            let initrd = scope.spawn(|| Sha256::digest(initrd.unwrap_or_default()).into());
            let kernel: [u8; 32] = Sha256::digest(kernel).into();
            (kernel, initrd.join().expect("hashing does not panic"))
        });
        SevHashes { cmdline: cmdline_hash(append), initrd, kernel }
    }

    /// Like [`new`](Self::new) but reads the kernel and initrd from streams (e.g. files),
    /// without holding them in memory.
    pub fn from_readers(
        kernel: impl std::io::Read,
        initrd: Option<impl std::io::Read>,
        append: Option<&str>,
    ) -> std::io::Result<SevHashes> {
        fn sha256(mut r: impl std::io::Read) -> std::io::Result<[u8; 32]> {
            let mut h = Sha256::new();
            std::io::copy(&mut r, &mut h)?;
            Ok(h.finalize().into())
        }
        Ok(SevHashes {
            cmdline: cmdline_hash(append),
            initrd: match initrd {
                Some(r) => sha256(r)?,
                None => Sha256::digest([]).into(),
            },
            kernel: sha256(kernel)?,
        })
    }

    /// Like [`new`](Self::new) from the digests of the kernel and initrd files, computed by the
    /// caller (e.g. [`sha256_file`] on two threads): `initrd` `None` is no initrd.
    pub fn from_digests(kernel: [u8; 32], initrd: Option<[u8; 32]>, append: Option<&str>) -> SevHashes {
        SevHashes { cmdline: cmdline_hash(append), initrd: initrd.unwrap_or_else(|| Sha256::digest([]).into()), kernel }
    }

    /// The padded table (176 bytes) as QEMU writes it into guest memory and SEV/SEV-ES measure it.
    pub fn table(&self) -> [u8; SEV_HASH_TABLE_PADDED_SIZE] {
        let mut t = [0u8; SEV_HASH_TABLE_PADDED_SIZE];
        t[..16].copy_from_slice(&SEV_HASH_TABLE_HEADER_GUID.to_bytes_le());
        t[16..18].copy_from_slice(&(SEV_HASH_TABLE_SIZE as u16).to_le_bytes());
        let entries = [
            (SEV_CMDLINE_ENTRY_GUID, &self.cmdline),
            (SEV_INITRD_ENTRY_GUID, &self.initrd),
            (SEV_KERNEL_ENTRY_GUID, &self.kernel),
        ];
        for (i, (guid, hash)) in entries.iter().enumerate() {
            let at = 18 + i * SEV_HASH_TABLE_ENTRY_SIZE;
            t[at..at + 16].copy_from_slice(&guid.to_bytes_le());
            t[at + 16..at + 18].copy_from_slice(&(SEV_HASH_TABLE_ENTRY_SIZE as u16).to_le_bytes());
            t[at + 18..at + 50].copy_from_slice(*hash);
        }
        t
    }

    /// A 4 KiB page holding the padded table at `offset_in_page`, zeros elsewhere (what SNP
    /// measures); `None` when the table does not fit.
    pub fn page(&self, offset_in_page: usize) -> Option<Box<[u8; 4096]>> {
        let end = offset_in_page.checked_add(SEV_HASH_TABLE_PADDED_SIZE)?;
        let mut page = Box::new([0u8; 4096]);
        page.get_mut(offset_in_page..end)?
            .copy_from_slice(&self.table());
        Some(page)
    }
}

fn cmdline_hash(append: Option<&str>) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(append.unwrap_or_default().as_bytes());
    h.update([0u8]);
    h.finalize().into()
}

/// The SHA-256 of the file at `path`, read in 1 MiB pieces into one buffer: memory bounded
/// whatever its size (a kernel hash of QEMU's measured direct boot).
pub fn sha256_file(path: &std::path::Path) -> std::io::Result<[u8; 32]> {
    use std::io::Read;
    let mut f = std::fs::File::open(path)?;
    // 64 KiB: read() copies into a buffer that stays in the core's cache for the hash that
    // follows. Measured here (108 MB, two files on two cores): 1 MiB reads took 88 ms with
    // 66 ms of system time, 64 KiB reads 67 ms with 22 ms (bench.sh's SNP row).
    let mut buf = vec![0u8; 64 << 10];
    let mut h = Sha256::new();
    loop {
        match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => h.update(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(h.finalize().into())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hashing the files piece by piece gives the table of hashing their bytes.
    #[test]
    fn from_files_equals_from_bytes() {
        let dir = std::env::temp_dir().join(format!("cvmkit-sev-hashes-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let kernel: Vec<u8> = (0..(3 << 20) + 7).map(|i: u32| (i % 251) as u8).collect();
        let initrd = b"initrd".repeat(1000);
        std::fs::write(dir.join("k"), &kernel).unwrap();
        std::fs::write(dir.join("i"), &initrd).unwrap();
        let k = sha256_file(&dir.join("k")).unwrap();
        let i = sha256_file(&dir.join("i")).unwrap();
        assert_eq!(SevHashes::from_digests(k, Some(i), Some("a=b")), SevHashes::new(&kernel, Some(&initrd), Some("a=b")));
        assert_eq!(SevHashes::from_digests(k, None, None), SevHashes::new(&kernel, None, None));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
