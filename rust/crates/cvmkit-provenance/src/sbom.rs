//! The image's CycloneDX 1.6 SBOM.
//!
//! Components, each with the sha256 of the bytes the image holds:
//! - `kernel` (the bzImage: version from Nix or from its setup header's version string, the
//!   source tarball's hash and the `.config`'s sha256 when Nix names them),
//! - `stub` (systemd-stub: version from its `.sdmagic` text),
//! - `firmware` (the files the measurements were predicted from: not in the image, but a
//!   verifier relies on them),
//! - `initrd`: one component per package whose files are in the initrd — a Nix store path, a
//!   directory tree of the spec, a single file, or `generated` (files the spec writes itself) —
//!   with every regular file as a nested `file` component (its path in the image and sha256),
//! - `extra-initrd` (initrds appended as they are).
//!
//! What cvmkit cannot read from bytes (licence, source, exact package name) comes from [`Known`]
//! entries, which the Nix library fills from derivations' `meta`; a file belongs to the entry
//! whose `path` is the longest prefix of where it came from.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{hex, sha256_file, Error, Result};

/// The Nix store directory: paths under it are content-named, so they may appear in the SBOM
/// (any other build path would make the bytes depend on where the build ran).
pub const STORE_DIR: &str = "/nix/store/";

/// What is known about a package beyond its bytes (from Nix `meta`, or written in the spec).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Known {
    /// The package's path (a store path): inputs under it are this package.
    pub path: PathBuf,
    pub name: Option<String>,
    pub version: Option<String>,
    /// SPDX identifiers (or licence names).
    pub licenses: Vec<String>,
    /// Where the source came from (a URL) and its hash (SRI `sha256-…` or hex).
    pub source_url: Option<String>,
    pub source_hash: Option<String>,
    /// The kernel's `.config`, hashed into the SBOM.
    pub config: Option<PathBuf>,
}

/// A regular file of the initrd.
#[derive(Debug, Clone, PartialEq)]
pub struct InitrdFile {
    /// Its path in the image, without the leading `/`.
    pub name: String,
    /// The file it was copied from (`None`: written by the spec itself).
    pub source: Option<PathBuf>,
    /// The spec's directory tree it was found in, if any.
    pub tree: Option<PathBuf>,
    pub sha256: [u8; 32],
    pub size: u64,
}

/// Everything the SBOM is made from.
#[derive(Debug, Clone)]
pub struct Inputs<'a> {
    /// The image name.
    pub image: &'a str,
    /// The SBOM's timestamp (the image's one timestamp).
    pub source_date_epoch: u32,
    pub kernel: &'a Path,
    pub stub: &'a Path,
    /// The firmware files the measurements assume.
    pub firmware: Vec<PathBuf>,
    pub extra_initrds: Vec<PathBuf>,
    pub initrd: Vec<InitrdFile>,
    /// The image's outputs and their sha256 (`uki.efi`, `initrd.img`).
    pub outputs: Vec<(String, [u8; 32])>,
    pub known: &'a [Known],
    /// cvmkit's version, the tool named in the SBOM.
    pub tool_version: &'a str,
    /// SHA-256 of input files the caller has already hashed (`cvmkit build` hashes the kernel
    /// and firmware while the initrd compresses): used instead of reading them again.
    pub hashed: std::collections::BTreeMap<PathBuf, [u8; 32]>,
}

impl Inputs<'_> {
    fn sha256(&self, path: &Path, what: &'static str) -> Result<[u8; 32]> {
        match self.hashed.get(path) {
            Some(d) => Ok(*d),
            None => sha256_file(path, what),
        }
    }
}

/// A CycloneDX BOM: the subset of the 1.6 JSON format cvmkit writes and reads back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bom {
    #[serde(rename = "bomFormat")]
    pub bom_format: String,
    #[serde(rename = "specVersion")]
    pub spec_version: String,
    #[serde(rename = "serialNumber", default, skip_serializing_if = "Option::is_none")]
    pub serial_number: Option<String>,
    #[serde(default = "one")]
    pub version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Metadata>,
    #[serde(default)]
    pub components: Vec<Component>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dependencies: Vec<Dependency>,
}

fn one() -> u32 {
    1
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metadata {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<Tools>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component: Option<Component>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tools {
    #[serde(default)]
    pub components: Vec<Component>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Component {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(rename = "bom-ref", default, skip_serializing_if = "Option::is_none")]
    pub bom_ref: Option<String>,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub licenses: Vec<LicenseChoice>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hashes: Vec<Hash>,
    #[serde(rename = "externalReferences", default, skip_serializing_if = "Vec::is_empty")]
    pub external_references: Vec<ExternalReference>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub properties: Vec<Property>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub components: Vec<Component>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LicenseChoice {
    pub license: License,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct License {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hash {
    pub alg: String,
    pub content: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExternalReference {
    #[serde(rename = "type")]
    pub kind: String,
    pub url: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hashes: Vec<Hash>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Property {
    pub name: String,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dependency {
    #[serde(rename = "ref")]
    pub reference: String,
    #[serde(rename = "dependsOn", default, skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<String>,
}

/// Property names cvmkit writes (CycloneDX's `cvmkit:` namespace is ours).
pub mod prop {
    /// What the component is to the image: kernel, stub, firmware, initrd, extra-initrd.
    pub const ROLE: &str = "cvmkit:role";
    pub const STORE_PATH: &str = "cvmkit:nix-store-path";
    pub const SIZE: &str = "cvmkit:size";
    pub const KERNEL_RELEASE: &str = "cvmkit:kernel-release";
    pub const KERNEL_CONFIG_SHA256: &str = "cvmkit:kernel-config-sha256";
    pub const SOURCE_HASH: &str = "cvmkit:source-hash";
    /// On the image: the sha256 of one of its outputs, `cvmkit:output:uki.efi`.
    pub const OUTPUT: &str = "cvmkit:output:";
}

impl Component {
    fn new(kind: &str, name: impl Into<String>) -> Component {
        Component {
            kind: kind.into(),
            bom_ref: None,
            name: name.into(),
            version: None,
            description: None,
            licenses: Vec::new(),
            hashes: Vec::new(),
            external_references: Vec::new(),
            properties: Vec::new(),
            components: Vec::new(),
        }
    }

    fn prop(&mut self, name: &str, value: impl Into<String>) {
        self.properties.push(Property {
            name: name.into(),
            value: value.into(),
        });
    }

    /// The value of property `name`.
    pub fn property(&self, name: &str) -> Option<&str> {
        self.properties
            .iter()
            .find(|p| p.name == name)
            .map(|p| p.value.as_str())
    }

    /// The SHA-256 hash, hex.
    pub fn sha256(&self) -> Option<&str> {
        self.hashes
            .iter()
            .find(|h| h.alg == "SHA-256")
            .map(|h| h.content.as_str())
    }

    /// The role property (`kernel`, `stub`, `firmware`, `initrd`, `extra-initrd`).
    pub fn role(&self) -> Option<&str> {
        self.property(prop::ROLE)
    }
}

fn sha256_hash(d: &[u8; 32]) -> Hash {
    Hash {
        alg: "SHA-256".into(),
        content: hex(d),
    }
}

/// The SPDX ids CycloneDX 1.6 validates `license.id` against (data/PROVENANCE.md).
const SPDX_IDS: &str = include_str!("../data/spdx-license-ids.txt");

fn license(text: &str) -> LicenseChoice {
    let known = SPDX_IDS.lines().any(|l| l == text);
    LicenseChoice {
        license: if known {
            License {
                id: Some(text.into()),
                name: None,
            }
        } else {
            License {
                id: None,
                name: Some(text.into()),
            }
        },
    }
}

/// `/nix/store/<hash>-<name>` of a path under the store, and the `<name>` part.
pub fn store_root(path: &Path) -> Option<(PathBuf, String)> {
    let rest = path.to_str()?.strip_prefix(STORE_DIR)?;
    let base = rest.split('/').next()?;
    let (hash, name) = base.split_once('-')?;
    if hash.len() != 32 || name.is_empty() {
        return None;
    }
    Some((Path::new(STORE_DIR).join(base), name.to_string()))
}

/// Nix's `builtins.parseDrvName`: the version starts at the first `-` not followed by a letter.
pub fn parse_drv_name(name: &str) -> (String, Option<String>) {
    let b = name.as_bytes();
    for i in 0..b.len() {
        if b[i] == b'-' && b.get(i + 1).is_some_and(|c| !c.is_ascii_alphabetic()) {
            return (name[..i].to_string(), Some(name[i + 1..].to_string()));
        }
    }
    (name.to_string(), None)
}

/// The kernel release a bzImage names in its setup header (`kernel_version`, boot protocol ≥ 2.0):
/// the first word of e.g. "6.18.5 (nixbld@localhost) #1 SMP …".
pub fn bzimage_release(image: &[u8]) -> Option<String> {
    if image.get(0x202..0x206)? != b"HdrS" {
        return None;
    }
    let ptr = u16::from_le_bytes([*image.get(0x20e)?, *image.get(0x20f)?]) as usize;
    let start = 0x200usize.checked_add(ptr)?;
    let text = image.get(start..start.checked_add(256)?.min(image.len()))?;
    let end = text.iter().position(|&c| c == 0 || c == b' ')?;
    let release = std::str::from_utf8(&text[..end]).ok()?;
    (!release.is_empty() && release.bytes().all(|c| c.is_ascii_graphic())).then(|| release.to_string())
}

/// systemd-stub's version from its `.sdmagic` text, `#### LoaderInfo: systemd-stub 257.5 ####`.
pub fn stub_version(stub: &[u8]) -> Option<String> {
    const TAG: &[u8] = b"#### LoaderInfo: systemd-stub ";
    let at = stub.windows(TAG.len()).position(|w| w == TAG)? + TAG.len();
    let rest = stub.get(at..at + 64.min(stub.len() - at))?;
    let end = rest.windows(5).position(|w| w == b" ####")?;
    let v = std::str::from_utf8(&rest[..end]).ok()?;
    (!v.is_empty() && v.bytes().all(|c| c.is_ascii_graphic())).then(|| v.to_string())
}

/// The first bytes of a file (headers), at most `n`.
fn head(path: &Path, n: usize, what: &'static str) -> Result<Vec<u8>> {
    use std::io::Read;
    let f = std::fs::File::open(path).map_err(|source| Error::Read {
        what,
        path: path.display().to_string(),
        source,
    })?;
    let mut buf = Vec::new();
    f.take(n as u64)
        .read_to_end(&mut buf)
        .map_err(|source| Error::Read {
            what,
            path: path.display().to_string(),
            source,
        })?;
    Ok(buf)
}

/// The index of the [`Known`] entry whose path is the longest prefix of `path`.
fn known_index(known: &[Known], path: &Path) -> Option<usize> {
    known
        .iter()
        .enumerate()
        .filter(|(_, k)| !k.path.as_os_str().is_empty() && path.starts_with(&k.path))
        .max_by_key(|(_, k)| k.path.as_os_str().len())
        .map(|(i, _)| i)
}

/// The [`Known`] entry whose path is the longest prefix of `path`.
fn known_for<'k>(known: &'k [Known], path: &Path) -> Option<&'k Known> {
    known_index(known, path).map(|i| &known[i])
}

/// A package component for the input at `path`: named by `known`, else by its store path,
/// else `fallback`.
fn package(kind: &str, role: &str, path: Option<&Path>, known: Option<&Known>, fallback: &str) -> Result<Component> {
    let store = path.and_then(store_root);
    let (parsed_name, parsed_version) = match &store {
        Some((_, n)) => parse_drv_name(n),
        None => (fallback.to_string(), None),
    };
    let mut c = Component::new(kind, known.and_then(|k| k.name.clone()).unwrap_or(parsed_name));
    c.version = known.and_then(|k| k.version.clone()).or(parsed_version);
    if let Some(k) = known {
        c.licenses = k.licenses.iter().map(|l| license(l)).collect();
        if let Some(h) = &k.source_hash {
            match (&k.source_url, sri_sha256_hex(h)) {
                (Some(url), Some(hex)) => c.external_references.push(ExternalReference {
                    kind: "source-distribution".into(),
                    url: url.clone(),
                    hashes: vec![Hash {
                        alg: "SHA-256".into(),
                        content: hex,
                    }],
                }),
                _ => c.prop(prop::SOURCE_HASH, h.clone()),
            }
        } else if let Some(url) = &k.source_url {
            c.external_references.push(ExternalReference {
                kind: "source-distribution".into(),
                url: url.clone(),
                hashes: Vec::new(),
            });
        }
        if let Some(config) = &k.config {
            c.prop(prop::KERNEL_CONFIG_SHA256, hex(&sha256_file(config, "kernel config")?));
        }
    }
    c.prop(prop::ROLE, role);
    let store_path = known
        .map(|k| k.path.clone())
        .filter(|p| p.starts_with(STORE_DIR))
        .or(store.map(|(root, _)| root));
    if let Some(p) = store_path {
        c.prop(prop::STORE_PATH, p.display().to_string());
    }
    Ok(c)
}

/// `sha256-<base64>` (SRI) or 64 hex digits as hex; `None` for other forms.
pub fn sri_sha256_hex(h: &str) -> Option<String> {
    use base64::Engine as _;
    if let Some(b64) = h.strip_prefix("sha256-") {
        let raw = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
        return (raw.len() == 32).then(|| hex(&raw));
    }
    let h = h.strip_prefix("sha256:").unwrap_or(h);
    (h.len() == 64 && h.bytes().all(|c| c.is_ascii_hexdigit())).then(|| h.to_ascii_lowercase())
}

/// Who an initrd file belongs to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Owner {
    Known(usize),
    Store(PathBuf),
    Tree(PathBuf),
    File(PathBuf),
    Generated,
}

fn owner(f: &InitrdFile, known: &[Known]) -> Owner {
    let Some(src) = &f.source else {
        return Owner::Generated;
    };
    if let Some(i) = known_index(known, src) {
        return Owner::Known(i);
    }
    if let Some((root, _)) = store_root(src) {
        // A store path that is one file, not a package directory: text the image's modules
        // wrote (`builtins.toFile`, `writeText`: init scripts, configuration). Listed together.
        if std::fs::symlink_metadata(&root).is_ok_and(|m| m.is_file()) {
            return Owner::Generated;
        }
        return Owner::Store(root);
    }
    match &f.tree {
        Some(t) => Owner::Tree(t.clone()),
        None => Owner::File(src.clone()),
    }
}

fn base_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "/".into())
}

/// The SBOM of an image.
pub fn generate(inputs: &Inputs) -> Result<Bom> {
    let known = inputs.known;
    let mut components = Vec::new();

    // Kernel: its release from the bytes; the package's version, licence, source from Nix.
    let k = known_for(known, inputs.kernel);
    let mut kernel = package("operating-system", "kernel", Some(inputs.kernel), k, "linux")?;
    let release = bzimage_release(&head(inputs.kernel, 0x10000, "kernel")?);
    if k.and_then(|k| k.name.as_ref()).is_none() {
        kernel.name = "linux".into();
    }
    if kernel.version.is_none() {
        kernel.version = release.clone();
    }
    if let Some(r) = release {
        kernel.prop(prop::KERNEL_RELEASE, r);
    }
    kernel.hashes.push(sha256_hash(&inputs.sha256(inputs.kernel, "kernel")?));
    components.push(kernel);

    // systemd-stub: a file of the systemd package; its version is the stub's own.
    let s = known_for(known, inputs.stub);
    let mut stub = package("application", "stub", Some(inputs.stub), s, "systemd-stub")?;
    stub.name = "systemd-stub".into();
    let stub_bytes = std::fs::read(inputs.stub).map_err(|source| Error::Read {
        what: "stub",
        path: inputs.stub.display().to_string(),
        source,
    })?;
    if let Some(v) = stub_version(&stub_bytes) {
        stub.version = Some(v);
    }
    stub.hashes.push(sha256_hash(&Sha256::digest(&stub_bytes).into()));
    components.push(stub);

    let mut firmware: Vec<&PathBuf> = inputs.firmware.iter().collect();
    firmware.sort();
    firmware.dedup();
    for fw in firmware {
        let mut c = package("firmware", "firmware", Some(fw), known_for(known, fw), &base_name(fw))?;
        c.description = Some("firmware the measurements are predicted from (not in the image)".into());
        c.hashes.push(sha256_hash(&inputs.sha256(fw, "firmware")?));
        components.push(c);
    }

    // The initrd's packages, each with its files.
    let mut groups: BTreeMap<Owner, Vec<&InitrdFile>> = BTreeMap::new();
    for f in &inputs.initrd {
        groups.entry(owner(f, known)).or_default().push(f);
    }
    let mut packages = Vec::new();
    for (o, files) in groups {
        let mut c = match &o {
            Owner::Known(i) => {
                let k = &known[*i];
                package("application", "initrd", Some(&k.path), Some(k), &base_name(&k.path))?
            }
            Owner::Store(root) => package("application", "initrd", Some(root), None, "")?,
            Owner::Tree(t) => package("application", "initrd", None, None, &base_name(t))?,
            Owner::File(p) => package("application", "initrd", None, None, &base_name(p))?,
            Owner::Generated => {
                let mut c = package("data", "initrd", None, None, "generated")?;
                c.description = Some("files the image's spec and modules write themselves (init, configuration)".into());
                c
            }
        };
        let mut files = files;
        files.sort_by(|a, b| a.name.cmp(&b.name));
        // A one-file package (busybox, cvmkit-runtime, nginx): its bytes in the image are that
        // file's, so the package carries the hash too.
        if let ([f], false) = (files.as_slice(), o == Owner::Generated) {
            c.hashes.push(sha256_hash(&f.sha256));
        }
        for f in files {
            let mut fc = Component::new("file", format!("/{}", f.name));
            fc.bom_ref = Some(format!("file:/{}", f.name));
            fc.hashes.push(sha256_hash(&f.sha256));
            fc.prop(prop::SIZE, f.size.to_string());
            c.components.push(fc);
        }
        packages.push(c);
    }
    packages.sort_by(|a, b| (&a.name, &a.version, a.property(prop::STORE_PATH)).cmp(&(&b.name, &b.version, b.property(prop::STORE_PATH))));
    components.extend(packages);

    for p in &inputs.extra_initrds {
        let mut c = package("data", "extra-initrd", Some(p), known_for(known, p), &base_name(p))?;
        c.hashes.push(sha256_hash(&inputs.sha256(p, "initrd")?));
        components.push(c);
    }

    // bom-refs: by name (and version), made unique in order.
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for c in &mut components {
        let base = match &c.version {
            Some(v) => format!("{}:{}@{}", c.role().unwrap_or("component"), c.name, v),
            None => format!("{}:{}", c.role().unwrap_or("component"), c.name),
        };
        let n = seen.entry(base.clone()).or_insert(0);
        *n += 1;
        c.bom_ref = Some(if *n == 1 { base } else { format!("{base}#{n}") });
    }

    let mut image = Component::new("operating-system", inputs.image);
    image.bom_ref = Some("image".into());
    image.description = Some(if inputs.initrd.iter().any(|f| f.name == "usr/bin/cvmkit-runtime") {
        // Said here because a reader of the SBOM would otherwise look for them in it.
        "a cvmkit image: a UKI (kernel, initrd, command line) and its disk; the workloads cvmkit-runtime fetches at boot are not in the image: each is pinned by its sha256 in the manifest, which the runtime measures into PCR 15 / RTMR3".into()
    } else {
        "a cvmkit image: a UKI (kernel, initrd, command line) and its disk".into()
    });
    let mut outputs = inputs.outputs.clone();
    outputs.sort();
    for (name, digest) in &outputs {
        image.prop(&format!("{}{name}", prop::OUTPUT), hex(digest));
    }
    let mut tool = Component::new("application", "cvmkit");
    tool.version = Some(inputs.tool_version.into());
    let dependencies = vec![Dependency {
        reference: "image".into(),
        depends_on: components.iter().filter_map(|c| c.bom_ref.clone()).collect(),
    }];
    let mut bom = Bom {
        bom_format: "CycloneDX".into(),
        spec_version: "1.6".into(),
        serial_number: None,
        version: 1,
        metadata: Some(Metadata {
            timestamp: Some(rfc3339(inputs.source_date_epoch)),
            tools: Some(Tools {
                components: vec![tool],
            }),
            component: Some(image),
        }),
        components,
        dependencies,
    };
    // A serial number is required to be a UUID; derived from the content so a rebuild gives
    // the same bytes (a name-based, version 5 style UUID over SHA-256).
    let digest = Sha256::digest(to_json(&bom).as_bytes());
    let mut u = [0u8; 16];
    u.copy_from_slice(&digest[..16]);
    u[6] = (u[6] & 0x0f) | 0x50;
    u[8] = (u[8] & 0x3f) | 0x80;
    let h = hex(&u);
    bom.serial_number = Some(format!(
        "urn:uuid:{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    ));
    Ok(bom)
}

/// Pretty JSON ending in a newline.
pub fn to_json(bom: &Bom) -> String {
    let mut s = serde_json::to_string_pretty(bom).expect("a BOM serializes");
    s.push('\n');
    s
}

/// Reads an SBOM cvmkit wrote (or any CycloneDX JSON using the same fields).
pub fn parse(text: &str, origin: &str) -> Result<Bom> {
    let bom: Bom = serde_json::from_str(text)
        .map_err(|e| Error::Invalid(format!("SBOM {origin} is not CycloneDX JSON: {e}")))?;
    if bom.bom_format != "CycloneDX" {
        return Err(Error::Invalid(format!(
            "SBOM {origin}: bomFormat is {:?}, not \"CycloneDX\"",
            bom.bom_format
        )));
    }
    Ok(bom)
}

/// Unix seconds as RFC 3339 UTC (`1970-01-01T00:00:00Z`).
pub fn rfc3339(secs: u32) -> String {
    chrono::DateTime::from_timestamp(i64::from(secs), 0)
        .expect("every u32 second count is a valid time")
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_matches_date() {
        // Values from GNU date: `date -u -d @N +%Y-%m-%dT%H:%M:%SZ`.
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951782400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1700000000), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(u32::MAX), "2106-02-07T06:28:15Z");
    }

    #[test]
    fn drv_names_parse_as_nix_does() {
        // builtins.parseDrvName's documented examples and nixpkgs store names.
        assert_eq!(parse_drv_name("nix-0.12pre12876"), ("nix".into(), Some("0.12pre12876".into())));
        assert_eq!(parse_drv_name("busybox-static-x86_64-unknown-linux-musl-1.36.1"), ("busybox-static-x86_64-unknown-linux-musl".into(), Some("1.36.1".into())));
        assert_eq!(parse_drv_name("hello"), ("hello".into(), None));
        assert_eq!(parse_drv_name("OVMF-202505-fd"), ("OVMF".into(), Some("202505-fd".into())));
    }

    #[test]
    fn store_roots() {
        let p = Path::new("/nix/store/0123456789abcdfghijklmnpqrsvwxyz-busybox-1.36.1/bin/busybox");
        assert_eq!(store_root(p), Some((PathBuf::from("/nix/store/0123456789abcdfghijklmnpqrsvwxyz-busybox-1.36.1"), "busybox-1.36.1".into())));
        assert_eq!(store_root(Path::new("/tmp/x/bin")), None);
        assert_eq!(store_root(Path::new("/nix/store/short-x")), None);
    }

    #[test]
    fn sri_hashes() {
        // The kernel/default.nix pin: SRI and the hex of kernel.org's sha256sums.asc.
        assert_eq!(
            sri_sha256_hex("sha256-GJ0fQJzvjQ0jQhDgRZUXLfOS+MspfhS0R+2Vcg4v2UA=").as_deref(),
            Some("189d1f409cef8d0d234210e04595172df392f8cb297e14b447ed95720e2fd940")
        );
        assert_eq!(sri_sha256_hex("sha256-AAAA"), None);
        assert_eq!(sri_sha256_hex("md5-xyz"), None);
    }

    #[test]
    fn licences_are_ids_only_when_spdx_knows_them() {
        assert_eq!(license("GPL-2.0-only").license.id.as_deref(), Some("GPL-2.0-only"));
        assert_eq!(license("Some custom licence").license.name.as_deref(), Some("Some custom licence"));
    }

    /// A kernel and stub stand-in, a tree with two files, a file from a spec line, a generated
    /// file; the tree known by path.
    fn sample(dir: &Path) -> (Vec<InitrdFile>, Vec<Known>) {
        std::fs::write(dir.join("kernel"), b"not a bzImage").unwrap();
        std::fs::write(dir.join("stub"), b"xx#### LoaderInfo: systemd-stub 257.5 ####").unwrap();
        let file = |name: &str, source: Option<&str>, tree: Option<&str>, content: &[u8]| InitrdFile {
            name: name.into(),
            source: source.map(|s| dir.join(s)),
            tree: tree.map(|t| dir.join(t)),
            sha256: Sha256::digest(content).into(),
            size: content.len() as u64,
        };
        let files = vec![
            file("usr/bin/app", Some("app-tree/usr/bin/app"), Some("app-tree"), b"app"),
            file("etc/app.conf", Some("app-tree/etc/app.conf"), Some("app-tree"), b"conf"),
            file("init", Some("stage/init"), None, b"#!/bin/sh"),
            file("etc/hostname", None, None, b"cvm\n"),
        ];
        let known = vec![Known { path: dir.join("app-tree"), name: Some("app".into()), version: Some("2.0".into()), licenses: vec!["MIT".into()], ..Default::default() }];
        (files, known)
    }

    #[test]
    fn files_are_grouped_by_origin_and_order_does_not_matter() {
        let dir = tempfile::tempdir().unwrap();
        let (files, known) = sample(dir.path());
        let kernel = dir.path().join("kernel");
        let stub = dir.path().join("stub");
        let inputs = |initrd: Vec<InitrdFile>| Inputs {
            image: "t",
            source_date_epoch: 0,
            kernel: &kernel,
            stub: &stub,
            firmware: vec![],
            extra_initrds: vec![],
            initrd,
            outputs: vec![],
            known: &known,
            tool_version: "0",
            hashed: Default::default(),
        };
        let bom = generate(&inputs(files.clone())).unwrap();
        let mut reversed = files.clone();
        reversed.reverse();
        assert_eq!(to_json(&bom), to_json(&generate(&inputs(reversed)).unwrap()));
        let summary: Vec<(String, Option<String>, Vec<String>)> = bom
            .components
            .iter()
            .map(|c| (c.name.clone(), c.version.clone(), c.components.iter().map(|f| f.name.clone()).collect()))
            .collect();
        assert_eq!(summary, vec![
            ("linux".into(), None, vec![]),
            ("systemd-stub".into(), Some("257.5".into()), vec![]),
            ("app".into(), Some("2.0".into()), vec!["/etc/app.conf".into(), "/usr/bin/app".into()]),
            ("generated".into(), None, vec!["/etc/hostname".into()]),
            ("init".into(), None, vec!["/init".into()]),
        ]);
        // Paths outside the store never reach the document.
        assert!(!to_json(&bom).contains(dir.path().to_str().unwrap()));
        let serial = bom.serial_number.as_deref().unwrap();
        assert!(serial.starts_with("urn:uuid:") && serial.as_bytes()[23] == b'5', "{serial}");
    }

    #[test]
    fn header_parsers_refuse_garbage() {
        assert_eq!(bzimage_release(&[]), None);
        assert_eq!(bzimage_release(&[0u8; 0x300]), None);
        let mut k = vec![0u8; 0x400];
        k[0x202..0x206].copy_from_slice(b"HdrS");
        k[0x20e..0x210].copy_from_slice(&0x100u16.to_le_bytes());
        k[0x300..0x314].copy_from_slice(b"6.18.5 (nixbld@h) #1");
        assert_eq!(bzimage_release(&k).as_deref(), Some("6.18.5"));
        k[0x20e..0x210].copy_from_slice(&0xffffu16.to_le_bytes());
        assert_eq!(bzimage_release(&k), None);
        assert_eq!(stub_version(b"xx#### LoaderInfo: systemd-stub 257.5 ####yy").as_deref(), Some("257.5"));
        assert_eq!(stub_version(b"#### LoaderInfo: systemd-stub "), None);
    }
}
