//! The GCE image-import archive: `disk.raw` as an old-GNU sparse tar member (type `S`, as
//! `tar --format=oldgnu -S` writes it), gzip-compressed, every byte fixed by the inputs.

use std::io::Write;

/// Name of the member GCE expects.
pub const GCP_MEMBER_NAME: &str = "disk.raw";
/// DEFLATE level: libdeflate's 5, which compresses disks as small as GNU gzip's default (6) and
/// faster than its own 6 (the archive is no larger than `gzip -6` of the same tar stream: a test
/// here and `scripts/bench.sh` check it).
pub const GCP_GZIP_LEVEL: u32 = 5;
/// Input bytes per gzip member: the archive is compressed in members of this size (the last
/// shorter), each on a core of its own. Fixed, so the bytes do not depend on the core count.
pub const GCP_GZIP_CHUNK: usize = 1 << 20;
/// A tar block.
const BLOCK: usize = 512;
/// GNU tar's default record: 20 blocks. The archive is padded to it, as GNU tar does.
const RECORD: u64 = 20 * 512;

/// Writes `value` into a numeric header field: octal digits and a NUL when it fits, else GNU
/// base-256 (first byte 0x80, then the value big-endian), as GNU tar does for sizes ≥ 8 GiB.
fn num(field: &mut [u8], value: u64) {
    let w = field.len();
    let octal = format!("{value:0width$o}", width = w - 1);
    if octal.len() < w {
        field[..w - 1].copy_from_slice(octal.as_bytes());
        field[w - 1] = 0;
    } else {
        field.fill(0);
        field[0] = 0x80;
        let be = value.to_be_bytes();
        field[w - 8..].copy_from_slice(&be);
    }
}

/// The header block(s) of an old-GNU sparse member: the `ustar  ` header with the first four
/// sparse entries, then extension blocks of 21 entries each. `map` holds (offset, length)
/// ranges of data; a file that ends in a hole gets a final zero-length entry at its end.
pub(crate) fn sparse_headers(name: &str, realsize: u64, mtime: u64, map: &[(u64, u64)]) -> Vec<u8> {
    let mut entries: Vec<(u64, u64)> = map.to_vec();
    if entries.last().is_none_or(|&(o, l)| o + l < realsize) {
        entries.push((realsize, 0));
    }
    let stored: u64 = map.iter().map(|e| e.1).sum();
    let mut h = vec![0u8; BLOCK];
    h[..name.len()].copy_from_slice(name.as_bytes()); // name[100]
    num(&mut h[100..108], 0o644); // mode
    num(&mut h[108..116], 0); // uid
    num(&mut h[116..124], 0); // gid
    num(&mut h[124..136], stored); // size: the bytes stored, not the file's size
    num(&mut h[136..148], mtime); // mtime
    h[156] = b'S'; // typeflag: GNUTYPE_SPARSE
    h[257..265].copy_from_slice(b"ustar  \0"); // magic + version of the old GNU format
    h[265..269].copy_from_slice(b"root"); // uname[32]
    h[297..301].copy_from_slice(b"root"); // gname[32]
                                          // 345 atime, 357 ctime, 369 offset, 381 longnames: unused (zero), as GNU tar leaves them.
    for (i, &(o, l)) in entries.iter().take(4).enumerate() {
        let at = 386 + 24 * i; // sp[4] of struct sparse { offset[12]; numbytes[12]; }
        num(&mut h[at..at + 12], o);
        num(&mut h[at + 12..at + 24], l);
    }
    h[482] = u8::from(entries.len() > 4); // isextended
    num(&mut h[483..495], realsize); // realsize
                                     // chksum: the sum of all header bytes with the field as spaces, six octal digits, NUL, space.
    h[148..156].fill(b' ');
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    // struct sparse_header: 21 entries, then isextended at 504.
    let rest = if entries.len() > 4 {
        &entries[4..]
    } else {
        &[][..]
    };
    let chunks: Vec<&[(u64, u64)]> = rest.chunks(21).collect();
    for (k, chunk) in chunks.iter().enumerate() {
        let mut x = [0u8; BLOCK];
        for (i, &(o, l)) in chunk.iter().enumerate() {
            num(&mut x[24 * i..24 * i + 12], o);
            num(&mut x[24 * i + 12..24 * i + 24], l);
        }
        x[504] = u8::from(k + 1 < chunks.len());
        h.extend_from_slice(&x);
    }
    h
}

/// The gzip header of every member: no name, MTIME 0, XFL 0, OS 3 (Unix), as `gzip -n`
/// writes it; written here so that it cannot change with libdeflate's version.
const GZIP_HEADER: [u8; 10] = [0x1F, 0x8B, 8, 0, 0, 0, 0, 0, 0, 3];

/// A gzip file (RFC 1952) of members of [`GCP_GZIP_CHUNK`] input bytes each, compressed with
/// libdeflate (as the initrd is) at [`GCP_GZIP_LEVEL`], as many at once as there are cores.
/// A gzip file may hold several members ("a series of members", RFC 1952 §2.2); gzip, GNU tar,
/// Go's and Python's readers decompress them as one stream. A full chunk goes to a thread of
/// its own at once, so the disk keeps being read while earlier chunks compress; members are
/// written in order. Memory: at most one chunk per core compressing, and the one being filled.
pub(crate) struct GzWriter<W: Write> {
    out: W,
    /// The chunk being filled.
    chunk: Vec<u8>,
    /// Chunks being compressed, oldest first.
    running: std::collections::VecDeque<std::thread::JoinHandle<std::io::Result<Vec<u8>>>>,
    threads: usize,
    /// Members written so far.
    members: u64,
}

impl<W: Write> GzWriter<W> {
    pub(crate) fn new(out: W) -> std::io::Result<GzWriter<W>> {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, 8);
        Ok(GzWriter { out, chunk: Vec::with_capacity(GCP_GZIP_CHUNK), running: Default::default(), threads, members: 0 })
    }

    /// Writes the oldest member once it is compressed.
    fn write_oldest(&mut self) -> std::io::Result<()> {
        if let Some(h) = self.running.pop_front() {
            let member = h.join().unwrap_or_else(|e| std::panic::resume_unwind(e))?;
            self.out.write_all(&member)?;
            self.members += 1;
        }
        Ok(())
    }

    /// Hands the filled chunk to a compressing thread (waiting for the oldest when every core
    /// is busy).
    fn submit(&mut self) -> std::io::Result<()> {
        let chunk = std::mem::take(&mut self.chunk);
        if chunk.is_empty() {
            return Ok(());
        }
        while self.running.len() >= self.threads {
            self.write_oldest()?;
        }
        self.running.push_back(std::thread::spawn(move || member(&chunk)));
        Ok(())
    }

    pub(crate) fn finish(mut self) -> std::io::Result<W> {
        self.submit()?;
        while !self.running.is_empty() {
            self.write_oldest()?;
        }
        if self.members == 0 {
            // An empty input is still one (empty) member.
            self.out.write_all(&member(&[])?)?;
        }
        Ok(self.out)
    }
}

/// Whether deflate gains nothing on `data`: every 4 KiB block has bytes spread evenly (no
/// value more than 40 times; random bytes average 16, code and text far more), and the first
/// 64 KiB of every MiB stays as large at level 1 (no repeated strings: libdeflate falls back
/// to stored blocks). Compressed kernel payloads and initrds are such data, and most of a UKI
/// is them: deflate costs ~15 ms per MB here to save nothing, so such a member is written as
/// stored blocks (level 0), as zstd stores blocks it cannot shrink. Decided by the bytes
/// alone: the same archive on any machine.
fn incompressible(data: &[u8]) -> bool {
    const SAMPLE: usize = 64 << 10;
    let even = |block: &[u8]| {
        // Four tables, so that runs of one byte do not wait on the same counter.
        let mut counts = [[0u16; 256]; 4];
        let mut quads = block.chunks_exact(4);
        for q in &mut quads {
            for (t, &b) in q.iter().enumerate() {
                counts[t][usize::from(b)] += 1;
            }
        }
        for &b in quads.remainder() {
            counts[0][usize::from(b)] += 1;
        }
        (0..256).all(|v| counts.iter().map(|t| t[v]).sum::<u16>() <= 40)
    };
    if data.is_empty() || !data.chunks(4096).all(even) {
        return false;
    }
    let mut c = libdeflater::Compressor::new(libdeflater::CompressionLvl::new(1).expect("level 1 exists"));
    let mut out = vec![0u8; c.deflate_compress_bound(SAMPLE)];
    data.chunks(1 << 20).all(|region| {
        let sample = &region[..region.len().min(SAMPLE)];
        c.deflate_compress(sample, &mut out).is_ok_and(|n| n >= sample.len())
    })
}

/// One gzip member of `data`.
fn member(data: &[u8]) -> std::io::Result<Vec<u8>> {
    let level = if incompressible(data) { 0 } else { GCP_GZIP_LEVEL as i32 };
    let lvl = libdeflater::CompressionLvl::new(level).expect("levels 0 to 12 exist");
    let mut c = libdeflater::Compressor::new(lvl);
    let mut out = vec![0u8; GZIP_HEADER.len() + c.deflate_compress_bound(data.len()) + 8];
    out[..GZIP_HEADER.len()].copy_from_slice(&GZIP_HEADER);
    let n = c
        .deflate_compress(data, &mut out[GZIP_HEADER.len()..])
        .map_err(|e| std::io::Error::other(format!("deflate: {e:?}")))?;
    out.truncate(GZIP_HEADER.len() + n);
    let mut crc = libdeflater::Crc::new();
    crc.update(data);
    out.extend_from_slice(&crc.sum().to_le_bytes());
    out.extend_from_slice(&(data.len() as u32).to_le_bytes()); // ISIZE: length mod 2^32
    Ok(out)
}

impl<W: Write> Write for GzWriter<W> {
    fn write(&mut self, mut buf: &[u8]) -> std::io::Result<usize> {
        let n = buf.len();
        while !buf.is_empty() {
            if self.chunk.capacity() == 0 {
                self.chunk.reserve_exact(GCP_GZIP_CHUNK);
            }
            let take = (GCP_GZIP_CHUNK - self.chunk.len()).min(buf.len());
            self.chunk.extend_from_slice(&buf[..take]);
            buf = &buf[take..];
            if self.chunk.len() == GCP_GZIP_CHUNK {
                self.submit()?;
            }
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

/// Bytes of zero padding after `stored` data bytes, and after the whole archive of `total`
/// bytes (two zero blocks, then up to a whole record).
pub(crate) fn data_padding(stored: u64) -> u64 {
    (BLOCK as u64 - stored % BLOCK as u64) % BLOCK as u64
}

pub(crate) fn end_padding(total_before_end: u64) -> u64 {
    let with_end = total_before_end + 2 * BLOCK as u64;
    2 * BLOCK as u64 + (RECORD - with_end % RECORD) % RECORD
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Members deflate cannot shrink are stored; any compressible MiB (by its sample) keeps
    /// `GCP_GZIP_LEVEL`. Random bytes from a fixed xorshift, so the test is the same on every run.
    #[test]
    fn incompressible_members_are_stored() {
        let mut state = 1u64;
        let random: Vec<u8> = (0..(3 << 20) + 12345)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 32) as u8
            })
            .collect();
        assert!(incompressible(&random));
        let mut mixed = random.clone();
        mixed[(2 << 20)..(2 << 20) + 4096].fill(b'a');
        assert!(!incompressible(&mixed), "a compressible MiB must keep the member compressed");
        // Structure between the samples (a kernel's setup code, a table): found by the spread
        // of bytes in every 4 KiB block, not only by the sampled 64 KiB.
        let mut between = random.clone();
        let at = (1 << 20) + (512 << 10);
        for (i, b) in between[at..at + 4096].iter_mut().enumerate() {
            *b = [0x48, 0x89, 0xe5, 0x00][i % 4];
        }
        assert!(!incompressible(&between));
        assert!(!incompressible(&vec![0u8; 1 << 20]));
        assert!(!incompressible(&[]));
        // A stored member is the data plus 5 bytes per 64 KiB block and the gzip framing.
        let stored = member(&random).unwrap();
        assert!(stored.len() < random.len() + random.len() / 65535 * 5 + 64, "{}", stored.len());
        let compressed = member(&mixed).unwrap();
        assert!(compressed.len() < stored.len());
        for (m, data) in [(&stored, &random), (&compressed, &mixed)] {
            let mut d = libdeflater::Decompressor::new();
            let mut out = vec![0u8; data.len()];
            assert_eq!(d.gzip_decompress(m, &mut out).unwrap(), data.len());
            assert_eq!(&out, data);
        }
    }

    #[test]
    fn numbers_octal_then_base256() {
        let mut f = [0u8; 12];
        num(&mut f, 0o777);
        assert_eq!(&f, b"00000000777\0");
        num(&mut f, 8 << 30); // 8 GiB needs 12 octal digits
        assert_eq!(f, [0x80, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0]);
    }

    #[test]
    fn header_checksum_and_extension_blocks() {
        let map: Vec<(u64, u64)> = (0..30).map(|i| (i * 8192, 4096)).collect();
        let h = sparse_headers("disk.raw", 1 << 30, 1_700_000_000, &map);
        assert_eq!(h.len(), 512 * 3); // 4 in the header, 21 + 6 (incl. the end entry) in two blocks
        assert_eq!(h[482], 1);
        assert_eq!(h[512 + 504], 1);
        assert_eq!(h[1024 + 504], 0);
        let mut copy = h[..512].to_vec();
        copy[148..156].fill(b' ');
        let sum: u32 = copy.iter().map(|&b| u32::from(b)).sum();
        assert_eq!(&h[148..156], format!("{sum:06o}\0 ").as_bytes());
        assert_eq!(
            end_padding(512 + 4096),
            2 * 512 + (10240 - (512 + 4096 + 1024))
        );
    }
}
