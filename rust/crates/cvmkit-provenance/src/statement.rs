//! An in-toto Statement (v1) with a SLSA v1 provenance predicate for an image's outputs.
//!
//! Subjects: `uki.efi`, the disk, `measurements.json` and `sbom.cdx.json` (those present).
//! Build definition: the flake (its URI, locked inputs from flake.lock with their git revision
//! and narHash, the flake's own revision), the image name; run details: `cvmkit build` and its
//! version. No timestamps: the statement of a rebuild is the same bytes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::{hex, sha256_file, Error, Result};

/// The statement's `_type`.
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
/// SLSA provenance v1.
pub const PREDICATE_TYPE: &str = "https://slsa.dev/provenance/v1";
/// What cvmkit's build type means: documented in README "Provenance".
pub const BUILD_TYPE: &str = "https://github.com/cvmkit/cvmkit/blob/main/README.md#provenance";
/// The builder's id.
pub const BUILDER_ID: &str = "https://github.com/cvmkit/cvmkit#cvmkit-build";

/// The outputs of an image directory that become subjects, in this order (the disk is
/// whichever `disk.*` exists).
pub const SUBJECTS: &[&str] = &["uki.efi", "disk.*", "measurements.json", "sbom.cdx.json"];

#[derive(Debug, Clone, Serialize)]
pub struct Statement {
    #[serde(rename = "_type")]
    pub statement_type: String,
    pub subject: Vec<ResourceDescriptor>,
    #[serde(rename = "predicateType")]
    pub predicate_type: String,
    pub predicate: Provenance,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct ResourceDescriptor {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub digest: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Provenance {
    #[serde(rename = "buildDefinition")]
    pub build_definition: BuildDefinition,
    #[serde(rename = "runDetails")]
    pub run_details: RunDetails,
}

#[derive(Debug, Clone, Serialize)]
pub struct BuildDefinition {
    #[serde(rename = "buildType")]
    pub build_type: String,
    #[serde(rename = "externalParameters")]
    pub external_parameters: BTreeMap<String, String>,
    #[serde(rename = "internalParameters", skip_serializing_if = "BTreeMap::is_empty")]
    pub internal_parameters: BTreeMap<String, String>,
    #[serde(rename = "resolvedDependencies", skip_serializing_if = "Vec::is_empty")]
    pub resolved_dependencies: Vec<ResourceDescriptor>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RunDetails {
    pub builder: Builder,
}

#[derive(Debug, Clone, Serialize)]
pub struct Builder {
    pub id: String,
    pub version: BTreeMap<String, String>,
}

/// What the statement says about the build.
#[derive(Debug, Clone, Default)]
pub struct BuildInfo {
    /// The image name.
    pub image: String,
    /// The flake's reference, e.g. `github:cvmkit/cvmkit` (or a path).
    pub flake: Option<String>,
    /// The flake's own git revision, and its narHash.
    pub source_rev: Option<String>,
    pub source_nar_hash: Option<String>,
    /// Locked inputs (from flake.lock).
    pub inputs: Vec<LockedInput>,
    /// cvmkit's version.
    pub tool_version: String,
}

/// One locked flake input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockedInput {
    pub name: String,
    pub uri: String,
    pub rev: Option<String>,
    pub nar_hash: Option<String>,
}

/// The root's direct inputs of a flake.lock (version 5–7), sorted by name. An input that
/// `follows` another is skipped: the followed one is listed under its own name.
pub fn parse_flake_lock(text: &str, origin: &str) -> Result<Vec<LockedInput>> {
    let bad = |what: &str| Error::Invalid(format!("flake lock {origin}: {what}"));
    let v: serde_json::Value = serde_json::from_str(text).map_err(|e| bad(&format!("not JSON: {e}")))?;
    let nodes = v.get("nodes").and_then(|n| n.as_object()).ok_or_else(|| bad("no \"nodes\" object"))?;
    let root_name = v.get("root").and_then(|r| r.as_str()).unwrap_or("root");
    let root = nodes.get(root_name).ok_or_else(|| bad(&format!("no root node {root_name:?}")))?;
    let mut out = Vec::new();
    if let Some(inputs) = root.get("inputs").and_then(|i| i.as_object()) {
        for (name, target) in inputs {
            let Some(node_name) = target.as_str() else { continue };
            let node = nodes.get(node_name).ok_or_else(|| bad(&format!("input {name:?} names a missing node {node_name:?}")))?;
            let locked = node.get("locked").ok_or_else(|| bad(&format!("input {name:?} is not locked")))?;
            let s = |k: &str| locked.get(k).and_then(|x| x.as_str()).map(str::to_string);
            let uri = match s("type").as_deref() {
                Some("github") => format!("git+https://github.com/{}/{}", s("owner").unwrap_or_default(), s("repo").unwrap_or_default()),
                Some("gitlab") => format!("git+https://gitlab.com/{}/{}", s("owner").unwrap_or_default(), s("repo").unwrap_or_default()),
                Some("sourcehut") => format!("git+https://git.sr.ht/{}/{}", s("owner").unwrap_or_default(), s("repo").unwrap_or_default()),
                Some("git") | Some("tarball") | Some("file") | Some("mercurial") => s("url").unwrap_or_default(),
                Some("path") => format!("path:{}", s("path").unwrap_or_default()),
                Some(t) => return Err(bad(&format!("input {name:?} has a lock type {t:?} cvmkit does not know"))),
                None => return Err(bad(&format!("input {name:?} has no lock type"))),
            };
            out.push(LockedInput { name: name.clone(), uri, rev: s("rev"), nar_hash: s("narHash") });
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// The subjects of an image directory: (name, path) of each output that exists.
pub fn subjects_of(dir: &Path) -> Result<Vec<(String, PathBuf)>> {
    let mut out = Vec::new();
    let mut disks: Vec<String> = std::fs::read_dir(dir)
        .map_err(|source| Error::Read { what: "image directory", path: dir.display().to_string(), source })?
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .filter(|n| n.starts_with("disk."))
        .collect();
    disks.sort();
    for s in SUBJECTS {
        if *s == "disk.*" {
            out.extend(disks.iter().map(|d| (d.clone(), dir.join(d))));
        } else if dir.join(s).is_file() {
            out.push((s.to_string(), dir.join(s)));
        }
    }
    if !out.iter().any(|(n, _)| n == "uki.efi") {
        return Err(Error::Invalid(format!("image directory {} has no uki.efi: is it a cvmkit build's output?", dir.display())));
    }
    Ok(out)
}

/// The statement for the image in `dir`.
pub fn statement(dir: &Path, info: &BuildInfo) -> Result<Statement> {
    let mut subject = Vec::new();
    for (name, path) in subjects_of(dir)? {
        subject.push(ResourceDescriptor {
            name: Some(name),
            digest: [("sha256".to_string(), hex(&sha256_file(&path, "image output")?))].into(),
            ..Default::default()
        });
    }
    let mut external = BTreeMap::new();
    external.insert("image".to_string(), info.image.clone());
    if let Some(f) = &info.flake {
        external.insert("flake".to_string(), f.clone());
    }
    // A flake (the source itself, or a locked input): its git revision as the digest, its
    // narHash as an annotation (in-toto's digest set has no name for it).
    let dependency = |name: &str, uri: Option<&String>, rev: Option<&String>, nar_hash: Option<&String>| ResourceDescriptor {
        name: Some(name.into()),
        uri: uri.cloned(),
        digest: rev.map(|r| ("gitCommit".to_string(), r.clone())).into_iter().collect(),
        annotations: nar_hash.map(|h| ("narHash".to_string(), h.clone())).into_iter().collect(),
    };
    let mut deps = Vec::new();
    if info.flake.is_some() || info.source_rev.is_some() || info.source_nar_hash.is_some() {
        deps.push(dependency("source", info.flake.as_ref(), info.source_rev.as_ref(), info.source_nar_hash.as_ref()));
    }
    for i in &info.inputs {
        deps.push(dependency(&i.name, Some(&i.uri), i.rev.as_ref(), i.nar_hash.as_ref()));
    }
    Ok(Statement {
        statement_type: STATEMENT_TYPE.into(),
        subject,
        predicate_type: PREDICATE_TYPE.into(),
        predicate: Provenance {
            build_definition: BuildDefinition {
                build_type: BUILD_TYPE.into(),
                external_parameters: external,
                internal_parameters: [("builder".to_string(), "cvmkit build".to_string())].into(),
                resolved_dependencies: deps,
            },
            run_details: RunDetails {
                builder: Builder { id: BUILDER_ID.into(), version: [("cvmkit".to_string(), info.tool_version.clone())].into() },
            },
        },
    })
}

/// Pretty JSON ending in a newline.
pub fn to_json(s: &Statement) -> String {
    let mut t = serde_json::to_string_pretty(s).expect("a statement serializes");
    t.push('\n');
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flake_lock_inputs() {
        // This repository's own flake.lock shape (version 7).
        let lock = r#"{"nodes":{"nixpkgs":{"locked":{"lastModified":1,"narHash":"sha256-abc=","owner":"NixOS","repo":"nixpkgs","rev":"0123","type":"github"},"original":{}},
            "other":{"locked":{"narHash":"sha256-x=","type":"git","url":"https://example.org/x.git","rev":"99"}},
            "root":{"inputs":{"nixpkgs":"nixpkgs","x":"other","y":["x","nixpkgs"]}}},"root":"root","version":7}"#;
        let inputs = parse_flake_lock(lock, "flake.lock").unwrap();
        assert_eq!(inputs, vec![
            LockedInput { name: "nixpkgs".into(), uri: "git+https://github.com/NixOS/nixpkgs".into(), rev: Some("0123".into()), nar_hash: Some("sha256-abc=".into()) },
            LockedInput { name: "x".into(), uri: "https://example.org/x.git".into(), rev: Some("99".into()), nar_hash: Some("sha256-x=".into()) },
        ]);
        for bad in ["", "{}", r#"{"nodes":{"root":{"inputs":{"a":"b"}}}}"#, r#"{"nodes":{"b":{"locked":{"type":"weird"}},"root":{"inputs":{"a":"b"}}}}"#] {
            let e = parse_flake_lock(bad, "f.lock").unwrap_err().to_string();
            assert!(e.starts_with("flake lock f.lock: "), "{e}");
        }
    }
}
