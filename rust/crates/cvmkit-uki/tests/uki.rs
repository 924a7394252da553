//! UKIs built from the real systemd-stub 252 and Debian's signed kernel, checked with
//! independent tools: objdump (section table), pefile (headers, checksum), signify, pesign and
//! osslsigncode (Authenticode), objcopy (a UKI assembled the classic way).

use cvmkit_testutil as util;

use std::path::Path;
use std::process::Command;

use cvmkit_pe::pe::*;
use cvmkit_pe::PeFile;
use cvmkit_uki::*;
use util::*;

const OSREL: &[u8] = b"ID=debian\nVERSION_ID=12\nPRETTY_NAME=\"cvmkit test\"\n";
const CMDLINE: &str = "console=ttyS0 root=/dev/vda2 ro";
const UNAME: &str = "6.1.0-56-amd64";
const TIMESTAMP: u32 = 1_700_000_000;
/// Where the stub's data ends once its symbol table is dropped, and the first free RVA
/// (`.sdmagic` at 0x19100 + 0x34, aligned to 0x200).
const STUB_FILE_END: u64 = 0x11400;
const STUB_VIRTUAL_END: u64 = 0x19200;

struct Inputs {
    stub: Vec<u8>,
    kernel: Vec<u8>,
    initrd1: Vec<u8>,
    initrd2: Vec<u8>,
}

fn inputs() -> Inputs {
    // Two small initrds of lengths 1001 and 514, so that joining them needs padding.
    let initrd1: Vec<u8> = (0..1001u32).map(|i| (i * 7 % 251) as u8).collect();
    let initrd2: Vec<u8> = (0..514u32).map(|i| (i * 13 % 253) as u8 | 1).collect();
    Inputs {
        stub: std::fs::read(stub()).unwrap(),
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
    let (mut va, mut off) = (STUB_VIRTUAL_END, STUB_FILE_END);
    let mut v = Vec::new();
    for (name, len, vs) in expected_new(i) {
        let raw = align(len, 0x200);
        v.push((name, va, off, raw, vs));
        off += raw;
        va = align(va + vs, 0x200);
    }
    v
}

fn write(dir: &Path, name: &str, data: &[u8]) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, data).unwrap();
    p
}

/// The section table and header fields, read by objdump and pefile.
mod layout {
    use super::*;

    #[test]
    fn objdump_lists_expected_sections() {
        let i = inputs();
        let uki = build_uki(&i.stub, &parts(&i), TIMESTAMP).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "uki.efi", &uki);
        let rows: Vec<Vec<String>> = run(Command::new("objdump").arg("-h").arg(&path))
            .lines()
            .map(|l| l.split_whitespace().map(str::to_string).collect::<Vec<_>>())
            .filter(|f| f.len() >= 7 && f[0].parse::<usize>().is_ok())
            .collect();
        let stub_rows: Vec<Vec<String>> = run(Command::new("objdump").arg("-h").arg(stub()))
            .lines()
            .map(|l| l.split_whitespace().map(str::to_string).collect::<Vec<_>>())
            .filter(|f| f.len() >= 7 && f[0].parse::<usize>().is_ok())
            .collect();
        assert_eq!(rows.len(), 8 + 5);
        assert_eq!(&rows[..8], &stub_rows[..], "stub sections unchanged");
        let hexn = |s: &str| u64::from_str_radix(s, 16).unwrap();
        for (row, (name, va, off, raw, vs)) in rows[8..].iter().zip(expected_layout(&i)) {
            assert_eq!(row[1], name);
            assert_eq!(hexn(&row[2]), vs.min(raw), "{name} size");
            assert_eq!(hexn(&row[3]), va, "{name} VMA");
            assert_eq!(hexn(&row[5]), off, "{name} file offset");
        }
        let flags: Vec<&str> = run(Command::new("objdump").arg("-h").arg(&path))
            .lines()
            .filter(|l| l.trim_start().starts_with("CONTENTS"))
            .map(|l| if l.contains("CODE") { "code" } else { "data" })
            .collect::<Vec<_>>()
            .split_off(8);
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

    #[test]
    fn pefile_reads_headers_and_checksum() {
        let i = inputs();
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
        // The stub's own relocation warning ("Overlapping offsets in relocation data"), no more.
        let full = |o: &str| {
            o.lines()
                .find(|l| l.starts_with("fullwarnings"))
                .unwrap()
                .to_string()
        };
        let stub_out = run(Command::new(python())
            .arg("-c")
            .arg(PEFILE_SCRIPT)
            .arg(stub()));
        assert_eq!(full(&out), full(&stub_out));
        assert_eq!(
            field("generated"),
            field("CheckSum"),
            "pefile's checksum equals the header's"
        );
        assert_ne!(field("CheckSum"), 0);
        assert_eq!(field("TimeDateStamp"), u64::from(TIMESTAMP));
        assert_eq!(field("NumberOfSections"), 13);
        assert_eq!(field("PointerToSymbolTable"), 0, "symbol table dropped");
        assert_eq!(field("NumberOfSymbols"), 0);
        assert_eq!(
            field("Characteristics"),
            0x206 | 0x8,
            "LOCAL_SYMS_STRIPPED added"
        );
        let layout = expected_layout(&i);
        let (_, va, _, _, vs) = layout.last().unwrap();
        assert_eq!(field("SizeOfImage"), align(va + vs, 0x200));
        assert_eq!(field("SizeOfHeaders"), 0x400);
        assert_eq!(
            field("SizeOfInitializedData"),
            0x5000 + layout.iter().map(|l| l.4).sum::<u64>()
        );
        let sections: Vec<Vec<&str>> = out
            .lines()
            .filter_map(|l| l.strip_prefix("section "))
            .map(|l| l.split(' ').collect())
            .collect();
        for (s, (name, va, off, raw, vs)) in sections[8..].iter().zip(&layout) {
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
    #[test]
    fn deterministic() {
        let i = inputs();
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

    #[test]
    fn sections_read_back() {
        let i = inputs();
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
        assert_eq!(&uki[..0x80], &i.stub[..0x80], "MS-DOS header and stub");
        let dd = stub.layout().data_directories;
        assert_eq!(
            &uki[dd..stub.layout().section_table_end],
            &i.stub[dd..stub.layout().section_table_end]
        );
        assert_eq!(pe.data_directories(), stub.data_directories());
    }

    #[test]
    fn single_initrd_is_not_padded_and_empty_parts_are_skipped() {
        let i = inputs();
        let p = UkiParts {
            linux: &i.kernel,
            initrds: vec![&i.initrd1],
            cmdline: Some(""),
            ..UkiParts::default()
        };
        let uki = build_uki(&i.stub, &p, 0).unwrap();
        let pe = PeFile::parse(&uki).unwrap();
        let names: Vec<_> = pe.sections()[8..]
            .iter()
            .map(|s| s.name().into_owned())
            .collect();
        assert_eq!(names, [".initrd", ".linux"]);
        let s = pe.section_by_name(".initrd").unwrap();
        assert_eq!(pe.section_virtual_data(s).unwrap(), &i.initrd1[..]);
        assert_eq!(s.header.virtual_size, 1001);
    }

    #[test]
    fn extra_sections_go_before_linux() {
        let i = inputs();
        let mut p = parts(&i);
        p.initrds.clear();
        p.extra = vec![
            (".pcrpkey".into(), b"-----BEGIN PUBLIC KEY-----\n"),
            (".ucode".into(), b"\x01\x02"),
        ];
        let uki = build_uki(&i.stub, &p, 0).unwrap();
        let pe = PeFile::parse(&uki).unwrap();
        let names: Vec<_> = pe.sections()[8..]
            .iter()
            .map(|s| s.name().into_owned())
            .collect();
        assert_eq!(
            names,
            [".osrel", ".cmdline", ".uname", ".pcrpkey", ".ucode", ".linux"]
        );
        let s = pe.section_by_name(".ucode").unwrap();
        assert_eq!(pe.section_virtual_data(s).unwrap(), b"\x01\x02");
    }

    #[test]
    fn linux_virtual_size_option() {
        let i = inputs();
        // SizeOfImage on request: Debian 6.1's SizeOfImage (0x822000) exceeds the file length.
        let opts = UkiOptions::default().with_linux_virtual_size(LinuxVirtualSize::SizeOfImage);
        let uki = build_uki_with(&i.stub, &parts(&i), 0, &opts).unwrap();
        let linux = PeFile::parse(&uki).unwrap().section_by_name(".linux").unwrap().header;
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
                0x200
            )
        );
    }
}

/// Authenticode of the UKI (and of the stub and kernel it came from) against three peers.
mod authenticode {
    use super::*;

    #[test]
    fn uki_stub_and_kernel_match_peers() {
        let i = inputs();
        let uki = build_uki(&i.stub, &parts(&i), TIMESTAMP).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "uki.efi", &uki);
        let files = [path.clone(), stub(), kernel()];
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

    #[test]
    fn bad_stubs() {
        let i = inputs();
        let p = parts(&i);
        let dir = tempfile::tempdir().unwrap();

        assert_eq!(err(b"\x7fELF", &p), "the stub is not a PE image");
        let pe32 = std::fs::read(build_pe32(dir.path())).unwrap();
        assert_eq!(
            err(&pe32, &p),
            "the stub is a PE32 image, not PE32+: use the x86-64 systemd-stub (linuxx64.efi.stub)"
        );
        let mut s = i.stub.clone();
        s[0x84..0x86].copy_from_slice(&IMAGE_FILE_MACHINE_ARM64.to_le_bytes());
        assert_eq!(
            err(&s, &p),
            "the stub is for machine 0xaa64, not x86-64 (0x8664): use linuxx64.efi.stub"
        );
        let mut s = i.stub.clone();
        s[0x98 + 68..0x98 + 70].copy_from_slice(&11u16.to_le_bytes());
        assert_eq!(
            err(&s, &p),
            "the stub's subsystem is 11, not 10 (EFI application): use systemd-stub's linuxx64.efi.stub"
        );
        // A stub signed by osslsigncode.
        osslsigncode_digests(&stub(), "sha256", dir.path());
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
        s[0x2c8 + 50] = 1;
        assert_eq!(
            err(&s, &p),
            "the stub's header area after its section table is not empty (non-zero byte at 0x2fa); refusing to overwrite it"
        );
    }

    #[test]
    fn linux_must_be_pe() {
        let i = inputs();
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

    #[test]
    fn section_names() {
        let i = inputs();
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

    #[test]
    fn header_space() {
        let i = inputs();
        let mut p = parts(&i);
        // 0x400 - 0x2c8 = 312 bytes: room for 7 headers; the fixture adds 5.
        p.extra = vec![(".e1".into(), b"1"), (".e2".into(), b"2")];
        assert!(build_uki(&i.stub, &p, 0).is_ok());
        p.extra.push((".e3".into(), b"3"));
        assert_eq!(
            err(&i.stub, &p),
            "not enough header space for 8 new section headers: the stub's section table ends at 0x2c8 and \
             SizeOfHeaders is 0x400, which leaves room for 7; drop 1 section(s)"
        );
    }
}

/// SBAT merging into the stub's existing .sbat section.
mod sbat {
    use super::*;

    const STUB_ENTRIES: &str = "systemd,1,The systemd Developers,systemd,252,https://systemd.io/\n\
        systemd.debian,1,Debian GNU/Linux,systemd,252.39-1~deb12u2,https://bugs.debian.org/\n";

    #[test]
    fn merged_in_place() {
        let i = inputs();
        let mut p = parts(&i);
        p.sbat = Some("sbat,1,SBAT Version,sbat,1,https://github.com/rhboot/shim/blob/main/SBAT.md\nuki,1,UKI,uki,1,x\n");
        let uki = build_uki(&i.stub, &p, 0).unwrap();
        let pe = PeFile::parse(&uki).unwrap();
        assert_eq!(pe.sections().len(), 13, "no new section");
        let s = pe.section_by_name(".sbat").unwrap();
        let expected = format!("{SBAT_HEADER}\n{STUB_ENTRIES}uki,1,UKI,uki,1,x\n\0");
        assert_eq!(pe.section_virtual_data(s).unwrap(), expected.as_bytes());
        assert_eq!(s.header.virtual_size as usize, expected.len());
        assert_eq!(s.header.size_of_raw_data, 0x200);
        assert!(pe.section_data(s).unwrap()[expected.len()..]
            .iter()
            .all(|&b| b == 0));
        let sdmagic = pe.section_by_name(".sdmagic").unwrap();
        assert!(pe
            .section_virtual_data(sdmagic)
            .unwrap()
            .starts_with(b"#### LoaderInfo: systemd-stub 252"));
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
    #[test]
    fn new_section_when_stub_has_none() {
        let i = inputs();
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
        let names: Vec<_> = pe.sections()[8..]
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

    #[test]
    fn errors() {
        let i = inputs();
        let mut p = parts(&i);
        p.sbat = Some("linux,1,Debian,linux,6.1,https://bugs.debian.org/linux\n");
        assert_eq!(
            build_uki(&i.stub, &p, 0).unwrap_err().to_string(),
            "SBAT data must begin with a \"sbat,\" header line, found \"linux,1,Debian,linux,6.1,https://bugs.debian.org/linux\""
        );
        // 226 + 41 bytes fit the 0x200-byte file slot but not the 0x100 bytes before .sdmagic.
        let line = format!("sbat,1\n{}\n", "x".repeat(40));
        p.sbat = Some(&line);
        assert_eq!(
            build_uki(&i.stub, &p, 0).unwrap_err().to_string(),
            "the merged SBAT data (0x10b bytes) does not fit the stub's .sbat section in memory: it starts at \
             RVA 0x19000 and .sdmagic starts at RVA 0x19100, leaving 0x100 bytes; shorten the SBAT entries"
        );
        let line = format!("sbat,1\n{}\n", "x".repeat(400));
        p.sbat = Some(&line);
        assert_eq!(
            build_uki(&i.stub, &p, 0).unwrap_err().to_string(),
            "not enough space in the stub's .sbat section for the merged SBAT data: it needs 0x273 bytes, the \
             section holds 0x200; shorten the SBAT entries"
        );
    }
}

/// Against a UKI assembled by objcopy at the same addresses (objcopy cannot set `.linux`'s
/// VirtualSize to SizeOfImage or its flags to CODE, so compare with `LinuxVirtualSize::FileSize`).
mod objcopy {
    use super::*;

    #[test]
    fn same_layout_and_bytes_as_objcopy() {
        let i = inputs();
        let opts = UkiOptions::default().with_linux_virtual_size(LinuxVirtualSize::FileSize);
        let ours = build_uki_with(&i.stub, &parts(&i), TIMESTAMP, &opts).unwrap();
        let pe = PeFile::parse(&ours).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = Command::new("objcopy");
        for s in &pe.sections()[8..] {
            let name = s.name();
            let file = write(dir.path(), &name[1..], pe.section_virtual_data(s).unwrap());
            cmd.arg("--add-section")
                .arg(format!("{name}={}", file.display()));
            cmd.arg("--change-section-vma")
                .arg(format!("{name}={:#x}", s.header.virtual_address));
        }
        let out = dir.path().join("objcopy.efi");
        run(cmd
            .env("SOURCE_DATE_EPOCH", TIMESTAMP.to_string())
            .arg(stub())
            .arg(&out));
        let theirs = std::fs::read(&out).unwrap();
        let other = PeFile::parse(&theirs).unwrap();

        assert_eq!(other.sections().len(), pe.sections().len());
        for (a, b) in pe.sections().iter().zip(other.sections()) {
            let (mut a, b) = (a.header, b.header);
            if a.name_bytes() == b".linux" {
                // ukify's flags; objcopy makes every added section initialized data.
                assert_eq!(a.characteristics, LINUX_SECTION_CHARACTERISTICS);
                a.characteristics = b.characteristics;
            }
            assert_eq!(a, b);
        }
        // Every section's bytes, padding included, are identical.
        let last = pe.sections().last().unwrap().raw_range();
        assert_eq!(
            &ours[STUB_FILE_END as usize..last.end as usize],
            &theirs[STUB_FILE_END as usize..last.end as usize]
        );
        assert_eq!(ours.len() as u64, last.end);
        // objcopy keeps the COFF symbol table (moved after the new sections); we drop it as ukify does.
        assert!(other
            .coff_symbol_table()
            .is_some_and(|r| r.end == theirs.len()));
        assert_eq!(pe.coff_symbol_table(), None);
        // Both compute a valid checksum over their own bytes.
        assert_eq!(other.computed_checksum(), other.optional_header().check_sum);
        assert_eq!(pe.computed_checksum(), pe.optional_header().check_sum);
    }
}

/// A 60 MB UKI is assembled quickly (the budget is 0.2 s in release builds).
mod speed {
    use super::*;

    #[test]
    fn sixty_megabytes() {
        let i = inputs();
        let initrd: Vec<u8> = (0..52u32 << 20).map(|k| (k >> 9) as u8).collect();
        let mut p = parts(&i);
        p.initrds = vec![&initrd];
        let start = std::time::Instant::now();
        let uki = build_uki(&i.stub, &p, 0).unwrap();
        let took = start.elapsed();
        assert!(uki.len() > 60_000_000);
        eprintln!("built a {} byte UKI in {took:?}", uki.len());
        let budget = if cfg!(debug_assertions) { 3.0 } else { 0.5 };
        assert!(took.as_secs_f64() < budget, "took {took:?}");
    }
}
