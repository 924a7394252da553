//! Which components two SBOMs differ in, and which components feed a register.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use crate::sbom::{prop, Bom, Component};

/// One difference between two SBOMs' components.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "change", rename_all = "kebab-case")]
pub enum Change {
    /// Only in the second SBOM.
    Added { component: String, role: String },
    /// Only in the first.
    Removed { component: String, role: String },
    /// Another version.
    Version { component: String, role: String, a: String, b: String },
    /// The component's own bytes differ (kernel, stub, firmware, an extra initrd).
    Bytes { component: String, role: String, a: String, b: String },
    /// A file of the component differs.
    FileChanged { component: String, role: String, path: String, a: String, b: String },
    FileAdded { component: String, role: String, path: String, sha256: String },
    FileRemoved { component: String, role: String, path: String, sha256: String },
}

impl Change {
    /// The role of the component changed (`kernel`, `initrd`, …).
    pub fn role(&self) -> &str {
        match self {
            Change::Added { role, .. }
            | Change::Removed { role, .. }
            | Change::Version { role, .. }
            | Change::Bytes { role, .. }
            | Change::FileChanged { role, .. }
            | Change::FileAdded { role, .. }
            | Change::FileRemoved { role, .. } => role,
        }
    }
}

fn short(h: &str) -> &str {
    h.get(..16).unwrap_or(h)
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Change::Added { component, role } => write!(f, "{role} component {component}: added"),
            Change::Removed { component, role } => write!(f, "{role} component {component}: removed"),
            Change::Version { component, role, a, b } => write!(f, "{role} component {component}: version {a} -> {b}"),
            Change::Bytes { component, role, a, b } => write!(f, "{role} component {component}: sha256 {} -> {}", short(a), short(b)),
            Change::FileChanged { component, role, path, a, b } => write!(f, "{role} changed: {path} ({component}) sha256 {} -> {}", short(a), short(b)),
            Change::FileAdded { component, role, path, sha256 } => write!(f, "{role} changed: {path} ({component}) added, sha256 {}", short(sha256)),
            Change::FileRemoved { component, role, path, sha256 } => write!(f, "{role} changed: {path} ({component}) removed, was sha256 {}", short(sha256)),
        }
    }
}

/// Components keyed by (role, name): a package keeps its key across versions and store paths.
fn index(bom: &Bom) -> BTreeMap<(String, String), &Component> {
    let mut m = BTreeMap::new();
    for c in &bom.components {
        let role = c.role().unwrap_or("component").to_string();
        let mut key = (role.clone(), c.name.clone());
        let mut n = 1;
        while m.contains_key(&key) {
            n += 1;
            key = (role.clone(), format!("{}#{n}", c.name));
        }
        m.insert(key, c);
    }
    m
}

fn files(c: &Component) -> BTreeMap<&str, &str> {
    c.components
        .iter()
        .filter(|f| f.kind == "file")
        .map(|f| (f.name.as_str(), f.sha256().unwrap_or("")))
        .collect()
}

/// What differs between the components of `a` and `b`, in a stable order.
pub fn diff(a: &Bom, b: &Bom) -> Vec<Change> {
    let (ia, ib) = (index(a), index(b));
    let mut out = Vec::new();
    let keys: std::collections::BTreeSet<_> = ia.keys().chain(ib.keys()).cloned().collect();
    for key in keys {
        let (role, component) = (key.0.clone(), key.1.clone());
        match (ia.get(&key), ib.get(&key)) {
            // A package's files are listed too, so a file that moved to a package of another
            // name is paired up below.
            (Some(ca), None) => {
                out.push(Change::Removed { component: component.clone(), role: role.clone() });
                for (p, h) in files(ca) {
                    out.push(Change::FileRemoved { component: component.clone(), role: role.clone(), path: p.into(), sha256: h.into() });
                }
            }
            (None, Some(cb)) => {
                out.push(Change::Added { component: component.clone(), role: role.clone() });
                for (p, h) in files(cb) {
                    out.push(Change::FileAdded { component: component.clone(), role: role.clone(), path: p.into(), sha256: h.into() });
                }
            }
            (Some(ca), Some(cb)) => {
                if ca.version != cb.version {
                    out.push(Change::Version {
                        component: component.clone(),
                        role: role.clone(),
                        a: ca.version.clone().unwrap_or_else(|| "-".into()),
                        b: cb.version.clone().unwrap_or_else(|| "-".into()),
                    });
                }
                // A package of the initrd is judged by its files (a one-file package's own hash
                // is its file's: said once, with the path).
                if let (Some(ha), Some(hb), false) = (ca.sha256(), cb.sha256(), role == "initrd") {
                    if ha != hb {
                        out.push(Change::Bytes { component: component.clone(), role: role.clone(), a: ha.into(), b: hb.into() });
                    }
                }
                let (fa, fb) = (files(ca), files(cb));
                let paths: std::collections::BTreeSet<&str> = fa.keys().chain(fb.keys()).copied().collect();
                for p in paths {
                    let (component, role, path) = (component.clone(), role.clone(), p.to_string());
                    match (fa.get(p), fb.get(p)) {
                        (Some(x), Some(y)) if x != y => out.push(Change::FileChanged { component, role, path, a: (*x).into(), b: (*y).into() }),
                        (Some(x), None) => out.push(Change::FileRemoved { component, role, path, sha256: (*x).into() }),
                        (None, Some(y)) => out.push(Change::FileAdded { component, role, path, sha256: (*y).into() }),
                        _ => {}
                    }
                }
            }
            (None, None) => {}
        }
    }
    // A file that moved between packages (another store path of the same name is the same key;
    // a new package name is not) shows as removed and added: say it once as changed.
    merge_moves(out)
}

fn merge_moves(changes: Vec<Change>) -> Vec<Change> {
    let mut removed: BTreeMap<String, (String, String, String)> = BTreeMap::new();
    for c in &changes {
        if let Change::FileRemoved { component, role, path, sha256 } = c {
            removed.insert(path.clone(), (component.clone(), role.clone(), sha256.clone()));
        }
    }
    let mut moved = std::collections::BTreeSet::new();
    let mut out = Vec::new();
    for c in &changes {
        if let Change::FileAdded { component, role, path, sha256 } = c {
            if let Some((_, _, old)) = removed.get(path) {
                moved.insert(path.clone());
                if old != sha256 {
                    out.push(Change::FileChanged { component: component.clone(), role: role.clone(), path: path.clone(), a: old.clone(), b: sha256.clone() });
                }
                continue;
            }
        }
        out.push(c.clone());
    }
    out.retain(|c| !matches!(c, Change::FileRemoved { path, .. } if moved.contains(path)));
    out
}

/// The image inputs whose bytes a register measures, as SBOM roles. `platform` is `tdx`, `tpm`,
/// `snp` (the firmware alone: what boots a disk) or `snp-direct-boot` (QEMU's kernel hashes: the
/// kernel and initrd too). `None`: a register cvmkit does not know (or one the runtime extends:
/// its workloads are not in the image).
pub fn roles_of(platform: &str, register: &str) -> Option<&'static [&'static str]> {
    const FIRMWARE: &[&str] = &["firmware"];
    const UKI: &[&str] = &["kernel", "stub", "initrd", "extra-initrd"];
    const SECTIONS: &[&str] = &["kernel", "initrd", "extra-initrd"];
    Some(match (platform, register) {
        ("tdx", "MRTD" | "RTMR0") => FIRMWARE,
        // RTMR1: the UKI as a PE image and its .linux; RTMR2: the sections systemd-stub measures
        // (PCR 11's events) and the initrd the kernel loads.
        ("tdx", "RTMR1") => UKI,
        ("tdx", "RTMR2") => SECTIONS,
        ("snp", "LAUNCH_DIGEST") => FIRMWARE,
        ("snp-direct-boot", "LAUNCH_DIGEST") => &["firmware", "kernel", "initrd"],
        ("tpm", r) => match r.strip_prefix("PCR").and_then(|n| n.parse::<u32>().ok())? {
            0..=3 | 6 | 7 => FIRMWARE,
            4 => UKI,
            9 | 11 => SECTIONS,
            _ => return None,
        },
        _ => return None,
    })
}

/// Why `register` may differ: the components that feed it in `expected`, and, given the SBOM
/// of another image whose prediction equals the reported value, what changed in them.
pub fn explain(platform: &str, register: &str, expected: &Bom, candidate: Option<(&str, &Bom)>) -> Vec<String> {
    let Some(roles) = roles_of(platform, register) else {
        return vec![format!("{register} is not fed by the image's components (the SBOM cannot explain it)")];
    };
    match candidate {
        Some((name, other)) => {
            let changes: Vec<Change> = diff(expected, other).into_iter().filter(|c| roles.contains(&c.role())).collect();
            if changes.is_empty() {
                vec![format!("{register}: {name} predicts the reported value, but none of the components that feed {register} ({}) differs in its SBOM", roles.join(", "))]
            } else {
                let mut v = vec![format!("{register}: the reported value is {name}'s prediction; what changed:")];
                v.extend(changes.iter().map(|c| c.to_string()));
                v
            }
        }
        None => {
            let fed: Vec<String> = expected
                .components
                .iter()
                .filter(|c| c.role().is_some_and(|r| roles.contains(&r)))
                .map(|c| {
                    let n = c.components.len();
                    let v = c.version.as_deref().map(|v| format!(" {v}")).unwrap_or_default();
                    let what = if n > 0 { format!(" ({n} files)") } else { String::new() };
                    format!("{} {}{v}{what}", c.role().unwrap_or(""), c.name)
                })
                .collect();
            vec![format!(
                "{register} is fed by: {} (an image whose prediction matches, given as a candidate, names the change)",
                if fed.is_empty() { "no component listed in the SBOM".into() } else { fed.join(", ") }
            )]
        }
    }
}

/// The store path of a component, if Nix built it.
pub fn store_path(c: &Component) -> Option<&str> {
    c.property(prop::STORE_PATH)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sbom::{parse, Bom};

    fn bom(components: serde_json::Value) -> Bom {
        parse(&serde_json::json!({ "bomFormat": "CycloneDX", "specVersion": "1.6", "components": components }).to_string(), "t").unwrap()
    }

    fn comp(role: &str, name: &str, version: &str, sha: Option<&str>, files: &[(&str, &str)]) -> serde_json::Value {
        let mut c = serde_json::json!({ "type": "application", "name": name, "version": version,
            "properties": [{ "name": "cvmkit:role", "value": role }],
            "components": files.iter().map(|(p, h)| serde_json::json!({ "type": "file", "name": p, "hashes": [{ "alg": "SHA-256", "content": h }] })).collect::<Vec<_>>() });
        if let Some(s) = sha {
            c["hashes"] = serde_json::json!([{ "alg": "SHA-256", "content": s }]);
        }
        c
    }

    #[test]
    fn diff_names_versions_bytes_files_and_moves() {
        let a = bom(serde_json::json!([
            comp("kernel", "linux", "6.18.5", Some("aa"), &[]),
            comp("initrd", "busybox", "1.36.1", None, &[("/bin/busybox", "11")]),
            comp("initrd", "app", "1", None, &[("/usr/bin/app", "22"), ("/etc/app.conf", "33")]),
            comp("initrd", "old", "1", None, &[("/usr/bin/tool", "44")]),
        ]));
        let b = bom(serde_json::json!([
            comp("kernel", "linux", "6.18.6", Some("bb"), &[]),
            comp("initrd", "busybox", "1.36.1", None, &[("/bin/busybox", "11")]),
            comp("initrd", "app", "1", None, &[("/usr/bin/app", "55")]),
            comp("initrd", "new", "1", None, &[("/usr/bin/tool", "66"), ("/usr/bin/extra", "77")]),
        ]));
        let lines: Vec<String> = diff(&a, &b).iter().map(|c| c.to_string()).collect();
        assert_eq!(lines, [
            "initrd changed: /etc/app.conf (app) removed, was sha256 33".to_string(),
            "initrd changed: /usr/bin/app (app) sha256 22 -> 55".to_string(),
            "initrd component new: added".to_string(),
            "initrd changed: /usr/bin/extra (new) added, sha256 77".to_string(),
            "initrd changed: /usr/bin/tool (new) sha256 44 -> 66".to_string(),
            "initrd component old: removed".to_string(),
            "kernel component linux: version 6.18.5 -> 6.18.6".to_string(),
            "kernel component linux: sha256 aa -> bb".to_string(),
        ]);
        assert!(diff(&a, &a).is_empty());
    }

    #[test]
    fn explain_keeps_to_the_registers_inputs() {
        let a = bom(serde_json::json!([
            comp("firmware", "OVMF", "1", Some("f1"), &[]),
            comp("initrd", "app", "1", None, &[("/usr/bin/app", "22")]),
        ]));
        let b = bom(serde_json::json!([
            comp("firmware", "OVMF", "2", Some("f2"), &[]),
            comp("initrd", "app", "1", None, &[("/usr/bin/app", "23")]),
        ]));
        // RTMR2 is not fed by the firmware: only the initrd change is named.
        assert_eq!(explain("tdx", "RTMR2", &a, Some(("B", &b))), vec![
            "RTMR2: the reported value is B's prediction; what changed:".to_string(),
            "initrd changed: /usr/bin/app (app) sha256 22 -> 23".to_string(),
        ]);
        // MRTD is the firmware's.
        assert_eq!(explain("tdx", "MRTD", &a, Some(("B", &b)))[1..], ["firmware component OVMF: version 1 -> 2".to_string(), "firmware component OVMF: sha256 f1 -> f2".to_string()]);
        assert_eq!(explain("tpm", "PCR4", &a, None), vec!["PCR4 is fed by: initrd app 1 (1 files) (an image whose prediction matches, given as a candidate, names the change)".to_string()]);
        assert!(explain("tdx", "RTMR3", &a, None)[0].contains("not fed by the image's components"));
        // SNP: the initrd feeds the launch digest only with QEMU's kernel hashes.
        assert_eq!(explain("snp", "LAUNCH_DIGEST", &a, Some(("B", &b))).len(), 3);
        assert_eq!(explain("snp-direct-boot", "LAUNCH_DIGEST", &a, Some(("B", &b))).len(), 4);
    }
}
