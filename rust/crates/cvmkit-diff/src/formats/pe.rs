//! PE/COFF images and UKIs: header fields one by one, data directories, then each section's
//! header fields and contents (a UKI's `.linux` is a PE again, its `.initrd` compressed cpio).

use std::io;

use cvmkit_pe::PeFile;

use crate::data::Data;
use crate::engine::{Cx, Engine, Item};
use crate::sniff::Format;
use crate::DiffKind;

/// Images up to this size are read whole; larger ones only their headers (see [`headers_only`]).
const LOAD_WHOLE: u64 = 16 << 20;

const DIRECTORIES: [&str; 16] = [
    "Export",
    "Import",
    "Resource",
    "Exception",
    "Security",
    "BaseReloc",
    "Debug",
    "Architecture",
    "GlobalPtr",
    "TLS",
    "LoadConfig",
    "BoundImport",
    "IAT",
    "DelayImport",
    "CLRRuntimeHeader",
    "Reserved",
];

pub(crate) fn compare(e: &mut Engine<'_>, cx: &Cx<'_>) -> io::Result<bool> {
    let (ba, bb) = match (view(cx.a)?, view(cx.b)?) {
        (Some(a), Some(b)) => (a, b),
        _ => {
            e.push(
                cx.path,
                DiffKind::Limit {
                    reason: "PE image larger than 4 GiB; compared as bytes".into(),
                },
            );
            return Ok(false);
        }
    };
    let (sa, sb) = (
        ba.as_slice().unwrap_or_default(),
        bb.as_slice().unwrap_or_default(),
    );
    let (pa, pb) = match (PeFile::parse(sa), PeFile::parse(sb)) {
        (Ok(a), Ok(b)) => (a, b),
        (a, b) => {
            let msg = |r: Result<PeFile<'_>, cvmkit_pe::Error>| r.err().map(|e| e.to_string());
            return Ok(e.parse_failed(cx.path, Format::Pe, msg(a), msg(b)));
        }
    };
    let (fa, fb) = (header_fields(&pa), header_fields(&pb));
    for (name, va) in &fa {
        let vb = fb.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone());
        let vb = vb.unwrap_or_else(|| "(none)".into());
        if *va != vb {
            e.field(cx.path, name, va.clone(), vb);
        }
    }
    for (name, vb) in &fb {
        if !fa.iter().any(|(n, _)| n == name) {
            e.field(cx.path, name, "(none)".into(), vb.clone());
        }
    }
    let span = cx.span()?;
    let (ia, ib) = (sections(&pa, cx.a), sections(&pb, cx.b));
    e.items(cx.path, ia, ib, true, span, cx.depth)?;
    Ok(true)
}

/// The image's bytes for parsing: the data itself when in memory or small; otherwise a
/// zeroed buffer of the full length holding only the headers, so that the parser's bounds
/// checks see the real length while only the header pages are ever touched (sections are
/// compared from the original data, in chunks). `None` above 4 GiB.
fn view(d: &Data) -> io::Result<Option<Data>> {
    if d.as_slice().is_some() {
        return Ok(Some(d.clone()));
    }
    if d.len() <= LOAD_WHOLE {
        return d.load(LOAD_WHOLE).map(Some);
    }
    if d.len() > u64::from(u32::MAX) {
        return Ok(None);
    }
    headers_only(d).map(Some)
}

fn headers_only(d: &Data) -> io::Result<Data> {
    let head = d.head(4096)?;
    let le32 = |at: usize| {
        head.get(at..at + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
    };
    // SizeOfHeaders is at offset 60 of both optional header formats, which follows the
    // 4-byte signature and the 20-byte COFF header at e_lfanew.
    let size_of_headers = le32(0x3c)
        .and_then(|lfanew| le32(lfanew.checked_add(24 + 60)?))
        .unwrap_or(0);
    let want = size_of_headers.clamp(4096, 1 << 20) as u64;
    let mut v = vec![0u8; d.len() as usize];
    let n = want.min(d.len()) as usize;
    d.read_at(0, &mut v[..n])?;
    Ok(Data::from_vec(v))
}

fn hex32(v: u32) -> String {
    format!("{v:#010x}")
}

fn header_fields(pe: &PeFile<'_>) -> Vec<(String, String)> {
    let f = pe.file_header();
    let o = pe.optional_header();
    let mut v: Vec<(String, String)> = vec![
        ("e_lfanew".into(), hex32(pe.dos_header().e_lfanew)),
        ("Machine".into(), format!("{:#06x}", f.machine)),
        ("NumberOfSections".into(), f.number_of_sections.to_string()),
        (
            "TimeDateStamp".into(),
            super::time(f.time_date_stamp.into()),
        ),
        (
            "PointerToSymbolTable".into(),
            hex32(f.pointer_to_symbol_table),
        ),
        ("NumberOfSymbols".into(), f.number_of_symbols.to_string()),
        (
            "SizeOfOptionalHeader".into(),
            f.size_of_optional_header.to_string(),
        ),
        (
            "Characteristics".into(),
            format!("{:#06x}", f.characteristics),
        ),
        ("Magic".into(), format!("{:#06x}", o.magic)),
        (
            "MajorLinkerVersion".into(),
            o.major_linker_version.to_string(),
        ),
        (
            "MinorLinkerVersion".into(),
            o.minor_linker_version.to_string(),
        ),
        ("SizeOfCode".into(), hex32(o.size_of_code)),
        (
            "SizeOfInitializedData".into(),
            hex32(o.size_of_initialized_data),
        ),
        (
            "SizeOfUninitializedData".into(),
            hex32(o.size_of_uninitialized_data),
        ),
        (
            "AddressOfEntryPoint".into(),
            hex32(o.address_of_entry_point),
        ),
        ("BaseOfCode".into(), hex32(o.base_of_code)),
        ("ImageBase".into(), format!("{:#x}", o.image_base)),
        ("SectionAlignment".into(), hex32(o.section_alignment)),
        ("FileAlignment".into(), hex32(o.file_alignment)),
        (
            "MajorOperatingSystemVersion".into(),
            o.major_operating_system_version.to_string(),
        ),
        (
            "MinorOperatingSystemVersion".into(),
            o.minor_operating_system_version.to_string(),
        ),
        (
            "MajorImageVersion".into(),
            o.major_image_version.to_string(),
        ),
        (
            "MinorImageVersion".into(),
            o.minor_image_version.to_string(),
        ),
        (
            "MajorSubsystemVersion".into(),
            o.major_subsystem_version.to_string(),
        ),
        (
            "MinorSubsystemVersion".into(),
            o.minor_subsystem_version.to_string(),
        ),
        ("Win32VersionValue".into(), hex32(o.win32_version_value)),
        ("SizeOfImage".into(), hex32(o.size_of_image)),
        ("SizeOfHeaders".into(), hex32(o.size_of_headers)),
        ("CheckSum".into(), hex32(o.check_sum)),
        ("Subsystem".into(), o.subsystem.to_string()),
        (
            "DllCharacteristics".into(),
            format!("{:#06x}", o.dll_characteristics),
        ),
        (
            "SizeOfStackReserve".into(),
            format!("{:#x}", o.size_of_stack_reserve),
        ),
        (
            "SizeOfStackCommit".into(),
            format!("{:#x}", o.size_of_stack_commit),
        ),
        (
            "SizeOfHeapReserve".into(),
            format!("{:#x}", o.size_of_heap_reserve),
        ),
        (
            "SizeOfHeapCommit".into(),
            format!("{:#x}", o.size_of_heap_commit),
        ),
        ("LoaderFlags".into(), hex32(o.loader_flags)),
        (
            "NumberOfRvaAndSizes".into(),
            o.number_of_rva_and_sizes.to_string(),
        ),
    ];
    if let Some(b) = o.base_of_data {
        v.push(("BaseOfData".into(), hex32(b)));
    }
    for (i, d) in pe.data_directories().iter().enumerate() {
        let name = DIRECTORIES
            .get(i)
            .map_or_else(|| i.to_string(), |n| n.to_string());
        v.push((
            format!("DataDirectory[{name}].VirtualAddress"),
            hex32(d.virtual_address),
        ));
        v.push((format!("DataDirectory[{name}].Size"), hex32(d.size)));
    }
    v
}

/// Sections, plus the bytes no header describes: the MS-DOS stub and whatever follows the
/// last section (certificate table, symbol table, overlay).
fn sections(pe: &PeFile<'_>, d: &Data) -> Vec<Item> {
    let mut out = Vec::new();
    let lfanew = u64::from(pe.dos_header().e_lfanew);
    if lfanew > 0x40 {
        out.push(
            Item::new("(MS-DOS stub)", "region").data(d.slice(0x40, lfanew - 0x40), Some(0x40)),
        );
    }
    let mut end = u64::from(pe.optional_header().size_of_headers);
    for s in pe.sections() {
        let h = &s.header;
        let raw = s.raw_range();
        if h.size_of_raw_data != 0 {
            end = end.max(raw.end);
        }
        let len = u64::from(h.size_of_raw_data.min(h.virtual_size));
        let mut it = Item::new(s.name().into_owned(), "section")
            .field("VirtualSize", hex32(h.virtual_size))
            .field("VirtualAddress", hex32(h.virtual_address))
            .field("SizeOfRawData", hex32(h.size_of_raw_data))
            .field("PointerToRawData", hex32(h.pointer_to_raw_data))
            .field("PointerToRelocations", hex32(h.pointer_to_relocations))
            .field("PointerToLinenumbers", hex32(h.pointer_to_linenumbers))
            .field("NumberOfRelocations", h.number_of_relocations)
            .field("NumberOfLinenumbers", h.number_of_linenumbers)
            .field("Characteristics", hex32(h.characteristics));
        if h.size_of_raw_data != 0 {
            it = it.data(d.slice(raw.start, len), Some(raw.start));
        } else {
            it = it.data(Data::Zero { len: 0 }, None);
        }
        out.push(it);
    }
    if end < d.len() {
        out.push(
            Item::new("(data after the last section)", "region")
                .data(d.slice(end, d.len() - end), Some(end)),
        );
    }
    out
}
