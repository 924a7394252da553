//! The on-disk structures, with the UEFI spec's field names (UEFI 2.10 §5.2–5.3), and their
//! byte encodings. Parsing goes through [`Reader`], whose reads cannot panic.

use crate::{Guid, ReadError};
use cvmkit_measure::Reader;

/// Bytes per logical block. cvmkit writes and reads 512-byte-sector disks only.
pub const SECTOR_SIZE: u64 = 512;
/// `"EFI PART"`, the GPT header signature.
pub const GPT_SIGNATURE: [u8; 8] = *b"EFI PART";
/// `Revision` 1.0.
pub const GPT_REVISION: u32 = 0x0001_0000;
/// `HeaderSize` of the UEFI 2.x header.
pub const GPT_HEADER_SIZE: u32 = 92;
/// `SizeOfPartitionEntry` written by cvmkit.
pub const PARTITION_ENTRY_SIZE: u32 = 128;
/// `NumberOfPartitionEntries` written by cvmkit: the 16 KiB array every tool expects.
pub const PARTITION_ENTRY_COUNT: u32 = 128;
/// Sectors taken by the 128 × 128-byte entry array.
pub const ENTRY_ARRAY_SECTORS: u64 =
    (PARTITION_ENTRY_COUNT as u64 * PARTITION_ENTRY_SIZE as u64) / SECTOR_SIZE;
/// `OSType` of the protective MBR partition.
pub const MBR_PROTECTIVE_TYPE: u8 = 0xEE;
/// `0x55 0xAA` at offset 510 of the MBR.
pub const MBR_SIGNATURE: [u8; 2] = [0x55, 0xAA];
/// Largest entry array the reader accepts (1 MiB): larger ones are refused rather than hashed.
pub const MAX_ENTRY_ARRAY_BYTES: u64 = 1 << 20;

/// CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320), as the GPT header and entry array use.
pub fn crc32(data: &[u8]) -> u32 {
    const TABLE: [u32; 256] = {
        let mut t = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut c = i as u32;
            let mut k = 0;
            while k < 8 {
                c = if c & 1 != 0 {
                    0xEDB8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
                k += 1;
            }
            t[i] = c;
            i += 1;
        }
        t
    };
    let mut c = !0u32;
    for &b in data {
        c = TABLE[((c ^ u32::from(b)) & 0xFF) as usize] ^ (c >> 8);
    }
    !c
}

/// `data[offset..offset + len]` without the chance of a panic (offsets are u64 on a disk).
pub(crate) fn slice(data: &[u8], offset: u64, len: u64) -> Option<&[u8]> {
    cvmkit_measure::read::slice(data, usize::try_from(offset).ok()?, usize::try_from(len).ok()?)
}

/// A GPT header (UEFI spec table 5-5), primary (LBA 1) or backup (last LBA).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GptHeader {
    /// `Signature`: `"EFI PART"`.
    pub signature: [u8; 8],
    /// `Revision`: 0x00010000.
    pub revision: u32,
    /// `HeaderSize`: 92.
    pub header_size: u32,
    /// `HeaderCRC32`: CRC32 of the first `HeaderSize` bytes with this field zeroed.
    pub header_crc32: u32,
    /// `MyLBA`: the LBA of this header.
    pub my_lba: u64,
    /// `AlternateLBA`: the LBA of the other header.
    pub alternate_lba: u64,
    /// `FirstUsableLBA`.
    pub first_usable_lba: u64,
    /// `LastUsableLBA` (inclusive).
    pub last_usable_lba: u64,
    /// `DiskGUID`.
    pub disk_guid: Guid,
    /// `PartitionEntryLBA`: start of this header's entry array.
    pub partition_entry_lba: u64,
    /// `NumberOfPartitionEntries`.
    pub number_of_partition_entries: u32,
    /// `SizeOfPartitionEntry`.
    pub size_of_partition_entry: u32,
    /// `PartitionEntryArrayCRC32`.
    pub partition_entry_array_crc32: u32,
}

impl GptHeader {
    /// Decodes a header from the start of `sector` without validating it (see
    /// [`GptHeader::validate`]); `offset` is where `sector` starts in the image, for errors.
    pub fn parse(sector: &[u8], offset: u64) -> Result<GptHeader, ReadError> {
        let mut c = Reader::with_base(sector, offset);
        Ok(GptHeader {
            signature: c.array_named("GPT header Signature")?,
            revision: c.u32_named("GPT header Revision")?,
            header_size: c.u32_named("GPT header HeaderSize")?,
            header_crc32: c.u32_named("GPT header HeaderCRC32")?,
            my_lba: {
                c.u32_named("GPT header Reserved")?;
                c.u64_named("GPT header MyLBA")?
            },
            alternate_lba: c.u64_named("GPT header AlternateLBA")?,
            first_usable_lba: c.u64_named("GPT header FirstUsableLBA")?,
            last_usable_lba: c.u64_named("GPT header LastUsableLBA")?,
            disk_guid: c.guid_named("GPT header DiskGUID")?,
            partition_entry_lba: c.u64_named("GPT header PartitionEntryLBA")?,
            number_of_partition_entries: c.u32_named("GPT header NumberOfPartitionEntries")?,
            size_of_partition_entry: c.u32_named("GPT header SizeOfPartitionEntry")?,
            partition_entry_array_crc32: c.u32_named("GPT header PartitionEntryArrayCRC32")?,
        })
    }

    /// Checks what can be checked from the header sector alone: signature, revision,
    /// `HeaderSize`, `HeaderCRC32` (over `sector`) and `MyLBA == lba`. `which` names the header
    /// ("primary"/"backup") in errors.
    pub fn validate(&self, sector: &[u8], lba: u64, which: &'static str) -> Result<(), ReadError> {
        if self.signature != GPT_SIGNATURE {
            return Err(ReadError::BadSignature {
                which,
                lba,
                found: self.signature,
            });
        }
        if self.revision >> 16 != 1 {
            return Err(ReadError::BadRevision {
                which,
                lba,
                revision: self.revision,
            });
        }
        if self.header_size < GPT_HEADER_SIZE || u64::from(self.header_size) > SECTOR_SIZE {
            return Err(ReadError::BadHeaderSize {
                which,
                lba,
                size: self.header_size,
            });
        }
        let bytes = slice(sector, 0, u64::from(self.header_size)).ok_or(ReadError::Truncated {
            what: "GPT header",
            offset: lba.saturating_mul(SECTOR_SIZE),
            len: sector.len() as u64,
        })?;
        let mut copy = bytes.to_vec();
        copy[16..20].fill(0);
        let computed = crc32(&copy);
        if computed != self.header_crc32 {
            return Err(ReadError::HeaderCrcMismatch {
                which,
                lba,
                stored: self.header_crc32,
                computed,
            });
        }
        if self.my_lba != lba {
            return Err(ReadError::WrongMyLba {
                which,
                lba,
                my_lba: self.my_lba,
            });
        }
        Ok(())
    }

    /// Encodes the header into a 512-byte sector (zero after `HeaderSize`), computing
    /// `HeaderCRC32` over it; the stored [`GptHeader::header_crc32`] is ignored.
    pub fn to_sector(&self) -> [u8; 512] {
        let mut s = [0u8; 512];
        s[0..8].copy_from_slice(&self.signature);
        s[8..12].copy_from_slice(&self.revision.to_le_bytes());
        s[12..16].copy_from_slice(&self.header_size.to_le_bytes());
        // 16..20 HeaderCRC32, 20..24 Reserved
        s[24..32].copy_from_slice(&self.my_lba.to_le_bytes());
        s[32..40].copy_from_slice(&self.alternate_lba.to_le_bytes());
        s[40..48].copy_from_slice(&self.first_usable_lba.to_le_bytes());
        s[48..56].copy_from_slice(&self.last_usable_lba.to_le_bytes());
        s[56..72].copy_from_slice(&self.disk_guid.to_bytes_le());
        s[72..80].copy_from_slice(&self.partition_entry_lba.to_le_bytes());
        s[80..84].copy_from_slice(&self.number_of_partition_entries.to_le_bytes());
        s[84..88].copy_from_slice(&self.size_of_partition_entry.to_le_bytes());
        s[88..92].copy_from_slice(&self.partition_entry_array_crc32.to_le_bytes());
        let len = (self.header_size as usize).clamp(GPT_HEADER_SIZE as usize, 512);
        let crc = crc32(&s[..len]);
        s[16..20].copy_from_slice(&crc.to_le_bytes());
        s
    }

    /// Size of the entry array in bytes, if it does not overflow.
    pub fn entry_array_bytes(&self) -> Option<u64> {
        u64::from(self.number_of_partition_entries)
            .checked_mul(u64::from(self.size_of_partition_entry))
    }
}

/// A GPT partition entry (UEFI spec table 5-6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionEntry {
    /// `PartitionTypeGUID`; zero marks an unused entry.
    pub partition_type_guid: Guid,
    /// `UniquePartitionGUID`.
    pub unique_partition_guid: Guid,
    /// `StartingLBA`.
    pub starting_lba: u64,
    /// `EndingLBA` (inclusive).
    pub ending_lba: u64,
    /// `Attributes` (bit 0 required, bit 1 no block IO protocol, bit 2 legacy BIOS bootable,
    /// bits 48–63 type-specific).
    pub attributes: u64,
    /// `PartitionName`: 36 UTF-16LE code units, NUL-padded.
    pub partition_name: [u16; 36],
}

impl PartitionEntry {
    /// Decodes an entry from the first 128 bytes of `bytes`; `offset` is for errors.
    pub fn parse(bytes: &[u8], offset: u64) -> Result<PartitionEntry, ReadError> {
        let mut c = Reader::with_base(bytes, offset);
        let partition_type_guid = c.guid_named("partition entry PartitionTypeGUID")?;
        let unique_partition_guid = c.guid_named("partition entry UniquePartitionGUID")?;
        let starting_lba = c.u64_named("partition entry StartingLBA")?;
        let ending_lba = c.u64_named("partition entry EndingLBA")?;
        let attributes = c.u64_named("partition entry Attributes")?;
        let raw: [u8; 72] = c.array_named("partition entry PartitionName")?;
        let mut partition_name = [0u16; 36];
        for (i, unit) in partition_name.iter_mut().enumerate() {
            *unit = u16::from_le_bytes([raw[2 * i], raw[2 * i + 1]]);
        }
        Ok(PartitionEntry {
            partition_type_guid,
            unique_partition_guid,
            starting_lba,
            ending_lba,
            attributes,
            partition_name,
        })
    }

    /// Encodes the entry into 128 bytes.
    pub fn to_bytes(&self) -> [u8; 128] {
        let mut b = [0u8; 128];
        b[0..16].copy_from_slice(&self.partition_type_guid.to_bytes_le());
        b[16..32].copy_from_slice(&self.unique_partition_guid.to_bytes_le());
        b[32..40].copy_from_slice(&self.starting_lba.to_le_bytes());
        b[40..48].copy_from_slice(&self.ending_lba.to_le_bytes());
        b[48..56].copy_from_slice(&self.attributes.to_le_bytes());
        for (i, unit) in self.partition_name.iter().enumerate() {
            b[56 + 2 * i..58 + 2 * i].copy_from_slice(&unit.to_le_bytes());
        }
        b
    }

    /// Whether the entry is unused (zero `PartitionTypeGUID`).
    pub fn is_unused(&self) -> bool {
        self.partition_type_guid.is_zero()
    }

    /// The name up to the first NUL, with unpaired surrogates replaced by U+FFFD.
    pub fn name(&self) -> String {
        let len = self
            .partition_name
            .iter()
            .position(|&u| u == 0)
            .unwrap_or(36);
        char::decode_utf16(self.partition_name[..len].iter().copied())
            .map(|r| r.unwrap_or(char::REPLACEMENT_CHARACTER))
            .collect()
    }

    /// Number of sectors, `EndingLBA - StartingLBA + 1` (0 when reversed).
    pub fn sectors(&self) -> u64 {
        if self.ending_lba < self.starting_lba {
            0
        } else {
            (self.ending_lba - self.starting_lba).saturating_add(1)
        }
    }

    /// Byte offset of the partition in the disk.
    pub fn offset(&self) -> u64 {
        self.starting_lba.saturating_mul(SECTOR_SIZE)
    }

    /// Size of the partition in bytes.
    pub fn size(&self) -> u64 {
        self.sectors().saturating_mul(SECTOR_SIZE)
    }
}

/// Encodes `name` as a GPT `PartitionName` (UTF-16LE, at most 36 code units, no NUL).
pub fn encode_name(name: &str) -> Result<[u16; 36], crate::WriteError> {
    if name.contains('\0') {
        return Err(crate::WriteError::NameHasNul {
            name: name.to_string(),
        });
    }
    let units: Vec<u16> = name.encode_utf16().collect();
    if units.len() > 36 {
        return Err(crate::WriteError::NameTooLong {
            name: name.to_string(),
            units: units.len(),
        });
    }
    let mut out = [0u16; 36];
    out[..units.len()].copy_from_slice(&units);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn entry_round_trip_and_name() {
        let e = PartitionEntry {
            partition_type_guid: crate::ESP,
            unique_partition_guid: crate::seeded_guid("s", "p"),
            starting_lba: 2048,
            ending_lba: 4095,
            attributes: 1 << 63,
            partition_name: encode_name("EFI System Partition ü").unwrap(),
        };
        let back = PartitionEntry::parse(&e.to_bytes(), 0).unwrap();
        assert_eq!(back, e);
        assert_eq!(back.name(), "EFI System Partition ü");
        assert_eq!(back.size(), 1 << 20);
        assert_eq!(
            encode_name(&"x".repeat(37)),
            Err(crate::WriteError::NameTooLong {
                name: "x".repeat(37),
                units: 37
            })
        );
        assert!(encode_name(&"x".repeat(36)).is_ok());
        assert_eq!(
            encode_name("a\0b"),
            Err(crate::WriteError::NameHasNul {
                name: "a\0b".into()
            })
        );
    }
}
