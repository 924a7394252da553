//! gzip, xz and zstd: header fields, then the decompressed data one layer down.

use std::io::{self, Read};

use crate::data::Data;
use crate::engine::{join, Cx, Engine};
use crate::sniff::Format;
use crate::DiffKind;

enum Failure {
    TooLarge,
    Corrupt(String),
}

pub(crate) fn compare(e: &mut Engine<'_>, cx: &Cx<'_>, fa: Format, fb: Format) -> io::Result<bool> {
    if fa == Format::Gzip && fb == Format::Gzip {
        gzip_header(e, cx)?;
    }
    let limit = e.opts.max_decompressed;
    let layer = if fa == fb {
        fa.name().to_string()
    } else {
        format!("{}/{}", fa.name(), fb.name())
    };
    let child = join(cx.path, layer);
    // Compressed cpio (an initramfs): compare entries as they are decompressed.
    if cx.depth + 1 < e.max_depth() && starts_with_cpio(fa, cx.a) && starts_with_cpio(fb, cx.b) {
        let before = e.diff_count();
        let streamed = super::cpio::compare_streams(
            e,
            &child,
            decoder(fa, cx.a)?,
            decoder(fb, cx.b)?,
            limit,
            cx.depth + 1,
        )?;
        if streamed.is_some() {
            if e.diff_count() == before {
                identical_note(e, cx);
            }
            return Ok(true);
        }
    }
    // One side on another thread: decompression is most of the time spent on an initramfs.
    let (da, db) = std::thread::scope(|s| {
        let other = s.spawn(|| decompress(fb, cx.b, limit));
        let da = decompress(fa, cx.a, limit);
        let db = other
            .join()
            .unwrap_or_else(|_| Ok(Err(Failure::Corrupt("decompressor panicked".into()))));
        (da, db)
    });
    let (da, db) = (da?, db?);
    let (da, db) = match (da, db) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(Failure::TooLarge), _) | (_, Err(Failure::TooLarge)) => {
            e.push(
                cx.path,
                DiffKind::Limit {
                    reason: format!(
                        "{} data decompresses to more than {limit} bytes; compared the compressed bytes",
                        fa.name()
                    ),
                },
            );
            return Ok(false);
        }
        (a, b) => {
            let msg = |r: &Result<Data, Failure>, f: Format| match r {
                Err(Failure::Corrupt(m)) => Some(format!("{} stream: {m}", f.name())),
                _ => None,
            };
            return Ok(e.parse_failed(cx.path, fa, msg(&a, fa), msg(&b, fb)));
        }
    };
    if !e.blob(&child, &da, &db, cx.depth + 1)? {
        identical_note(e, cx);
    }
    Ok(true)
}

fn identical_note(e: &mut Engine<'_>, cx: &Cx<'_>) {
    e.push(
        cx.path,
        DiffKind::Note {
            message: format!(
                "compressed bytes differ (first at byte {}) but decompress to identical data",
                cx.first
            ),
        },
    );
}

/// A streaming decompressor over `d`.
fn decoder(f: Format, d: &Data) -> io::Result<Box<dyn Read + Send>> {
    let r = d.reader();
    Ok(match f {
        Format::Gzip => Box::new(flate2::read::MultiGzDecoder::new(r)),
        Format::Xz => Box::new(xz2::read::XzDecoder::new_multi_decoder(r)),
        _ => Box::new(zstd::stream::read::Decoder::new(r)?),
    })
}

/// Whether the decompressed data starts with a newc magic.
fn starts_with_cpio(f: Format, d: &Data) -> bool {
    let Ok(dec) = decoder(f, d) else {
        return false;
    };
    let mut head = Vec::new();
    let _ = dec.take(6).read_to_end(&mut head);
    head.starts_with(b"07070")
}

fn decompress(f: Format, d: &Data, limit: u64) -> io::Result<Result<Data, Failure>> {
    let mut out = Vec::new();
    // Reserve the size the stream announces (gzip ISIZE, zstd frame content size), within the
    // limit, so that the output is not copied while it grows.
    if let Some(n) = announced_size(f, d)? {
        let _ = out.try_reserve_exact(n.min(limit) as usize);
    }
    let res = match decoder(f, d) {
        Ok(dec) => dec.take(limit + 1).read_to_end(&mut out),
        Err(err) => Err(err),
    };
    match res {
        Ok(_) if out.len() as u64 > limit => Ok(Err(Failure::TooLarge)),
        Ok(_) => Ok(Ok(Data::from_vec(out))),
        // Errors of the decoders (including a truncated stream) are findings about the data.
        Err(err) => Ok(Err(Failure::Corrupt(err.to_string()))),
    }
}

fn announced_size(f: Format, d: &Data) -> io::Result<Option<u64>> {
    match f {
        // ISIZE: the size modulo 2^32 of the last member; right for the usual single member.
        Format::Gzip => {
            let t = d.tail(4)?;
            Ok(t.try_into()
                .ok()
                .map(|b: [u8; 4]| u64::from(u32::from_le_bytes(b))))
        }
        Format::Zstd => {
            let h = d.head(18)?;
            Ok(zstd::zstd_safe::get_frame_content_size(&h).ok().flatten())
        }
        _ => Ok(None),
    }
}

/// Reports the gzip header fields that differ: MTIME, XFL, OS, FNAME, FLG.
fn gzip_header(e: &mut Engine<'_>, cx: &Cx<'_>) -> io::Result<()> {
    let (ha, hb) = (cx.a.head(1024)?, cx.b.head(1024)?);
    let (Some(fa), Some(fb)) = (fields(&ha), fields(&hb)) else {
        return Ok(());
    };
    for ((name, va), (_, vb)) in fa.into_iter().zip(fb) {
        if va != vb {
            e.field(cx.path, name, va, vb);
        }
    }
    Ok(())
}

fn fields(h: &[u8]) -> Option<Vec<(&'static str, String)>> {
    let flg = *h.get(3)?;
    let mtime = u32::from_le_bytes(h.get(4..8)?.try_into().ok()?);
    let mut out = vec![
        ("gzip FLG", format!("{flg:#04x}")),
        ("gzip MTIME", super::time(mtime.into())),
        ("gzip XFL", h.get(8)?.to_string()),
        ("gzip OS", h.get(9)?.to_string()),
    ];
    let mut pos = 10usize;
    if flg & 4 != 0 {
        let xlen = u16::from_le_bytes(h.get(10..12)?.try_into().ok()?) as usize;
        pos = pos.checked_add(2 + xlen)?;
    }
    let name = if flg & 8 != 0 {
        let rest = h.get(pos..)?;
        let end = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
        String::from_utf8_lossy(&rest[..end]).into_owned()
    } else {
        "(none)".into()
    };
    out.push(("gzip FNAME", name));
    Some(out)
}
