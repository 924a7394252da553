//! sbom.cdx.json of a build: the spec's inputs and the initrd's files, handed to
//! `cvmkit_provenance::sbom`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use cvmkit_initrd::{FileSource, Initrd, Kind, Origin};
use cvmkit_provenance::sbom::{self, InitrdFile, Known};
use sha2::{Digest, Sha256};

use crate::error::{Context as _, Result};
use crate::spec::{Platform, Spec, Target};

/// The file name of the SBOM in an image's output directory.
pub const FILE: &str = "sbom.cdx.json";

/// SHA-256 per regular file of the initrd, by entry name, fed by
/// [`cvmkit_initrd::build_observed`] as the archive is written.
#[derive(Default)]
pub struct FileDigests(BTreeMap<Vec<u8>, Sha256>);

impl FileDigests {
    /// The observer to hand to `build_observed`.
    pub fn observe(&mut self, name: &[u8], piece: &[u8]) {
        self.0.entry(name.to_vec()).or_default().update(piece);
    }
}

/// A writer that hashes what passes through it (the initrd as it is written).
pub struct HashingWriter<W> {
    pub inner: W,
    pub hash: Sha256,
}

impl<W: std::io::Write> std::io::Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// The SBOM of `spec`'s image from the initrd model the build wrote, the files' digests taken
/// while writing it, the outputs' sha256 (name, digest) and input files' sha256 already known.
pub fn generate(
    spec: &Spec,
    initrd: &Initrd,
    digests: FileDigests,
    outputs: &[(&str, [u8; 32])],
    hashed: BTreeMap<PathBuf, [u8; 32]>,
) -> Result<String> {
    let what = || format!("image {}: SBOM", spec.name);
    let mut by_name: BTreeMap<Vec<u8>, [u8; 32]> = digests.0.into_iter().map(|(n, h)| (n, h.finalize().into())).collect();
    // Of a group of hard links only one entry carried the data: the others have its contents.
    let mut by_group: BTreeMap<u64, [u8; 32]> = BTreeMap::new();
    for (name, node) in initrd.iter() {
        if let (Kind::File { link_group: Some(g), .. }, Some(d)) = (&node.kind, by_name.get(name)) {
            by_group.insert(*g, *d);
        }
    }
    let mut files = Vec::new();
    for (name, node) in initrd.iter() {
        let Kind::File { source, link_group } = &node.kind else { continue };
        let sha256 = by_name
            .remove(name)
            .or_else(|| link_group.and_then(|g| by_group.get(&g).copied()))
            // Nothing observed: an empty file.
            .unwrap_or_else(|| Sha256::digest([]).into());
        let src = match source {
            FileSource::Disk { path, .. } => Some(path.clone()),
            FileSource::Bytes(_) => None,
        };
        let tree = match &node.origin {
            Origin::Tree(p) => spec.initrd.trees.iter().filter(|t| p.starts_with(t)).max_by_key(|t| t.as_os_str().len()).cloned(),
            _ => None,
        };
        files.push(InitrdFile {
            name: String::from_utf8_lossy(name).trim_start_matches('/').to_string(),
            source: src,
            tree,
            sha256,
            size: source.len(),
        });
    }
    let known: Vec<Known> = spec
        .components
        .iter()
        .map(|c| Known {
            path: c.path.clone(),
            name: c.name.clone(),
            version: c.version.clone(),
            licenses: c.licenses.clone(),
            source_url: c.source.as_ref().and_then(|s| s.url.clone()),
            source_hash: c.source.as_ref().and_then(|s| s.hash.clone()),
            config: c.config.clone(),
        })
        .collect();
    // The firmware of the predictions this build makes (a cloud's own firmware is not the
    // build's: its registers are references, not predictions).
    let firmware: Vec<PathBuf> = spec
        .measure
        .iter()
        .flat_map(|m| m.as_slice())
        .filter(|m| m.target.unwrap_or_default() == Target::Qemu && m.platform != Platform::Tpm)
        .filter_map(|m| m.firmware.clone())
        .collect();
    let inputs = sbom::Inputs {
        image: &spec.name,
        source_date_epoch: spec.source_date_epoch,
        kernel: &spec.uki.kernel,
        stub: &spec.uki.stub,
        firmware,
        extra_initrds: spec.uki.extra_initrds.clone(),
        initrd: files,
        outputs: outputs.iter().map(|(n, d)| (n.to_string(), *d)).collect(),
        known: &known,
        tool_version: env!("CARGO_PKG_VERSION"),
        hashed,
    };
    let bom = sbom::generate(&inputs).with_context(what)?;
    Ok(sbom::to_json(&bom))
}
