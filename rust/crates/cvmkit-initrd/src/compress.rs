//! Deterministic gzip and zstd compression of a finished archive.

use std::fmt;
use std::io::Write;
use std::str::FromStr;

use crate::Error;

/// How to compress the archive. Both formats are decompressed by the kernel's
/// initramfs unpacker (`CONFIG_RD_GZIP`, `CONFIG_RD_ZSTD`).
///
/// The output depends only on the input and the level: compression is
/// single-threaded, and the gzip header carries no name, mtime 0 and fixed
/// flag and OS bytes.
///
/// ```
/// use cvmkit_initrd::{Compression, ParseCompressionError};
///
/// assert_eq!("gzip".parse::<Compression>()?, Compression::gzip());
/// assert_eq!("zstd:19".parse::<Compression>()?, Compression::Zstd { level: 19 });
/// assert_eq!("zstd".parse::<Compression>()?, Compression::Zstd { level: 10 });
/// assert_eq!(Compression::gzip().to_string(), "gzip:7");
/// assert!(matches!("xz".parse::<Compression>(), Err(ParseCompressionError { .. })));
/// # Ok::<(), cvmkit_initrd::ParseCompressionError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Compression {
    /// The plain cpio archive.
    None,
    /// gzip (RFC 1952) with DEFLATE from libdeflate. Levels 1–12; 10–12 are
    /// libdeflate's slower, smaller levels beyond zlib's 9.
    Gzip {
        /// Compression level.
        level: u32,
    },
    /// A single zstd frame with the content size and a checksum. Levels 1–19;
    /// higher levels would need windows the kernel's decompressor may refuse.
    Zstd {
        /// Compression level.
        level: i32,
    },
}

impl Compression {
    /// The gzip level of [`Compression::gzip`]. On kernel modules libdeflate at
    /// level 7 is about 1% smaller than `gzip -9n` and over ten times faster
    /// (~1.4 s for 51 MB); level 8 gains another 0.5% for twice the time.
    pub const DEFAULT_GZIP_LEVEL: u32 = 7;
    /// The zstd level of [`Compression::zstd`]. Level 10 compresses 51 MB of
    /// kernel modules in ~1.8 s; the kernel's own `-19` is 11% smaller but
    /// takes ~50 s. Ask for `zstd:19` when size matters more.
    pub const DEFAULT_ZSTD_LEVEL: i32 = 10;
    /// Gzip levels accepted.
    pub const GZIP_LEVELS: std::ops::RangeInclusive<u32> = 1..=12;
    /// Zstd levels accepted.
    pub const ZSTD_LEVELS: std::ops::RangeInclusive<i32> = 1..=19;

    /// gzip at [`Compression::DEFAULT_GZIP_LEVEL`].
    pub fn gzip() -> Compression {
        Compression::Gzip {
            level: Self::DEFAULT_GZIP_LEVEL,
        }
    }

    /// zstd at [`Compression::DEFAULT_ZSTD_LEVEL`].
    pub fn zstd() -> Compression {
        Compression::Zstd {
            level: Self::DEFAULT_ZSTD_LEVEL,
        }
    }

    /// Checks the level, so that a bad one is reported before any work is done.
    pub fn validate(self) -> Result<(), Error> {
        match self {
            Compression::Gzip { level } if !Self::GZIP_LEVELS.contains(&level) => {
                Err(Error::Compress {
                    algorithm: "gzip",
                    message: format!("level {level} is not supported; use 1 to 12"),
                })
            }
            Compression::Zstd { level } if !Self::ZSTD_LEVELS.contains(&level) => {
                Err(Error::Compress {
                    algorithm: "zstd",
                    message: format!("level {level} is not supported; use 1 to 19"),
                })
            }
            _ => Ok(()),
        }
    }

    /// Compresses `data` into `out`; returns the number of bytes written.
    pub fn compress(self, data: &[u8], out: &mut dyn Write) -> Result<u64, Error> {
        self.validate()?;
        let compressed = match self {
            Compression::None => {
                out.write_all(data).map_err(Error::Write)?;
                return Ok(data.len() as u64);
            }
            Compression::Gzip { level } => gzip(data, level)?,
            Compression::Zstd { level } => zstd(data, level)?,
        };
        out.write_all(&compressed).map_err(Error::Write)?;
        out.flush().map_err(Error::Write)?;
        Ok(compressed.len() as u64)
    }
}

/// gzip member header (RFC 1952): magic, CM=8 (deflate), FLG=0 (no name, no
/// comment, no extra field, no header CRC), MTIME=0, XFL=0, OS=3 (Unix, as
/// `gzip -n` writes on Linux). Written here rather than by libdeflate so that it
/// cannot change with the library version. FLG=0 also matters to the kernel,
/// whose gunzip skips only a file name.
const GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3];

fn gzip(data: &[u8], level: u32) -> Result<Vec<u8>, Error> {
    let err = |message: String| Error::Compress {
        algorithm: "gzip",
        message,
    };
    let lvl = i32::try_from(level)
        .ok()
        .and_then(|l| libdeflater::CompressionLvl::new(l).ok())
        .ok_or_else(|| err(format!("level {level} is not supported; use 1 to 12")))?;
    let mut compressor = libdeflater::Compressor::new(lvl);
    let bound = compressor.deflate_compress_bound(data.len());
    // A zeroed allocation: pages the compressor never writes are never
    // touched, so the bound's slack costs address space, not memory.
    let mut out = vec![0u8; GZIP_HEADER.len() + bound];
    let (header, body) = out.split_at_mut(GZIP_HEADER.len());
    header.copy_from_slice(&GZIP_HEADER);
    let n = compressor
        .deflate_compress(data, body)
        .map_err(|e| err(format!("{e:?}")))?;
    out.truncate(GZIP_HEADER.len() + n);
    let mut crc = libdeflater::Crc::new();
    crc.update(data);
    out.extend_from_slice(&crc.sum().to_le_bytes());
    // ISIZE: the input length modulo 2^32.
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    Ok(out)
}

fn zstd(data: &[u8], level: i32) -> Result<Vec<u8>, Error> {
    // The same bytes, faster (see `zstd_huge`); where it cannot run, zstd-safe's path below.
    if let Some(out) = crate::zstd_huge::compress(data, level) {
        return Ok(out);
    }
    zstd_safe_path(data, level)
}

fn zstd_safe_path(data: &[u8], level: i32) -> Result<Vec<u8>, Error> {
    let err = |e: std::io::Error| Error::Compress {
        algorithm: "zstd",
        message: e.to_string(),
    };
    let mut c = zstd::bulk::Compressor::new(level).map_err(err)?;
    // Set explicitly rather than relying on the library's defaults.
    c.include_checksum(true).map_err(err)?;
    c.include_contentsize(true).map_err(err)?;
    c.include_dictid(false).map_err(err)?;
    c.compress(data).map_err(err)
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Compression::None => f.write_str("none"),
            Compression::Gzip { level } => write!(f, "gzip:{level}"),
            Compression::Zstd { level } => write!(f, "zstd:{level}"),
        }
    }
}

/// A compression name that [`Compression::from_str`] does not accept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown compression '{input}': expected none, gzip, zstd, gzip:LEVEL (1-12) or zstd:LEVEL (1-19)")]
pub struct ParseCompressionError {
    /// The text that was given.
    pub input: String,
}

impl FromStr for Compression {
    type Err = ParseCompressionError;

    /// Accepts `none`, `gzip`, `zstd`, and `gzip:LEVEL` / `zstd:LEVEL`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || ParseCompressionError {
            input: s.to_string(),
        };
        let (name, level) = match s.split_once(':') {
            Some((name, level)) => (name, Some(level)),
            None => (s, None),
        };
        let digits = |l: &str| !l.is_empty() && l.bytes().all(|b| b.is_ascii_digit());
        match (name, level) {
            ("none", None) => Ok(Compression::None),
            ("gzip", None) => Ok(Compression::gzip()),
            ("zstd", None) => Ok(Compression::zstd()),
            ("gzip", Some(l)) if digits(l) => match l.parse() {
                Ok(level) if Self::GZIP_LEVELS.contains(&level) => Ok(Compression::Gzip { level }),
                _ => Err(bad()),
            },
            ("zstd", Some(l)) if digits(l) => match l.parse() {
                Ok(level) if Self::ZSTD_LEVELS.contains(&level) => Ok(Compression::Zstd { level }),
                _ => Err(bad()),
            },
            _ => Err(bad()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_display_round_trip() {
        for c in [
            Compression::None,
            Compression::gzip(),
            Compression::Gzip { level: 12 },
            Compression::zstd(),
            Compression::Zstd { level: 1 },
        ] {
            assert_eq!(c.to_string().parse::<Compression>(), Ok(c));
        }
        for bad in [
            "", "gz", "gzip:", "gzip:0", "gzip:13", "zstd:20", "zstd:-1", "zstd:+3", "none:1",
            "GZIP",
        ] {
            assert_eq!(
                bad.parse::<Compression>(),
                Err(ParseCompressionError { input: bad.into() })
            );
        }
        assert_eq!(
            "xz".parse::<Compression>().unwrap_err().to_string(),
            "unknown compression 'xz': expected none, gzip, zstd, gzip:LEVEL (1-12) or zstd:LEVEL (1-19)"
        );
    }

    #[test]
    fn out_of_range_levels_are_refused() {
        let err = Compression::Zstd { level: 22 }
            .compress(b"x", &mut Vec::new())
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "zstd compression failed: level 22 is not supported; use 1 to 19"
        );
    }

    /// The huge-page context gives zstd-safe's bytes, at the levels and across the input sizes
    /// where zstd picks other parameters (≤ 16 KiB, ≤ 128 KiB, ≤ 256 KiB, larger).
    #[test]
    fn zstd_in_huge_pages_gives_zstd_safes_bytes() {
        // Text-like and incompressible parts, so the match finder has work of both kinds.
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut data = Vec::new();
        while data.len() < 3 << 20 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            if state % 3 == 0 {
                data.extend_from_slice(&state.to_le_bytes());
            } else {
                data.extend_from_slice(format!("line {} of a module, {:x}\n", data.len() / 40, state % 4096).as_bytes());
            }
        }
        for len in [0, 1, 100, 16 << 10, 100 << 10, 200 << 10, 300 << 10, 3 << 20] {
            for level in [1, 3, 10, 19] {
                if level == 19 && len > 300 << 10 {
                    continue; // slow, and the parameters are those of 300 KiB
                }
                let input = &data[..len];
                let huge = crate::zstd_huge::compress(input, level)
                    .unwrap_or_else(|| panic!("the huge-page path did not run ({len} bytes, level {level})"));
                assert_eq!(huge, zstd_safe_path(input, level).unwrap(), "{len} bytes, level {level}");
            }
        }
    }

    #[test]
    fn gzip_header_is_fixed() {
        let out = gzip(b"hello", 9).unwrap();
        assert_eq!(out[..10], GZIP_HEADER);
        // Trailer: CRC-32 of "hello" (0x3610a686, as `python3 -c 'import zlib;
        // print(hex(zlib.crc32(b"hello")))'` prints) and the length 5.
        assert_eq!(out[out.len() - 8..], [0x86, 0xa6, 0x10, 0x36, 5, 0, 0, 0]);
    }
}
