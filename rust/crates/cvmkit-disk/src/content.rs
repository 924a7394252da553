//! Reading the planned disk's contents in disk order, and finding the zero blocks to skip.

use std::fs::File;
use std::io::Read;

use crate::layout::{DiskLayout, Source};
use crate::Error;

/// Granularity of zero detection: 4 KiB blocks at 4 KiB-aligned disk offsets (the page size,
/// and the filesystem block size of every host file system that makes holes).
pub(crate) const BLOCK: u64 = 4096;
/// Bytes read from an input file at a time.
const CHUNK: usize = 1 << 20;

pub(crate) fn is_zero(b: &[u8]) -> bool {
    let (head, body) = b.split_at(b.len() % 16);
    head.iter().all(|&x| x == 0)
        && body
            .chunks_exact(16)
            .all(|c| u128::from_ne_bytes(c.try_into().expect("16 bytes")) == 0)
}

/// Opens the UKI's bytes from their start, instead of the file at the planned path: see
/// [`DiskLayout::write_with_uki`].
pub type OpenUki<'a> = dyn Fn() -> std::io::Result<Box<dyn Read + 'a>> + 'a;

impl DiskLayout {
    /// Calls `f(disk_offset, bytes)` for every extent's bytes in disk order, input files in
    /// chunks of at most 1 MiB that end on 4 KiB disk boundaries. Each input is read once and
    /// must still have the size it had when planned.
    pub(crate) fn visit(
        &self,
        uki: Option<&OpenUki<'_>>,
        mut f: impl FnMut(u64, &[u8]) -> Result<(), Error>,
    ) -> Result<(), Error> {
        let mut buf = vec![0u8; CHUNK];
        for e in &self.extents {
            match &e.source {
                Source::Mem(bytes) => f(e.offset, bytes)?,
                Source::Input(i) => {
                    let input = &self.inputs[*i];
                    let unreadable = |source| Error::Unreadable {
                        what: if *i == 0 { "UKI" } else { "root image" },
                        path: input.path.clone(),
                        source,
                    };
                    let mut file: Box<dyn Read + '_> = match uki.filter(|_| *i == 0) {
                        Some(open) => open().map_err(unreadable)?,
                        None => Box::new(File::open(&input.path).map_err(unreadable)?),
                    };
                    let mut done = 0u64;
                    while done < input.len {
                        let at = e.offset + done;
                        let want = (CHUNK as u64 - at % BLOCK).min(input.len - done) as usize;
                        let got = read_full(&mut file, &mut buf[..want]).map_err(unreadable)?;
                        if got < want {
                            return Err(Error::InputChanged {
                                path: input.path.clone(),
                                expected: input.len,
                                actual: done + got as u64,
                            });
                        }
                        f(at, &buf[..want])?;
                        done += want as u64;
                    }
                    if read_full(&mut file, &mut buf[..1]).map_err(unreadable)? != 0 {
                        return Err(Error::InputChanged {
                            path: input.path.clone(),
                            expected: input.len,
                            actual: input.len + 1,
                        });
                    }
                }
            }
        }
        Ok(())
    }

    /// Like [`DiskLayout::visit`], but calls `f` only for maximal runs of non-zero 4 KiB blocks
    /// (clipped to the extents) within each chunk.
    pub(crate) fn visit_nonzero(
        &self,
        uki: Option<&OpenUki<'_>>,
        mut f: impl FnMut(u64, &[u8]) -> Result<(), Error>,
    ) -> Result<(), Error> {
        self.visit(uki, |offset, data| {
            let mut i = 0usize;
            let mut run: Option<usize> = None;
            while i < data.len() {
                let abs = offset + i as u64;
                let end = (i + (BLOCK - abs % BLOCK) as usize).min(data.len());
                let zero = is_zero(&data[i..end]);
                match (zero, run) {
                    (false, None) => run = Some(i),
                    (true, Some(s)) => {
                        f(offset + s as u64, &data[s..i])?;
                        run = None;
                    }
                    _ => {}
                }
                i = end;
            }
            if let Some(s) = run {
                f(offset + s as u64, &data[s..])?;
            }
            Ok(())
        })
    }

    /// The sparse map: sorted, merged (offset, length) ranges of the disk that hold non-zero
    /// 4 KiB blocks, widened to 512-byte boundaries (GNU tar reads each range's data in whole
    /// 512-byte blocks). Reads every input once.
    pub(crate) fn data_map(&self, uki: Option<&OpenUki<'_>>) -> Result<Vec<(u64, u64)>, Error> {
        let mut map: Vec<(u64, u64)> = Vec::new();
        self.visit_nonzero(uki, |offset, data| {
            let start = offset / 512 * 512;
            let end = (offset + data.len() as u64).div_ceil(512) * 512;
            match map.last_mut() {
                Some((o, l)) if *o + *l >= start => *l = end.max(*o + *l) - *o,
                _ => map.push((start, end - start)),
            }
            Ok(())
        })?;
        Ok(map)
    }
}

/// Emits the bytes of the ranges of a sparse map, in order, from chunks of the disk given in
/// increasing order; parts of a range no chunk covers are zeros.
pub(crate) struct MapFeeder<'m> {
    map: &'m [(u64, u64)],
    i: usize,
    pos: u64,
    /// Bytes emitted.
    pub emitted: u64,
}

impl<'m> MapFeeder<'m> {
    pub(crate) fn new(map: &'m [(u64, u64)]) -> Self {
        MapFeeder {
            map,
            i: 0,
            pos: 0,
            emitted: 0,
        }
    }

    /// Feeds the chunk at `offset`; `emit` gets the map's bytes up to the chunk's end.
    pub(crate) fn feed(
        &mut self,
        offset: u64,
        bytes: &[u8],
        emit: &mut impl FnMut(&[u8]) -> Result<(), Error>,
    ) -> Result<(), Error> {
        let end = offset + bytes.len() as u64;
        while let Some(&(o, l)) = self.map.get(self.i) {
            let seg_end = o + l;
            self.pos = self.pos.max(o);
            if o >= end {
                break;
            }
            // Zeros before the chunk (or up to the range's end).
            let gap_end = offset.min(seg_end).max(self.pos);
            self.zeros(gap_end - self.pos, emit)?;
            self.pos = gap_end;
            if self.pos < seg_end && self.pos < end {
                let b = seg_end.min(end);
                emit(&bytes[(self.pos - offset) as usize..(b - offset) as usize])?;
                self.emitted += b - self.pos;
                self.pos = b;
            }
            if self.pos == seg_end {
                self.i += 1;
            } else {
                break;
            }
        }
        Ok(())
    }

    /// Emits the zeros of whatever remains of the map.
    pub(crate) fn finish(
        &mut self,
        emit: &mut impl FnMut(&[u8]) -> Result<(), Error>,
    ) -> Result<(), Error> {
        while let Some(&(o, l)) = self.map.get(self.i) {
            self.pos = self.pos.max(o);
            self.zeros(o + l - self.pos, emit)?;
            self.pos = o + l;
            self.i += 1;
        }
        Ok(())
    }

    fn zeros(
        &mut self,
        mut n: u64,
        emit: &mut impl FnMut(&[u8]) -> Result<(), Error>,
    ) -> Result<(), Error> {
        const ZEROS: [u8; 4096] = [0; 4096];
        self.emitted += n;
        while n > 0 {
            let k = n.min(4096) as usize;
            emit(&ZEROS[..k])?;
            n -= k as u64;
        }
        Ok(())
    }
}

/// Reads until `buf` is full or the end of the file; returns the bytes read.
fn read_full(file: &mut dyn Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match file.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}
