//! GPT partitioned disks, read with `cvmkit-gpt`: header fields, partition entries (GUIDs,
//! LBAs, attributes, names), then each partition's contents.
//!
//! `cvmkit_gpt::GptDisk` reads a disk held in memory. A disk is not loaded for it: the parser
//! gets a zero-filled buffer of the disk's length (allocated, never touched, so it takes no
//! memory) into which only the protective MBR, both headers and both entry arrays are read.
//! Partition contents are compared from the original data, in chunks.

use std::io;

use cvmkit_gpt::{GptDisk, GptHeader, Partition, SECTOR_SIZE};

use crate::data::Data;
use crate::engine::{join, Cx, Engine, Item};
use crate::sniff::Format;
use crate::DiffKind;

/// Largest disk given to the parser this way (its buffer is reserved, if not touched).
const MAX_DISK: u64 = 16 << 30;
/// Largest entry array read, as `cvmkit_gpt::MAX_ENTRY_ARRAY_BYTES`.
const MAX_ARRAY: u64 = 1 << 20;

pub(crate) fn compare(e: &mut Engine<'_>, cx: &Cx<'_>) -> io::Result<bool> {
    if cx.a.len() > MAX_DISK || cx.b.len() > MAX_DISK {
        e.push(
            cx.path,
            DiffKind::Limit {
                reason: format!("disk larger than {MAX_DISK} bytes; compared as bytes"),
            },
        );
        return Ok(false);
    }
    let (va, vb) = (view(cx.a)?, view(cx.b)?);
    let (sa, sb) = (
        va.as_slice().unwrap_or_default(),
        vb.as_slice().unwrap_or_default(),
    );
    let (ga, gb) = (read(e, cx.path, sa, "A"), read(e, cx.path, sb, "B"));
    let (ga, gb) = match (ga, gb) {
        (Ok(a), Ok(b)) => (a, b),
        (a, b) => return Ok(e.parse_failed(cx.path, Format::Gpt, a.err(), b.err())),
    };
    header(e, &join(cx.path, "GPT header"), &ga.primary, &gb.primary);
    if let (Some(a), Some(b)) = (&ga.backup, &gb.backup) {
        header(e, &join(cx.path, "GPT backup header"), a, b);
    }
    let span = cx.span()?;
    let items = |g: &GptDisk<'_>, d: &Data| -> Vec<Item> {
        let mut v =
            vec![Item::new("(protective MBR)", "region").data(d.slice(0, SECTOR_SIZE), Some(0))];
        v.extend(g.partitions().map(|p| partition(&p, d)));
        v
    };
    let (ia, ib) = (items(&ga, cx.a), items(&gb, cx.b));
    e.items(cx.path, ia, ib, false, span, cx.depth)?;
    Ok(true)
}

/// Reads the table, accepting a damaged backup (which is then reported).
fn read<'a>(
    e: &mut Engine<'_>,
    path: &[String],
    disk: &'a [u8],
    side: &str,
) -> Result<GptDisk<'a>, String> {
    match GptDisk::read(disk) {
        Ok(g) => Ok(g),
        Err(full) => match GptDisk::read_primary(disk) {
            Ok(g) => {
                e.push(
                    path,
                    DiffKind::Note {
                        message: format!(
                            "{side}: backup GPT unusable ({full}); compared the primary table"
                        ),
                    },
                );
                Ok(g)
            }
            Err(err) => Err(err.to_string()),
        },
    }
}

fn partition(p: &Partition, d: &Data) -> Item {
    let en = &p.entry;
    let name = en.name();
    let label = if name.is_empty() {
        format!("part {}", p.index)
    } else {
        format!("part {} ({name})", p.index)
    };
    let (off, size) = (en.offset(), en.size());
    Item::new(format!("part {}", p.index), "partition")
        .label(label)
        .field("partition type GUID", format!("{:X}", en.partition_type_guid))
        .field("unique partition GUID", format!("{:X}", en.unique_partition_guid))
        .field("StartingLBA", en.starting_lba)
        .field("EndingLBA", en.ending_lba)
        .field("Attributes", format!("{:#018x}", en.attributes))
        .field("PartitionName", name)
        .data(d.slice(off, size), Some(off))
}

fn header(e: &mut Engine<'_>, path: &[String], a: &GptHeader, b: &GptHeader) {
    let f = |h: &GptHeader| -> Vec<(&'static str, String)> {
        vec![
            ("Revision", format!("{:#010x}", h.revision)),
            ("HeaderSize", h.header_size.to_string()),
            ("MyLBA", h.my_lba.to_string()),
            ("AlternateLBA", h.alternate_lba.to_string()),
            ("FirstUsableLBA", h.first_usable_lba.to_string()),
            ("LastUsableLBA", h.last_usable_lba.to_string()),
            ("DiskGUID", format!("{:X}", h.disk_guid)),
            ("PartitionEntryLBA", h.partition_entry_lba.to_string()),
            (
                "NumberOfPartitionEntries",
                h.number_of_partition_entries.to_string(),
            ),
            (
                "SizeOfPartitionEntry",
                h.size_of_partition_entry.to_string(),
            ),
            (
                "PartitionEntryArrayCRC32",
                format!("{:#010x}", h.partition_entry_array_crc32),
            ),
            ("HeaderCRC32", format!("{:#010x}", h.header_crc32)),
        ]
    };
    for ((name, x), (_, y)) in f(a).into_iter().zip(f(b)) {
        if x != y {
            e.field(path, name, x, y);
        }
    }
}

/// A zero-filled buffer of `d`'s length holding only the GPT structures (see the module
/// documentation), or the bytes themselves when already in memory.
fn view(d: &Data) -> io::Result<Data> {
    if d.as_slice().is_some() {
        return Ok(d.clone());
    }
    let mut v = vec![0u8; d.len() as usize];
    let copy = |v: &mut Vec<u8>, off: u64, len: u64| -> io::Result<()> {
        let end = off.saturating_add(len).min(v.len() as u64);
        if off < end {
            d.read_at(off, &mut v[off as usize..end as usize])?;
        }
        Ok(())
    };
    copy(&mut v, 0, 2 * SECTOR_SIZE)?;
    let sectors = d.len() / SECTOR_SIZE;
    let mut lbas = vec![1u64];
    if let Ok(h) = GptHeader::parse(&v[512..1024.min(v.len())], 512) {
        lbas.push(h.alternate_lba);
        copy(
            &mut v,
            h.alternate_lba.saturating_mul(SECTOR_SIZE),
            SECTOR_SIZE,
        )?;
    }
    if sectors > 0 {
        lbas.push(sectors - 1);
        copy(&mut v, (sectors - 1) * SECTOR_SIZE, SECTOR_SIZE)?;
    }
    for lba in lbas {
        let at = lba.saturating_mul(SECTOR_SIZE) as usize;
        let Some(sector) = v.get(at..at + SECTOR_SIZE as usize) else {
            continue;
        };
        if let Ok(h) = GptHeader::parse(sector, at as u64) {
            let bytes = h.entry_array_bytes().unwrap_or(u64::MAX).min(MAX_ARRAY);
            copy(
                &mut v,
                h.partition_entry_lba.saturating_mul(SECTOR_SIZE),
                bytes,
            )?;
        }
    }
    Ok(Data::from_vec(v))
}
