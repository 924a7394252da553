//! `cvmkit measure snp|tdx|tpm|check`: argument parsing and output; the predictions and their
//! documents are cvmkit-snp's, cvmkit-tdx's and cvmkit-tpm's, the comparison cvmkit-measure's.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use cvmkit_measure::{Bank, Measurements, Verdict};
use cvmkit_snp::{SevMode, Vcpu, VmmType};
use cvmkit_tdx::{LinuxStubMeasurement, OvmfProfile, PageOrder, QemuVersion};

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
    /// Check measurements against golden values (exit 0 equal, 1 different, 2 error): the
    /// builder of the flake's golden-measurement checks.
    Check(CheckArgs),
}

#[derive(clap::Args)]
pub struct CheckArgs {
    /// The golden measurements: a `cvmkit.measurements/v1` document or an array of them (an
    /// image's measurements.json).
    pub golden: PathBuf,
    /// The measurements to check, in the same form.
    pub actual: PathBuf,
    /// When everything matches, write the JSON report here (atomically); nothing is written
    /// otherwise, so a Nix check derivation fails without an output.
    #[arg(long, short = 'o')]
    pub output: Option<PathBuf>,
    /// A line printed after the differences, telling how to refresh the golden file.
    #[arg(long)]
    pub refresh_hint: Option<String>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::Args)]
pub struct TdxArgs {
    /// The TDX-capable OVMF (TDVF) firmware.
    #[arg(long)]
    pub firmware: PathBuf,
    /// Guest memory (QEMU -m), e.g. 2G, 4096M; a plain number is MiB, as for QEMU.
    #[arg(long, default_value = "2G", value_parser = parse_memory)]
    pub memory: u64,
    /// vCPUs; they reach RTMR0 only through the ACPI tables given with --acpi-dir.
    #[arg(long = "vcpus", visible_alias = "cpus", default_value_t = 1)]
    pub vcpus: u32,
    /// The QEMU version (MAJOR.MINOR): decides the MRTD page order (two-pass before 9) and, for
    /// direct boot, whether QEMU patches the kernel's setup header before OVMF measures it (up to
    /// 10.1 it does; from 10.2 on, QEMU commit a7542a38f399, it leaves it alone).
    #[arg(long, default_value = "10.2")]
    pub qemu_version: QemuVersion,
    /// Override the MRTD page-add order: two-pass or interleaved.
    #[arg(long)]
    pub page_order: Option<PageOrder>,
    /// The firmware's measurement behaviour: edk2-202411 (current), edk2-before-202411 (the
    /// older separator layout), or no-cc (no TdTcg2Dxe, e.g. Debian bookworm's OVMF.fd: RTMRs stay 0).
    #[arg(long, default_value = "edk2-202411")]
    pub ovmf_profile: OvmfProfile,
    /// Whether the kernel's EFI stub measures the command line and initrd into RTMR2 (cc), or
    /// not (none: kernels without EFI CC measurement support, such as Debian's 6.1).
    #[arg(long, default_value = "cc")]
    pub kernel_measures: LinuxStubMeasurement,
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
    #[arg(long, default_value = "sha1,sha256,sha384", value_delimiter = ',')]
    pub banks: Vec<Bank>,
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
    /// Print machine-readable JSON.
    #[arg(long)]
    pub json: bool,
    /// Also write the JSON document to this file (atomically), e.g. a Nix derivation's $out.
    #[arg(long, short = 'o')]
    pub output: Option<PathBuf>,
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
    pub vcpu_type: Option<Vcpu>,
    /// vCPU signature (CPUID Fn0000_0001 EAX), e.g. 0x00a00f11.
    #[arg(long, conflicts_with = "vcpu_family", value_parser = parse_hex_u32)]
    pub vcpu_sig: Option<u32>,
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
    #[arg(long, default_value = "0x1", value_parser = parse_hex_u64)]
    pub guest_features: u64,
    /// The VMM launching the guest: qemu, ec2 or gce.
    #[arg(long, default_value = "qemu")]
    pub vmm_type: VmmType,
    /// The guest mode: snp, seves or sev.
    #[arg(long, default_value = "snp")]
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
    #[arg(long, value_parser = |s: &str| cvmkit_snp::parse_ovmf_hash(s))]
    pub ovmf_hash: Option<[u8; 48]>,
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
        Platform::Check(a) => check(a),
    }
}

/// Reads a measurements file: one document or an array of them.
fn read_documents(path: &Path, what: &str) -> Result<Vec<Measurements>> {
    let text = String::from_utf8(read_input(path, what)?)
        .map_err(|_| anyhow::anyhow!("{what} {} is not UTF-8 text", path.display()))?;
    let docs = Measurements::list_from_json(&text).map_err(|(i, e)| match i {
        Some(i) => anyhow::anyhow!("{what} {} (document {i}): {e}", path.display()),
        None => anyhow::anyhow!("{what} {}: {e}", path.display()),
    })?;
    if docs.is_empty() {
        bail!("{what} {} holds no measurement documents", path.display());
    }
    Ok(docs)
}

/// Golden values vs actual ones ([`cvmkit_measure::check`]).
fn check(a: CheckArgs) -> Result<ExitCode> {
    if !a.golden.exists() {
        let hint = a.refresh_hint.as_deref().map(|h| format!("; {h}")).unwrap_or_default();
        bail!("golden file {} does not exist{hint}", a.golden.display());
    }
    let golden = read_documents(&a.golden, "golden file")?;
    let actual = read_documents(&a.actual, "measurements")?;
    let result = cvmkit_measure::check(&golden, &actual);
    let report = serde_json::json!({
        "golden": a.golden.display().to_string(),
        "actual": a.actual.display().to_string(),
        "match": result.is_match(),
        "problems": result.problems,
        "documents": result.documents,
    });
    let report_text = serde_json::to_string_pretty(&report)? + "\n";
    if a.json {
        print!("{report_text}");
    } else {
        for p in &result.problems {
            println!("MISMATCH  {p}");
        }
        for d in &result.documents {
            for r in &d.registers {
                let tag = match r.verdict {
                    Verdict::Match if r.is_match() => "ok",
                    Verdict::Match | Verdict::Mismatch => "MISMATCH",
                    Verdict::Missing => "MISSING",
                    Verdict::Unexpected => "UNEXPECTED",
                };
                let value = r.actual.as_ref().map(|v| v.to_hex()).unwrap_or_else(|| "-".into());
                println!("{tag:<10} {} {} {} {value}", d.platform, r.name, r.bank.name());
                if !r.is_match() {
                    if let Some(expected) = &r.expected {
                        println!("           golden {expected}");
                    }
                    for e in r.events.iter().filter(|e| e.verdict != Verdict::Match) {
                        let digest = |d: &Option<cvmkit_measure::Digest>| d.as_ref().map(|d| d.to_hex()).unwrap_or_else(|| "-".into());
                        println!(
                            "           event {} {:?} {:?}: golden {} actual {}",
                            e.index,
                            e.verdict,
                            e.label,
                            digest(&e.expected),
                            digest(&e.actual)
                        );
                    }
                }
            }
        }
    }
    if !result.is_match() {
        eprintln!("cvmkit: measurements {} differ from the golden values in {}", a.actual.display(), a.golden.display());
        if let Some(hint) = &a.refresh_hint {
            eprintln!("{hint}");
        }
        return Ok(ExitCode::from(1));
    }
    if let Some(out) = &a.output {
        crate::output::write_bytes(out, report_text.as_bytes())?;
    }
    if !a.json {
        let n: usize = result.documents.iter().map(|d| d.registers.len()).sum();
        let platforms: Vec<&str> = golden.iter().map(|m| m.platform.name()).collect();
        println!("golden: all {n} registers of {} match", platforms.join(", "));
    }
    Ok(ExitCode::SUCCESS)
}

fn parse_hex_u64(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let digits = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")).unwrap_or(t);
    u64::from_str_radix(digits, 16).map_err(|_| format!("{text:?} is not a hexadecimal number"))
}

fn parse_hex_u32(text: &str) -> Result<u32, String> {
    u32::try_from(parse_hex_u64(text)?).map_err(|_| format!("{text:?} does not fit 32 bits"))
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
    use cvmkit_snp::cvmkit_ovmf::Firmware;
    let fw_bytes = read_input(&a.firmware, "firmware")?;
    let fw_name = a.firmware.display().to_string();
    let firmware = Firmware::parse_named(&fw_bytes, fw_name.clone()).with_context(|| fw_name.clone())?;
    if a.print_ovmf_hash {
        let h = cvmkit_snp::ovmf_hash(&firmware).with_context(|| fw_name.clone())?;
        println!("{}", cvmkit_measure::hex(&h));
        return Ok(ExitCode::SUCCESS);
    }
    let vcpu = match (a.vcpu_type, a.vcpu_sig, a.vcpu_family) {
        (Some(t), _, _) => Some(t),
        (_, Some(s), _) => Some(Vcpu::Signature(s)),
        (_, _, Some(f)) => Some(Vcpu::from_family_model_stepping(
            f,
            a.vcpu_model.unwrap_or_default(),
            a.vcpu_stepping.unwrap_or_default(),
        )),
        _ => None,
    };
    let needs_vcpus = a.mode != SevMode::Sev;
    let vcpus = match a.vcpus {
        Some(n) => n,
        None if needs_vcpus => bail!("--vcpus is required for mode {}", a.mode),
        None => 1,
    };
    if needs_vcpus && vcpu.is_none() && a.vmm_type == VmmType::Qemu {
        bail!("give the vCPU with --vcpu-type, --vcpu-sig or --vcpu-family/--vcpu-model/--vcpu-stepping");
    }
    let kernel = a.kernel.as_ref().map(|p| read_input(p, "kernel")).transpose()?;
    let initrd = a.initrd.as_ref().map(|p| read_input(p, "initrd")).transpose()?;
    let args = cvmkit_snp::SnpArgs {
        vcpus,
        vcpu,
        guest_features: a.guest_features,
        vmm_type: a.vmm_type,
        kernel: kernel.as_deref(),
        initrd: initrd.as_deref(),
        append: a.append.as_deref(),
        ovmf_hash: a.ovmf_hash,
    };
    let (kernel_name, initrd_name) = (a.kernel.as_ref().map(|p| p.display().to_string()), a.initrd.as_ref().map(|p| p.display().to_string()));
    let sources = cvmkit_snp::Sources { firmware: &fw_name, kernel: kernel_name.as_deref(), initrd: initrd_name.as_deref() };
    let doc = cvmkit_snp::document(&firmware, a.mode, &args, &sources)
        .with_context(|| format!("cannot compute the {} launch digest for {fw_name}", a.mode))?;
    emit(&doc, a.json, a.output.as_deref())?;
    Ok(ExitCode::SUCCESS)
}

fn tpm(a: TpmArgs) -> Result<ExitCode> {
    let uki = read_input(&a.uki, "UKI")?;
    let opts = cvmkit_tpm::TpmOptions::default()
        .with_banks(a.banks.clone())
        .with_phases(a.phases.iter().filter(|p| !p.is_empty()).cloned())
        .with_failed_boot_attempts(a.failed_boot_attempts)
        .with_secure_boot(a.secure_boot)
        .with_stub_version(a.stub_version);
    let doc = cvmkit_tpm::document(&a.uki.display().to_string(), &uki, &opts)
        .with_context(|| format!("UKI {}", a.uki.display()))?;
    emit(&doc, a.json, a.output.as_deref())?;
    Ok(ExitCode::SUCCESS)
}

/// A size such as `2G`, `512M`, `4096MiB`, `1T` or plain bytes.
pub fn parse_size(text: &str) -> Result<u64> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num.parse().with_context(|| format!("size {text:?}: expected a number with an optional unit (K, M, G, T)"))?;
    let shift = match unit.trim().to_ascii_uppercase().trim_end_matches("IB").trim_end_matches('B') {
        "" => 0,
        "K" => 10,
        "M" => 20,
        "G" => 30,
        "T" => 40,
        _ => bail!("size {text:?}: unknown unit {unit:?} (use K, M, G or T)"),
    };
    n.checked_mul(1 << shift).with_context(|| format!("size {text:?} is too large"))
}

/// A guest memory size as QEMU's -m takes it: with a unit (2G, 4096M), or a plain number of MiB.
pub fn parse_memory(text: &str) -> Result<u64> {
    if !text.trim().is_empty() && text.trim().bytes().all(|b| b.is_ascii_digit()) {
        return parse_size(&format!("{}M", text.trim()));
    }
    parse_size(text)
}

/// The RTMR0 source the flags ask for: ACPI blobs, a captured value, or unknown.
fn rtmr0_source<'a>(a: &TdxArgs, acpi_files: &'a [(String, Vec<u8>)]) -> Result<cvmkit_tdx::Rtmr0Source<'a>> {
    use cvmkit_tdx::{Rtmr0Inputs, Rtmr0Source};
    if let Some(p) = &a.rtmr0_captured {
        let text = std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?;
        let c = cvmkit_tdx::Captured::from_json(&text).with_context(|| p.display().to_string())?;
        let Some(r) = &c.rtmr[0] else { bail!("{}: no RTMR0 in the captured values", p.display()) };
        return Ok(Rtmr0Source::Captured { value: r.value, events: r.events.clone() });
    }
    if let Some((loader, rest)) = acpi_files.split_first() {
        let files: std::collections::BTreeMap<String, &[u8]> = rest.iter().map(|(n, d)| (n.clone(), d.as_slice())).collect();
        let blobs = cvmkit_tdx::acpi_blobs(&loader.1, &files).context("--acpi-dir")?;
        return Ok(Rtmr0Source::Computed(Rtmr0Inputs { acpi: Some(blobs), ..Rtmr0Inputs::default() }));
    }
    Ok(Rtmr0Source::Unknown)
}

fn tdx(a: TdxArgs) -> Result<ExitCode> {
    use cvmkit_tdx::cvmkit_ovmf::Firmware;
    use cvmkit_tdx::{Boot, DirectBoot, Sources, TdxConfig, UkiBoot};
    let fw_bytes = read_input(&a.firmware, "firmware")?;
    let fw_name = a.firmware.display().to_string();
    let firmware = Firmware::parse_named(&fw_bytes, fw_name.clone()).with_context(|| fw_name.clone())?;
    let mut qemu = a.qemu_version.profile();
    if let Some(order) = a.page_order {
        qemu.page_order = order;
    }
    let mut acpi_files: Vec<(String, Vec<u8>)> = Vec::new();
    if let Some(dir) = &a.acpi_dir {
        acpi_files.push(("etc/table-loader".into(), read_input(&dir.join("etc/table-loader"), "ACPI table loader")?));
        for name in ["etc/acpi/tables", "etc/acpi/rsdp", "etc/tpm/log"] {
            let p = dir.join(name);
            if p.exists() {
                acpi_files.push((name.into(), read_input(&p, "ACPI blob")?));
            }
        }
    }
    let config = TdxConfig {
        memory: a.memory,
        qemu,
        ovmf: a.ovmf_profile,
        linux_stub: a.kernel_measures,
        rtmr0: rtmr0_source(&a, &acpi_files)?,
    };
    let names = |p: &Option<PathBuf>| p.as_ref().map(|p| p.display().to_string());
    let (uki_name, disk_name, kernel_name, initrd_name) = (names(&a.uki), names(&a.disk), names(&a.kernel), names(&a.initrd));
    let sources = Sources {
        firmware: &fw_name,
        uki: uki_name.as_deref(),
        disk: disk_name.as_deref(),
        kernel: kernel_name.as_deref(),
        initrd: initrd_name.as_deref(),
        vcpus: a.vcpus,
        qemu_version: a.qemu_version,
    };
    let (uki, kernel, initrd);
    let boot = match (&a.uki, &a.disk) {
        (Some(uki_path), Some(disk_path)) => {
            uki = read_input(uki_path, "UKI")?;
            let mut f = std::fs::File::open(disk_path).with_context(|| format!("cannot read disk {}", disk_path.display()))?;
            let gpt = cvmkit_tdx::uefi_gpt_data_from_reader(&mut f, 512, Some(&disk_path.display().to_string()))
                .with_context(|| format!("disk {}", disk_path.display()))?;
            let mut u = UkiBoot::new(&uki, gpt);
            u.failed_boot_attempts = a.failed_boot_attempts;
            u.stub_version = a.stub_version;
            Boot::Uki(u)
        }
        _ => {
            let kp = a.kernel.as_ref().context("give --kernel (direct boot) or --uki with --disk")?;
            kernel = read_input(kp, "kernel")?;
            initrd = a.initrd.as_ref().map(|p| read_input(p, "initrd")).transpose()?;
            Boot::Direct(DirectBoot { kernel: &kernel, initrd: initrd.as_deref(), cmdline: &a.cmdline })
        }
    };
    let doc = cvmkit_tdx::document(&firmware, &config, &boot, &sources).with_context(|| match &a.uki {
        Some(u) => format!("cannot compute TDX measurements for {fw_name} and UKI {}", u.display()),
        None => format!("cannot compute TDX measurements for {fw_name}"),
    })?;
    emit(&doc, a.json, a.output.as_deref())?;
    Ok(ExitCode::SUCCESS)
}
