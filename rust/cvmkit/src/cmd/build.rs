//! `cvmkit build --spec FILE -o DIR`: the whole image from one JSON spec.
//!
//! This is the builder of the Nix image derivations: Nix evaluates the image modules into this
//! spec (every input a store path) and runs `cvmkit build` with no shell and no stdenv. The same
//! spec runs outside Nix, so every step is testable with `cargo test`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use serde::Deserialize;

use crate::output::{read_input, write_atomically, write_bytes};

/// The value of `schema` in a build spec.
pub const SPEC_SCHEMA: &str = "cvmkit.image/v1";

#[derive(clap::Args)]
pub struct Args {
    /// The image spec (JSON, schema "cvmkit.image/v1"); relative paths in it are relative to
    /// the spec file's directory.
    #[arg(long, required_unless_present = "spec_json", conflicts_with = "spec_json")]
    spec: Option<PathBuf>,
    /// The spec as JSON text (relative paths are relative to the working directory). Nix passes
    /// it this way: a string keeps the store paths it names as build dependencies, which a file
    /// written by builtins.toFile cannot.
    #[arg(long, value_name = "JSON")]
    spec_json: Option<String>,
    /// Output directory (created; existing outputs in it are replaced).
    #[arg(short = 'o', long = "output", visible_alias = "out", value_name = "DIR")]
    out: PathBuf,
}

/// The image spec. Unknown keys are errors, so a typo cannot silently drop a setting.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    pub schema: String,
    /// Image name, used in messages and as the default seed.
    pub name: String,
    /// The one timestamp of every output (cpio mtimes, PE TimeDateStamp, FAT times, tar mtime).
    #[serde(default)]
    pub source_date_epoch: u32,
    pub initrd: InitrdSpec,
    pub uki: UkiSpec,
    /// The disk around the UKI (optional).
    #[serde(default)]
    pub disk: Option<DiskSpec>,
    /// Measurements to predict into measurements.json: one platform or a list.
    #[serde(default)]
    pub measure: Option<OneOrMany<MeasureSpec>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiskSpec {
    /// raw, gcp, vhd or qcow2.
    pub format: String,
    /// Seed of the GUIDs and the FAT volume id (default: the image name).
    #[serde(default)]
    pub seed: Option<String>,
    #[serde(default)]
    pub data_size: Option<String>,
    #[serde(default)]
    pub esp_size: Option<String>,
    #[serde(default)]
    pub disk_size: Option<String>,
}

/// One item or a list of them.
pub enum OneOrMany<T> {
    One(T),
    Many(Vec<T>),
}

// Not `#[serde(untagged)]`: that hides the item's own error ("unknown field `x`") behind "did
// not match any variant"; deciding by the JSON's shape keeps it, with the item's index.
impl<'de, T: serde::de::DeserializeOwned> Deserialize<'de> for OneOrMany<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        match serde_json::Value::deserialize(d)? {
            serde_json::Value::Array(items) => items
                .into_iter()
                .enumerate()
                .map(|(i, v)| serde_json::from_value(v).map_err(|e| D::Error::custom(format!("item {i}: {e}"))))
                .collect::<Result<Vec<T>, D::Error>>()
                .map(OneOrMany::Many),
            v => serde_json::from_value(v).map(OneOrMany::One).map_err(D::Error::custom),
        }
    }
}

impl<T> OneOrMany<T> {
    fn into_vec(self) -> Vec<T> {
        match self {
            OneOrMany::One(t) => vec![t],
            OneOrMany::Many(v) => v,
        }
    }
}

/// What to predict. `tpm` needs nothing more; `tdx` and `snp` need the firmware.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MeasureSpec {
    /// tpm, tdx or snp.
    pub platform: String,
    #[serde(default)]
    pub firmware: Option<PathBuf>,
    /// TDX: guest memory (default 2G).
    #[serde(default)]
    pub memory: Option<String>,
    /// TDX: QEMU version (default 10.2).
    #[serde(default)]
    pub qemu_version: Option<String>,
    /// TDX: firmware profile (edk2-202411, edk2-before-202411, no-cc).
    #[serde(default)]
    pub ovmf_profile: Option<String>,
    /// TDX: whether the kernel measures into RTMR2 (cc or none).
    #[serde(default)]
    pub kernel_measures: Option<String>,
    /// TDX: captured RTMR0 (JSON file).
    #[serde(default)]
    pub rtmr0_captured: Option<PathBuf>,
    /// SNP: vCPU count and type, guest features, VMM type.
    #[serde(default)]
    pub vcpus: Option<u32>,
    #[serde(default)]
    pub vcpu_type: Option<String>,
    #[serde(default)]
    pub guest_features: Option<String>,
    #[serde(default)]
    pub vmm_type: Option<String>,
    /// SNP: predict QEMU's direct boot of this image's kernel (`uki.kernel`), built initrd and
    /// command line (`uki.cmdline`) with `kernel-hashes=on`, as `cvmkit measure snp --kernel
    /// --initrd --append` does; the firmware must have OVMF's kernel-hashes table (AmdSev build).
    #[serde(default)]
    pub kernel_hashes: bool,
    /// TPM: boot options OVMF tried and failed first.
    #[serde(default)]
    pub failed_boot_attempts: Option<u32>,
    /// Lines appended to the document's `notes`: what a verifier must know beyond the register
    /// values (the Nix library adds how cvmkit-runtime extends PCR 15 / RTMR3 with the manifest).
    #[serde(default)]
    pub notes: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InitrdSpec {
    /// Directory trees merged in order (later entries replace earlier ones of the same name).
    #[serde(default)]
    pub trees: Vec<PathBuf>,
    /// gen_init_cpio spec files applied after the trees, in order.
    #[serde(default)]
    pub spec_files: Vec<PathBuf>,
    /// none, gzip, zstd, or with a level (zstd:19).
    #[serde(default = "default_compress")]
    pub compress: String,
    #[serde(default)]
    pub preserve_modes: bool,
    #[serde(default)]
    pub allow_dangling_symlinks: bool,
}

fn default_compress() -> String {
    "zstd".into()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UkiSpec {
    pub stub: PathBuf,
    pub kernel: PathBuf,
    #[serde(default)]
    pub cmdline: Option<String>,
    #[serde(default)]
    pub os_release: Option<PathBuf>,
    #[serde(default)]
    pub uname: Option<String>,
    /// Further initrds appended after the built one (microcode, …).
    #[serde(default)]
    pub extra_initrds: Vec<PathBuf>,
}

impl Spec {
    /// Reads and checks a spec file; relative paths are resolved against its directory.
    pub fn load(path: &Path) -> Result<Spec> {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read spec {}", path.display()))?;
        Spec::parse(&text, &path.display().to_string(), path.parent().unwrap_or(Path::new(".")))
    }

    /// Parses spec text named `origin` in messages; relative paths are resolved against `base`.
    pub fn parse(text: &str, origin: &str, base: &Path) -> Result<Spec> {
        let mut spec: Spec =
            serde_json::from_str(text).with_context(|| format!("spec {origin} is not a valid image spec"))?;
        if spec.schema != SPEC_SCHEMA {
            bail!("spec {origin}: schema {:?} is not {SPEC_SCHEMA:?}", spec.schema);
        }
        let fix = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        spec.initrd.trees.iter_mut().for_each(fix);
        spec.initrd.spec_files.iter_mut().for_each(fix);
        if let Some(m) = spec.measure.as_mut() {
            let list = match m {
                OneOrMany::One(x) => std::slice::from_mut(x),
                OneOrMany::Many(v) => v.as_mut_slice(),
            };
            for x in list {
                x.firmware.iter_mut().for_each(fix);
                x.rtmr0_captured.iter_mut().for_each(fix);
            }
        }
        fix(&mut spec.uki.stub);
        fix(&mut spec.uki.kernel);
        spec.uki.os_release.iter_mut().for_each(fix);
        spec.uki.extra_initrds.iter_mut().for_each(fix);
        Ok(spec)
    }
}

pub fn run(args: Args) -> Result<ExitCode> {
    let spec = match (&args.spec, &args.spec_json) {
        (Some(path), _) => Spec::load(path)?,
        (None, Some(text)) => Spec::parse(text, "given with --spec-json", Path::new("."))?,
        (None, None) => bail!("give --spec FILE or --spec-json TEXT"),
    };
    std::fs::create_dir_all(&args.out).with_context(|| format!("cannot create output directory {}", args.out.display()))?;
    let what = |step: &str| format!("image {}: {step}", spec.name);

    // 1. initrd
    let opts = cvmkit_initrd::Options {
        mtime: spec.source_date_epoch,
        preserve_modes: spec.initrd.preserve_modes,
        allow_dangling_symlinks: spec.initrd.allow_dangling_symlinks,
    };
    let compression: cvmkit_initrd::Compression =
        spec.initrd.compress.parse().map_err(|e| anyhow::anyhow!("{}: {e}", what("initrd.compress")))?;
    let specs = spec
        .initrd
        .spec_files
        .iter()
        .map(|p| cvmkit_initrd::Spec::from_file(p))
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| what("initrd spec"))?;
    let trees: Vec<&Path> = spec.initrd.trees.iter().map(PathBuf::as_path).collect();
    let spec_refs: Vec<&cvmkit_initrd::Spec> = specs.iter().collect();
    let mut initrd = Vec::new();
    cvmkit_initrd::build_from(&trees, &spec_refs, &opts, compression, &mut initrd).with_context(|| what("initrd"))?;
    let initrd_path = args.out.join("initrd.img");
    write_bytes(&initrd_path, &initrd)?;

    // 2. UKI
    let stub = read_input(&spec.uki.stub, "stub")?;
    let kernel = read_input(&spec.uki.kernel, "kernel")?;
    let mut initrds = vec![initrd];
    for p in &spec.uki.extra_initrds {
        initrds.push(read_input(p, "initrd")?);
    }
    let os_release = spec.uki.os_release.as_ref().map(|p| read_input(p, "os-release")).transpose()?;
    let parts = cvmkit_uki::UkiParts {
        linux: &kernel,
        initrds: initrds.iter().map(Vec::as_slice).collect(),
        cmdline: spec.uki.cmdline.as_deref(),
        os_release: os_release.as_deref(),
        uname: spec.uki.uname.as_deref(),
        ..Default::default()
    };
    let uki = cvmkit_uki::build_uki(&stub, &parts, spec.source_date_epoch).with_context(|| what("UKI"))?;
    let uki_path = args.out.join("uki.efi");
    write_bytes(&uki_path, &uki)?;
    println!("{}: built {} and {}", spec.name, initrd_path.display(), uki_path.display());

    // 3. disk
    let mut gpt_disk: Option<Vec<u8>> = None;
    if let Some(d) = &spec.disk {
        let format: cvmkit_disk::Format = d.format.parse().map_err(|e| anyhow::anyhow!("{}: {e}", what("disk.format")))?;
        let mut ds = cvmkit_disk::DiskSpec::new(&uki_path, d.seed.clone().unwrap_or_else(|| spec.name.clone()), u64::from(spec.source_date_epoch));
        let size = |v: &Option<String>, key: &str| v.as_deref().map(crate::cmd::measure::parse_size).transpose().with_context(|| what(key));
        ds.data_size = size(&d.data_size, "disk.data_size")?;
        ds.esp_size = size(&d.esp_size, "disk.esp_size")?;
        ds.disk_size = size(&d.disk_size, "disk.disk_size")?;
        let layout = cvmkit_disk::DiskLayout::plan(&ds, format).with_context(|| what("disk"))?;
        let disk_path = args.out.join(format!("disk.{}", format.extension()));
        write_atomically(&disk_path, |w| {
            let file = w.get_mut();
            let report = layout.write(&mut **file)?;
            file.set_len(report.output_size)?;
            Ok(())
        })?;
        // The GPT as firmware reads it (protective MBR, header, entries): what TDX's
        // EV_EFI_GPT_EVENT measures, the same whatever container the disk ships in.
        gpt_disk = Some(layout.gpt().primary_bytes());
        println!("{}: built {}", spec.name, disk_path.display());
    }

    // 4. measurements.json: one document per platform, in the order given.
    if let Some(m) = spec.measure {
        let mut docs = Vec::new();
        for item in m.into_vec() {
            let direct = DirectBoot { kernel: &spec.uki.kernel, initrd: &initrd_path, cmdline: spec.uki.cmdline.as_deref(), extra_initrds: spec.uki.extra_initrds.len() };
            let mut doc = measure_one(&spec.name, &item, &uki, &uki_path, gpt_disk.as_deref(), &direct)?;
            doc.notes.extend(item.notes.iter().cloned());
            // Outputs are named relative to the output directory: its path (a Nix store path,
            // a temporary directory) must not reach the bytes of measurements.json.
            for input in doc.inputs.values_mut() {
                if let Some(rel) = input.path.as_deref().and_then(|p| Path::new(p).strip_prefix(&args.out).ok()) {
                    input.path = Some(rel.display().to_string());
                }
            }
            docs.push(doc);
        }
        let path = args.out.join("measurements.json");
        let mut text = serde_json::to_string_pretty(&docs)?;
        text.push('\n');
        write_bytes(&path, text.as_bytes())?;
        println!("{}: predicted {} ({} platform{})", spec.name, path.display(), docs.len(), if docs.len() == 1 { "" } else { "s" });
    }
    Ok(ExitCode::SUCCESS)
}

/// What QEMU's direct boot of the image loads: its kernel, its built initrd, its command line.
struct DirectBoot<'a> {
    kernel: &'a Path,
    initrd: &'a Path,
    cmdline: Option<&'a str>,
    /// `uki.extra_initrds`: the UKI concatenates them, QEMU's `-initrd` takes one file.
    extra_initrds: usize,
}

fn measure_one(
    name: &str,
    m: &MeasureSpec,
    uki: &[u8],
    uki_path: &Path,
    gpt_disk: Option<&[u8]>,
    direct: &DirectBoot<'_>,
) -> Result<cvmkit_measure::Measurements> {
    let ctx = || format!("image {name}: measure.{}", m.platform);
    if m.kernel_hashes && m.platform != "snp" {
        bail!("image {name}: measure {}: \"kernel_hashes\" is for snp only", m.platform);
    }
    let firmware = || m.firmware.clone().with_context(|| format!("image {name}: measure {} needs \"firmware\"", m.platform));
    let field = |key: &str, e: &dyn std::fmt::Display| anyhow::anyhow!("image {name}: measure.{key}: {e}");
    let uki_name = uki_path.display().to_string();
    match m.platform.as_str() {
        "tpm" => {
            let opts = cvmkit_tpm::TpmOptions::default()
                .with_banks([cvmkit_measure::Bank::Sha1, cvmkit_measure::Bank::Sha256, cvmkit_measure::Bank::Sha384])
                .with_failed_boot_attempts(m.failed_boot_attempts.unwrap_or(0));
            cvmkit_tpm::document(&uki_name, uki, &opts).with_context(ctx)
        }
        "tdx" => {
            use cvmkit_tdx::{Boot, Rtmr0Source, Sources, TdxConfig, UkiBoot};
            let disk = gpt_disk.with_context(|| format!("image {name}: measure tdx predicts a disk boot and needs a \"disk\""))?;
            let gpt = cvmkit_tdx::uefi_gpt_data(disk, 512, None).with_context(ctx)?;
            let fw_path = firmware()?;
            let fw_bytes = crate::output::read_input(&fw_path, "firmware")?;
            let fw_name = fw_path.display().to_string();
            let fw = cvmkit_tdx::cvmkit_ovmf::Firmware::parse_named(&fw_bytes, fw_name.clone()).with_context(ctx)?;
            let qemu_version: cvmkit_tdx::QemuVersion =
                m.qemu_version.as_deref().unwrap_or("10.2").parse().map_err(|e| field("qemu_version", &e))?;
            let rtmr0 = match &m.rtmr0_captured {
                Some(p) => {
                    let text = std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?;
                    let c = cvmkit_tdx::Captured::from_json(&text).with_context(|| p.display().to_string())?;
                    let Some(r) = &c.rtmr[0] else { bail!("{}: no RTMR0 in the captured values", p.display()) };
                    Rtmr0Source::Captured { value: r.value, events: r.events.clone() }
                }
                None => Rtmr0Source::Unknown,
            };
            let config = TdxConfig {
                memory: crate::cmd::measure::parse_memory(m.memory.as_deref().unwrap_or("2G")).with_context(ctx)?,
                qemu: qemu_version.profile(),
                ovmf: m.ovmf_profile.as_deref().unwrap_or("edk2-202411").parse().map_err(|e| field("ovmf_profile", &e))?,
                linux_stub: m.kernel_measures.as_deref().unwrap_or("cc").parse().map_err(|e| field("kernel_measures", &e))?,
                rtmr0,
            };
            let mut u = UkiBoot::new(uki, gpt);
            u.failed_boot_attempts = m.failed_boot_attempts.unwrap_or(0);
            let sources = Sources { firmware: &fw_name, uki: Some(&uki_name), vcpus: 1, qemu_version, ..Sources::default() };
            cvmkit_tdx::document(&fw, &config, &Boot::Uki(u), &sources).with_context(ctx)
        }
        "snp" => {
            if m.kernel_hashes && direct.extra_initrds > 0 {
                bail!("image {name}: measure snp: \"kernel_hashes\" predicts QEMU's -initrd, one file, but the UKI has {} extra initrd(s)", direct.extra_initrds);
            }
            let fw_path = firmware()?;
            let fw_bytes = crate::output::read_input(&fw_path, "firmware")?;
            let fw_name = fw_path.display().to_string();
            let fw = cvmkit_snp::cvmkit_ovmf::Firmware::parse_named(&fw_bytes, fw_name.clone()).with_context(ctx)?;
            let vcpu_type = m.vcpu_type.as_deref().unwrap_or("EPYC-v4");
            let features = m.guest_features.as_deref().unwrap_or("0x1");
            let features_hex = features.trim().trim_start_matches("0x").trim_start_matches("0X");
            let (kernel, initrd) = if m.kernel_hashes {
                (Some(crate::output::read_input(direct.kernel, "kernel")?), Some(crate::output::read_input(direct.initrd, "initrd")?))
            } else {
                (None, None)
            };
            let args = cvmkit_snp::SnpArgs {
                vcpus: m.vcpus.unwrap_or(1),
                vcpu: Some(vcpu_type.parse().map_err(|e| field("vcpu_type", &e))?),
                guest_features: u64::from_str_radix(features_hex, 16)
                    .map_err(|_| field("guest_features", &format!("{features:?} is not a hexadecimal number")))?,
                vmm_type: m.vmm_type.as_deref().unwrap_or("qemu").parse().map_err(|e| field("vmm_type", &e))?,
                kernel: kernel.as_deref(),
                initrd: initrd.as_deref(),
                // The same inputs and code as `cvmkit measure snp --kernel --initrd --append`.
                append: if m.kernel_hashes { direct.cmdline } else { None },
                ovmf_hash: None,
            };
            let (kernel_name, initrd_name) = (direct.kernel.display().to_string(), direct.initrd.display().to_string());
            let sources = cvmkit_snp::Sources {
                firmware: &fw_name,
                kernel: m.kernel_hashes.then_some(kernel_name.as_str()),
                initrd: m.kernel_hashes.then_some(initrd_name.as_str()),
            };
            let mut doc = cvmkit_snp::document(&fw, cvmkit_snp::SevMode::Snp, &args, &sources).with_context(ctx)?;
            if m.kernel_hashes {
                doc.notes.push(format!(
                    "direct boot only: this launch digest holds for QEMU with -object sev-snp-guest,id=sev0,cbitpos=51,reduced-phys-bits=1,kernel-hashes=on -machine confidential-guest-support=sev0 -smp {} -cpu {} -bios <inputs.firmware> -kernel <inputs.kernel> -initrd <inputs.initrd> -append <inputs.append, byte for byte>; the firmware (OVMF's AmdSev build) does not boot the disk",
                    m.vcpus.unwrap_or(1),
                    vcpu_type,
                ));
            }
            Ok(doc)
        }
        other => bail!("image {name}: measure platform {other:?}: expected tpm, tdx or snp"),
    }
}

