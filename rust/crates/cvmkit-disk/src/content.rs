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
        self.visit(uki, |offset, data| nonzero_runs(offset, data, &mut f))
    }

    /// The sparse map: sorted, merged (offset, length) ranges of the disk that hold non-zero
    /// 4 KiB blocks, widened to 512-byte boundaries (GNU tar reads each range's data in whole
    /// 512-byte blocks). Reads every input once: an input file in parts on all cores (see
    /// [`scan_input`]), a UKI from `uki` in order.
    pub(crate) fn data_map(&self, uki: Option<&OpenUki<'_>>) -> Result<Vec<(u64, u64)>, Error> {
        let mut map: Vec<(u64, u64)> = Vec::new();
        let mut add = |offset: u64, len: u64| {
            let start = offset / 512 * 512;
            let end = (offset + len).div_ceil(512) * 512;
            match map.last_mut() {
                Some((o, l)) if *o + *l >= start => *l = end.max(*o + *l) - *o,
                _ => map.push((start, end - start)),
            }
        };
        if uki.is_some() {
            self.visit_nonzero(uki, |offset, data| {
                add(offset, data.len() as u64);
                Ok(())
            })?;
            return Ok(map);
        }
        for e in &self.extents {
            match &e.source {
                Source::Mem(bytes) => nonzero_runs(e.offset, bytes, &mut |o, d| {
                    add(o, d.len() as u64);
                    Ok(())
                })?,
                Source::Input(i) => {
                    let what = if *i == 0 { "UKI" } else { "root image" };
                    for (o, l) in scan_input(e.offset, &self.inputs[*i], what)? {
                        add(o, l);
                    }
                }
            }
        }
        Ok(map)
    }
}

/// Calls `f(disk_offset, bytes)` for the maximal runs of non-zero 4 KiB disk blocks in `data`,
/// the bytes at `offset` (blocks clipped to `data`).
fn nonzero_runs(
    offset: u64,
    data: &[u8],
    f: &mut impl FnMut(u64, &[u8]) -> Result<(), Error>,
) -> Result<(), Error> {
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
}

/// Bytes of an input per part when its zero blocks are found (below, one part: a thread costs
/// more than it saves on less).
const PART: u64 = 16 << 20;

/// The (disk offset, length) runs of non-zero 4 KiB blocks of the input placed at disk offset
/// `at`, in order. The input is cut into parts of about [`PART`] bytes (at most 8) at 4 KiB disk
/// boundaries, and the parts are read at once with positioned reads: reading the file is most of
/// the cost (the first bytes of a block usually show it is not zero), and it is on the critical
/// path, since a GCP or qcow2 archive's header, which lists the runs, comes before any data.
/// Runs are cut where parts meet; [`DiskLayout::data_map`] joins them again, so the map is the
/// same as from one reader.
fn scan_input(
    at: u64,
    input: &crate::layout::Input,
    what: &'static str,
) -> Result<Vec<(u64, u64)>, Error> {
    use std::os::unix::fs::FileExt;
    let unreadable = |source| Error::Unreadable {
        what,
        path: input.path.clone(),
        source,
    };
    let changed = |actual| Error::InputChanged {
        path: input.path.clone(),
        expected: input.len,
        actual,
    };
    let file = File::open(&input.path).map_err(unreadable)?;
    // By size alone, not the core count, so that every machine (and test) reads in the same parts.
    let parts = input.len.div_ceil(PART).clamp(1, 8);
    // Part k covers input bytes [cuts[k], cuts[k + 1]), each cut (but 0 and the end) a 4 KiB
    // disk boundary.
    let mut cuts: Vec<u64> = (0..parts)
        .map(|k| {
            if k == 0 {
                0
            } else {
                ((at + input.len * k / parts) / BLOCK * BLOCK).saturating_sub(at)
            }
        })
        .collect();
    cuts.push(input.len);
    let scan = |from: u64, to: u64| -> Result<Vec<(u64, u64)>, Error> {
        let mut runs = Vec::new();
        let mut buf = vec![0u8; CHUNK];
        let mut done = from;
        while done < to {
            let disk = at + done;
            let want = (CHUNK as u64 - disk % BLOCK).min(to - done) as usize;
            let mut got = 0;
            while got < want {
                match file.read_at(&mut buf[got..want], done + got as u64) {
                    Ok(0) => return Err(changed(done + got as u64)),
                    Ok(n) => got += n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(unreadable(e)),
                }
            }
            nonzero_runs(disk, &buf[..want], &mut |o, d| {
                runs.push((o, d.len() as u64));
                Ok(())
            })?;
            done += want as u64;
        }
        Ok(runs)
    };
    let found: Vec<Result<Vec<(u64, u64)>, Error>> = std::thread::scope(|s| {
        let threads: Vec<_> = cuts[1..cuts.len() - 1]
            .iter()
            .zip(&cuts[2..])
            .map(|(&from, &to)| s.spawn(move || scan(from, to)))
            .collect();
        let mut found = vec![scan(cuts[0], cuts[1])];
        found.extend(
            threads
                .into_iter()
                .map(|t| t.join().unwrap_or_else(|p| std::panic::resume_unwind(p))),
        );
        found
    });
    let mut runs = Vec::new();
    for part in found {
        runs.extend(part?);
    }
    // The file must still end where it did when planned.
    match file.read_at(&mut [0u8], input.len) {
        Ok(0) => Ok(runs),
        Ok(_) => Err(changed(input.len + 1)),
        Err(e) => Err(unreadable(e)),
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
