//! UKIs built from the real systemd-stubs — Debian bookworm's 252 (`STUB`) and trixie's 257
//! (`STUB_TRIXIE`, the generation of the flake's nixos-25.05 stub) — and Debian's signed kernel,
//! checked with independent tools: objdump (section table), pefile (headers, checksum, and the
//! stub's own layout, which the expected values are computed from), signify, pesign and
//! osslsigncode (Authenticode), objcopy (a UKI assembled the classic way).
//!
//! Every check runs once per stub, as `stub_252::…` and `stub_257::…`, so that a failure names
//! the stub; the 257 stub comes from scripts/fetch-inputs.sh and its tests fail without it.

use cvmkit_testutil as util;

use std::path::{Path, PathBuf};
use std::process::Command;

use cvmkit_pe::pe::*;
use cvmkit_pe::PeFile;
use cvmkit_uki::*;
use util::*;

const OSREL: &[u8] = b"ID=debian\nVERSION_ID=12\nPRETTY_NAME=\"cvmkit test\"\n";
const CMDLINE: &str = "console=ttyS0 root=/dev/vda2 ro";
const UNAME: &str = "6.1.0-56-amd64";
const TIMESTAMP: u32 = 1_700_000_000;

/// The two real stubs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StubKind {
    V252,
    V257,
}

/// What the layout rules need to know about the stub, read by pefile (not by the crate under
/// test).
#[derive(Debug, Clone)]
struct StubFacts {
    major: u32,
    path: PathBuf,
    e_lfanew: u64,
    sections: u64,
    /// Where its section table ends.
    section_table_end: u64,
    size_of_headers: u64,
    image_base: u64,
    section_alignment: u64,
    file_alignment: u64,
    size_of_initialized_data: u64,
    characteristics: u64,
    /// A COFF symbol table (systemd 252) that the UKI drops.
    has_symbols: bool,
    /// Where the stub's section data ends in the file (without its symbol table), and the first
    /// free RVA (SectionAlignment-aligned).
    file_end: u64,
    virtual_end: u64,
    /// `.sbat`: RVA, SizeOfRawData, the RVA and name of the section after it in memory, and
    /// its entries (every line but the `sbat,` header).
    sbat_rva: u64,
    sbat_raw: u64,
    sbat_next_rva: u64,
    sbat_next: String,
    sbat_entries: String,
}

const FACTS_SCRIPT: &str = r#"
import sys, pefile
pe = pefile.PE(sys.argv[1])
fh, oh = pe.FILE_HEADER, pe.OPTIONAL_HEADER
e = pe.DOS_HEADER.e_lfanew
print('e_lfanew', e)
print('sections', fh.NumberOfSections)
print('section_table_end', e + 24 + fh.SizeOfOptionalHeader + 40 * fh.NumberOfSections)
for k in ['SizeOfHeaders', 'ImageBase', 'SectionAlignment', 'FileAlignment', 'SizeOfInitializedData']:
    print(k, getattr(oh, k))
print('Characteristics', fh.Characteristics)
print('symbols', fh.PointerToSymbolTable)
fa, sa = oh.FileAlignment, oh.SectionAlignment
up = lambda x, a: (x + a - 1) // a * a
print('file_end', max(s.PointerToRawData + up(s.SizeOfRawData, fa) for s in pe.sections))
# ukify: after the last section's VirtualSize (SizeOfRawData when it is 0), aligned
print('virtual_end', up(max(s.VirtualAddress + (s.Misc_VirtualSize or s.SizeOfRawData) for s in pe.sections), sa))
sbat = [s for s in pe.sections if s.Name.rstrip(b'\0') == b'.sbat'][0]
nxt = min((s for s in pe.sections if s.VirtualAddress > sbat.VirtualAddress), key=lambda s: s.VirtualAddress)
print('sbat_rva', sbat.VirtualAddress)
print('sbat_raw', sbat.SizeOfRawData)
print('sbat_next_rva', nxt.VirtualAddress)
print('sbat_next', nxt.Name.rstrip(b'\0').decode())
text = sbat.get_data()[:sbat.Misc_VirtualSize].rstrip(b'\0').decode()
for line in text.splitlines()[1:]:
    print('sbat_entry', line)
"#;

impl StubKind {
    fn facts(self) -> StubFacts {
        let (path, major) = match self {
            StubKind::V252 => (stub(), 252),
            StubKind::V257 => (stub_trixie(), 257),
        };
        let out = run(Command::new(python())
            .arg("-c")
            .arg(FACTS_SCRIPT)
            .arg(&path));
        let field = |k: &str| -> u64 {
            out.lines()
                .find_map(|l| l.strip_prefix(k).and_then(|v| v.strip_prefix(' ')))
                .unwrap_or_else(|| panic!("{k} missing:\n{out}"))
                .parse()
                .unwrap()
        };
        let text = |k: &str| -> String {
            out.lines()
                .find_map(|l| l.strip_prefix(k).and_then(|v| v.strip_prefix(' ')))
                .unwrap_or_else(|| panic!("{k} missing:\n{out}"))
                .to_string()
        };
        let sbat_entries: String = out
            .lines()
            .filter_map(|l| l.strip_prefix("sbat_entry "))
            .map(|l| format!("{l}\n"))
            .collect();
        let facts = StubFacts {
            major,
            e_lfanew: field("e_lfanew"),
            sections: field("sections"),
            section_table_end: field("section_table_end"),
            size_of_headers: field("SizeOfHeaders"),
            image_base: field("ImageBase"),
            section_alignment: field("SectionAlignment"),
            file_alignment: field("FileAlignment"),
            size_of_initialized_data: field("SizeOfInitializedData"),
            characteristics: field("Characteristics"),
            has_symbols: field("symbols") != 0,
            file_end: field("file_end"),
            virtual_end: field("virtual_end"),
            sbat_rva: field("sbat_rva"),
            sbat_raw: field("sbat_raw"),
            sbat_next_rva: field("sbat_next_rva"),
            sbat_next: text("sbat_next"),
            sbat_entries,
            path,
        };
        let magic = std::fs::read(&facts.path).unwrap();
        let want = format!("#### LoaderInfo: systemd-stub {major}.");
        assert!(
            magic.windows(want.len()).any(|w| w == want.as_bytes()),
            "{} is not systemd-stub {major} (no {want:?}): rerun scripts/fetch-inputs.sh (scripts/setup.sh)",
            facts.path.display()
        );
        match self {
            // The values this file pinned for Debian's 252.39 stub before it read them.
            StubKind::V252 => {
                assert_eq!((facts.file_end, facts.virtual_end), (0x11400, 0x19200));
                assert_eq!(facts.section_table_end, 0x2c8);
                assert!(facts.has_symbols);
            }
            // 257 is linked with lld: no symbol table, 4 KiB section alignment, a non-zero base.
            StubKind::V257 => {
                assert!(!facts.has_symbols);
                assert_eq!(facts.section_alignment, 0x1000);
                assert_ne!(facts.image_base, 0);
            }
        }
        facts
    }
}

struct Inputs {
    stub: Vec<u8>,
    facts: StubFacts,
    kernel: Vec<u8>,
    initrd1: Vec<u8>,
    initrd2: Vec<u8>,
}

fn inputs(kind: StubKind) -> Inputs {
    // Two small initrds of lengths 1001 and 514, so that joining them needs padding.
    let initrd1: Vec<u8> = (0..1001u32).map(|i| (i * 7 % 251) as u8).collect();
    let initrd2: Vec<u8> = (0..514u32).map(|i| (i * 13 % 253) as u8 | 1).collect();
    let facts = kind.facts();
    Inputs {
        stub: std::fs::read(&facts.path).unwrap(),
        facts,
        kernel: std::fs::read(kernel()).unwrap(),
        initrd1,
        initrd2,
    }
}

fn parts(i: &Inputs) -> UkiParts<'_> {
    UkiParts {
        linux: &i.kernel,
        initrds: vec![&i.initrd1, &i.initrd2],
        cmdline: Some(CMDLINE),
        os_release: Some(OSREL),
        uname: Some(UNAME),
        ..UkiParts::default()
    }
}

fn align(x: u64, a: u64) -> u64 {
    x.div_ceil(a) * a
}

/// (name, content length, VirtualSize) of the sections the fixture adds, in order.
fn expected_new(i: &Inputs) -> Vec<(&'static str, u64, u64)> {
    let initrd = align(i.initrd1.len() as u64, 4) + align(i.initrd2.len() as u64, 4);
    let k = i.kernel.len() as u64;
    vec![
        (".osrel", OSREL.len() as u64, OSREL.len() as u64),
        (".cmdline", CMDLINE.len() as u64, CMDLINE.len() as u64),
        (".uname", UNAME.len() as u64, UNAME.len() as u64),
        (".initrd", initrd, initrd),
        // The default VirtualSize of .linux is the kernel's file length (LinuxVirtualSize::FileSize).
        (".linux", k, k),
    ]
}

/// (name, VirtualAddress, PointerToRawData, SizeOfRawData, VirtualSize) as the layout rules
/// give them, computed here independently of the crate.
fn expected_layout(i: &Inputs) -> Vec<(&'static str, u64, u64, u64, u64)> {
    let f = &i.facts;
    let (mut va, mut off) = (f.virtual_end, f.file_end);
    let mut v = Vec::new();
    for (name, len, vs) in expected_new(i) {
        let raw = align(len, f.file_alignment);
        v.push((name, va, off, raw, vs));
        off += raw;
        va = align(va + vs, f.section_alignment);
    }
    v
}

fn write(dir: &Path, name: &str, data: &[u8]) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, data).unwrap();
    p
}

/// One `#[test]` per stub for each check: `stub_252::<check>` and `stub_257::<check>`.
macro_rules! per_stub {
    ($($module:ident :: $check:ident => $name:ident),* $(,)?) => {
        mod stub_252 {
            $( #[test] fn $name() { super::$module::$check(super::StubKind::V252) } )*
        }
        mod stub_257 {
            $( #[test] fn $name() { super::$module::$check(super::StubKind::V257) } )*
        }
    };
}

per_stub! {
    layout::objdump_lists_expected_sections => objdump_lists_expected_sections,
    layout::pefile_reads_headers_and_checksum => pefile_reads_headers_and_checksum,
    layout::deterministic => deterministic,
    contents::sections_read_back => sections_read_back,
    contents::single_initrd_is_not_padded_and_empty_parts_are_skipped => single_initrd_is_not_padded_and_empty_parts_are_skipped,
    contents::extra_sections_go_before_linux => extra_sections_go_before_linux,
    contents::linux_virtual_size_option => linux_virtual_size_option,
    authenticode::uki_stub_and_kernel_match_peers => uki_stub_and_kernel_match_peers,
    refusals::bad_stubs => bad_stubs,
    refusals::linux_must_be_pe => linux_must_be_pe,
    refusals::section_names => section_names,
    refusals::header_space => header_space,
    sbat::merged_in_place => sbat_merged_in_place,
    sbat::new_section_when_stub_has_none => sbat_new_section_when_stub_has_none,
    sbat::errors => sbat_errors,
    objcopy::same_layout_and_bytes_as_objcopy => same_layout_and_bytes_as_objcopy,
    streamed::same_bytes_as_in_memory => streamed_same_bytes_as_in_memory,
    streamed::prepared_same_bytes => streamed_prepared_same_bytes,
}

/// The section table and header fields, read by objdump and pefile.
mod layout {
    use super::*;

    fn objdump_rows(path: &Path) -> Vec<Vec<String>> {
        run(Command::new("objdump").arg("-h").arg(path))
            .lines()
            .map(|l| l.split_whitespace().map(str::to_string).collect::<Vec<_>>())
            .filter(|f| f.len() >= 7 && f[0].parse::<usize>().is_ok())
            .collect()
    }

    pub fn objdump_lists_expected_sections(kind: StubKind) {
        let i = inputs(kind);
        let n = i.facts.sections as usize;
        let uki = build_uki(&i.stub, &parts(&i), TIMESTAMP).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "uki.efi", &uki);
        let rows = objdump_rows(&path);
        let stub_rows = objdump_rows(&i.facts.path);
        assert_eq!(rows.len(), n + 5);
        assert_eq!(&rows[..n], &stub_rows[..], "stub sections unchanged");
        let hexn = |s: &str| u64::from_str_radix(s, 16).unwrap();
        for (row, (name, va, off, raw, vs)) in rows[n..].iter().zip(expected_layout(&i)) {
            assert_eq!(row[1], name);
            assert_eq!(hexn(&row[2]), vs.min(raw), "{name} size");
            // objdump prints VMAs, ImageBase included.
            assert_eq!(hexn(&row[3]), i.facts.image_base + va, "{name} VMA");
            assert_eq!(hexn(&row[5]), off, "{name} file offset");
        }
        let flags: Vec<&str> = run(Command::new("objdump").arg("-h").arg(&path))
            .lines()
            .filter(|l| l.trim_start().starts_with("CONTENTS"))
            .map(|l| if l.contains("CODE") { "code" } else { "data" })
            .collect::<Vec<_>>()
            .split_off(n);
        assert_eq!(flags, ["data", "data", "data", "data", "code"]);
    }

    const PEFILE_SCRIPT: &str = r#"
import sys, pefile
# ukify treats warnings of a fast load as errors; a full load also checks relocations.
print('warnings', len(pefile.PE(sys.argv[1], fast_load=True).get_warnings()))
pe = pefile.PE(sys.argv[1])
print('fullwarnings', pe.get_warnings())
fh, oh = pe.FILE_HEADER, pe.OPTIONAL_HEADER
for k in ['TimeDateStamp', 'NumberOfSections', 'PointerToSymbolTable', 'NumberOfSymbols', 'Characteristics']:
    print(k, getattr(fh, k))
for k in ['CheckSum', 'SizeOfImage', 'SizeOfInitializedData', 'SizeOfHeaders', 'Subsystem']:
    print(k, getattr(oh, k))
print('generated', pe.generate_checksum())
for s in pe.sections:
    print('section', s.Name.rstrip(b'\0').decode(), s.Misc_VirtualSize, s.VirtualAddress, s.SizeOfRawData,
          s.PointerToRawData, s.Characteristics)
"#;

    pub fn pefile_reads_headers_and_checksum(kind: StubKind) {
        let i = inputs(kind);
        let f = &i.facts;
        let n = f.sections as usize;
        let uki = build_uki(&i.stub, &parts(&i), TIMESTAMP).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "uki.efi", &uki);
        let out = run(Command::new(python())
            .arg("-c")
            .arg(PEFILE_SCRIPT)
            .arg(&path));
        let field = |k: &str| -> u64 {
            out.lines()
                .find_map(|l| l.strip_prefix(k).and_then(|v| v.strip_prefix(' ')))
                .unwrap_or_else(|| panic!("{k} missing:\n{out}"))
                .parse()
                .unwrap()
        };
        assert_eq!(field("warnings"), 0, "{out}");
        // The stub's own warnings (252: "Overlapping offsets in relocation data"), no more.
        let full = |o: &str| {
            o.lines()
                .find(|l| l.starts_with("fullwarnings"))
                .unwrap()
                .to_string()
        };
        let stub_out = run(Command::new(python())
            .arg("-c")
            .arg(PEFILE_SCRIPT)
            .arg(&f.path));
        assert_eq!(full(&out), full(&stub_out));
        assert_eq!(
            field("generated"),
            field("CheckSum"),
            "pefile's checksum equals the header's"
        );
        assert_ne!(field("CheckSum"), 0);
        assert_eq!(field("TimeDateStamp"), u64::from(TIMESTAMP));
        assert_eq!(field("NumberOfSections"), f.sections + 5);
        assert_eq!(field("PointerToSymbolTable"), 0, "no symbol table");
        assert_eq!(field("NumberOfSymbols"), 0);
        // LOCAL_SYMS_STRIPPED added when a symbol table was dropped (257's stub has it already).
        assert_eq!(field("Characteristics"), f.characteristics | 0x8);
        let layout = expected_layout(&i);
        let (_, va, _, _, vs) = layout.last().unwrap();
        assert_eq!(field("SizeOfImage"), align(va + vs, f.section_alignment));
        assert_eq!(field("SizeOfHeaders"), f.size_of_headers);
        assert_eq!(
            field("SizeOfInitializedData"),
            f.size_of_initialized_data + layout.iter().map(|l| l.4).sum::<u64>()
        );
        let sections: Vec<Vec<&str>> = out
            .lines()
            .filter_map(|l| l.strip_prefix("section "))
            .map(|l| l.split(' ').collect())
            .collect();
        assert_eq!(sections.len(), n + 5);
        for (s, (name, va, off, raw, vs)) in sections[n..].iter().zip(&layout) {
            let n = |k: usize| s[k].parse::<u64>().unwrap();
            assert_eq!(
                (s[0], n(1), n(2), n(3), n(4)),
                (*name, *vs, *va, *raw, *off)
            );
            let ch = if *name == ".linux" {
                0x4000_0020
            } else {
                0x4000_0040
            };
            assert_eq!(n(5), ch, "{name} characteristics");
        }
        assert_eq!(uki.len() as u64, layout.last().map(|l| l.2 + l.3).unwrap());
    }

    /// Same inputs, same bytes; another timestamp changes only TimeDateStamp and CheckSum.
    pub fn deterministic(kind: StubKind) {
        let i = inputs(kind);
        let a = build_uki(&i.stub, &parts(&i), TIMESTAMP).unwrap();
        let b = build_uki(&i.stub, &parts(&i), TIMESTAMP).unwrap();
        assert!(a == b);
        let c = build_uki(&i.stub, &parts(&i), 0).unwrap();
        let diff: Vec<usize> = (0..a.len()).filter(|&k| a[k] != c[k]).collect();
        let pe = PeFile::parse(&a).unwrap();
        let ts = pe.layout().file_header + 4;
        let ck = pe.layout().checksum;
        assert!(
            diff.iter()
                .all(|&k| (ts..ts + 4).contains(&k) || (ck..ck + 4).contains(&k)),
            "{diff:x?}"
        );
    }
}

/// Section contents read back equal the inputs; the stub's bytes are preserved.
mod contents {
    use super::*;

    pub fn sections_read_back(kind: StubKind) {
        let i = inputs(kind);
        let uki = build_uki(&i.stub, &parts(&i), TIMESTAMP).unwrap();
        let pe = PeFile::parse(&uki).unwrap();
        let stub = PeFile::parse(&i.stub).unwrap();
        let joined = join_initrds(&[&i.initrd1, &i.initrd2]);
        assert_eq!(joined.len(), 1004 + 516);
        assert_eq!(&joined[..1001], &i.initrd1[..]);
        assert_eq!(&joined[1001..1004], &[0, 0, 0]);
        assert_eq!(&joined[1004..1518], &i.initrd2[..]);
        let expect: [(&str, &[u8]); 5] = [
            (".osrel", OSREL),
            (".cmdline", CMDLINE.as_bytes()),
            (".uname", UNAME.as_bytes()),
            (".initrd", &joined),
            (".linux", &i.kernel),
        ];
        for (name, content) in expect {
            let s = pe.section_by_name(name).unwrap();
            let raw = pe.section_data(s).unwrap();
            assert_eq!(&raw[..content.len()], content, "{name}");
            assert!(
                raw[content.len()..].iter().all(|&b| b == 0),
                "{name} padding"
            );
            assert_eq!(pe.section_virtual_data(s).unwrap(), content, "{name}");
        }
        // The stub's own sections keep their headers and data.
        for s in stub.sections() {
            let t = &pe.sections()[s.index];
            assert_eq!(t.header, s.header);
            assert_eq!(pe.section_data(t).unwrap(), stub.section_data(s).unwrap());
        }
        assert_eq!(&uki[..0x40], &i.stub[..0x40], "MS-DOS header");
        let e = i.facts.e_lfanew as usize;
        assert_eq!(&uki[0x40..e], &i.stub[0x40..e], "MS-DOS stub");
        let dd = stub.layout().data_directories;
        assert_eq!(
            &uki[dd..stub.layout().section_table_end],
            &i.stub[dd..stub.layout().section_table_end]
        );
        assert_eq!(pe.data_directories(), stub.data_directories());
    }

    fn added_names(pe: &PeFile<'_>, i: &Inputs) -> Vec<String> {
        pe.sections()[i.facts.sections as usize..]
            .iter()
            .map(|s| s.name().into_owned())
            .collect()
    }

    pub fn single_initrd_is_not_padded_and_empty_parts_are_skipped(kind: StubKind) {
        let i = inputs(kind);
        let p = UkiParts {
            linux: &i.kernel,
            initrds: vec![&i.initrd1],
            cmdline: Some(""),
            ..UkiParts::default()
        };
        let uki = build_uki(&i.stub, &p, 0).unwrap();
        let pe = PeFile::parse(&uki).unwrap();
        assert_eq!(added_names(&pe, &i), [".initrd", ".linux"]);
        let s = pe.section_by_name(".initrd").unwrap();
        assert_eq!(pe.section_virtual_data(s).unwrap(), &i.initrd1[..]);
        assert_eq!(s.header.virtual_size, 1001);
    }

    pub fn extra_sections_go_before_linux(kind: StubKind) {
        let i = inputs(kind);
        let mut p = parts(&i);
        p.initrds.clear();
        p.extra = vec![
            (".pcrpkey".into(), b"-----BEGIN PUBLIC KEY-----\n"),
            (".ucode".into(), b"\x01\x02"),
        ];
        let uki = build_uki(&i.stub, &p, 0).unwrap();
        let pe = PeFile::parse(&uki).unwrap();
        assert_eq!(
            added_names(&pe, &i),
            [".osrel", ".cmdline", ".uname", ".pcrpkey", ".ucode", ".linux"]
        );
        let s = pe.section_by_name(".ucode").unwrap();
        assert_eq!(pe.section_virtual_data(s).unwrap(), b"\x01\x02");
    }

    pub fn linux_virtual_size_option(kind: StubKind) {
        let i = inputs(kind);
        // SizeOfImage on request: Debian 6.1's SizeOfImage (0x822000) exceeds the file length.
        let opts = UkiOptions::default().with_linux_virtual_size(LinuxVirtualSize::SizeOfImage);
        let uki = build_uki_with(&i.stub, &parts(&i), 0, &opts).unwrap();
        let linux = PeFile::parse(&uki)
            .unwrap()
            .section_by_name(".linux")
            .unwrap()
            .header;
        assert_eq!(linux.virtual_size, 0x822000);
        // FileSize, the default, equals build_uki.
        let opts = UkiOptions::default().with_linux_virtual_size(LinuxVirtualSize::FileSize);
        let uki = build_uki_with(&i.stub, &parts(&i), 0, &opts).unwrap();
        assert_eq!(uki, build_uki(&i.stub, &parts(&i), 0).unwrap());
        let pe = PeFile::parse(&uki).unwrap();
        let s = pe.section_by_name(".linux").unwrap();
        assert_eq!(s.header.virtual_size as usize, i.kernel.len());
        assert_eq!(pe.section_virtual_data(s).unwrap(), &i.kernel[..]);
        assert_eq!(
            pe.optional_header().size_of_image as u64,
            align(
                u64::from(s.header.virtual_address) + i.kernel.len() as u64,
                i.facts.section_alignment
            )
        );
    }
}

/// Authenticode of the UKI (and of the stub and kernel it came from) against three peers.
mod authenticode {
    use super::*;

    pub fn uki_stub_and_kernel_match_peers(kind: StubKind) {
        let i = inputs(kind);
        let uki = build_uki(&i.stub, &parts(&i), TIMESTAMP).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "uki.efi", &uki);
        let files = [path.clone(), i.facts.path.clone(), kernel()];
        let refs: Vec<&Path> = files.iter().map(|p| p.as_path()).collect();
        for (file, (s256, s384)) in files.iter().zip(signify(&refs)) {
            let data = std::fs::read(file).unwrap();
            let pe = PeFile::parse(&data).unwrap();
            let d = pe.authenticode_sha256_sha384();
            assert_eq!(hex(&d.sha256), s256, "signify sha256 {}", file.display());
            assert_eq!(hex(&d.sha384), s384, "signify sha384 {}", file.display());
            assert_eq!(
                hex(&d.sha256),
                pesign_sha256(file, false),
                "pesign {}",
                file.display()
            );
        }
        // The UKI is FileAlignment-aligned, so signing tools add no padding and agree too.
        let pe = PeFile::parse(&uki).unwrap();
        assert_eq!(pe.authenticode_signing_padding(), 0);
        let d = pe.authenticode_sha256_sha384();
        assert_eq!(
            osslsigncode_digests(&path, "sha256", dir.path()),
            [hex(&d.sha256)]
        );
        assert_eq!(
            osslsigncode_digests(&path, "sha384", dir.path()),
            [hex(&d.sha384)]
        );
        assert_eq!(pesign_sha256(&path, true), hex(&d.sha256));
    }
}

/// Each refusal produces its error.
mod refusals {
    use super::*;

    fn err(stub: &[u8], p: &UkiParts<'_>) -> String {
        build_uki(stub, p, 0).unwrap_err().to_string()
    }

    pub fn bad_stubs(kind: StubKind) {
        let i = inputs(kind);
        let f = &i.facts;
        let p = parts(&i);
        let dir = tempfile::tempdir().unwrap();
        let e = f.e_lfanew as usize;

        assert_eq!(err(b"\x7fELF", &p), "the stub is not a PE image");
        let pe32 = std::fs::read(build_pe32(dir.path())).unwrap();
        assert_eq!(
            err(&pe32, &p),
            "the stub is a PE32 image, not PE32+: use the x86-64 systemd-stub (linuxx64.efi.stub)"
        );
        let mut s = i.stub.clone();
        s[e + 4..e + 6].copy_from_slice(&IMAGE_FILE_MACHINE_ARM64.to_le_bytes());
        assert_eq!(
            err(&s, &p),
            "the stub is for machine 0xaa64, not x86-64 (0x8664): use linuxx64.efi.stub"
        );
        let mut s = i.stub.clone();
        s[e + 24 + 68..e + 24 + 70].copy_from_slice(&11u16.to_le_bytes());
        assert_eq!(
            err(&s, &p),
            "the stub's subsystem is 11, not 10 (EFI application): use systemd-stub's linuxx64.efi.stub"
        );
        // A stub signed by osslsigncode.
        osslsigncode_digests(&f.path, "sha256", dir.path());
        let signed = std::fs::read(dir.path().join("signed-sha256.efi")).unwrap();
        let e = err(&signed, &p);
        assert!(
            e.starts_with("the stub is already signed (certificate table at 0x"),
            "{e}"
        );
        assert!(
            e.ends_with("use the unsigned stub and sign the finished UKI"),
            "{e}"
        );
        // Something else in the header area after the section table.
        let mut s = i.stub.clone();
        let at = f.section_table_end as usize + 50;
        s[at] = 1;
        assert_eq!(
            err(&s, &p),
            format!(
                "the stub's header area after its section table is not empty (non-zero byte at {at:#x}); refusing to overwrite it"
            )
        );
    }

    pub fn linux_must_be_pe(kind: StubKind) {
        let i = inputs(kind);
        let mut p = parts(&i);
        p.linux = b"\x1f\x8b\x08\x00 gzip, not an EFI stub kernel";
        let e = build_uki(&i.stub, &p, 0).unwrap_err();
        assert_eq!(
            e.to_string(),
            "the .linux payload is not a PE image: the kernel must be built with an EFI stub (CONFIG_EFI_STUB)"
        );
        let source = std::error::Error::source(&e).unwrap().to_string();
        assert_eq!(source, "not a PE file: missing MZ signature");
    }

    pub fn section_names(kind: StubKind) {
        let i = inputs(kind);
        let with_extra = |name: &str| {
            let mut p = parts(&i);
            p.extra = vec![(name.to_string(), b"x".as_slice())];
            err(&i.stub, &p)
        };
        assert_eq!(
            with_extra(".toolongname"),
            "bad section name \".toolongname\": longer than 8 bytes"
        );
        assert_eq!(with_extra(""), "bad section name \"\": empty");
        assert_eq!(
            with_extra(".a\nb"),
            "bad section name \".a\\nb\": not printable ASCII"
        );
        assert_eq!(
            with_extra(".é"),
            "bad section name \".é\": not printable ASCII"
        );
        assert_eq!(with_extra(".cmdline"), "section .cmdline is given twice");
        assert_eq!(with_extra(".linux"), "section .linux is given twice");
        assert_eq!(
            with_extra(".text"),
            "section .text already exists in the stub; pick another name"
        );
        assert_eq!(
            with_extra(".sbat"),
            "section .sbat already exists in the stub; pick another name; pass SBAT entries as `sbat` to merge them into it"
        );
        let mut p = parts(&i);
        p.extra = vec![(".a".into(), b"1"), (".a".into(), b"2")];
        assert_eq!(err(&i.stub, &p), "section .a is given twice");
        p.extra = vec![(".empty".into(), b"")];
        assert_eq!(err(&i.stub, &p), "section .empty is empty");
    }

    pub fn header_space(kind: StubKind) {
        let i = inputs(kind);
        let f = &i.facts;
        // 252: 0x400 - 0x2c8 = 312 bytes, room for 7 headers; the fixture adds 5.
        let room = ((f.size_of_headers - f.section_table_end) / 40) as usize;
        assert!(room >= 5, "room for {room}");
        let names: Vec<String> = (1..=room - 5 + 1).map(|k| format!(".e{k}")).collect();
        let mut p = parts(&i);
        p.extra = names[..room - 5]
            .iter()
            .map(|n| (n.clone(), b"1".as_slice()))
            .collect();
        assert!(build_uki(&i.stub, &p, 0).is_ok());
        p.extra.push((names[room - 5].clone(), b"1"));
        assert_eq!(
            err(&i.stub, &p),
            format!(
                "not enough header space for {} new section headers: the stub's section table ends at {:#x} and \
                 SizeOfHeaders is {:#x}, which leaves room for {room}; drop 1 section(s)",
                room + 1,
                f.section_table_end,
                f.size_of_headers
            )
        );
    }
}

/// SBAT merging into the stub's existing .sbat section.
mod sbat {
    use super::*;

    pub fn merged_in_place(kind: StubKind) {
        let i = inputs(kind);
        let f = &i.facts;
        let mut p = parts(&i);
        p.sbat = Some("sbat,1,SBAT Version,sbat,1,https://github.com/rhboot/shim/blob/main/SBAT.md\nuki,1,UKI,uki,1,x\n");
        let uki = build_uki(&i.stub, &p, 0).unwrap();
        let pe = PeFile::parse(&uki).unwrap();
        assert_eq!(pe.sections().len() as u64, f.sections + 5, "no new section");
        let s = pe.section_by_name(".sbat").unwrap();
        assert!(
            f.sbat_entries.contains(&format!("systemd,{}", f.major)),
            "{}",
            f.sbat_entries
        );
        let expected = format!("{SBAT_HEADER}\n{}uki,1,UKI,uki,1,x\n\0", f.sbat_entries);
        assert_eq!(pe.section_virtual_data(s).unwrap(), expected.as_bytes());
        assert_eq!(s.header.virtual_size as usize, expected.len());
        assert_eq!(u64::from(s.header.size_of_raw_data), f.sbat_raw);
        assert!(pe.section_data(s).unwrap()[expected.len()..]
            .iter()
            .all(|&b| b == 0));
        let sdmagic = pe.section_by_name(".sdmagic").unwrap();
        assert!(pe
            .section_virtual_data(sdmagic)
            .unwrap()
            .starts_with(format!("#### LoaderInfo: systemd-stub {}.", f.major).as_bytes()));
        // pefile reads the same .sbat and agrees on the checksum.
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "uki.efi", &uki);
        let out = run(Command::new(python())
            .arg("-c")
            .arg(
                "import sys, pefile\npe = pefile.PE(sys.argv[1])\n\
             s = [s for s in pe.sections if s.Name.startswith(b'.sbat')][0]\n\
             sys.stdout.buffer.write(s.get_data()[:s.Misc_VirtualSize])\n\
             assert pe.generate_checksum() == pe.OPTIONAL_HEADER.CheckSum",
            )
            .arg(&path));
        assert_eq!(out.as_bytes(), expected.as_bytes());
    }

    /// A stub without .sbat (renamed here) gets a new one, before .linux.
    pub fn new_section_when_stub_has_none(kind: StubKind) {
        let i = inputs(kind);
        let mut stub = i.stub.clone();
        let at = PeFile::parse(&i.stub)
            .unwrap()
            .section_by_name(".sbat")
            .unwrap()
            .header_offset;
        stub[at..at + 8].copy_from_slice(b".sbax\0\0\0");
        let mut p = parts(&i);
        p.sbat = Some("sbat,1\nuki,1,UKI,uki,1,x\n");
        let uki = build_uki(&stub, &p, 0).unwrap();
        let pe = PeFile::parse(&uki).unwrap();
        let names: Vec<_> = pe.sections()[i.facts.sections as usize..]
            .iter()
            .map(|s| s.name().into_owned())
            .collect();
        assert_eq!(
            names,
            [".osrel", ".cmdline", ".uname", ".initrd", ".sbat", ".linux"]
        );
        let s = pe.section_by_name(".sbat").unwrap();
        let expected = format!("{SBAT_HEADER}\nuki,1,UKI,uki,1,x\n\0");
        assert_eq!(pe.section_virtual_data(s).unwrap(), expected.as_bytes());
    }

    pub fn errors(kind: StubKind) {
        let i = inputs(kind);
        let f = &i.facts;
        let mut p = parts(&i);
        p.sbat = Some("linux,1,Debian,linux,6.1,https://bugs.debian.org/linux\n");
        assert_eq!(
            build_uki(&i.stub, &p, 0).unwrap_err().to_string(),
            "SBAT data must begin with a \"sbat,\" header line, found \"linux,1,Debian,linux,6.1,https://bugs.debian.org/linux\""
        );
        // The merged data: the header line, the stub's entries, "x…x\n" and a NUL.
        let fixed = SBAT_HEADER.len() as u64 + 1 + f.sbat_entries.len() as u64 + 2;
        let with_xs = |len: u64| format!("sbat,1\n{}\n", "x".repeat((len - fixed) as usize));
        let memory_room = f.sbat_next_rva - f.sbat_rva;
        if memory_room < f.sbat_raw {
            // 252: the data fits the 0x200-byte file slot but not the 0x100 bytes before .sdmagic.
            let len = memory_room + 11;
            let line = with_xs(len);
            let mut p = parts(&i);
            p.sbat = Some(&line);
            assert_eq!(
                build_uki(&i.stub, &p, 0).unwrap_err().to_string(),
                format!(
                    "the merged SBAT data ({len:#x} bytes) does not fit the stub's .sbat section in memory: it starts at \
                     RVA {:#x} and {} starts at RVA {:#x}, leaving {memory_room:#x} bytes; shorten the SBAT entries",
                    f.sbat_rva, f.sbat_next, f.sbat_next_rva
                )
            );
        } else {
            // 257: a page of memory before .sdmagic, so the file slot is the limit; filling it
            // exactly still builds.
            let line = with_xs(f.sbat_raw);
            let mut p = parts(&i);
            p.sbat = Some(&line);
            let uki = build_uki(&i.stub, &p, 0).unwrap();
            let pe = PeFile::parse(&uki).unwrap();
            let s = pe.section_by_name(".sbat").unwrap();
            assert_eq!(u64::from(s.header.virtual_size), f.sbat_raw);
        }
        let len = f.sbat_raw.max(memory_room) + 115;
        let line = with_xs(len);
        p.sbat = Some(&line);
        assert_eq!(
            build_uki(&i.stub, &p, 0).unwrap_err().to_string(),
            format!(
                "not enough space in the stub's .sbat section for the merged SBAT data: it needs {len:#x} bytes, the \
                 section holds {:#x}; shorten the SBAT entries",
                f.sbat_raw
            )
        );
    }
}

/// Against a UKI assembled by objcopy at the same addresses (objcopy cannot set `.linux`'s
/// VirtualSize to SizeOfImage or its flags to CODE, so compare with `LinuxVirtualSize::FileSize`).
mod objcopy {
    use super::*;

    pub fn same_layout_and_bytes_as_objcopy(kind: StubKind) {
        let i = inputs(kind);
        let f = &i.facts;
        let opts = UkiOptions::default().with_linux_virtual_size(LinuxVirtualSize::FileSize);
        let ours = build_uki_with(&i.stub, &parts(&i), TIMESTAMP, &opts).unwrap();
        let pe = PeFile::parse(&ours).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = Command::new("objcopy");
        for s in &pe.sections()[f.sections as usize..] {
            let name = s.name();
            let file = write(dir.path(), &name[1..], pe.section_virtual_data(s).unwrap());
            cmd.arg("--add-section")
                .arg(format!("{name}={}", file.display()));
            // objcopy takes VMAs, ImageBase included.
            cmd.arg("--change-section-vma").arg(format!(
                "{name}={:#x}",
                f.image_base + u64::from(s.header.virtual_address)
            ));
        }
        let out = dir.path().join("objcopy.efi");
        run(cmd
            .env("SOURCE_DATE_EPOCH", TIMESTAMP.to_string())
            .arg(&f.path)
            .arg(&out));
        let theirs = std::fs::read(&out).unwrap();
        let other = PeFile::parse(&theirs).unwrap();

        // objcopy recomputes SizeOfHeaders (257's stub has 0x600, objcopy writes 0x400) and moves
        // every section's file data by the difference; in memory the layouts are identical.
        let shift = u64::from(pe.optional_header().size_of_headers)
            - u64::from(other.optional_header().size_of_headers);
        if kind == StubKind::V252 {
            assert_eq!(shift, 0, "252: the same file layout too");
        }
        assert_eq!(other.sections().len(), pe.sections().len());
        for (a, b) in pe.sections().iter().zip(other.sections()) {
            let (mut a, b) = (a.header, b.header);
            if a.name_bytes() == b".linux" {
                // ukify's flags; objcopy makes every added section initialized data.
                assert_eq!(a.characteristics, LINUX_SECTION_CHARACTERISTICS);
                a.characteristics = b.characteristics;
            }
            assert_eq!(
                u64::from(a.pointer_to_raw_data),
                u64::from(b.pointer_to_raw_data) + shift
            );
            a.pointer_to_raw_data = b.pointer_to_raw_data;
            assert_eq!(a, b);
        }
        // Every added section's bytes, padding included, are identical.
        for (a, b) in pe
            .sections()
            .iter()
            .zip(other.sections())
            .skip(f.sections as usize)
        {
            let (ra, rb) = (a.raw_range(), b.raw_range());
            assert_eq!(
                &ours[ra.start as usize..ra.end as usize],
                &theirs[rb.start as usize..rb.end as usize],
                "{}",
                a.name()
            );
        }
        let last = pe.sections().last().unwrap().raw_range();
        assert_eq!(ours.len() as u64, last.end);
        // objcopy keeps a COFF symbol table (moved after the new sections); we drop it as ukify
        // does. 257's stub has none.
        assert_eq!(
            other
                .coff_symbol_table()
                .is_some_and(|r| r.end == theirs.len()),
            f.has_symbols
        );
        assert_eq!(pe.coff_symbol_table(), None);
        // Both compute a valid checksum over their own bytes.
        assert_eq!(other.computed_checksum(), other.optional_header().check_sum);
        assert_eq!(pe.computed_checksum(), pe.optional_header().check_sum);
    }
}

/// `write_uki`: initrds copied from their files into the output, the checksum summed on the
/// way, gives the bytes `build_uki` gives in memory.
mod streamed {
    use super::*;
    use cvmkit_uki::{build_uki_with, write_uki, UkiOptions};

    fn streamed(stub: &[u8], p: &UkiParts<'_>, files: &[&Path], prefix: &[u8]) -> Vec<u8> {
        let mut out = std::io::Cursor::new(prefix.to_vec());
        out.set_position(prefix.len() as u64);
        let len = write_uki(stub, p, files, 7, &UkiOptions::default(), &mut out).unwrap();
        let out = out.into_inner();
        assert_eq!(&out[..prefix.len()], prefix);
        assert_eq!(out.len() as u64, prefix.len() as u64 + len);
        out[prefix.len()..].to_vec()
    }

    pub fn same_bytes_as_in_memory(kind: StubKind) {
        let i = inputs(kind);
        let dir = tempfile::tempdir().unwrap();
        let f1 = write(dir.path(), "i1", &i.initrd1);
        let f2 = write(dir.path(), "i2", &i.initrd2);
        let memory = |initrds: Vec<&[u8]>, sbat: Option<&'static str>| {
            let mut p = parts(&i);
            p.initrds = initrds;
            p.sbat = sbat;
            build_uki_with(&i.stub, &p, 7, &UkiOptions::default()).unwrap()
        };
        fn from<'a>(i: &'a Inputs, initrds: Vec<&'a [u8]>, sbat: Option<&'static str>) -> UkiParts<'a> {
            let mut p = parts(i);
            p.initrds = initrds;
            p.sbat = sbat;
            p
        }
        let sbat = Some("sbat,1\nuki,1,UKI,uki,1,x\n");
        // Both initrds from files (padded each), one from memory then one file, one file alone
        // (not padded), none; SBAT merged in place; written after other bytes (odd offset).
        let expect = memory(vec![&i.initrd1, &i.initrd2], None);
        assert_eq!(streamed(&i.stub, &from(&i, vec![], None), &[&f1, &f2], b""), expect);
        assert_eq!(streamed(&i.stub, &from(&i, vec![&i.initrd1], None), &[&f2], b"abc"), expect);
        assert_eq!(streamed(&i.stub, &from(&i, vec![], None), &[&f2], b""), memory(vec![&i.initrd2], None));
        assert_eq!(streamed(&i.stub, &from(&i, vec![], None), &[], b""), memory(vec![], None));
        assert_eq!(streamed(&i.stub, &from(&i, vec![], sbat), &[&f1, &f2], b"x"), memory(vec![&i.initrd1, &i.initrd2], sbat));
        let missing = dir.path().join("missing");
        let err = write_uki(&i.stub, &from(&i, vec![], None), &[&missing], 7, &UkiOptions::default(), &mut std::io::Cursor::new(Vec::new()))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with(&format!("cannot read initrd {}: ", missing.display())), "{err}");
    }

    /// `prepare_uki` + `PreparedUki::write` (the checksum summed first, written front to back)
    /// gives `write_uki`'s bytes; its skeleton is those bytes with zeros where the files go;
    /// an initrd file changed between the two is refused.
    pub fn prepared_same_bytes(kind: StubKind) {
        use cvmkit_uki::prepare_uki;
        let i = inputs(kind);
        let dir = tempfile::tempdir().unwrap();
        let f1 = write(dir.path(), "i1", &i.initrd1);
        let f2 = write(dir.path(), "i2", &i.initrd2);
        let mut p = parts(&i);
        p.initrds = vec![&i.initrd1];
        p.sbat = Some("sbat,1\nuki,1,UKI,uki,1,x\n");
        for files in [vec![f1.as_path(), f2.as_path()], vec![f2.as_path()], vec![]] {
            let expect = streamed(&i.stub, &p, &files, b"");
            let prepared = prepare_uki(&i.stub, &p, &files, 7, &UkiOptions::default()).unwrap();
            assert_eq!(prepared.len(), expect.len() as u64);
            let mut out = Vec::new();
            assert_eq!(prepared.write(&mut out).unwrap(), expect.len() as u64);
            assert_eq!(out, expect);
            let skeleton = prepared.skeleton().unwrap();
            assert_eq!(skeleton.len(), expect.len());
            assert!((0..expect.len()).all(|k| skeleton[k] == expect[k] || skeleton[k] == 0), "the skeleton holds only true bytes");
            // Whole: the headers and every section but `.initrd` (files) and `.linux` (its first
            // 64 KiB, the kernel's PE headers).
            let pe = PeFile::parse(&expect).unwrap();
            let headers = pe.optional_header().size_of_headers as usize;
            assert_eq!(skeleton[..headers], expect[..headers]);
            for section in pe.sections() {
                let at = section.header.pointer_to_raw_data as usize;
                let n = match section.name().as_ref() {
                    ".initrd" if !files.is_empty() => continue,
                    ".linux" => 64 << 10,
                    _ => section.header.size_of_raw_data as usize,
                };
                assert_eq!(skeleton[at..at + n], expect[at..at + n], "{}", section.name());
            }
        }
        let prepared = prepare_uki(&i.stub, &p, &[&f1], 7, &UkiOptions::default()).unwrap();
        let mut changed = i.initrd1.clone();
        changed[0] ^= 1;
        std::fs::write(&f1, &changed).unwrap();
        let err = prepared.write(&mut Vec::new()).unwrap_err().to_string();
        assert!(err.contains("changed between laying out the UKI and writing it"), "{err}");
    }
}

/// An initrd that would take the image past 4 GiB is refused before anything is read or
/// written, with the section to blame and what to do, not the 32-bit field that overflowed.
/// The file is sparse: 4 GiB of size, no data.
#[test]
fn image_past_4_gib_names_the_section() {
    let i = inputs(StubKind::V257);
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.cpio");
    std::fs::File::create(&big).unwrap().set_len(1 << 32).unwrap();
    let mut p = parts(&i);
    p.initrds = vec![];
    let err = cvmkit_uki::prepare_uki(&i.stub, &p, &[&big], 7, &UkiOptions::default()).err().expect("refused").to_string();
    assert!(err.starts_with("the UKI is too large: it would span "), "{err}");
    assert!(err.contains("its largest section, .initrd, is 4294967296 bytes: compress the initrd"), "{err}");
}
