//! The FAT32 writer: a tree of directories and files of known sizes ([`FatBuilder`]) is laid
//! out onto a volume ([`FatLayout`]) before a byte is written: geometry, every cluster run,
//! the FATs, directory contents and boot sectors. The layout is a sorted list of [`Extent`]s
//! (metadata bytes, or "file N goes here"); everything between them is zero. A caller can
//! write it densely ([`FatLayout::write_to`]) or place the extents into a larger sparse image.

use std::io::{Read, Write};

use crate::name::{basis_name, exact_short, lfn_entries, validate_long, with_tail};
use crate::structs::*;
use crate::{DosDateTime, WriteError};

/// Index of a file added to a [`FatBuilder`], in the order of [`FatBuilder::add_file`] calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FileId(pub usize);

/// How to format the volume. Everything that ends up in it comes from here, so the same
/// options and tree give the same bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FatOptions {
    /// Size of the volume in bytes, a multiple of 512.
    pub volume_size: u64,
    /// `BS_VolID`, the volume serial number (derive it from a seed for reproducibility).
    pub volume_id: u32,
    /// `BS_VolLab` and the root directory's volume-label entry: 1–11 upper-case short-name
    /// characters, or empty for `"NO NAME"` and no label entry.
    pub volume_label: String,
    /// Every directory entry's creation, modification and access time, in seconds since the
    /// Unix epoch (`SOURCE_DATE_EPOCH`); clamped to the DOS range 1980–2107.
    pub timestamp: u64,
    /// `BPB_HiddSec`: the LBA at which the partition starts on its disk.
    pub hidden_sectors: u32,
    /// Cluster size in bytes; `None` picks one by volume size (see [`Geometry::for_size`]).
    pub cluster_size: Option<u32>,
}

impl FatOptions {
    /// Options for a volume of `volume_size` bytes with the given serial and timestamp, no
    /// label, no hidden sectors and the default cluster size.
    pub fn new(volume_size: u64, volume_id: u32, timestamp: u64) -> FatOptions {
        FatOptions {
            volume_size,
            volume_id,
            volume_label: String::new(),
            timestamp,
            hidden_sectors: 0,
            cluster_size: None,
        }
    }
}

/// The shape of a FAT32 volume: its BPB numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    /// `BPB_SecPerClus`.
    pub sectors_per_cluster: u32,
    /// `BPB_RsvdSecCnt`: at least 32, raised so that the data region starts on a multiple of
    /// 4 KiB and of the cluster size.
    pub reserved_sectors: u32,
    /// `BPB_FATSz32`.
    pub fat_sectors: u32,
    /// `BPB_TotSec32`.
    pub total_sectors: u32,
    /// Number of data clusters (numbered 2 ..= `cluster_count + 1`).
    pub cluster_count: u32,
}

impl Geometry {
    /// The geometry of a volume of `volume_size` bytes. With `cluster_size` `None` it follows
    /// Microsoft's FAT32 table (512 B up to 260 MiB, 4 KiB up to 8 GiB, 8 KiB to 16 GiB, 16 KiB
    /// to 32 GiB, 32 KiB above), halving the cluster while the volume would have fewer than
    /// [`FAT32_MIN_CLUSTERS`] clusters. The FAT size is the spec's upper bound
    /// `ceil((TotSec − RsvdSecCnt) / ((256 × SecPerClus + NumFATs) / 2))`.
    pub fn for_size(volume_size: u64, cluster_size: Option<u32>) -> Result<Geometry, WriteError> {
        if volume_size / SECTOR > u64::from(u32::MAX) {
            return Err(WriteError::TooLarge { size: volume_size });
        }
        let cluster = match cluster_size {
            Some(c) => {
                if !c.is_power_of_two() || !(512..=32768).contains(&c) {
                    return Err(WriteError::BadClusterSize { size: c });
                }
                c
            }
            None => {
                let mut c: u32 = match volume_size {
                    s if s <= 260 << 20 => 512,
                    s if s <= 8 << 30 => 4096,
                    s if s <= 16 << 30 => 8192,
                    s if s <= 32 << 30 => 16384,
                    _ => 32768,
                };
                while c > 512
                    && Geometry::compute(volume_size, c).cluster_count < FAT32_MIN_CLUSTERS
                {
                    c /= 2;
                }
                c
            }
        };
        let g = Geometry::compute(volume_size, cluster);
        if g.cluster_count < FAT32_MIN_CLUSTERS || volume_size % SECTOR != 0 {
            return Err(WriteError::TooSmall {
                size: volume_size,
                cluster_size: cluster,
                clusters: u64::from(g.cluster_count),
                min: Geometry::min_size(cluster),
            });
        }
        Ok(g)
    }

    fn compute(volume_size: u64, cluster: u32) -> Geometry {
        let total = (volume_size / SECTOR).min(u64::from(u32::MAX));
        let spc = u64::from(cluster) / SECTOR;
        let align = spc.max(8);
        let mut reserved = 32u64;
        let tmp2 = (256 * spc + NUM_FATS) / 2;
        let fat = total.saturating_sub(reserved).div_ceil(tmp2).max(1);
        let data_start = reserved + NUM_FATS * fat;
        reserved += (align - data_start % align) % align;
        let data = total.saturating_sub(reserved + NUM_FATS * fat);
        let clusters = (data / spc).min(u64::from(FAT32_MAX_CLUSTERS));
        Geometry {
            sectors_per_cluster: spc as u32,
            reserved_sectors: reserved as u32,
            fat_sectors: fat as u32,
            total_sectors: total as u32,
            cluster_count: clusters as u32,
        }
    }

    /// The smallest volume (a multiple of the cluster size) that is FAT32 with this cluster size.
    pub fn min_size(cluster_size: u32) -> u64 {
        let c = u64::from(cluster_size.clamp(512, 32768));
        let mut size = (u64::from(FAT32_MIN_CLUSTERS) + 1) * c;
        while Geometry::compute(size, c as u32).cluster_count < FAT32_MIN_CLUSTERS {
            size += c * 64;
        }
        size
    }

    /// Cluster size in bytes.
    pub fn cluster_size(&self) -> u32 {
        self.sectors_per_cluster * SECTOR as u32
    }

    /// Byte offset of FAT number `n` (0 or 1).
    pub fn fat_offset(&self, n: u32) -> u64 {
        (u64::from(self.reserved_sectors) + u64::from(n) * u64::from(self.fat_sectors)) * SECTOR
    }

    /// Byte offset of the data region (cluster 2).
    pub fn data_offset(&self) -> u64 {
        self.fat_offset(NUM_FATS as u32)
    }

    /// Byte offset of a data cluster (≥ 2).
    pub fn cluster_offset(&self, cluster: u32) -> u64 {
        self.data_offset() + u64::from(cluster.saturating_sub(2)) * u64::from(self.cluster_size())
    }

    /// Size of the volume in bytes.
    pub fn volume_size(&self) -> u64 {
        u64::from(self.total_sectors) * SECTOR
    }
}

/// What an [`Extent`] holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    /// Metadata: boot sectors, a FAT, directory clusters.
    Bytes(Vec<u8>),
    /// The contents of a file added with [`FatBuilder::add_file`], exactly its size.
    File(FileId),
}

/// A byte range of the volume and what goes there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extent {
    /// Byte offset in the volume.
    pub offset: u64,
    /// Length in bytes.
    pub len: u64,
    /// The bytes.
    pub content: Content,
}

#[derive(Debug, Clone)]
struct DirNode {
    path: String,
    parent: usize,
    children: Vec<(String, Node)>,
}

#[derive(Debug, Clone, Copy)]
enum Node {
    Dir(usize),
    File(usize),
}

/// A directory's child as laid out: its long-name entries, short name and node.
type DirItem = (Vec<[u8; 32]>, [u8; 11], Node);

#[derive(Debug, Clone)]
struct FileNode {
    path: String,
    size: u64,
}

/// A tree of directories and files (by size) to put on a FAT32 volume. Entries keep the order
/// in which they were added.
///
/// Names are VFAT long names (any Unicode except control characters and `" * / : < > ? \ |`,
/// at most 255 UTF-16 units); an upper-case 8.3 name is stored as a short entry alone, other
/// names get long-name entries and a generated short name (`LINUX~1.EFI`). Names are unique
/// within a directory ignoring case, as on FAT.
#[derive(Debug, Clone)]
pub struct FatBuilder {
    dirs: Vec<DirNode>,
    files: Vec<FileNode>,
}

impl Default for FatBuilder {
    fn default() -> Self {
        FatBuilder::new()
    }
}

fn split_path(path: &str) -> Result<Vec<&str>, WriteError> {
    let trimmed = path.trim_matches(|c| c == '/' || c == '\\');
    if trimmed.is_empty() {
        return Err(WriteError::BadName {
            path: path.to_string(),
            reason: "the path names the root directory",
        });
    }
    let parts: Vec<&str> = trimmed.split(['/', '\\']).collect();
    for p in &parts {
        validate_long(p, path)?;
    }
    Ok(parts)
}

fn same_name(a: &str, b: &str) -> bool {
    a.to_uppercase() == b.to_uppercase()
}

impl FatBuilder {
    /// An empty tree.
    pub fn new() -> FatBuilder {
        FatBuilder {
            dirs: vec![DirNode {
                path: String::new(),
                parent: 0,
                children: Vec::new(),
            }],
            files: Vec::new(),
        }
    }

    fn child(&self, dir: usize, name: &str) -> Option<Node> {
        self.dirs[dir]
            .children
            .iter()
            .find(|(n, _)| same_name(n, name))
            .map(|&(_, node)| node)
    }

    fn ensure_dirs(&mut self, parts: &[&str], path: &str) -> Result<usize, WriteError> {
        let mut dir = 0;
        for part in parts {
            dir = match self.child(dir, part) {
                Some(Node::Dir(d)) => d,
                Some(Node::File(_)) => {
                    return Err(WriteError::Conflict {
                        path: path.to_string(),
                        reason: "a parent is a file",
                    })
                }
                None => {
                    let d = self.dirs.len();
                    let parent_path = &self.dirs[dir].path;
                    let p = if parent_path.is_empty() {
                        part.to_string()
                    } else {
                        format!("{parent_path}/{part}")
                    };
                    self.dirs.push(DirNode {
                        path: p,
                        parent: dir,
                        children: Vec::new(),
                    });
                    self.dirs[dir]
                        .children
                        .push((part.to_string(), Node::Dir(d)));
                    d
                }
            };
        }
        Ok(dir)
    }

    /// Adds a directory and any missing parents (`"EFI/BOOT"`; `/` or `\` separate). Adding an
    /// existing directory again is allowed.
    pub fn add_dir(&mut self, path: &str) -> Result<(), WriteError> {
        let parts = split_path(path)?;
        self.ensure_dirs(&parts, path).map(|_| ())
    }

    /// Adds a file of `size` bytes, creating missing parent directories; its contents are
    /// asked for only when the volume is written.
    pub fn add_file(&mut self, path: &str, size: u64) -> Result<FileId, WriteError> {
        let parts = split_path(path)?;
        let (name, parents) = parts
            .split_last()
            .expect("split_path returns at least one part");
        if size > u64::from(u32::MAX) {
            return Err(WriteError::FileTooLarge {
                path: path.to_string(),
                size,
            });
        }
        let dir = self.ensure_dirs(parents, path)?;
        if self.child(dir, name).is_some() {
            return Err(WriteError::Conflict {
                path: path.to_string(),
                reason: "the name exists already (names ignore case)",
            });
        }
        let id = self.files.len();
        let parent_path = &self.dirs[dir].path;
        let full = if parent_path.is_empty() {
            name.to_string()
        } else {
            format!("{parent_path}/{name}")
        };
        self.files.push(FileNode { path: full, size });
        self.dirs[dir]
            .children
            .push((name.to_string(), Node::File(id)));
        Ok(FileId(id))
    }

    /// The path (as added, `/`-separated) and size of a file.
    pub fn file(&self, id: FileId) -> Option<(&str, u64)> {
        self.files.get(id.0).map(|f| (f.path.as_str(), f.size))
    }

    /// Lays the tree out on a volume described by `options`: reserves every cluster run, then
    /// builds the metadata. Fails if the volume is not valid FAT32 or too small for the tree.
    pub fn layout(&self, options: &FatOptions) -> Result<FatLayout, WriteError> {
        let geometry = Geometry::for_size(options.volume_size, options.cluster_size)?;
        let label = encode_label(&options.volume_label)?;
        let stamp = DosDateTime::from_unix(options.timestamp);
        let cs = u64::from(geometry.cluster_size());

        // 1. Directory entries of every directory (short names resolved per directory).
        let mut entries: Vec<Vec<DirItem>> = Vec::with_capacity(self.dirs.len());
        for dir in &self.dirs {
            let mut used: Vec<[u8; 11]> = Vec::new();
            let mut list = Vec::with_capacity(dir.children.len());
            for (name, node) in &dir.children {
                let (short, lfn) = match exact_short(name) {
                    Some(s) if !used.contains(&s) => (s, Vec::new()),
                    _ => {
                        let (basis, need_tail) = basis_name(name);
                        let mut s = basis;
                        if need_tail || used.contains(&s) {
                            s = (1..=999_999)
                                .map(|n| with_tail(&basis, n))
                                .find(|s| !used.contains(s))
                                .ok_or_else(|| WriteError::DirectoryTooLarge {
                                    path: dir.path.clone(),
                                    entries: 1_000_000,
                                })?;
                        }
                        (s, lfn_entries(name, &s))
                    }
                };
                used.push(short);
                list.push((lfn, short, *node));
            }
            entries.push(list);
        }

        // 2. Clusters per directory.
        let mut dir_clusters = Vec::with_capacity(self.dirs.len());
        for (d, list) in entries.iter().enumerate() {
            let fixed = if d == 0 {
                u64::from(label.is_some())
            } else {
                2
            };
            let n = fixed
                + list
                    .iter()
                    .map(|(lfn, _, _)| 1 + lfn.len() as u64)
                    .sum::<u64>();
            if n > MAX_DIR_ENTRIES {
                return Err(WriteError::DirectoryTooLarge {
                    path: self.dirs[d].path.clone(),
                    entries: n,
                });
            }
            dir_clusters.push((n * DIR_ENTRY_SIZE).div_ceil(cs).max(1));
        }

        // 3. Reserve clusters: the root at 2, directories breadth first, then files in the same
        //    order, each non-empty file starting on a 4 KiB boundary of the volume.
        let mut order = vec![0usize];
        let mut i = 0;
        while i < order.len() {
            for (_, node) in &self.dirs[order[i]].children {
                if let Node::Dir(d) = node {
                    order.push(*d);
                }
            }
            i += 1;
        }
        let mut next: u64 = 2;
        let mut runs: Vec<(u64, u64)> = Vec::new(); // (first cluster, clusters)
        let mut dir_first = vec![0u64; self.dirs.len()];
        for &d in &order {
            dir_first[d] = next;
            runs.push((next, dir_clusters[d]));
            next += dir_clusters[d];
        }
        let mut file_first = vec![0u64; self.files.len()];
        for &d in &order {
            for (_, node) in &self.dirs[d].children {
                if let Node::File(f) = node {
                    let size = self.files[*f].size;
                    if size == 0 {
                        continue;
                    }
                    let per_4k = (4096 / cs).max(1);
                    // The data region starts 4 KiB-aligned, so cluster c is iff (c - 2) is.
                    let r = (next - 2) % per_4k;
                    if r != 0 {
                        next += per_4k - r;
                    }
                    let n = size.div_ceil(cs);
                    file_first[*f] = next;
                    runs.push((next, n));
                    next += n;
                }
            }
        }
        let used_clusters: u64 = runs.iter().map(|r| r.1).sum();
        let span = next - 2;
        if span > u64::from(geometry.cluster_count) {
            return Err(WriteError::NoSpace {
                size: options.volume_size,
                needed: span * cs,
                needed_clusters: span,
                cluster_size: geometry.cluster_size(),
                free: u64::from(geometry.cluster_count) * cs,
            });
        }

        // 4. The FAT: media and end-of-chain in entries 0 and 1, then each run chained.
        let mut fat = vec![0u32; next as usize];
        fat[0] = 0x0FFF_FF00 | u32::from(MEDIA);
        fat[1] = FAT32_EOC;
        for &(first, n) in &runs {
            for c in first..first + n - 1 {
                fat[c as usize] = (c + 1) as u32;
            }
            fat[(first + n - 1) as usize] = FAT32_EOC;
        }
        let fat_bytes: Vec<u8> = fat.iter().flat_map(|e| e.to_le_bytes()).collect();

        // 5. Directory contents.
        let mut extents = Vec::new();
        for &d in &order {
            let mut buf = vec![0u8; (dir_clusters[d] * cs) as usize];
            let mut at = 0;
            let mut put = |e: &[u8; 32]| {
                buf[at..at + 32].copy_from_slice(e);
                at += 32;
            };
            if d == 0 {
                if let Some(l) = label {
                    put(&short_entry(&l, ATTR_VOLUME_ID, 0, 0, stamp));
                }
            } else {
                let parent = self.dirs[d].parent;
                let dotdot = if parent == 0 { 0 } else { dir_first[parent] };
                put(&short_entry(
                    b".          ",
                    ATTR_DIRECTORY,
                    dir_first[d] as u32,
                    0,
                    stamp,
                ));
                put(&short_entry(
                    b"..         ",
                    ATTR_DIRECTORY,
                    dotdot as u32,
                    0,
                    stamp,
                ));
            }
            for (lfn, short, node) in &entries[d] {
                for e in lfn {
                    put(e);
                }
                let e = match *node {
                    Node::Dir(c) => {
                        short_entry(short, ATTR_DIRECTORY, dir_first[c] as u32, 0, stamp)
                    }
                    Node::File(f) => short_entry(
                        short,
                        ATTR_ARCHIVE,
                        file_first[f] as u32,
                        self.files[f].size as u32,
                        stamp,
                    ),
                };
                put(&e);
            }
            let offset = geometry.cluster_offset(dir_first[d] as u32);
            extents.push(Extent {
                offset,
                len: buf.len() as u64,
                content: Content::Bytes(buf),
            });
        }
        for (f, file) in self.files.iter().enumerate() {
            if file.size > 0 {
                let offset = geometry.cluster_offset(file_first[f] as u32);
                extents.push(Extent {
                    offset,
                    len: file.size,
                    content: Content::File(FileId(f)),
                });
            }
        }

        // 6. Boot sector, FSInfo and their backups; the two FATs.
        let free = u64::from(geometry.cluster_count) - used_clusters;
        // FSI_Nxt_Free: the spec calls it where to start looking; Linux and mtools read it as
        // the last cluster allocated and start after it. The last allocated cluster suits both.
        let next_free = (next - 1) as u32;
        let boot = boot_sector(&geometry, options, label);
        let info = fs_info(free as u32, next_free);
        let mut head = boot.to_vec();
        head.extend_from_slice(&info);
        extents.push(Extent {
            offset: 0,
            len: head.len() as u64,
            content: Content::Bytes(head.clone()),
        });
        extents.push(Extent {
            offset: BACKUP_BOOT_SECTOR * SECTOR,
            len: head.len() as u64,
            content: Content::Bytes(head),
        });
        for n in 0..NUM_FATS as u32 {
            let offset = geometry.fat_offset(n);
            extents.push(Extent {
                offset,
                len: fat_bytes.len() as u64,
                content: Content::Bytes(fat_bytes.clone()),
            });
        }
        extents.sort_by_key(|e| e.offset);

        Ok(FatLayout {
            geometry,
            extents,
            files: self
                .files
                .iter()
                .map(|f| (f.path.clone(), f.size))
                .collect(),
            free_clusters: free as u32,
        })
    }

    /// The smallest volume size, a multiple of `granularity` bytes (e.g. 1 MiB), on which
    /// [`FatBuilder::layout`] succeeds with `options` (whose `volume_size` is ignored).
    pub fn min_volume_size(
        &self,
        options: &FatOptions,
        granularity: u64,
    ) -> Result<u64, WriteError> {
        let g = granularity.max(SECTOR).div_ceil(SECTOR) * SECTOR;
        let fits = |size: u64| -> Result<bool, WriteError> {
            let o = FatOptions {
                volume_size: size,
                ..options.clone()
            };
            match self.layout(&o) {
                Ok(_) => Ok(true),
                Err(WriteError::TooSmall { .. } | WriteError::NoSpace { .. }) => Ok(false),
                Err(e) => Err(e),
            }
        };
        let mut lo = 0u64; // in units of g; fits(lo * g) is false
        let mut hi = Geometry::min_size(512).div_ceil(g).max(1);
        while !fits(hi * g)? {
            lo = hi;
            hi = hi
                .checked_mul(2)
                .filter(|&h| h * g <= MAX_VOLUME)
                .ok_or(WriteError::TooLarge { size: hi * g })?;
        }
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if fits(mid * g)? {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        Ok(hi * g)
    }
}

fn encode_label(label: &str) -> Result<Option<[u8; 11]>, WriteError> {
    if label.is_empty() {
        return Ok(None);
    }
    let b = label.as_bytes();
    let ok = b.len() <= 11
        && b[0] != b' '
        && b.iter().all(|&c| {
            c == b' '
                || c.is_ascii_uppercase()
                || c.is_ascii_digit()
                || b"$%'-_@~`!(){}^#&".contains(&c)
        });
    if !ok {
        return Err(WriteError::BadLabel {
            label: label.to_string(),
        });
    }
    let mut l = [b' '; 11];
    l[..b.len()].copy_from_slice(b);
    Ok(Some(l))
}

fn short_entry(name: &[u8; 11], attr: u8, cluster: u32, size: u32, t: DosDateTime) -> [u8; 32] {
    let mut e = [0u8; 32];
    e[0..11].copy_from_slice(name); // DIR_Name
    e[11] = attr; // DIR_Attr
    e[13] = t.tenths; // DIR_CrtTimeTenth
    e[14..16].copy_from_slice(&t.time.to_le_bytes()); // DIR_CrtTime
    e[16..18].copy_from_slice(&t.date.to_le_bytes()); // DIR_CrtDate
    e[18..20].copy_from_slice(&t.date.to_le_bytes()); // DIR_LstAccDate
    e[20..22].copy_from_slice(&((cluster >> 16) as u16).to_le_bytes()); // DIR_FstClusHI
    e[22..24].copy_from_slice(&t.time.to_le_bytes()); // DIR_WrtTime
    e[24..26].copy_from_slice(&t.date.to_le_bytes()); // DIR_WrtDate
    e[26..28].copy_from_slice(&(cluster as u16).to_le_bytes()); // DIR_FstClusLO
    e[28..32].copy_from_slice(&size.to_le_bytes()); // DIR_FileSize
    e
}

fn boot_sector(g: &Geometry, o: &FatOptions, label: Option<[u8; 11]>) -> [u8; 512] {
    let mut s = [0u8; 512];
    s[0..3].copy_from_slice(&[0xEB, 0x58, 0x90]); // BS_jmpBoot: jmp 0x5A; nop
    s[3..11].copy_from_slice(b"MSWIN4.1"); // BS_OEMName, the spec's recommended value
    s[11..13].copy_from_slice(&(SECTOR as u16).to_le_bytes()); // BPB_BytsPerSec
    s[13] = g.sectors_per_cluster as u8; // BPB_SecPerClus
    s[14..16].copy_from_slice(&(g.reserved_sectors as u16).to_le_bytes()); // BPB_RsvdSecCnt
    s[16] = NUM_FATS as u8; // BPB_NumFATs
                            // BPB_RootEntCnt, BPB_TotSec16 = 0 on FAT32
    s[21] = MEDIA; // BPB_Media
                   // BPB_FATSz16 = 0
                   // Geometry as mkfs.fat gives image files: 64 heads × 32 sectors = 1 MiB cylinders.
    s[24..26].copy_from_slice(&32u16.to_le_bytes()); // BPB_SecPerTrk
    s[26..28].copy_from_slice(&64u16.to_le_bytes()); // BPB_NumHeads
    s[28..32].copy_from_slice(&o.hidden_sectors.to_le_bytes()); // BPB_HiddSec
    s[32..36].copy_from_slice(&g.total_sectors.to_le_bytes()); // BPB_TotSec32
    s[36..40].copy_from_slice(&g.fat_sectors.to_le_bytes()); // BPB_FATSz32
                                                             // BPB_ExtFlags = 0 (FATs mirrored), BPB_FSVer = 0
    s[44..48].copy_from_slice(&ROOT_CLUSTER.to_le_bytes()); // BPB_RootClus
    s[48..50].copy_from_slice(&(FSINFO_SECTOR as u16).to_le_bytes()); // BPB_FSInfo
    s[50..52].copy_from_slice(&(BACKUP_BOOT_SECTOR as u16).to_le_bytes()); // BPB_BkBootSec
    s[64] = 0x80; // BS_DrvNum
    s[66] = 0x29; // BS_BootSig: the next three fields are present
    s[67..71].copy_from_slice(&o.volume_id.to_le_bytes()); // BS_VolID
    s[71..82].copy_from_slice(&label.unwrap_or(*b"NO NAME    ")); // BS_VolLab
    s[82..90].copy_from_slice(b"FAT32   "); // BS_FilSysType
    s[90..94].copy_from_slice(&[0xFA, 0xF4, 0xEB, 0xFD]); // boot code: cli; hlt; jmp hlt
    s[510..512].copy_from_slice(&BOOT_SIGNATURE);
    s
}

fn fs_info(free: u32, next_free: u32) -> [u8; 512] {
    let mut s = [0u8; 512];
    s[0..4].copy_from_slice(&FSI_LEAD_SIG.to_le_bytes()); // FSI_LeadSig "RRaA"
    s[484..488].copy_from_slice(&FSI_STRUC_SIG.to_le_bytes()); // FSI_StrucSig "rrAa"
    s[488..492].copy_from_slice(&free.to_le_bytes()); // FSI_Free_Count
    s[492..496].copy_from_slice(&next_free.to_le_bytes()); // FSI_Nxt_Free
    s[508..512].copy_from_slice(&FSI_TRAIL_SIG.to_le_bytes()); // FSI_TrailSig
    s
}

/// A FAT32 volume laid out: its geometry and the sorted, non-overlapping [`Extent`]s that hold
/// anything but zeros.
#[derive(Debug, Clone)]
pub struct FatLayout {
    geometry: Geometry,
    extents: Vec<Extent>,
    files: Vec<(String, u64)>,
    free_clusters: u32,
}

impl FatLayout {
    /// The geometry.
    pub fn geometry(&self) -> &Geometry {
        &self.geometry
    }

    /// The non-zero parts of the volume, sorted by offset.
    pub fn extents(&self) -> &[Extent] {
        &self.extents
    }

    /// Size of the volume in bytes.
    pub fn size(&self) -> u64 {
        self.geometry.volume_size()
    }

    /// Free clusters (`FSI_Free_Count`).
    pub fn free_clusters(&self) -> u32 {
        self.free_clusters
    }

    /// Byte offset of a file's contents in the volume (`None` for an empty file).
    pub fn file_offset(&self, id: FileId) -> Option<u64> {
        self.extents
            .iter()
            .find(|e| e.content == Content::File(id))
            .map(|e| e.offset)
    }

    /// Writes the whole volume densely (zeros included) to `out`, asking `open` for each file's
    /// contents in offset order; each reader must give exactly the file's size.
    pub fn write_to<W: Write, R: Read>(
        &self,
        out: &mut W,
        mut open: impl FnMut(FileId) -> std::io::Result<R>,
    ) -> Result<(), WriteError> {
        let io = |what: &str| {
            let what = what.to_string();
            move |source| WriteError::Io { what, source }
        };
        let mut pos = 0u64;
        for e in &self.extents {
            write_zeros(out, e.offset - pos).map_err(io("writing the FAT volume"))?;
            match &e.content {
                Content::Bytes(b) => out.write_all(b).map_err(io("writing the FAT volume"))?,
                Content::File(id) => {
                    let (path, size) = &self.files[id.0];
                    let reader =
                        open(*id).map_err(io(&format!("opening the contents of {path:?}")))?;
                    let mut limited = reader.take(size + 1);
                    let copied = std::io::copy(&mut limited, out)
                        .map_err(io(&format!("copying {path:?}")))?;
                    if copied != *size {
                        return Err(WriteError::SizeChanged {
                            path: path.clone(),
                            expected: *size,
                            actual: copied,
                        });
                    }
                }
            }
            pos = e.offset + e.len;
        }
        write_zeros(out, self.size() - pos).map_err(io("writing the FAT volume"))?;
        Ok(())
    }
}

fn write_zeros<W: Write>(out: &mut W, mut n: u64) -> std::io::Result<()> {
    static ZEROS: [u8; 65536] = [0; 65536];
    while n > 0 {
        let k = n.min(ZEROS.len() as u64) as usize;
        out.write_all(&ZEROS[..k])?;
        n -= k as u64;
    }
    Ok(())
}
