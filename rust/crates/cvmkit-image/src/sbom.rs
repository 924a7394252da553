//! sbom.cdx.json of a build: the spec's inputs and the initrd's files, handed to
//! `cvmkit_provenance::sbom`.

use std::path::{Path, PathBuf};

use cvmkit_initrd::{FileSource, Initrd, Kind, Origin};
use cvmkit_provenance::sbom::{self, InitrdFile, Known};
use sha2::{Digest, Sha256};

use crate::error::{Context as _, Error, Result};
use crate::spec::{Platform, Spec, Target};

/// The file name of the SBOM in an image's output directory.
pub const FILE: &str = "sbom.cdx.json";

/// The SBOM of `spec`'s image, whose outputs (name, path) are hashed into it.
pub fn generate(
    spec: &Spec,
    initrd_specs: &[&cvmkit_initrd::Spec],
    opts: &cvmkit_initrd::Options,
    outputs: &[(&str, &Path)],
) -> Result<String> {
    let what = || format!("image {}: SBOM", spec.name);
    // The same model the archive was written from (listing a tree costs a stat per file; the
    // initrd builder does not keep its model), so every file has its origin.
    let mut initrd = Initrd::new();
    for t in &spec.initrd.trees {
        initrd.add_tree(t, opts).with_context(what)?;
    }
    for s in initrd_specs {
        initrd.apply_spec(s).with_context(what)?;
    }
    let mut files = Vec::new();
    for (name, node) in initrd.iter() {
        let Kind::File { source, .. } = &node.kind else { continue };
        let (src, sha256) = match source {
            FileSource::Disk { path, .. } => (
                Some(path.clone()),
                cvmkit_provenance::sha256_file(path, "initrd file").map_err(|e| Error::msg(format!("{}: {e}", what())))?,
            ),
            FileSource::Bytes(b) => (None, Sha256::digest(b).into()),
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
    let mut hashed = Vec::new();
    for (name, path) in outputs {
        let d = cvmkit_provenance::sha256_file(path, "output").map_err(|e| Error::msg(format!("{}: {e}", what())))?;
        hashed.push((name.to_string(), d));
    }
    let inputs = sbom::Inputs {
        image: &spec.name,
        source_date_epoch: spec.source_date_epoch,
        kernel: &spec.uki.kernel,
        stub: &spec.uki.stub,
        firmware,
        extra_initrds: spec.uki.extra_initrds.clone(),
        initrd: files,
        outputs: hashed,
        known: &known,
        tool_version: env!("CARGO_PKG_VERSION"),
    };
    let bom = sbom::generate(&inputs).map_err(|e| Error::msg(format!("{}: {e}", what())))?;
    Ok(sbom::to_json(&bom))
}
