//! A qcow2 version 3 image (QEMU's `docs/interop/qcow2.txt`) written in one pass: 64 KiB
//! clusters, one L1 table, L2 tables only where data is, 16-bit refcounts, no compression,
//! no backing file. Host clusters are reserved first and written in this order: header, L1
//! table, refcount table, refcount blocks, L2 tables, then the data clusters in guest order.

/// `magic`: `QFI\xfb`.
pub const QCOW2_MAGIC: u32 = 0x5146_49FB;
/// `cluster_bits`: 64 KiB clusters, QEMU's default.
pub const QCOW2_CLUSTER_BITS: u32 = 16;
/// `refcount_order`: 16-bit refcounts, QEMU's default.
pub const QCOW2_REFCOUNT_ORDER: u32 = 4;
/// `header_length` of a version 3 header without optional fields.
pub const QCOW2_HEADER_LENGTH: u32 = 104;
/// `QCOW_OFLAG_COPIED`: refcount is exactly one (set on every L1 and L2 entry written).
const OFLAG_COPIED: u64 = 1 << 63;

const CS: u64 = 1 << QCOW2_CLUSTER_BITS;
const L2_ENTRIES: u64 = CS / 8;
const REFCOUNTS_PER_BLOCK: u64 = CS * 8 / (1 << QCOW2_REFCOUNT_ORDER);

/// The host layout of the image.
#[derive(Debug, Clone)]
pub(crate) struct Qcow2Plan {
    size: u64,
    l1_size: u64,
    l1_clusters: u64,
    rt_clusters: u64,
    rb_clusters: u64,
    /// L1 indices that have an L2 table, ascending.
    l2_tables: Vec<u64>,
    /// Guest clusters that are allocated, ascending.
    pub data_clusters: Vec<u64>,
}

impl Qcow2Plan {
    /// Reserves the host clusters for a disk of `size` bytes whose non-zero ranges are `map`.
    pub(crate) fn new(size: u64, map: &[(u64, u64)]) -> Qcow2Plan {
        let mut data_clusters: Vec<u64> = Vec::new();
        for &(o, l) in map {
            for g in o / CS..=(o + l - 1) / CS {
                if data_clusters.last() != Some(&g) {
                    data_clusters.push(g);
                }
            }
        }
        let mut l2_tables: Vec<u64> = data_clusters.iter().map(|g| g / L2_ENTRIES).collect();
        l2_tables.dedup();
        let l1_size = size.div_ceil(CS * L2_ENTRIES);
        let l1_clusters = (l1_size * 8).div_ceil(CS).max(1);
        let (mut rt_clusters, mut rb_clusters) = (1, 1);
        loop {
            let total = 1
                + l1_clusters
                + rt_clusters
                + rb_clusters
                + l2_tables.len() as u64
                + data_clusters.len() as u64;
            let rb = total.div_ceil(REFCOUNTS_PER_BLOCK);
            let rt = (rb * 8).div_ceil(CS);
            if (rt, rb) == (rt_clusters, rb_clusters) {
                break;
            }
            (rt_clusters, rb_clusters) = (rt, rb);
        }
        Qcow2Plan {
            size,
            l1_size,
            l1_clusters,
            rt_clusters,
            rb_clusters,
            l2_tables,
            data_clusters,
        }
    }

    fn l1_offset(&self) -> u64 {
        CS
    }
    fn rt_offset(&self) -> u64 {
        self.l1_offset() + self.l1_clusters * CS
    }
    fn rb_offset(&self) -> u64 {
        self.rt_offset() + self.rt_clusters * CS
    }
    fn l2_offset(&self) -> u64 {
        self.rb_offset() + self.rb_clusters * CS
    }
    fn data_offset(&self) -> u64 {
        self.l2_offset() + self.l2_tables.len() as u64 * CS
    }

    /// Host clusters in all.
    pub(crate) fn total_clusters(&self) -> u64 {
        self.data_offset() / CS + self.data_clusters.len() as u64
    }

    /// Size of the image file.
    pub(crate) fn file_size(&self) -> u64 {
        self.total_clusters() * CS
    }

    /// Cluster size.
    pub(crate) fn cluster_size(&self) -> u64 {
        CS
    }

    /// Everything before the data clusters: header, L1, refcount table and blocks, L2 tables.
    pub(crate) fn metadata(&self) -> Vec<u8> {
        let mut m = vec![0u8; self.data_offset() as usize];
        // Header (all fields big-endian).
        let h = &mut m[..CS as usize];
        h[0..4].copy_from_slice(&QCOW2_MAGIC.to_be_bytes()); // magic
        h[4..8].copy_from_slice(&3u32.to_be_bytes()); // version
                                                      // backing_file_offset (8), backing_file_size (16) = 0
        h[20..24].copy_from_slice(&QCOW2_CLUSTER_BITS.to_be_bytes()); // cluster_bits
        h[24..32].copy_from_slice(&self.size.to_be_bytes()); // size
                                                             // crypt_method (32) = 0
        h[36..40].copy_from_slice(&(self.l1_size as u32).to_be_bytes()); // l1_size
        h[40..48].copy_from_slice(&self.l1_offset().to_be_bytes()); // l1_table_offset
        h[48..56].copy_from_slice(&self.rt_offset().to_be_bytes()); // refcount_table_offset
        h[56..60].copy_from_slice(&(self.rt_clusters as u32).to_be_bytes()); // refcount_table_clusters
                                                                             // nb_snapshots (60), snapshots_offset (64), incompatible/compatible/autoclear features = 0
        h[96..100].copy_from_slice(&QCOW2_REFCOUNT_ORDER.to_be_bytes()); // refcount_order
        h[100..104].copy_from_slice(&QCOW2_HEADER_LENGTH.to_be_bytes()); // header_length
                                                                         // Header extensions from 104: the end marker (type 0, length 0), i.e. zeros.

        // L1 table.
        for (j, &i) in self.l2_tables.iter().enumerate() {
            let at = (self.l1_offset() + i * 8) as usize;
            let l2 = self.l2_offset() + j as u64 * CS;
            m[at..at + 8].copy_from_slice(&(l2 | OFLAG_COPIED).to_be_bytes());
        }
        // Refcount table and blocks: every host cluster is used once.
        for k in 0..self.rb_clusters {
            let at = (self.rt_offset() + k * 8) as usize;
            m[at..at + 8].copy_from_slice(&(self.rb_offset() + k * CS).to_be_bytes());
        }
        for c in 0..self.total_clusters() {
            let at = (self.rb_offset() + c * 2) as usize;
            m[at..at + 2].copy_from_slice(&1u16.to_be_bytes());
        }
        // L2 tables.
        for (k, &g) in self.data_clusters.iter().enumerate() {
            let j = self
                .l2_tables
                .binary_search(&(g / L2_ENTRIES))
                .expect("L2 table reserved");
            let at = (self.l2_offset() + j as u64 * CS + (g % L2_ENTRIES) * 8) as usize;
            let host = self.data_offset() + k as u64 * CS;
            m[at..at + 8].copy_from_slice(&(host | OFLAG_COPIED).to_be_bytes());
        }
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_of_a_small_sparse_disk() {
        let p = Qcow2Plan::new(
            2 << 30,
            &[(0, 20_000), (1 << 20, 4096), ((2 << 30) - 16896, 16896)],
        );
        assert_eq!(p.data_clusters, vec![0, 16, 32767]);
        assert_eq!(p.l2_tables, vec![0, 3]);
        assert_eq!(p.l1_size, 4);
        // header, L1, refcount table, one refcount block, two L2 tables, three data clusters
        assert_eq!(p.total_clusters(), 1 + 1 + 1 + 1 + 2 + 3);
        let m = p.metadata();
        assert_eq!(m.len() as u64, 6 * CS);
        assert_eq!(&m[0..4], b"QFI\xfb");
    }
}
