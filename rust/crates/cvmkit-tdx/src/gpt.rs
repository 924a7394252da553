//! `UEFI_GPT_DATA`: what the firmware measures (`EV_EFI_GPT_EVENT`, RTMR1) before it loads the
//! first image from a GPT disk.
//!
//! edk2's measure-boot library (`DxeTpm2MeasureBootLib`, `Tcg2MeasureGptTable`, also used for CC
//! measurement) reads the primary header at LBA 1 and the partition entry array, then hashes the
//! 92-byte `EFI_PARTITION_TABLE_HEADER`, a UINTN (u64) count of the entries whose type GUID is
//! not zero, and those entries (`SizeOfPartitionEntry` bytes each) in array order. The event
//! payloads of the GCE, trustee and COS logs in the fixtures have exactly this shape.
//!
//! Like edk2's measurement code, this reads the primary table without checking its CRC32s (a
//! disk whose primary table is damaged is still measured from it, while `PartitionDxe` falls back
//! to the backup); it checks the sizes edk2 sanitizes (`HeaderSize`, `SizeOfPartitionEntry`, the
//! array size).

use std::io::{Read, Seek, SeekFrom};

use crate::error::{label, TdxError};

/// Size of `EFI_PARTITION_TABLE_HEADER` as edk2 copies it into the event.
pub const GPT_HEADER_SIZE: usize = 92;
/// `"EFI PART"`.
pub const GPT_SIGNATURE: [u8; 8] = *b"EFI PART";
/// The largest partition entry array accepted (edk2 allocates it whole).
const MAX_ENTRY_ARRAY: u64 = 16 << 20;

fn gpt_error(name: Option<&str>, reason: impl Into<String>) -> TdxError {
    TdxError::Gpt {
        file: label(name),
        reason: reason.into(),
    }
}

/// The `UEFI_GPT_DATA` of the disk whose first bytes are `disk` (at least through the partition
/// entry array), with `sector_size`-byte logical blocks (512 for QEMU's default disks).
/// `name` names the disk in errors.
pub fn uefi_gpt_data(
    disk: &[u8],
    sector_size: u32,
    name: Option<&str>,
) -> Result<Vec<u8>, TdxError> {
    let mut cursor = std::io::Cursor::new(disk);
    uefi_gpt_data_from_reader(&mut cursor, sector_size, name)
}

/// Like [`uefi_gpt_data`], reading only the header and entry array from `disk`.
pub fn uefi_gpt_data_from_reader<R: Read + Seek>(
    disk: &mut R,
    sector_size: u32,
    name: Option<&str>,
) -> Result<Vec<u8>, TdxError> {
    if !(512..=65536).contains(&sector_size) || !sector_size.is_power_of_two() {
        return Err(gpt_error(
            name,
            format!("sector size {sector_size} is not a power of two from 512 to 65536"),
        ));
    }
    let ss = u64::from(sector_size);
    let mut lba1 = vec![0u8; sector_size as usize];
    read_at(disk, ss, &mut lba1).map_err(|e| gpt_error(name, format!("cannot read LBA 1: {e}")))?;
    if lba1[..8] != GPT_SIGNATURE {
        return Err(gpt_error(name, "no GPT header (\"EFI PART\") at LBA 1"));
    }
    let u32_at = |o: usize| u32::from_le_bytes(lba1[o..o + 4].try_into().unwrap_or([0; 4]));
    let u64_at = |o: usize| u64::from_le_bytes(lba1[o..o + 8].try_into().unwrap_or([0; 8]));
    let header_size = u32_at(12);
    if (header_size as usize) < GPT_HEADER_SIZE || u64::from(header_size) > ss {
        return Err(gpt_error(
            name,
            format!("GPT HeaderSize {header_size} is outside 92..={sector_size}"),
        ));
    }
    let entries_lba = u64_at(72);
    let count = u32_at(80);
    let entry_size = u32_at(84);
    if entry_size < 128 || entry_size % 8 != 0 {
        return Err(gpt_error(
            name,
            format!("SizeOfPartitionEntry {entry_size} is not a multiple of 8 of at least 128"),
        ));
    }
    let array_len = u64::from(count) * u64::from(entry_size);
    if array_len > MAX_ENTRY_ARRAY {
        return Err(gpt_error(
            name,
            format!("partition entry array of {array_len} bytes is implausibly large"),
        ));
    }
    let offset = entries_lba
        .checked_mul(ss)
        .ok_or_else(|| gpt_error(name, format!("PartitionEntryLBA {entries_lba} overflows")))?;
    let mut array = vec![0u8; array_len as usize];
    read_at(disk, offset, &mut array).map_err(|e| {
        gpt_error(
            name,
            format!("cannot read the {count} partition entries at LBA {entries_lba}: {e}"),
        )
    })?;
    let used: Vec<&[u8]> = array
        .chunks_exact(entry_size as usize)
        .filter(|e| e[..16].iter().any(|&b| b != 0))
        .collect();
    let mut data = Vec::with_capacity(GPT_HEADER_SIZE + 8 + used.len() * entry_size as usize);
    data.extend_from_slice(&lba1[..GPT_HEADER_SIZE]);
    data.extend_from_slice(&(used.len() as u64).to_le_bytes());
    for e in used {
        data.extend_from_slice(e);
    }
    Ok(data)
}

fn read_at<R: Read + Seek>(r: &mut R, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
    r.seek(SeekFrom::Start(offset))?;
    r.read_exact(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_disks_without_a_gpt() {
        assert!(uefi_gpt_data(&[0u8; 4096], 512, Some("d.img"))
            .unwrap_err()
            .to_string()
            .contains("d.img"));
        // Too short to hold LBA 1: the read fails (the io error's text follows).
        let short = uefi_gpt_data(&[0u8; 100], 512, None);
        assert!(
            matches!(&short, Err(TdxError::Gpt { file, reason })
                if file.is_empty() && reason.starts_with("cannot read LBA 1: ")),
            "{short:?}"
        );
        assert_eq!(
            uefi_gpt_data(&[0u8; 4096], 1000, None).unwrap_err(),
            TdxError::Gpt {
                file: String::new(),
                reason: "sector size 1000 is not a power of two from 512 to 65536".into(),
            }
        );
    }
}
