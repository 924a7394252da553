//! tar archives: POSIX ustar, pax extended headers, GNU long names and GNU sparse members
//! (oldgnu `S` headers as `tar -S` and GCP images use, and pax sparse format 1.0), which are
//! expanded into the file they stand for. Headers are read one at a time, so a tar file on
//! disk is never loaded whole.

use std::collections::HashMap;
use std::io;

use crate::data::Data;
use crate::engine::{join, Cx, Engine, Item};
use crate::sniff::Format;

const BLOCK: u64 = 512;
/// Longest GNU long name or pax header read.
const MAX_META: u64 = 1 << 20;
/// Largest file a sparse member may stand for (holes cost neither memory nor, when both sides
/// have them, reading).
const MAX_EXPANDED: u64 = 1 << 40;
/// Most sparse map entries accepted per member.
const MAX_SPARSE: usize = 1 << 20;

pub(crate) fn compare(e: &mut Engine<'_>, cx: &Cx<'_>) -> io::Result<bool> {
    let (ia, ib) = (items(cx.a, MAX_EXPANDED)?, items(cx.b, MAX_EXPANDED)?);
    let (ia, ib) = match (ia, ib) {
        (Ok(x), Ok(y)) => (x, y),
        (x, y) => return Ok(e.parse_failed(cx.path, Format::Tar, x.err(), y.err())),
    };
    e.items(&join(cx.path, "tar"), ia, ib, true, None, cx.depth)?;
    Ok(true)
}

/// Whether a 512-byte header's checksum matches (unsigned or the historic signed sum).
pub(crate) fn checksum_ok(h: &[u8]) -> bool {
    let Some(stored) = h.get(148..156).and_then(octal) else {
        return false;
    };
    let mut unsigned = 0u64;
    let mut signed = 0i64;
    for (i, &b) in h.iter().take(512).enumerate() {
        let b = if (148..156).contains(&i) { b' ' } else { b };
        unsigned += u64::from(b);
        signed += i64::from(b as i8);
    }
    stored == unsigned || i64::try_from(stored).ok() == Some(signed)
}

/// An octal field (NUL or space terminated), or GNU base-256 when the top bit is set.
fn octal(f: &[u8]) -> Option<u64> {
    if f.first().is_some_and(|b| b & 0x80 != 0) {
        let mut v: u64 = u64::from(f[0] & 0x7f);
        for &b in &f[1..] {
            v = v.checked_mul(256)?.checked_add(u64::from(b))?;
        }
        return Some(v);
    }
    let s: Vec<u8> = f
        .iter()
        .copied()
        .skip_while(|&b| b == b' ')
        .take_while(|&b| b != 0 && b != b' ')
        .collect();
    if s.is_empty() {
        return Some(0);
    }
    let s = std::str::from_utf8(&s).ok()?;
    u64::from_str_radix(s, 8).ok()
}

fn cstr(f: &[u8]) -> String {
    let end = f.iter().position(|&b| b == 0).unwrap_or(f.len());
    String::from_utf8_lossy(&f[..end]).into_owned()
}

type Parse<T> = io::Result<Result<T, String>>;

macro_rules! tri {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(e) => return Ok(Err(e)),
        }
    };
}

fn field(h: &[u8], range: std::ops::Range<usize>, what: &str, at: u64) -> Result<u64, String> {
    octal(&h[range]).ok_or_else(|| format!("tar header at offset {at}: {what} is not a number"))
}

fn read_meta(d: &Data, start: u64, size: u64, at: u64) -> Parse<Vec<u8>> {
    if size > MAX_META {
        return Ok(Err(format!(
            "tar header at offset {at}: extended header of {size} bytes is too large"
        )));
    }
    let mut v = vec![0u8; size as usize];
    d.read_at(start, &mut v)?;
    Ok(Ok(v))
}

/// pax records: `"<len> key=value\n"`.
fn pax(v: &[u8]) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut rest = v;
    while !rest.is_empty() {
        let Some(sp) = rest.iter().position(|&b| b == b' ') else {
            break;
        };
        let Some(len) = std::str::from_utf8(&rest[..sp])
            .ok()
            .and_then(|s| s.parse::<usize>().ok())
        else {
            break;
        };
        if len <= sp || len > rest.len() {
            break;
        }
        let rec = &rest[sp + 1..len];
        let rec = rec.strip_suffix(b"\n").unwrap_or(rec);
        if let Some(eq) = rec.iter().position(|&b| b == b'=') {
            out.insert(
                String::from_utf8_lossy(&rec[..eq]).into_owned(),
                String::from_utf8_lossy(&rec[eq + 1..]).into_owned(),
            );
        }
        rest = &rest[len..];
    }
    out
}

pub(crate) fn items(d: &Data, limit: u64) -> Parse<Vec<Item>> {
    let len = d.len();
    let mut pos = 0u64;
    let mut out = Vec::new();
    let mut long_name: Option<String> = None;
    let mut long_link: Option<String> = None;
    let mut ext: HashMap<String, String> = HashMap::new();
    let mut h = [0u8; BLOCK as usize];
    loop {
        if pos == len {
            break; // no end-of-archive blocks: accepted, as GNU tar does
        }
        if d.read_at(pos, &mut h)? != BLOCK as usize {
            return Ok(Err(format!("tar header at offset {pos} is truncated")));
        }
        if h.iter().all(|&b| b == 0) {
            break;
        }
        if !checksum_ok(&h) {
            return Ok(Err(format!(
                "tar header at offset {pos} has a bad checksum"
            )));
        }
        let size = tri!(field(&h, 124..136, "size", pos));
        let typeflag = h[156];
        let data_start = pos + BLOCK;
        // For oldgnu sparse members the extension headers come first.
        let mut data_at = data_start;
        let mut sparse_map: Vec<(u64, u64)> = Vec::new();
        let mut real_size = None;
        if typeflag == b'S' {
            let mut ents: Vec<[u8; 24]> = Vec::new();
            for i in 0..4 {
                let mut e = [0u8; 24];
                e.copy_from_slice(&h[386 + 24 * i..410 + 24 * i]);
                ents.push(e);
            }
            real_size = Some(tri!(field(&h, 483..495, "realsize", pos)));
            let mut extended = h[482] != 0;
            while extended {
                let mut x = [0u8; 512];
                if d.read_at(data_at, &mut x)? != 512 {
                    return Ok(Err(format!(
                        "tar sparse extension header at offset {data_at} is truncated"
                    )));
                }
                for i in 0..21 {
                    let mut e = [0u8; 24];
                    e.copy_from_slice(&x[24 * i..24 * i + 24]);
                    ents.push(e);
                }
                extended = x[504] != 0;
                data_at += BLOCK;
                if ents.len() > MAX_SPARSE {
                    return Ok(Err(format!(
                        "tar member at offset {pos}: sparse map too long"
                    )));
                }
            }
            for e in ents {
                if e.iter().all(|&b| b == 0) {
                    continue;
                }
                let off =
                    tri!(octal(&e[..12])
                        .ok_or(format!("tar member at offset {pos}: bad sparse offset")));
                let n =
                    tri!(octal(&e[12..])
                        .ok_or(format!("tar member at offset {pos}: bad sparse size")));
                sparse_map.push((off, n));
            }
        }
        let end = data_at.checked_add(size).filter(|&e| e <= len);
        let Some(end) = end else {
            return Ok(Err(format!(
                "tar member at offset {pos} needs {size} bytes but only {} remain",
                len.saturating_sub(data_at)
            )));
        };
        let next = end.div_ceil(BLOCK).saturating_mul(BLOCK).min(len.max(end));
        match typeflag {
            b'L' => {
                let v = tri!(read_meta(d, data_at, size, pos)?);
                long_name = Some(cstr(&v));
                pos = next;
                continue;
            }
            b'K' => {
                let v = tri!(read_meta(d, data_at, size, pos)?);
                long_link = Some(cstr(&v));
                pos = next;
                continue;
            }
            b'x' => {
                let v = tri!(read_meta(d, data_at, size, pos)?);
                ext = pax(&v);
                pos = next;
                continue;
            }
            b'g' => {
                out.push(
                    Item::new(format!("(pax global header at {pos})"), "pax header")
                        .data(d.slice(data_at, size), None),
                );
                pos = next;
                continue;
            }
            _ => {}
        }
        let ustar = &h[257..263] == b"ustar\0";
        let mut name = cstr(&h[..100]);
        if ustar && h[345] != 0 {
            name = format!("{}/{name}", cstr(&h[345..500]));
        }
        if let Some(n) = long_name.take() {
            name = n;
        }
        let mut link = cstr(&h[157..257]);
        if let Some(l) = long_link.take() {
            link = l;
        }
        let ext = std::mem::take(&mut ext);
        if let Some(p) = ext.get("path") {
            name = p.clone();
        }
        if let Some(l) = ext.get("linkpath") {
            link = l.clone();
        }
        let mode = tri!(field(&h, 100..108, "mode", pos));
        let uid = ext.get("uid").cloned().map_or_else(
            || field(&h, 108..116, "uid", pos).map(|v| v.to_string()),
            Ok,
        );
        let gid = ext.get("gid").cloned().map_or_else(
            || field(&h, 116..124, "gid", pos).map(|v| v.to_string()),
            Ok,
        );
        let mtime = match ext.get("mtime") {
            Some(m) => m.clone(),
            None => super::time(tri!(field(&h, 136..148, "mtime", pos)) as i64),
        };
        let what = match typeflag {
            b'0' | 0 | b'7' | b'S' => "file",
            b'1' => "hard link",
            b'2' => "symlink",
            b'3' => "character device",
            b'4' => "block device",
            b'5' => "directory",
            b'6' => "fifo",
            _ => "entry",
        };
        let mut data = d.slice(data_at, size);
        // pax sparse 1.0: the map is at the start of the data, decimal numbers one a line.
        if ext.get("GNU.sparse.major").map(String::as_str) == Some("1") {
            if let Some(n) = ext.get("GNU.sparse.name") {
                name = n.clone();
            }
            real_size = ext.get("GNU.sparse.realsize").and_then(|s| s.parse().ok());
            let head = tri!(read_meta(d, data_at, size.min(MAX_META), pos)?);
            let mut nums = Vec::new();
            let mut consumed = 0usize;
            let mut it = head.split(|&b| b == b'\n');
            let count: Option<usize> = it.next().and_then(|l| {
                consumed += l.len() + 1;
                std::str::from_utf8(l).ok()?.parse().ok()
            });
            let Some(count) = count.filter(|&c| c <= MAX_SPARSE) else {
                return Ok(Err(format!(
                    "tar member at offset {pos}: bad pax sparse map"
                )));
            };
            for l in it.take(count * 2) {
                consumed += l.len() + 1;
                match std::str::from_utf8(l)
                    .ok()
                    .and_then(|s| s.parse::<u64>().ok())
                {
                    Some(v) => nums.push(v),
                    None => {
                        return Ok(Err(format!(
                            "tar member at offset {pos}: bad pax sparse map"
                        )))
                    }
                }
            }
            if nums.len() != count * 2 {
                return Ok(Err(format!(
                    "tar member at offset {pos}: truncated pax sparse map"
                )));
            }
            let map_len = (consumed as u64).div_ceil(BLOCK) * BLOCK;
            data = d.slice(data_at + map_len, size.saturating_sub(map_len));
            sparse_map = nums.chunks(2).map(|c| (c[0], c[1])).collect();
        }
        if let Some(real) = real_size {
            if real > limit {
                return Ok(Err(format!(
                    "sparse member {name} expands to {real} bytes, more than the {limit}-byte limit"
                )));
            }
            data = tri!(
                expand(&data, &sparse_map, real).map_err(|m| format!("tar member {name}: {m}"))
            );
        }
        let mut it = Item::new(name, what)
            .field("mode", format!("{mode:04o}"))
            .field("uid", tri!(uid))
            .field("gid", tri!(gid))
            .field(
                "uname",
                ext.get("uname")
                    .cloned()
                    .unwrap_or_else(|| cstr(&h[265..297])),
            )
            .field(
                "gname",
                ext.get("gname")
                    .cloned()
                    .unwrap_or_else(|| cstr(&h[297..329])),
            )
            .field("mtime", mtime);
        if matches!(typeflag, b'1' | b'2') {
            it = it.field("link target", link);
        }
        if matches!(typeflag, b'3' | b'4') {
            let maj = tri!(field(&h, 329..337, "devmajor", pos));
            let min = tri!(field(&h, 337..345, "devminor", pos));
            it = it.field("rdev", format!("{maj}:{min}"));
        }
        if what == "file" {
            it = it.data(data, None);
        }
        out.push(it);
        pos = next;
    }
    Ok(Ok(out))
}

/// The file a sparse member stands for: the stored pieces at their offsets, zeros between.
fn expand(stored: &Data, map: &[(u64, u64)], real: u64) -> Result<Data, String> {
    let mut parts = Vec::new();
    let mut cur = 0u64; // offset in the expanded file
    let mut src = 0u64; // offset in the stored data
    for &(off, n) in map {
        if off < cur {
            return Err("sparse map is not in ascending order".into());
        }
        let end = off
            .checked_add(n)
            .filter(|&e| e <= real)
            .ok_or("sparse map extends past the file size")?;
        if src.checked_add(n).is_none_or(|e| e > stored.len()) {
            return Err("sparse map claims more data than stored".into());
        }
        parts.push(Data::Zero { len: off - cur });
        parts.push(stored.slice(src, n));
        src += n;
        cur = end;
    }
    parts.push(Data::Zero { len: real - cur });
    Ok(Data::concat(parts))
}
