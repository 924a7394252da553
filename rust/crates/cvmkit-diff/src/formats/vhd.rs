//! Fixed VHD: the footer's fields, then the raw disk it follows.

use std::io;

use crate::engine::{Cx, Engine};

pub(crate) fn compare(e: &mut Engine<'_>, cx: &Cx<'_>) -> io::Result<bool> {
    let (fa, fb) = (cx.a.tail(512)?, cx.b.tail(512)?);
    let (va, vb) = (fields(&fa), fields(&fb));
    for ((name, x), (_, y)) in va.iter().zip(&vb) {
        if x != y {
            e.field(cx.path, name, x.clone(), y.clone());
        }
    }
    let fixed = |f: &[u8]| be32(f, 60) == 2;
    if !(fixed(&fa) && fixed(&fb)) {
        // Dynamic and differencing disks keep blocks behind a table: compare their bytes.
        return Ok(false);
    }
    let (da, db) = (
        cx.a.slice(0, cx.a.len() - 512),
        cx.b.slice(0, cx.b.len() - 512),
    );
    e.blob(cx.path, &da, &db, cx.depth + 1)?;
    Ok(true)
}

fn be32(f: &[u8], at: usize) -> u32 {
    f.get(at..at + 4)
        .map_or(0, |b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

fn be64(f: &[u8], at: usize) -> u64 {
    (u64::from(be32(f, at)) << 32) | u64::from(be32(f, at + 4))
}

fn text(f: &[u8], at: usize, len: usize) -> String {
    f.get(at..at + len)
        .map_or_else(String::new, |b| b.escape_ascii().to_string())
}

/// The footer fields, named as in the VHD specification.
fn fields(f: &[u8]) -> Vec<(&'static str, String)> {
    let disk_type = match be32(f, 60) {
        2 => "fixed".to_string(),
        3 => "dynamic".to_string(),
        4 => "differencing".to_string(),
        n => n.to_string(),
    };
    let unique = f
        .get(68..84)
        .map(|b| b.iter().map(|x| format!("{x:02x}")).collect::<String>())
        .unwrap_or_default();
    vec![
        ("VHD Cookie", text(f, 0, 8)),
        ("VHD Features", format!("{:#010x}", be32(f, 8))),
        ("VHD File Format Version", format!("{:#010x}", be32(f, 12))),
        ("VHD Data Offset", format!("{:#x}", be64(f, 16))),
        // Seconds since 2000-01-01 00:00:00 UTC.
        (
            "VHD Time Stamp",
            super::time(i64::from(be32(f, 24)) + 946_684_800),
        ),
        ("VHD Creator Application", text(f, 28, 4)),
        ("VHD Creator Version", format!("{:#010x}", be32(f, 32))),
        ("VHD Creator Host OS", text(f, 36, 4)),
        ("VHD Original Size", be64(f, 40).to_string()),
        ("VHD Current Size", be64(f, 48).to_string()),
        (
            "VHD Disk Geometry",
            f.get(56..60).map_or_else(String::new, |g| {
                format!(
                    "C/H/S {}/{}/{}",
                    u16::from_be_bytes([g[0], g[1]]),
                    g[2],
                    g[3]
                )
            }),
        ),
        ("VHD Disk Type", disk_type),
        ("VHD Checksum", format!("{:#010x}", be32(f, 64))),
        ("VHD Unique Id", unique),
        (
            "VHD Saved State",
            f.get(84).copied().unwrap_or(0).to_string(),
        ),
    ]
}
