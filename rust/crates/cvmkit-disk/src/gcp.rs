//! The GCE image-import archive: `disk.raw` as an old-GNU sparse tar member (type `S`, as
//! `tar --format=oldgnu -S` writes it), gzip-compressed, every byte fixed by the inputs.

use std::io::Write;

use flate2::write::DeflateEncoder;
use flate2::{Compression, Crc};

/// Name of the member GCE expects.
pub const GCP_MEMBER_NAME: &str = "disk.raw";
/// DEFLATE level: gzip's default.
pub const GCP_GZIP_LEVEL: u32 = 6;
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
    if entries.last().map_or(true, |&(o, l)| o + l < realsize) {
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

/// A gzip member (RFC 1952) with no name, mtime 0, OS "Unix", around a streaming DEFLATE
/// encoder; [`GzWriter::finish`] writes the CRC-32 and size trailer.
pub(crate) struct GzWriter<W: Write> {
    inner: DeflateEncoder<W>,
    crc: Crc,
}

impl<W: Write> GzWriter<W> {
    pub(crate) fn new(mut out: W) -> std::io::Result<GzWriter<W>> {
        // ID1 ID2 CM=8 FLG=0 MTIME=0 XFL=0 OS=3 (Unix), as `gzip -n` writes it.
        out.write_all(&[0x1F, 0x8B, 8, 0, 0, 0, 0, 0, 0, 3])?;
        Ok(GzWriter {
            inner: DeflateEncoder::new(out, Compression::new(GCP_GZIP_LEVEL)),
            crc: Crc::new(),
        })
    }

    pub(crate) fn finish(self) -> std::io::Result<W> {
        let mut out = self.inner.finish()?;
        out.write_all(&self.crc.sum().to_le_bytes())?;
        out.write_all(&self.crc.amount().to_le_bytes())?;
        Ok(out)
    }
}

impl<W: Write> Write for GzWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.crc.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
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
