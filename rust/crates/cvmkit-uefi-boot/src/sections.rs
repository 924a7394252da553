//! Where systemd-stub finds the sections it measures, and what it reads of them.

use cvmkit_measure::Hasher;
use cvmkit_pe::{PeFile, Section};

use crate::stub::StubBehaviour;
use crate::BootError as Error;

/// The most zero fill (`VirtualSize` beyond `SizeOfRawData`) accepted in a measured section,
/// so that a crafted header cannot make a prediction hash or allocate gigabytes. Kernels need a
/// few MiB (their `SizeOfImage` over the file size, when ukify gives `.linux` that size).
pub const MAX_ZERO_FILL: u64 = 256 << 20;

/// A section the stub measures, with what it reads from memory.
#[derive(Debug, Clone, Copy)]
pub struct Located {
    /// The name in the stub's list (not necessarily the header's name: 252 matches prefixes).
    pub name: &'static str,
    /// The section header it was found at.
    pub section: Section,
    /// Bytes of raw data in memory: `min(SizeOfRawData, VirtualSize)`.
    pub file_bytes: usize,
    /// Zero bytes the loader adds after them, up to `VirtualSize`.
    pub zero_fill: u64,
}

/// Does the 8-byte header name match `name` the way this stub compares?
fn name_matches(section: &Section, name: &str, prefix: bool) -> bool {
    if prefix {
        // memcmp(sect->Name, name, strlen(name)): names are at most 8 bytes.
        section.header.name.get(..name.len()) == Some(name.as_bytes())
    } else {
        section.header.name_bytes() == name.as_bytes()
    }
}

/// Finds the sections `behaviour` measures, in its order, checking they load as the stub sees
/// them. `.linux` must be among them.
pub(crate) fn locate(
    pe: &PeFile<'_>,
    behaviour: &StubBehaviour,
    version: u32,
    profile: Option<u32>,
) -> Result<Vec<Located>, Error> {
    let table = pe.sections();
    let mut found: Vec<Option<&Section>> = vec![None; behaviour.sections.len()];
    if behaviour.prefix_last_wins {
        if let Some(profile) = profile {
            return Err(Error::ProfilesUnsupported { profile, version });
        }
        for s in table {
            for (i, name) in behaviour.sections.iter().enumerate() {
                if name_matches(s, name, true) {
                    found[i] = Some(s);
                }
            }
        }
    } else {
        // Base sections run up to the first `.profile`; profile n from the n-th `.profile` (which
        // it includes) up to the next.
        let starts: Vec<usize> = table
            .iter()
            .enumerate()
            .filter(|(_, s)| name_matches(s, ".profile", false))
            .map(|(i, _)| i)
            .collect();
        let base_end = starts.first().copied().unwrap_or(table.len());
        let mut lookup = |range: std::ops::Range<usize>| {
            for (i, name) in behaviour.sections.iter().enumerate() {
                if let Some(s) = table[range.clone()]
                    .iter()
                    .find(|s| name_matches(s, name, false))
                {
                    found[i] = Some(s);
                }
            }
        };
        lookup(0..base_end);
        let wanted = profile.unwrap_or(0);
        match starts.get(wanted as usize) {
            Some(&start) => {
                let end = starts
                    .get(wanted as usize + 1)
                    .copied()
                    .unwrap_or(table.len());
                lookup(start..end);
            }
            // "The first profile is implied if it doesn't exist."
            None if wanted == 0 => {}
            None => {
                return Err(Error::ProfileNotFound {
                    profile: wanted,
                    available: starts.len(),
                })
            }
        }
    }

    let size_of_image = pe.optional_header().size_of_image;
    let mut located = Vec::new();
    for (name, s) in behaviour.sections.iter().zip(found) {
        let Some(s) = s else { continue };
        let h = &s.header;
        if h.virtual_size == 0 {
            continue; // "not found"
        }
        if matches!(*name, ".dtbauto" | ".efifw") {
            return Err(Error::HardwareDependentSection {
                name: name.to_string(),
                version,
            });
        }
        let end = u64::from(h.virtual_address) + u64::from(h.virtual_size);
        if end > u64::from(size_of_image) {
            return Err(Error::SectionOutsideImage {
                name: s.name().into_owned(),
                virtual_address: h.virtual_address,
                virtual_size: h.virtual_size,
                size_of_image,
            });
        }
        check_not_overwritten(pe, s)?;
        let raw = pe.section_data(s).map_err(Error::Pe)?;
        let file_bytes = raw.len().min(h.virtual_size as usize);
        let zero_fill = u64::from(h.virtual_size) - file_bytes as u64;
        if zero_fill > MAX_ZERO_FILL {
            return Err(Error::ZeroFillTooLarge {
                name: s.name().into_owned(),
                bytes: zero_fill,
            });
        }
        located.push(Located {
            name,
            section: *s,
            file_bytes,
            zero_fill,
        });
    }
    if !located.iter().any(|l| l.name == ".linux") {
        return Err(Error::NoLinux);
    }
    Ok(located)
}

/// The memory a section occupies once EDK2's PE loader has copied it: `VirtualSize` bytes, or
/// `SizeOfRawData` when `VirtualSize` is 0.
fn memory_range(s: &Section) -> (u64, u64) {
    let h = &s.header;
    let len = if h.virtual_size == 0 {
        h.size_of_raw_data
    } else {
        h.virtual_size
    };
    let start = u64::from(h.virtual_address);
    (start, start + u64::from(len))
}

/// Sections are copied in table order, so a later overlapping one changes what is measured.
fn check_not_overwritten(pe: &PeFile<'_>, s: &Section) -> Result<(), Error> {
    let (start, end) = memory_range(s);
    for later in &pe.sections()[s.index + 1..] {
        let (a, b) = memory_range(later);
        if a < end && start < b {
            return Err(Error::OverlappingSections {
                overwritten: s.name().into_owned(),
                by: later.name().into_owned(),
            });
        }
    }
    Ok(())
}

impl Located {
    /// The section as the stub sees it in memory, for hashing.
    pub fn hash_content(&self, pe: &PeFile<'_>, h: &mut Hasher) {
        // In bounds: `locate` read the raw data and cut `file_bytes` from it.
        let raw = pe.section_data(&self.section).unwrap_or_default();
        h.update(raw.get(..self.file_bytes).unwrap_or_default());
        h.update_zeros(self.zero_fill);
    }

    /// The content as one buffer (copies only when there is zero fill).
    pub fn content<'a>(&self, pe: &PeFile<'a>) -> std::borrow::Cow<'a, [u8]> {
        let raw = pe.section_data(&self.section).unwrap_or_default();
        let file = raw.get(..self.file_bytes).unwrap_or_default();
        if self.zero_fill == 0 {
            std::borrow::Cow::Borrowed(file)
        } else {
            let mut v = Vec::with_capacity(file.len() + self.zero_fill as usize);
            v.extend_from_slice(file);
            v.resize(file.len() + self.zero_fill as usize, 0);
            std::borrow::Cow::Owned(v)
        }
    }
}

