//! PCR 4: what OVMF measures while starting the UKI.

use std::borrow::Cow;

use cvmkit_pe::pe::{IMAGE_FILE_MACHINE_AMD64, IMAGE_FILE_MACHINE_I386};
use cvmkit_pe::PeFile;

use crate::pcr11::Located;
use crate::stub::StubBehaviour;
use crate::{
    register, Bank, BootPath, Error, EventOrigin, PredictedEvent, RegisterPrediction,
    EventType, PCR_BOOT_LOADER_CODE,
};

/// EDK2 `EFI_CALLING_EFI_APPLICATION`, measured without a NUL.
const CALLING_EFI_APPLICATION: &str = "Calling EFI Application from Boot Option";
/// EDK2 `EFI_RETURNING_FROM_EFI_APPLICATION`, measured without a NUL.
const RETURNING_FROM_EFI_APPLICATION: &str = "Returning from EFI Application from Boot Option";

fn action(bank: Bank, text: &str) -> PredictedEvent {
    PredictedEvent {
        label: text.to_string(),
        event_type: EventType::EV_EFI_ACTION,
        digest: bank.hash(text.as_bytes()),
        origin: EventOrigin::Firmware,
    }
}

pub(crate) fn parse_loaders(path: &BootPath) -> Result<Vec<PeFile<'_>>, Error> {
    match path {
        BootPath::RemovableMedia | BootPath::BootEntry => Ok(Vec::new()),
        BootPath::ChainLoaded { loaders } => loaders
            .iter()
            .enumerate()
            .map(|(index, l)| {
                PeFile::parse(l).map_err(|source| Error::LoaderNotPe { index, source })
            })
            .collect(),
    }
}

/// The buffer systemd-stub passes to `LoadImage()` (`.linux`, `VirtualSize` bytes from memory),
/// if the firmware measures it. Every stub refuses a `.linux` that is not a PE image
/// (`pe_kernel_info()`: "Bad kernel image"), so that is an error whatever the version.
pub(crate) fn kernel_load_image<'a>(
    pe: &PeFile<'a>,
    sections: &[Located],
    behaviour: &StubBehaviour,
    secure_boot: bool,
) -> Result<Option<Cow<'a, [u8]>>, Error> {
    let linux = sections
        .iter()
        .find(|l| l.name == ".linux")
        .ok_or(Error::NoLinux)?;
    let buffer = linux.content(pe);
    let kernel = PeFile::parse(&buffer).map_err(Error::LinuxNotPe)?;
    if !behaviour.kernel_load_image || secure_boot {
        return Ok(None);
    }
    // pe_kernel_info(): "Support for LINUX_INITRD_MEDIA_GUID was added in kernel stub 1.0";
    // older kernels are started through the EFI handover protocol, without LoadImage().
    let x86 = matches!(
        pe.file_header().machine,
        IMAGE_FILE_MACHINE_AMD64 | IMAGE_FILE_MACHINE_I386
    );
    if x86 && kernel.optional_header().major_image_version < 1 {
        return Ok(None);
    }
    drop(kernel);
    Ok(Some(buffer))
}

/// PCR 4 in `bank`.
pub(crate) fn predict(
    bank: Bank,
    uki: &PeFile<'_>,
    failed_boot_attempts: u32,
    loaders: &[PeFile<'_>],
    kernel: Option<&[u8]>,
) -> RegisterPrediction {
    // Tcg2Dxe OnReadyToBoot(): the first attempt measures the action and the separators of
    // PCRs 0-7; later ones "Returning from …" then "Calling …" again.
    let mut events = vec![
        action(bank, CALLING_EFI_APPLICATION),
        PredictedEvent {
            label: "separator".to_string(),
            event_type: EventType::EV_SEPARATOR,
            digest: bank.hash(&[0; 4]),
            origin: EventOrigin::Firmware,
        },
    ];
    for _ in 0..failed_boot_attempts {
        events.push(action(bank, RETURNING_FROM_EFI_APPLICATION));
        events.push(action(bank, CALLING_EFI_APPLICATION));
    }
    for (i, l) in loaders.iter().enumerate() {
        events.push(PredictedEvent {
            label: format!("boot loader {} Authenticode", i + 1),
            event_type: EventType::EV_EFI_BOOT_SERVICES_APPLICATION,
            digest: crate::authenticode(bank, l),
            origin: EventOrigin::Firmware,
        });
    }
    events.push(PredictedEvent {
        label: "UKI Authenticode".to_string(),
        event_type: EventType::EV_EFI_BOOT_SERVICES_APPLICATION,
        digest: crate::authenticode(bank, uki),
        origin: EventOrigin::Firmware,
    });
    if let Some(kernel) = kernel {
        // Parsed successfully by `kernel_load_image`.
        if let Ok(k) = PeFile::parse(kernel) {
            events.push(PredictedEvent {
                label: ".linux Authenticode".to_string(),
                event_type: EventType::EV_EFI_BOOT_SERVICES_APPLICATION,
                digest: crate::authenticode(bank, &k),
                origin: EventOrigin::Firmware,
            });
        }
    }
    register(PCR_BOOT_LOADER_CODE, bank, events)
}
