//! The prediction as a measurement document (`cvmkit.measurements/v1`): what `cvmkit measure
//! tdx` prints and an image's `measurements.json` holds.

use cvmkit_measure::{Bank, Measurements, Platform};
use cvmkit_ovmf::Firmware;

use crate::names::QemuVersion;
use crate::{Boot, Register, TdxConfig, TdxError};

/// What the document records about where the inputs came from: the paths the user named and
/// the parameters that are not part of [`TdxConfig`].
#[derive(Debug, Clone, Default)]
pub struct Sources<'a> {
    /// The firmware's path.
    pub firmware: &'a str,
    /// The UKI's path (UKI boot).
    pub uki: Option<&'a str>,
    /// The boot disk's path (UKI boot); recorded without a hash, its GPT is what is measured.
    pub disk: Option<&'a str>,
    /// The kernel's path (direct boot).
    pub kernel: Option<&'a str>,
    /// The initrd's path (direct boot).
    pub initrd: Option<&'a str>,
    /// vCPUs: recorded; they reach RTMR0 only through the ACPI tables.
    pub vcpus: u32,
    /// The QEMU version [`TdxConfig::qemu`] was chosen for.
    pub qemu_version: QemuVersion,
}

fn register(doc_name: &str, r: &Register) -> Result<cvmkit_measure::Register, TdxError> {
    let mut reg = cvmkit_measure::Register::with_value(doc_name, Bank::Sha384, &r.value)?;
    for e in &r.events {
        reg.note_event(e.label.clone(), Some(&e.event_type.to_string()), &e.digest)?;
    }
    Ok(reg)
}

/// Predicts the registers ([`crate::measure`]) and returns them as a document: MRTD, RTMR0 (unless
/// its source is [`crate::Rtmr0Source::Unknown`], said in a note instead — never zeros),
/// RTMR1, RTMR2, with the inputs and the assumptions a verifier should know.
pub fn document(
    firmware: &Firmware<'_>,
    config: &TdxConfig<'_>,
    boot: &Boot<'_>,
    sources: &Sources<'_>,
) -> Result<Measurements, TdxError> {
    document_with(firmware, config, boot, sources, None)
}

/// [`document`] with MRTD and RTMR0 from [`crate::measure_firmware`] for the same `firmware`
/// and `config` (see [`crate::measure_with`]).
pub fn document_with(
    firmware: &Firmware<'_>,
    config: &TdxConfig<'_>,
    boot: &Boot<'_>,
    sources: &Sources<'_>,
    known: Option<&crate::FirmwareMeasurements>,
) -> Result<Measurements, TdxError> {
    let mut doc = Measurements::new(Platform::Tdx);
    doc.inputs.insert("firmware".into(), cvmkit_measure::Input::file(sources.firmware, firmware.data()));
    doc.add_value("memory", config.memory);
    doc.add_value("vcpus", sources.vcpus);
    doc.add_value("qemu_version", sources.qemu_version);
    doc.add_value("ovmf_profile", config.ovmf.name());
    doc.add_value("kernel_measures", config.linux_stub.name());
    doc.add_value("page_order", format!("{:?}", config.qemu.page_order));
    match boot {
        Boot::Uki(u) => {
            doc.inputs.insert("uki".into(), uki_input(sources.uki.unwrap_or("uki"), u));
            if let Some(disk) = sources.disk {
                doc.inputs.insert("disk".into(), cvmkit_measure::Input { path: Some(disk.into()), ..Default::default() });
            }
        }
        Boot::Direct(d) => {
            doc.inputs.insert("kernel".into(), cvmkit_measure::Input::file(sources.kernel.unwrap_or("kernel"), d.kernel));
            if let Some(i) = d.initrd {
                doc.inputs.insert("initrd".into(), cvmkit_measure::Input::file(sources.initrd.unwrap_or("initrd"), i));
            }
            doc.add_value("cmdline", d.cmdline);
        }
    }
    let m = crate::measure_with(firmware, config, boot, known)?;
    if let Boot::Uki(u) = boot {
        doc.notes.push(u.stub_note()?);
    }
    doc.registers.push(register("MRTD", &Register::from_value(m.mrtd))?);
    match &m.rtmr0 {
        Some(r) => doc.registers.push(register("RTMR0", r)?),
        None => doc.notes.push(
            "RTMR0 not computed: give QEMU's ACPI blobs with --acpi-dir, or a captured value with --rtmr0-captured".into(),
        ),
    }
    doc.registers.push(register("RTMR1", &m.rtmr1)?);
    doc.registers.push(register("RTMR2", &m.rtmr2)?);
    if config.ovmf.cc_measurement {
        doc.notes.push(format!(
            "assumes firmware that measures into RTMRs ({}); Debian bookworm's OVMF.fd does not: use --ovmf-profile no-cc for it",
            config.ovmf.name()
        ));
    } else {
        doc.notes.push("firmware without CC measurement (no TdTcg2Dxe): RTMR0-2 stay zero; only MRTD pins the firmware".into());
    }
    Ok(doc)
}

/// The document of a UKI booted from disk by firmware that is not the build's (a cloud's):
/// RTMR1 and RTMR2, which follow from the image and the disk ([`crate::uki_rtmr1`],
/// [`crate::uki_rtmr2`]), and MRTD and RTMR0 named under `cloud` — the firmware's and its
/// configuration's, which references give (a cloud's endorsements, values captured on a VM of
/// the same shape), never a computation from another firmware. `ovmf` is the firmware's
/// measurement behaviour (GCE's follows edk2-stable202411's separators, checked against GCE's
/// logs in the tests).
pub fn cloud_disk_boot_document(
    boot: &crate::UkiBoot<'_>,
    ovmf: &crate::OvmfProfile,
    linux_stub: crate::LinuxStubMeasurement,
    uki_name: &str,
) -> Result<Measurements, TdxError> {
    let mut doc = Measurements::new(Platform::Tdx);
    doc.inputs.insert("uki".into(), uki_input(uki_name, boot));
    doc.add_value("ovmf_profile", ovmf.name());
    doc.add_value("kernel_measures", linux_stub.name());
    doc.notes.push(boot.stub_note()?);
    doc.registers.push(register("RTMR1", &Register::from_events(crate::uki_rtmr1(boot, ovmf)?))?);
    doc.registers.push(register("RTMR2", &Register::from_events(crate::uki_rtmr2(boot, linux_stub)?))?);
    doc.cloud = vec!["MRTD".into(), "RTMR0".into()];
    Ok(doc)
}

/// The UKI as a document input, its SHA-256 shared with the other documents of the same bytes.
fn uki_input(name: &str, boot: &crate::UkiBoot<'_>) -> cvmkit_measure::Input {
    let sha256 = match &boot.digests {
        Some(c) => c.file_sha256(boot.uki),
        None => cvmkit_measure::Bank::Sha256.hash(boot.uki),
    };
    cvmkit_measure::Input { path: Some(name.into()), sha256: Some(cvmkit_measure::hex(&sha256)), value: None }
}
