//! Streaming newc writer.

use std::io::{self, Read, Write};

use crate::{pad4, Header, ARCHIVE_ALIGN, HEADER_LEN, MAGIC_NEWC, TRAILER_NAME};

/// Size of the buffer used to copy entry data; large enough that copying is not
/// dominated by per-call overhead, small enough to be irrelevant next to the data.
const COPY_BUF: usize = 64 * 1024;

/// Writes a newc cpio archive to `W`, one entry at a time.
///
/// The writer adds nothing of its own: every header field comes from the caller,
/// so the archive is exactly as reproducible as the headers given to it. Entries
/// are written in the order given; the Linux unpacker needs a directory to come
/// before its contents.
///
/// After an error the archive is incomplete and should be discarded.
///
/// ```
/// use cvmkit_cpio::{mode, Header, Writer};
///
/// let mut w = Writer::new(Vec::new());
/// let target = b"busybox";
/// let link = Header { ino: 1, mode: mode::S_IFLNK | 0o777, nlink: 1, filesize: 7, ..Header::default() };
/// w.write_entry(b"sh", &link, &mut &target[..])?;
/// assert_eq!(w.bytes_written(), 124); // 110 + "sh\0" + 3 padding, 7 + 1 padding
/// let archive = w.finish()?;
/// assert_eq!(archive.len(), 512);
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Writer<W: Write> {
    inner: W,
    written: u64,
    buf: Vec<u8>,
}

impl<W: Write> Writer<W> {
    /// Starts an archive that is written to `inner`.
    ///
    /// Writes go straight to `inner` in small pieces; wrap it in a
    /// [`std::io::BufWriter`] when it is a file or pipe.
    pub fn new(inner: W) -> Self {
        Writer {
            inner,
            written: 0,
            buf: Vec::new(),
        }
    }

    /// Number of bytes written to the underlying writer so far.
    pub fn bytes_written(&self) -> u64 {
        self.written
    }

    /// The underlying writer.
    pub fn get_ref(&self) -> &W {
        &self.inner
    }

    /// Writes one entry: the header, `name` with its NUL terminator, padding to 4
    /// bytes, then exactly `header.filesize` bytes read from `data`, padded to 4.
    ///
    /// `name` is used verbatim (the kernel wants it relative, without a leading
    /// `/`). It must not be empty, contain a NUL byte, or be `TRAILER!!!`, which
    /// would end the archive early; those are rejected with
    /// [`io::ErrorKind::InvalidInput`] before anything is written. If `data` ends
    /// before `header.filesize` bytes the result is an
    /// [`io::ErrorKind::UnexpectedEof`] error; bytes past `filesize` are not read.
    pub fn write_entry(
        &mut self,
        name: &[u8],
        header: &Header,
        data: &mut dyn Read,
    ) -> io::Result<()> {
        if name.is_empty() {
            return Err(invalid_name(
                name,
                "it is empty; name the entry relative to the archive root",
            ));
        }
        if name.contains(&0) {
            return Err(invalid_name(
                name,
                "it contains a NUL byte, which would end the name early",
            ));
        }
        if name == TRAILER_NAME {
            return Err(invalid_name(
                name,
                "that name marks the end of the archive; rename the entry",
            ));
        }
        let namesize = u32::try_from(name.len() + 1)
            .map_err(|_| invalid_name(name, "it is longer than the 4 GiB a header can describe"))?;

        self.put(&header.encode(MAGIC_NEWC, namesize, 0))?;
        self.put(name)?;
        // The NUL terminator and the padding that aligns header+name to 4 bytes.
        let name_pad = pad4(HEADER_LEN as u64 + u64::from(namesize)) as usize;
        self.put(&[0u8; 4][..1 + name_pad])?;

        let want = u64::from(header.filesize);
        let copied = self.copy_data(data, want)?;
        if copied != want {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "cpio entry '{}': its data ended after {copied} of the {want} bytes its header declares",
                    name.escape_ascii()
                ),
            ));
        }
        self.put(&[0u8; 3][..pad4(want) as usize])
    }

    /// Writes the `TRAILER!!!` entry, pads the archive with zeros to a multiple of
    /// 512 bytes (as the kernel's `gen_init_cpio` does), flushes, and returns the
    /// underlying writer.
    pub fn finish(mut self) -> io::Result<W> {
        // Field values as in gen_init_cpio's and GNU cpio's trailers.
        let trailer = Header {
            nlink: 1,
            ..Header::default()
        };
        let namesize = TRAILER_NAME.len() as u32 + 1;
        self.put(&trailer.encode(MAGIC_NEWC, namesize, 0))?;
        self.put(TRAILER_NAME)?;
        let name_pad = pad4(HEADER_LEN as u64 + u64::from(namesize)) as usize;
        self.put(&[0u8; 4][..1 + name_pad])?;
        let mut tail = self.written.wrapping_neg() % ARCHIVE_ALIGN;
        while tail > 0 {
            let n = tail.min(64) as usize;
            self.put(&[0u8; 64][..n])?;
            tail -= n as u64;
        }
        self.inner.flush()?;
        Ok(self.inner)
    }

    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.inner.write_all(bytes)?;
        self.written += bytes.len() as u64;
        Ok(())
    }

    /// Copies up to `want` bytes from `data`; returns how many were copied.
    fn copy_data(&mut self, data: &mut dyn Read, want: u64) -> io::Result<u64> {
        if want == 0 {
            return Ok(0);
        }
        if self.buf.is_empty() {
            self.buf = vec![0; COPY_BUF];
        }
        let mut copied = 0u64;
        while copied < want {
            let chunk = (want - copied).min(COPY_BUF as u64) as usize;
            let n = match data.read(&mut self.buf[..chunk]) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            self.inner.write_all(&self.buf[..n])?;
            self.written += n as u64;
            copied += n as u64;
        }
        Ok(copied)
    }
}

fn invalid_name(name: &[u8], why: &str) -> io::Error {
    // Quote at most a screenful of a (possibly huge) bad name.
    let shown = &name[..name.len().min(256)];
    let more = if shown.len() < name.len() { "..." } else { "" };
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!(
            "cpio entry name '{}{more}' is not valid: {why}",
            shown.escape_ascii()
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mode;

    #[test]
    fn layout_matches_gen_init_cpio() {
        // Expected bytes worked out from the kernel's usr/gen_init_cpio.c: header,
        // name + NUL padded so that 110 + namesize is a multiple of 4, data padded to 4.
        let mut w = Writer::new(Vec::new());
        let h = Header {
            ino: 1,
            mode: mode::S_IFREG | 0o644,
            nlink: 1,
            filesize: 3,
            ..Header::default()
        };
        w.write_entry(b"abc", &h, &mut &b"xyz"[..]).unwrap();
        let out = w.finish().unwrap();
        // 110 + "abc\0" = 114 -> 2 bytes of padding -> data at 116.
        assert_eq!(&out[110..116], b"abc\0\0\0");
        assert_eq!(&out[116..120], b"xyz\0");
        assert_eq!(&out[120..126], b"070701");
        // Trailer name at 120 + 110.
        assert_eq!(&out[230..241], b"TRAILER!!!\0");
        assert_eq!(out.len(), 512);
        assert!(out[241..].iter().all(|&b| b == 0));
    }

    #[test]
    fn short_data_is_an_error() {
        let mut w = Writer::new(Vec::new());
        let h = Header {
            filesize: 10,
            mode: mode::S_IFREG,
            ..Header::default()
        };
        let err = w.write_entry(b"f", &h, &mut &b"12345"[..]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        assert!(err.to_string().contains("after 5 of the 10 bytes"), "{err}");
    }

    #[test]
    fn only_filesize_bytes_are_copied() {
        let mut w = Writer::new(Vec::new());
        let h = Header {
            filesize: 2,
            mode: mode::S_IFREG,
            ..Header::default()
        };
        let mut src = &b"abcdef"[..];
        w.write_entry(b"f", &h, &mut src).unwrap();
        assert_eq!(src, b"cdef");
        assert_eq!(w.bytes_written(), 116);
    }

    #[test]
    fn bad_names_are_rejected_before_writing() {
        let mut w = Writer::new(Vec::new());
        for name in [&b""[..], b"a\0b", b"TRAILER!!!"] {
            let err = w
                .write_entry(name, &Header::default(), &mut io::empty())
                .unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
        }
        assert_eq!(w.bytes_written(), 0);
    }

    #[test]
    fn large_data_is_streamed_through_the_copy_buffer() {
        // Larger than COPY_BUF and not a multiple of it, to exercise the loop.
        let data: Vec<u8> = (0..200_003u32).map(|i| (i % 251) as u8).collect();
        let mut w = Writer::new(Vec::new());
        let h = Header {
            filesize: data.len() as u32,
            mode: mode::S_IFREG,
            ..Header::default()
        };
        w.write_entry(b"big", &h, &mut &data[..]).unwrap();
        let out = w.finish().unwrap();
        assert_eq!(&out[116..116 + data.len()], &data[..]);
    }
}
