//! `cvmkit measure snp|tdx|tpm|check`: argument parsing and output. The predictions are
//! `cvmkit_image::predict`'s (the same code `cvmkit build` runs), their models and documents the
//! platform crates', the comparison cvmkit-measure's; the flags take the image spec's types.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use cvmkit_image::predict::{self, Rtmr0, TdxBoot, Vcpu};
use cvmkit_image::{KernelMeasures, OvmfProfile, PageOrder, SevMode, TpmBank, VmmType};
use cvmkit_measure::Measurements;

use crate::output::read_input;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    platform: Platform,
}

#[derive(Subcommand)]
enum Platform {
    /// AMD SEV-SNP launch digest (also SEV-ES and SEV), as sev-snp-measure computes it.
    Snp(SnpArgs),
    /// TPM PCR 4 and PCR 11 for OVMF booting a UKI from an ESP (vTPM clouds, QEMU + swtpm).
    Tpm(TpmArgs),
    /// Intel TDX MRTD and RTMR0-2, each with its ordered event list.
    Tdx(TdxArgs),
    /// Every platform's document from one pass over the UKI (TPM, TDX, SNP): each content
    /// hashed once per algorithm, on all cores; a JSON array as in measurements.json.
    All(AllArgs),
    /// Check measurements against golden values (exit 0 equal, 1 different, 2 error): the
    /// builder of the flake's golden-measurement checks.
    Check(super::measure_check::Args),
}

#[derive(clap::Args)]
pub struct AllArgs {
    /// The UKI.
    #[arg(long)]
    pub uki: PathBuf,
    /// The boot disk holding it (its GPT is measured; needed for TDX).
    #[arg(long)]
    pub disk: Option<PathBuf>,
    /// TDX: the TDX-capable OVMF; without it no TDX document.
    #[arg(long)]
    pub tdx_firmware: Option<PathBuf>,
    /// SEV-SNP: the SEV-capable OVMF; without it no SNP document.
    #[arg(long)]
    pub snp_firmware: Option<PathBuf>,
    /// SEV-SNP: number of vCPUs.
    #[arg(long, default_value_t = 1)]
    pub vcpus: u32,
    /// SEV-SNP: vCPU model as QEMU spells it.
    #[arg(long, default_value = "EPYC-v4")]
    pub vcpu_type: String,
    /// SEV-SNP direct boot with kernel hashes: the kernel, initrd and command line QEMU gets.
    #[arg(long, requires_all = ["initrd", "append"])]
    pub kernel: Option<PathBuf>,
    #[arg(long, requires = "kernel")]
    pub initrd: Option<PathBuf>,
    #[arg(long, requires = "kernel")]
    pub append: Option<String>,
    /// Leave out the TPM document.
    #[arg(long)]
    pub no_tpm: bool,
    /// Boot options that failed before the UKI (TPM and TDX).
    #[arg(long, default_value_t = 0)]
    pub failed_boot_attempts: u32,
    /// Also write the JSON array to this file (atomically).
    #[arg(long, short = 'o')]
    pub output: Option<PathBuf>,
}

#[derive(clap::Args)]
pub struct TdxArgs {
    /// The TDX-capable OVMF (TDVF) firmware.
    #[arg(long)]
    pub firmware: PathBuf,
    /// Guest memory (QEMU -m), e.g. 2G, 4096M; a plain number is MiB, as for QEMU.
    #[arg(long, default_value = cvmkit_image::defaults::MEMORY)]
    pub memory: String,
    /// vCPUs; they reach RTMR0 only through the ACPI tables given with --acpi-dir.
    #[arg(long = "vcpus", visible_alias = "cpus", default_value_t = 1)]
    pub vcpus: u32,
    /// The QEMU version (MAJOR.MINOR): decides the MRTD page order (two-pass before 9) and, for
    /// direct boot, whether QEMU patches the kernel's setup header before OVMF measures it (up to
    /// 10.1 it does; from 10.2 on, QEMU commit a7542a38f399, it leaves it alone).
    #[arg(long, default_value = cvmkit_image::defaults::QEMU_VERSION)]
    pub qemu_version: String,
    /// Override the MRTD page-add order: two-pass or interleaved.
    #[arg(long, value_enum)]
    pub page_order: Option<PageOrder>,
    /// The firmware's measurement behaviour: edk2-202411 (current), edk2-before-202411 (the
    /// older separator layout), or no-cc (no TdTcg2Dxe, e.g. Debian bookworm's OVMF.fd: RTMRs stay 0).
    #[arg(long, value_enum, default_value_t)]
    pub ovmf_profile: OvmfProfile,
    /// Whether the kernel's EFI stub measures the command line and initrd into RTMR2 (cc), or
    /// not (none: kernels without EFI CC measurement support, such as Debian's 6.1).
    #[arg(long, value_enum, default_value_t)]
    pub kernel_measures: KernelMeasures,
    /// A UKI booted from a GPT disk (give the disk with --disk).
    #[arg(long, conflicts_with = "kernel", requires = "disk")]
    pub uki: Option<PathBuf>,
    /// The boot disk image holding the UKI (its GPT is measured).
    #[arg(long, visible_alias = "disk-gpt")]
    pub disk: Option<PathBuf>,
    /// Boot options OVMF tried and failed before the UKI.
    #[arg(long, default_value_t = 0)]
    pub failed_boot_attempts: u32,
    /// The systemd-stub major version, if the UKI's .sdmagic does not say it.
    #[arg(long, requires = "uki")]
    pub stub_version: Option<u32>,
    /// Direct boot: the kernel (QEMU -kernel).
    #[arg(long, required_unless_present = "uki")]
    pub kernel: Option<PathBuf>,
    /// Direct boot: the initrd (QEMU -initrd).
    #[arg(long, requires = "kernel")]
    pub initrd: Option<PathBuf>,
    /// Direct boot: the command line (QEMU -append).
    #[arg(long, requires = "kernel", default_value = "")]
    pub cmdline: String,
    /// QEMU's ACPI blobs for this machine shape: a directory with etc/table-loader and the files
    /// it allocates (etc/acpi/tables, etc/acpi/rsdp). Without it (or --rtmr0-captured) RTMR0 is
    /// not printed.
    #[arg(long)]
    pub acpi_dir: Option<PathBuf>,
    /// RTMR0 captured on a real VM of the same shape (JSON: {"rtmr0": "…"}, event lists, or a
    /// dstack event log), for clouds whose firmware inputs are not public (GCP).
    #[arg(long, conflicts_with = "acpi_dir")]
    pub rtmr0_captured: Option<PathBuf>,
    /// Print machine-readable JSON.
    #[arg(long)]
    pub json: bool,
    /// Also write the JSON document to this file (atomically), e.g. a Nix derivation's $out.
    #[arg(long, short = 'o')]
    pub output: Option<PathBuf>,
}

#[derive(clap::Args)]
pub struct TpmArgs {
    /// The UKI.
    #[arg(long)]
    pub uki: PathBuf,
    /// Banks, comma-separated: sha1, sha256, sha384, sha512.
    #[arg(long, value_enum, default_value = "sha1,sha256,sha384", value_delimiter = ',')]
    pub banks: Vec<TpmBank>,
    /// Boot phases systemd extends into PCR 11 after the sections (comma-separated, e.g.
    /// enter-initrd,leave-initrd,sysinit,ready); none predicts the value when the initrd starts.
    #[arg(long, value_delimiter = ',')]
    pub phases: Vec<String>,
    /// Boot options the firmware tried and failed before the UKI (QEMU's q35 has an empty DVD
    /// drive that OVMF tries first unless QEMU runs with -nodefaults: 1 there).
    #[arg(long, default_value_t = 0)]
    pub failed_boot_attempts: u32,
    /// UEFI Secure Boot is on (then systemd-stub < 258 starts the kernel unmeasured in PCR 4).
    #[arg(long)]
    pub secure_boot: bool,
    /// The systemd-stub major version, if the UKI's .sdmagic does not say it.
    #[arg(long)]
    pub stub_version: Option<u32>,
    /// Whose firmware boots the UKI: ovmf (PCR 4, 11), gce (Google's, no TDX: also PCR 5 with
    /// --disk) or gce-td (Google's in a TD: PCR 4, 5, and PCR 2 with --disk).
    #[arg(long, value_enum, default_value = "ovmf")]
    pub firmware_model: FirmwareModel,
    /// The boot disk holding the UKI: its GPT is measured (with a gce firmware model).
    #[arg(long)]
    pub disk: Option<PathBuf>,
    /// Print machine-readable JSON.
    #[arg(long)]
    pub json: bool,
    /// Also write the JSON document to this file (atomically), e.g. a Nix derivation's $out.
    #[arg(long, short = 'o')]
    pub output: Option<PathBuf>,
}

/// `cvmkit_tpm::Firmware` as a flag value.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum FirmwareModel {
    Ovmf,
    Gce,
    GceTd,
}

#[derive(clap::Args)]
pub struct SnpArgs {
    /// The OVMF firmware file (an SEV-capable build).
    #[arg(long)]
    pub firmware: PathBuf,
    /// Number of vCPUs.
    #[arg(long)]
    pub vcpus: Option<u32>,
    /// vCPU model name as QEMU spells it (EPYC, EPYC-v4, EPYC-Milan, EPYC-Genoa, …), or a
    /// signature in hex.
    #[arg(long, conflicts_with_all = ["vcpu_sig", "vcpu_family"])]
    pub vcpu_type: Option<String>,
    /// vCPU signature (CPUID Fn0000_0001 EAX), e.g. 0x00a00f11.
    #[arg(long, conflicts_with = "vcpu_family")]
    pub vcpu_sig: Option<String>,
    /// vCPU family (with --vcpu-model and --vcpu-stepping).
    #[arg(long, requires_all = ["vcpu_model", "vcpu_stepping"])]
    pub vcpu_family: Option<u32>,
    /// vCPU model number.
    #[arg(long, requires = "vcpu_family")]
    pub vcpu_model: Option<u32>,
    /// vCPU stepping.
    #[arg(long, requires = "vcpu_family")]
    pub vcpu_stepping: Option<u32>,
    /// SEV_FEATURES of the guest (hex), e.g. 0x1 (SNP only) or 0x21 (with debug swap, QEMU's default).
    #[arg(long, default_value = cvmkit_image::defaults::GUEST_FEATURES)]
    pub guest_features: String,
    /// The VMM launching the guest: qemu, ec2 or gce.
    #[arg(long, value_enum, ignore_case = true, default_value_t)]
    pub vmm_type: VmmType,
    /// The guest mode: snp, seves or sev.
    #[arg(long, value_enum, default_value_t)]
    pub mode: SevMode,
    /// Kernel for direct boot (measured through OVMF's kernel-hashes table).
    #[arg(long)]
    pub kernel: Option<PathBuf>,
    /// Initrd for direct boot.
    #[arg(long, requires = "kernel")]
    pub initrd: Option<PathBuf>,
    /// Kernel command line for direct boot.
    #[arg(long, requires = "kernel")]
    pub append: Option<String>,
    /// A precomputed OVMF hash (96 hex digits), as from --print-ovmf-hash.
    #[arg(long)]
    pub ovmf_hash: Option<String>,
    /// Print only the OVMF hash (the digest after the firmware pages), for --ovmf-hash later.
    #[arg(long)]
    pub print_ovmf_hash: bool,
    /// Print machine-readable JSON.
    #[arg(long)]
    pub json: bool,
    /// Also write the JSON document to this file (atomically), e.g. a Nix derivation's $out.
    #[arg(long, short = 'o')]
    pub output: Option<PathBuf>,
}

pub fn run(args: Args) -> Result<ExitCode> {
    match args.platform {
        Platform::Snp(a) => snp(a),
        Platform::Tpm(a) => tpm(a),
        Platform::Tdx(a) => tdx(a),
        Platform::All(a) => all(a),
        Platform::Check(a) => super::measure_check::run(a),
    }
}

fn emit(doc: &Measurements, json: bool, output: Option<&Path>) -> Result<()> {
    if let Some(path) = output {
        crate::output::write_bytes(path, doc.to_json().as_bytes())?;
    }
    if json {
        print!("{}", doc.to_json());
    } else {
        crate::cmd::replay::print_document(doc);
    }
    Ok(())
}

fn snp(a: SnpArgs) -> Result<ExitCode> {
    if a.print_ovmf_hash {
        use cvmkit_snp::cvmkit_ovmf::Firmware;
        let fw_bytes = read_input(&a.firmware, "firmware")?;
        let fw_name = a.firmware.display().to_string();
        let firmware = Firmware::parse_named(&fw_bytes, fw_name.clone()).with_context(|| fw_name.clone())?;
        let h = cvmkit_snp::ovmf_hash(&firmware).with_context(|| fw_name.clone())?;
        println!("{}", cvmkit_measure::hex(&h));
        return Ok(ExitCode::SUCCESS);
    }
    let vcpu = match (a.vcpu_type, a.vcpu_sig, a.vcpu_family) {
        (Some(t), _, _) => Some(Vcpu::Type(t)),
        (_, Some(s), _) => Some(Vcpu::Signature(s)),
        (_, _, Some(f)) => Some(Vcpu::FamilyModelStepping(f, a.vcpu_model.unwrap_or_default(), a.vcpu_stepping.unwrap_or_default())),
        _ => None,
    };
    let request = predict::Snp {
        firmware: a.firmware,
        mode: a.mode,
        vcpus: a.vcpus,
        vcpu,
        guest_features: a.guest_features,
        vmm_type: a.vmm_type,
        kernel: a.kernel,
        initrd: a.initrd,
        append: a.append,
        ovmf_hash: a.ovmf_hash,
    };
    emit(&request.document()?, a.json, a.output.as_deref())?;
    Ok(ExitCode::SUCCESS)
}

/// The boot disk's `UEFI_GPT_DATA` (what the firmware measures), read from its first sectors.
fn disk_gpt(disk_path: &Path) -> Result<Vec<u8>> {
    let mut f = std::fs::File::open(disk_path).with_context(|| format!("cannot read disk {}", disk_path.display()))?;
    cvmkit_tdx::uefi_gpt_data_from_reader(&mut f, 512, Some(&disk_path.display().to_string()))
        .with_context(|| format!("disk {}", disk_path.display()))
}

fn all(a: AllArgs) -> Result<ExitCode> {
    use cvmkit_measure::Bank;
    let gpt = a.disk.as_deref().map(disk_gpt).transpose()?;
    if a.tdx_firmware.is_some() && gpt.is_none() {
        bail!("--tdx-firmware predicts a disk boot: give the disk with --disk");
    }
    let mut banks = Vec::new();
    if !a.no_tpm {
        banks.extend([Bank::Sha1, Bank::Sha256, Bank::Sha384]);
    }
    let tdx = a.tdx_firmware.is_some();
    if tdx {
        banks.push(Bank::Sha384);
    }
    // One sequential pass over the file computes every large digest, in bounded memory.
    let streamed = predict::read_uki(&a.uki, &banks, if tdx { &[Bank::Sha384] } else { &[] }, None)?;
    let (uki, digests) = (&streamed.bytes, streamed.digests.clone());
    let mut docs = Vec::new();
    if !a.no_tpm {
        let mut t = predict::Tpm::new(&a.uki);
        t.failed_boot_attempts = a.failed_boot_attempts;
        t.digests = digests.clone();
        docs.push(t.document(uki)?);
    }
    if let (Some(fw), Some(gpt)) = (&a.tdx_firmware, gpt) {
        let boot = TdxBoot::Uki { uki: a.uki.clone(), gpt, disk: a.disk.clone(), failed_boot_attempts: a.failed_boot_attempts, stub_version: None };
        docs.push(predict::Tdx::new(fw, boot).document_with(Some(uki), digests.clone())?);
    }
    if let Some(fw) = &a.snp_firmware {
        let mut s = predict::Snp::new(fw);
        s.vcpus = Some(a.vcpus);
        s.vcpu = Some(Vcpu::Type(a.vcpu_type.clone()));
        s.kernel = a.kernel.clone();
        s.initrd = a.initrd.clone();
        s.append = a.append.clone();
        docs.push(s.document()?);
    }
    predict::check_streamed(digests.as_ref())?;
    if docs.is_empty() {
        bail!("nothing to measure: give --tdx-firmware or --snp-firmware, or leave out --no-tpm");
    }
    // The shape of an image's measurements.json.
    let mut json = serde_json::to_string_pretty(&docs).context("cannot serialize measurements")?;
    json.push('\n');
    if let Some(path) = &a.output {
        crate::output::write_bytes(path, json.as_bytes())?;
    }
    print!("{json}");
    Ok(ExitCode::SUCCESS)
}

fn tpm(a: TpmArgs) -> Result<ExitCode> {
    let firmware = match a.firmware_model {
        FirmwareModel::Ovmf => cvmkit_tpm::Firmware::Ovmf,
        FirmwareModel::Gce => cvmkit_tpm::Firmware::Gce,
        FirmwareModel::GceTd => cvmkit_tpm::Firmware::GceTd,
    };
    let gpt = a.disk.as_deref().map(disk_gpt).transpose()?;
    if gpt.is_some() && matches!(a.firmware_model, FirmwareModel::Ovmf) {
        bail!("--disk is for --firmware-model gce or gce-td (OVMF's PCR 5 is not predicted)");
    }
    let banks: Vec<cvmkit_measure::Bank> = a.banks.iter().map(|b| b.bank()).collect();
    let streamed = predict::read_uki(&a.uki, &banks, &[], a.stub_version)?;
    let request = predict::Tpm {
        uki: a.uki,
        banks: a.banks,
        phases: a.phases,
        failed_boot_attempts: a.failed_boot_attempts,
        secure_boot: a.secure_boot,
        stub_version: a.stub_version,
        firmware,
        gpt,
        digests: streamed.digests.clone(),
    };
    let doc = request.document(&streamed.bytes)?;
    predict::check_streamed(streamed.digests.as_ref())?;
    emit(&doc, a.json, a.output.as_deref())?;
    Ok(ExitCode::SUCCESS)
}

fn tdx(a: TdxArgs) -> Result<ExitCode> {
    let boot = match (a.uki, &a.disk) {
        (Some(uki), Some(disk_path)) => {
            let gpt = disk_gpt(disk_path)?;
            TdxBoot::Uki {
                uki,
                gpt,
                disk: a.disk.clone(),
                failed_boot_attempts: a.failed_boot_attempts,
                stub_version: a.stub_version,
            }
        }
        _ => TdxBoot::Direct {
            kernel: a.kernel.context("give --kernel (direct boot) or --uki with --disk")?,
            initrd: a.initrd,
            cmdline: a.cmdline,
        },
    };
    let rtmr0 = match (a.acpi_dir, a.rtmr0_captured) {
        (Some(dir), _) => Rtmr0::AcpiDir(dir),
        (_, Some(file)) => Rtmr0::Captured(file),
        _ => Rtmr0::Unknown,
    };
    let request = predict::Tdx {
        firmware: a.firmware,
        memory: a.memory,
        vcpus: a.vcpus,
        qemu_version: a.qemu_version,
        page_order: a.page_order,
        ovmf_profile: a.ovmf_profile,
        kernel_measures: a.kernel_measures,
        rtmr0,
        boot,
        firmware_measured: None,
    };
    let doc = match &request.boot {
        TdxBoot::Uki { uki, stub_version, .. } => {
            // RTMR1/RTMR2 hash in SHA-384, the kernel's initrd too when it measures it.
            use cvmkit_measure::Bank;
            let initrd: &[Bank] = if request.kernel_measures == KernelMeasures::Cc { &[Bank::Sha384] } else { &[] };
            let streamed = predict::read_uki(uki, &[Bank::Sha384], initrd, *stub_version)?;
            let doc = request.document_with(Some(&streamed.bytes), streamed.digests.clone())?;
            predict::check_streamed(streamed.digests.as_ref())?;
            doc
        }
        TdxBoot::Direct { .. } => request.document()?,
    };
    emit(&doc, a.json, a.output.as_deref())?;
    Ok(ExitCode::SUCCESS)
}
