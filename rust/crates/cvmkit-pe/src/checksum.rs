//! The PE image checksum (`CheckSumMappedFile` in `imagehlp.dll`).

/// Computes the PE checksum of `data` with the 4-byte `CheckSum` field at `checksum_offset`
/// treated as zero.
///
/// The algorithm sums the file as little-endian 16-bit words (a trailing odd byte counts as a
/// word with a zero high byte), folds the carries back into the low 16 bits, and adds the file
/// length. Folding once at the end gives the same result as folding after every addition,
/// because both keep the sum's residue modulo 0xffff and never yield 0 for a non-zero sum.
pub fn pe_checksum(data: &[u8], checksum_offset: usize) -> u32 {
    // A u64 cannot overflow: it would take 2^48 words (512 TiB).
    let mut sum: u64 = 0;
    let mut words = data.chunks_exact(2);
    for w in &mut words {
        sum += u64::from(u16::from_le_bytes([w[0], w[1]]));
    }
    if let [last] = words.remainder() {
        sum += u64::from(*last);
    }
    // Take the CheckSum field's own bytes back out, wherever it sits relative to word boundaries.
    for i in checksum_offset..checksum_offset.saturating_add(4) {
        if let Some(&b) = data.get(i) {
            sum -= u64::from(b) << (8 * (i % 2));
        }
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    (sum as u32).wrapping_add(data.len() as u32)
}
