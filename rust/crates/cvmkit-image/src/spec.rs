//! The `cvmkit.image/v1` spec: what the Nix library writes (`mkSpec` in nix/image.nix) and
//! `cvmkit build` reads. These types are the one definition of it: the JSON Schema committed at
//! nix/cvmkit.image.v1.schema.json is generated from them ([`schema_json`]) and the Nix library
//! tests validate `mkSpec`'s output against that file.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::error::{Context as _, Error, Result};

/// The value of `schema` in a spec.
pub const SCHEMA: &str = "cvmkit.image/v1";

/// Defaults shared by the spec and the command line (`cvmkit measure`), so both give the same
/// value for a setting that is left out.
pub mod defaults {
    /// TDX guest memory (QEMU -m).
    pub const MEMORY: &str = "2G";
    /// The QEMU version (MAJOR.MINOR) TDX predictions assume.
    pub const QEMU_VERSION: &str = "10.2";
    /// SNP vCPUs.
    pub const SNP_VCPUS: u32 = 1;
    /// SNP vCPU model.
    pub const SNP_VCPU_TYPE: &str = "EPYC-v4";
    /// SNP guest SEV_FEATURES (hex).
    pub const GUEST_FEATURES: &str = "0x1";
}

/// An image spec. Unknown keys are errors, so a typo cannot silently drop a setting.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(
    title = "cvmkit.image/v1",
    description = "The image spec of `cvmkit build` (written by the Nix library's mkSpec)"
)]
pub struct Spec {
    /// Always "cvmkit.image/v1".
    #[schemars(extend("const" = SCHEMA))]
    pub schema: String,
    /// Image name, used in messages and as the default seed.
    pub name: String,
    /// The one timestamp of every output (cpio mtimes, PE TimeDateStamp, FAT times, tar mtime).
    #[serde(default)]
    pub source_date_epoch: u32,
    pub initrd: InitrdSpec,
    pub uki: UkiSpec,
    /// The disk around the UKI (optional).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk: Option<DiskSpec>,
    /// Measurements to predict into measurements.json: one platform or a list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measure: Option<OneOrMany<MeasureSpec>>,
    /// What sbom.cdx.json says about packages beyond their bytes (the Nix library fills it
    /// from derivations' `meta`): an input or initrd file belongs to the entry whose `path` is
    /// the longest prefix of where it came from.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub components: Vec<ComponentSpec>,
}

/// A package named in the SBOM with what its bytes do not say.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ComponentSpec {
    /// The package's path (a Nix store path): the kernel, stub, firmware or initrd files under it
    /// are this package.
    pub path: PathBuf,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// SPDX licence identifiers (other names are kept as names).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub licenses: Vec<String>,
    /// Where the source came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<SourceSpec>,
    /// The kernel's `.config` (its sha256 goes into the SBOM).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<PathBuf>,
}

/// A package's source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SourceSpec {
    /// The URL it was fetched from (`mirror://` as nixpkgs writes it is kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Its hash: SRI (`sha256-…`, Nix's `outputHash`) or hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash: Option<String>,
}

/// The initrd, built from directory trees and gen_init_cpio spec files.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InitrdSpec {
    /// Directory trees merged in order (later entries replace earlier ones of the same name).
    #[serde(default)]
    pub trees: Vec<PathBuf>,
    /// gen_init_cpio spec files applied after the trees, in order.
    #[serde(default)]
    pub spec_files: Vec<PathBuf>,
    #[serde(default)]
    pub compress: Compress,
    /// Keep the trees' file modes (otherwise directories and executables 0755, files 0644).
    #[serde(default)]
    pub preserve_modes: bool,
    /// Accept symlinks whose target is not in the initrd.
    #[serde(default)]
    pub allow_dangling_symlinks: bool,
}

/// The Unified Kernel Image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UkiSpec {
    /// The systemd-stub (linuxx64.efi.stub).
    pub stub: PathBuf,
    /// The kernel (bzImage).
    pub kernel: PathBuf,
    /// The kernel command line (`.cmdline`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmdline: Option<String>,
    /// An os-release file (`.osrel`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os_release: Option<PathBuf>,
    /// The kernel release (`.uname`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uname: Option<String>,
    /// Further initrds appended after the built one (microcode, …).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_initrds: Vec<PathBuf>,
}

/// The disk around the UKI: `disk.<extension>` in the output directory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DiskSpec {
    pub format: DiskFormat,
    /// Seed of the GUIDs and the FAT volume id (default: the image name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<String>,
    /// Size of an empty data partition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_size: Option<Size>,
    /// Size of the ESP (default: max(64 MiB, 2 × UKI + 16 MiB)).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub esp_size: Option<Size>,
    /// Size of the whole disk (default: what the partitions need).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk_size: Option<Size>,
}

/// What to predict. `tpm` needs nothing more; `tdx` and `snp` need the firmware.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MeasureSpec {
    pub platform: Platform,
    /// Where the image runs (default qemu). On a cloud, registers its own firmware sets are
    /// not predicted from the build's firmware: the document lists them under `cloud`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<Target>,
    /// TPM on GCP: the VM's confidential platform, which decides where Google's firmware logs
    /// the GPT and the UKI (PCR 2 in a TD, PCR 5/4 otherwise). Default: the image's `tdx` or
    /// `snp` item, `none` without one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tee: Option<Tee>,
    /// TDX, SNP: the firmware (OVMF).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub firmware: Option<PathBuf>,
    /// TDX: guest memory as QEMU's -m takes it (default 2G; a plain number is MiB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<String>,
    /// TDX: QEMU version, MAJOR.MINOR (default 10.2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qemu_version: Option<String>,
    /// TDX: the firmware's measurement behaviour (default edk2-202411).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ovmf_profile: Option<OvmfProfile>,
    /// TDX: whether the kernel measures into RTMR2 (default cc).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel_measures: Option<KernelMeasures>,
    /// TDX: captured RTMR0 (JSON file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtmr0_captured: Option<PathBuf>,
    /// SNP: vCPU count (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vcpus: Option<u32>,
    /// SNP: vCPU model as QEMU spells it (default EPYC-v4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vcpu_type: Option<String>,
    /// SNP: SEV_FEATURES of the guest, hex (default 0x1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guest_features: Option<String>,
    /// SNP: the VMM launching the guest (default qemu).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vmm_type: Option<VmmType>,
    /// SNP: predict QEMU's direct boot of this image's kernel (`uki.kernel`), built initrd and
    /// command line (`uki.cmdline`) with `kernel-hashes=on`, as `cvmkit measure snp --kernel
    /// --initrd --append` does; the firmware must have OVMF's kernel-hashes table (AmdSev build).
    #[serde(default, skip_serializing_if = "is_false")]
    pub kernel_hashes: bool,
    /// TPM, TDX: boot options OVMF tried and failed first (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_boot_attempts: Option<u32>,
    /// Lines appended to the document's `notes`: what a verifier must know beyond the register
    /// values (the Nix library adds how cvmkit-runtime extends PCR 15 / RTMR3 with the manifest).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// One item or a list of them.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum OneOrMany<T> {
    One(T),
    Many(Vec<T>),
}

// Not a derived `#[serde(untagged)]` Deserialize: that hides the item's own error ("unknown field
// `x`") behind "did not match any variant"; deciding by the JSON's shape keeps it, with the
// item's index.
impl<'de, T: serde::de::DeserializeOwned> Deserialize<'de> for OneOrMany<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        use serde::de::Error as _;
        match serde_json::Value::deserialize(d)? {
            serde_json::Value::Array(items) => items
                .into_iter()
                .enumerate()
                .map(|(i, v)| {
                    serde_json::from_value(v)
                        .map_err(|e| D::Error::custom(format!("item {i}: {e}")))
                })
                .collect::<std::result::Result<Vec<T>, D::Error>>()
                .map(OneOrMany::Many),
            v => serde_json::from_value(v)
                .map(OneOrMany::One)
                .map_err(D::Error::custom),
        }
    }
}

impl<T> OneOrMany<T> {
    /// The items, in order.
    pub fn as_slice(&self) -> &[T] {
        match self {
            OneOrMany::One(t) => std::slice::from_ref(t),
            OneOrMany::Many(v) => v,
        }
    }

    fn as_mut_slice(&mut self) -> &mut [T] {
        match self {
            OneOrMany::One(t) => std::slice::from_mut(t),
            OneOrMany::Many(v) => v,
        }
    }
}

/// Declares a string enum with its JSON (and command-line) spellings, `name()`, `ALL`,
/// `Display` and `FromStr`.
macro_rules! string_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident { $( $(#[$vmeta:meta])* $variant:ident = $text:literal ),+ $(,)? }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
        #[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
        pub enum $name {
            $( $(#[$vmeta])* #[serde(rename = $text)] #[cfg_attr(feature = "clap", value(name = $text))] $variant, )+
        }

        impl $name {
            /// Every value, in the order of the schema.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The spelling in the spec and on the command line.
            pub fn name(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.name())
            }
        }

        impl FromStr for $name {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self> {
                serde_json::from_value(serde_json::Value::String(s.to_owned())).map_err(|_| {
                    let all: Vec<&str> = $name::ALL.iter().map(|v| v.name()).collect();
                    Error::msg(format!("{s:?} is not one of {}", all.join(", ")))
                })
            }
        }
    };
}

string_enum! {
    /// The platform a measurement document is predicted for.
    pub enum Platform {
        /// TPM PCR 4 and PCR 11 (vTPM clouds, QEMU + swtpm).
        Tpm = "tpm",
        /// Intel TDX MRTD and RTMR0-2.
        Tdx = "tdx",
        /// AMD SEV-SNP launch digest.
        Snp = "snp",
    }
}

string_enum! {
    /// Where an image runs: which firmware boots it, and so which registers a build can predict.
    #[derive(Default)]
    pub enum Target {
        /// QEMU with the build's firmware: every register is predicted.
        #[default]
        Qemu = "qemu",
        /// Google Compute Engine: Google's firmware (MRTD, RTMR0, the SNP launch digest and the
        /// vTPM's firmware PCRs are Google's).
        Gcp = "gcp",
        /// Microsoft Azure: a paravisor (launch measurement and RTMRs are Microsoft's; the
        /// image is judged by vTPM PCRs).
        Azure = "azure",
    }
}

string_enum! {
    /// The confidential platform of a VM whose vTPM a `tpm` item predicts.
    pub enum Tee {
        /// An Intel TDX trust domain.
        Tdx = "tdx",
        /// An AMD SEV-SNP guest.
        Snp = "snp",
        /// No confidential platform (a Shielded VM).
        None = "none",
    }
}

string_enum! {
    /// The container of a disk image.
    pub enum DiskFormat {
        /// The disk as is, sparse.
        Raw = "raw",
        /// disk.raw in a sparse tar.gz, for GCE image import.
        Gcp = "gcp",
        /// Azure's fixed VHD.
        Vhd = "vhd",
        /// qcow2 version 3, only non-zero clusters allocated.
        Qcow2 = "qcow2",
    }
}

string_enum! {
    /// The firmware's TDX measurement behaviour.
    #[derive(Default)]
    pub enum OvmfProfile {
        /// Current edk2 (TdTcg2Dxe, the separator layout of edk2-stable202411 on).
        #[default]
        Edk2_202411 = "edk2-202411",
        /// The older separator layout.
        Edk2Before202411 = "edk2-before-202411",
        /// No CC measurement (no TdTcg2Dxe, e.g. Debian bookworm's OVMF.fd): RTMRs stay 0.
        NoCc = "no-cc",
    }
}

string_enum! {
    /// Whether the kernel's EFI stub measures the command line and initrd into RTMR2.
    #[derive(Default)]
    pub enum KernelMeasures {
        /// It does (EFI CC measurement support).
        #[default]
        Cc = "cc",
        /// It does not (kernels without it, such as Debian's 6.1).
        None = "none",
    }
}

string_enum! {
    /// The VMM launching an SEV-SNP guest.
    #[derive(Default)]
    pub enum VmmType {
        #[default]
        Qemu = "qemu",
        Ec2 = "ec2",
        Gce = "gce",
    }
}

string_enum! {
    /// The SEV guest mode.
    #[derive(Default)]
    pub enum SevMode {
        #[default]
        Snp = "snp",
        /// SEV-ES (also spelt `sev-es`).
        #[serde(alias = "sev-es")]
        #[cfg_attr(feature = "clap", value(alias = "sev-es"))]
        Seves = "seves",
        Sev = "sev",
    }
}

string_enum! {
    /// The MRTD page-add order of a TDX VMM.
    pub enum PageOrder {
        /// Per section: every page added, then every chunk extended (QEMU before 9).
        TwoPass = "two-pass",
        /// Per page: the page added, then its chunks extended (current QEMU/KVM).
        Interleaved = "interleaved",
    }
}

string_enum! {
    /// A TPM PCR bank.
    pub enum TpmBank {
        Sha1 = "sha1",
        Sha256 = "sha256",
        Sha384 = "sha384",
        Sha512 = "sha512",
    }
}

impl TpmBank {
    /// The bank.
    pub fn bank(self) -> cvmkit_measure::Bank {
        use cvmkit_measure::Bank as B;
        match self {
            TpmBank::Sha1 => B::Sha1,
            TpmBank::Sha256 => B::Sha256,
            TpmBank::Sha384 => B::Sha384,
            TpmBank::Sha512 => B::Sha512,
        }
    }
}

impl From<DiskFormat> for cvmkit_disk::Format {
    fn from(f: DiskFormat) -> Self {
        match f {
            DiskFormat::Raw => cvmkit_disk::Format::Raw,
            DiskFormat::Gcp => cvmkit_disk::Format::Gcp,
            DiskFormat::Vhd => cvmkit_disk::Format::Vhd,
            DiskFormat::Qcow2 => cvmkit_disk::Format::Qcow2,
        }
    }
}

/// Initrd compression: `none`, `gzip`, `zstd`, or one of the latter two with a level (`zstd:19`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(try_from = "String", into = "String")]
#[schemars(
    description = "none, gzip, zstd, or gzip/zstd with a level (zstd:19); default zstd",
    extend("pattern" = "^(none|gzip|zstd)(:[0-9]+)?$", "default" = "zstd")
)]
pub struct Compress(pub cvmkit_initrd::Compression);

impl Default for Compress {
    fn default() -> Self {
        Compress(cvmkit_initrd::Compression::zstd())
    }
}

impl TryFrom<String> for Compress {
    type Error = String;
    fn try_from(s: String) -> std::result::Result<Self, String> {
        s.parse()
            .map(Compress)
            .map_err(|e: cvmkit_initrd::ParseCompressionError| e.to_string())
    }
}

impl From<Compress> for String {
    fn from(c: Compress) -> String {
        c.0.to_string()
    }
}

/// A size such as `2G`, `512M`, `4096MiB`, `1T` or plain bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(try_from = "String", into = "String")]
#[schemars(
    description = "a size: a number of bytes with an optional unit K, M, G or T (also KiB, KB, …), e.g. 8M",
    extend("pattern" = "^ *[0-9]+ *([KkMmGgTt]([Ii]?[Bb])?|[Bb])? *$")
)]
pub struct Size(pub u64);

impl TryFrom<String> for Size {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        parse_size(&s).map(Size)
    }
}

impl From<Size> for String {
    fn from(s: Size) -> String {
        s.0.to_string()
    }
}

/// A size such as `2G`, `512M`, `4096MiB`, `1T` or plain bytes.
pub fn parse_size(text: &str) -> Result<u64> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num.parse().map_err(|_| {
        Error::msg(format!(
            "size {text:?}: expected a number with an optional unit (K, M, G, T)"
        ))
    })?;
    let shift = match unit
        .trim()
        .to_ascii_uppercase()
        .trim_end_matches("IB")
        .trim_end_matches('B')
    {
        "" => 0,
        "K" => 10,
        "M" => 20,
        "G" => 30,
        "T" => 40,
        _ => {
            return Err(Error::msg(format!(
                "size {text:?}: unknown unit {unit:?} (use K, M, G or T)"
            )))
        }
    };
    n.checked_mul(1 << shift)
        .with_context(|| format!("size {text:?} is too large"))
}

/// A guest memory size as QEMU's -m takes it: with a unit (2G, 4096M), or a plain number of MiB.
pub fn parse_memory(text: &str) -> Result<u64> {
    if !text.trim().is_empty() && text.trim().bytes().all(|b| b.is_ascii_digit()) {
        return parse_size(&format!("{}M", text.trim()));
    }
    parse_size(text)
}

impl Spec {
    /// Reads and checks a spec file; relative paths are resolved against its directory.
    pub fn load(path: &Path) -> Result<Spec> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read spec {}", path.display()))?;
        Spec::parse(
            &text,
            &path.display().to_string(),
            path.parent().unwrap_or(Path::new(".")),
        )
    }

    /// Parses spec text named `origin` in messages; relative paths are resolved against `base`.
    pub fn parse(text: &str, origin: &str, base: &Path) -> Result<Spec> {
        let mut spec: Spec = serde_json::from_str(text)
            .with_context(|| format!("spec {origin} is not a valid image spec"))?;
        if spec.schema != SCHEMA {
            return Err(Error::msg(format!(
                "spec {origin}: schema {:?} is not {SCHEMA:?}",
                spec.schema
            )));
        }
        spec.resolve_paths(base);
        Ok(spec)
    }

    /// Makes every relative input path relative to `base`.
    pub fn resolve_paths(&mut self, base: &Path) {
        let fix = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        self.initrd.trees.iter_mut().for_each(fix);
        self.initrd.spec_files.iter_mut().for_each(fix);
        if let Some(m) = self.measure.as_mut() {
            for x in m.as_mut_slice() {
                x.firmware.iter_mut().for_each(fix);
                x.rtmr0_captured.iter_mut().for_each(fix);
            }
        }
        fix(&mut self.uki.stub);
        fix(&mut self.uki.kernel);
        self.uki.os_release.iter_mut().for_each(fix);
        self.uki.extra_initrds.iter_mut().for_each(fix);
        for c in &mut self.components {
            fix(&mut c.path);
            c.config.iter_mut().for_each(fix);
        }
    }
}

/// The JSON Schema of [`Spec`] as committed at nix/cvmkit.image.v1.schema.json: pretty JSON
/// ending in a newline.
pub fn schema_json() -> String {
    let schema = serde_json::to_value(schemars::schema_for!(Spec)).expect("a schema serializes");
    let mut text = serde_json::to_string_pretty(&sorted(schema)).expect("a schema serializes");
    text.push('\n');
    text
}

/// `v` with every object's keys in sorted order. serde_json keeps insertion order instead when
/// any crate of the build enables its `preserve_order` feature (dcap-qvl does), so the committed
/// schema must not depend on which crates are linked.
fn sorted(v: serde_json::Value) -> serde_json::Value {
    match v {
        serde_json::Value::Object(map) => {
            let mut entries: Vec<_> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            serde_json::Value::Object(entries.into_iter().map(|(k, v)| (k, sorted(v))).collect())
        }
        serde_json::Value::Array(items) => serde_json::Value::Array(items.into_iter().map(sorted).collect()),
        other => other,
    }
}
