//! The TD HOB: the hand-off block list QEMU writes into the TDVF `TD_HOB` section, which TDVF
//! measures into RTMR0 as its first event (`EV_EFI_HANDOFF_TABLES2 "TdxTable"`).
//!
//! QEMU (`hw/i386/tdvf-hob.c`, the same in dstack's QEMU 9 tree and upstream QEMU 10.1) writes
//! a PHIT HOB (version 9, every memory field 0 but `EfiEndOfHobList`), one resource descriptor
//! per TDX RAM entry, then an end HOB. The RAM entries are QEMU's e820 RAM ranges (q35: below
//! 4 GiB `[0, below_4g)`, above `[4 GiB, 4 GiB + above_4g)`), each `TD_HOB` / `TEMP_MEM` section
//! of the firmware split out of them as an accepted range (`tdx_accept_ram_range`), sorted by
//! address. Accepted ranges are `EFI_RESOURCE_SYSTEM_MEMORY`, the rest
//! `EFI_RESOURCE_MEMORY_UNACCEPTED`; both with attributes PRESENT|INITIALIZED|TESTED (7).
//! TDVF hashes the list up to, not including, the end HOB.
//!
//! Checked against the TD HOB digests of real TDX guests: dstack's quotes at 2 GiB and 64 GiB
//! (`tdx-lite-getquote.json`, `quote-report.json`) and the trustee/Intel CCEL logs at 2, 8 and
//! 10 GiB, whose firmware has the same TDVF memory sections as Debian's OVMF.fd.

use cvmkit_ovmf::{TdvfSectionType, TdxMetadata};

use crate::error::{label, TdxError};

/// `EFI_HOB_TYPE_HANDOFF`.
const EFI_HOB_TYPE_HANDOFF: u16 = 0x0001;
/// `EFI_HOB_TYPE_RESOURCE_DESCRIPTOR`.
const EFI_HOB_TYPE_RESOURCE_DESCRIPTOR: u16 = 0x0003;
/// `EFI_HOB_HANDOFF_TABLE_VERSION`.
const EFI_HOB_HANDOFF_TABLE_VERSION: u32 = 9;
/// `EFI_RESOURCE_SYSTEM_MEMORY`.
const EFI_RESOURCE_SYSTEM_MEMORY: u32 = 0;
/// `EFI_RESOURCE_MEMORY_UNACCEPTED`.
const EFI_RESOURCE_MEMORY_UNACCEPTED: u32 = 7;
/// PRESENT | INITIALIZED | TESTED.
const TDVF_RESOURCE_ATTRIBUTES: u32 = 0x7;
/// Size of `EFI_HOB_HANDOFF_INFO_TABLE`.
const PHIT_SIZE: usize = 56;
/// Size of `EFI_HOB_RESOURCE_DESCRIPTOR`.
const RESOURCE_SIZE: usize = 48;
/// Size of the end-of-list `EFI_HOB_GENERIC_HEADER`.
const END_HOB_SIZE: usize = 8;

const FOUR_GIB: u64 = 1 << 32;

/// The guest RAM layout QEMU gives a q35 machine of `memory` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryLayout {
    /// RAM below 4 GiB, from address 0.
    pub below_4g: u64,
    /// RAM from 4 GiB up.
    pub above_4g: u64,
}

impl MemoryLayout {
    /// QEMU's q35 split (`pc_q35_init`): with at least 0xB000_0000 bytes of RAM, 2 GiB stay below
    /// 4 GiB; with less, everything does when it fits below 0xB000_0000.
    pub fn q35(memory: u64) -> MemoryLayout {
        let lowmem = if memory >= 0xB000_0000 {
            0x8000_0000
        } else {
            0xB000_0000
        };
        if memory >= lowmem {
            MemoryLayout {
                below_4g: lowmem,
                above_4g: memory - lowmem,
            }
        } else {
            MemoryLayout {
                below_4g: memory,
                above_4g: 0,
            }
        }
    }

    /// Total RAM.
    pub fn total(&self) -> u64 {
        self.below_4g.saturating_add(self.above_4g)
    }

    /// The e820 RAM ranges `[start, end)`.
    fn ram_ranges(&self) -> Vec<(u64, u64)> {
        let mut ranges = vec![(0, self.below_4g)];
        if self.above_4g > 0 {
            ranges.push((FOUR_GIB, FOUR_GIB.saturating_add(self.above_4g)));
        }
        ranges
    }
}

/// One TDX RAM entry: a range and whether the VMM accepted (added) it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct RamEntry {
    start: u64,
    end: u64,
    accepted: bool,
}

/// The TD HOB bytes TDVF measures (PHIT + resource descriptors, without the end HOB), for the
/// firmware's TDVF `metadata` and the guest `layout`. `name` names the firmware in errors.
pub fn td_hob(
    metadata: &TdxMetadata,
    name: Option<&str>,
    layout: MemoryLayout,
) -> Result<Vec<u8>, TdxError> {
    let file = label(name);
    let td_hob = metadata
        .sections
        .iter()
        .find(|s| s.section_type == TdvfSectionType::TdHob)
        .ok_or_else(|| TdxError::MissingSection {
            file: file.clone(),
            section: "TD_HOB",
            hint: "QEMU needs it to pass the memory map, and RTMR0 starts with its digest",
        })?;
    let mut entries: Vec<RamEntry> = layout
        .ram_ranges()
        .into_iter()
        .filter(|(s, e)| s < e)
        .map(|(start, end)| RamEntry {
            start,
            end,
            accepted: false,
        })
        .collect();
    for (index, section) in metadata.sections.iter().enumerate() {
        match section.section_type {
            TdvfSectionType::TdHob | TdvfSectionType::TempMem => {}
            TdvfSectionType::Bfv | TdvfSectionType::Cfv => continue,
            other => {
                return Err(TdxError::UnsupportedSection {
                    file,
                    index,
                    section: other.to_string(),
                    reason: "is not supported by QEMU (it accepts BFV, CFV, TD_HOB and TEMP_MEM)"
                        .to_owned(),
                })
            }
        }
        let start = section.memory_address;
        let end = start + section.memory_data_size; // checked by the metadata parser
        if start == end {
            continue;
        }
        accept(&mut entries, start, end).map_err(|()| TdxError::Memory {
            memory: layout.total(),
            reason: format!(
                "the firmware's {} section {start:#x}..{end:#x} is not inside one unaccepted RAM \
                 range of the guest (RAM below 4 GiB ends at {:#x})",
                section.section_type, layout.below_4g
            ),
        })?;
    }
    entries.sort_by_key(|e| e.start);

    let len = PHIT_SIZE + RESOURCE_SIZE * entries.len();
    if (len + END_HOB_SIZE) as u64 > td_hob.memory_data_size {
        return Err(TdxError::Memory {
            memory: layout.total(),
            reason: format!(
                "the TD HOB needs {} bytes but the TD_HOB section has {:#x}",
                len + END_HOB_SIZE,
                td_hob.memory_data_size
            ),
        });
    }
    let mut hob = Vec::with_capacity(len);
    // EFI_HOB_HANDOFF_INFO_TABLE
    hob.extend_from_slice(&EFI_HOB_TYPE_HANDOFF.to_le_bytes());
    hob.extend_from_slice(&(PHIT_SIZE as u16).to_le_bytes());
    hob.extend_from_slice(&[0; 4]); // Reserved
    hob.extend_from_slice(&EFI_HOB_HANDOFF_TABLE_VERSION.to_le_bytes());
    hob.extend_from_slice(&0u32.to_le_bytes()); // BootMode
    hob.extend_from_slice(&[0; 32]); // EfiMemoryTop/Bottom, EfiFreeMemoryTop/Bottom
    let end_of_hob_list = td_hob.memory_address + (len + END_HOB_SIZE) as u64;
    hob.extend_from_slice(&end_of_hob_list.to_le_bytes());
    for e in &entries {
        hob.extend_from_slice(&EFI_HOB_TYPE_RESOURCE_DESCRIPTOR.to_le_bytes());
        hob.extend_from_slice(&(RESOURCE_SIZE as u16).to_le_bytes());
        hob.extend_from_slice(&[0; 4]); // Reserved
        hob.extend_from_slice(&[0; 16]); // Owner
        let resource_type = if e.accepted {
            EFI_RESOURCE_SYSTEM_MEMORY
        } else {
            EFI_RESOURCE_MEMORY_UNACCEPTED
        };
        hob.extend_from_slice(&resource_type.to_le_bytes());
        hob.extend_from_slice(&TDVF_RESOURCE_ATTRIBUTES.to_le_bytes());
        hob.extend_from_slice(&e.start.to_le_bytes());
        hob.extend_from_slice(&(e.end - e.start).to_le_bytes());
    }
    debug_assert_eq!(hob.len(), len);
    Ok(hob)
}

/// Splits `[start, end)` out of the unaccepted entry that contains it, as QEMU's
/// `tdx_accept_ram_range` does; `Err` when no unaccepted entry contains the whole range.
fn accept(entries: &mut Vec<RamEntry>, start: u64, end: u64) -> Result<(), ()> {
    let i = entries
        .iter()
        .position(|e| !e.accepted && e.start <= start && end <= e.end)
        .ok_or(())?;
    let e = entries[i];
    entries[i] = RamEntry {
        start,
        end,
        accepted: true,
    };
    if e.start < start {
        entries.push(RamEntry {
            start: e.start,
            end: start,
            accepted: false,
        });
    }
    if end < e.end {
        entries.push(RamEntry {
            start: end,
            end: e.end,
            accepted: false,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn q35_layout_splits_at_the_pci_hole() {
        assert_eq!(
            MemoryLayout::q35(2 << 30),
            MemoryLayout {
                below_4g: 2 << 30,
                above_4g: 0
            }
        );
        assert_eq!(
            MemoryLayout::q35(0xA000_0000),
            MemoryLayout {
                below_4g: 0xA000_0000,
                above_4g: 0
            }
        );
        assert_eq!(
            MemoryLayout::q35(0xB000_0000),
            MemoryLayout {
                below_4g: 0x8000_0000,
                above_4g: 0x3000_0000
            }
        );
        assert_eq!(
            MemoryLayout::q35(4 << 30),
            MemoryLayout {
                below_4g: 2 << 30,
                above_4g: 2 << 30
            }
        );
    }

    #[test]
    fn accept_refuses_ranges_outside_unaccepted_ram() {
        let mut e = vec![RamEntry {
            start: 0,
            end: 0x1000_0000,
            accepted: false,
        }];
        assert_eq!(accept(&mut e, 0x80_0000, 0x80_6000), Ok(()));
        assert_eq!(accept(&mut e, 0x80_0000, 0x80_1000), Err(()));
        assert_eq!(accept(&mut e, 0x0fff_f000, 0x1000_1000), Err(()));
        assert_eq!(e.len(), 3);
    }
}
