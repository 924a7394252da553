//! RTMR0: the firmware's configuration, as TDVF measures it.
//!
//! Event order of an edk2-stable202302…202502 TDVF booted by QEMU (checked against the dstack
//! quotes, and the trustee and Intel CCEL logs of the fixtures, event by event):
//!
//! 1. TD HOB — `EV_EFI_HANDOFF_TABLES2 "TdxTable"`, SHA-384 of the HOB list ([`crate::td_hob`]);
//! 2. CFV — `EV_EFI_PLATFORM_FIRMWARE_BLOB2 "Fv(XXXXXXXX-…)"`, SHA-384 of the configuration
//!    firmware volume (the variable store) as it is in the image: the raw data of the TDVF CFV
//!    section;
//! 3. `SecureBoot`, `PK`, `KEK`, `db`, `dbx` (then `dbt` when present) —
//!    `EV_EFI_VARIABLE_DRIVER_CONFIG`, SHA-384 of the `UEFI_VARIABLE_DATA`;
//! 4. separator;
//! 5. QEMU's ACPI data — `EV_PLATFORM_CONFIG_FLAGS "ACPI DATA"`, SHA-384 of each fw_cfg file as
//!    downloaded: `etc/table-loader`, then each file the loader allocates, in its order
//!    (`etc/acpi/rsdp`, `etc/acpi/tables`, …);
//! 6. `BootOrder` and each `Boot####` it lists — `EV_EFI_VARIABLE_BOOT`, SHA-384 of the variable
//!    data only (edk2's `MeasureVariable`);
//! 7. a second separator, for firmware before edk2-stable202411 ([`SeparatorLayout`]).
//!
//! edk2-stable202505 and later add fw_cfg `BootMenu`/`bootorder`, SMBIOS and a second boot
//! option (dstack PR #678); those are not modelled: pass captured values
//! ([`Rtmr0Source::Captured`]) for such firmware, or for clouds whose firmware is not public.

use std::collections::BTreeMap;

use cvmkit_ovmf::{Firmware, TdvfSectionType, TdxMetadata};

use crate::error::{label, TdxError};
use crate::event::{Digest384, Event, EventType, Register};
use crate::profile::{OvmfProfile, SeparatorLayout};
use crate::tdhob::{td_hob, MemoryLayout};
use crate::uefi::{
    uefi_variable_data, LoadOption, EFI_GLOBAL_VARIABLE, EFI_IMAGE_SECURITY_DATABASE_GUID,
};

/// Where RTMR0 comes from.
#[derive(Debug, Clone)]
pub enum Rtmr0Source<'a> {
    /// Not known: no ACPI tables and no captured value. The prediction has no RTMR0, rather
    /// than a value the VM will not report.
    Unknown,
    /// Computed from the platform inputs.
    Computed(Rtmr0Inputs<'a>),
    /// Captured on a real VM of the same shape (e.g. GCP, whose firmware and ACPI tables are not
    /// public): the register value, and the event digests when known (they are checked to fold to
    /// `value`). See [`crate::Captured`] to read them from JSON.
    Captured {
        /// The RTMR0 value.
        value: Digest384,
        /// The events, in order; may be empty.
        events: Vec<Event>,
    },
}

impl Rtmr0Source<'_> {
    /// A captured register: its value and events (possibly none).
    pub fn captured(register: Register) -> Rtmr0Source<'static> {
        Rtmr0Source::Captured {
            value: register.value,
            events: register.events,
        }
    }
}

/// Where the TD HOB comes from.
#[derive(Debug, Clone, Default)]
pub enum TdHobSource<'a> {
    /// Built as QEMU builds it, from the firmware's TDVF sections and the memory size.
    #[default]
    Build,
    /// The measured HOB bytes, e.g. dumped from a guest (PHIT to the last resource descriptor).
    Bytes(&'a [u8]),
}

/// The UEFI Secure Boot variables TDVF measures, each as its data (empty when the variable does
/// not exist).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SecureBootVariables<'a> {
    /// `SecureBoot`: empty when absent (builds without Secure Boot support), `[0]` in setup
    /// mode, `[1]` when enforcing.
    pub secure_boot: &'a [u8],
    /// `PK` (an `EFI_SIGNATURE_LIST` sequence).
    pub pk: &'a [u8],
    /// `KEK`.
    pub kek: &'a [u8],
    /// `db`.
    pub db: &'a [u8],
    /// `dbx`.
    pub dbx: &'a [u8],
    /// `dbt`, measured only when present.
    pub dbt: Option<&'a [u8]>,
}

impl SecureBootVariables<'static> {
    /// No Secure Boot support in the build: every variable absent (dstack's OVMF).
    pub const fn absent() -> SecureBootVariables<'static> {
        SecureBootVariables {
            secure_boot: &[],
            pk: &[],
            kek: &[],
            db: &[],
            dbx: &[],
            dbt: None,
        }
    }

    /// Secure Boot supported but no keys enrolled: `SecureBoot` = 0, the rest absent (the Intel
    /// sample logs).
    pub const fn setup_mode() -> SecureBootVariables<'static> {
        SecureBootVariables {
            secure_boot: &[0],
            ..SecureBootVariables::absent()
        }
    }
}

/// One fw_cfg blob measured as `"ACPI DATA"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcpiBlob<'a> {
    /// The fw_cfg file name, e.g. `etc/acpi/tables`.
    pub name: String,
    /// Its contents as QEMU serves them (before the loader patches pointers and checksums).
    pub data: &'a [u8],
}

/// Size of one `BiosLinkerLoaderEntry` (QEMU `hw/acpi/bios-linker-loader.c`).
const LOADER_ENTRY_SIZE: usize = 128;
/// `BIOS_LINKER_LOADER_COMMAND_ALLOCATE`.
const LOADER_ALLOCATE: u32 = 1;
/// `BIOS_LINKER_LOADER_FILESZ`, the fixed size of file names in commands.
const LOADER_FILESZ: usize = 56;

/// The ACPI blobs in the order OVMF measures them: `etc/table-loader` first, then every file its
/// `ALLOCATE` commands name, in command order. `files` maps fw_cfg names to contents; each
/// allocated file must be there.
pub fn acpi_blobs<'a>(
    table_loader: &'a [u8],
    files: &BTreeMap<String, &'a [u8]>,
) -> Result<Vec<AcpiBlob<'a>>, TdxError> {
    let mut blobs = vec![AcpiBlob {
        name: "etc/table-loader".to_owned(),
        data: table_loader,
    }];
    if table_loader.len() % LOADER_ENTRY_SIZE != 0 {
        return Err(TdxError::TableLoader {
            reason: format!(
                "{} bytes is not a whole number of {LOADER_ENTRY_SIZE}-byte commands",
                table_loader.len()
            ),
        });
    }
    for (i, entry) in table_loader.chunks_exact(LOADER_ENTRY_SIZE).enumerate() {
        let command = u32::from_le_bytes([entry[0], entry[1], entry[2], entry[3]]);
        if command != LOADER_ALLOCATE {
            continue;
        }
        let raw = &entry[4..4 + LOADER_FILESZ];
        let end = raw.iter().position(|&b| b == 0).unwrap_or(LOADER_FILESZ);
        let name = std::str::from_utf8(&raw[..end]).map_err(|_| TdxError::TableLoader {
            reason: format!("command {i} allocates a file whose name is not UTF-8"),
        })?;
        let data = files.get(name).ok_or_else(|| TdxError::TableLoader {
            reason: format!("command {i} allocates fw_cfg file {name:?}, which was not given"),
        })?;
        blobs.push(AcpiBlob {
            name: name.to_owned(),
            data,
        });
    }
    Ok(blobs)
}

/// `BootOrder` and the `Boot####` variables, as BDS has them when the first boot option starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootVariables {
    /// `BootOrder`.
    pub boot_order: Vec<u16>,
    /// `Boot####` data by option number; options `boot_order` lists but this lacks are not
    /// measured (edk2 skips variables it cannot read).
    pub options: BTreeMap<u16, Vec<u8>>,
}

impl BootVariables {
    /// What OVMF has at ReadyToBoot when it boots a QEMU `-kernel`: `BootOrder` = `0000`, and
    /// `Boot0000` = its UiApp ([`LoadOption::ovmf_ui_app`]), before any device is enumerated.
    pub fn ovmf_direct_boot() -> BootVariables {
        BootVariables {
            boot_order: vec![0],
            options: BTreeMap::from([(0, LoadOption::ovmf_ui_app().to_bytes())]),
        }
    }

    /// The events, `BootOrder` first.
    pub fn events(&self) -> Vec<Event> {
        let order: Vec<u8> = self
            .boot_order
            .iter()
            .flat_map(|n| n.to_le_bytes())
            .collect();
        let mut events = vec![Event::hashed(
            "BootOrder",
            EventType::EV_EFI_VARIABLE_BOOT,
            &order,
        )];
        for n in &self.boot_order {
            if let Some(data) = self.options.get(n) {
                events.push(Event::hashed(
                    format!("Boot{n:04X}"),
                    EventType::EV_EFI_VARIABLE_BOOT,
                    data,
                ));
            }
        }
        events
    }
}

/// The platform inputs of RTMR0.
#[derive(Debug, Clone)]
pub struct Rtmr0Inputs<'a> {
    /// The TD HOB.
    pub td_hob: TdHobSource<'a>,
    /// The Secure Boot variables.
    pub secure_boot: SecureBootVariables<'a>,
    /// QEMU's ACPI blobs in measurement order ([`acpi_blobs`]); `None` is an error, since every
    /// QEMU TD has them (dump them from QEMU for the same machine shape).
    pub acpi: Option<Vec<AcpiBlob<'a>>>,
    /// `BootOrder` and `Boot####`.
    pub boot_variables: BootVariables,
}

impl Default for Rtmr0Inputs<'_> {
    /// Built TD HOB, Secure Boot variables absent, no ACPI tables (an error until given), the
    /// direct-boot boot variables.
    fn default() -> Self {
        Rtmr0Inputs {
            td_hob: TdHobSource::Build,
            secure_boot: SecureBootVariables::absent(),
            acpi: None,
            boot_variables: BootVariables::ovmf_direct_boot(),
        }
    }
}

/// The RTMR0 events of `firmware` for `inputs`, a guest of `layout`, firmware behaviour `ovmf`.
pub fn rtmr0_events(
    firmware: &Firmware<'_>,
    metadata: &TdxMetadata,
    layout: MemoryLayout,
    inputs: &Rtmr0Inputs<'_>,
    ovmf: &OvmfProfile,
) -> Result<Vec<Event>, TdxError> {
    let mut events = Vec::new();
    let hob = match inputs.td_hob {
        TdHobSource::Build => td_hob(metadata, firmware.name(), layout)?,
        TdHobSource::Bytes(b) => b.to_vec(),
    };
    events.push(Event::hashed(
        "TD HOB",
        EventType::EV_EFI_HANDOFF_TABLES2,
        &hob,
    ));
    events.push(Event::hashed(
        "CFV (variable store)",
        EventType::EV_EFI_PLATFORM_FIRMWARE_BLOB2,
        cfv(firmware, metadata)?,
    ));
    events.extend(secure_boot_events(&inputs.secure_boot));
    events.push(Event::separator());
    let acpi = inputs.acpi.as_ref().ok_or(TdxError::MissingInput {
        what: "ACPI tables",
        hint: "RTMR0 hashes QEMU's etc/table-loader, etc/acpi/rsdp and etc/acpi/tables: dump them \
               from QEMU for the same machine shape, or pass captured RTMR0 values",
    })?;
    for blob in acpi {
        events.push(Event::hashed(
            format!("ACPI DATA {}", blob.name),
            EventType::EV_PLATFORM_CONFIG_FLAGS,
            blob.data,
        ));
    }
    events.extend(inputs.boot_variables.events());
    if ovmf.separator == SeparatorLayout::Edk2Before202411 {
        events.push(Event::separator());
    }
    Ok(events)
}

/// The raw data of the firmware's CFV section: the bytes TDVF measures as the CFV event.
pub fn cfv<'a>(firmware: &Firmware<'a>, metadata: &TdxMetadata) -> Result<&'a [u8], TdxError> {
    let section = metadata
        .sections
        .iter()
        .find(|s| s.section_type == TdvfSectionType::Cfv)
        .ok_or_else(|| TdxError::MissingSection {
            file: label(firmware.name()),
            section: "CFV",
            hint: "RTMR0 measures the configuration firmware volume (the UEFI variable store)",
        })?;
    section
        .raw_data(firmware.data())
        .ok_or_else(|| TdxError::MissingSection {
            file: label(firmware.name()),
            section: "CFV",
            hint: "its raw data lies outside the image",
        })
}

/// The Secure Boot variable events in TdTcg2Dxe's order.
pub fn secure_boot_events(vars: &SecureBootVariables<'_>) -> Vec<Event> {
    let mut list = vec![
        ("SecureBoot", &EFI_GLOBAL_VARIABLE, vars.secure_boot),
        ("PK", &EFI_GLOBAL_VARIABLE, vars.pk),
        ("KEK", &EFI_GLOBAL_VARIABLE, vars.kek),
        ("db", &EFI_IMAGE_SECURITY_DATABASE_GUID, vars.db),
        ("dbx", &EFI_IMAGE_SECURITY_DATABASE_GUID, vars.dbx),
    ];
    if let Some(dbt) = vars.dbt {
        list.push(("dbt", &EFI_IMAGE_SECURITY_DATABASE_GUID, dbt));
    }
    list.into_iter()
        .map(|(name, guid, data)| {
            Event::hashed(
                name,
                EventType::EV_EFI_VARIABLE_DRIVER_CONFIG,
                &uefi_variable_data(guid, name, data),
            )
        })
        .collect()
}
