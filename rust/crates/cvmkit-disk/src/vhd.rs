//! The footer of a fixed VHD ("Virtual Hard Disk Image Format Specification" 1.0, Microsoft,
//! 2006, as Azure requires): 512 bytes after the raw disk, all fields big-endian.

/// `Cookie`: `"conectix"`.
pub const VHD_COOKIE: [u8; 8] = *b"conectix";
/// `Features`: bit 1 "reserved", which must always be set.
pub const VHD_FEATURES: u32 = 0x0000_0002;
/// `File Format Version` 1.0.
pub const VHD_VERSION: u32 = 0x0001_0000;
/// `Data Offset` of a fixed disk: none.
pub const VHD_FIXED_DATA_OFFSET: u64 = u64::MAX;
/// `Disk Type` 2: fixed hard disk.
pub const VHD_DISK_TYPE_FIXED: u32 = 2;
/// `Creator Application`: `"qem2"`, the value `qemu-img convert -O vpc -o subformat=fixed,force_size`
/// writes (the conversion Azure documents). It tells QEMU and the tools built on it to take the
/// size from `Current Size` instead of rounding it down to the CHS geometry; Azure ignores it.
pub const VHD_CREATOR_APP: [u8; 4] = *b"qem2";
/// `Creator Version`, as QEMU writes it (5.3).
pub const VHD_CREATOR_VERSION: u32 = 0x0005_0003;
/// `Creator Host OS`: `"Wi2k"`, as QEMU writes it.
pub const VHD_CREATOR_HOST_OS: [u8; 4] = *b"Wi2k";
/// Seconds from the Unix epoch to 2000-01-01 00:00:00 UTC, the VHD epoch.
pub const VHD_EPOCH: u64 = 946_684_800;
/// Size of the footer.
pub const VHD_FOOTER_SIZE: usize = 512;

/// Cylinders, heads and sectors per track of a disk of `size` bytes: the algorithm of the VHD
/// specification's appendix ("CHS Calculation"), which caps at 65535 × 16 × 255 sectors.
pub fn chs_geometry(size: u64) -> (u16, u8, u8) {
    let total = (size / 512).min(65535 * 16 * 255);
    let (spt, heads, cyl_times_heads);
    if total >= 65535 * 16 * 63 {
        spt = 255;
        heads = 16;
        cyl_times_heads = total / spt;
    } else {
        let mut s = 17;
        let mut cth = total / s;
        let mut h = cth.div_ceil(1024).max(4);
        if cth >= h * 1024 || h > 16 {
            s = 31;
            h = 16;
            cth = total / s;
        }
        if cth >= h * 1024 {
            s = 63;
            h = 16;
            cth = total / s;
        }
        spt = s;
        heads = h;
        cyl_times_heads = cth;
    }
    ((cyl_times_heads / heads) as u16, heads as u8, spt as u8)
}

/// `Checksum`: the one's complement of the sum of all footer bytes, the checksum field taken
/// as zero.
pub fn vhd_checksum(footer: &[u8; VHD_FOOTER_SIZE]) -> u32 {
    let sum = footer
        .iter()
        .enumerate()
        .filter(|(i, _)| !(64..68).contains(i))
        .fold(0u32, |s, (_, &b)| s.wrapping_add(u32::from(b)));
    !sum
}

/// The footer of a fixed VHD whose data is `size` bytes (a multiple of 512), created at Unix
/// time `timestamp` (clamped to the VHD epoch's u32 range), with the given unique id.
pub fn vhd_footer(size: u64, timestamp: u64, unique_id: [u8; 16]) -> [u8; VHD_FOOTER_SIZE] {
    let mut f = [0u8; VHD_FOOTER_SIZE];
    f[0..8].copy_from_slice(&VHD_COOKIE); // Cookie
    f[8..12].copy_from_slice(&VHD_FEATURES.to_be_bytes()); // Features
    f[12..16].copy_from_slice(&VHD_VERSION.to_be_bytes()); // File Format Version
    f[16..24].copy_from_slice(&VHD_FIXED_DATA_OFFSET.to_be_bytes()); // Data Offset
    let stamp = timestamp.saturating_sub(VHD_EPOCH).min(u64::from(u32::MAX)) as u32;
    f[24..28].copy_from_slice(&stamp.to_be_bytes()); // Time Stamp
    f[28..32].copy_from_slice(&VHD_CREATOR_APP); // Creator Application
    f[32..36].copy_from_slice(&VHD_CREATOR_VERSION.to_be_bytes()); // Creator Version
    f[36..40].copy_from_slice(&VHD_CREATOR_HOST_OS); // Creator Host OS
    f[40..48].copy_from_slice(&size.to_be_bytes()); // Original Size
    f[48..56].copy_from_slice(&size.to_be_bytes()); // Current Size
    let (c, h, s) = chs_geometry(size);
    f[56..58].copy_from_slice(&c.to_be_bytes()); // Disk Geometry: cylinders
    f[58] = h; // heads
    f[59] = s; // sectors per track
    f[60..64].copy_from_slice(&VHD_DISK_TYPE_FIXED.to_be_bytes()); // Disk Type
    f[68..84].copy_from_slice(&unique_id); // Unique Id
                                           // Saved State (84) = 0; Reserved (85..512) = 0.
    let sum = vhd_checksum(&f);
    f[64..68].copy_from_slice(&sum.to_be_bytes()); // Checksum
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn geometry_matches_the_spec_algorithm() {
        // Values computed with the spec's pseudo-code (and what qemu-img writes).
        assert_eq!(chs_geometry(64 << 20), (963, 8, 17));
        assert_eq!(chs_geometry(2 << 30), (4161, 16, 63));
        assert_eq!(chs_geometry(30 << 30), (62415, 16, 63));
        assert_eq!(chs_geometry(40 << 30), (20560, 16, 255));
        assert_eq!(chs_geometry(4 << 40), (65535, 16, 255));
    }
}
