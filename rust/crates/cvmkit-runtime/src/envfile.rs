//! `/etc/cvmkit/cloud-config.env`: what discovery found, as `KEY=VALUE` lines.
//!
//! The order is fixed (not sorted), so the same discovery gives the same bytes:
//!
//! ```text
//! CVMKIT_SOURCE=qemu
//! CVMKIT_WORKLOADS=2
//! CVMKIT_HOSTNAMES=a.example,b.example
//! CVMKIT_WORKLOAD_0_APP=http://10.0.2.2:8090/app
//! CVMKIT_WORKLOAD_0_SHA256=…
//! CVMKIT_WORKLOAD_0_PORT=3001
//! CVMKIT_WORKLOAD_0_HOSTNAME=a.example
//! CVMKIT_WORKLOAD_0_KEY=manifest
//! CVMKIT_WORKLOAD_1_…
//! ```
//!
//! `CVMKIT_HOSTNAMES` is the normalized list (deduplicated); `…_HOSTNAME` is empty for a workload
//! without one. Values made only of `[A-Za-z0-9._:/@%+=,-]` are written bare; anything else is
//! single-quoted with `'` written as `'\''`, so the file can be `source`d by a POSIX shell and read
//! by systemd's `EnvironmentFile=`. The file is written atomically: a temporary file in the same
//! directory, synced, then renamed over the target, then the directory synced.

use std::io::Write as _;
use std::path::Path;

use crate::metadata::Found;
use crate::routes::{workload_port, Plan, Target};

/// Quotes `v` for a `KEY=VALUE` line (see the module docs).
pub fn quote(v: &str) -> String {
    if !v.is_empty() && v.bytes().all(|b| b.is_ascii_alphanumeric() || b"._:/@%+=,-".contains(&b)) {
        v.to_string()
    } else {
        format!("'{}'", v.replace('\'', "'\\''"))
    }
}

/// The `(key, value)` pairs for `found` and `plan`, in file order.
pub fn entries(found: &Found, plan: &Plan, base_port: u16) -> Vec<(String, String)> {
    let hostnames: Vec<&str> = plan.routes.iter().map(|r| r.hostname.as_str()).collect();
    let mut out = vec![
        ("CVMKIT_SOURCE".to_string(), found.source.name().to_string()),
        ("CVMKIT_WORKLOADS".to_string(), found.manifests.len().to_string()),
        ("CVMKIT_HOSTNAMES".to_string(), hostnames.join(",")),
    ];
    for (i, m) in found.manifests.iter().enumerate() {
        let hostname = plan
            .routes
            .iter()
            .find(|r| matches!(r.target, Target::Workload { index, .. } if index == i))
            .map(|r| r.hostname.clone())
            .unwrap_or_default();
        let p = |k: &str| format!("CVMKIT_WORKLOAD_{i}_{k}");
        out.push((p("APP"), m.app_url.clone()));
        out.push((p("SHA256"), m.sha256.to_hex()));
        out.push((p("PORT"), workload_port(base_port, i).to_string()));
        out.push((p("HOSTNAME"), hostname));
        out.push((p("KEY"), found.keys.get(i).cloned().unwrap_or_default()));
    }
    out
}

/// Renders `entries` as the file's text.
pub fn render(entries: &[(String, String)]) -> String {
    entries.iter().map(|(k, v)| format!("{k}={}\n", quote(v))).collect()
}

/// Writes `contents` to `path` atomically (temp file in the same directory, fsync, rename, fsync
/// of the directory), creating the directory if needed.
pub fn write_atomic(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let name = path.file_name().ok_or_else(|| std::io::Error::other("the path has no file name"))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".tmp{}", std::process::id()));
    let tmp = dir.join(tmp_name);
    let result = (|| {
        let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).open(&tmp)?;
        f.write_all(contents)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)?;
        std::fs::File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::quote;

    #[test]
    fn quoting() {
        assert_eq!(quote("http://h:1/a?b=c"), "'http://h:1/a?b=c'");
        assert_eq!(quote("file:///a/b"), "file:///a/b");
        assert_eq!(quote(""), "''");
        assert_eq!(quote("it's"), "'it'\\''s'");
    }
}
