//! [`EventType`]: the `TCG_EVENTTYPE` of an event-log record.

use std::fmt;

/// An event type (`TCG_EVENTTYPE`, TCG PC Client Platform Firmware Profile §10.4.1).
///
/// In a log the type is untrusted: it is not covered by the digest, so a verifier must not rely
/// on it. `Display` prints the specification name, or the value as `0x%08x` when unnamed.
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

            /// The type a specification name stands for, as [`EventType::name`] spells it.
            pub fn from_name(name: &str) -> Option<EventType> {
                match name {
                    $(stringify!($name) => Some(EventType::$name),)*
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(EventType::EV_SEPARATOR.to_string(), "EV_SEPARATOR");
        assert_eq!(EventType::from_name("EV_EFI_ACTION"), Some(EventType(0x8000_0007)));
        assert_eq!(EventType(0x0800_0001).to_string(), "0x08000001");
        assert_eq!(EventType::from_name("EV_NOPE"), None);
    }
}
