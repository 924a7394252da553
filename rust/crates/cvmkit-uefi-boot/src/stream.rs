//! Measuring a UKI from its file in bounded memory (issue 16).
//!
//! [`read_streamed`] reads the UKI's headers and the few small sections whose bytes the
//! predictions read (`.sdmagic`, `.cmdline`, `.osrel`, `.pcrpkey`, `.pcrsig`, the kernel's PE
//! headers) into a buffer as long as the file. The rest of that buffer is never written: it is
//! allocated zeroed, which the allocator gets from the kernel as untouched pages, so it costs
//! address space, not memory. The file is then read once, front to back, in [`CHUNK`]-byte
//! buffers (at most [`BUFFERS`] of them alive), and every chunk goes to a few hashing threads
//! that feed each digest the parts of it it covers: the Authenticode of the UKI and of `.linux`,
//! every measured section with its zero fill, the initrd the stub hands the kernel, the file's
//! SHA-256. The digests fill a [`DigestCache`] marked complete, so predictions made from the
//! buffer find every large digest there and never hash the bytes it does not hold; a miss is
//! counted ([`DigestCache::misses`]) for the caller to refuse the result.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;

use cvmkit_measure::{Bank, Hasher};
use cvmkit_pe::PeFile;

use crate::cache::Key;
use crate::{DigestCache, Image, Part, Uki};

/// Bytes per read: large enough that the per-chunk hand-off is noise next to the hashing.
pub const CHUNK: usize = 4 << 20;
/// Chunks in flight between the reader and the hashers: the memory bound is `BUFFERS * CHUNK`.
pub const BUFFERS: usize = 4;
/// The chunks of [`measure_written`]: smaller, so that the hashers start soon after the writer
/// (the first digest waits for a whole chunk), in as much memory as the reader's.
const TEE_CHUNK: usize = 1 << 20;
const TEE_BUFFERS: usize = BUFFERS * CHUNK / TEE_CHUNK;
/// Each hasher walks a chunk in slices of this size, every digest in turn, so that a slice is
/// still in the core's cache when the next digest reads it.
const SLICE: usize = 256 << 10;
/// Sections of up to this size are read whole whatever their name (cheap, and covers sections
/// the model reads by header name).
const SMALL_SECTION: u32 = 64 << 10;
/// Sections whose bytes the predictions read (not only hash): read whole.
const READ_WHOLE: [&str; 5] = [".sdmagic", ".cmdline", ".osrel", ".pcrpkey", ".pcrsig"];
/// The most header bytes read of the UKI or of its kernel (a PE header is a few KiB).
const MAX_HEADERS: usize = 16 << 20;

/// A UKI read for measurement by [`read_streamed`].
#[derive(Debug)]
pub struct StreamedUki {
    /// As long as the file; holds only what the predictions read besides the digests.
    pub bytes: Vec<u8>,
    /// The large digests, computed from the file; `None` when the UKI did not open (`bytes`
    /// then holds the whole file, for the predictions to report why the same way as before).
    pub digests: Option<Arc<DigestCache>>,
}

/// The kernel a UKI's `.linux` section was built from, hashed before the UKI exists:
/// `cvmkit build` computes it while the initrd compresses, on the core the compressor leaves
/// free, and [`read_streamed_with`] then takes these digests instead of hashing `.linux` again.
/// As the file passes, the pass checks that `.linux` holds exactly these bytes (a comparison,
/// far cheaper than a hash), so a wrong `KnownLinux` is an error, never a wrong prediction.
pub struct KnownLinux {
    bytes: Arc<Vec<u8>>,
    /// The kernel's Authenticode ranges (empty when it is no PE image).
    ranges: Vec<std::ops::Range<usize>>,
    /// Per bank: the state after every byte (the section digest then adds its zero fill), and
    /// the Authenticode digest over `ranges`.
    banks: Vec<(Bank, Hasher, Option<Vec<u8>>)>,
}

impl KnownLinux {
    /// Hashes `kernel` in every bank of `banks`, on the calling thread.
    pub fn compute(kernel: Arc<Vec<u8>>, banks: &[Bank]) -> KnownLinux {
        let ranges = PeFile::parse(&kernel).map(|pe| pe.authenticode_ranges()).unwrap_or_default();
        let mut out: Vec<(Bank, Hasher, Option<Vec<u8>>)> = Vec::new();
        for &bank in banks {
            if out.iter().any(|(b, ..)| *b == bank) {
                continue;
            }
            let (mut whole, mut auth) = (Hasher::new(bank), Hasher::new(bank));
            // Slice by slice, both digests in turn, so each slice is read from the cache twice.
            let mut next = ranges.iter().cloned().peekable();
            for (i, slice) in kernel.chunks(SLICE).enumerate() {
                let (start, end) = (i * SLICE, i * SLICE + slice.len());
                whole.update(slice);
                while let Some(r) = next.peek_mut() {
                    if r.start >= end {
                        break;
                    }
                    // Ranges are ascending and disjoint (headers, sections by offset, trailer).
                    let (a, b) = (r.start.max(start), r.end.min(end));
                    auth.update(&slice[a - start..b - start]);
                    if r.end <= end {
                        next.next();
                    } else {
                        r.start = end;
                        break;
                    }
                }
            }
            let auth = (!ranges.is_empty() && ranges.windows(2).all(|w| w[0].end <= w[1].start)).then(|| auth.finalize());
            out.push((bank, whole, auth));
        }
        KnownLinux { bytes: kernel, ranges, banks: out }
    }

    /// The kernel file's plain digest in `bank`, if it was hashed in it.
    pub fn digest(&self, bank: Bank) -> Option<Vec<u8>> {
        self.bank(bank).map(|(_, whole, _)| whole.clone().finalize())
    }

    fn bank(&self, bank: Bank) -> Option<&(Bank, Hasher, Option<Vec<u8>>)> {
        self.banks.iter().find(|(b, ..)| *b == bank)
    }
}

impl std::fmt::Debug for KnownLinux {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KnownLinux").field("bytes", &self.bytes.len()).field("banks", &self.banks.len()).finish()
    }
}

/// Reads the UKI at `path` for predictions in `banks` (and of the kernel's initrd measurement
/// in `initrd_banks`), opened as [`Uki::open`] opens it with `stub_version` and `profile`:
/// the digests of [`Uki::prefetch`] computed in one sequential pass over the file, in memory
/// bounded by [`CHUNK`] × [`BUFFERS`] plus the small sections, whatever the file's size.
pub fn read_streamed(
    path: &Path,
    banks: &[Bank],
    initrd_banks: &[Bank],
    stub_version: Option<u32>,
    profile: Option<u32>,
) -> io::Result<StreamedUki> {
    read_streamed_with(path, banks, initrd_banks, stub_version, profile, None)
}

/// [`read_streamed`] taking the digests of `.linux` from `known` (the kernel the UKI was built
/// from) instead of hashing them; an error when `.linux` does not hold `known`'s bytes.
pub fn read_streamed_with(
    path: &Path,
    banks: &[Bank],
    initrd_banks: &[Bank],
    stub_version: Option<u32>,
    profile: Option<u32>,
    known: Option<&KnownLinux>,
) -> io::Result<StreamedUki> {
    let file = File::open(path)?;
    let len = file.metadata()?.len();
    // A PE image's sections lie below 4 GiB (32-bit offsets); a larger file is read as before,
    // which reports running out of memory as an error rather than aborting on the allocation.
    let Some(len) = usize::try_from(len).ok().filter(|&n| n as u64 <= u64::from(u32::MAX)) else {
        return whole(path);
    };
    // Zeroed, so untouched pages are never made resident (see the module comment).
    let mut bytes = vec![0u8; len];
    read_headers(&file, &mut bytes, 0, len)?;
    let Ok(pe) = PeFile::parse(&bytes) else { return whole(path) };
    // Pass 1: the sections read by name (`.sdmagic` tells the stub version) and small ones.
    let wanted: Vec<(usize, usize)> = pe
        .sections()
        .iter()
        .filter(|s| s.header.size_of_raw_data <= SMALL_SECTION || READ_WHOLE.contains(&s.name().as_ref()))
        .filter_map(|s| range_of(&pe, pe.section_data(s).ok()?))
        .collect();
    drop(pe);
    for (start, end) in wanted {
        read_at(&file, &mut bytes[start..end], start as u64)?;
    }
    // Pass 2: what the stub measures decides what else is read: the located sections read by
    // name (252's prefix match finds `.cmdline` under other header names) and `.linux`'s headers.
    let (wanted, linux) = {
        let Ok(uki) = Uki::open(&bytes, stub_version, profile) else { return whole(path) };
        let wanted: Vec<(usize, usize)> = uki
            .sections
            .iter()
            .filter(|l| READ_WHOLE.contains(&l.name))
            .filter_map(|l| range_of(&uki.pe, uki.pe.section_data(&l.section).ok()?))
            .collect();
        let linux = uki.section(".linux").and_then(|l| {
            let (start, _) = range_of(&uki.pe, uki.pe.section_data(&l.section).ok()?)?;
            Some((start, l.file_bytes))
        });
        (wanted, linux)
    };
    for (start, end) in wanted {
        read_at(&file, &mut bytes[start..end], start as u64)?;
    }
    if let Some((start, n)) = linux {
        read_headers(&file, &mut bytes, start, n)?;
    }
    let cache = Arc::new(DigestCache::new());
    {
        let Ok(uki) = Uki::open(&bytes, stub_version, profile) else { return whole(path) };
        let uki = uki.with_cache(Some(cache.clone()));
        let mut digests = uki.stream_plan(banks, initrd_banks);
        if let Some(known) = known {
            uki.take_known(&mut digests, known, &cache);
        }
        run(&file, len as u64, digests, &cache)?;
    }
    cache.set_complete();
    Ok(StreamedUki { bytes, digests: Some(cache) })
}

/// [`read_streamed_with`] for a UKI being written, instead of reading it back: `skeleton` is
/// the file as it will be, but for the large contents not in memory (zero there), and `write`
/// writes the file front to back into the writer it is given, which passes every byte on to
/// `out` and, as each [`TEE_CHUNK`] fills, to the hashers. `file` is the file `out` ends in (read
/// only for digests whose pieces come out of file order, after `out` is flushed). Every byte
/// must be final as it is written (no seeking back) and `write` must write exactly
/// `skeleton.len()` bytes. `Ok(None)`: the skeleton does not open as a UKI; the file was written
/// and nothing hashed (read it with [`read_streamed`] for the prediction to say why).
#[allow(clippy::too_many_arguments)]
pub fn measure_written<E: From<io::Error>>(
    skeleton: Vec<u8>,
    file: &File,
    out: &mut dyn Write,
    banks: &[Bank],
    initrd_banks: &[Bank],
    stub_version: Option<u32>,
    known: Option<&KnownLinux>,
    write: impl FnOnce(&mut dyn Write) -> Result<(), E>,
) -> Result<Option<StreamedUki>, E> {
    let cache = Arc::new(DigestCache::new());
    let plan = match Uki::open(&skeleton, stub_version, None) {
        Ok(uki) => {
            let uki = uki.with_cache(Some(cache.clone()));
            let mut plan = uki.stream_plan(banks, initrd_banks);
            if let Some(known) = known {
                uki.take_known(&mut plan, known, &cache);
            }
            plan
        }
        Err(_) => {
            write(out)?;
            return Ok(None);
        }
    };
    let len = skeleton.len() as u64;
    let mut failed = None;
    let ran = run_from(file, plan, &cache, |senders, free| {
        let mut tee = Tee { inner: out, senders, free, buf: Vec::new(), off: 0, allocated: 0, mine: Vec::new(), stopped: false };
        if let Err(e) = write(&mut tee) {
            failed = Some(e);
            return Err(io::Error::other("the UKI was not written"));
        }
        // In the file before the hashers may read it again.
        tee.inner.flush()?;
        tee.send();
        if tee.off != len {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("the UKI written is {} bytes, its layout {len}", tee.off),
            ));
        }
        Ok(())
    });
    if let Some(e) = failed {
        return Err(e);
    }
    ran?;
    cache.set_complete();
    Ok(Some(StreamedUki { bytes: skeleton, digests: Some(cache) }))
}

/// The writer of [`measure_written`]: every byte to `inner` and, in [`TEE_CHUNK`]-byte buffers
/// (at most [`TEE_BUFFERS`], recycled as [`read_chunks`] does), to every hasher.
struct Tee<'a, 'b> {
    inner: &'a mut dyn Write,
    senders: &'b [SyncSender<Chunk>],
    free: &'b Receiver<Vec<u8>>,
    buf: Vec<u8>,
    /// File offset of `buf`'s first byte.
    off: u64,
    allocated: usize,
    mine: Vec<Vec<u8>>,
    /// Every hasher stopped (it reports why): bytes are only written on.
    stopped: bool,
}

impl Tee<'_, '_> {
    fn buffer(&mut self) -> Vec<u8> {
        let mut buf = match self.mine.pop().map_or_else(|| self.free.try_recv(), Ok) {
            Ok(b) => b,
            Err(_) if self.allocated < TEE_BUFFERS => {
                self.allocated += 1;
                Vec::with_capacity(TEE_CHUNK)
            }
            Err(_) => self.free.recv().unwrap_or_else(|_| {
                self.stopped = true;
                Vec::new()
            }),
        };
        buf.clear();
        buf
    }

    /// Hands the filled part of the buffer to the hashers.
    fn send(&mut self) {
        let full = std::mem::take(&mut self.buf);
        let n = full.len() as u64;
        if !self.stopped && n > 0 {
            let chunk = Arc::new(full);
            for s in self.senders {
                if s.send((self.off, chunk.clone())).is_err() {
                    self.stopped = true;
                }
            }
            self.mine.extend(Arc::into_inner(chunk));
        }
        self.off += n;
    }
}

impl Write for Tee<'_, '_> {
    /// At most the rest of the current chunk per call: a large section (the kernel, one slice)
    /// then reaches the hashers chunk by chunk as it goes into the file, instead of after one
    /// long write of all of it, during which they would wait.
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if !self.stopped && self.buf.capacity() == 0 {
            self.buf = self.buffer();
        }
        if self.stopped {
            let n = self.inner.write(data)?;
            self.off += n as u64;
            return Ok(n);
        }
        let k = (TEE_CHUNK - self.buf.len()).min(data.len());
        let n = self.inner.write(&data[..k])?;
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == TEE_CHUNK {
            self.send();
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// The whole file, for a UKI that does not open (its error is reported by the prediction).
fn whole(path: &Path) -> io::Result<StreamedUki> {
    Ok(StreamedUki { bytes: std::fs::read(path)?, digests: None })
}

/// The file range of `part`, a slice of `pe`'s bytes; `None` for an empty or other slice (a
/// section without raw data is a static empty slice).
fn range_of(pe: &PeFile<'_>, part: &[u8]) -> Option<(usize, usize)> {
    let start = (part.as_ptr() as usize).checked_sub(pe.data().as_ptr() as usize)?;
    let end = start.checked_add(part.len())?;
    (!part.is_empty() && end <= pe.data().len()).then_some((start, end))
}

/// Reads the PE headers (to `SizeOfHeaders` and the end of the section table) of the image of
/// `n` bytes at file offset `base` into `bytes` at the same offset: 64 KiB first, more when
/// the headers say they are longer (at most [`MAX_HEADERS`]). Nothing is checked here: the
/// parse that follows reports a bad header.
fn read_headers(file: &File, bytes: &mut [u8], base: usize, n: usize) -> io::Result<()> {
    let limit = n.min(MAX_HEADERS);
    let mut have = (64 << 10).min(limit);
    read_at(file, &mut bytes[base..base + have], base as u64)?;
    let u = |b: &[u8], at: usize, w: usize| -> Option<usize> {
        let f = b.get(base + at..base + at + w)?;
        Some(f.iter().rev().fold(0usize, |acc, &x| acc << 8 | usize::from(x)))
    };
    let Some(nt) = u(bytes, 0x3c, 4) else { return Ok(()) };
    let want = |have: usize, need: usize| need.min(limit).max(have);
    let grow = want(have, nt.saturating_add(4096));
    if grow > have {
        read_at(file, &mut bytes[base + have..base + grow], (base + have) as u64)?;
        have = grow;
    }
    // COFF header at nt + 4: NumberOfSections at +2, SizeOfOptionalHeader at +16; the optional
    // header follows at nt + 24, SizeOfHeaders at its offset 60 (PE32 and PE32+ alike).
    let (Some(sections), Some(optional), Some(size_of_headers)) =
        (u(bytes, nt + 6, 2), u(bytes, nt + 20, 2), u(bytes, nt + 24 + 60, 4))
    else {
        return Ok(());
    };
    let table_end = nt + 24 + optional + 40 * sections;
    let need = want(have, table_end.max(size_of_headers));
    if need > have {
        read_at(file, &mut bytes[base + have..base + need], (base + have) as u64)?;
    }
    Ok(())
}

fn read_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<()> {
    file.read_exact_at(buf, offset)
}

/// A piece of a digest's input.
#[derive(Debug, Clone)]
pub(crate) enum Seg {
    /// File bytes `start..end`.
    File(u64, u64),
    Bytes(Vec<u8>),
    Zeros(u64),
}

/// One digest to compute: its input as pieces, in order.
#[derive(Clone)]
pub(crate) struct Planned {
    pub bank: Bank,
    pub key: Key,
    pub segs: Vec<Seg>,
    /// Another digest whose input is this one's followed by `segs`: computed from a copy of
    /// this one's state (the stub's initrd starting with the `.initrd` section).
    pub then: Option<(Key, Vec<Seg>)>,
    /// Not a digest: the bytes `segs` must hold (see [`KnownLinux`]); the result is 1 if they do.
    pub expect: Option<Arc<Vec<u8>>>,
}

impl<'a> Uki<'a> {
    /// Replaces the planned digests of `.linux` by `known`'s, into `cache`, when `.linux` is
    /// `known`'s kernel byte for byte as far as the headers tell (length, Authenticode ranges),
    /// and plans the check that its bytes are.
    fn take_known(&self, plan: &mut Vec<Planned>, known: &KnownLinux, cache: &DigestCache) {
        let Some(l) = self.section(".linux") else { return };
        let Some((base, _)) = range_of(&self.pe, self.pe.section_data(&l.section).unwrap_or_default()) else { return };
        let fb = l.file_bytes;
        if fb != known.bytes.len() {
            return;
        }
        let section = Key::Section(l.section.index, l.file_bytes, l.zero_fill);
        // `.linux` as LoadImage() gets it is the kernel's bytes when no Authenticode range
        // reaches into the zero fill: then its ranges are the kernel's own.
        let authenticode_same = match self.linux_load_image(false) {
            Ok(Some(buffer)) => PeFile::parse(&buffer)
                .map(|k| k.authenticode_ranges())
                .is_ok_and(|r| r == known.ranges && r.iter().all(|r| r.end <= fb)),
            _ => false,
        };
        let mut took = false;
        plan.retain(|p| {
            let Some((_, whole, auth)) = known.bank(p.bank) else { return true };
            let digest = match p.key {
                k if k == section && p.then.is_none() => {
                    let mut h = whole.clone();
                    h.update_zeros(l.zero_fill);
                    h.finalize()
                }
                Key::Image(Image::Linux) if authenticode_same => match auth {
                    Some(d) => d.clone(),
                    None => return true,
                },
                _ => return true,
            };
            cache.put(p.bank, p.key, digest);
            took = true;
            false
        });
        if took {
            plan.push(Planned {
                bank: Bank::Sha1,
                key: Key::Check,
                segs: vec![Seg::File(base as u64, (base + fb) as u64)],
                then: None,
                expect: Some(known.bytes.clone()),
            });
        }
    }

    /// The digests [`Uki::prefetch`] computes, as pieces of the file.
    pub(crate) fn stream_plan(&self, banks: &[Bank], initrd_banks: &[Bank]) -> Vec<Planned> {
        let data = self.pe.data();
        let file = |part: &[u8]| range_of(&self.pe, part).map(|(s, e)| Seg::File(s as u64, e as u64));
        let located = |l: &crate::Located| -> Vec<Seg> {
            let raw = self.pe.section_data(&l.section).unwrap_or_default();
            let mut segs: Vec<Seg> = file(raw.get(..l.file_bytes).unwrap_or_default()).into_iter().collect();
            segs.push(Seg::Zeros(l.zero_fill));
            segs
        };
        let mut all: Vec<Bank> = Vec::new();
        for b in banks.iter().chain(initrd_banks) {
            if !all.contains(b) {
                all.push(*b);
            }
        }
        let uki_ranges: Vec<Seg> =
            self.pe.authenticode_ranges().into_iter().map(|r| Seg::File(r.start as u64, r.end as u64)).collect();
        // `.linux` as `LoadImage()` gets it: the section's file bytes, then zero fill.
        let linux = match (self.linux_load_image(false), self.section(".linux")) {
            (Ok(Some(buffer)), Some(l)) => PeFile::parse(&buffer).ok().map(|kernel| {
                let base = range_of(&self.pe, self.pe.section_data(&l.section).unwrap_or_default()).map_or(0, |r| r.0);
                let fb = l.file_bytes;
                let mut segs = Vec::new();
                for r in kernel.authenticode_ranges() {
                    if r.start < fb {
                        segs.push(Seg::File((base + r.start) as u64, (base + r.end.min(fb)) as u64));
                    }
                    if r.end > fb {
                        segs.push(Seg::Zeros((r.end - r.start.max(fb)) as u64));
                    }
                }
                segs
            }),
            _ => None,
        };
        let parts = self.stub_initrd_parts().ok().flatten();
        let part_segs = |parts: &[Part<'_>]| -> Vec<Seg> {
            parts
                .iter()
                .flat_map(|p| match p {
                    Part::Section(l) => located(l),
                    Part::Bytes(b) => vec![Seg::Bytes(b.to_vec())],
                    Part::Zeros(n) => vec![Seg::Zeros(*n)],
                })
                .collect()
        };
        let mut plan = Vec::new();
        for &bank in &all {
            plan.push(Planned { bank, key: Key::Image(Image::Uki), segs: uki_ranges.clone(), then: None, expect: None });
            let initrd = initrd_banks.contains(&bank).then_some(parts.as_deref()).flatten();
            let initrd_first = initrd.and_then(|p| match p.first() {
                Some(Part::Section(l)) if l.name == ".initrd" => Some(l.section.index),
                _ => None,
            });
            for l in &self.sections {
                let then = (Some(l.section.index) == initrd_first)
                    .then(|| (Key::StubInitrd, part_segs(&initrd.unwrap_or_default()[1..])));
                plan.push(Planned {
                    bank,
                    key: Key::Section(l.section.index, l.file_bytes, l.zero_fill),
                    segs: located(l),
                    then,
                    expect: None,
                });
            }
            if let (Some(parts), None) = (initrd, initrd_first) {
                plan.push(Planned { bank, key: Key::StubInitrd, segs: part_segs(parts), then: None, expect: None });
            }
            if let Some(segs) = &linux {
                plan.push(Planned { bank, key: Key::Image(Image::Linux), segs: segs.clone(), then: None, expect: None });
            }
        }
        plan.push(Planned { bank: Bank::Sha256, key: Key::File, segs: vec![Seg::File(0, data.len() as u64)], then: None, expect: None });
        plan
    }
}

/// File bytes from an offset, shared by the hashing threads.
type Chunk = (u64, Arc<Vec<u8>>);
/// A computed digest.
type Done = (Bank, Key, Vec<u8>);

/// Where a digest's input goes: a hash, or the comparison of [`Planned::expect`].
#[derive(Clone)]
#[allow(clippy::large_enum_variant)] // one per running digest, a handful at a time
enum Sink {
    Hash(Hasher),
    Same { expected: Arc<Vec<u8>>, at: usize, same: bool },
}

impl Sink {
    fn update(&mut self, data: &[u8]) {
        match self {
            Sink::Hash(h) => h.update(data),
            Sink::Same { expected, at, same } => {
                *same &= expected.get(*at..*at + data.len()) == Some(data);
                *at += data.len();
            }
        }
    }

    fn update_zeros(&mut self, n: u64) {
        match self {
            Sink::Hash(h) => h.update_zeros(n),
            Sink::Same { same, .. } => *same &= n == 0,
        }
    }

    fn finalize(self) -> Vec<u8> {
        match self {
            Sink::Hash(h) => h.finalize(),
            Sink::Same { expected, at, same } => vec![u8::from(same && at == expected.len())],
        }
    }
}

/// A digest being computed.
struct Running {
    bank: Bank,
    key: Key,
    segs: VecDeque<Seg>,
    then: Option<(Key, Vec<Seg>)>,
    h: Sink,
    /// Its input needs file bytes before what has been read: finished by reading them again.
    behind: bool,
}

impl Running {
    fn new(p: Planned) -> Running {
        let h = match p.expect {
            Some(expected) => Sink::Same { expected, at: 0, same: true },
            None => Sink::Hash(Hasher::new(p.bank)),
        };
        Running { bank: p.bank, key: p.key, segs: p.segs.into(), then: p.then, h, behind: false }
    }

    /// Feeds what of `chunk` (file bytes from `off`) this digest needs next; moves on over
    /// generated pieces. Returns a digest forked off at the end of this one's input.
    fn feed(&mut self, chunk: &[u8], off: u64) -> Option<Running> {
        let end = off + chunk.len() as u64;
        while !self.behind {
            match self.segs.front_mut() {
                None => break,
                Some(Seg::Bytes(b)) => {
                    self.h.update(b);
                    self.segs.pop_front();
                }
                Some(Seg::Zeros(n)) => {
                    self.h.update_zeros(*n);
                    self.segs.pop_front();
                }
                Some(Seg::File(s, e)) => {
                    if s >= e {
                        self.segs.pop_front();
                        continue;
                    }
                    if *s < off {
                        // Out of file order (overlapping or unsorted ranges): reread later.
                        self.behind = true;
                        break;
                    }
                    if *s >= end {
                        break;
                    }
                    let stop = (*e).min(end);
                    self.h.update(&chunk[(*s - off) as usize..(stop - off) as usize]);
                    *s = stop;
                }
            }
        }
        self.fork()
    }

    fn fork(&mut self) -> Option<Running> {
        if !self.segs.is_empty() {
            return None;
        }
        let (key, segs) = self.then.take()?;
        Some(Running { bank: self.bank, key, segs: segs.into(), then: None, h: self.h.clone(), behind: false })
    }

    /// Finishes from the file directly (digests behind the sequential pass, or its end).
    fn finish(mut self, file: &File, buf: &mut [u8], out: &mut Vec<Done>) -> io::Result<()> {
        while let Some(seg) = self.segs.pop_front() {
            match seg {
                Seg::Bytes(b) => self.h.update(&b),
                Seg::Zeros(n) => self.h.update_zeros(n),
                Seg::File(mut s, e) => {
                    while s < e {
                        let n = buf.len().min((e - s) as usize);
                        file.read_exact_at(&mut buf[..n], s)?;
                        self.h.update(&buf[..n]);
                        s += n as u64;
                    }
                }
            }
        }
        if let Some(mut next) = self.fork() {
            next.behind = false;
            next.finish(file, buf, out)?;
        }
        out.push((self.bank, self.key, self.h.finalize()));
        Ok(())
    }
}

fn plan_bytes(p: &Planned) -> u64 {
    if p.expect.is_some() {
        return 0; // a comparison costs next to nothing
    }
    let n = |segs: &[Seg]| -> u64 {
        segs.iter()
            .map(|s| match s {
                Seg::File(a, b) => b.saturating_sub(*a),
                Seg::Bytes(b) => b.len() as u64,
                Seg::Zeros(z) => *z,
            })
            .sum()
    };
    n(&p.segs) + p.then.as_ref().map_or(0, |(_, s)| n(s))
}

/// Reads `file` (`len` bytes) once and computes `plan` on as many threads as cores, each
/// digest on one thread, the largest first onto the least loaded.
fn run(file: &File, len: u64, plan: Vec<Planned>, cache: &DigestCache) -> io::Result<()> {
    run_from(file, plan, cache, |senders, free| read_chunks(file, len, senders, free))
}

/// [`run`] with the file's bytes, front to back, from `source` (which sends them to every
/// hasher, recycling buffers from `free`); `file` serves digests that need bytes again.
fn run_from(
    file: &File,
    mut plan: Vec<Planned>,
    cache: &DigestCache,
    source: impl FnOnce(&[SyncSender<Chunk>], &Receiver<Vec<u8>>) -> io::Result<()>,
) -> io::Result<()> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, plan.len().max(1));
    plan.sort_by_key(|p| std::cmp::Reverse(plan_bytes(p) * p.bank.relative_cost()));
    let mut groups: Vec<(u64, Vec<Planned>)> = (0..threads).map(|_| (0, Vec::new())).collect();
    for p in plan {
        let g = groups.iter_mut().min_by_key(|g| g.0).expect("at least one thread");
        g.0 += plan_bytes(&p) * p.bank.relative_cost();
        g.1.push(p);
    }
    let (free_tx, free_rx) = sync_channel::<Vec<u8>>(BUFFERS);
    let results = std::thread::scope(|scope| -> io::Result<Vec<Done>> {
        let mut senders = Vec::new();
        let mut handles = Vec::new();
        for (_, group) in groups.into_iter().filter(|g| !g.1.is_empty()) {
            let (tx, rx) = sync_channel::<Chunk>(BUFFERS);
            senders.push(tx);
            let free_tx = free_tx.clone();
            handles.push(scope.spawn(move || hash_group(file, group, rx, free_tx)));
        }
        drop(free_tx);
        let read = source(&senders, &free_rx);
        drop(senders);
        let done: Vec<io::Result<Vec<Done>>> =
            handles.into_iter().map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e))).collect();
        // The source's error first: hashers that did not get every byte fail after it.
        read?;
        let mut all = Vec::new();
        for d in done {
            all.extend(d?);
        }
        Ok(all)
    })?;
    for (bank, key, digest) in results {
        if key == Key::Check {
            if digest != [1] {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "the UKI's .linux is not the kernel whose digests were computed before it was written (was it changed while building?)",
                ));
            }
            continue;
        }
        cache.put(bank, key, digest);
    }
    Ok(())
}

/// The reader: the file front to back into recycled buffers, each shared with every hasher.
fn read_chunks(
    mut file: &File,
    len: u64,
    senders: &[std::sync::mpsc::SyncSender<Chunk>],
    free: &Receiver<Vec<u8>>,
) -> io::Result<()> {
    let mut allocated = 0;
    // Buffers this thread let go of last (every buffer comes back here or through `free`).
    let mut mine: Vec<Vec<u8>> = Vec::new();
    let mut off = 0u64;
    while off < len {
        let mut buf = match mine.pop().map_or_else(|| free.try_recv(), Ok) {
            Ok(b) => b,
            Err(_) if allocated < BUFFERS => {
                allocated += 1;
                vec![0u8; CHUNK]
            }
            Err(_) => match free.recv() {
                Ok(b) => b,
                Err(_) => return Ok(()), // every hasher stopped: it reports why
            },
        };
        let want = (len - off).min(CHUNK as u64) as usize;
        buf.resize(want, 0);
        (&mut file).read_exact(&mut buf[..want])?;
        let chunk = Arc::new(buf);
        for s in senders {
            if s.send((off, chunk.clone())).is_err() {
                return Ok(());
            }
        }
        off += want as u64;
        mine.extend(Arc::into_inner(chunk));
    }
    Ok(())
}

/// One hashing thread: its digests fed from every chunk, then finished.
fn hash_group(
    file: &File,
    group: Vec<Planned>,
    rx: Receiver<Chunk>,
    free: std::sync::mpsc::SyncSender<Vec<u8>>,
) -> io::Result<Vec<Done>> {
    let mut running: Vec<Running> = group.into_iter().map(Running::new).collect();
    // Generated pieces at the start (and empty inputs) need no file bytes.
    let mut forks: Vec<Running> = running.iter_mut().filter_map(|r| r.feed(&[], 0)).collect();
    running.append(&mut forks);
    for (off, chunk) in rx {
        for (i, slice) in chunk.chunks(SLICE).enumerate() {
            let at = off + (i * SLICE) as u64;
            let mut forks: Vec<Running> = running.iter_mut().filter_map(|r| r.feed(slice, at)).collect();
            // A fork continues from where its parent ended, possibly inside this slice.
            while !forks.is_empty() {
                let mut more: Vec<Running> = forks.iter_mut().filter_map(|r| r.feed(slice, at)).collect();
                running.append(&mut forks);
                forks.append(&mut more);
            }
        }
        if let Some(buf) = Arc::into_inner(chunk) {
            let _ = free.try_send(buf);
        }
    }
    let mut out = Vec::new();
    let mut buf = vec![0u8; SLICE];
    for r in running {
        r.finish(file, &mut buf, &mut out)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file that is no UKI (garbage, a truncated PE header) is read whole for the prediction
    /// to say why, without a cache and without panicking.
    #[test]
    fn not_a_uki_is_read_whole() {
        let path = std::env::temp_dir().join(format!("cvmkit-stream-bad-{}", std::process::id()));
        let mut pe = vec![0u8; 200];
        pe[..2].copy_from_slice(b"MZ");
        pe[0x3c] = 0x40;
        pe[0x40..0x44].copy_from_slice(b"PE\0\0");
        pe[0x46] = 0xff; // 255 sections in a 200-byte file
        for bytes in [b"not a PE".to_vec(), Vec::new(), pe] {
            std::fs::write(&path, &bytes).unwrap();
            let s = read_streamed(&path, &[Bank::Sha256], &[Bank::Sha256], None, None).unwrap();
            assert!(s.digests.is_none());
            assert_eq!(s.bytes, bytes);
        }
        std::fs::remove_file(&path).unwrap();
        assert!(read_streamed(&path, &[Bank::Sha256], &[], None, None).is_err());
    }

    /// Pieces out of file order (read again after the pass), across slices and chunks,
    /// generated pieces, and a digest forked off another: each as hashing the bytes directly.
    #[test]
    fn pieces_in_any_order() {
        let dir = std::env::temp_dir().join(format!("cvmkit-stream-{}", std::process::id()));
        let data: Vec<u8> = (0..CHUNK + 3 * SLICE + 5).map(|i| (i * 7 + i / 251) as u8).collect();
        std::fs::write(&dir, &data).unwrap();
        let file = File::open(&dir).unwrap();
        let n = data.len() as u64;
        let segs = vec![
            Seg::File(600_000, 700_000),
            Seg::File(0, 100_000),
            Seg::Zeros(7),
            Seg::File(n - 10, n),
            Seg::Bytes(b"tail".to_vec()),
        ];
        let then = vec![Seg::File(CHUNK as u64 - 3, CHUNK as u64 + 9), Seg::Zeros(1)];
        let plan = vec![
            Planned { bank: Bank::Sha384, key: Key::File, segs: segs.clone(), then: Some((Key::StubInitrd, then.clone())), expect: None },
            Planned { bank: Bank::Sha1, key: Key::File, segs: vec![Seg::File(SLICE as u64 - 1, n)], then: None, expect: None },
        ];
        let cache = DigestCache::new();
        run(&file, n, plan, &cache).unwrap();
        std::fs::remove_file(&dir).unwrap();
        let direct = |bank: Bank, segs: &[Seg]| {
            let mut h = Hasher::new(bank);
            for s in segs {
                match s {
                    Seg::File(a, b) => h.update(&data[*a as usize..*b as usize]),
                    Seg::Bytes(b) => h.update(b),
                    Seg::Zeros(z) => h.update_zeros(*z),
                }
            }
            h.finalize()
        };
        let both: Vec<Seg> = segs.iter().chain(&then).cloned().collect();
        assert_eq!(cache.get(Bank::Sha384, Key::File), Some(direct(Bank::Sha384, &segs)));
        assert_eq!(cache.get(Bank::Sha384, Key::StubInitrd), Some(direct(Bank::Sha384, &both)));
        assert_eq!(cache.get(Bank::Sha1, Key::File), Some(direct(Bank::Sha1, &[Seg::File(SLICE as u64 - 1, n)])));
    }
}
