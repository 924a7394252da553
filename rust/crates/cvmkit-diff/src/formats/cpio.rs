//! newc cpio archives, concatenated as in an initramfs; a compressed archive that follows
//! (the kernel's "early cpio, then compressed main archive" layout) becomes a member of its
//! own, `archive #N`, which the engine decompresses.
//!
//! A compressed archive is not decompressed into memory: [`compare_streams`] decompresses both
//! sides on two threads, parses entries from a sliding window and compares them as they come,
//! keeping only entries that differ or have no partner yet.

use std::collections::HashMap;
use std::io::{self, Read};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};

use cvmkit_cpio::{mode, Header, Reader};

use super::{load_both, offset_in};
use crate::data::Data;
use crate::engine::{field_diffs, join, sniff_data, Cx, Engine, Item};
use crate::sniff::Format;

/// Bytes read from a decompressor at a time.
const WINDOW: usize = 1 << 20;

pub(crate) fn compare(e: &mut Engine<'_>, cx: &Cx<'_>) -> io::Result<bool> {
    let Some((a, b)) = load_both(e, cx.path, "cpio archive", cx.a, cx.b)? else {
        return Ok(false);
    };
    let (ia, ib) = (items(&a)?, items(&b)?);
    let (ia, ib) = match (ia, ib) {
        (Ok(x), Ok(y)) => (x, y),
        (x, y) => return Ok(e.parse_failed(cx.path, Format::Cpio, x.err(), y.err())),
    };
    e.items(&join(cx.path, "cpio"), ia, ib, true, None, cx.depth)?;
    Ok(true)
}

fn kind(m: u32) -> &'static str {
    match m & mode::S_IFMT {
        mode::S_IFREG => "file",
        mode::S_IFDIR => "directory",
        mode::S_IFLNK => "symlink",
        mode::S_IFCHR => "character device",
        mode::S_IFBLK => "block device",
        mode::S_IFIFO => "fifo",
        mode::S_IFSOCK => "socket",
        _ => "entry of unknown type",
    }
}

/// The member for one entry; `data` is its contents.
fn item(name: &[u8], h: &Header, data: Data) -> Item {
    let mut it = Item::new(String::from_utf8_lossy(name), kind(h.mode))
        .field("mode", format!("{:06o}", h.mode))
        .field("uid", h.uid)
        .field("gid", h.gid)
        .field("nlink", h.nlink)
        .field("mtime", super::time(h.mtime.into()));
    if matches!(h.mode & mode::S_IFMT, mode::S_IFCHR | mode::S_IFBLK) {
        it = it.field("rdev", format!("{}:{}", h.rdevmajor, h.rdevminor));
    }
    if (h.devmajor, h.devminor) != (0, 0) {
        it = it.field("dev", format!("{}:{}", h.devmajor, h.devminor));
    }
    if h.mode & mode::S_IFMT == mode::S_IFLNK {
        let target = data.load(u64::MAX).ok();
        let target = target.as_ref().and_then(Data::as_slice).unwrap_or_default();
        it = it.field("symlink target", String::from_utf8_lossy(target));
    } else if h.mode & mode::S_IFMT == mode::S_IFREG || data.len() != 0 {
        it = it.data(data, None);
    }
    it
}

fn rest_item(n: usize, rest: Data) -> Item {
    Item::new(format!("archive #{n}"), "compressed archive").data(rest, None)
}

/// The entries of an archive in memory, or why it cannot be read.
pub(crate) fn items(d: &Data) -> io::Result<Result<Vec<Item>, String>> {
    let bytes = d.as_slice().unwrap_or_default();
    let mut out = Vec::new();
    let mut trailers = 0;
    for entry in Reader::new(bytes).concatenated(true).with_trailers(true) {
        let entry = match entry {
            Ok(entry) => entry,
            Err(cvmkit_cpio::Error::NotAnArchive { offset, .. }) => {
                // Something else after a trailer: a compressed archive, as the kernel allows.
                let rest = d.slice(offset, u64::MAX);
                if sniff_data(&rest)?.is_compression() {
                    out.push(rest_item(trailers + 1, rest));
                    break;
                }
                return Ok(Err(format!(
                    "trailing data at offset {offset} is not an archive"
                )));
            }
            Err(err) => return Ok(Err(err.to_string())),
        };
        if entry.is_trailer() {
            trailers += 1;
            continue;
        }
        let off = offset_in(bytes, entry.data) as u64;
        out.push(item(
            entry.name,
            &entry.header,
            d.slice(off, entry.data.len() as u64),
        ));
    }
    Ok(Ok(out))
}

/// Compares two decompressed streams that both start with a cpio header, as [`compare`]
/// would compare them in memory. `None` when a side turns out not to be a readable archive:
/// the caller then decompresses into memory and compares that way, reporting why.
///
/// Each side is decompressed on its own thread into 1 MiB chunks; this thread parses entries
/// from a window over each side and compares pairs with the same name in place, copying only
/// entries that differ or whose partner has not come yet. Memory is bounded by the largest
/// entry, not the archive.
pub(crate) fn compare_streams(
    e: &mut Engine<'_>,
    path: &[String],
    ra: Box<dyn Read + Send>,
    rb: Box<dyn Read + Send>,
    limit: u64,
    depth: usize,
) -> io::Result<Option<()>> {
    let (txa, rxa) = sync_channel(4);
    let (txb, rxb) = sync_channel(4);
    let result = std::thread::scope(|s| {
        s.spawn(move || pump(ra, &txa, limit));
        s.spawn(move || pump(rb, &txb, limit));
        pair(Stream::new(rxa), Stream::new(rxb))
    });
    let Some((la, lb, ka, kb)) = result else {
        return Ok(None);
    };
    let path = join(path, "cpio");
    e.items(&path, la, lb, false, None, depth)?;
    let ka: Vec<&str> = ka.iter().map(String::as_str).collect();
    let kb: Vec<&str> = kb.iter().map(String::as_str).collect();
    e.order(&path, &ka, &kb);
    Ok(Some(()))
}

/// Decompresses into chunks; an `Err` (and the end of the channel) ends the stream.
fn pump(mut r: Box<dyn Read + Send>, tx: &SyncSender<Result<Vec<u8>, String>>, limit: u64) {
    let mut total = 0u64;
    loop {
        let mut chunk = Vec::with_capacity(WINDOW);
        match (&mut r).take(WINDOW as u64).read_to_end(&mut chunk) {
            Ok(0) => return,
            Ok(n) => {
                total += n as u64;
                if total > limit {
                    let _ = tx.send(Err(format!("decompressed data exceeds {limit} bytes")));
                    return;
                }
                if tx.send(Ok(chunk)).is_err() {
                    return;
                }
            }
            Err(err) => {
                let _ = tx.send(Err(err.to_string()));
                return;
            }
        }
    }
}

/// What is at the front of a [`Stream`].
enum Front {
    /// An entry, parsed by [`Stream::entry`].
    Entry,
    /// Bytes after the last trailer that are not another archive (a compressed archive).
    Rest(Vec<u8>),
    End,
}

/// A window over one decompressed archive.
struct Stream {
    rx: Receiver<Result<Vec<u8>, String>>,
    buf: Vec<u8>,
    start: usize,
    base: u64,
    eof: bool,
    between: bool,
    trailers: usize,
    seen: HashMap<String, usize>,
    keys: Vec<String>,
    pending: HashMap<String, (usize, Item)>,
    out: Vec<(usize, Item)>,
}

impl Stream {
    fn new(rx: Receiver<Result<Vec<u8>, String>>) -> Stream {
        Stream {
            rx,
            buf: Vec::new(),
            start: 0,
            base: 0,
            eof: false,
            between: true,
            trailers: 0,
            seen: HashMap::new(),
            keys: Vec::new(),
            pending: HashMap::new(),
            out: Vec::new(),
        }
    }

    fn fill(&mut self) -> Result<(), String> {
        self.buf.drain(..self.start);
        self.base += self.start as u64;
        self.start = 0;
        match self.rx.recv() {
            Ok(Ok(chunk)) => {
                self.buf.reserve_exact(chunk.len());
                self.buf.extend_from_slice(&chunk);
            }
            Ok(Err(e)) => return Err(e),
            Err(_) => self.eof = true,
        }
        Ok(())
    }

    /// Reads until a whole entry (or the end) is at the front, skipping trailers and padding.
    fn advance(&mut self) -> Result<Front, String> {
        loop {
            if self.between {
                loop {
                    let zeros = self.buf[self.start..]
                        .iter()
                        .take_while(|&&b| b == 0)
                        .count();
                    self.start += zeros;
                    if self.start < self.buf.len() || self.eof {
                        break;
                    }
                    self.fill()?;
                }
                if self.start == self.buf.len() {
                    return Ok(Front::End);
                }
                let abs = self.base + self.start as u64;
                if abs % 4 != 0 || self.buf[self.start] != b'0' {
                    if self.trailers == 0 {
                        return Err("not a cpio archive".into());
                    }
                    while !self.eof {
                        self.fill()?;
                    }
                    return Ok(Front::Rest(self.buf.split_off(self.start)));
                }
                self.between = false;
            }
            let mut rd = Reader::new(&self.buf[self.start..]).with_trailers(true);
            match rd.next() {
                Some(Ok(en)) if en.is_trailer() => {
                    self.trailers += 1;
                    self.between = true;
                    self.start += rd.offset() as usize;
                }
                Some(Ok(_)) => return Ok(Front::Entry),
                Some(Err(
                    cvmkit_cpio::Error::Truncated { .. }
                    | cvmkit_cpio::Error::TruncatedHeader { .. }
                    | cvmkit_cpio::Error::MissingTrailer { .. },
                )) if !self.eof => self.fill()?,
                Some(Err(err)) => return Err(err.to_string()),
                None => return Err("cpio reader ended unexpectedly".into()),
            }
        }
    }

    /// The entry at the front (after [`Stream::advance`] said there is one) and its length.
    fn entry(&self) -> Option<(cvmkit_cpio::Entry<'_>, usize)> {
        let mut rd = Reader::new(&self.buf[self.start..]).with_trailers(true);
        let en = rd.next()?.ok()?;
        Some((en, rd.offset() as usize))
    }

    /// The key of a member name on this side (`x #2` for the second `x`).
    fn key(&mut self, name: &str) -> String {
        let n = self.seen.entry(name.to_string()).or_insert(0);
        *n += 1;
        if *n > 1 {
            format!("{name} #{n}")
        } else {
            name.to_string()
        }
    }

    /// Records an owned member: paired with the other side's pending one, or pending itself.
    fn offer(&mut self, other: &mut Stream, mut it: Item, key: String) {
        if key != it.key {
            it.label = key.clone();
            it.key = key.clone();
        }
        let seq = self.keys.len();
        self.keys.push(key.clone());
        match other.pending.remove(&key) {
            Some((oseq, o)) => {
                if !same(&it, &o) {
                    self.out.push((seq, it));
                    other.out.push((oseq, o));
                }
            }
            None => {
                self.pending.insert(key, (seq, it));
            }
        }
    }

    fn finish(mut self) -> (Vec<Item>, Vec<String>) {
        self.out.extend(self.pending.drain().map(|(_, v)| v));
        self.out.sort_by_key(|(seq, _)| *seq);
        (self.out.into_iter().map(|(_, it)| it).collect(), self.keys)
    }
}

fn owned(en: &cvmkit_cpio::Entry<'_>) -> Item {
    item(en.name, &en.header, Data::from_vec(en.data.to_vec()))
}

/// Takes one member (or the end) from `me` alone.
fn step(me: &mut Stream, other: &mut Stream, front: Front, done: &mut bool) -> Option<()> {
    match front {
        Front::Entry => {
            let (it, name, used) = {
                let (en, used) = me.entry()?;
                (
                    owned(&en),
                    String::from_utf8_lossy(en.name).into_owned(),
                    used,
                )
            };
            let key = me.key(&name);
            me.start += used;
            me.offer(other, it, key);
        }
        Front::Rest(bytes) => {
            let it = rest_item(me.trailers + 1, Data::from_vec(bytes));
            let key = it.key.clone();
            me.offer(other, it, key);
            *done = true;
        }
        Front::End => *done = true,
    }
    Some(())
}

fn same(a: &Item, b: &Item) -> bool {
    a.what == b.what
        && field_diffs(a, b).is_empty()
        && match (&a.data, &b.data) {
            (Some(x), Some(y)) => x.as_slice() == y.as_slice(),
            (None, None) => true,
            _ => false,
        }
}

type Paired = (Vec<Item>, Vec<Item>, Vec<String>, Vec<String>);

/// Walks both archives in step; returns the members that differ or are unpaired (in archive
/// order) and both sides' key sequences.
fn pair(mut a: Stream, mut b: Stream) -> Option<Paired> {
    let mut done = [false, false];
    while !(done[0] && done[1]) {
        let fa = if done[0] {
            Front::End
        } else {
            a.advance().ok()?
        };
        let fb = if done[1] {
            Front::End
        } else {
            b.advance().ok()?
        };
        match (fa, fb) {
            (Front::Entry, Front::Entry) => {
                let (na, nb, ua, ub, differing) = {
                    let (ea, ua) = a.entry()?;
                    let (eb, ub) = b.entry()?;
                    let identical =
                        ea.name == eb.name && ea.header == eb.header && ea.data == eb.data;
                    let differing = (!identical).then(|| (owned(&ea), owned(&eb)));
                    let name = |n: &[u8]| String::from_utf8_lossy(n).into_owned();
                    (name(ea.name), name(eb.name), ua, ub, differing)
                };
                let (ka, kb) = (a.key(&na), b.key(&nb));
                match differing {
                    // Identical: nothing to keep but the order.
                    None if ka == kb => {
                        a.keys.push(ka);
                        b.keys.push(kb);
                    }
                    differing => {
                        let (ia, ib) = match differing {
                            Some(p) => p,
                            None => (owned(&a.entry()?.0), owned(&b.entry()?.0)),
                        };
                        a.offer(&mut b, ia, ka);
                        b.offer(&mut a, ib, kb);
                    }
                }
                a.start += ua;
                b.start += ub;
            }
            (fa, fb) => {
                step(&mut a, &mut b, fa, &mut done[0])?;
                step(&mut b, &mut a, fb, &mut done[1])?;
            }
        }
    }
    let (la, ka) = a.finish();
    let (lb, kb) = b.finish();
    Some((la, lb, ka, kb))
}
