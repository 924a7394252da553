//! Digests of one UKI computed once for every platform predicted from it.
//!
//! A TPM prediction in three banks and a TDX prediction hash the same bytes: the UKI's
//! Authenticode, its `.linux` as `LoadImage()` sees it, each section systemd-stub measures — TDX
//! in SHA-384, which is also the TPM's SHA-384 bank. [`Uki::prefetch`] computes the union once,
//! each (bank, content) on its own job spread over the cores, largest first; the predictions
//! then find them in the [`DigestCache`]. The initrd the stub hands the kernel starts with the
//! `.initrd` section, so its hash continues from a copy of that section's hash state instead of
//! reading the section again. [`crate::read_streamed`] fills the same cache from the UKI's file
//! in one sequential pass, without holding the file in memory.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

use cvmkit_measure::{Bank, Hasher};

use crate::{Content, Image, Part, Uki};

/// What a cached digest is of (the UKI it belongs to is fixed by the cache).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Key {
    /// A located section: header index, bytes from the file, zero fill.
    Section(usize, usize, u64),
    /// The Authenticode digest of the UKI or of its `.linux`.
    Image(Image),
    /// The initrd systemd-stub hands the kernel.
    StubInitrd,
    /// The whole file (documents name their inputs by SHA-256).
    File,
    /// Not a digest: whether a file range held the bytes expected of it (see `KnownLinux`).
    Check,
}

/// Digests of one UKI's contents, shared by every [`Uki`] opened on the same bytes with
/// [`Uki::with_cache`]. A cache used with other bytes is ignored, never wrong.
#[derive(Debug, Default)]
pub struct DigestCache {
    /// Address and length of the UKI bytes the digests are of.
    owner: OnceLock<(usize, usize)>,
    map: Mutex<HashMap<(Bank, Key), Vec<u8>>>,
    computed: AtomicUsize,
    /// Filled from the file by [`crate::read_streamed`]: the bytes the cache belongs to do not
    /// hold the large contents, so a digest missing here cannot be computed from them.
    complete: AtomicBool,
    misses: AtomicUsize,
}

impl DigestCache {
    /// An empty cache.
    pub fn new() -> DigestCache {
        DigestCache::default()
    }

    /// Whether the cache belongs to `bytes` (claiming it on first use).
    pub(crate) fn owns(&self, bytes: &[u8]) -> bool {
        let id = (bytes.as_ptr() as usize, bytes.len());
        *self.owner.get_or_init(|| id) == id
    }

    pub(crate) fn get(&self, bank: Bank, key: Key) -> Option<Vec<u8>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner()).get(&(bank, key)).cloned()
    }

    pub(crate) fn put(&self, bank: Bank, key: Key, digest: Vec<u8>) {
        self.computed.fetch_add(1, Ordering::Relaxed);
        self.map.lock().unwrap_or_else(|e| e.into_inner()).insert((bank, key), digest);
    }

    /// The SHA-256 of the whole UKI `data` (a document's input digest), computed once.
    pub fn file_sha256(&self, data: &[u8]) -> Vec<u8> {
        if !self.owns(data) {
            return Bank::Sha256.hash(data);
        }
        if let Some(d) = self.get(Bank::Sha256, Key::File) {
            return d;
        }
        self.missed();
        let d = Bank::Sha256.hash(data);
        self.put(Bank::Sha256, Key::File, d.clone());
        d
    }

    /// The SHA-256 of the whole UKI file, when a pass over it computed it.
    pub fn whole_file_sha256(&self) -> Option<Vec<u8>> {
        self.get(Bank::Sha256, Key::File)
    }

    /// How many digests were computed into the cache: a prediction that finds everything it
    /// needs leaves it unchanged (tests show nothing is hashed twice).
    pub fn computed(&self) -> usize {
        self.computed.load(Ordering::Relaxed)
    }

    /// Marks the cache as holding every large digest of its UKI (see [`crate::read_streamed`]).
    pub(crate) fn set_complete(&self) {
        self.complete.store(true, Ordering::Relaxed);
    }

    /// Records a digest asked of a complete cache that it does not hold; true when complete.
    pub(crate) fn missed(&self) -> bool {
        let complete = self.complete.load(Ordering::Relaxed);
        if complete {
            self.misses.fetch_add(1, Ordering::Relaxed);
        }
        complete
    }

    /// How many digests predictions asked of a cache filled by [`crate::read_streamed`] that it
    /// did not hold: they were hashed from bytes not read, so a caller must refuse the results
    /// unless this is 0 (a bug, never the input's fault).
    pub fn misses(&self) -> usize {
        self.misses.load(Ordering::Relaxed)
    }

    /// How many digests are held.
    pub fn len(&self) -> usize {
        self.map.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Whether no digest is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One job of [`Uki::prefetch`].
enum Job {
    Image(Image, Bank),
    File,
    /// Every measured section in `bank`, and the stub's initrd when wanted.
    Sections(Bank, bool),
}

impl<'a> Uki<'a> {
    /// Computes, in parallel, the large digests the predictions of `banks` will ask for: the
    /// Authenticode of the UKI and of `.linux`, every measured section, and — in
    /// `initrd_banks` — the initrd the stub hands the kernel. Needs a cache
    /// ([`Uki::with_cache`]); without one it does nothing.
    pub fn prefetch(&self, banks: &[Bank], initrd_banks: &[Bank]) {
        let Some(cache) = self.cache.as_deref().filter(|c| c.owns(self.pe.data())) else {
            return;
        };
        let mut all: Vec<Bank> = Vec::new();
        for b in banks.iter().chain(initrd_banks) {
            if !all.contains(b) {
                all.push(*b);
            }
        }
        let linux = matches!(self.linux_load_image(false), Ok(Some(_)));
        let mut jobs = Vec::new();
        // Largest first (SHA-384/512 are the slow ones), so two cores finish together.
        all.sort_by_key(|b| std::cmp::Reverse(matches!(b, Bank::Sha384 | Bank::Sha512)));
        for &b in &all {
            jobs.push(Job::Image(Image::Uki, b));
            jobs.push(Job::Sections(b, initrd_banks.contains(&b)));
        }
        if linux {
            for &b in &all {
                jobs.push(Job::Image(Image::Linux, b));
            }
        }
        jobs.push(Job::File);
        let next = AtomicUsize::new(0);
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(jobs.len());
        std::thread::scope(|scope| {
            for _ in 0..threads {
                scope.spawn(|| {
                    while let Some(job) = jobs.get(next.fetch_add(1, Ordering::Relaxed)) {
                        match *job {
                            Job::Image(image, bank) => {
                                if let Some(content) = self.image_content(image) {
                                    let d = self.compute(&content, bank);
                                    cache.put(bank, Key::Image(image), d);
                                }
                            }
                            Job::Sections(bank, initrd) => self.prefetch_sections(cache, bank, initrd),
                            Job::File => {
                                cache.file_sha256(self.pe.data());
                            }
                        }
                    }
                });
            }
        });
    }

    /// The Authenticode content event of `image`, if the firmware measures one.
    fn image_content(&self, image: Image) -> Option<Content<'a>> {
        match image {
            Image::Uki => Some(Content::Authenticode(Image::Uki, std::borrow::Cow::Borrowed(self.pe.data()))),
            Image::Linux => match self.linux_load_image(false) {
                Ok(Some(buffer)) => Some(Content::Authenticode(Image::Linux, buffer)),
                _ => None,
            },
            Image::Loader => None,
        }
    }

    fn prefetch_sections(&self, cache: &DigestCache, bank: Bank, initrd: bool) {
        let parts = if initrd { self.stub_initrd_parts().ok().flatten() } else { None };
        let initrd_first = parts.as_ref().and_then(|p| match p.first() {
            Some(Part::Section(l)) if l.name == ".initrd" => Some(l.section.index),
            _ => None,
        });
        let mut shared = false;
        for l in &self.sections {
            let mut h = Hasher::new(bank);
            l.hash_content(&self.pe, &mut h);
            if Some(l.section.index) == initrd_first {
                // The stub's initrd is this section, then what it appends: continue a copy.
                let mut rest = h.clone();
                self.hash_parts(&parts.as_ref().expect("parts")[1..], &mut rest);
                cache.put(bank, Key::StubInitrd, rest.finalize());
                shared = true;
            }
            cache.put(bank, Key::Section(l.section.index, l.file_bytes, l.zero_fill), h.finalize());
        }
        if let (Some(parts), false) = (parts, shared) {
            let mut h = Hasher::new(bank);
            self.hash_parts(&parts, &mut h);
            cache.put(bank, Key::StubInitrd, h.finalize());
        }
    }
}
