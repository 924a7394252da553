//! The GCE image-import archive: `disk.raw` as an old-GNU sparse tar member (type `S`, as
//! `tar --format=oldgnu -S` writes it), gzip-compressed, every byte fixed by the inputs.

use std::io::Write;

/// Name of the member GCE expects.
pub const GCP_MEMBER_NAME: &str = "disk.raw";
/// DEFLATE level: gzip's default.
pub const GCP_GZIP_LEVEL: u32 = 6;
/// Input bytes per gzip member: the archive is compressed in members of this size (the last
/// shorter), each on a core of its own. Fixed, so the bytes do not depend on the core count.
pub const GCP_GZIP_CHUNK: usize = 16 << 20;
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
/// Go's and Python's readers decompress them as one stream. Memory: two chunks per core.
pub(crate) struct GzWriter<W: Write> {
    out: W,
    /// Full chunks waiting to be compressed, then the one being filled (last).
    chunks: Vec<Vec<u8>>,
    threads: usize,
    /// Members written so far.
    members: u64,
}

impl<W: Write> GzWriter<W> {
    pub(crate) fn new(out: W) -> std::io::Result<GzWriter<W>> {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, 8);
        Ok(GzWriter { out, chunks: vec![Vec::with_capacity(GCP_GZIP_CHUNK)], threads, members: 0 })
    }

    /// Compresses every chunk held (in parallel) and writes the members in order.
    fn drain(&mut self, all: bool) -> std::io::Result<()> {
        let keep = if all { 0 } else { 1 };
        let ready: Vec<Vec<u8>> = self.chunks.drain(..self.chunks.len() - keep).filter(|c| !c.is_empty()).collect();
        let members: Vec<std::io::Result<Vec<u8>>> = std::thread::scope(|scope| {
            let handles: Vec<_> = ready.iter().map(|c| scope.spawn(move || member(c))).collect();
            handles.into_iter().map(|h| h.join().expect("compression does not panic")).collect()
        });
        for m in members {
            self.out.write_all(&m?)?;
            self.members += 1;
        }
        if self.chunks.is_empty() {
            self.chunks.push(Vec::with_capacity(GCP_GZIP_CHUNK));
        }
        Ok(())
    }

    pub(crate) fn finish(mut self) -> std::io::Result<W> {
        self.drain(true)?;
        if self.members == 0 {
            // An empty input is still one (empty) member.
            self.out.write_all(&member(&[])?)?;
        }
        Ok(self.out)
    }
}

/// One gzip member of `data`.
fn member(data: &[u8]) -> std::io::Result<Vec<u8>> {
    let lvl = libdeflater::CompressionLvl::new(GCP_GZIP_LEVEL as i32).expect("level 6 exists");
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
            let last = self.chunks.last_mut().expect("a chunk being filled");
            let take = (GCP_GZIP_CHUNK - last.len()).min(buf.len());
            last.extend_from_slice(&buf[..take]);
            buf = &buf[take..];
            if last.len() == GCP_GZIP_CHUNK {
                self.chunks.push(Vec::with_capacity(GCP_GZIP_CHUNK));
                if self.chunks.len() > self.threads {
                    self.drain(false)?;
                }
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
