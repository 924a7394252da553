//! [`Reader`]: the one bounds-checked little-endian cursor every parser of untrusted bytes uses.
//!
//! Every read either returns the value and advances, or fails and leaves the position
//! unchanged. Nothing here indexes a slice without checking the length first, so no read can
//! panic. Plain reads return `Option` (for parsers that report their own error); the `*_named`
//! reads return [`Truncated`], which names the field that was cut short and where.

use crate::Guid;

/// A read that ran past the end: the field, its offset and the end of the data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{what} at offset {offset:#x} extends past the end of the data ({end:#x} bytes)")]
pub struct Truncated {
    /// The field being read.
    pub what: &'static str,
    /// Its offset, counted from the start of the whole file (see [`Reader::with_base`]).
    pub offset: u64,
    /// The offset of the end of the data, likewise.
    pub end: u64,
}

/// Cursor over a byte slice; `pos` is the offset of the next unread byte within `data`.
#[derive(Clone, Copy, Debug)]
pub struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
    base: u64,
}

impl<'a> Reader<'a> {
    /// A reader at the start of `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Reader { data, pos: 0, base: 0 }
    }

    /// A reader at `pos`; past the end, every read fails and names `pos`.
    pub fn at(data: &'a [u8], pos: usize) -> Self {
        Reader { data, pos, base: 0 }
    }

    /// A reader over `data`, which starts at byte `base` of a larger file: [`Truncated`] offsets
    /// are then file offsets.
    pub fn with_base(data: &'a [u8], base: u64) -> Self {
        Reader { data, pos: 0, base }
    }

    /// Offset of the next unread byte within `data`.
    pub fn pos(&self) -> usize {
        self.pos
    }

    /// Bytes left.
    pub fn remaining(&self) -> usize {
        self.data.len().saturating_sub(self.pos)
    }

    /// The unread bytes.
    pub fn rest(&self) -> &'a [u8] {
        self.data.get(self.pos..).unwrap_or(&[])
    }

    /// Takes the next `len` bytes.
    pub fn bytes(&mut self, len: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(len)?;
        let out = self.data.get(self.pos..end)?;
        self.pos = end;
        Some(out)
    }

    /// Takes `len` bytes where `len` comes from the data (any integer width).
    pub fn bytes_claimed(&mut self, len: u64) -> Option<&'a [u8]> {
        self.bytes(usize::try_from(len).ok()?)
    }

    /// Takes the next `N` bytes as an array.
    pub fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.bytes(N)?.try_into().ok()
    }

    /// A byte.
    pub fn u8(&mut self) -> Option<u8> {
        self.array::<1>().map(|b| b[0])
    }

    /// A little-endian u16.
    pub fn u16(&mut self) -> Option<u16> {
        self.array().map(u16::from_le_bytes)
    }

    /// A little-endian u32.
    pub fn u32(&mut self) -> Option<u32> {
        self.array().map(u32::from_le_bytes)
    }

    /// A little-endian u64.
    pub fn u64(&mut self) -> Option<u64> {
        self.array().map(u64::from_le_bytes)
    }

    /// An `EFI_GUID` in its on-disk form.
    pub fn guid(&mut self) -> Option<Guid> {
        self.array().map(Guid::from_bytes_le)
    }

    fn truncated(&self, what: &'static str) -> Truncated {
        Truncated {
            what,
            offset: self.base.saturating_add(self.pos as u64),
            end: self.base.saturating_add(self.data.len() as u64),
        }
    }

    /// [`Reader::bytes`], naming the field on failure.
    pub fn bytes_named(&mut self, len: usize, what: &'static str) -> Result<&'a [u8], Truncated> {
        let t = self.truncated(what);
        self.bytes(len).ok_or(t)
    }

    /// [`Reader::array`], naming the field on failure.
    pub fn array_named<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], Truncated> {
        let t = self.truncated(what);
        self.array().ok_or(t)
    }

    /// [`Reader::u8`], naming the field on failure.
    pub fn u8_named(&mut self, what: &'static str) -> Result<u8, Truncated> {
        self.array_named::<1>(what).map(|b| b[0])
    }

    /// [`Reader::u16`], naming the field on failure.
    pub fn u16_named(&mut self, what: &'static str) -> Result<u16, Truncated> {
        self.array_named(what).map(u16::from_le_bytes)
    }

    /// [`Reader::u32`], naming the field on failure.
    pub fn u32_named(&mut self, what: &'static str) -> Result<u32, Truncated> {
        self.array_named(what).map(u32::from_le_bytes)
    }

    /// [`Reader::u64`], naming the field on failure.
    pub fn u64_named(&mut self, what: &'static str) -> Result<u64, Truncated> {
        self.array_named(what).map(u64::from_le_bytes)
    }

    /// [`Reader::guid`], naming the field on failure.
    pub fn guid_named(&mut self, what: &'static str) -> Result<Guid, Truncated> {
        self.array_named(what).map(Guid::from_bytes_le)
    }
}

/// `len` bytes at `offset` of `data`, or `None` when the range leaves `data` (or overflows):
/// random access for formats addressed by offsets (PE sections, firmware tables).
pub fn slice(data: &[u8], offset: usize, len: usize) -> Option<&[u8]> {
    data.get(offset..offset.checked_add(len)?)
}

/// `N` bytes at `offset` as an array.
pub fn array<const N: usize>(data: &[u8], offset: usize) -> Option<[u8; N]> {
    slice(data, offset, N)?.try_into().ok()
}

/// A little-endian u16 at `offset`.
pub fn le_u16(data: &[u8], offset: usize) -> Option<u16> {
    array(data, offset).map(u16::from_le_bytes)
}

/// A little-endian u32 at `offset`.
pub fn le_u32(data: &[u8], offset: usize) -> Option<u32> {
    array(data, offset).map(u32::from_le_bytes)
}

/// A little-endian u64 at `offset`.
pub fn le_u64(data: &[u8], offset: usize) -> Option<u64> {
    array(data, offset).map(u64::from_le_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_fail_without_moving() {
        let mut r = Reader::new(&[1, 2, 3]);
        assert_eq!(r.u16(), Some(0x0201));
        assert_eq!(r.u32(), None);
        assert_eq!(r.pos(), 2);
        assert_eq!(r.bytes(usize::MAX), None);
        assert_eq!(r.bytes_claimed(u64::MAX), None);
        assert_eq!(r.u8(), Some(3));
        assert_eq!(r.remaining(), 0);
        assert_eq!(Reader::at(&[1], 9).remaining(), 0);
    }

    #[test]
    fn named_reads_say_where() {
        let mut r = Reader::with_base(&[1, 2, 3], 0x100);
        r.u8_named("a").unwrap();
        let e = r.u32_named("b").unwrap_err();
        assert_eq!(e, Truncated { what: "b", offset: 0x101, end: 0x103 });
        assert_eq!(e.to_string(), "b at offset 0x101 extends past the end of the data (0x103 bytes)");
        assert_eq!(r.pos(), 1);
    }

    #[test]
    fn random_access_is_checked() {
        let d = [1u8, 2, 3, 4, 5];
        assert_eq!(le_u32(&d, 1), Some(0x0504_0302));
        assert_eq!(le_u32(&d, 2), None);
        assert_eq!(le_u16(&d, usize::MAX), None);
        assert_eq!(slice(&d, usize::MAX, 2), None);
        assert_eq!(slice(&d, 5, 0), Some(&[][..]));
        assert_eq!(le_u64(&d, 0), None);
    }
}
