//! The UEFI boot path of a Unified Kernel Image, by layer, as events keyed by PCR index —
//! what OVMF's boot manager, systemd-stub and the kernel's EFI stub measure, independent of the
//! hash bank and of how a platform records it. A TPM projects the events onto its banks
//! (cvmkit-tpm: PCR 4 and PCR 11); TDX maps the PCRs onto RTMRs (cvmkit-tdx: PCR 4/5 → RTMR1,
//! PCR 9/11 → RTMR2, through `EFI_CC_MEASUREMENT_PROTOCOL`). One model, so a fix to one layer
//! (a new systemd-stub version, say) reaches every platform.
//!
//! - [`Uki::open`] finds the stub ([`stub`]: version from `.sdmagic`, its section list and
//!   lookup rules) and the sections it measures, as it sees them in memory.
//! - [`Uki::boot_manager_events`]: OVMF's boot manager starting the UKI from the boot disk —
//!   PCR 4 "Calling EFI Application from Boot Option", the ReadyToBoot separator, a
//!   "Returning …"/"Calling …" pair per failed boot option, PCR 5 `UEFI_GPT_DATA`, the
//!   Authenticode of each image `LoadImage()`d (boot loaders, the UKI, the `.linux` the stub
//!   loads), PCR 5 ExitBootServices.
//! - [`Uki::section_events`]: PCR 11, the stub's `EV_IPL` name/content pairs.
//! - [`Uki::kernel_stub_events`]: PCR 9, the kernel's EFI stub measuring `LoadOptions` (the
//!   stub's `.cmdline`) and the initrd the stub hands it.
//!
//! Events carry what is hashed ([`Content`]), not digests: [`Uki::digest`] hashes one in any
//! bank, streaming sections with their zero fill.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::borrow::Cow;
use std::sync::Arc;

use cvmkit_measure::{Bank, EventType, Hasher};
use cvmkit_pe::pe::{IMAGE_FILE_MACHINE_AMD64, IMAGE_FILE_MACHINE_I386};
use cvmkit_pe::PeFile;

mod cache;
mod error;
mod sections;
mod stream;
pub mod stub;

pub use cache::DigestCache;
pub use error::BootError;
pub use sections::{Located, MAX_ZERO_FILL};
pub use stream::{measure_written, read_streamed, read_streamed_with, KnownLinux, StreamedUki, BUFFERS, CHUNK};
pub use stub::{mangle_stub_cmdline, pcr11_sections, StubBehaviour, StubInfo, MIN_STUB_VERSION};

/// EDK2 `EFI_CALLING_EFI_APPLICATION`, measured without a NUL.
pub const CALLING_EFI_APPLICATION: &str = "Calling EFI Application from Boot Option";
/// EDK2 `EFI_RETURNING_FROM_EFI_APPLICATION`, measured without a NUL.
pub const RETURNING_FROM_EFI_APPLICATION: &str = "Returning from EFI Application from Boot Option";
/// EDK2 `EFI_EXIT_BOOT_SERVICES_INVOCATION`.
pub const EXIT_BOOT_SERVICES_INVOCATION: &str = "Exit Boot Services Invocation";
/// EDK2 `EFI_EXIT_BOOT_SERVICES_SUCCEEDED`.
pub const EXIT_BOOT_SERVICES_SUCCEEDED: &str = "Exit Boot Services Returned with Success";

/// Sections whose presence makes the initrd the stub hands the kernel depend on a profile or
/// on the hardware: not modelled for the kernel's initrd measurement.
const UNMODELLED_FOR_INITRD: [&str; 4] = [".profile", ".dtbauto", ".hwids", ".efifw"];

/// Which image an Authenticode event is of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Image {
    /// A boot loader started before the UKI.
    Loader,
    /// The UKI.
    Uki,
    /// The UKI's `.linux`, `LoadImage()`d by systemd-stub.
    Linux,
}

/// What an event hashes.
#[derive(Debug, Clone)]
pub enum Content<'a> {
    /// These bytes.
    Bytes(Cow<'a, [u8]>),
    /// A section of the UKI as the stub sees it in memory (streamed: kernels are large).
    Section(Located),
    /// The Authenticode image hash of this PE image (what firmware measures for `LoadImage()`).
    Authenticode(Image, Cow<'a, [u8]>),
    /// The initrd systemd-stub hands the kernel ([`Uki::stub_initrd`]), streamed from its parts.
    StubInitrd,
}

/// A piece of the initrd systemd-stub hands the kernel.
#[derive(Debug, Clone)]
pub(crate) enum Part<'a> {
    /// A measured section's content (with its zero fill).
    Section(Located),
    /// Bytes of the UKI, or generated.
    Bytes(Cow<'a, [u8]>),
    /// Padding.
    Zeros(u64),
}

/// Who measures an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Origin {
    /// The firmware's boot manager and image loader.
    Firmware,
    /// systemd-stub.
    Stub,
    /// The kernel's EFI stub.
    Kernel,
}

/// One measurement of the boot path.
#[derive(Debug, Clone)]
pub struct BootEvent<'a> {
    /// The PCR index the TCG PC Client profile assigns (4 boot manager code, 5 its data, 9 the
    /// kernel's, 11 systemd-stub's).
    pub pcr: u32,
    /// The event type the log records.
    pub event_type: EventType,
    /// What was measured, for people.
    pub label: String,
    /// What is hashed.
    pub content: Content<'a>,
    /// Who measures it.
    pub origin: Origin,
}

impl<'a> BootEvent<'a> {
    fn action(pcr: u32, text: &str) -> BootEvent<'a> {
        BootEvent {
            pcr,
            event_type: EventType::EV_EFI_ACTION,
            label: text.to_string(),
            content: Content::Bytes(Cow::Owned(text.as_bytes().to_vec())),
            origin: Origin::Firmware,
        }
    }

    /// Whether this is the ReadyToBoot separator (which TDX firmware places by version).
    pub fn is_separator(&self) -> bool {
        self.event_type == EventType::EV_SEPARATOR
    }
}

/// The Authenticode image hash of `pe` in `bank`'s algorithm, as firmware measures an image it
/// loads (no padding; see `cvmkit_pe::PeFile::authenticode`).
pub fn authenticode(bank: Bank, pe: &PeFile<'_>) -> Vec<u8> {
    use cvmkit_pe::sha2::{Sha256, Sha384, Sha512};
    match bank {
        Bank::Sha1 => pe.authenticode::<sha1::Sha1>(),
        Bank::Sha256 => pe.authenticode::<Sha256>(),
        Bank::Sha384 => pe.authenticode::<Sha384>(),
        Bank::Sha512 => pe.authenticode::<Sha512>(),
    }
}

/// UTF-16LE code units of `s` followed by a NUL code unit, as UEFI strings are measured.
pub fn utf16le_nul(s: &str) -> Vec<u8> {
    s.encode_utf16().chain([0]).flat_map(u16::to_le_bytes).collect()
}

/// What the firmware's boot manager does before the UKI runs.
#[derive(Debug, Clone, Default)]
pub struct BootManager<'a> {
    /// Boot options that failed before this one (QEMU's q35 tries its empty DVD drive first
    /// unless run with `-nodefaults`).
    pub failed_boot_attempts: u32,
    /// The boot disk's `UEFI_GPT_DATA`, measured before the first image from it; `None` when
    /// the platform does not model PCR 5.
    pub gpt_data: Option<Cow<'a, [u8]>>,
    /// Boot loaders started before the UKI (e.g. systemd-boot), the last of which
    /// `LoadImage()`s it; only their Authenticode is modelled.
    pub loaders: Vec<&'a [u8]>,
    /// UEFI Secure Boot is on: then systemd-stub < 258 starts `.linux` unmeasured.
    pub secure_boot: bool,
    /// The UKI's file name, for the label of its event.
    pub uki_name: Option<&'a str>,
}

/// A UKI with the stub that will run it and the sections that stub measures.
#[derive(Debug, Clone)]
pub struct Uki<'a> {
    /// The parsed image.
    pub pe: PeFile<'a>,
    /// The stub, as detected or given.
    pub stub: StubInfo,
    /// How that stub version behaves.
    pub behaviour: StubBehaviour,
    /// The sections it measures into PCR 11, in its order.
    pub sections: Vec<Located>,
    /// Digests shared with other predictions from the same bytes ([`Uki::with_cache`]).
    cache: Option<Arc<DigestCache>>,
}

impl<'a> Uki<'a> {
    /// Parses `bytes`, reads the stub version from `.sdmagic` unless `stub_version` is given, and
    /// locates the sections of `profile` (257 on; `None` is the base/first profile).
    pub fn open(bytes: &'a [u8], stub_version: Option<u32>, profile: Option<u32>) -> Result<Uki<'a>, BootError> {
        let pe = PeFile::parse(bytes).map_err(BootError::Pe)?;
        let stub = match stub_version {
            Some(version) => StubInfo { version, loader_info: None },
            None => stub::detect(&pe)?,
        };
        let behaviour = StubBehaviour::for_version(stub.version)?;
        let sections = sections::locate(&pe, &behaviour, stub.version, profile)?;
        Ok(Uki { pe, stub, behaviour, sections, cache: None })
    }

    /// Looks digests up in `cache`, and stores those computed, so that predictions of several
    /// platforms from the same UKI bytes hash each content once per bank ([`Uki::prefetch`]).
    pub fn with_cache(mut self, cache: Option<Arc<DigestCache>>) -> Uki<'a> {
        self.cache = cache;
        self
    }

    /// The located section `name`, if the stub measures one.
    pub fn section(&self, name: &str) -> Option<&Located> {
        self.sections.iter().find(|l| l.name == name)
    }

    /// The digest of `event` in `bank` (from the cache when one holds it).
    pub fn digest(&self, event: &BootEvent<'_>, bank: Bank) -> Vec<u8> {
        let key = match &event.content {
            Content::Section(l) => Some(cache::Key::Section(l.section.index, l.file_bytes, l.zero_fill)),
            Content::Authenticode(image @ (Image::Uki | Image::Linux), _) => Some(cache::Key::Image(*image)),
            Content::StubInitrd => Some(cache::Key::StubInitrd),
            Content::Bytes(_) | Content::Authenticode(Image::Loader, _) => None,
        };
        let cache = self.cache.as_deref().filter(|c| c.owns(self.pe.data()));
        if let (Some(c), Some(k)) = (cache, key) {
            if let Some(d) = c.get(bank, k) {
                return d;
            }
            c.missed();
            let d = self.compute(&event.content, bank);
            c.put(bank, k, d.clone());
            return d;
        }
        self.compute(&event.content, bank)
    }

    /// Hashes `content` in `bank`.
    pub(crate) fn compute(&self, content: &Content<'_>, bank: Bank) -> Vec<u8> {
        match content {
            Content::Bytes(b) => bank.hash(b),
            Content::Section(l) => {
                let mut h = Hasher::new(bank);
                l.hash_content(&self.pe, &mut h);
                h.finalize()
            }
            // Parsed when the event was made; an image that no longer parses cannot occur.
            Content::Authenticode(_, image) => match PeFile::parse(image) {
                Ok(pe) => authenticode(bank, &pe),
                Err(_) => bank.hash(image),
            },
            Content::StubInitrd => {
                let mut h = Hasher::new(bank);
                // Modelled when the event was made.
                if let Ok(Some(parts)) = self.stub_initrd_parts() {
                    self.hash_parts(&parts, &mut h);
                }
                h.finalize()
            }
        }
    }

    /// Feeds `parts` to `h`.
    pub(crate) fn hash_parts(&self, parts: &[Part<'_>], h: &mut Hasher) {
        for p in parts {
            match p {
                Part::Section(l) => l.hash_content(&self.pe, h),
                Part::Bytes(b) => h.update(b),
                Part::Zeros(n) => h.update_zeros(*n),
            }
        }
    }

    /// The buffer systemd-stub passes to `LoadImage()` (`.linux`, `VirtualSize` bytes from
    /// memory), if the firmware measures it. Every stub refuses a `.linux` that is not a PE image
    /// (`pe_kernel_info()`: "Bad kernel image"), so that is an error whatever the version.
    pub fn linux_load_image(&self, secure_boot: bool) -> Result<Option<Cow<'a, [u8]>>, BootError> {
        let linux = self.section(".linux").ok_or(BootError::NoLinux)?;
        let buffer = linux.content(&self.pe);
        let kernel = PeFile::parse(&buffer).map_err(BootError::LinuxNotPe)?;
        if !self.behaviour.kernel_load_image || secure_boot {
            return Ok(None);
        }
        // pe_kernel_info(): "Support for LINUX_INITRD_MEDIA_GUID was added in kernel stub 1.0";
        // older kernels are started through the EFI handover protocol, without LoadImage().
        let x86 = matches!(self.pe.file_header().machine, IMAGE_FILE_MACHINE_AMD64 | IMAGE_FILE_MACHINE_I386);
        if x86 && kernel.optional_header().major_image_version < 1 {
            return Ok(None);
        }
        drop(kernel);
        Ok(Some(buffer))
    }

    /// OVMF's boot manager starting this UKI (PCR 4 and 5), in log order: the first ReadyToBoot
    /// action and the separator, a "Returning …"/"Calling …" pair per failed boot option, the
    /// GPT, the Authenticode of every image loaded, ExitBootServices.
    pub fn boot_manager_events(&self, bm: &BootManager<'a>) -> Result<Vec<BootEvent<'a>>, BootError> {
        for (index, l) in bm.loaders.iter().enumerate() {
            PeFile::parse(l).map_err(|source| BootError::LoaderNotPe { index, source })?;
        }
        let linux = self.linux_load_image(bm.secure_boot)?;
        // Tcg2Dxe OnReadyToBoot(): the first attempt measures the action and the separators of
        // PCRs 0-7; later ones "Returning from …" then "Calling …" again.
        let mut events = vec![
            BootEvent::action(4, CALLING_EFI_APPLICATION),
            BootEvent {
                pcr: 4,
                event_type: EventType::EV_SEPARATOR,
                label: "separator".into(),
                content: Content::Bytes(Cow::Borrowed(&[0; 4])),
                origin: Origin::Firmware,
            },
        ];
        for _ in 0..bm.failed_boot_attempts {
            events.push(BootEvent::action(4, RETURNING_FROM_EFI_APPLICATION));
            events.push(BootEvent::action(4, CALLING_EFI_APPLICATION));
        }
        if let Some(gpt) = &bm.gpt_data {
            events.push(BootEvent {
                pcr: 5,
                event_type: EventType::EV_EFI_GPT_EVENT,
                label: "GPT".into(),
                content: Content::Bytes(gpt.clone()),
                origin: Origin::Firmware,
            });
        }
        let image = |label: String, which: Image, bytes: Cow<'a, [u8]>| BootEvent {
            pcr: 4,
            event_type: EventType::EV_EFI_BOOT_SERVICES_APPLICATION,
            label,
            content: Content::Authenticode(which, bytes),
            origin: Origin::Firmware,
        };
        for (i, l) in bm.loaders.iter().enumerate() {
            events.push(image(format!("boot loader {} (Authenticode)", i + 1), Image::Loader, Cow::Borrowed(l)));
        }
        let name = bm.uki_name.map(|n| format!(" {n}")).unwrap_or_default();
        events.push(image(format!("UKI{name} (Authenticode)"), Image::Uki, Cow::Borrowed(self.pe.data())));
        if let Some(linux) = linux {
            events.push(image(format!("UKI .linux (Authenticode, LoadImage by systemd-stub {})", self.stub.version), Image::Linux, linux));
        }
        events.push(BootEvent::action(5, EXIT_BOOT_SERVICES_INVOCATION));
        events.push(BootEvent::action(5, EXIT_BOOT_SERVICES_SUCCEEDED));
        Ok(events)
    }

    /// systemd-stub's PCR 11 events: per measured section, `EV_IPL` of its name with a NUL, then
    /// `EV_IPL` of its contents.
    pub fn section_events(&self) -> Vec<BootEvent<'a>> {
        let mut events = Vec::with_capacity(2 * self.sections.len());
        for l in &self.sections {
            let mut name = l.name.as_bytes().to_vec();
            name.push(0);
            events.push(BootEvent {
                pcr: 11,
                event_type: EventType::EV_IPL,
                label: format!("{} name", l.name),
                content: Content::Bytes(Cow::Owned(name)),
                origin: Origin::Stub,
            });
            events.push(BootEvent {
                pcr: 11,
                event_type: EventType::EV_IPL,
                label: format!("{} content", l.name),
                content: Content::Section(*l),
                origin: Origin::Stub,
            });
        }
        events
    }

    /// The kernel's EFI stub's PCR 9 events: `LOADED_IMAGE::LoadOptions` (the stub's
    /// `mangle_stub_cmdline()` of `.cmdline`, UTF-16 with NUL) and the initrd the stub hands it
    /// ([`Uki::stub_initrd`]), each when present.
    pub fn kernel_stub_events(&self) -> Result<Vec<BootEvent<'a>>, BootError> {
        let mut events = Vec::new();
        if let Some(l) = self.section(".cmdline") {
            let bytes = l.content(&self.pe);
            let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
            let cmdline = std::str::from_utf8(&bytes[..end]).map_err(|_| BootError::CmdlineNotUtf8)?;
            let cmdline = mangle_stub_cmdline(cmdline, self.stub.version);
            events.push(BootEvent {
                pcr: 9,
                event_type: EventType::EV_EVENT_TAG,
                label: "LOADED_IMAGE::LoadOptions (.cmdline)".into(),
                content: Content::Bytes(Cow::Owned(utf16le_nul(&cmdline))),
                origin: Origin::Kernel,
            });
        }
        if self.stub_initrd_parts()?.is_some() {
            let label = if self.stub.version == 257 {
                "Linux initrd (as systemd-stub 257 combines it)"
            } else {
                "Linux initrd (.initrd)"
            };
            events.push(BootEvent {
                pcr: 9,
                event_type: EventType::EV_EVENT_TAG,
                label: label.into(),
                content: Content::StubInitrd,
                origin: Origin::Kernel,
            });
        }
        Ok(events)
    }

    /// The initrd systemd-stub hands the kernel (`LINUX_INITRD_MEDIA`), `None` when none.
    ///
    /// Before 257 only a plain `.initrd` is modelled. 257 (`run()`: `generate_embedded_initrds()`,
    /// `lookup_embedded_initrds()`, `extend_initrds()`, `combine_initrds()`) passes, in this order,
    /// `.ucode`, `.initrd`, then one `pack_cpio_literal()` archive under `.extra/` per section
    /// `.pcrsig` (`tpm2-pcr-signature.json`), `.pcrpkey` (`tpm2-pcr-public-key.pem`) and `.osrel`
    /// (`os-release`); a single part as is, several each padded to 4 bytes and concatenated.
    /// Credentials, system/configuration extensions and add-ons from the ESP are assumed absent;
    /// UKIs with profiles or hardware-dependent sections are refused.
    pub fn stub_initrd(&self) -> Result<Option<Vec<u8>>, BootError> {
        Ok(self.stub_initrd_parts()?.map(|parts| {
            let mut all = Vec::new();
            for p in parts {
                match p {
                    Part::Section(l) => all.extend_from_slice(&l.content(&self.pe)),
                    Part::Bytes(b) => all.extend_from_slice(&b),
                    Part::Zeros(n) => all.resize(all.len() + n as usize, 0),
                }
            }
            all
        }))
    }

    /// [`Uki::stub_initrd`] as the pieces the stub concatenates, without copying the sections;
    /// `None` when there is no initrd or it is empty.
    pub(crate) fn stub_initrd_parts(&self) -> Result<Option<Vec<Part<'a>>>, BootError> {
        let present = |name: &str| self.pe.section_by_name(name).is_some();
        if let Some(name) = UNMODELLED_FOR_INITRD.iter().find(|n| present(n)) {
            return Err(BootError::InitrdNotModelled { version: self.stub.version, generated: name.to_string() });
        }
        // `.pcrsig` is never in the measured list: read it from the header table directly.
        let part = |name: &str| -> Option<(Part<'a>, u64)> {
            match self.section(name) {
                Some(l) => {
                    let len = l.file_bytes as u64 + l.zero_fill;
                    (len > 0).then_some((Part::Section(*l), len))
                }
                None => {
                    let s = self.pe.section_by_name(name)?;
                    let data = self.pe.section_virtual_data(s).ok()?;
                    (!data.is_empty()).then_some((Part::Bytes(Cow::Borrowed(data)), data.len() as u64))
                }
            }
        };
        if self.stub.version == 257 {
            let mut parts = Vec::new();
            for name in [".ucode", ".initrd"] {
                parts.extend(part(name));
            }
            for (name, file) in [
                (".pcrsig", "tpm2-pcr-signature.json"),
                (".pcrpkey", "tpm2-pcr-public-key.pem"),
                (".osrel", "os-release"),
            ] {
                if let Some(data) = self.section(name).map(|l| l.content(&self.pe)).or_else(|| {
                    let s = self.pe.section_by_name(name)?;
                    self.pe.section_virtual_data(s).ok().map(Cow::Borrowed)
                }) {
                    if !data.is_empty() {
                        let cpio = stub::stub_cpio_literal(".extra", file, &data);
                        let len = cpio.len() as u64;
                        parts.push((Part::Bytes(Cow::Owned(cpio)), len));
                    }
                }
            }
            return Ok(match parts.len() {
                0 => None,
                1 => parts.pop().map(|(p, _)| vec![p]),
                // Several: each padded to 4 bytes, then concatenated.
                _ => Some(
                    parts
                        .into_iter()
                        .flat_map(|(p, len)| {
                            let pad = len.next_multiple_of(4) - len;
                            std::iter::once(p).chain((pad > 0).then_some(Part::Zeros(pad)))
                        })
                        .collect(),
                ),
            });
        }
        let mut generated: Vec<&str> = [".pcrsig", ".pcrpkey"].into_iter().filter(|n| present(n)).collect();
        if self.stub.version >= 256 && present(".ucode") {
            generated.push(".ucode");
        }
        if self.stub.version >= 258 && present(".osrel") {
            generated.push(".osrel");
        }
        if !generated.is_empty() {
            return Err(BootError::InitrdNotModelled { version: self.stub.version, generated: generated.join(", ") });
        }
        Ok(part(".initrd").map(|(p, _)| vec![p]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf16_with_nul() {
        assert_eq!(utf16le_nul("a"), [b'a', 0, 0, 0]);
        assert_eq!(utf16le_nul(""), [0, 0]);
    }
}
