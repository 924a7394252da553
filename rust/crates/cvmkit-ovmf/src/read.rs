//! Bounds-checked little-endian reads over untrusted firmware bytes. None of these can panic.

/// `len` bytes at `offset`, or `None` when the range leaves `data` (or overflows).
pub(crate) fn bytes(data: &[u8], offset: usize, len: usize) -> Option<&[u8]> {
    data.get(offset..offset.checked_add(len)?)
}

/// `N` bytes at `offset` as an array.
pub(crate) fn array<const N: usize>(data: &[u8], offset: usize) -> Option<[u8; N]> {
    bytes(data, offset, N)?.try_into().ok()
}

pub(crate) fn u16_le(data: &[u8], offset: usize) -> Option<u16> {
    array(data, offset).map(u16::from_le_bytes)
}

pub(crate) fn u32_le(data: &[u8], offset: usize) -> Option<u32> {
    array(data, offset).map(u32::from_le_bytes)
}

pub(crate) fn u64_le(data: &[u8], offset: usize) -> Option<u64> {
    array(data, offset).map(u64::from_le_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_of_range_reads_are_none() {
        let d = [1u8, 2, 3, 4, 5];
        assert_eq!(u32_le(&d, 1), Some(0x0504_0302));
        assert_eq!(u32_le(&d, 2), None);
        assert_eq!(u16_le(&d, usize::MAX), None);
        assert_eq!(bytes(&d, usize::MAX, 2), None);
        assert_eq!(bytes(&d, 5, 0), Some(&[][..]));
        assert_eq!(u64_le(&d, 0), None);
    }
}
