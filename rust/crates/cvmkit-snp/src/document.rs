//! The launch digest as a measurement document (`cvmkit.measurements/v1`): what `cvmkit
//! measure snp` prints and an image's `measurements.json` holds.

use cvmkit_measure::{Bank, Input, Measurements, Platform, Register};
use cvmkit_ovmf::Firmware;

use crate::{launch_digest, snp_launch_measure_hashed, SevHashes, SevMode, SnpArgs, SnpError};

/// The paths the document records for the inputs.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sources<'a> {
    /// The firmware's path.
    pub firmware: &'a str,
    /// The kernel's path (direct boot).
    pub kernel: Option<&'a str>,
    /// The initrd's path (direct boot).
    pub initrd: Option<&'a str>,
}

/// The SNP (or SEV-ES, SEV) launch digest of `firmware` booted with `args`, as a document.
///
/// For SNP the register lists the measured steps (the digest is a chain over PAGE_INFO
/// structures, not an extend fold: the steps show what was measured, each with its contents'
/// digest). The inputs' own sha256 is hashed on a second thread while the launch digest is
/// computed: both read the same large kernel and initrd.
pub fn document(
    firmware: &Firmware<'_>,
    mode: SevMode,
    args: &SnpArgs<'_>,
    sources: &Sources<'_>,
) -> Result<Measurements, SnpError> {
    let mut doc = Measurements::new(match mode {
        SevMode::Snp => Platform::Snp,
        SevMode::SevEs => Platform::Seves,
        SevMode::Sev => Platform::Sev,
    });
    // The kernel hashes are the SHA-256 of the kernel and initrd files: computed once, for the
    // launch digest and for the inputs.
    let hashes = args.sev_hashes()?;
    let file = |path: &str, sha256: &[u8; 32]| Input { path: Some(path.into()), sha256: Some(cvmkit_measure::hex(sha256)), value: None };
    if let (Some(h), true) = (&hashes, args.has_kernel()) {
        doc.inputs.insert("kernel".into(), file(sources.kernel.unwrap_or("kernel"), &h.kernel));
        if args.has_initrd() {
            doc.inputs.insert("initrd".into(), file(sources.initrd.unwrap_or("initrd"), &h.initrd));
        }
    }
    let files: Vec<(&str, &str, &[u8])> = vec![("firmware", sources.firmware, firmware.data())];
    if let Some(ap) = args.append {
        doc.add_value("append", ap);
    }
    doc.add_value("vcpus", args.vcpus);
    if let Some(v) = args.vcpu {
        doc.add_value("vcpu_signature", format!("{:#010x}", v.signature()));
    }
    doc.add_value("guest_features", format!("{:#x}", args.guest_features));
    doc.add_value("vmm_type", args.vmm_type.name().to_ascii_lowercase());

    let (file_inputs, register) = std::thread::scope(|scope| {
        let hashing = scope.spawn(|| {
            files.iter().map(|(n, p, d)| (n.to_string(), Input::file(*p, d))).collect::<Vec<_>>()
        });
        let register = launch_register(mode, firmware, args, hashes);
        (hashing.join().expect("hashing does not panic"), register)
    });
    doc.inputs.extend(file_inputs);
    doc.registers.push(register?);
    Ok(doc)
}

fn launch_register(mode: SevMode, firmware: &Firmware<'_>, args: &SnpArgs<'_>, hashes: Option<SevHashes>) -> Result<Register, SnpError> {
    Ok(match mode {
        SevMode::Snp => {
            let m = snp_launch_measure_hashed(firmware, args, hashes)?;
            let mut r = Register::with_value("LAUNCH_DIGEST", Bank::Sha384, &m.digest)?;
            for s in &m.steps {
                let label =
                    format!("{} at {:#x} ({} page{})", s.label, s.gpa, s.pages, if s.pages == 1 { "" } else { "s" });
                r.note_event(label, Some(&format!("{:?}", s.page_type)), &s.digest)?;
            }
            r
        }
        _ => {
            let d = launch_digest(mode, firmware, args)?;
            Register::with_value("LAUNCH_DIGEST", Bank::Sha256, d.as_bytes())?
        }
    })
}
