//! Reader for newc archives held in memory.
//!
//! Everything here handles untrusted bytes: every range is taken with
//! `slice::get` and every sum with `checked_add`, and nothing is allocated
//! according to a size the input claims (entries borrow from the input).

use std::iter::FusedIterator;

use crate::{Header, HEADER_LEN, MAGIC_CRC, MAGIC_NEWC, TRAILER_NAME};

/// Names of the 13 header fields after the magic, as `man 5 cpio` spells them.
const FIELD_NAMES: [&str; 13] = [
    "c_ino",
    "c_mode",
    "c_uid",
    "c_gid",
    "c_nlink",
    "c_mtime",
    "c_filesize",
    "c_devmajor",
    "c_devminor",
    "c_rdevmajor",
    "c_rdevminor",
    "c_namesize",
    "c_check",
];

/// How many bytes of bad input an error message quotes at most.
const QUOTE_MAX: usize = 64;

/// Which of the two newc magics an entry had.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// `070701`: the `c_check` field is meaningless (writers put 0).
    Newc,
    /// `070702`: `c_check` holds the sum of the data bytes. The kernel does not
    /// check it and neither does this reader.
    Crc,
}

/// One entry of an archive, borrowing its name and data from the input.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Entry<'a> {
    /// The name without its NUL terminator, as stored (normally relative, no leading `/`).
    pub name: &'a [u8],
    /// The numeric header fields.
    pub header: Header,
    /// The `filesize` data bytes: file contents, or a symlink's target.
    pub data: &'a [u8],
    /// Offset of the entry's header from the start of the input.
    pub offset: u64,
    /// Which magic the header had.
    pub format: Format,
    /// The `c_check` field, reported as found.
    pub check: u32,
}

impl Entry<'_> {
    /// Whether this is the `TRAILER!!!` entry that ends an archive.
    pub fn is_trailer(&self) -> bool {
        self.name == TRAILER_NAME
    }
}

/// Why an archive could not be read. Every variant names the byte offset in the
/// input where the problem is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Fewer than 110 bytes where a header should start.
    #[error("cpio header at offset {offset} is truncated: a header is 110 bytes but only {available} remain")]
    TruncatedHeader {
        /// Offset of the header.
        offset: u64,
        /// Bytes left in the input.
        available: u64,
    },
    /// The header does not start with `070701` or `070702`.
    #[error("cpio header at offset {offset} has magic '{found}', expected '070701' (newc) or '070702' (newc with checksums){hint}")]
    BadMagic {
        /// Offset of the header.
        offset: u64,
        /// The first bytes found, escaped.
        found: String,
        /// A suggestion when the bytes look like something recognizable.
        hint: &'static str,
    },
    /// A header field is not 8 hex digits.
    #[error("cpio header at offset {offset}: field {field} at offset {field_offset} is '{found}', which is not 8 hex digits")]
    BadField {
        /// Offset of the header.
        offset: u64,
        /// Offset of the field.
        field_offset: u64,
        /// Name of the field, as in `man 5 cpio`.
        field: &'static str,
        /// The 8 bytes found, escaped.
        found: String,
    },
    /// `c_namesize` is 0, so there is not even room for the NUL terminator.
    #[error(
        "cpio entry at offset {offset} has c_namesize 0; a name needs at least its NUL terminator"
    )]
    EmptyName {
        /// Offset of the header.
        offset: u64,
    },
    /// The name, the data or their padding runs past the end of the input:
    /// either the input is truncated or the header claims an absurd size.
    #[error("cpio entry at offset {offset}: its {part} needs {needed} bytes but only {available} remain (truncated archive, or a corrupt size in the header)")]
    Truncated {
        /// Offset of the header.
        offset: u64,
        /// `"name"`, `"data"` or `"padding"`.
        part: &'static str,
        /// Bytes the header says the part takes.
        needed: u64,
        /// Bytes left in the input where the part starts.
        available: u64,
    },
    /// The last byte of the name is not NUL.
    #[error("cpio entry at offset {offset}: name '{name}' does not end with a NUL byte (wrong c_namesize?)")]
    NameNotTerminated {
        /// Offset of the header.
        offset: u64,
        /// The name, escaped and shortened.
        name: String,
    },
    /// The name has a NUL byte before its terminator; the kernel would silently
    /// cut the name there.
    #[error("cpio entry at offset {offset}: name '{name}' contains a NUL byte before its end (wrong c_namesize?)")]
    NameContainsNul {
        /// Offset of the header.
        offset: u64,
        /// The name, escaped and shortened.
        name: String,
    },
    /// The input ended where another header or the trailer should be.
    #[error(
        "cpio archive ends at offset {offset} without a TRAILER!!! entry (truncated archive?)"
    )]
    MissingTrailer {
        /// Offset of the end of the input.
        offset: u64,
    },
    /// Where an archive could start (only when reading concatenated archives:
    /// at the start or after a trailer and its NUL padding) there is something
    /// else. [`Reader::remainder`] then starts at those bytes, so a caller can,
    /// for instance, decompress them and read on, as the kernel would.
    #[error("at offset {offset}: '{found}' is neither NUL padding nor a cpio header at a 4-byte boundary{hint}")]
    NotAnArchive {
        /// Offset of the first non-NUL byte.
        offset: u64,
        /// The first bytes found, escaped.
        found: String,
        /// A suggestion when the bytes look like something recognizable.
        hint: &'static str,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Expecting a header (or the end of input, which is an error).
    Entries,
    /// Before an archive (at the start or past a trailer) when reading
    /// concatenated archives: NUL padding or the end of input may come.
    Between,
    /// Finished, or stopped after an error.
    Done,
}

/// Iterator over the entries of a newc archive in memory.
///
/// By default it stops at the first trailer (which it does not yield) and reports
/// an error if the input ends before one. [`Reader::concatenated`] makes it behave
/// like the kernel's initramfs unpacker instead: after a trailer it skips NUL
/// padding and continues with the next archive, if any, at a 4-byte boundary.
///
/// After yielding an error the iterator ends.
///
/// ```
/// use cvmkit_cpio::{Header, Reader, Writer};
///
/// let one = Writer::new(Vec::new()).finish()?;
/// let mut w = Writer::new(one.clone());
/// w.write_entry(b"second", &Header::default(), &mut std::io::empty())?;
/// let both = w.finish()?;
///
/// assert_eq!(Reader::new(&both).count(), 0);
/// let names: Vec<_> = Reader::new(&both).concatenated(true).map(|e| e.unwrap().name).collect();
/// assert_eq!(names, [b"second"]);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
    state: State,
    concatenated: bool,
    trailers: bool,
}

impl<'a> Reader<'a> {
    /// Reads the archive that starts at the beginning of `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Reader {
            data,
            pos: 0,
            state: State::Entries,
            concatenated: false,
            trailers: false,
        }
    }

    /// Whether to read the input the way the kernel unpacks an initramfs: NUL
    /// bytes before an archive are skipped, after a trailer another archive may
    /// follow (at a 4-byte aligned offset), and the end of the input is fine
    /// wherever an archive could start, so an empty input has no entries and no
    /// error. Call it before iterating.
    pub fn concatenated(mut self, yes: bool) -> Self {
        self.concatenated = yes;
        if self.pos == 0 && self.state != State::Done {
            self.state = if yes { State::Between } else { State::Entries };
        }
        self
    }

    /// Whether to yield the `TRAILER!!!` entries too (see [`Entry::is_trailer`]).
    pub fn with_trailers(mut self, yes: bool) -> Self {
        self.trailers = yes;
        self
    }

    /// Offset of the next byte the reader will look at.
    pub fn offset(&self) -> u64 {
        self.pos as u64
    }

    /// The input from [`Reader::offset`] on: after the trailer of a single archive,
    /// its padding and whatever follows it.
    pub fn remainder(&self) -> &'a [u8] {
        self.data.get(self.pos..).unwrap_or_default()
    }

    fn fail(&mut self, e: Error) -> Option<Result<Entry<'a>, Error>> {
        self.state = State::Done;
        Some(Err(e))
    }
}

impl<'a> Iterator for Reader<'a> {
    type Item = Result<Entry<'a>, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            match self.state {
                State::Done => return None,
                State::Between => {
                    let rest = self.remainder();
                    let zeros = rest.iter().take_while(|&&b| b == 0).count();
                    self.pos = self.pos.saturating_add(zeros);
                    let rest = self.remainder();
                    if rest.is_empty() {
                        self.state = State::Done;
                        return None;
                    }
                    // The kernel takes only a 4-byte aligned '0' as the start of
                    // an archive ("broken padding" otherwise).
                    if self.pos % 4 != 0 || rest.first() != Some(&b'0') {
                        let e = Error::NotAnArchive {
                            offset: self.pos as u64,
                            found: quote(rest, 8),
                            hint: compression_hint(rest),
                        };
                        return self.fail(e);
                    }
                    self.state = State::Entries;
                }
                State::Entries => {
                    if self.pos >= self.data.len() {
                        let e = Error::MissingTrailer {
                            offset: self.pos as u64,
                        };
                        return self.fail(e);
                    }
                    let (entry, next) = match parse_entry(self.data, self.pos) {
                        Ok(v) => v,
                        Err(e) => return self.fail(e),
                    };
                    self.pos = next;
                    if entry.is_trailer() {
                        self.state = if self.concatenated {
                            State::Between
                        } else {
                            State::Done
                        };
                        if !self.trailers {
                            continue;
                        }
                    }
                    return Some(Ok(entry));
                }
            }
        }
    }
}

impl FusedIterator for Reader<'_> {}

/// Parses the entry whose header starts at `pos`; returns it and the offset just
/// past its data padding.
fn parse_entry(data: &[u8], pos: usize) -> Result<(Entry<'_>, usize), Error> {
    let offset = pos as u64;
    let rest = data.get(pos..).unwrap_or_default();
    let remaining = |at: usize| data.len().saturating_sub(at) as u64;

    let header = rest
        .first_chunk::<HEADER_LEN>()
        .ok_or(Error::TruncatedHeader {
            offset,
            available: rest.len() as u64,
        })?;
    let (magic, fields) = header
        .split_first_chunk::<6>()
        .ok_or(Error::TruncatedHeader {
            offset,
            available: rest.len() as u64,
        })?;
    let format = if magic == MAGIC_NEWC {
        Format::Newc
    } else if magic == MAGIC_CRC {
        Format::Crc
    } else {
        return Err(Error::BadMagic {
            offset,
            found: quote(magic, 6),
            hint: magic_hint(rest),
        });
    };

    let mut v = [0u32; 13];
    for (i, ((chunk, slot), field)) in fields
        .chunks_exact(8)
        .zip(v.iter_mut())
        .zip(FIELD_NAMES)
        .enumerate()
    {
        *slot = parse_hex8(chunk).ok_or_else(|| Error::BadField {
            offset,
            field_offset: offset.saturating_add(6 + 8 * i as u64),
            field,
            found: quote(chunk, 8),
        })?;
    }
    let [ino, mode, uid, gid, nlink, mtime, filesize, devmajor, devminor, rdevmajor, rdevminor, namesize, check] =
        v;
    let header = Header {
        ino,
        mode,
        uid,
        gid,
        nlink,
        mtime,
        filesize,
        devmajor,
        devminor,
        rdevmajor,
        rdevminor,
    };

    if namesize == 0 {
        return Err(Error::EmptyName { offset });
    }
    let truncated = |part, needed: u64, at: usize| Error::Truncated {
        offset,
        part,
        needed,
        available: remaining(at),
    };
    let name_start =
        pos.checked_add(HEADER_LEN)
            .ok_or(truncated("name", namesize.into(), data.len()))?;
    let name_end = usize::try_from(namesize)
        .ok()
        .and_then(|n| name_start.checked_add(n))
        .filter(|&end| end <= data.len())
        .ok_or(truncated("name", namesize.into(), name_start))?;
    let name_nul =
        data.get(name_start..name_end)
            .ok_or(truncated("name", namesize.into(), name_start))?;
    let (&last, name) = name_nul.split_last().ok_or(Error::EmptyName { offset })?;
    if last != 0 {
        return Err(Error::NameNotTerminated {
            offset,
            name: quote(name_nul, QUOTE_MAX),
        });
    }
    if name.contains(&0) {
        return Err(Error::NameContainsNul {
            offset,
            name: quote(name, QUOTE_MAX),
        });
    }

    let data_start = align4(name_end)
        .filter(|&s| s <= data.len())
        .ok_or(truncated("padding", pad_len(name_end), name_end))?;
    let data_end = usize::try_from(filesize)
        .ok()
        .and_then(|n| data_start.checked_add(n))
        .filter(|&end| end <= data.len())
        .ok_or(truncated("data", filesize.into(), data_start))?;
    let body =
        data.get(data_start..data_end)
            .ok_or(truncated("data", filesize.into(), data_start))?;
    let next = align4(data_end)
        .filter(|&n| n <= data.len())
        .ok_or(truncated("padding", pad_len(data_end), data_end))?;

    let entry = Entry {
        name,
        header,
        data: body,
        offset,
        format,
        check,
    };
    Ok((entry, next))
}

/// Parses exactly 8 hex digits (either case), most significant first.
fn parse_hex8(chunk: &[u8]) -> Option<u32> {
    if chunk.len() != 8 {
        return None;
    }
    chunk.iter().try_fold(0u32, |acc, &c| {
        let d = (c as char).to_digit(16)?;
        // At most 8 digits, so the top nibble is free before each shift.
        Some((acc << 4) | d)
    })
}

fn align4(n: usize) -> Option<usize> {
    n.checked_add(3).map(|m| m & !3)
}

fn pad_len(n: usize) -> u64 {
    (n.wrapping_neg() & 3) as u64
}

/// Escapes at most `max` bytes for an error message.
fn quote(bytes: &[u8], max: usize) -> String {
    let shown = bytes.get(..max).unwrap_or(bytes);
    let mut s = shown.escape_ascii().to_string();
    if shown.len() < bytes.len() {
        s.push_str("...");
    }
    s
}

/// A hint for a header that does not start with a newc magic.
fn magic_hint(bytes: &[u8]) -> &'static str {
    if bytes.starts_with(b"070707") {
        "; this is the old portable ASCII (odc) format: create the archive with 'cpio -H newc'"
    } else if bytes.starts_with(&[0xc7, 0x71]) || bytes.starts_with(&[0x71, 0xc7]) {
        "; this is the old binary cpio format: create the archive with 'cpio -H newc'"
    } else {
        compression_hint(bytes)
    }
}

/// A hint for bytes that look like a compressed stream, which the kernel would
/// decompress but this reader does not.
fn compression_hint(bytes: &[u8]) -> &'static str {
    const KNOWN: [(&[u8], &str); 6] = [
        (
            &[0x1f, 0x8b],
            "; this looks like gzip data: decompress it first",
        ),
        (
            &[0x28, 0xb5, 0x2f, 0xfd],
            "; this looks like zstd data: decompress it first",
        ),
        (
            &[0xfd, b'7', b'z', b'X', b'Z', 0],
            "; this looks like xz data: decompress it first",
        ),
        (b"BZh", "; this looks like bzip2 data: decompress it first"),
        (
            &[0x02, 0x21, 0x4c, 0x18],
            "; this looks like lz4 (legacy) data: decompress it first",
        ),
        (
            &[0x89, b'L', b'Z', b'O'],
            "; this looks like lzop data: decompress it first",
        ),
    ];
    KNOWN
        .iter()
        .find(|(magic, _)| bytes.starts_with(magic))
        .map_or("", |(_, hint)| *hint)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{mode, Writer};

    fn sample() -> Vec<u8> {
        let mut w = Writer::new(Vec::new());
        let dir = Header {
            ino: 1,
            mode: mode::S_IFDIR | 0o755,
            nlink: 2,
            ..Header::default()
        };
        w.write_entry(b"bin", &dir, &mut std::io::empty()).unwrap();
        let file = Header {
            ino: 2,
            mode: mode::S_IFREG | 0o755,
            nlink: 1,
            filesize: 5,
            mtime: 1_700_000_000,
            ..Header::default()
        };
        w.write_entry(b"bin/sh", &file, &mut &b"#!sh\n"[..])
            .unwrap();
        w.finish().unwrap()
    }

    #[test]
    fn reads_back_what_the_writer_wrote() {
        let a = sample();
        let entries: Vec<_> = Reader::new(&a).collect::<Result<_, _>>().unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].name, b"bin");
        assert_eq!(entries[0].offset, 0);
        assert_eq!(entries[1].name, b"bin/sh");
        assert_eq!(entries[1].data, b"#!sh\n");
        assert_eq!(entries[1].header.mtime, 1_700_000_000);
        // 110 + "bin\0" = 114 -> padded to 116.
        assert_eq!(entries[1].offset, 116);
        assert_eq!(entries[1].format, Format::Newc);
    }

    #[test]
    fn trailer_is_yielded_on_request_and_remainder_is_the_padding() {
        let a = sample();
        let mut r = Reader::new(&a).with_trailers(true);
        let all: Vec<_> = r.by_ref().collect::<Result<_, _>>().unwrap();
        assert!(all[2].is_trailer());
        assert_eq!(all[2].header.nlink, 1);
        assert!(r.remainder().iter().all(|&b| b == 0));
        assert_eq!(r.offset() as usize + r.remainder().len(), a.len());
    }

    #[test]
    fn crc_magic_is_accepted_and_its_check_reported() {
        let mut a = sample();
        a[5] = b'2';
        a[102..110].copy_from_slice(b"0000ABCD");
        let first = Reader::new(&a).next().unwrap().unwrap();
        assert_eq!(first.format, Format::Crc);
        assert_eq!(first.check, 0xabcd);
    }

    #[test]
    fn concatenated_archives_are_followed_only_on_request() {
        let a = sample();
        let mut both = a.clone();
        // Extra NUL padding between archives, as the kernel allows (a multiple of 4).
        both.extend_from_slice(&[0; 8]);
        both.extend_from_slice(&a);
        assert_eq!(Reader::new(&both).count(), 2);
        let names: Vec<_> = Reader::new(&both)
            .concatenated(true)
            .map(|e| e.unwrap().name.to_vec())
            .collect();
        assert_eq!(names, [&b"bin"[..], b"bin/sh", b"bin", b"bin/sh"]);
    }

    #[test]
    fn concatenated_reading_skips_leading_nuls_and_accepts_empty_input() {
        let mut padded = vec![0u8; 8];
        padded.extend(sample());
        assert_eq!(Reader::new(&padded).concatenated(true).count(), 2);
        assert!(matches!(
            Reader::new(&padded).next(),
            Some(Err(Error::BadMagic { offset: 0, .. }))
        ));
        assert_eq!(Reader::new(&[]).concatenated(true).count(), 0);
        assert_eq!(Reader::new(&[0; 12]).concatenated(true).count(), 0);
        assert_eq!(
            Reader::new(&[]).next(),
            Some(Err(Error::MissingTrailer { offset: 0 }))
        );
    }

    #[test]
    fn misaligned_or_compressed_data_after_a_trailer_is_reported() {
        let a = sample();
        let mut bad = a.clone();
        bad.extend_from_slice(&[0, 0]);
        bad.extend_from_slice(&a);
        let err = Reader::new(&bad)
            .concatenated(true)
            .last()
            .unwrap()
            .unwrap_err();
        assert_eq!(
            err,
            Error::NotAnArchive {
                offset: a.len() as u64 + 2,
                found: "070701".to_string() + "00...",
                hint: ""
            }
        );
        let mut gz = a.clone();
        gz.extend_from_slice(&[0x1f, 0x8b, 8, 0]);
        let err = Reader::new(&gz)
            .concatenated(true)
            .last()
            .unwrap()
            .unwrap_err();
        assert!(err.to_string().contains("gzip"), "{err}");
    }

    #[test]
    fn errors_name_the_offset_and_problem() {
        let a = sample();

        let mut m = a.clone();
        m[116..122].copy_from_slice(b"070707");
        let err = Reader::new(&m).nth(1).unwrap().unwrap_err();
        assert!(
            matches!(err, Error::BadMagic { offset: 116, .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("cpio -H newc"), "{err}");

        let mut h = a.clone();
        h[6 + 8 + 3] = b'g'; // inside c_mode of the first header
        let err = Reader::new(&h).next().unwrap().unwrap_err();
        assert_eq!(
            err.to_string(),
            "cpio header at offset 0: field c_mode at offset 14 is '000g41ed', which is not 8 hex digits"
        );
        assert!(matches!(
            err,
            Error::BadField {
                field: "c_mode",
                field_offset: 14,
                ..
            }
        ));

        let mut n = a.clone();
        n[113] = b'x'; // the NUL after "bin"
        let err = Reader::new(&n).next().unwrap().unwrap_err();
        assert!(
            matches!(err, Error::NameNotTerminated { offset: 0, .. }),
            "{err:?}"
        );

        let mut z = a.clone();
        z[111] = 0; // "b\0n\0"
        let err = Reader::new(&z).next().unwrap().unwrap_err();
        assert!(
            matches!(err, Error::NameContainsNul { offset: 0, .. }),
            "{err:?}"
        );

        let mut big = a.clone();
        // c_filesize of bin/sh: offset 116 + 6 + 6*8.
        big[170..178].copy_from_slice(b"ffffffff");
        let err = Reader::new(&big).nth(1).unwrap().unwrap_err();
        assert!(
            matches!(
                err,
                Error::Truncated {
                    offset: 116,
                    part: "data",
                    needed: 0xffff_ffff,
                    ..
                }
            ),
            "{err:?}"
        );

        let mut empty_name = a.clone();
        empty_name[94..102].copy_from_slice(b"00000000");
        let err = Reader::new(&empty_name).next().unwrap().unwrap_err();
        assert_eq!(err, Error::EmptyName { offset: 0 });

        let err = Reader::new(&a[..116]).nth(1).unwrap().unwrap_err();
        assert_eq!(err, Error::MissingTrailer { offset: 116 });
        let err = Reader::new(&a[..150]).nth(1).unwrap().unwrap_err();
        assert_eq!(
            err,
            Error::TruncatedHeader {
                offset: 116,
                available: 34
            }
        );
    }

    #[test]
    fn hex_fields_accept_both_cases_only() {
        assert_eq!(parse_hex8(b"DEADbeef"), Some(0xdead_beef));
        assert_eq!(parse_hex8(b"ffffffff"), Some(u32::MAX));
        assert_eq!(parse_hex8(b"0x123456"), None);
        assert_eq!(parse_hex8(b" 1234567"), None);
        assert_eq!(parse_hex8(b"+1234567"), None);
    }
}
