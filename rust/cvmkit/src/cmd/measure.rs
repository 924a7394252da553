//! `cvmkit measure snp|tdx|tpm`: the values a verifier pins, computed before boot.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use cvmkit_measure::{Bank, Event, Input, Measurements, Register};

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

#[derive(clap::Args, Default)]
pub struct TdxArgs {
    /// The TDX-capable OVMF (TDVF) firmware.
    #[arg(long)]
    pub firmware: PathBuf,
    /// Guest memory (QEMU -m), e.g. 2G, 4096M; a plain number is MiB, as for QEMU.
    #[arg(long, default_value = "2G")]
    pub memory: String,
    /// vCPUs; they reach RTMR0 only through the ACPI tables given with --acpi-dir.
    #[arg(long = "vcpus", visible_alias = "cpus", default_value_t = 1)]
    pub vcpus: u32,
    /// The QEMU version (MAJOR.MINOR): decides the MRTD page order (two-pass before 9) and, for
    /// direct boot, whether QEMU patches the kernel's setup header before OVMF measures it (up to
    /// 10.1 it does; from 10.2 on, QEMU commit a7542a38f399, it leaves it alone).
    #[arg(long, default_value = "10.2")]
    pub qemu_version: String,
    /// Override the MRTD page-add order: two-pass or interleaved.
    #[arg(long)]
    pub page_order: Option<String>,
    /// The firmware's measurement behaviour: edk2-202411 (current), edk2-before-202411 (the
    /// older separator layout), or no-cc (no TdTcg2Dxe, e.g. Debian bookworm's OVMF.fd: RTMRs stay 0).
    #[arg(long, default_value = "edk2-202411")]
    pub ovmf_profile: String,
    /// Whether the kernel's EFI stub measures the command line and initrd into RTMR2 (cc), or
    /// not (none: kernels without EFI CC measurement support, such as Debian's 6.1).
    #[arg(long, default_value = "cc")]
    pub kernel_measures: String,
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

#[derive(clap::Args, Default)]
pub struct TpmArgs {
    /// The UKI.
    #[arg(long)]
    pub uki: PathBuf,
    /// Banks, comma-separated: sha1, sha256, sha384, sha512.
    #[arg(long, default_value = "sha1,sha256,sha384", value_delimiter = ',')]
    pub banks: Vec<String>,
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

#[derive(clap::Args, Default)]
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
    #[arg(long, default_value = "0x1")]
    pub guest_features: String,
    /// The VMM launching the guest: qemu, ec2 or gce.
    #[arg(long, default_value = "qemu")]
    pub vmm_type: String,
    /// The guest mode: snp, seves or sev.
    #[arg(long, default_value = "snp")]
    pub mode: String,
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
        Platform::Check(a) => check(a),
    }
}

/// Reads a measurements file: one document or an array of them.
fn read_documents(path: &Path, what: &str) -> Result<Vec<Measurements>> {
    let text = String::from_utf8(read_input(path, what)?)
        .map_err(|_| anyhow::anyhow!("{what} {} is not UTF-8 text", path.display()))?;
    let value: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{what} {} is not JSON", path.display()))?;
    let items = match value {
        serde_json::Value::Array(items) => items,
        one => vec![one],
    };
    if items.is_empty() {
        bail!("{what} {} holds no measurement documents", path.display());
    }
    items
        .iter()
        .enumerate()
        .map(|(i, v)| {
            Measurements::from_json(&v.to_string())
                .map_err(|e| anyhow::anyhow!("{what} {} (document {i}): {e}", path.display()))
        })
        .collect()
}

#[derive(serde::Serialize)]
struct CheckedDocument {
    platform: String,
    registers: Vec<cvmkit_measure::RegisterComparison>,
}

/// Golden values vs actual ones: documents paired in order (same platforms required), every
/// register of both compared by value and, where the golden file lists them, event by event.
/// Inputs (file paths and hashes) are not compared: the registers are what a verifier pins.
fn check(a: CheckArgs) -> Result<ExitCode> {
    use cvmkit_measure::{RegisterComparison, Verdict};
    if !a.golden.exists() {
        let hint = a.refresh_hint.as_deref().map(|h| format!("; {h}")).unwrap_or_default();
        bail!("golden file {} does not exist{hint}", a.golden.display());
    }
    let golden = read_documents(&a.golden, "golden file")?;
    let actual = read_documents(&a.actual, "measurements")?;
    let platforms = |d: &[Measurements]| d.iter().map(|m| m.platform.clone()).collect::<Vec<_>>();
    let mut problems = Vec::new();
    if platforms(&golden) != platforms(&actual) {
        problems.push(format!(
            "platforms differ: golden {:?}, actual {:?}",
            platforms(&golden),
            platforms(&actual)
        ));
    }
    let mut docs = Vec::new();
    for (g, x) in golden.iter().zip(&actual).filter(|(g, x)| g.platform == x.platform) {
        let mut registers = cvmkit_measure::compare(g, x);
        // Registers the golden file does not know are differences too.
        for r in &x.registers {
            if g.register(&r.name, r.bank).is_none() {
                registers.push(RegisterComparison {
                    name: r.name.clone(),
                    bank: r.bank,
                    verdict: Verdict::Unexpected,
                    expected: String::new(),
                    actual: Some(r.value.clone()),
                    events: Vec::new(),
                });
            }
        }
        docs.push(CheckedDocument { platform: g.platform.clone(), registers });
    }
    let all_match = problems.is_empty() && docs.iter().all(|d| d.registers.iter().all(|r| r.is_match()));
    let report = serde_json::json!({
        "golden": a.golden.display().to_string(),
        "actual": a.actual.display().to_string(),
        "match": all_match,
        "problems": problems,
        "documents": docs,
    });
    let report_text = serde_json::to_string_pretty(&report)? + "\n";
    if a.json {
        print!("{report_text}");
    } else {
        for p in &problems {
            println!("MISMATCH  {p}");
        }
        for d in &docs {
            for r in &d.registers {
                let tag = match r.verdict {
                    Verdict::Match if r.is_match() => "ok",
                    Verdict::Match | Verdict::Mismatch => "MISMATCH",
                    Verdict::Missing => "MISSING",
                    Verdict::Unexpected => "UNEXPECTED",
                };
                let value = r.actual.as_deref().unwrap_or("-");
                println!("{tag:<10} {} {} {} {value}", d.platform, r.name, r.bank.name());
                if !r.is_match() {
                    if r.verdict != Verdict::Unexpected {
                        println!("           golden {}", r.expected);
                    }
                    for e in r.events.iter().filter(|e| e.verdict != Verdict::Match) {
                        println!(
                            "           event {} {:?} {:?}: golden {} actual {}",
                            e.index,
                            e.verdict,
                            e.label,
                            e.expected.as_deref().unwrap_or("-"),
                            e.actual.as_deref().unwrap_or("-")
                        );
                    }
                }
            }
        }
    }
    if !all_match {
        eprintln!(
            "cvmkit: measurements {} differ from the golden values in {}",
            a.actual.display(),
            a.golden.display()
        );
        if let Some(hint) = &a.refresh_hint {
            eprintln!("{hint}");
        }
        return Ok(ExitCode::from(1));
    }
    if let Some(out) = &a.output {
        crate::output::write_bytes(out, report_text.as_bytes())?;
    }
    if !a.json {
        let n: usize = docs.iter().map(|d| d.registers.len()).sum();
        println!("golden: all {n} registers of {} match", platforms(&golden).join(", "));
    }
    Ok(ExitCode::SUCCESS)
}

fn parse_hex_u64(text: &str, what: &str) -> Result<u64> {
    let t = text.trim();
    let digits = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")).unwrap_or(t);
    u64::from_str_radix(digits, 16).with_context(|| format!("{what} {text:?} is not a hexadecimal number"))
}

fn file_input(doc: &mut Measurements, name: &str, path: &Path, data: &[u8]) {
    doc.inputs.insert(name.to_string(), Input::file(path.display().to_string(), data));
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
    let doc = snp_document(&a)?;
    emit(&doc, a.json, a.output.as_deref())?;
    Ok(ExitCode::SUCCESS)
}

/// The SNP (or SEV-ES/SEV) launch digest document for `a`.
pub fn snp_document(a: &SnpArgs) -> Result<Measurements> {
    use cvmkit_snp::cvmkit_ovmf::Firmware;
    use cvmkit_snp::{SevMode, Vcpu, VmmType};

    let fw_bytes = read_input(&a.firmware, "firmware")?;
    let fw_name = a.firmware.display().to_string();
    let firmware = Firmware::parse_named(&fw_bytes, fw_name.clone()).with_context(|| fw_name.clone())?;
    let mode = match a.mode.as_str() {
        "snp" => SevMode::Snp,
        "seves" | "sev-es" => SevMode::SevEs,
        "sev" => SevMode::Sev,
        other => bail!("--mode {other:?}: expected snp, seves or sev"),
    };
    let vmm_type: VmmType = a.vmm_type.parse().map_err(|e| anyhow::anyhow!("--vmm-type: {e}"))?;
    let vcpu = match (&a.vcpu_type, &a.vcpu_sig, a.vcpu_family) {
        (Some(t), _, _) => Some(t.parse::<Vcpu>().map_err(|e| anyhow::anyhow!("--vcpu-type: {e}"))?),
        (_, Some(s), _) => Some(Vcpu::Signature(parse_hex_u64(s, "--vcpu-sig")? as u32)),
        (_, _, Some(f)) => Some(Vcpu::from_family_model_stepping(
            f,
            a.vcpu_model.unwrap_or_default(),
            a.vcpu_stepping.unwrap_or_default(),
        )),
        _ => None,
    };
    let needs_vcpus = mode != SevMode::Sev;
    let vcpus = match a.vcpus {
        Some(n) => n,
        None if needs_vcpus => bail!("--vcpus is required for mode {}", a.mode),
        None => 1,
    };
    if needs_vcpus && vcpu.is_none() && vmm_type == VmmType::Qemu {
        bail!("give the vCPU with --vcpu-type, --vcpu-sig or --vcpu-family/--vcpu-model/--vcpu-stepping");
    }
    let kernel = a.kernel.as_ref().map(|p| read_input(p, "kernel")).transpose()?;
    let initrd = a.initrd.as_ref().map(|p| read_input(p, "initrd")).transpose()?;
    let ovmf_hash = a.ovmf_hash.as_deref().map(cvmkit_snp::parse_ovmf_hash).transpose()?;
    let args = cvmkit_snp::SnpArgs {
        vcpus,
        vcpu,
        guest_features: parse_hex_u64(&a.guest_features, "--guest-features")?,
        vmm_type,
        kernel: kernel.as_deref(),
        initrd: initrd.as_deref(),
        append: a.append.as_deref(),
        ovmf_hash,
    };

    let mut doc = Measurements::new(match mode {
        SevMode::Snp => "snp",
        SevMode::SevEs => "seves",
        SevMode::Sev => "sev",
    });
    // The inputs' own sha256 (for the document) is hashed on a second thread while the launch
    // digest is computed: both read the same large kernel/initrd.
    let mut files: Vec<(&str, &Path, &[u8])> = vec![("firmware", a.firmware.as_path(), fw_bytes.as_slice())];
    if let (Some(p), Some(k)) = (&a.kernel, &kernel) {
        files.push(("kernel", p.as_path(), k.as_slice()));
    }
    if let (Some(p), Some(i)) = (&a.initrd, &initrd) {
        files.push(("initrd", p.as_path(), i.as_slice()));
    }
    if let Some(ap) = &a.append {
        doc.inputs.insert("append".into(), Input::value(ap));
    }
    doc.inputs.insert("vcpus".into(), Input::value(vcpus));
    if let Some(v) = vcpu {
        doc.inputs.insert("vcpu_signature".into(), Input::value(format!("{:#010x}", v.signature())));
    }
    doc.inputs.insert("guest_features".into(), Input::value(format!("{:#x}", args.guest_features)));
    doc.inputs.insert("vmm_type".into(), Input::value(&a.vmm_type));

    let ctx = || format!("cannot compute the {} launch digest for {fw_name}", a.mode);
    let (file_inputs, register) = std::thread::scope(|scope| {
        let hashing = scope.spawn(|| {
            files.iter().map(|(n, p, d)| (n.to_string(), Input::file(p.display().to_string(), d))).collect::<Vec<_>>()
        });
        let register = launch_register(mode, &firmware, &args).with_context(ctx);
        (hashing.join().expect("hashing does not panic"), register)
    });
    doc.inputs.extend(file_inputs);
    doc.registers.push(register?);
    Ok(doc)
}

fn launch_register(
    mode: cvmkit_snp::SevMode,
    firmware: &cvmkit_snp::cvmkit_ovmf::Firmware<'_>,
    args: &cvmkit_snp::SnpArgs<'_>,
) -> Result<Register> {
    use cvmkit_snp::SevMode;
    Ok(match mode {
        SevMode::Snp => {
            let m = cvmkit_snp::snp_launch_measure(firmware, args)?;
            let mut r = Register::with_value("LAUNCH_DIGEST", Bank::Sha384, &m.digest);
            // SNP's digest is a chain over PAGE_INFO structures, not an extend fold: the steps
            // are listed to show what was measured, each with its contents' digest.
            for s in &m.steps {
                r.events.push(Event::new(
                    format!("{} at {:#x} ({} page{})", s.label, s.gpa, s.pages, if s.pages == 1 { "" } else { "s" }),
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

fn tpm(a: TpmArgs) -> Result<ExitCode> {
    let uki = read_input(&a.uki, "UKI")?;
    let doc = tpm_document(&a, &uki)?;
    emit(&doc, a.json, a.output.as_deref())?;
    Ok(ExitCode::SUCCESS)
}

/// The TPM PCR 4 / PCR 11 document for the UKI bytes `uki` (read from `a.uki`).
pub fn tpm_document(a: &TpmArgs, uki: &[u8]) -> Result<Measurements> {
    use cvmkit_tpm::{predict, Bank as TpmBank, EventOrigin, TpmOptions};
    let banks = a
        .banks
        .iter()
        .map(|b| b.parse::<TpmBank>().map_err(|e| anyhow::anyhow!("--banks: {e}")))
        .collect::<Result<Vec<_>>>()?;
    let opts = TpmOptions::default()
        .with_banks(banks)
        .with_phases(a.phases.iter().filter(|p| !p.is_empty()).cloned())
        .with_failed_boot_attempts(a.failed_boot_attempts)
        .with_secure_boot(a.secure_boot)
        .with_stub_version(a.stub_version);
    let p = predict(uki, &opts).with_context(|| format!("UKI {}", a.uki.display()))?;
    let mut doc = Measurements::new("tpm");
    file_input(&mut doc, "uki", &a.uki, uki);
    doc.inputs.insert("failed_boot_attempts".into(), Input::value(a.failed_boot_attempts));
    doc.inputs.insert("secure_boot".into(), Input::value(a.secure_boot));
    if !a.phases.is_empty() {
        doc.inputs.insert("phases".into(), Input::value(a.phases.join(",")));
    }
    doc.notes.push(format!(
        "assumes OVMF starting the UKI from the ESP's removable-media path, systemd-stub {}{}",
        p.stub.version,
        p.stub.loader_info.as_deref().map(|i| format!(" ({i})")).unwrap_or_default()
    ));
    for r in &p.registers {
        let bank = match r.bank {
            TpmBank::Sha1 => Bank::Sha1,
            TpmBank::Sha256 => Bank::Sha256,
            TpmBank::Sha384 => Bank::Sha384,
            _ => Bank::Sha512,
        };
        let mut reg = Register::with_value(format!("PCR{}", r.pcr), bank, &r.value);
        for e in &r.events {
            let ty = match e.origin {
                EventOrigin::Userspace => "userspace".to_string(),
                _ => cvmkit_tcg_log::EventType(e.event_type).to_string(),
            };
            reg.events.push(Event::new(e.label.clone(), Some(&ty), e.digest.clone()));
        }
        doc.registers.push(reg);
    }
    Ok(doc)
}

/// A size such as `2G`, `512M`, `4096MiB`, `1T` or plain bytes.
/// A guest memory size as QEMU's -m takes it: with a unit (2G, 4096M), or a plain number of MiB.
pub fn parse_memory(text: &str) -> Result<u64> {
    if !text.trim().is_empty() && text.trim().bytes().all(|b| b.is_ascii_digit()) {
        return parse_size(&format!("{}M", text.trim()));
    }
    parse_size(text)
}

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

fn tdx(a: TdxArgs) -> Result<ExitCode> {
    let gpt = match (&a.uki, &a.disk) {
        (Some(_), Some(disk_path)) => {
            let mut f = std::fs::File::open(disk_path).with_context(|| format!("cannot read disk {}", disk_path.display()))?;
            Some(
                cvmkit_tdx::uefi_gpt_data_from_reader(&mut f, 512, Some(&disk_path.display().to_string()))
                    .with_context(|| format!("disk {}", disk_path.display()))?,
            )
        }
        _ => None,
    };
    let doc = tdx_document(&a, gpt)?;
    emit(&doc, a.json, a.output.as_deref())?;
    Ok(ExitCode::SUCCESS)
}

/// The TDX document for `a`; for a UKI boot, `gpt` is the disk's `UEFI_GPT_DATA`.
pub fn tdx_document(a: &TdxArgs, gpt: Option<Vec<u8>>) -> Result<Measurements> {
    use cvmkit_tdx::cvmkit_ovmf::Firmware;
    use cvmkit_tdx::{
        acpi_blobs, measure, Boot, Captured, DirectBoot, LinuxStubMeasurement, OvmfProfile, PageOrder, QemuProfile,
        Rtmr0Inputs, Rtmr0Source, TdxConfig, UkiBoot,
    };
    let fw_bytes = read_input(&a.firmware, "firmware")?;
    let fw_name = a.firmware.display().to_string();
    let firmware = Firmware::parse_named(&fw_bytes, fw_name.clone()).with_context(|| fw_name.clone())?;
    let memory = parse_memory(&a.memory).context("--memory")?;
    let (major, minor) = a
        .qemu_version
        .split_once('.')
        .and_then(|(x, y)| Some((x.parse().ok()?, y.parse().ok()?)))
        .with_context(|| format!("--qemu-version {:?}: expected MAJOR.MINOR such as 9.2", a.qemu_version))?;
    let mut qemu = QemuProfile::for_version(major, minor);
    match a.page_order.as_deref() {
        None => {}
        Some("two-pass") => qemu.page_order = PageOrder::TwoPass,
        Some("interleaved") => qemu.page_order = PageOrder::Interleaved,
        Some(o) => bail!("--page-order {o:?}: expected two-pass or interleaved"),
    }
    let ovmf = match a.ovmf_profile.as_str() {
        "edk2-202411" => OvmfProfile::EDK2_202411,
        "edk2-before-202411" => OvmfProfile::EDK2_BEFORE_202411,
        "no-cc" => OvmfProfile::NO_CC_MEASUREMENT,
        o => bail!("--ovmf-profile {o:?}: expected edk2-202411, edk2-before-202411 or no-cc"),
    };
    let linux_stub = match a.kernel_measures.as_str() {
        "cc" => LinuxStubMeasurement::CcMeasurement,
        "none" => LinuxStubMeasurement::None,
        o => bail!("--kernel-measures {o:?}: expected cc or none"),
    };

    // RTMR0: computed from ACPI blobs, captured, or left out (printed as a note, never as zeros).
    let mut acpi_files: Vec<(String, Vec<u8>)> = Vec::new();
    if let Some(dir) = &a.acpi_dir {
        let loader = read_input(&dir.join("etc/table-loader"), "ACPI table loader")?;
        acpi_files.push(("etc/table-loader".into(), loader));
        for name in ["etc/acpi/tables", "etc/acpi/rsdp", "etc/tpm/log"] {
            let p = dir.join(name);
            if p.exists() {
                acpi_files.push((name.into(), read_input(&p, "ACPI blob")?));
            }
        }
    }
    let captured = a
        .rtmr0_captured
        .as_ref()
        .map(|p| -> Result<Captured> {
            let text = std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?;
            Captured::from_json(&text).with_context(|| p.display().to_string())
        })
        .transpose()?;
    let rtmr0_known = a.acpi_dir.is_some() || captured.as_ref().is_some_and(|c| c.rtmr[0].is_some());
    let rtmr0 = if let Some(c) = &captured {
        match &c.rtmr[0] {
            Some(r) => Rtmr0Source::Captured { value: r.value, events: r.events.clone() },
            None => bail!("{}: no RTMR0 in the captured values", a.rtmr0_captured.as_ref().unwrap().display()),
        }
    } else if a.acpi_dir.is_some() {
        let files: std::collections::BTreeMap<String, &[u8]> =
            acpi_files.iter().skip(1).map(|(n, d)| (n.clone(), d.as_slice())).collect();
        let blobs = acpi_blobs(&acpi_files[0].1, &files).context("--acpi-dir")?;
        Rtmr0Source::Computed(Rtmr0Inputs { acpi: Some(blobs), ..Rtmr0Inputs::default() })
    } else {
        Rtmr0Source::Captured { value: [0; 48], events: Vec::new() }
    };
    let config = TdxConfig { memory, qemu, ovmf, linux_stub, rtmr0 };

    let mut doc = Measurements::new("tdx");
    file_input(&mut doc, "firmware", &a.firmware, &fw_bytes);
    doc.inputs.insert("memory".into(), Input::value(memory));
    doc.inputs.insert("vcpus".into(), Input::value(a.vcpus));
    doc.inputs.insert("qemu_version".into(), Input::value(&a.qemu_version));
    doc.inputs.insert("ovmf_profile".into(), Input::value(&a.ovmf_profile));
    doc.inputs.insert("kernel_measures".into(), Input::value(&a.kernel_measures));
    doc.inputs.insert("page_order".into(), Input::value(format!("{:?}", config.qemu.page_order)));

    let (kernel, initrd, uki);
    let boot = if let Some(uki_path) = &a.uki {
        uki = read_input(uki_path, "UKI")?;
        file_input(&mut doc, "uki", uki_path, &uki);
        let gpt = gpt.context("a UKI boot needs the disk's GPT (--disk-gpt)")?;
        if let Some(disk_path) = &a.disk {
            doc.inputs.insert("disk".into(), Input { path: Some(disk_path.display().to_string()), ..Input::default() });
        }
        let mut u = UkiBoot::new(&uki, gpt);
        u.failed_boot_attempts = a.failed_boot_attempts;
        u.stub_version = a.stub_version;
        Boot::Uki(u)
    } else {
        let kp = a.kernel.as_ref().expect("clap requires --kernel without --uki");
        kernel = read_input(kp, "kernel")?;
        file_input(&mut doc, "kernel", kp, &kernel);
        initrd = a.initrd.as_ref().map(|p| read_input(p, "initrd")).transpose()?;
        if let (Some(p), Some(i)) = (&a.initrd, &initrd) {
            file_input(&mut doc, "initrd", p, i);
        }
        doc.inputs.insert("cmdline".into(), Input::value(&a.cmdline));
        Boot::Direct(DirectBoot { kernel: &kernel, initrd: initrd.as_deref(), cmdline: &a.cmdline })
    };
    let m = measure(&firmware, &config, &boot).with_context(|| format!("cannot compute TDX measurements for {fw_name}"))?;
    if let Boot::Uki(u) = &boot {
        doc.notes.push(u.stub_note().with_context(|| format!("UKI {}", a.uki.as_ref().expect("a UKI boot").display()))?);
    }

    let to_reg = |name: &str, r: &cvmkit_tdx::Register| {
        let mut reg = Register::with_value(name, Bank::Sha384, &r.value);
        for e in &r.events {
            reg.events.push(Event::new(e.label.clone(), Some(&e.event_type.to_string()), e.digest.to_vec()));
        }
        reg
    };
    doc.registers.push(Register::with_value("MRTD", Bank::Sha384, &m.mrtd));
    if rtmr0_known {
        doc.registers.push(to_reg("RTMR0", &m.rtmr0));
    } else {
        doc.notes.push("RTMR0 not computed: give QEMU's ACPI blobs with --acpi-dir, or a captured value with --rtmr0-captured".into());
    }
    doc.registers.push(to_reg("RTMR1", &m.rtmr1));
    doc.registers.push(to_reg("RTMR2", &m.rtmr2));
    if a.ovmf_profile == "no-cc" {
        doc.notes.push("firmware without CC measurement (no TdTcg2Dxe): RTMR0-2 stay zero; only MRTD pins the firmware".into());
    } else {
        doc.notes.push(format!(
            "assumes firmware that measures into RTMRs ({}); Debian bookworm's OVMF.fd does not: use --ovmf-profile no-cc for it",
            a.ovmf_profile
        ));
    }
    Ok(doc)
}
