//! UEFI encodings the firmware hashes: `UEFI_VARIABLE_DATA`, `EFI_LOAD_OPTION`, device paths,
//! UCS-2 strings.

use cvmkit_ovmf::Guid;

/// `EFI_GLOBAL_VARIABLE` (`SecureBoot`, `PK`, `KEK`, `BootOrder`, `Boot####`).
pub const EFI_GLOBAL_VARIABLE: Guid = Guid::from_fields(
    0x8be4_df61,
    0x93ca,
    0x11d2,
    [0xaa, 0x0d, 0x00, 0xe0, 0x98, 0x03, 0x2b, 0x8c],
);

/// `EFI_IMAGE_SECURITY_DATABASE_GUID` (`db`, `dbx`, `dbt`).
pub const EFI_IMAGE_SECURITY_DATABASE_GUID: Guid = Guid::from_fields(
    0xd719_b2cb,
    0x3d3a,
    0x4596,
    [0xa3, 0xbc, 0xda, 0xd0, 0x0e, 0x67, 0x65, 0x6f],
);

/// Name of the DXE firmware volume of OvmfPkg builds (`FvNameGuid` of `DXEFV` in
/// `OvmfPkg/OvmfPkgX64.fdf`), where UiApp lives.
pub const OVMF_DXEFV_NAME_GUID: Guid = Guid::from_fields(
    0x7cb8_bdc9,
    0xf8eb,
    0x4f34,
    [0xaa, 0xea, 0x3e, 0xe4, 0xaf, 0x65, 0x16, 0xa1],
);

/// `FILE_GUID` of edk2's UiApp (`MdeModulePkg/Application/UiApp/UiApp.inf`).
pub const UI_APP_FILE_GUID: Guid = Guid::from_fields(
    0x462c_aa21,
    0x7614,
    0x4503,
    [0x83, 0x6e, 0x8a, 0xb6, 0xf4, 0x66, 0x23, 0x31],
);

/// `LOAD_OPTION_ACTIVE`.
pub const LOAD_OPTION_ACTIVE: u32 = 0x0000_0001;
/// `LOAD_OPTION_HIDDEN`.
pub const LOAD_OPTION_HIDDEN: u32 = 0x0000_0008;
/// `LOAD_OPTION_CATEGORY_APP`.
pub const LOAD_OPTION_CATEGORY_APP: u32 = 0x0000_0100;

/// UTF-16LE code units of `s`, without a terminator.
pub fn utf16le(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

pub use cvmkit_uefi_boot::utf16le_nul;

/// `UEFI_VARIABLE_DATA` (TCG PC Client PFP §10.2.6): `VariableName` (the vendor GUID),
/// `UnicodeNameLength` (u64, characters, no NUL), `VariableDataLength` (u64), the name in UTF-16LE
/// without NUL, then the data. An absent variable is measured with no data.
pub fn uefi_variable_data(vendor: &Guid, name: &str, data: &[u8]) -> Vec<u8> {
    let name16 = utf16le(name);
    let mut v = Vec::with_capacity(32 + name16.len() + data.len());
    v.extend_from_slice(&vendor.to_bytes_le());
    v.extend_from_slice(&((name16.len() / 2) as u64).to_le_bytes());
    v.extend_from_slice(&(data.len() as u64).to_le_bytes());
    v.extend_from_slice(&name16);
    v.extend_from_slice(data);
    v
}

/// Device path node builders (UEFI spec §10.3).
pub mod device_path {
    use cvmkit_ovmf::Guid;

    fn node(kind: u8, subtype: u8, body: &[u8]) -> Vec<u8> {
        let len = (4 + body.len()) as u16;
        let mut v = vec![kind, subtype];
        v.extend_from_slice(&len.to_le_bytes());
        v.extend_from_slice(body);
        v
    }

    /// `Fv(GUID)`: media (4) / PIWG firmware volume (7).
    pub fn fv(name: &Guid) -> Vec<u8> {
        node(4, 7, &name.to_bytes_le())
    }

    /// `FvFile(GUID)`: media (4) / PIWG firmware file (6).
    pub fn fv_file(name: &Guid) -> Vec<u8> {
        node(4, 6, &name.to_bytes_le())
    }

    /// `VenMedia(GUID)`: media (4) / vendor (3).
    pub fn vendor_media(guid: &Guid) -> Vec<u8> {
        node(4, 3, &guid.to_bytes_le())
    }

    /// End of the entire device path (0x7f / 0xff).
    pub fn end() -> Vec<u8> {
        node(0x7f, 0xff, &[])
    }
}

/// An `EFI_LOAD_OPTION`, the data of a `Boot####` variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadOption {
    /// `Attributes` (`LOAD_OPTION_*`).
    pub attributes: u32,
    /// `Description`, measured as UTF-16LE with a NUL.
    pub description: String,
    /// `FilePathList`: the encoded device path(s), including the end node.
    pub file_path_list: Vec<u8>,
    /// `OptionalData`.
    pub optional_data: Vec<u8>,
}

impl LoadOption {
    /// The encoded variable data.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&self.attributes.to_le_bytes());
        v.extend_from_slice(&(self.file_path_list.len() as u16).to_le_bytes());
        v.extend_from_slice(&utf16le_nul(&self.description));
        v.extend_from_slice(&self.file_path_list);
        v.extend_from_slice(&self.optional_data);
        v
    }

    /// The `Boot0000` OVMF registers for its UiApp (`"UiApp"`, `Fv(7CB8BDC9-…)/FvFile(462CAA21-…)`,
    /// active, hidden, category app). Its data hashes to `23ada07f…`, the `Boot0000` digest of the
    /// OVMF direct-boot logs in the fixtures.
    pub fn ovmf_ui_app() -> LoadOption {
        let mut path = device_path::fv(&OVMF_DXEFV_NAME_GUID);
        path.extend(device_path::fv_file(&UI_APP_FILE_GUID));
        path.extend(device_path::end());
        LoadOption {
            attributes: LOAD_OPTION_ACTIVE | LOAD_OPTION_HIDDEN | LOAD_OPTION_CATEGORY_APP,
            description: "UiApp".to_owned(),
            file_path_list: path,
            optional_data: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variable_data_layout() {
        let v = uefi_variable_data(&EFI_GLOBAL_VARIABLE, "PK", &[]);
        assert_eq!(v.len(), 16 + 8 + 8 + 4);
        assert_eq!(&v[..4], &[0x61, 0xdf, 0xe4, 0x8b]);
        assert_eq!(&v[16..24], &2u64.to_le_bytes());
        assert_eq!(&v[32..], b"P\0K\0");
    }

    #[test]
    fn ui_app_option_is_62_bytes() {
        let b = LoadOption::ovmf_ui_app().to_bytes();
        assert_eq!(b.len(), 62);
        assert_eq!(&b[..6], &[0x09, 0x01, 0x00, 0x00, 44, 0]);
    }
}
