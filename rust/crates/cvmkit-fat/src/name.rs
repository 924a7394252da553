//! File names: long names (VFAT LFN, FAT spec §7) and 8.3 short names with the spec's
//! basis-name and numeric-tail generation (§7.2).

use crate::WriteError;

/// Longest long name, in UTF-16 code units.
pub const MAX_LONG_NAME: usize = 255;
/// UTF-16 code units held by one long-name directory entry.
pub const LFN_CHARS_PER_ENTRY: usize = 13;

/// `LDIR_Chksum`: the checksum of an 11-byte short name that ties long-name entries to it.
pub fn lfn_checksum(short: &[u8; 11]) -> u8 {
    short.iter().fold(0u8, |sum, &b| {
        ((sum & 1) << 7).wrapping_add(sum >> 1).wrapping_add(b)
    })
}

/// Characters a long name may not contain (besides control characters).
const LONG_INVALID: &[char] = &['"', '*', '/', ':', '<', '>', '?', '\\', '|'];
/// ASCII punctuation valid in a short name (besides A–Z, 0–9).
const SHORT_SPECIAL: &[u8] = b"$%'-_@~`!(){}^#&";

/// Checks that `name` can be a long file name; `path` is for the error.
pub(crate) fn validate_long(name: &str, path: &str) -> Result<(), WriteError> {
    let bad = |reason: &'static str| {
        Err(WriteError::BadName {
            path: path.to_string(),
            reason,
        })
    };
    if name.is_empty() {
        return bad("a path component is empty");
    }
    if name == "." || name == ".." {
        return bad("\".\" and \"..\" are not file names");
    }
    if name
        .chars()
        .any(|c| (c as u32) < 0x20 || LONG_INVALID.contains(&c))
    {
        return bad("FAT names cannot contain control characters or any of \" * / : < > ? \\ |");
    }
    if name.ends_with(' ') || name.ends_with('.') {
        return bad("FAT names cannot end in a space or a period");
    }
    if name.encode_utf16().count() > MAX_LONG_NAME {
        return bad("FAT long names are at most 255 UTF-16 code units");
    }
    Ok(())
}

fn short_char_ok(b: u8) -> bool {
    b.is_ascii_uppercase() || b.is_ascii_digit() || SHORT_SPECIAL.contains(&b)
}

/// If `name` is exactly an 8.3 name in upper case, its 11-byte form: such a name needs no
/// long-name entries.
pub(crate) fn exact_short(name: &str) -> Option<[u8; 11]> {
    let b = name.as_bytes();
    let (base, ext) = match name.rfind('.') {
        Some(i) => (&b[..i], &b[i + 1..]),
        None => (b, &b[..0]),
    };
    let ok = (1..=8).contains(&base.len())
        && ext.len() <= 3
        && (ext.is_empty() != name.contains('.'))
        && base.iter().chain(ext).all(|&c| short_char_ok(c));
    if !ok {
        return None;
    }
    let mut s = [b' '; 11];
    s[..base.len()].copy_from_slice(base);
    s[8..8 + ext.len()].copy_from_slice(ext);
    Some(s)
}

/// The spec's basis name of a long name (§7.2 steps 1–5): upper case, invalid characters as
/// `_` (lossy), spaces and leading periods removed, the part before the first period (≤ 8)
/// and after the last one (≤ 3). Returns (basis, whether a numeric tail is required).
pub(crate) fn basis_name(name: &str) -> ([u8; 11], bool) {
    let mut lossy = false;
    let mut chars: Vec<u8> = Vec::new();
    for c in name.chars() {
        if c == ' ' {
            lossy = true; // not in the spec's list, but "a b" and "ab" must not share a name
            continue;
        }
        let u = c.to_ascii_uppercase();
        if u == '.' {
            chars.push(b'.');
        } else if u.is_ascii() && short_char_ok(u as u8) {
            chars.push(u as u8);
        } else {
            lossy = true;
            chars.push(b'_');
        }
    }
    let lead = chars.iter().take_while(|&&c| c == b'.').count();
    let chars = &chars[lead..];
    let last_dot = chars.iter().rposition(|&c| c == b'.');
    let primary: Vec<u8> = chars.iter().copied().take_while(|&c| c != b'.').collect();
    let ext: Vec<u8> = match last_dot {
        Some(i) => chars[i + 1..]
            .iter()
            .copied()
            .filter(|&c| c != b'.')
            .collect(),
        None => Vec::new(),
    };
    let dots = chars.iter().filter(|&&c| c == b'.').count();
    let fits =
        lead == 0 && !primary.is_empty() && primary.len() <= 8 && ext.len() <= 3 && dots <= 1;
    let mut s = [b' '; 11];
    let p = if primary.is_empty() {
        &b"_"[..]
    } else {
        &primary[..]
    };
    for (d, c) in s[..8].iter_mut().zip(p) {
        *d = *c;
    }
    for (d, c) in s[8..].iter_mut().zip(&ext) {
        *d = *c;
    }
    (s, lossy || !fits)
}

/// Inserts the numeric tail `~n` into a basis name (§7.2.1).
pub(crate) fn with_tail(basis: &[u8; 11], n: u32) -> [u8; 11] {
    let tail = format!("~{n}");
    let base_len = basis[..8].iter().position(|&c| c == b' ').unwrap_or(8);
    let keep = base_len.min(8 - tail.len());
    let mut s = *basis;
    s[keep..keep + tail.len()].copy_from_slice(tail.as_bytes());
    for c in &mut s[keep + tail.len()..8] {
        *c = b' ';
    }
    s
}

/// The long-name entries for `name` tied to `short`, in on-disk order (highest ordinal,
/// flagged 0x40, first).
pub(crate) fn lfn_entries(name: &str, short: &[u8; 11]) -> Vec<[u8; 32]> {
    let units: Vec<u16> = name.encode_utf16().collect();
    let n = units.len().div_ceil(LFN_CHARS_PER_ENTRY);
    let checksum = lfn_checksum(short);
    let mut out = Vec::with_capacity(n);
    for k in (1..=n).rev() {
        let mut e = [0u8; 32];
        e[0] = k as u8 | if k == n { 0x40 } else { 0 }; // LDIR_Ord
        e[11] = 0x0F; // LDIR_Attr = ATTR_LONG_NAME
        e[13] = checksum; // LDIR_Chksum
        let slot = |i: usize| -> u16 {
            let idx = (k - 1) * LFN_CHARS_PER_ENTRY + i;
            match idx.cmp(&units.len()) {
                std::cmp::Ordering::Less => units[idx],
                std::cmp::Ordering::Equal => 0x0000,
                std::cmp::Ordering::Greater => 0xFFFF,
            }
        };
        // LDIR_Name1 (5 units) at 1, LDIR_Name2 (6) at 14, LDIR_Name3 (2) at 28.
        for (i, &pos) in LFN_UNIT_OFFSETS.iter().enumerate() {
            e[pos..pos + 2].copy_from_slice(&slot(i).to_le_bytes());
        }
        out.push(e);
    }
    out
}

/// Byte positions of the 13 UTF-16 units in a long-name entry.
pub(crate) const LFN_UNIT_OFFSETS: [usize; 13] = [1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30];

#[cfg(test)]
mod tests {
    use super::*;

    fn s(b: &[u8; 11]) -> String {
        String::from_utf8_lossy(b).into_owned()
    }

    #[test]
    fn short_names() {
        assert_eq!(
            exact_short("BOOTX64.EFI").map(|b| s(&b)),
            Some("BOOTX64 EFI".into())
        );
        assert_eq!(
            exact_short("EFI").map(|b| s(&b)),
            Some("EFI        ".into())
        );
        assert_eq!(exact_short("boot"), None);
        assert_eq!(exact_short("A.B.C"), None);
        assert_eq!(exact_short("ABCDEFGHI"), None);
        assert_eq!(exact_short("A."), None);
        assert_eq!(s(&basis_name("boot").0), "BOOT       ");
        assert!(!basis_name("boot").1);
        let (b, tail) = basis_name("linux.efi.signed");
        assert_eq!((s(&b), tail), ("LINUX   SIG".into(), true));
        let (b, tail) = basis_name("Read me über.txt");
        assert_eq!((s(&b), tail), ("README_BTXT".into(), true));
        assert_eq!(s(&with_tail(&b, 1)), "README~1TXT");
        assert_eq!(s(&with_tail(&b, 12)), "READM~12TXT");
        assert_eq!(s(&basis_name(".bashrc").0), "BASHRC     ");
        assert!(basis_name(".bashrc").1);
    }

    #[test]
    fn checksum_matches_known_value() {
        // Checksum of "BOOTX64 EFI" computed with the spec's ChkSum() routine.
        let mut sum = 0u8;
        for &b in b"BOOTX64 EFI" {
            sum = (if sum & 1 != 0 { 0x80u8 } else { 0 })
                .wrapping_add(sum >> 1)
                .wrapping_add(b);
        }
        assert_eq!(lfn_checksum(b"BOOTX64 EFI"), sum);
    }

    #[test]
    fn lfn_layout() {
        let e = lfn_entries("abcdefghijklmn", b"ABCDEF~1   ");
        assert_eq!(e.len(), 2);
        assert_eq!(e[0][0], 0x42);
        assert_eq!(e[1][0], 0x01);
        assert_eq!(&e[0][1..5], &[b'n', 0, 0, 0]); // 'n', then the NUL terminator
        assert_eq!(&e[0][5..7], &[0xFF, 0xFF]);
        assert_eq!(e[1][30], b'm');
    }
}
