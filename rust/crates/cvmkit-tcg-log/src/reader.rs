//! A bounds-checked little-endian cursor over untrusted bytes.
//!
//! Every read either returns the value and advances, or returns `None` and leaves the position
//! unchanged. Nothing here indexes a slice without checking the length first, so no read can panic.

/// Cursor over a byte slice; `pos` is the offset of the next unread byte within `data`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(data: &'a [u8]) -> Self {
        Reader { data, pos: 0 }
    }

    /// Starts at `pos` (clamped to the end of `data`).
    pub(crate) fn at(data: &'a [u8], pos: usize) -> Self {
        Reader {
            data,
            pos: pos.min(data.len()),
        }
    }

    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    pub(crate) fn remaining(&self) -> usize {
        self.data.len() - self.pos
    }

    pub(crate) fn rest(&self) -> &'a [u8] {
        self.data.get(self.pos..).unwrap_or(&[])
    }

    /// Takes the next `len` bytes.
    pub(crate) fn bytes(&mut self, len: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(len)?;
        let out = self.data.get(self.pos..end)?;
        self.pos = end;
        Some(out)
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        let bytes = self.bytes(N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        Some(out)
    }

    pub(crate) fn u8(&mut self) -> Option<u8> {
        self.array::<1>().map(|b| b[0])
    }

    pub(crate) fn u16(&mut self) -> Option<u16> {
        self.array().map(u16::from_le_bytes)
    }

    pub(crate) fn u32(&mut self) -> Option<u32> {
        self.array().map(u32::from_le_bytes)
    }

    pub(crate) fn u64(&mut self) -> Option<u64> {
        self.array().map(u64::from_le_bytes)
    }

    /// Takes `len` bytes where `len` comes from the data (any integer width).
    pub(crate) fn bytes_claimed(&mut self, len: u64) -> Option<&'a [u8]> {
        let len = usize::try_from(len).ok()?;
        self.bytes(len)
    }
}

#[cfg(test)]
mod tests {
    use super::Reader;

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
}
