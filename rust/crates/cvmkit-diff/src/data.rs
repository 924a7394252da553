//! Byte sources that are compared without being loaded: memory, file ranges, zeros, and
//! concatenations of those (sparse files, FAT cluster chains).
//!
//! Everything large stays on disk and is read in chunks of [`CHUNK`] bytes; only a format that
//! needs the whole bytes (a cpio archive, decompression output) holds them in memory.

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::Arc;

/// Bytes read at a time when comparing data that is not in memory.
pub(crate) const CHUNK: usize = 1 << 20;

/// A cheaply clonable view of some bytes.
#[derive(Clone)]
pub(crate) enum Data {
    /// `buf[start..start + len]`.
    Mem {
        buf: Arc<Vec<u8>>,
        start: usize,
        len: usize,
    },
    /// `len` bytes of `file` from `start`.
    File {
        file: Arc<File>,
        path: Arc<PathBuf>,
        start: u64,
        len: u64,
    },
    /// `len` bytes of the file at `path` from `start`, opened on each read (for directory
    /// trees, which may hold more files than a process may keep open).
    Path {
        path: Arc<PathBuf>,
        start: u64,
        len: u64,
    },
    /// `len` zero bytes (a hole of a sparse file).
    Zero { len: u64 },
    /// The parts one after the other.
    Concat { parts: Arc<Vec<Data>>, len: u64 },
}

impl std::fmt::Debug for Data {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Data({} bytes)", self.len())
    }
}

impl Data {
    pub(crate) fn from_vec(v: Vec<u8>) -> Data {
        let len = v.len();
        Data::Mem {
            buf: Arc::new(v),
            start: 0,
            len,
        }
    }

    pub(crate) fn from_file(file: File, path: PathBuf) -> io::Result<Data> {
        let len = file.metadata()?.len();
        Ok(Data::File {
            file: Arc::new(file),
            path: Arc::new(path),
            start: 0,
            len,
        })
    }

    pub(crate) fn concat(parts: Vec<Data>) -> Data {
        let parts: Vec<Data> = parts.into_iter().filter(|p| p.len() != 0).collect();
        if parts.len() == 1 {
            return parts.into_iter().next().unwrap_or(Data::Zero { len: 0 });
        }
        let len = parts.iter().map(Data::len).fold(0u64, u64::saturating_add);
        Data::Concat {
            parts: Arc::new(parts),
            len,
        }
    }

    pub(crate) fn len(&self) -> u64 {
        match self {
            Data::Mem { len, .. } => *len as u64,
            Data::File { len, .. }
            | Data::Path { len, .. }
            | Data::Zero { len }
            | Data::Concat { len, .. } => *len,
        }
    }

    /// The bytes, if they are contiguous in memory.
    pub(crate) fn as_slice(&self) -> Option<&[u8]> {
        match self {
            Data::Mem { buf, start, len } => buf.get(*start..start.checked_add(*len)?),
            _ => None,
        }
    }

    /// `len` bytes from `start`, clamped to the data.
    pub(crate) fn slice(&self, start: u64, len: u64) -> Data {
        let total = self.len();
        let start = start.min(total);
        let len = len.min(total - start);
        match self {
            Data::Mem { buf, start: s, .. } => Data::Mem {
                buf: buf.clone(),
                start: s + start as usize,
                len: len as usize,
            },
            Data::File {
                file,
                path,
                start: s,
                ..
            } => Data::File {
                file: file.clone(),
                path: path.clone(),
                start: s + start,
                len,
            },
            Data::Path { path, start: s, .. } => Data::Path {
                path: path.clone(),
                start: s + start,
                len,
            },
            Data::Zero { .. } => Data::Zero { len },
            Data::Concat { parts, .. } => {
                let mut out = Vec::new();
                let mut pos = 0u64;
                let end = start + len;
                for p in parts.iter() {
                    let (ps, pe) = (pos, pos + p.len());
                    pos = pe;
                    if pe <= start || ps >= end {
                        continue;
                    }
                    let from = start.max(ps) - ps;
                    let to = end.min(pe) - ps;
                    out.push(p.slice(from, to - from));
                }
                Data::concat(out)
            }
        }
    }

    /// Reads bytes at `off` into `buf`; returns how many (fewer only at the end).
    pub(crate) fn read_at(&self, off: u64, buf: &mut [u8]) -> io::Result<usize> {
        let total = self.len();
        if off >= total {
            return Ok(0);
        }
        let want = (buf.len() as u64).min(total - off) as usize;
        let buf = &mut buf[..want];
        match self {
            Data::Mem { .. } => {
                let s = self.as_slice().unwrap_or_default();
                let from = off as usize;
                buf.copy_from_slice(&s[from..from + want]);
                Ok(want)
            }
            Data::File {
                file, start, path, ..
            } => {
                let mut done = 0;
                while done < want {
                    let n = file.read_at(&mut buf[done..], start + off + done as u64)?;
                    if n == 0 {
                        return Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            format!("{} shrank while being read", path.display()),
                        ));
                    }
                    done += n;
                }
                Ok(want)
            }
            Data::Path { path, start, len } => {
                let file = File::open(path.as_path())?;
                Data::File {
                    file: Arc::new(file),
                    path: path.clone(),
                    start: *start,
                    len: *len,
                }
                .read_at(off, buf)
            }
            Data::Zero { .. } => {
                buf.fill(0);
                Ok(want)
            }
            Data::Concat { parts, .. } => {
                let mut pos = 0u64;
                let mut done = 0usize;
                for p in parts.iter() {
                    let (ps, pe) = (pos, pos + p.len());
                    pos = pe;
                    let cur = off + done as u64;
                    if pe <= cur {
                        continue;
                    }
                    if done == want {
                        break;
                    }
                    let n = p.read_at(cur - ps, &mut buf[done..])?;
                    done += n;
                }
                Ok(done)
            }
        }
    }

    /// The whole bytes in memory (no copy if they already are). Refuses more than `limit`.
    pub(crate) fn load(&self, limit: u64) -> io::Result<Data> {
        if self.as_slice().is_some() {
            return Ok(self.clone());
        }
        let len = self.len();
        if len > limit {
            return Err(io::Error::other(format!(
                "{len} bytes is more than the {limit}-byte limit for data held in memory"
            )));
        }
        let mut v = vec![0u8; len as usize];
        let n = self.read_at(0, &mut v)?;
        v.truncate(n);
        Ok(Data::from_vec(v))
    }

    /// The first `n` bytes (fewer if the data is shorter), copied.
    pub(crate) fn head(&self, n: usize) -> io::Result<Vec<u8>> {
        let mut v = vec![0u8; (n as u64).min(self.len()) as usize];
        let got = self.read_at(0, &mut v)?;
        v.truncate(got);
        Ok(v)
    }

    /// The last `n` bytes (fewer if the data is shorter), copied.
    pub(crate) fn tail(&self, n: usize) -> io::Result<Vec<u8>> {
        let n = (n as u64).min(self.len());
        let mut v = vec![0u8; n as usize];
        let got = self.read_at(self.len() - n, &mut v)?;
        v.truncate(got);
        Ok(v)
    }

    /// How many bytes from `off` on lie in a hole ([`Data::Zero`]), 0 if `off` is not in one.
    pub(crate) fn zeros_at(&self, off: u64) -> u64 {
        match self {
            Data::Zero { len } => len.saturating_sub(off),
            Data::Concat { parts, .. } => {
                let mut pos = 0u64;
                for p in parts.iter() {
                    let end = pos + p.len();
                    if off < end {
                        return p.zeros_at(off - pos);
                    }
                    pos = end;
                }
                0
            }
            _ => 0,
        }
    }

    /// How many bytes before `end` lie in a hole, 0 if the byte before `end` is not in one.
    pub(crate) fn zeros_before(&self, end: u64) -> u64 {
        match self {
            Data::Zero { len } => end.min(*len),
            Data::Concat { parts, .. } => {
                let mut pos = 0u64;
                for p in parts.iter() {
                    let pe = pos + p.len();
                    if end <= pe && end > pos {
                        return p.zeros_before(end - pos);
                    }
                    pos = pe;
                }
                0
            }
            _ => 0,
        }
    }

    /// A streaming reader over the bytes.
    pub(crate) fn reader(&self) -> DataReader {
        DataReader {
            data: self.clone(),
            pos: 0,
        }
    }
}

/// [`Read`] over a [`Data`].
pub(crate) struct DataReader {
    data: Data,
    pos: u64,
}

impl Read for DataReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.data.read_at(self.pos, buf)?;
        self.pos += n as u64;
        Ok(n)
    }
}

/// First offset in `[from, to)` where `a` and `b` differ (both must be at least `to` long).
pub(crate) fn first_diff(a: &Data, b: &Data, from: u64, to: u64) -> io::Result<Option<u64>> {
    if let (Some(x), Some(y)) = (a.as_slice(), b.as_slice()) {
        let (f, t) = (from as usize, to as usize);
        return Ok(first_diff_slices(&x[f..t], &y[f..t]).map(|i| from + i as u64));
    }
    let mut ba = vec![0u8; CHUNK];
    let mut bb = vec![0u8; CHUNK];
    let mut pos = from;
    while pos < to {
        // Holes on both sides are equal without reading them.
        let holes = a.zeros_at(pos).min(b.zeros_at(pos));
        if holes > 0 {
            pos = pos.saturating_add(holes).min(to);
            continue;
        }
        let n = ((to - pos) as usize).min(CHUNK);
        let x = chunk(a, pos, n, &mut ba)?;
        let y = chunk(b, pos, n, &mut bb)?;
        if let Some(i) = first_diff_slices(x, y) {
            return Ok(Some(pos + i as u64));
        }
        pos += n as u64;
    }
    Ok(None)
}

/// Last offset in `[from, to)` where `a` and `b` differ, scanning backwards.
pub(crate) fn last_diff(a: &Data, b: &Data, from: u64, to: u64) -> io::Result<Option<u64>> {
    let mut ba = vec![0u8; CHUNK.min((to - from) as usize)];
    let mut bb = vec![0u8; ba.len()];
    let mut end = to;
    while end > from {
        let holes = a.zeros_before(end).min(b.zeros_before(end));
        if holes > 0 {
            end = end.saturating_sub(holes).max(from);
            continue;
        }
        let n = ((end - from) as usize).min(CHUNK);
        let pos = end - n as u64;
        let x = chunk(a, pos, n, &mut ba)?;
        let y = chunk(b, pos, n, &mut bb)?;
        if x != y {
            let i = x.iter().zip(y).rposition(|(p, q)| p != q).unwrap_or(0);
            return Ok(Some(pos + i as u64));
        }
        end = pos;
    }
    Ok(None)
}

/// `n` bytes of `d` at `pos`, borrowed when in memory, else read into `buf`.
fn chunk<'a>(d: &'a Data, pos: u64, n: usize, buf: &'a mut [u8]) -> io::Result<&'a [u8]> {
    if let Some(s) = d.as_slice() {
        return Ok(&s[pos as usize..pos as usize + n]);
    }
    let got = d.read_at(pos, &mut buf[..n])?;
    if got != n {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "input shrank while being read",
        ));
    }
    Ok(&buf[..n])
}

/// Index of the first differing byte of two equally long slices.
pub(crate) fn first_diff_slices(x: &[u8], y: &[u8]) -> Option<usize> {
    const BLOCK: usize = 4096;
    let mut off = 0;
    for (p, q) in x.chunks(BLOCK).zip(y.chunks(BLOCK)) {
        if p != q {
            return p.iter().zip(q).position(|(a, b)| a != b).map(|i| off + i);
        }
        off += p.len();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concat_slices_and_reads_across_parts() {
        let d = Data::concat(vec![
            Data::from_vec(b"abc".to_vec()),
            Data::Zero { len: 2 },
            Data::from_vec(b"xyz".to_vec()),
        ]);
        assert_eq!(d.len(), 8);
        assert_eq!(d.load(100).unwrap().as_slice().unwrap(), b"abc\0\0xyz");
        let s = d.slice(2, 5);
        assert_eq!(s.load(100).unwrap().as_slice().unwrap(), b"c\0\0xy");
        let mut buf = [0u8; 3];
        assert_eq!(d.read_at(4, &mut buf).unwrap(), 3);
        assert_eq!(&buf, b"\0xy");
    }

    #[test]
    fn diffs_are_found_from_both_ends() {
        let a = Data::from_vec(vec![0; 3 * CHUNK]);
        let mut v = vec![0; 3 * CHUNK];
        v[CHUNK + 5] = 1;
        v[2 * CHUNK + 7] = 1;
        let b = Data::concat(vec![Data::from_vec(v), Data::Zero { len: 0 }]);
        let b = Data::concat(vec![
            b.slice(0, CHUNK as u64),
            b.slice(CHUNK as u64, 2 * CHUNK as u64),
        ]);
        let len = a.len();
        assert_eq!(first_diff(&a, &b, 0, len).unwrap(), Some(CHUNK as u64 + 5));
        assert_eq!(
            last_diff(&a, &b, 0, len).unwrap(),
            Some(2 * CHUNK as u64 + 7)
        );
        assert_eq!(first_diff(&a, &a, 0, len).unwrap(), None);
    }

    #[test]
    fn holes_on_both_sides_are_skipped() {
        let big = 1u64 << 50;
        let d = |x: u8| {
            Data::concat(vec![
                Data::from_vec(vec![1, 2]),
                Data::Zero { len: big },
                Data::from_vec(vec![x]),
                Data::Zero { len: big },
            ])
        };
        let (a, b) = (d(1), d(2));
        let len = a.len();
        assert_eq!(first_diff(&a, &b, 0, len).unwrap(), Some(2 + big));
        assert_eq!(last_diff(&a, &b, 0, len).unwrap(), Some(2 + big));
        assert_eq!(first_diff(&a, &a, 0, len).unwrap(), None);
    }
}
