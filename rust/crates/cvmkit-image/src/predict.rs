//! Measurement predictions as requests with paths, each returning its `cvmkit.measurements/v1`
//! document: what `cvmkit build` writes into measurements.json and what `cvmkit measure
//! tpm|tdx|snp` prints. The models and documents are the platform crates' (`cvmkit_tpm::document`,
//! `cvmkit_tdx::document`, `cvmkit_snp::document`); this module reads the files and maps the
//! spec's names onto their knobs.

use std::path::PathBuf;
use std::sync::Arc;

use cvmkit_uefi_boot::DigestCache;

use cvmkit_measure::Measurements;

use crate::error::{bail, read_input, Context as _, Error, Result};
use crate::spec::{
    defaults, parse_memory, KernelMeasures, OvmfProfile, PageOrder, SevMode, TpmBank, VmmType,
};

fn parse_hex_u64(text: &str, what: &str) -> Result<u64> {
    let t = text.trim();
    let digits = t
        .strip_prefix("0x")
        .or_else(|| t.strip_prefix("0X"))
        .unwrap_or(t);
    u64::from_str_radix(digits, 16)
        .with_context(|| format!("{what} {text:?} is not a hexadecimal number"))
}

/// The digests of `uki` that predictions in `banks` (and of the kernel's initrd measurement in
/// `initrd_banks`) will ask for, computed in one parallel pass and shared through the returned
/// cache: give it to [`Tpm::digests`] and [`Tdx::document_with`] with the same bytes. `None`
/// when `banks` is empty or the UKI does not open (each prediction then reports why).
pub fn shared_digests(uki: &[u8], banks: &[cvmkit_measure::Bank], initrd_banks: &[cvmkit_measure::Bank]) -> Option<Arc<DigestCache>> {
    if banks.is_empty() && initrd_banks.is_empty() {
        return None;
    }
    let cache = Arc::new(DigestCache::new());
    let opened = cvmkit_uefi_boot::Uki::open(uki, None, None).ok()?.with_cache(Some(cache.clone()));
    opened.prefetch(banks, initrd_banks);
    Some(cache)
}

/// The UKI at `path` read for predictions in `banks` (and of the kernel's initrd in
/// `initrd_banks`) in memory bounded whatever its size: its large digests computed in one
/// sequential pass over the file ([`cvmkit_uefi_boot::read_streamed`]). Give the bytes and the
/// cache to the predictions ([`Tpm::document`], [`Tdx::document_with`]) together, then
/// [`check_streamed`] the cache.
pub fn read_uki(
    path: &std::path::Path,
    banks: &[cvmkit_measure::Bank],
    initrd_banks: &[cvmkit_measure::Bank],
    stub_version: Option<u32>,
) -> Result<cvmkit_uefi_boot::StreamedUki> {
    read_uki_with(path, banks, initrd_banks, stub_version, None)
}

/// [`read_uki`] taking `.linux`'s digests from `known`, the kernel the UKI was built from
/// ([`cvmkit_uefi_boot::read_streamed_with`]).
pub fn read_uki_with(
    path: &std::path::Path,
    banks: &[cvmkit_measure::Bank],
    initrd_banks: &[cvmkit_measure::Bank],
    stub_version: Option<u32>,
    known: Option<&cvmkit_uefi_boot::KnownLinux>,
) -> Result<cvmkit_uefi_boot::StreamedUki> {
    cvmkit_uefi_boot::read_streamed_with(path, banks, initrd_banks, stub_version, None, known)
        .with_context(|| format!("cannot read UKI {}", path.display()))
}

/// Refuses predictions that asked a cache filled by [`read_uki`] for a digest it did not
/// compute: they hashed bytes that were never read (a bug in choosing the banks, never the
/// input's fault).
pub fn check_streamed(digests: Option<&Arc<DigestCache>>) -> Result<()> {
    match digests.map(|d| d.misses()) {
        Some(n) if n > 0 => bail!("internal error: {n} UKI digest(s) were not computed by the one pass over the file; the predictions are not trustworthy (please report)"),
        _ => Ok(()),
    }
}

/// A TPM prediction: PCR 4 and PCR 11 for OVMF booting a UKI from an ESP (more PCRs for a GCE
/// firmware model, see `cvmkit_tpm::Firmware`).
#[derive(Debug, Clone)]
pub struct Tpm {
    /// The UKI (named in the document).
    pub uki: PathBuf,
    pub banks: Vec<TpmBank>,
    /// Boot phases systemd extends into PCR 11 after the sections.
    pub phases: Vec<String>,
    pub failed_boot_attempts: u32,
    pub secure_boot: bool,
    pub stub_version: Option<u32>,
    /// Digests shared with other predictions from the same UKI bytes.
    pub digests: Option<Arc<DigestCache>>,
    /// Whose firmware boots the UKI (where it logs the GPT and the images).
    pub firmware: cvmkit_tpm::Firmware,
    /// The boot disk's `UEFI_GPT_DATA`: a GCE firmware model then predicts the PCR holding it.
    pub gpt: Option<Vec<u8>>,
}

impl Tpm {
    /// The defaults of `cvmkit measure tpm` for `uki`.
    pub fn new(uki: impl Into<PathBuf>) -> Tpm {
        Tpm {
            uki: uki.into(),
            banks: vec![TpmBank::Sha1, TpmBank::Sha256, TpmBank::Sha384],
            phases: Vec::new(),
            failed_boot_attempts: 0,
            secure_boot: false,
            stub_version: None,
            firmware: cvmkit_tpm::Firmware::Ovmf,
            gpt: None,
            digests: None,
        }
    }

    /// The document for the UKI bytes `uki` (read from `self.uki`).
    pub fn document(&self, uki: &[u8]) -> Result<Measurements> {
        use cvmkit_tpm::TpmOptions;
        let banks = self.banks.iter().map(|b| b.bank());
        let opts = TpmOptions::default()
            .with_banks(banks.collect::<Vec<_>>())
            .with_phases(self.phases.iter().filter(|p| !p.is_empty()).cloned())
            .with_failed_boot_attempts(self.failed_boot_attempts)
            .with_secure_boot(self.secure_boot)
            .with_stub_version(self.stub_version)
            .with_firmware(self.firmware)
            .with_gpt_data(self.gpt.clone());
        cvmkit_tpm::document_with(&self.uki.display().to_string(), uki, &opts, self.digests.clone())
            .with_context(|| format!("UKI {}", self.uki.display()))
    }
}

/// What a TDX guest boots.
#[derive(Debug, Clone)]
pub enum TdxBoot {
    /// A UKI from a GPT disk: `gpt` is the disk's `UEFI_GPT_DATA`, `disk` names the disk.
    Uki {
        uki: PathBuf,
        gpt: Vec<u8>,
        disk: Option<PathBuf>,
        failed_boot_attempts: u32,
        stub_version: Option<u32>,
    },
    /// QEMU's direct boot (-kernel, -initrd, -append).
    Direct {
        kernel: PathBuf,
        initrd: Option<PathBuf>,
        cmdline: String,
    },
}

/// Where RTMR0 comes from.
#[derive(Debug, Clone, Default)]
pub enum Rtmr0 {
    /// Not computed (a note says so).
    #[default]
    Unknown,
    /// From QEMU's ACPI blobs: a directory with etc/table-loader and the files it allocates.
    AcpiDir(PathBuf),
    /// Captured on a real VM of the same shape (JSON).
    Captured(PathBuf),
}

/// A TDX prediction: MRTD and RTMR0-2.
#[derive(Debug, Clone)]
pub struct Tdx {
    pub firmware: PathBuf,
    /// Guest memory as QEMU's -m takes it.
    pub memory: String,
    pub vcpus: u32,
    /// MAJOR.MINOR.
    pub qemu_version: String,
    pub page_order: Option<PageOrder>,
    pub ovmf_profile: OvmfProfile,
    pub kernel_measures: KernelMeasures,
    pub rtmr0: Rtmr0,
    pub boot: TdxBoot,
    /// MRTD and RTMR0 from [`Tdx::firmware_measurements`] of a request with the same firmware
    /// and settings (the boot aside), computed earlier; `None`: computed with the document.
    pub firmware_measured: Option<cvmkit_tdx::FirmwareMeasurements>,
}

impl Tdx {
    /// The defaults of `cvmkit measure tdx` for `firmware` and `boot`.
    pub fn new(firmware: impl Into<PathBuf>, boot: TdxBoot) -> Tdx {
        Tdx {
            firmware: firmware.into(),
            memory: defaults::MEMORY.into(),
            vcpus: 1,
            qemu_version: defaults::QEMU_VERSION.into(),
            page_order: None,
            ovmf_profile: OvmfProfile::default(),
            kernel_measures: KernelMeasures::default(),
            rtmr0: Rtmr0::Unknown,
            boot,
            firmware_measured: None,
        }
    }

    /// The document.
    pub fn document(&self) -> Result<Measurements> {
        self.document_with(None, None)
    }

    /// MRTD and RTMR0, which follow from the firmware and the settings alone (not the boot).
    pub fn firmware_measurements(&self) -> Result<cvmkit_tdx::FirmwareMeasurements> {
        self.with_config(|firmware, config, fw_name, _| {
            cvmkit_tdx::measure_firmware(firmware, config)
                .with_context(|| format!("cannot compute TDX measurements for {fw_name}"))
        })
    }

    /// [`Tdx::document`] with the UKI's bytes already read (`uki`, the file at the boot's
    /// `uki` path) and digests shared with other predictions from them (`digests`).
    pub fn document_with(&self, uki: Option<&[u8]>, digests: Option<Arc<DigestCache>>) -> Result<Measurements> {
        self.with_config(|firmware, config, fw_name, qemu_version| {
            self.document_from(firmware, config, fw_name, qemu_version, uki, digests)
        })
    }

    /// Reads the firmware and turns the settings into `cvmkit_tdx`'s, for `f`.
    fn with_config<T>(
        &self,
        f: impl FnOnce(
            &cvmkit_tdx::cvmkit_ovmf::Firmware<'_>,
            &cvmkit_tdx::TdxConfig<'_>,
            &str,
            cvmkit_tdx::QemuVersion,
        ) -> Result<T>,
    ) -> Result<T> {
        use cvmkit_tdx::cvmkit_ovmf::Firmware;
        use cvmkit_tdx::{
            acpi_blobs, Captured, LinuxStubMeasurement, OvmfProfile as Profile, PageOrder as Order,
            QemuVersion, Rtmr0Inputs, Rtmr0Source, TdxConfig,
        };
        let fw_bytes = crate::error::read_firmware(&self.firmware)?;
        let fw_name = self.firmware.display().to_string();
        let firmware =
            Firmware::parse_named(&fw_bytes, fw_name.clone()).with_context(|| fw_name.clone())?;
        let memory = parse_memory(&self.memory).map_err(|e| Error::with_source("--memory", e))?;
        let qemu_version: QemuVersion = self
            .qemu_version
            .parse()
            .map_err(|e| Error::with_source("--qemu-version", e))?;
        let mut qemu = qemu_version.profile();
        match self.page_order {
            None => {}
            Some(PageOrder::TwoPass) => qemu.page_order = Order::TwoPass,
            Some(PageOrder::Interleaved) => qemu.page_order = Order::Interleaved,
        }
        let ovmf = match self.ovmf_profile {
            OvmfProfile::Edk2_202411 => Profile::EDK2_202411,
            OvmfProfile::Edk2Before202411 => Profile::EDK2_BEFORE_202411,
            OvmfProfile::NoCc => Profile::NO_CC_MEASUREMENT,
        };
        let linux_stub = match self.kernel_measures {
            KernelMeasures::Cc => LinuxStubMeasurement::CcMeasurement,
            KernelMeasures::None => LinuxStubMeasurement::None,
        };

        // RTMR0: computed from ACPI blobs, captured, or unknown (a note then, never zeros).
        // QEMU's table-loader script and the fw_cfg files it names.
        type AcpiBlobs = (Vec<u8>, std::collections::BTreeMap<String, Vec<u8>>);
        let mut acpi: Option<AcpiBlobs> = None;
        if let Rtmr0::AcpiDir(dir) = &self.rtmr0 {
            let loader = read_input(&dir.join("etc/table-loader"), "ACPI table loader")?;
            let mut files = std::collections::BTreeMap::new();
            for name in ["etc/acpi/tables", "etc/acpi/rsdp", "etc/tpm/log"] {
                let p = dir.join(name);
                if p.exists() {
                    files.insert(name.to_string(), read_input(&p, "ACPI blob")?);
                }
            }
            acpi = Some((loader, files));
        }
        let rtmr0 = match (&self.rtmr0, &acpi) {
            (Rtmr0::Captured(p), _) => {
                let text = std::fs::read_to_string(p)
                    .with_context(|| format!("cannot read {}", p.display()))?;
                let c = Captured::from_json(&text).with_context(|| p.display().to_string())?;
                match &c.rtmr[0] {
                    Some(r) => Rtmr0Source::Captured { value: r.value, events: r.events.clone() },
                    None => bail!("{}: no RTMR0 in the captured values", p.display()),
                }
            }
            (Rtmr0::AcpiDir(_), Some((loader, files))) => {
                let refs = files.iter().map(|(n, d)| (n.clone(), d.as_slice())).collect();
                let blobs = acpi_blobs(loader, &refs).context("--acpi-dir")?;
                Rtmr0Source::Computed(Rtmr0Inputs { acpi: Some(blobs), ..Rtmr0Inputs::default() })
            }
            _ => Rtmr0Source::Unknown,
        };
        let config = TdxConfig { memory, qemu, ovmf, linux_stub, rtmr0 };
        f(&firmware, &config, &fw_name, qemu_version)
    }

    fn document_from(
        &self,
        firmware: &cvmkit_tdx::cvmkit_ovmf::Firmware<'_>,
        config: &cvmkit_tdx::TdxConfig<'_>,
        fw_name: &str,
        qemu_version: cvmkit_tdx::QemuVersion,
        uki: Option<&[u8]>,
        digests: Option<Arc<DigestCache>>,
    ) -> Result<Measurements> {
        use cvmkit_tdx::{Boot, DirectBoot, Sources, UkiBoot};
        let name = |p: &PathBuf| p.display().to_string();
        let (mut uki_name, mut disk_name, mut kernel_name, mut initrd_name) = (None, None, None, None);
        let (kernel, initrd, uki_bytes);
        let boot = match &self.boot {
            TdxBoot::Uki { uki: uki_path, gpt, disk, failed_boot_attempts, stub_version } => {
                uki_bytes = match uki {
                    Some(b) => std::borrow::Cow::Borrowed(b),
                    None => std::borrow::Cow::Owned(read_input(uki_path, "UKI")?),
                };
                uki_name = Some(name(uki_path));
                disk_name = disk.as_ref().map(name);
                let mut u = UkiBoot::new(&uki_bytes, gpt.clone());
                u.failed_boot_attempts = *failed_boot_attempts;
                u.stub_version = *stub_version;
                u.digests = digests;
                Boot::Uki(u)
            }
            TdxBoot::Direct { kernel: kp, initrd: ip, cmdline } => {
                kernel = read_input(kp, "kernel")?;
                kernel_name = Some(name(kp));
                initrd = ip.as_ref().map(|p| read_input(p, "initrd")).transpose()?;
                initrd_name = ip.as_ref().map(name);
                Boot::Direct(DirectBoot { kernel: &kernel, initrd: initrd.as_deref(), cmdline })
            }
        };
        let sources = Sources {
            firmware: fw_name,
            uki: uki_name.as_deref(),
            disk: disk_name.as_deref(),
            kernel: kernel_name.as_deref(),
            initrd: initrd_name.as_deref(),
            vcpus: self.vcpus,
            qemu_version,
        };
        cvmkit_tdx::document_with(firmware, config, &boot, &sources, self.firmware_measured.as_ref()).with_context(|| match &uki_name {
            Some(u) => format!("cannot compute TDX measurements for {fw_name} and UKI {u}"),
            None => format!("cannot compute TDX measurements for {fw_name}"),
        })
    }
}

/// The vCPU of an SEV guest.
#[derive(Debug, Clone)]
pub enum Vcpu {
    /// A model name as QEMU spells it (EPYC-v4, EPYC-Milan, …) or a signature in hex.
    Type(String),
    /// A signature (CPUID Fn0000_0001 EAX), hex.
    Signature(String),
    /// Family, model, stepping.
    FamilyModelStepping(u32, u32, u32),
}

/// An SEV-SNP (or SEV-ES, SEV) launch digest prediction.
#[derive(Debug, Clone)]
pub struct Snp {
    pub firmware: PathBuf,
    pub mode: SevMode,
    pub vcpus: Option<u32>,
    pub vcpu: Option<Vcpu>,
    /// SEV_FEATURES (hex).
    pub guest_features: String,
    pub vmm_type: VmmType,
    /// Direct boot, measured through OVMF's kernel-hashes table.
    pub kernel: Option<PathBuf>,
    pub initrd: Option<PathBuf>,
    pub append: Option<String>,
    /// A precomputed OVMF hash (96 hex digits).
    pub ovmf_hash: Option<String>,
}

impl Snp {
    /// The defaults of `cvmkit measure snp` for `firmware`.
    pub fn new(firmware: impl Into<PathBuf>) -> Snp {
        Snp {
            firmware: firmware.into(),
            mode: SevMode::Snp,
            vcpus: None,
            vcpu: None,
            guest_features: defaults::GUEST_FEATURES.into(),
            vmm_type: VmmType::Qemu,
            kernel: None,
            initrd: None,
            append: None,
            ovmf_hash: None,
        }
    }

    /// The document.
    pub fn document(&self) -> Result<Measurements> {
        use cvmkit_snp::cvmkit_ovmf::Firmware;
        use cvmkit_snp::{SevMode as Mode, Vcpu as V, VmmType as Vmm};

        let fw_bytes = crate::error::read_firmware(&self.firmware)?;
        let fw_name = self.firmware.display().to_string();
        let firmware =
            Firmware::parse_named(&fw_bytes, fw_name.clone()).with_context(|| fw_name.clone())?;
        let mode = match self.mode {
            SevMode::Snp => Mode::Snp,
            SevMode::Seves => Mode::SevEs,
            SevMode::Sev => Mode::Sev,
        };
        let vmm_type = match self.vmm_type {
            VmmType::Qemu => Vmm::Qemu,
            VmmType::Ec2 => Vmm::Ec2,
            VmmType::Gce => Vmm::Gce,
        };
        let vcpu = match &self.vcpu {
            Some(Vcpu::Type(t)) => Some(t.parse::<V>().context("--vcpu-type")?),
            Some(Vcpu::Signature(s)) => Some(V::Signature(parse_hex_u64(s, "--vcpu-sig")? as u32)),
            Some(Vcpu::FamilyModelStepping(f, m, s)) => {
                Some(V::from_family_model_stepping(*f, *m, *s))
            }
            None => None,
        };
        let needs_vcpus = mode != Mode::Sev;
        let vcpus = match self.vcpus {
            Some(n) => n,
            None if needs_vcpus => bail!("--vcpus is required for mode {}", self.mode),
            None => 1,
        };
        if needs_vcpus && vcpu.is_none() && vmm_type == Vmm::Qemu {
            bail!("give the vCPU with --vcpu-type, --vcpu-sig or --vcpu-family/--vcpu-model/--vcpu-stepping");
        }
        // With a kernel, its hash and the initrd's are computed from the files on two threads,
        // in bounded memory; without one, the bytes go to the model, which says what is wrong.
        let hashed = match &self.kernel {
            Some(kp) => {
                let sha = |p: &PathBuf, what: &str| {
                    cvmkit_snp::sha256_file(p).with_context(|| format!("cannot read {what} {}", p.display()))
                };
                let (k, i) = std::thread::scope(|scope| {
                    let i = scope.spawn(|| self.initrd.as_ref().map(|p| sha(p, "initrd")).transpose());
                    let k = sha(kp, "kernel");
                    (k, i.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
                });
                let (k, i) = (k?, i?);
                Some(cvmkit_snp::Hashed {
                    hashes: cvmkit_snp::SevHashes::from_digests(k, i, self.append.as_deref()),
                    initrd: i.is_some(),
                })
            }
            None => None,
        };
        let initrd = match (&hashed, &self.initrd) {
            (None, Some(p)) => Some(read_input(p, "initrd")?),
            _ => None,
        };
        let ovmf_hash = self
            .ovmf_hash
            .as_deref()
            .map(cvmkit_snp::parse_ovmf_hash)
            .transpose()
            .context("--ovmf-hash")?;
        let args = cvmkit_snp::SnpArgs {
            vcpus,
            vcpu,
            guest_features: parse_hex_u64(&self.guest_features, "--guest-features")?,
            vmm_type,
            kernel: None,
            initrd: initrd.as_deref(),
            append: self.append.as_deref(),
            ovmf_hash,
            hashed,
        };

        let (kernel_name, initrd_name) = (
            self.kernel.as_ref().map(|p| p.display().to_string()),
            self.initrd.as_ref().map(|p| p.display().to_string()),
        );
        let sources = cvmkit_snp::Sources {
            firmware: &fw_name,
            kernel: kernel_name.as_deref(),
            initrd: initrd_name.as_deref(),
        };
        cvmkit_snp::document(&firmware, mode, &args, &sources).with_context(|| {
            format!(
                "cannot compute the {} launch digest for {fw_name}",
                self.mode
            )
        })
    }
}
