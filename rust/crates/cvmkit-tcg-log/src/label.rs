//! Human labels decoded from event data (UEFI structures from the TCG PC Client PFP §10.4 and the
//! UEFI specification). Every decoder is best-effort: malformed data yields `None` or a shorter
//! label, never a panic.


use crate::EventType;
use cvmkit_measure::{hex, Reader};

/// Labels longer than this many characters are cut and end in "…" (kernel command lines fit).
const MAX_LABEL_CHARS: usize = 2048;
/// Device-path nodes decoded before giving up.
const MAX_DEVICE_PATH_NODES: usize = 32;

const STARTUP_LOCALITY: &[u8; 16] = b"StartupLocality\0";

/// `EV_NO_ACTION` "StartupLocality": `TCG_EfiStartupLocalityEvent` = signature[16], locality u8.
pub(crate) fn startup_locality(event_type: EventType, data: &[u8]) -> Option<u8> {
    if event_type != EventType::EV_NO_ACTION || data.len() != 17 {
        return None;
    }
    data.strip_prefix(STARTUP_LOCALITY.as_slice())?
        .first()
        .copied()
}

pub(crate) fn label(event_type: EventType, data: &[u8]) -> Option<String> {
    let label = match event_type {
        EventType::EV_NO_ACTION => no_action(data),
        EventType::EV_SEPARATOR => separator(data),
        EventType::EV_EFI_VARIABLE_DRIVER_CONFIG
        | EventType::EV_EFI_VARIABLE_BOOT
        | EventType::EV_EFI_VARIABLE_BOOT2
        | EventType::EV_EFI_VARIABLE_AUTHORITY => variable(data),
        EventType::EV_EFI_BOOT_SERVICES_APPLICATION
        | EventType::EV_EFI_BOOT_SERVICES_DRIVER
        | EventType::EV_EFI_RUNTIME_SERVICES_DRIVER => image_load(data),
        EventType::EV_EFI_GPT_EVENT | EventType::EV_EFI_GPT_EVENT2 => gpt(data),
        EventType::EV_EFI_PLATFORM_FIRMWARE_BLOB => blob(data),
        EventType::EV_EFI_PLATFORM_FIRMWARE_BLOB2 | EventType::EV_EFI_HANDOFF_TABLES2 => {
            described(data)
        }
        EventType::EV_EFI_HANDOFF_TABLES => handoff_tables(data),
        EventType::EV_EVENT_TAG => tagged(data),
        EventType::EV_PLATFORM_CONFIG_FLAGS => td_shim_platform_info(data).or_else(|| text(data)),
        EventType::EV_POST_CODE | EventType::EV_S_CRTM_CONTENTS => {
            text(data).or_else(|| blob(data))
        }
        _ => text(data),
    }?;
    Some(clip(label))
}

fn clip(s: String) -> String {
    match s.char_indices().nth(MAX_LABEL_CHARS) {
        Some((cut, _)) => format!("{}…", &s[..cut]),
        None => s,
    }
}

/// `EFI_GUID` in registry format (the first three fields are little-endian).
pub(crate) fn guid(b: &[u8; 16]) -> String {
    format!(
        "{:08x}-{:04x}-{:04x}-{:02x}{:02x}-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
        u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
        u16::from_le_bytes([b[4], b[5]]),
        u16::from_le_bytes([b[6], b[7]]),
        b[8],
        b[9],
        b[10],
        b[11],
        b[12],
        b[13],
        b[14],
        b[15]
    )
}

/// A label must be printable and say something.
fn readable(s: &str) -> bool {
    s.chars().all(acceptable) && s.chars().any(char::is_alphanumeric)
}

fn acceptable(c: char) -> bool {
    !c.is_control() || matches!(c, '\t' | '\n' | '\r')
}

fn flatten_whitespace(s: &str) -> String {
    s.chars()
        .map(|c| {
            if matches!(c, '\t' | '\n' | '\r') {
                ' '
            } else {
                c
            }
        })
        .collect()
}

/// UTF-16LE up to the first NUL (or the end); `None` if empty, invalid or containing control
/// characters.
fn utf16(data: &[u8]) -> Option<String> {
    let units: Vec<u16> = data
        .chunks_exact(2)
        .map(|p| u16::from_le_bytes([p[0], p[1]]))
        .take_while(|&u| u != 0)
        .collect();
    let s = String::from_utf16(&units).ok()?;
    readable(&s).then(|| flatten_whitespace(&s))
}

/// UTF-8 (in practice ASCII) up to the first NUL; `None` if empty, invalid or binary.
fn utf8(data: &[u8]) -> Option<String> {
    let end = data.iter().position(|&b| b == 0).unwrap_or(data.len());
    let s = std::str::from_utf8(data.get(..end)?).ok()?;
    readable(s).then(|| flatten_whitespace(s))
}

/// A string in either encoding: UTF-16LE when it looks like it (an ASCII character followed by a
/// zero byte), otherwise UTF-8.
fn text(data: &[u8]) -> Option<String> {
    let looks_utf16 = data.len() >= 2 && data[0] != 0 && data[1] == 0;
    if looks_utf16 {
        if let Some(s) = utf16(data) {
            return Some(s);
        }
    }
    utf8(data)
}

fn no_action(data: &[u8]) -> Option<String> {
    if let Some(locality) = startup_locality(EventType::EV_NO_ACTION, data) {
        return Some(format!("StartupLocality {locality}"));
    }
    if let Ok(spec) = crate::spec_id::SpecIdEvent::parse(data, 0, 0) {
        let algs: Vec<String> = spec.algorithms().map(|a| a.to_string()).collect();
        return Some(format!("Spec ID Event03: {}", algs.join(", ")));
    }
    // SP800-155 Event3, NvIndexInstance, NvIndexDynamic, …: a 16-byte signature.
    let signature = data.get(..16).unwrap_or(data);
    let end = signature
        .iter()
        .position(|&b| b == 0)
        .unwrap_or(signature.len());
    let s = std::str::from_utf8(signature.get(..end)?).ok()?;
    (s.len() >= 4 && s.chars().all(|c| c.is_ascii_graphic() || c == ' ')).then(|| s.to_string())
}

fn separator(data: &[u8]) -> Option<String> {
    match <[u8; 4]>::try_from(data) {
        Ok(value) => {
            let value = u32::from_le_bytes(value);
            // PFP §3.3.2.2: 0 is the normal separator; 1 and 0xFFFFFFFF signal an error.
            let note = if matches!(value, 1 | 0xFFFF_FFFF) {
                " (error)"
            } else {
                ""
            };
            Some(format!("{value:#010x}{note}"))
        }
        Err(_) if data.len() <= 16 => Some(hex(data)),
        Err(_) => None,
    }
}

/// `UEFI_VARIABLE_DATA`: VariableName (GUID), UnicodeNameLength, VariableDataLength (UINT64s),
/// UnicodeName[], VariableData[].
fn variable(data: &[u8]) -> Option<String> {
    let mut r = Reader::new(data);
    let _vendor = r.array::<16>()?;
    let name_chars = r.u64()?;
    let data_len = r.u64()?;
    let name_bytes = r.bytes_claimed(name_chars.checked_mul(2)?)?;
    let name = utf16(name_bytes)?;
    // Some firmware logs a VariableDataLength longer than what follows; use what is there.
    let value = r.bytes_claimed(data_len).unwrap_or_else(|| r.rest());
    let detail = match name.as_str() {
        "SecureBoot" | "DeployedMode" | "AuditMode" | "SetupMode" if value.len() == 1 => {
            Some(format!("= {}", value[0]))
        }
        "BootOrder" if !value.is_empty() && value.len() % 2 == 0 && value.len() <= 64 => Some(
            value
                .chunks_exact(2)
                .map(|p| format!("{:04X}", u16::from_le_bytes([p[0], p[1]])))
                .collect::<Vec<_>>()
                .join(","),
        ),
        n if n.len() == 8 && n.starts_with("Boot") => load_option_description(value),
        _ => None,
    };
    Some(match detail {
        Some(detail) if detail.starts_with('=') => format!("{name} {detail}"),
        Some(detail) => format!("{name}: {detail}"),
        None => name,
    })
}

/// `EFI_LOAD_OPTION`: Attributes u32, FilePathListLength u16, Description (NUL-terminated UTF-16).
fn load_option_description(value: &[u8]) -> Option<String> {
    utf16(value.get(6..)?)
}

/// `UEFI_IMAGE_LOAD_EVENT`: ImageLocationInMemory, ImageLengthInMemory, ImageLinkTimeAddress,
/// LengthOfDevicePath (UINT64s), DevicePath[].
fn image_load(data: &[u8]) -> Option<String> {
    let mut r = Reader::new(data);
    let location = r.u64()?;
    let length = r.u64()?;
    let _link_time_address = r.u64()?;
    let path_len = r.u64()?;
    let path = r.bytes_claimed(path_len).unwrap_or_else(|| r.rest());
    match device_path(path) {
        Some(path) => Some(path),
        None => Some(format!("image at {location:#x} ({length} bytes)")),
    }
}

/// A UEFI device path rendered roughly as the UEFI shell does
/// (`PciRoot(0x0)/Pci(0x3,0x0)/Scsi(0x1,0x0)/HD(15,GPT,…)/\EFI\BOOT\BOOTX64.EFI`).
fn device_path(path: &[u8]) -> Option<String> {
    let mut r = Reader::new(path);
    let mut nodes: Vec<String> = Vec::new();
    while nodes.len() < MAX_DEVICE_PATH_NODES {
        let (Some(node_type), Some(sub_type), Some(len)) = (r.u8(), r.u8(), r.u16()) else {
            break;
        };
        if node_type == 0x7F {
            break; // End of Hardware Device Path
        }
        let Some(body) = usize::from(len).checked_sub(4).and_then(|n| r.bytes(n)) else {
            break;
        };
        nodes.push(device_path_node(node_type, sub_type, body));
    }
    (!nodes.is_empty()).then(|| nodes.join("/"))
}

fn device_path_node(node_type: u8, sub_type: u8, body: &[u8]) -> String {
    let mut r = Reader::new(body);
    let guid_at = |at: usize| -> Option<String> {
        let b: [u8; 16] = body.get(at..at + 16)?.try_into().ok()?;
        Some(guid(&b))
    };
    let decoded = match (node_type, sub_type) {
        // Hardware / PCI: Function, Device
        (0x01, 0x01) => (|| Some(format!("Pci({:#x},{:#x})", body.get(1)?, body.first()?)))(),
        // ACPI: _HID, _UID
        (0x02, 0x01) => (|| {
            let (hid, uid) = (r.u32()?, r.u32()?);
            Some(match hid {
                0x0A03_41D0 => format!("PciRoot({uid:#x})"),
                0x0A08_41D0 => format!("PcieRoot({uid:#x})"),
                _ => format!("Acpi({hid:#x},{uid:#x})"),
            })
        })(),
        // Messaging: SCSI (target, LUN), SATA, NVMe namespace, virtio / vendor
        (0x03, 0x02) => (|| Some(format!("Scsi({:#x},{:#x})", r.u16()?, r.u16()?)))(),
        (0x03, 0x12) => (|| {
            Some(format!(
                "Sata({:#x},{:#x},{:#x})",
                r.u16()?,
                r.u16()?,
                r.u16()?
            ))
        })(),
        (0x03, 0x17) => (|| Some(format!("NVMe({:#x})", r.u32()?)))(),
        // Media: hard drive (partition number, start, size, signature, format, signature type)
        (0x04, 0x01) => (|| {
            let number = r.u32()?;
            let (_start, _size) = (r.u64()?, r.u64()?);
            let signature = r.array::<16>()?;
            let (_format, sig_type) = (r.u8()?, r.u8()?);
            Some(match sig_type {
                2 => format!("HD({number},GPT,{})", guid(&signature)),
                1 => format!(
                    "HD({number},MBR,{:#010x})",
                    u32::from_le_bytes([signature[0], signature[1], signature[2], signature[3]])
                ),
                _ => format!("HD({number})"),
            })
        })(),
        (0x04, 0x04) => utf16(body),
        (0x04, 0x06) => guid_at(0).map(|g| format!("FvFile({g})")),
        (0x04, 0x07) => guid_at(0).map(|g| format!("Fv({g})")),
        (0x04, 0x08) => (|| Some(format!("Offset({:#x},{:#x})", r.u64()?, r.u64()?)))(),
        (0x01, 0x04) => guid_at(0).map(|g| format!("VenHw({g})")),
        (0x03, 0x0A) => guid_at(0).map(|g| format!("VenMsg({g})")),
        (0x04, 0x03) => guid_at(0).map(|g| format!("VenMedia({g})")),
        _ => None,
    };
    decoded.unwrap_or_else(|| format!("Path({node_type:#x},{sub_type:#x})"))
}

/// `UEFI_GPT_DATA`: EFI_PARTITION_TABLE_HEADER (92 bytes), NumberOfPartitions (UINT64),
/// Partitions[].
fn gpt(data: &[u8]) -> Option<String> {
    if data.get(..8)? != b"EFI PART" {
        return None;
    }
    let disk: [u8; 16] = data.get(56..72)?.try_into().ok()?;
    let mut r = Reader::at(data, 92);
    let label = match r.u64() {
        Some(count) => format!("GPT disk {}, {count} partitions", guid(&disk)),
        None => format!("GPT disk {}", guid(&disk)),
    };
    Some(label)
}

/// `UEFI_PLATFORM_FIRMWARE_BLOB`: BlobBase, BlobLength (UINT64s).
fn blob(data: &[u8]) -> Option<String> {
    let mut r = Reader::new(data);
    let (base, len) = (r.u64()?, r.u64()?);
    (r.remaining() == 0).then(|| format!("blob at {base:#x} ({len:#x} bytes)"))
}

/// `UEFI_PLATFORM_FIRMWARE_BLOB2` / `UEFI_HANDOFF_TABLE_POINTERS2`: a UINT8-sized description
/// first ("Fv(…)", "TdxTable", "ACPI DATA").
fn described(data: &[u8]) -> Option<String> {
    let mut r = Reader::new(data);
    let len = r.u8()?;
    r.bytes(usize::from(len)).and_then(utf8)
}

/// `UEFI_HANDOFF_TABLE_POINTERS`: NumberOfTables (UINT64), then EFI_CONFIGURATION_TABLE entries
/// (VendorGuid, VendorTable pointer).
fn handoff_tables(data: &[u8]) -> Option<String> {
    let mut r = Reader::new(data);
    let count = r.u64()?;
    let mut names = Vec::new();
    while names.len() < 8 {
        let Some(vendor) = r.array::<16>() else { break };
        let _pointer = r.u64();
        let g = guid(&vendor);
        names.push(match g.as_str() {
            "eb9d2d31-2d88-11d3-9a16-0090273fc14d" => "SMBIOS".to_string(),
            "f2fd1544-9794-4a2c-992e-e5bbcf20e394" => "SMBIOS3".to_string(),
            "8868e871-e4f1-11d3-bc22-0080c73c8881" => "ACPI 2.0".to_string(),
            "eb9d2d30-2d88-11d3-9a16-0090273fc14d" => "ACPI 1.0".to_string(),
            _ => g,
        });
    }
    Some(format!("{count} table(s): {}", names.join(", ")))
}

/// td-shim's `TD_SHIM_PLATFORM_INFO`: a NUL-padded descriptor[16] ("td_hob", "td_payload_info"),
/// info length (UINT32), info (the payload command line for "td_payload_info").
fn td_shim_platform_info(data: &[u8]) -> Option<String> {
    let descriptor = data.get(..16)?;
    if !descriptor.contains(&0) {
        return None;
    }
    let name = utf8(descriptor)?;
    let mut r = Reader::at(data, 16);
    let len = r.u32()?;
    let info = r.bytes_claimed(u64::from(len)).unwrap_or_else(|| r.rest());
    Some(match utf8(info) {
        Some(info) => format!("{name} {info}"),
        None => name,
    })
}

/// `TCG_PCClientTaggedEvent`: taggedEventID, taggedEventDataSize (UINT32s), taggedEventData[].
fn tagged(data: &[u8]) -> Option<String> {
    let mut r = Reader::new(data);
    let id = r.u32()?;
    let size = r.u32()?;
    let body = r.bytes_claimed(u64::from(size)).unwrap_or_else(|| r.rest());
    Some(match text(body) {
        Some(s) => s,
        None => format!("tag {id:#010x}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utf16z(s: &str) -> Vec<u8> {
        s.encode_utf16()
            .chain([0])
            .flat_map(u16::to_le_bytes)
            .collect()
    }

    fn variable_data(name: &str, value: &[u8]) -> Vec<u8> {
        let mut d = vec![0u8; 16];
        d.extend((name.len() as u64).to_le_bytes());
        d.extend((value.len() as u64).to_le_bytes());
        d.extend(name.encode_utf16().flat_map(u16::to_le_bytes));
        d.extend(value);
        d
    }

    #[test]
    fn text_labels() {
        let l = |t, d: &[u8]| label(t, d);
        assert_eq!(
            l(
                EventType::EV_EFI_ACTION,
                b"Calling EFI Application from Boot Option"
            )
            .as_deref(),
            Some("Calling EFI Application from Boot Option")
        );
        assert_eq!(
            l(EventType::EV_IPL, &utf16z(".linux")).as_deref(),
            Some(".linux")
        );
        assert_eq!(
            l(EventType::EV_IPL, b"grub_cmd [ xy = xy ]\0\0G").as_deref(),
            Some("grub_cmd [ xy = xy ]")
        );
        assert_eq!(l(EventType::EV_IPL, b"a\nb\0").as_deref(), Some("a b"));
        assert_eq!(l(EventType::EV_IPL, &[0xC3, 0x28]), None);
        assert_eq!(l(EventType::EV_IPL, &[1, 2, 3]), None);
        assert_eq!(l(EventType::EV_IPL, &[]), None);
        let long = "x".repeat(5000);
        assert_eq!(
            l(EventType::EV_IPL, long.as_bytes())
                .unwrap()
                .chars()
                .count(),
            MAX_LABEL_CHARS + 1
        );
    }

    #[test]
    fn structured_labels() {
        assert_eq!(
            label(EventType::EV_SEPARATOR, &[0; 4]).as_deref(),
            Some("0x00000000")
        );
        assert_eq!(
            label(EventType::EV_SEPARATOR, &[0xFF; 4]).as_deref(),
            Some("0xffffffff (error)")
        );
        assert_eq!(
            label(
                EventType::EV_EFI_VARIABLE_DRIVER_CONFIG,
                &variable_data("SecureBoot", &[1])
            )
            .as_deref(),
            Some("SecureBoot = 1")
        );
        assert_eq!(
            label(
                EventType::EV_EFI_VARIABLE_BOOT,
                &variable_data("BootOrder", &[1, 0, 2, 0])
            )
            .as_deref(),
            Some("BootOrder: 0001,0002")
        );
        let mut option = vec![1, 0, 0, 0, 0, 0];
        option.extend(utf16z("UEFI Misc Device"));
        assert_eq!(
            label(
                EventType::EV_EFI_VARIABLE_BOOT,
                &variable_data("Boot0001", &option)
            )
            .as_deref(),
            Some("Boot0001: UEFI Misc Device")
        );
        // A name length that overflows when doubled.
        let mut bad = vec![0u8; 16];
        bad.extend(u64::MAX.to_le_bytes());
        bad.extend(0u64.to_le_bytes());
        assert_eq!(label(EventType::EV_EFI_VARIABLE_BOOT, &bad), None);
        assert_eq!(
            startup_locality(EventType::EV_NO_ACTION, b"StartupLocality\0\x03"),
            Some(3)
        );
        assert_eq!(
            label(EventType::EV_NO_ACTION, b"StartupLocality\0\x03").as_deref(),
            Some("StartupLocality 3")
        );
        let mut blob2 = vec![9];
        blob2.extend(b"TdxTable\0");
        blob2.extend([0; 16]);
        assert_eq!(
            label(EventType::EV_EFI_HANDOFF_TABLES2, &blob2).as_deref(),
            Some("TdxTable")
        );
    }

    #[test]
    fn device_paths() {
        let mut dp = vec![0x02, 0x01, 12, 0];
        dp.extend(0x0A03_41D0u32.to_le_bytes());
        dp.extend(0u32.to_le_bytes());
        dp.extend([0x01, 0x01, 6, 0, 0, 3]);
        let file = utf16z("\\EFI\\BOOT\\BOOTX64.EFI");
        dp.extend([0x04, 0x04]);
        dp.extend(((file.len() + 4) as u16).to_le_bytes());
        dp.extend(&file);
        dp.extend([0x7F, 0xFF, 4, 0]);
        let mut data = Vec::new();
        for v in [0x1000u64, 0x2000, 0, dp.len() as u64] {
            data.extend(v.to_le_bytes());
        }
        data.extend(&dp);
        assert_eq!(
            label(EventType::EV_EFI_BOOT_SERVICES_APPLICATION, &data).as_deref(),
            Some("PciRoot(0x0)/Pci(0x3,0x0)/\\EFI\\BOOT\\BOOTX64.EFI")
        );
        // A node whose length is below the header size stops decoding.
        assert_eq!(device_path(&[0x04, 0x04, 1, 0, 0, 0]), None);
    }
}
