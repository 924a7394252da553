//! FAT12/16/32 file systems, read with `cvmkit-fat` without mounting: boot sector fields,
//! then every file and directory with its attributes, timestamps and contents.
//!
//! `cvmkit_fat::FatVolume` reads a volume held in memory. A large volume is not loaded for it:
//! the parser gets a zero-filled buffer of the volume's length (allocated, not touched) into
//! which only the reserved sectors, the FATs, the root directory and the directory clusters are
//! read. File contents are compared from the original data: the cluster runs the reader hands
//! out are turned back into offsets of the volume.

use std::collections::HashSet;
use std::io;

use cvmkit_fat::{DirEntry, DosDateTime, FatType, FatVolume};

use super::offset_in;
use crate::data::Data;
use crate::engine::{Cx, Engine, Item};
use crate::sniff::Format;

/// Largest volume given to the parser as a sparse buffer.
const MAX_VOLUME: u64 = 16 << 30;
/// Volumes up to this size are simply read whole.
const LOAD_WHOLE: u64 = 16 << 20;
/// Most directories followed while loading metadata.
const MAX_DIRS: usize = 1 << 16;

pub(crate) fn compare(e: &mut Engine<'_>, cx: &Cx<'_>) -> io::Result<bool> {
    if cx.a.len() > MAX_VOLUME || cx.b.len() > MAX_VOLUME {
        e.push(
            cx.path,
            crate::DiffKind::Limit {
                reason: format!("FAT volume larger than {MAX_VOLUME} bytes; compared as bytes"),
            },
        );
        return Ok(false);
    }
    let (va, vb) = (view(cx.a)?, view(cx.b)?);
    let (sa, sb) = (
        va.as_slice().unwrap_or_default(),
        vb.as_slice().unwrap_or_default(),
    );
    let (fa, fb) = match (FatVolume::parse(sa), FatVolume::parse(sb)) {
        (Ok(a), Ok(b)) => (a, b),
        (a, b) => {
            let m =
                |r: Result<FatVolume<'_>, cvmkit_fat::ReadError>| r.err().map(|e| e.to_string());
            return Ok(e.parse_failed(cx.path, Format::Fat, m(a), m(b)));
        }
    };
    let (ia, ib) = match (items(&fa, sa, cx.a), items(&fb, sb, cx.b)) {
        (Ok(a), Ok(b)) => (a, b),
        (a, b) => return Ok(e.parse_failed(cx.path, Format::Fat, a.err(), b.err())),
    };
    let (ha, hb) = (volume_fields(&fa), volume_fields(&fb));
    for ((name, x), (_, y)) in ha.into_iter().zip(hb) {
        if x != y {
            e.field(cx.path, name, x, y);
        }
    }
    e.items(cx.path, ia, ib, true, None, cx.depth)?;
    Ok(true)
}

fn volume_fields(v: &FatVolume<'_>) -> Vec<(&'static str, String)> {
    let b = v.bpb();
    let fat = match v.fat_type() {
        FatType::Fat12 => "FAT12",
        FatType::Fat16 => "FAT16",
        FatType::Fat32 => "FAT32",
    };
    vec![
        ("FAT type", fat.into()),
        ("BS_OEMName", b.bs_oem_name.escape_ascii().to_string()),
        ("BPB_BytsPerSec", b.byts_per_sec.to_string()),
        ("BPB_SecPerClus", b.sec_per_clus.to_string()),
        ("BPB_RsvdSecCnt", b.rsvd_sec_cnt.to_string()),
        ("BPB_NumFATs", b.num_fats.to_string()),
        ("BPB_RootEntCnt", b.root_ent_cnt.to_string()),
        (
            "BPB_TotSec",
            (if b.tot_sec16 != 0 {
                u32::from(b.tot_sec16)
            } else {
                b.tot_sec32
            })
            .to_string(),
        ),
        ("BPB_Media", format!("{:#04x}", b.media)),
        (
            "BPB_FATSz",
            (if b.fat_sz16 != 0 {
                u32::from(b.fat_sz16)
            } else {
                b.fat_sz32
            })
            .to_string(),
        ),
        ("BPB_HiddSec", b.hidd_sec.to_string()),
        ("BPB_RootClus", b.root_clus.to_string()),
        ("BS_VolID", format!("{:#010x}", b.bs_vol_id)),
        ("volume label", v.volume_label().unwrap_or_default()),
    ]
}

fn dos(t: &DosDateTime, tenths: bool) -> String {
    let (y, mo, d, h, mi, s) = t.ymd_hms();
    let mut out = format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}");
    if tenths && t.tenths != 0 {
        out.push_str(&format!(" +{}0 ms", t.tenths));
    }
    out
}

fn attrs(a: u8) -> String {
    let flags = [
        (0x01, 'R'),
        (0x02, 'H'),
        (0x04, 'S'),
        (0x08, 'V'),
        (0x10, 'D'),
        (0x20, 'A'),
    ];
    let s: String = flags
        .iter()
        .filter(|(bit, _)| a & bit != 0)
        .map(|(_, c)| *c)
        .collect();
    format!("{a:#04x} ({})", if s.is_empty() { "-".into() } else { s })
}

fn items(v: &FatVolume<'_>, buf: &[u8], d: &Data) -> Result<Vec<Item>, String> {
    let walk = v.walk().map_err(|e| e.to_string())?;
    let mut out = Vec::with_capacity(walk.len());
    for w in walk {
        let en: &DirEntry = &w.entry;
        let mut it = Item::new(
            w.path.clone(),
            if en.is_dir() { "directory" } else { "file" },
        )
        .field("FAT attributes", attrs(en.attr))
        .field("FAT short name", en.short_name_string())
        .field("FAT modified time", dos(&en.modified, false))
        .field("FAT created time", dos(&en.created, true))
        .field(
            "FAT accessed date",
            dos(
                &DosDateTime {
                    date: en.accessed_date,
                    time: 0,
                    tenths: 0,
                },
                false,
            )
            .get(..10)
            .unwrap_or_default()
            .to_string(),
        );
        if !en.is_dir() {
            let mut parts = Vec::new();
            let mut error = None;
            for run in v.file_data(en) {
                match run {
                    Ok(run) => parts.push(d.slice(offset_in(buf, run) as u64, run.len() as u64)),
                    Err(err) => {
                        error = Some(err.to_string());
                        break;
                    }
                }
            }
            if let Some(err) = error {
                it = it.field("cluster chain", err);
            }
            it = it.data(Data::concat(parts), None);
        }
        out.push(it);
    }
    Ok(out)
}

/// The volume for the parser: `d` itself when in memory or small, else a sparse copy holding
/// only the metadata (see the module documentation).
fn view(d: &Data) -> io::Result<Data> {
    if d.as_slice().is_some() {
        return Ok(d.clone());
    }
    if d.len() <= LOAD_WHOLE {
        return d.load(LOAD_WHOLE);
    }
    let mut buf = vec![0u8; d.len() as usize];
    let copy = |buf: &mut Vec<u8>, off: u64, len: u64| -> io::Result<()> {
        let end = off.saturating_add(len).min(buf.len() as u64);
        if off < end {
            d.read_at(off, &mut buf[off as usize..end as usize])?;
        }
        Ok(())
    };
    copy(&mut buf, 0, 512)?;
    // Reserved sectors, FATs and (FAT12/16) the root directory: everything before cluster 2.
    let (meta_end, root) = match FatVolume::parse(&buf) {
        Ok(v) => (
            v.cluster_offset(2),
            (v.fat_type() == FatType::Fat32).then_some(v.bpb().root_clus),
        ),
        Err(_) => return Ok(Data::from_vec(buf)),
    };
    copy(&mut buf, 0, meta_end)?;
    // Directory clusters, level by level: the parser borrows the buffer, so each round lists
    // what to read, then reads it.
    let mut loaded: HashSet<u32> = HashSet::new();
    let mut pending: Vec<Option<u32>> = vec![root];
    let mut dirs = 0usize;
    while !pending.is_empty() && dirs < MAX_DIRS {
        let mut clusters = Vec::new();
        {
            let Ok(v) = FatVolume::parse(&buf) else { break };
            for start in pending.iter().flatten() {
                for c in v.chain(*start) {
                    match c {
                        Ok(c) if loaded.insert(c) => clusters.push((c, v.cluster_offset(c))),
                        _ => break,
                    }
                }
            }
        }
        let cs = FatVolume::parse(&buf)
            .map(|v| v.cluster_size())
            .unwrap_or(0);
        for (_, off) in &clusters {
            copy(&mut buf, *off, cs)?;
        }
        let Ok(v) = FatVolume::parse(&buf) else { break };
        let mut next = Vec::new();
        for start in pending.drain(..) {
            let iter = match start {
                None => v.root(),
                Some(c) => {
                    let fake = DirEntry {
                        name: String::new(),
                        short_name: [b' '; 11],
                        has_long_name: false,
                        attr: 0x10,
                        nt_res: 0,
                        created: DosDateTime::default(),
                        modified: DosDateTime::default(),
                        accessed_date: 0,
                        first_cluster: c,
                        file_size: 0,
                        offset: 0,
                    };
                    match v.read_dir(&fake) {
                        Ok(it) => it,
                        Err(_) => continue,
                    }
                }
            };
            for en in iter {
                let Ok(en) = en else { break };
                if en.is_dir() && en.first_cluster >= 2 && !loaded.contains(&en.first_cluster) {
                    next.push(Some(en.first_cluster));
                }
            }
            dirs += 1;
        }
        pending = next;
    }
    Ok(Data::from_vec(buf))
}
