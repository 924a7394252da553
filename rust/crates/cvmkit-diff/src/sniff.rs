//! Recognising a format from its first bytes (and, for VHD, its last 512).

use serde::Serialize;

/// How many leading bytes [`sniff`] looks at.
pub(crate) const HEAD: usize = 4096;

/// A format the differ understands, as recognised by its magic bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[non_exhaustive]
pub enum Format {
    /// gzip (`1f 8b 08`).
    Gzip,
    /// xz (`fd 37 7a 58 5a 00`).
    Xz,
    /// zstd (`28 b5 2f fd`).
    Zstd,
    /// newc cpio (`070701` or `070702`).
    Cpio,
    /// POSIX ustar or GNU tar (`ustar` at offset 257, valid header checksum).
    Tar,
    /// PE/COFF image (`MZ`, then `PE\0\0` at `e_lfanew`).
    Pe,
    /// Fixed VHD (`conectix` footer in the last 512 bytes).
    Vhd,
    /// GPT partitioned disk (`EFI PART` at LBA 1, 512-byte sectors).
    Gpt,
    /// FAT12/16/32 file system (boot sector with a plausible BPB).
    Fat,
    /// Nix archive (`nix-archive-1`).
    Nar,
    /// Anything else: compared as bytes.
    Unknown,
}

impl Format {
    /// Lower-case name used in paths and messages (`gzip`, `cpio`, `PE` …).
    pub fn name(self) -> &'static str {
        match self {
            Format::Gzip => "gzip",
            Format::Xz => "xz",
            Format::Zstd => "zstd",
            Format::Cpio => "cpio",
            Format::Tar => "tar",
            Format::Pe => "PE",
            Format::Vhd => "VHD",
            Format::Gpt => "GPT",
            Format::Fat => "FAT",
            Format::Nar => "nar",
            Format::Unknown => "data",
        }
    }

    /// Whether this is a compression format.
    pub fn is_compression(self) -> bool {
        matches!(self, Format::Gzip | Format::Xz | Format::Zstd)
    }
}

/// `head` is the first bytes (up to [`HEAD`]), `tail` the last 512, `len` the total length.
pub(crate) fn sniff(head: &[u8], tail: &[u8], len: u64) -> Format {
    if head.starts_with(&[0x1f, 0x8b, 0x08]) {
        return Format::Gzip;
    }
    if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        return Format::Xz;
    }
    if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        return Format::Zstd;
    }
    if head.starts_with(b"070701") || head.starts_with(b"070702") {
        return Format::Cpio;
    }
    if head.starts_with(&[13, 0, 0, 0, 0, 0, 0, 0]) && head.get(8..21) == Some(b"nix-archive-1") {
        return Format::Nar;
    }
    if is_pe(head) {
        return Format::Pe;
    }
    if len >= 1024 && tail.len() == 512 && tail.starts_with(b"conectix") {
        return Format::Vhd;
    }
    if head.get(512..520) == Some(b"EFI PART") {
        return Format::Gpt;
    }
    if is_tar(head) {
        return Format::Tar;
    }
    if is_fat(head) {
        return Format::Fat;
    }
    Format::Unknown
}

fn is_pe(head: &[u8]) -> bool {
    if !head.starts_with(b"MZ") {
        return false;
    }
    let Some(l) = head.get(0x3c..0x40) else {
        return false;
    };
    let off = u32::from_le_bytes([l[0], l[1], l[2], l[3]]) as usize;
    // e_lfanew beyond the sniffed head: trust MZ alone; the PE parser will judge.
    match off.checked_add(4).and_then(|e| head.get(off..e)) {
        Some(sig) => sig == b"PE\0\0",
        None => off >= head.len(),
    }
}

fn is_tar(head: &[u8]) -> bool {
    let Some(h) = head.get(..512) else {
        return false;
    };
    if &h[257..262] != b"ustar" {
        return false;
    }
    crate::formats::tar::checksum_ok(h)
}

fn is_fat(head: &[u8]) -> bool {
    let Some(bs) = head.get(..512) else {
        return false;
    };
    if bs[510] != 0x55 || bs[511] != 0xaa {
        return false;
    }
    // A jump instruction, then a BPB with a power-of-two sector size and cluster size.
    if !(bs[0] == 0xeb || bs[0] == 0xe9) {
        return false;
    }
    let bps = u16::from_le_bytes([bs[11], bs[12]]);
    let spc = bs[13];
    let reserved = u16::from_le_bytes([bs[14], bs[15]]);
    let fats = bs[16];
    matches!(bps, 512 | 1024 | 2048 | 4096)
        && spc != 0
        && spc.is_power_of_two()
        && reserved != 0
        && (1..=4).contains(&fats)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magics_are_recognised() {
        assert_eq!(sniff(b"070701abc", b"", 9), Format::Cpio);
        assert_eq!(sniff(&[0x28, 0xb5, 0x2f, 0xfd, 0], b"", 5), Format::Zstd);
        let mut nar = vec![13, 0, 0, 0, 0, 0, 0, 0];
        nar.extend_from_slice(b"nix-archive-1\0\0\0");
        assert_eq!(sniff(&nar, b"", 24), Format::Nar);
        assert_eq!(sniff(b"plain", b"", 5), Format::Unknown);
    }
}
