//! Event records (`TCG_PCR_EVENT`, `TCG_PCR_EVENT2`), event types and measurement registers.

use std::fmt;

use crate::alg::{Digest, HashAlg};

/// An event type (`TCG_EVENTTYPE`, TCG PC Client Platform Firmware Profile §10.4.1).
///
/// The type is untrusted: it is not covered by the digest, so a verifier must not rely on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EventType(pub u32);

macro_rules! event_types {
    ($($(#[$doc:meta])* $name:ident = $value:expr;)*) => {
        impl EventType {
            $($(#[$doc])* pub const $name: EventType = EventType($value);)*

            /// The specification name (`"EV_SEPARATOR"`), or `None` for a type this crate does not
            /// know (vendor types such as dstack's `0x08000001`).
            pub fn name(self) -> Option<&'static str> {
                match self {
                    $(EventType::$name => Some(stringify!($name)),)*
                    _ => None,
                }
            }
        }
    };
}

event_types! {
    /// Pre-boot certificate (deprecated).
    EV_PREBOOT_CERT = 0x0000_0000;
    /// POST code, or a firmware blob / "ACPI DATA" string.
    EV_POST_CODE = 0x0000_0001;
    /// Reserved.
    EV_UNUSED = 0x0000_0002;
    /// Not extended: informational (Spec ID event, StartupLocality, SP800-155, NV index events).
    EV_NO_ACTION = 0x0000_0003;
    /// Separator between pre-OS and OS-present measurements.
    EV_SEPARATOR = 0x0000_0004;
    /// An ASCII action string.
    EV_ACTION = 0x0000_0005;
    /// A tagged event (`TCG_PCClientTaggedEvent`), for example systemd's LoadOptions and initrd.
    EV_EVENT_TAG = 0x0000_0006;
    /// Static CRTM contents.
    EV_S_CRTM_CONTENTS = 0x0000_0007;
    /// Static CRTM version string.
    EV_S_CRTM_VERSION = 0x0000_0008;
    /// CPU microcode.
    EV_CPU_MICROCODE = 0x0000_0009;
    /// Platform configuration flags (td-shim also uses it for its platform info).
    EV_PLATFORM_CONFIG_FLAGS = 0x0000_000A;
    /// Table of devices.
    EV_TABLE_OF_DEVICES = 0x0000_000B;
    /// A compact hash.
    EV_COMPACT_HASH = 0x0000_000C;
    /// Initial program loader: GRUB commands and files, systemd-stub sections, kernel command line.
    EV_IPL = 0x0000_000D;
    /// IPL partition data.
    EV_IPL_PARTITION_DATA = 0x0000_000E;
    /// Non-host code.
    EV_NONHOST_CODE = 0x0000_000F;
    /// Non-host configuration.
    EV_NONHOST_CONFIG = 0x0000_0010;
    /// Non-host information.
    EV_NONHOST_INFO = 0x0000_0011;
    /// Boot device events are omitted.
    EV_OMIT_BOOT_DEVICE_EVENTS = 0x0000_0012;
    /// POST code (PFP 1.06 form).
    EV_POST_CODE2 = 0x0000_0013;
    /// A UEFI variable read for driver configuration (`UEFI_VARIABLE_DATA`), e.g. SecureBoot, PK, db.
    EV_EFI_VARIABLE_DRIVER_CONFIG = 0x8000_0001;
    /// A boot variable (`UEFI_VARIABLE_DATA`): BootOrder, Boot####.
    EV_EFI_VARIABLE_BOOT = 0x8000_0002;
    /// An EFI application loaded by boot services (`UEFI_IMAGE_LOAD_EVENT`): Authenticode digest.
    EV_EFI_BOOT_SERVICES_APPLICATION = 0x8000_0003;
    /// A boot services driver (`UEFI_IMAGE_LOAD_EVENT`).
    EV_EFI_BOOT_SERVICES_DRIVER = 0x8000_0004;
    /// A runtime services driver (`UEFI_IMAGE_LOAD_EVENT`).
    EV_EFI_RUNTIME_SERVICES_DRIVER = 0x8000_0005;
    /// The GPT of the boot disk (`UEFI_GPT_DATA`).
    EV_EFI_GPT_EVENT = 0x8000_0006;
    /// An ASCII action string ("Calling EFI Application from Boot Option", "Exit Boot Services …").
    EV_EFI_ACTION = 0x8000_0007;
    /// A firmware volume (`UEFI_PLATFORM_FIRMWARE_BLOB`).
    EV_EFI_PLATFORM_FIRMWARE_BLOB = 0x8000_0008;
    /// Configuration tables handed to the OS (`UEFI_HANDOFF_TABLE_POINTERS`).
    EV_EFI_HANDOFF_TABLES = 0x8000_0009;
    /// A described firmware blob (`UEFI_PLATFORM_FIRMWARE_BLOB2`).
    EV_EFI_PLATFORM_FIRMWARE_BLOB2 = 0x8000_000A;
    /// Described handoff tables (`UEFI_HANDOFF_TABLE_POINTERS2`), e.g. TDX's "TdxTable" (TD HOB).
    EV_EFI_HANDOFF_TABLES2 = 0x8000_000B;
    /// A boot variable measured in full (`UEFI_VARIABLE_DATA`).
    EV_EFI_VARIABLE_BOOT2 = 0x8000_000C;
    /// A GPT (PFP 1.06 form).
    EV_EFI_GPT_EVENT2 = 0x8000_000D;
    /// The H-CRTM event ("HCRTM").
    EV_EFI_HCRTM_EVENT = 0x8000_0010;
    /// The certificate a UEFI image was verified against (`UEFI_VARIABLE_DATA`).
    EV_EFI_VARIABLE_AUTHORITY = 0x8000_00E0;
    /// SPDM firmware blob.
    EV_EFI_SPDM_FIRMWARE_BLOB = 0x8000_00E1;
    /// SPDM firmware configuration.
    EV_EFI_SPDM_FIRMWARE_CONFIG = 0x8000_00E2;
    /// SPDM device policy.
    EV_EFI_SPDM_DEVICE_POLICY = 0x8000_00E3;
    /// SPDM device authority.
    EV_EFI_SPDM_DEVICE_AUTHORITY = 0x8000_00E4;
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "{:#010x}", self.0),
        }
    }
}

/// The register an event is extended into.
///
/// In a TPM log the record's PCRIndex is the PCR. In a CCEL (TDX) log the record's index is the
/// "MR index": 0 is MRTD (measured by the TDX module at build time, never extended from the log),
/// and *n* ≥ 1 is RTMR *n*−1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Register {
    /// A TPM PCR.
    Pcr(u32),
    /// TDX MRTD (CCEL MR index 0).
    Mrtd,
    /// A TDX runtime measurement register (CCEL MR index *n* → RTMR *n*−1).
    Rtmr(u32),
}

impl fmt::Display for Register {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Register::Pcr(n) => write!(f, "PCR{n}"),
            Register::Mrtd => f.write_str("MRTD"),
            Register::Rtmr(n) => write!(f, "RTMR{n}"),
        }
    }
}

/// Which record layout an event was read from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RecordFormat {
    /// `TCG_PCR_EVENT`: one SHA-1 digest. The first record of every log, and every record of a
    /// legacy (TPM 1.2 style) log.
    PcrEvent,
    /// `TCG_PCR_EVENT2`: a `TPML_DIGEST_VALUES` list (crypto-agile).
    PcrEvent2,
}

/// One event record.
///
/// `index` counts records from 0 in file order. In a crypto-agile log, record 0 is the Spec ID
/// event, so `index` matches go-eventlog's "event N" and the dstack tests' event numbers.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Event {
    /// Position in the log (0 = first record).
    pub index: usize,
    /// Byte offset of the record in the log.
    pub offset: usize,
    /// Length of the whole record in bytes.
    pub size: usize,
    /// The record layout.
    pub format: RecordFormat,
    /// `PCRIndex` as stored: a PCR for TPM logs, an MR index for CCEL logs.
    pub pcr_index: u32,
    /// The register `pcr_index` designates for the log's kind (see [`Register`]).
    pub register: Register,
    /// `EventType`.
    pub event_type: EventType,
    /// The digests (`TPML_DIGEST_VALUES`), in log order.
    pub digests: Vec<Digest>,
    /// The event data (`Event[EventSize]`).
    pub data: Vec<u8>,
}

impl Event {
    /// The digest for `alg`, if the record carries one.
    pub fn digest(&self, alg: HashAlg) -> Option<&Digest> {
        self.digests.iter().find(|d| d.alg() == alg)
    }

    /// Whether the event is extended (everything but `EV_NO_ACTION`).
    pub fn is_extended(&self) -> bool {
        self.event_type != EventType::EV_NO_ACTION
    }

    /// A short human label decoded from the data where the format is known and cheap: the UEFI
    /// variable name, the image device path, an action or IPL string, the separator value, …
    /// `None` when nothing readable was found.
    pub fn label(&self) -> Option<String> {
        crate::label::label(self.event_type, &self.data)
    }

    /// For `EV_NO_ACTION` "StartupLocality" events, the locality from which TPM2_Startup ran.
    pub fn startup_locality(&self) -> Option<u8> {
        crate::label::startup_locality(self.event_type, &self.data)
    }
}

impl fmt::Display for Event {
    /// `event 12 @0x2181 PCR7 EV_SEPARATOR 0x00000000`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "event {} @{:#x} {} {}",
            self.index, self.offset, self.register, self.event_type
        )?;
        if let Some(label) = self.label() {
            write!(f, " {label}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(
            EventType::EV_EFI_HANDOFF_TABLES2.to_string(),
            "EV_EFI_HANDOFF_TABLES2"
        );
        assert_eq!(EventType(0x0800_0001).to_string(), "0x08000001");
        assert_eq!(EventType(0x0800_0001).name(), None);
        assert_eq!(Register::Rtmr(2).to_string(), "RTMR2");
        assert_eq!(Register::Pcr(11).to_string(), "PCR11");
    }
}
