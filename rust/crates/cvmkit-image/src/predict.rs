//! Measurement predictions, each returning its `cvmkit.measurements/v1` document: what
//! `cvmkit build` writes into measurements.json and what `cvmkit measure tpm|tdx|snp` prints.

use std::path::{Path, PathBuf};

use cvmkit_measure::{Bank, Event, Input, Measurements, Register};

use crate::error::{bail, read_input, Context as _, Error, Result};
use crate::spec::{
    defaults, parse_memory, KernelMeasures, OvmfProfile, PageOrder, SevMode, TpmBank, VmmType,
};

fn file_input(doc: &mut Measurements, name: &str, path: &Path, data: &[u8]) {
    doc.inputs.insert(
        name.to_string(),
        Input::file(path.display().to_string(), data),
    );
}

fn parse_hex_u64(text: &str, what: &str) -> Result<u64> {
    let t = text.trim();
    let digits = t
        .strip_prefix("0x")
        .or_else(|| t.strip_prefix("0X"))
        .unwrap_or(t);
    u64::from_str_radix(digits, 16)
        .with_context(|| format!("{what} {text:?} is not a hexadecimal number"))
}

/// A TPM prediction: PCR 4 and PCR 11 for OVMF booting a UKI from an ESP.
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
        }
    }

    /// The document for the UKI bytes `uki` (read from `self.uki`).
    pub fn document(&self, uki: &[u8]) -> Result<Measurements> {
        use cvmkit_tpm::{predict, Bank as B, EventOrigin, TpmOptions};
        let banks = self.banks.iter().map(|b| match b {
            TpmBank::Sha1 => B::Sha1,
            TpmBank::Sha256 => B::Sha256,
            TpmBank::Sha384 => B::Sha384,
            TpmBank::Sha512 => B::Sha512,
        });
        let opts = TpmOptions::default()
            .with_banks(banks.collect::<Vec<_>>())
            .with_phases(self.phases.iter().filter(|p| !p.is_empty()).cloned())
            .with_failed_boot_attempts(self.failed_boot_attempts)
            .with_secure_boot(self.secure_boot)
            .with_stub_version(self.stub_version);
        let p = predict(uki, &opts).with_context(|| format!("UKI {}", self.uki.display()))?;
        let mut doc = Measurements::new("tpm");
        file_input(&mut doc, "uki", &self.uki, uki);
        doc.inputs.insert(
            "failed_boot_attempts".into(),
            Input::value(self.failed_boot_attempts),
        );
        doc.inputs
            .insert("secure_boot".into(), Input::value(self.secure_boot));
        if !self.phases.is_empty() {
            doc.inputs
                .insert("phases".into(), Input::value(self.phases.join(",")));
        }
        doc.notes.push(format!(
            "assumes OVMF starting the UKI from the ESP's removable-media path, systemd-stub {}{}",
            p.stub.version,
            p.stub
                .loader_info
                .as_deref()
                .map(|i| format!(" ({i})"))
                .unwrap_or_default()
        ));
        for r in &p.registers {
            let bank = match r.bank {
                B::Sha1 => Bank::Sha1,
                B::Sha256 => Bank::Sha256,
                B::Sha384 => Bank::Sha384,
                _ => Bank::Sha512,
            };
            let mut reg = Register::with_value(format!("PCR{}", r.pcr), bank, &r.value);
            for e in &r.events {
                let ty = match e.origin {
                    EventOrigin::Userspace => "userspace".to_string(),
                    _ => cvmkit_tcg_log::EventType(e.event_type).to_string(),
                };
                reg.events
                    .push(Event::new(e.label.clone(), Some(&ty), e.digest.clone()));
            }
            doc.registers.push(reg);
        }
        Ok(doc)
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
        }
    }

    /// The document.
    pub fn document(&self) -> Result<Measurements> {
        use cvmkit_tdx::cvmkit_ovmf::Firmware;
        use cvmkit_tdx::{
            acpi_blobs, measure, Boot, Captured, DirectBoot, LinuxStubMeasurement,
            OvmfProfile as Profile, PageOrder as Order, QemuProfile, Rtmr0Inputs, Rtmr0Source,
            TdxConfig, UkiBoot,
        };
        let fw_bytes = read_input(&self.firmware, "firmware")?;
        let fw_name = self.firmware.display().to_string();
        let firmware =
            Firmware::parse_named(&fw_bytes, fw_name.clone()).with_context(|| fw_name.clone())?;
        let memory = parse_memory(&self.memory).map_err(|e| Error::with_source("--memory", e))?;
        let (major, minor) = self
            .qemu_version
            .split_once('.')
            .and_then(|(x, y)| Some((x.parse().ok()?, y.parse().ok()?)))
            .with_context(|| {
                format!(
                    "--qemu-version {:?}: expected MAJOR.MINOR such as 9.2",
                    self.qemu_version
                )
            })?;
        let mut qemu = QemuProfile::for_version(major, minor);
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

        // RTMR0: computed from ACPI blobs, captured, or left out (printed as a note, never as zeros).
        let acpi = match &self.rtmr0 {
            Rtmr0::AcpiDir(dir) => {
                let loader = read_input(&dir.join("etc/table-loader"), "ACPI table loader")?;
                let mut files: std::collections::BTreeMap<String, Vec<u8>> = Default::default();
                for name in ["etc/acpi/tables", "etc/acpi/rsdp", "etc/tpm/log"] {
                    let p = dir.join(name);
                    if p.exists() {
                        files.insert(name.into(), read_input(&p, "ACPI blob")?);
                    }
                }
                Some((loader, files))
            }
            _ => None,
        };
        let (rtmr0, rtmr0_known) = match &self.rtmr0 {
            Rtmr0::Captured(p) => {
                let text = std::fs::read_to_string(p)
                    .with_context(|| format!("cannot read {}", p.display()))?;
                let c = Captured::from_json(&text).with_context(|| p.display().to_string())?;
                match &c.rtmr[0] {
                    Some(r) => (
                        Rtmr0Source::Captured {
                            value: r.value,
                            events: r.events.clone(),
                        },
                        true,
                    ),
                    None => bail!("{}: no RTMR0 in the captured values", p.display()),
                }
            }
            Rtmr0::AcpiDir(_) => {
                let (loader, files) = acpi.as_ref().expect("read above");
                let refs = files
                    .iter()
                    .map(|(n, d)| (n.clone(), d.as_slice()))
                    .collect();
                let blobs = acpi_blobs(loader, &refs).context("--acpi-dir")?;
                (
                    Rtmr0Source::Computed(Rtmr0Inputs {
                        acpi: Some(blobs),
                        ..Rtmr0Inputs::default()
                    }),
                    true,
                )
            }
            Rtmr0::Unknown => (
                Rtmr0Source::Captured {
                    value: [0; 48],
                    events: Vec::new(),
                },
                false,
            ),
        };
        let config = TdxConfig {
            memory,
            qemu,
            ovmf,
            linux_stub,
            rtmr0,
        };

        let mut doc = Measurements::new("tdx");
        file_input(&mut doc, "firmware", &self.firmware, &fw_bytes);
        doc.inputs.insert("memory".into(), Input::value(memory));
        doc.inputs.insert("vcpus".into(), Input::value(self.vcpus));
        doc.inputs
            .insert("qemu_version".into(), Input::value(&self.qemu_version));
        doc.inputs
            .insert("ovmf_profile".into(), Input::value(self.ovmf_profile));
        doc.inputs
            .insert("kernel_measures".into(), Input::value(self.kernel_measures));
        doc.inputs.insert(
            "page_order".into(),
            Input::value(format!("{:?}", config.qemu.page_order)),
        );

        let (kernel, initrd, uki);
        let boot = match &self.boot {
            TdxBoot::Uki {
                uki: uki_path,
                gpt,
                disk,
                failed_boot_attempts,
                stub_version,
            } => {
                uki = read_input(uki_path, "UKI")?;
                file_input(&mut doc, "uki", uki_path, &uki);
                if let Some(disk_path) = disk {
                    doc.inputs.insert(
                        "disk".into(),
                        Input {
                            path: Some(disk_path.display().to_string()),
                            ..Input::default()
                        },
                    );
                }
                let mut u = UkiBoot::new(&uki, gpt.clone());
                u.failed_boot_attempts = *failed_boot_attempts;
                u.stub_version = *stub_version;
                Boot::Uki(u)
            }
            TdxBoot::Direct {
                kernel: kp,
                initrd: ip,
                cmdline,
            } => {
                kernel = read_input(kp, "kernel")?;
                file_input(&mut doc, "kernel", kp, &kernel);
                initrd = ip.as_ref().map(|p| read_input(p, "initrd")).transpose()?;
                if let (Some(p), Some(i)) = (ip, &initrd) {
                    file_input(&mut doc, "initrd", p, i);
                }
                doc.inputs.insert("cmdline".into(), Input::value(cmdline));
                Boot::Direct(DirectBoot {
                    kernel: &kernel,
                    initrd: initrd.as_deref(),
                    cmdline,
                })
            }
        };
        let m = measure(&firmware, &config, &boot)
            .with_context(|| format!("cannot compute TDX measurements for {fw_name}"))?;
        if let (Boot::Uki(u), TdxBoot::Uki { uki: uki_path, .. }) = (&boot, &self.boot) {
            doc.notes.push(
                u.stub_note()
                    .with_context(|| format!("UKI {}", uki_path.display()))?,
            );
        }

        let to_reg = |name: &str, r: &cvmkit_tdx::Register| {
            let mut reg = Register::with_value(name, Bank::Sha384, &r.value);
            for e in &r.events {
                reg.events.push(Event::new(
                    e.label.clone(),
                    Some(&e.event_type.to_string()),
                    e.digest.to_vec(),
                ));
            }
            reg
        };
        doc.registers
            .push(Register::with_value("MRTD", Bank::Sha384, &m.mrtd));
        if rtmr0_known {
            doc.registers.push(to_reg("RTMR0", &m.rtmr0));
        } else {
            doc.notes.push("RTMR0 not computed: give QEMU's ACPI blobs with --acpi-dir, or a captured value with --rtmr0-captured".into());
        }
        doc.registers.push(to_reg("RTMR1", &m.rtmr1));
        doc.registers.push(to_reg("RTMR2", &m.rtmr2));
        if self.ovmf_profile == OvmfProfile::NoCc {
            doc.notes.push("firmware without CC measurement (no TdTcg2Dxe): RTMR0-2 stay zero; only MRTD pins the firmware".into());
        } else {
            doc.notes.push(format!(
                "assumes firmware that measures into RTMRs ({}); Debian bookworm's OVMF.fd does not: use --ovmf-profile no-cc for it",
                self.ovmf_profile
            ));
        }
        Ok(doc)
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

        let fw_bytes = read_input(&self.firmware, "firmware")?;
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
        let kernel = self
            .kernel
            .as_ref()
            .map(|p| read_input(p, "kernel"))
            .transpose()?;
        let initrd = self
            .initrd
            .as_ref()
            .map(|p| read_input(p, "initrd"))
            .transpose()?;
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
            kernel: kernel.as_deref(),
            initrd: initrd.as_deref(),
            append: self.append.as_deref(),
            ovmf_hash,
        };

        let mut doc = Measurements::new(self.mode.name());
        // The inputs' own sha256 (for the document) is hashed on a second thread while the launch
        // digest is computed: both read the same large kernel/initrd.
        let mut files: Vec<(&str, &Path, &[u8])> =
            vec![("firmware", self.firmware.as_path(), fw_bytes.as_slice())];
        if let (Some(p), Some(k)) = (&self.kernel, &kernel) {
            files.push(("kernel", p.as_path(), k.as_slice()));
        }
        if let (Some(p), Some(i)) = (&self.initrd, &initrd) {
            files.push(("initrd", p.as_path(), i.as_slice()));
        }
        if let Some(ap) = &self.append {
            doc.inputs.insert("append".into(), Input::value(ap));
        }
        doc.inputs.insert("vcpus".into(), Input::value(vcpus));
        if let Some(v) = vcpu {
            doc.inputs.insert(
                "vcpu_signature".into(),
                Input::value(format!("{:#010x}", v.signature())),
            );
        }
        doc.inputs.insert(
            "guest_features".into(),
            Input::value(format!("{:#x}", args.guest_features)),
        );
        doc.inputs
            .insert("vmm_type".into(), Input::value(self.vmm_type));

        let ctx = || {
            format!(
                "cannot compute the {} launch digest for {fw_name}",
                self.mode
            )
        };
        let (file_inputs, register) = std::thread::scope(|scope| {
            let hashing = scope.spawn(|| {
                files
                    .iter()
                    .map(|(n, p, d)| (n.to_string(), Input::file(p.display().to_string(), d)))
                    .collect::<Vec<_>>()
            });
            let register = launch_register(mode, &firmware, &args).with_context(ctx);
            (hashing.join().expect("hashing does not panic"), register)
        });
        doc.inputs.extend(file_inputs);
        doc.registers.push(register?);
        Ok(doc)
    }
}

fn launch_register(
    mode: cvmkit_snp::SevMode,
    firmware: &cvmkit_snp::cvmkit_ovmf::Firmware<'_>,
    args: &cvmkit_snp::SnpArgs<'_>,
) -> std::result::Result<Register, cvmkit_snp::SnpError> {
    use cvmkit_snp::SevMode;
    Ok(match mode {
        SevMode::Snp => {
            let m = cvmkit_snp::snp_launch_measure(firmware, args)?;
            let mut r = Register::with_value("LAUNCH_DIGEST", Bank::Sha384, &m.digest);
            // SNP's digest is a chain over PAGE_INFO structures, not an extend fold: the steps
            // are listed to show what was measured, each with its contents' digest.
            for s in &m.steps {
                r.events.push(Event::new(
                    format!(
                        "{} at {:#x} ({} page{})",
                        s.label,
                        s.gpa,
                        s.pages,
                        if s.pages == 1 { "" } else { "s" }
                    ),
                    Some(&format!("{:?}", s.page_type)),
                    s.digest.to_vec(),
                ));
            }
            r
        }
        _ => {
            let d = cvmkit_snp::launch_digest(mode, firmware, args)?;
            Register::with_value("LAUNCH_DIGEST", Bank::Sha256, d.as_bytes())
        }
    })
}
