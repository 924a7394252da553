//! The reader: a FAT12/16/32 volume held in memory (or mapped), walked without copying.
//!
//! Every offset is computed with checked arithmetic and every slice taken with `get`; cluster
//! chains are bounded by the cluster count and directories by a visited set, so no input makes
//! it panic, loop forever or allocate by a size the input claims.

use std::collections::HashSet;

use crate::name::{lfn_checksum, LFN_UNIT_OFFSETS};
use crate::structs::*;
use crate::{DosDateTime, ReadError};

/// Deepest directory nesting [`FatVolume::walk`] follows.
pub const MAX_DEPTH: usize = 128;

/// A FAT volume over borrowed bytes. [`FatVolume::parse`] checks the boot sector; the rest is
/// read lazily, so a truncated image fails only where it is truncated.
#[derive(Debug, Clone)]
pub struct FatVolume<'a> {
    data: &'a [u8],
    bpb: Bpb,
    fat_type: FatType,
    cluster_size: u64,
    fat_offset: u64,
    fat_bytes: u64,
    root_dir_offset: u64,
    root_dir_bytes: u64,
    data_offset: u64,
    cluster_count: u32,
}

/// One directory entry (its short entry plus any long name), with the metadata FAT keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    /// The long name if a valid one (matching checksum and sequence) precedes the short entry,
    /// else the short name as `BASE.EXT` (lower-cased per the `DIR_NTRes` flags).
    pub name: String,
    /// `DIR_Name`: the 8.3 name, space padded.
    pub short_name: [u8; 11],
    /// Whether `name` came from long-name entries.
    pub has_long_name: bool,
    /// `DIR_Attr`.
    pub attr: u8,
    /// `DIR_NTRes`: 0x08 base and 0x10 extension in lower case.
    pub nt_res: u8,
    /// `DIR_CrtDate`, `DIR_CrtTime`, `DIR_CrtTimeTenth`.
    pub created: DosDateTime,
    /// `DIR_WrtDate`, `DIR_WrtTime`.
    pub modified: DosDateTime,
    /// `DIR_LstAccDate`.
    pub accessed_date: u16,
    /// `DIR_FstClusHI` (FAT32 only) and `DIR_FstClusLO`.
    pub first_cluster: u32,
    /// `DIR_FileSize`.
    pub file_size: u32,
    /// Byte offset of the short entry in the volume.
    pub offset: u64,
}

impl DirEntry {
    /// Whether this is a directory.
    pub fn is_dir(&self) -> bool {
        self.attr & ATTR_DIRECTORY != 0
    }

    /// The short name as `BASE.EXT`, bytes outside ASCII as U+FFFD.
    pub fn short_name_string(&self) -> String {
        format_short(&self.short_name, 0)
    }
}

/// An entry found by [`FatVolume::walk`], with its `/`-separated path from the root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalkEntry {
    /// Path such as `EFI/BOOT/BOOTX64.EFI`.
    pub path: String,
    /// The entry.
    pub entry: DirEntry,
}

fn format_short(name: &[u8; 11], nt_res: u8) -> String {
    let conv = |b: &[u8], lower: bool| -> String {
        let end = b.iter().rposition(|&c| c != b' ').map_or(0, |i| i + 1);
        b[..end]
            .iter()
            .enumerate()
            .map(|(i, &c)| {
                let c = if i == 0 && c == 0x05 { 0xE5 } else { c };
                if c.is_ascii() && c >= 0x20 {
                    let ch = c as char;
                    if lower {
                        ch.to_ascii_lowercase()
                    } else {
                        ch
                    }
                } else {
                    char::REPLACEMENT_CHARACTER
                }
            })
            .collect()
    };
    let base = conv(&name[..8], nt_res & 0x08 != 0);
    let ext = conv(&name[8..], nt_res & 0x10 != 0);
    if ext.is_empty() {
        base
    } else {
        format!("{base}.{ext}")
    }
}

fn slice(data: &[u8], offset: u64, len: u64) -> Option<&[u8]> {
    let start = usize::try_from(offset).ok()?;
    let end = start.checked_add(usize::try_from(len).ok()?)?;
    data.get(start..end)
}

impl<'a> FatVolume<'a> {
    /// Checks the boot sector of `data` (the volume, i.e. the partition's bytes) and works out
    /// the layout. FAT32 is recognised by `BPB_FATSz16 == 0` (as Linux does); FAT12 and FAT16
    /// by the count of clusters (below 4085 is FAT12), as the spec says.
    pub fn parse(data: &'a [u8]) -> Result<FatVolume<'a>, ReadError> {
        let bpb = Bpb::parse(data)?;
        let sig = [data[510], data[511]];
        if sig != BOOT_SIGNATURE {
            return Err(ReadError::NoBootSignature { found: sig });
        }
        let bad = |field: &'static str, value: u64, expected: &'static str| {
            Err(ReadError::BadBpb {
                field,
                value,
                expected,
            })
        };
        let bps = u64::from(bpb.byts_per_sec);
        if ![512, 1024, 2048, 4096].contains(&bps) {
            return bad("BPB_BytsPerSec", bps, "512, 1024, 2048 or 4096");
        }
        let spc = u64::from(bpb.sec_per_clus);
        if !spc.is_power_of_two() {
            return bad("BPB_SecPerClus", spc, "a power of two from 1 to 128");
        }
        if bpb.rsvd_sec_cnt == 0 {
            return bad("BPB_RsvdSecCnt", 0, "at least 1");
        }
        if bpb.num_fats == 0 {
            return bad("BPB_NumFATs", 0, "at least 1");
        }
        let fat32 = bpb.fat_sz16 == 0;
        let fat_sz = if fat32 {
            u64::from(bpb.fat_sz32)
        } else {
            u64::from(bpb.fat_sz16)
        };
        if fat_sz == 0 {
            return bad("BPB_FATSz32", 0, "at least 1");
        }
        let tot = if bpb.tot_sec16 != 0 {
            u64::from(bpb.tot_sec16)
        } else {
            u64::from(bpb.tot_sec32)
        };
        let root_dir_sectors = (u64::from(bpb.root_ent_cnt) * 32).div_ceil(bps);
        if fat32 && bpb.root_ent_cnt != 0 {
            return bad("BPB_RootEntCnt", u64::from(bpb.root_ent_cnt), "0 on FAT32");
        }
        let meta =
            u64::from(bpb.rsvd_sec_cnt) + u64::from(bpb.num_fats) * fat_sz + root_dir_sectors;
        let Some(data_sectors) = tot.checked_sub(meta) else {
            return bad(
                "BPB_TotSec",
                tot,
                "more sectors than the reserved sectors, FATs and root directory take",
            );
        };
        let count = data_sectors / spc;
        let fat_type = if fat32 {
            FatType::Fat32
        } else if count < 4085 {
            FatType::Fat12
        } else {
            FatType::Fat16
        };
        let (bits, max_count) = match fat_type {
            FatType::Fat12 => (12, 4084),
            FatType::Fat16 => (16, 0xFFF4),
            FatType::Fat32 => (32, u64::from(FAT32_MAX_CLUSTERS)),
        };
        if count > max_count {
            return bad(
                "cluster count",
                count,
                "no more than the FAT type can address",
            );
        }
        let fat_bytes = fat_sz * bps;
        if fat_bytes * 8 / bits < count + 2 {
            return bad("BPB_FATSz", fat_sz, "large enough for every cluster");
        }
        let active = if fat32 && bpb.ext_flags & 0x80 != 0 {
            u64::from(bpb.ext_flags & 0x0F)
        } else {
            0
        };
        if active >= u64::from(bpb.num_fats) {
            return bad("BPB_ExtFlags active FAT", active, "below BPB_NumFATs");
        }
        let fat_start = u64::from(bpb.rsvd_sec_cnt) * bps;
        let vol = FatVolume {
            data,
            bpb,
            fat_type,
            cluster_size: spc * bps,
            fat_offset: fat_start + active * fat_bytes,
            fat_bytes,
            root_dir_offset: fat_start + u64::from(bpb.num_fats) * fat_bytes,
            root_dir_bytes: u64::from(bpb.root_ent_cnt) * 32,
            data_offset: meta * bps,
            cluster_count: count as u32,
        };
        if fat32 && !(2..=vol.max_cluster()).contains(&bpb.root_clus) {
            return bad("BPB_RootClus", u64::from(bpb.root_clus), "a data cluster");
        }
        Ok(vol)
    }

    /// The BPB.
    pub fn bpb(&self) -> &Bpb {
        &self.bpb
    }

    /// FAT12, FAT16 or FAT32.
    pub fn fat_type(&self) -> FatType {
        self.fat_type
    }

    /// Bytes per cluster.
    pub fn cluster_size(&self) -> u64 {
        self.cluster_size
    }

    /// Number of data clusters.
    pub fn cluster_count(&self) -> u32 {
        self.cluster_count
    }

    /// Highest valid cluster number.
    pub fn max_cluster(&self) -> u32 {
        self.cluster_count + 1
    }

    /// Byte offset of a data cluster.
    pub fn cluster_offset(&self, cluster: u32) -> u64 {
        self.data_offset + u64::from(cluster.saturating_sub(2)) * self.cluster_size
    }

    /// The bytes of a data cluster.
    pub fn cluster(&self, cluster: u32) -> Result<&'a [u8], ReadError> {
        if !(2..=self.max_cluster()).contains(&cluster) {
            return Err(ReadError::ClusterOutOfRange {
                start: cluster,
                cluster,
                max: self.max_cluster(),
            });
        }
        let offset = self.cluster_offset(cluster);
        slice(self.data, offset, self.cluster_size).ok_or(ReadError::Truncated {
            what: "data cluster",
            offset,
            len: self.data.len() as u64,
        })
    }

    /// The FAT entry of `cluster` in the active FAT (28 bits on FAT32).
    pub fn fat_entry(&self, cluster: u32) -> Result<u32, ReadError> {
        let n = u64::from(cluster);
        let (rel, len) = match self.fat_type {
            FatType::Fat12 => (n + n / 2, 2),
            FatType::Fat16 => (n * 2, 2),
            FatType::Fat32 => (n * 4, 4),
        };
        let offset = self.fat_offset + rel;
        let b = (rel + len <= self.fat_bytes)
            .then(|| slice(self.data, offset, len))
            .flatten()
            .ok_or(ReadError::Truncated {
                what: "FAT entry",
                offset,
                len: self.data.len() as u64,
            })?;
        Ok(match self.fat_type {
            FatType::Fat12 => {
                let v = u32::from(u16::from_le_bytes([b[0], b[1]]));
                if cluster & 1 == 1 {
                    v >> 4
                } else {
                    v & 0xFFF
                }
            }
            FatType::Fat16 => u32::from(u16::from_le_bytes([b[0], b[1]])),
            FatType::Fat32 => u32::from_le_bytes([b[0], b[1], b[2], b[3]]) & 0x0FFF_FFFF,
        })
    }

    /// The clusters of the chain starting at `start`, each checked; stops with an error at a
    /// free, bad or out-of-range cluster or after more steps than there are clusters.
    pub fn chain(&self, start: u32) -> Chain<'_, 'a> {
        Chain {
            vol: self,
            start,
            next: Some(start),
            steps: 0,
        }
    }

    /// The root directory's entries.
    pub fn root(&self) -> DirIter<'_, 'a> {
        match self.fat_type {
            FatType::Fat32 => DirIter::new(self, Some(self.chain(self.bpb.root_clus)), Ok(&[]), 0),
            _ => {
                let fixed = slice(self.data, self.root_dir_offset, self.root_dir_bytes).ok_or(
                    ReadError::Truncated {
                        what: "root directory",
                        offset: self.root_dir_offset,
                        len: self.data.len() as u64,
                    },
                );
                DirIter::new(self, None, fixed, self.root_dir_offset)
            }
        }
    }

    /// The entries of a directory (`.` and `..` left out).
    pub fn read_dir(&self, dir: &DirEntry) -> Result<DirIter<'_, 'a>, ReadError> {
        if !dir.is_dir() {
            return Err(ReadError::NotADirectory {
                path: dir.name.clone(),
            });
        }
        if dir.first_cluster == 0 {
            // ".." of a first-level directory; a directory entry pointing at the root.
            return Ok(self.root());
        }
        Ok(DirIter::new(
            self,
            Some(self.chain(dir.first_cluster)),
            Ok(&[]),
            0,
        ))
    }

    /// The volume label: the root directory's label entry if it has one, else `BS_VolLab`
    /// (unless it is `NO NAME`); trailing spaces removed.
    pub fn volume_label(&self) -> Option<String> {
        let mut it = self.root();
        while let Some(Ok(_)) = it.next() {}
        let trim = |raw: &[u8; 11]| String::from_utf8_lossy(raw).trim_end().to_string();
        match it.label {
            Some(l) => Some(trim(&l)),
            None if self.bpb.bs_boot_sig == 0x29 && &self.bpb.bs_vol_lab != b"NO NAME    " => {
                Some(trim(&self.bpb.bs_vol_lab))
            }
            None => None,
        }
    }

    /// Every file and directory, depth first in directory order, with `/`-separated paths.
    /// Fails on loops, directories sharing clusters, nesting deeper than [`MAX_DEPTH`], and any
    /// read error on the way.
    pub fn walk(&self) -> Result<Vec<WalkEntry>, ReadError> {
        let mut out = Vec::new();
        let mut seen: HashSet<u32> = HashSet::new();
        if self.fat_type == FatType::Fat32 {
            for c in self.chain(self.bpb.root_clus) {
                seen.insert(c?);
            }
        }
        let mut stack: Vec<(String, DirIter<'_, 'a>)> = vec![(String::new(), self.root())];
        while let Some((prefix, mut it)) = stack.pop() {
            let Some(item) = it.next() else { continue };
            let entry = item?;
            let path = if prefix.is_empty() {
                entry.name.clone()
            } else {
                format!("{prefix}/{}", entry.name)
            };
            stack.push((prefix, it));
            if entry.is_dir() && entry.first_cluster != 0 {
                if stack.len() > MAX_DEPTH {
                    return Err(ReadError::TooDeep {
                        path,
                        max: MAX_DEPTH,
                    });
                }
                for c in self.chain(entry.first_cluster) {
                    if !seen.insert(c?) {
                        return Err(ReadError::DirectoryLoop {
                            path,
                            cluster: entry.first_cluster,
                        });
                    }
                }
                let sub = self.read_dir(&entry)?;
                out.push(WalkEntry {
                    path: path.clone(),
                    entry,
                });
                stack.push((path, sub));
            } else {
                out.push(WalkEntry { path, entry });
            }
        }
        Ok(out)
    }

    /// Finds a path (`/` or `\` separated, case-insensitive on long and short names).
    pub fn lookup(&self, path: &str) -> Result<DirEntry, ReadError> {
        let not_found = || ReadError::NotFound {
            path: path.to_string(),
        };
        let parts: Vec<&str> = path.split(['/', '\\']).filter(|p| !p.is_empty()).collect();
        let mut dir = self.root();
        let mut found: Option<DirEntry> = None;
        for (i, part) in parts.iter().enumerate() {
            if i > 0 {
                let d = found.take().ok_or_else(not_found)?;
                dir = self.read_dir(&d).map_err(|_| ReadError::NotADirectory {
                    path: path.to_string(),
                })?;
            }
            let up = part.to_uppercase();
            let mut hit = None;
            for e in dir.by_ref() {
                let e = e?;
                if e.name.to_uppercase() == up || e.short_name_string().to_uppercase() == up {
                    hit = Some(e);
                    break;
                }
            }
            found = Some(hit.ok_or_else(not_found)?);
        }
        found.ok_or_else(not_found)
    }

    /// A file's contents as borrowed runs of contiguous clusters, `DIR_FileSize` bytes in all.
    pub fn file_data(&self, entry: &DirEntry) -> FileData<'_, 'a> {
        FileData {
            vol: self,
            chain: (entry.file_size > 0).then(|| self.chain(entry.first_cluster)),
            remaining: u64::from(entry.file_size),
            size: u64::from(entry.file_size),
            name: entry.name.clone(),
            pending: None,
        }
    }

    /// A file's contents, copied. Allocates no more than the volume's size up front.
    pub fn read_file(&self, entry: &DirEntry) -> Result<Vec<u8>, ReadError> {
        let mut out = Vec::with_capacity((entry.file_size as usize).min(self.data.len()));
        for run in self.file_data(entry) {
            out.extend_from_slice(run?);
        }
        Ok(out)
    }
}

/// Iterator over a cluster chain; see [`FatVolume::chain`].
#[derive(Debug, Clone)]
pub struct Chain<'v, 'a> {
    vol: &'v FatVolume<'a>,
    start: u32,
    next: Option<u32>,
    steps: u32,
}

impl Iterator for Chain<'_, '_> {
    type Item = Result<u32, ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        let c = self.next.take()?;
        let max = self.vol.max_cluster();
        let start = self.start;
        if !(2..=max).contains(&c) {
            return Some(Err(ReadError::ClusterOutOfRange {
                start,
                cluster: c,
                max,
            }));
        }
        self.steps += 1;
        if self.steps > self.vol.cluster_count {
            return Some(Err(ReadError::ChainLoop { start }));
        }
        let e = match self.vol.fat_entry(c) {
            Ok(e) => e,
            Err(err) => return Some(Err(err)),
        };
        let bad = match self.vol.fat_type {
            FatType::Fat12 => 0xFF7,
            FatType::Fat16 => 0xFFF7,
            FatType::Fat32 => 0x0FFF_FFF7,
        };
        match e {
            0 => Some(Err(ReadError::BrokenChain {
                start,
                cluster: c,
                kind: "free",
            })),
            1 => Some(Err(ReadError::BrokenChain {
                start,
                cluster: c,
                kind: "reserved",
            })),
            e if e == bad => Some(Err(ReadError::BrokenChain {
                start,
                cluster: c,
                kind: "bad",
            })),
            e if e > bad => Some(Ok(c)), // end of chain
            e => {
                self.next = Some(e);
                Some(Ok(c))
            }
        }
    }
}

/// Iterator over a file's contents; see [`FatVolume::file_data`].
#[derive(Debug)]
pub struct FileData<'v, 'a> {
    vol: &'v FatVolume<'a>,
    chain: Option<Chain<'v, 'a>>,
    remaining: u64,
    size: u64,
    name: String,
    pending: Option<u32>,
}

impl<'a> Iterator for FileData<'_, 'a> {
    type Item = Result<&'a [u8], ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.remaining == 0 {
            return None;
        }
        let short = |this: &mut Self| {
            let available = this.size - this.remaining;
            this.remaining = 0;
            Some(Err(ReadError::ChainTooShort {
                path: this.name.clone(),
                size: this.size,
                available,
            }))
        };
        let Some(chain) = self.chain.as_mut() else {
            return short(self);
        };
        // Gather a run of consecutive clusters, up to what the file still needs.
        let first = match self.pending.take().map(Ok).or_else(|| chain.next()) {
            Some(Ok(c)) => c,
            Some(Err(e)) => {
                self.remaining = 0;
                return Some(Err(e));
            }
            None => return short(self),
        };
        let cs = self.vol.cluster_size;
        let mut count = 1u64;
        while count * cs < self.remaining {
            match chain.next() {
                Some(Ok(c)) if u64::from(c) == u64::from(first) + count => count += 1,
                Some(Ok(c)) => {
                    self.pending = Some(c);
                    break;
                }
                Some(Err(e)) => {
                    self.remaining = 0;
                    return Some(Err(e));
                }
                None => break,
            }
        }
        let len = (count * cs).min(self.remaining);
        let offset = self.vol.cluster_offset(first);
        match slice(self.vol.data, offset, len) {
            Some(run) => {
                self.remaining -= len;
                Some(Ok(run))
            }
            None => {
                self.remaining = 0;
                Some(Err(ReadError::Truncated {
                    what: "file data",
                    offset,
                    len: self.vol.data.len() as u64,
                }))
            }
        }
    }
}

/// Iterator over a directory's entries; see [`FatVolume::root`] and [`FatVolume::read_dir`].
#[derive(Debug)]
pub struct DirIter<'v, 'a> {
    vol: &'v FatVolume<'a>,
    chain: Option<Chain<'v, 'a>>,
    current: &'a [u8],
    base: u64,
    pos: usize,
    error: Option<ReadError>,
    done: bool,
    /// Long-name parts gathered so far: (expected next ordinal, checksum, units by ordinal).
    lfn: Option<(u8, u8, Vec<[u16; 13]>)>,
    label: Option<[u8; 11]>,
}

impl<'v, 'a> DirIter<'v, 'a> {
    fn new(
        vol: &'v FatVolume<'a>,
        chain: Option<Chain<'v, 'a>>,
        fixed: Result<&'a [u8], ReadError>,
        base: u64,
    ) -> Self {
        let (current, error) = match fixed {
            Ok(b) => (b, None),
            Err(e) => (&[][..], Some(e)),
        };
        DirIter {
            vol,
            chain,
            current,
            base,
            pos: 0,
            error,
            done: false,
            lfn: None,
            label: None,
        }
    }

    /// The next raw 32-byte entry and its offset.
    fn raw(&mut self) -> Option<Result<(&'a [u8], u64), ReadError>> {
        while self.pos + 32 > self.current.len() {
            let chain = self.chain.as_mut()?;
            match chain.next()? {
                Ok(c) => match self.vol.cluster(c) {
                    Ok(bytes) => {
                        self.current = bytes;
                        self.base = self.vol.cluster_offset(c);
                        self.pos = 0;
                    }
                    Err(e) => return Some(Err(e)),
                },
                Err(e) => return Some(Err(e)),
            }
        }
        let e = &self.current[self.pos..self.pos + 32];
        let off = self.base + self.pos as u64;
        self.pos += 32;
        Some(Ok((e, off)))
    }
}

impl Iterator for DirIter<'_, '_> {
    type Item = Result<DirEntry, ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(e) = self.error.take() {
            self.done = true;
            return Some(Err(e));
        }
        while !self.done {
            let (e, offset) = match self.raw() {
                None => break,
                Some(Err(err)) => {
                    self.done = true;
                    return Some(Err(err));
                }
                Some(Ok(x)) => x,
            };
            let attr = e[11];
            if e[0] == 0x00 {
                break; // end of directory
            }
            if e[0] == 0xE5 {
                self.lfn = None;
                continue;
            }
            if attr & 0x3F == ATTR_LONG_NAME {
                let ord = e[0];
                let seq = ord & 0x1F;
                let mut units = [0u16; 13];
                for (u, &p) in units.iter_mut().zip(LFN_UNIT_OFFSETS.iter()) {
                    *u = u16::from_le_bytes([e[p], e[p + 1]]);
                }
                if ord & 0x40 != 0 && (1..=20).contains(&seq) {
                    self.lfn = Some((seq, e[13], vec![units]));
                } else if let Some((expect, sum, parts)) = self.lfn.as_mut() {
                    if seq + 1 == *expect && seq >= 1 && *sum == e[13] {
                        *expect = seq;
                        parts.push(units);
                    } else {
                        self.lfn = None;
                    }
                }
                continue;
            }
            let mut short = [0u8; 11];
            short.copy_from_slice(&e[..11]);
            let lfn = self.lfn.take();
            if attr & ATTR_VOLUME_ID != 0 && attr & ATTR_DIRECTORY == 0 {
                if self.label.is_none() {
                    self.label = Some(short);
                }
                continue;
            }
            if &short == b".          " || &short == b"..         " {
                continue;
            }
            let long = lfn.and_then(|(expect, sum, parts)| {
                (expect == 1 && sum == lfn_checksum(&short)).then(|| {
                    let units: Vec<u16> = parts
                        .iter()
                        .rev()
                        .flat_map(|p| p.iter().copied())
                        .take_while(|&u| u != 0)
                        .collect();
                    char::decode_utf16(units)
                        .map(|r| r.unwrap_or(char::REPLACEMENT_CHARACTER))
                        .collect::<String>()
                })
            });
            let le16 = |at: usize| u16::from_le_bytes([e[at], e[at + 1]]);
            let hi = if self.vol.fat_type == FatType::Fat32 {
                u32::from(le16(20)) << 16
            } else {
                0
            };
            let nt_res = e[12];
            let has_long_name = long.as_ref().is_some_and(|l| !l.is_empty());
            return Some(Ok(DirEntry {
                name: long
                    .filter(|l| !l.is_empty())
                    .unwrap_or_else(|| format_short(&short, nt_res)),
                short_name: short,
                has_long_name,
                attr,
                nt_res,
                created: DosDateTime {
                    date: le16(16),
                    time: le16(14),
                    tenths: e[13],
                },
                modified: DosDateTime {
                    date: le16(24),
                    time: le16(22),
                    tenths: 0,
                },
                accessed_date: le16(18),
                first_cluster: hi | u32::from(le16(26)),
                file_size: u32::from_le_bytes([e[28], e[29], e[30], e[31]]),
                offset,
            }));
        }
        self.done = true;
        None
    }
}
