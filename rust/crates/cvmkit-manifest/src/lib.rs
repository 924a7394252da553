//! The manifest protocol between a host and cvmkit-runtime, in one place.
//!
//! Three parties must agree on it byte for byte: the runtime in the image (which reads the
//! metadata and extends the events), `cvmkit run-local` (which serves the metadata to a QEMU
//! guest) and whoever verifies a quote (who recomputes PCR 15 / RTMR3 from the manifest it
//! deployed). Each used to carry its own copy of the constants; a drift between them would only
//! show as a guest that finds no manifest or a register that does not match. So this crate holds:
//!
//! - the manifest value and its parser ([`decode`], [`Manifest`]) and the host side's encoding
//!   ([`encode`]);
//! - the metadata keys ([`MANIFEST_KEY`], [`manifest_key`], [`HOSTNAME_KEY`]);
//! - where a QEMU guest finds the metadata ([`QEMU_METADATA_ADDR`], [`QEMU_METADATA_PORT`],
//!   [`QEMU_METADATA_URL`]) and which port workload `N` listens on ([`BASE_PORT`],
//!   [`workload_port`]), and how many workloads a deployment may have ([`MAX_WORKLOADS`],
//!   [`check_workloads`]: the runtime and a verifier refuse the same lists);
//! - the measured event strings ([`events`]) and the registers they go to ([`TPM_PCR`],
//!   [`RTMR`]).
//!
//! It has no I/O: hashing the events into a register is the runtime's (`cvmkit_runtime::measure`).
//!
//! ```
//! let value = cvmkit_manifest::encode(&format!(r#"{{"app": "http://10.0.2.2:8090/apps/0", "sha256": "{}"}}"#, "ab".repeat(32)));
//! let m = cvmkit_manifest::decode(&value)?;
//! let events = cvmkit_manifest::events(&[m[0].sha256], &[], cvmkit_manifest::BASE_PORT);
//! assert_eq!(events[0], format!("cvmkit-runtime/v1 workload=0 port=3001 sha256={}", "ab".repeat(32)));
//! assert_eq!(cvmkit_manifest::manifest_key(cvmkit_manifest::MANIFEST_KEY, 2), "manifest-2");
//! # Ok::<(), cvmkit_manifest::ManifestError>(())
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod manifest;

pub use manifest::{decode, decode_json, hex, AppSource, Manifest, ManifestError, Sha256Digest};

/// The metadata key of the first manifest value.
pub const MANIFEST_KEY: &str = "manifest";

/// The metadata key of the hostname mapping (comma-separated names, name `N` → workload `N`).
pub const HOSTNAME_KEY: &str = "hostname";

/// The `n`-th manifest key after `base`: `base` itself for 0, then `base-1`, `base-2`, …
pub fn manifest_key(base: &str, n: usize) -> String {
    if n == 0 {
        base.to_string()
    } else {
        format!("{base}-{n}")
    }
}

/// The address a QEMU user-network guest reaches the host's metadata service at (a `guestfwd`).
pub const QEMU_METADATA_ADDR: &str = "10.0.2.2";

/// The port of that service.
pub const QEMU_METADATA_PORT: u16 = 8090;

/// The runtime's default QEMU source: the key is appended to it.
pub const QEMU_METADATA_URL: &str = "http://10.0.2.2:8090/";

/// The port of workload 0 (the runtime's default `base-port`); workload `N` gets this + `N`.
pub const BASE_PORT: u16 = 3001;

/// The most workloads one deployment may have (the runtime's default `max-workloads`).
///
/// Each workload is a process, a port, a fetched file and a measured event; 64 is far beyond the
/// few services one confidential VM runs, and it bounds what a host that controls the metadata
/// can make the runtime do (an unbounded list once gave 106,560 workloads). The runtime and
/// `cvmkit-runtime events` refuse more through [`check_workloads`], so a verifier never computes
/// registers for a list the runtime would not have run.
pub const MAX_WORKLOADS: usize = 64;

/// Why a list of workloads is refused as a whole.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WorkloadsError {
    /// More entries than allowed.
    #[error("{count} workloads, more than the limit of {max}; split the deployment or raise `max-workloads`")]
    TooMany {
        /// Entries given.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// The last workload's port would pass 65535 (ports would repeat).
    #[error("{count} workloads from base port {base_port} need ports up to {last}, past 65535; lower `base-port`")]
    PortsExhausted {
        /// Entries given.
        count: usize,
        /// The port of workload 0.
        base_port: u16,
        /// The port workload `count - 1` would need.
        last: usize,
    },
}

/// Checks that `count` workloads are at most `max` and each gets its own port
/// (`base_port + N` ≤ 65535), so [`workload_port`] never saturates and no two share a port.
///
/// ```
/// assert!(cvmkit_manifest::check_workloads(64, 3001, cvmkit_manifest::MAX_WORKLOADS).is_ok());
/// assert!(cvmkit_manifest::check_workloads(65, 3001, cvmkit_manifest::MAX_WORKLOADS).is_err());
/// assert!(cvmkit_manifest::check_workloads(2, 65535, 64).is_err());
/// ```
pub fn check_workloads(count: usize, base_port: u16, max: usize) -> Result<(), WorkloadsError> {
    if count > max {
        return Err(WorkloadsError::TooMany { count, max });
    }
    let last = usize::from(base_port) + count.saturating_sub(1);
    if last > usize::from(u16::MAX) {
        return Err(WorkloadsError::PortsExhausted { count, base_port, last });
    }
    Ok(())
}

/// The port of workload `index`: `base_port + index` (3001, 3002, … by default), saturating
/// (a list that would saturate is refused first by [`check_workloads`]).
pub fn workload_port(base_port: u16, index: usize) -> u16 {
    u16::try_from(index)
        .ok()
        .and_then(|i| base_port.checked_add(i))
        .unwrap_or(u16::MAX)
}

/// The vTPM PCR the events are extended into (SHA-256 bank): unused by firmware, not resettable.
pub const TPM_PCR: u32 = 15;

/// The TDX runtime register the events are extended into (SHA-384).
pub const RTMR: u32 = 3;

/// The version tag every event starts with; a change to the event format changes it.
pub const EVENT_VERSION: &str = "cvmkit-runtime/v1";

/// A hostname the runtime refuses to put into the proxy configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("hostname '{name}' is not a DNS name: {reason}")]
pub struct HostnameError {
    /// The name as given.
    pub name: String,
    /// Why it is refused.
    pub reason: &'static str,
}

/// Parses and normalizes a `hostname` value: one DNS name or a comma-separated list; names are
/// trimmed, a final dot dropped, lower-cased, empty entries skipped, duplicates removed keeping
/// the first. An invalid name fails the
/// whole value: dropping it would silently shift every later name onto another workload.
pub fn parse_hostnames(value: &str) -> Result<Vec<String>, HostnameError> {
    let mut out: Vec<String> = Vec::new();
    for raw in value.split(',') {
        let name = raw.trim().trim_end_matches('.').to_ascii_lowercase();
        if name.is_empty() {
            continue;
        }
        validate(&name).map_err(|reason| HostnameError { name: raw.trim().to_string(), reason })?;
        if !out.contains(&name) {
            out.push(name);
        }
    }
    Ok(out)
}

fn validate(name: &str) -> Result<(), &'static str> {
    if name.len() > 253 {
        return Err("longer than 253 characters");
    }
    if name.parse::<std::net::Ipv4Addr>().is_ok() {
        return Err("an IP address, not a name");
    }
    for label in name.split('.') {
        if label.is_empty() {
            return Err("empty label");
        }
        if label.len() > 63 {
            return Err("a label is longer than 63 characters");
        }
        if !label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Err("only letters, digits, '-' and '.' are allowed");
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err("a label starts or ends with '-'");
        }
    }
    Ok(())
}

/// The events for `workloads` (app digests in workload order) and `hostnames` (normalized), in
/// the order they are extended:
///
/// ```text
/// cvmkit-runtime/v1 workload=0 port=3001 sha256=<app sha256 hex>
/// cvmkit-runtime/v1 workload=1 port=3002 sha256=<…>
/// cvmkit-runtime/v1 hostnames=a.example,b.example
/// ```
///
/// (ASCII, no newline; the hostname list is empty when there is none.) The app URLs are
/// deliberately not measured: they say where the bytes come from, not what runs.
pub fn events(workloads: &[Sha256Digest], hostnames: &[String], base_port: u16) -> Vec<String> {
    let mut out: Vec<String> = workloads
        .iter()
        .enumerate()
        .map(|(i, d)| {
            format!(
                "{EVENT_VERSION} workload={i} port={} sha256={}",
                workload_port(base_port, i),
                d.to_hex()
            )
        })
        .collect();
    out.push(format!("{EVENT_VERSION} hostnames={}", hostnames.join(",")));
    out
}

/// A manifest value as the host serves it: standard base64 with padding (RFC 4648 §4) of the
/// JSON text, which [`decode`] reads back.
pub fn encode(json: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(json.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_matches_addr_and_port() {
        assert_eq!(
            QEMU_METADATA_URL,
            format!("http://{QEMU_METADATA_ADDR}:{QEMU_METADATA_PORT}/")
        );
    }

    #[test]
    fn keys_and_ports() {
        assert_eq!(manifest_key(MANIFEST_KEY, 0), "manifest");
        assert_eq!(manifest_key("m", 3), "m-3");
        assert_eq!(workload_port(BASE_PORT, 2), 3003);
        assert_eq!(workload_port(65535, 1), u16::MAX);
        assert_eq!(workload_port(3001, usize::MAX), u16::MAX);
    }

    #[test]
    fn encode_matches_rfc4648_vectors_and_decodes() {
        for (plain, enc) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(encode(plain), enc);
        }
        let json = format!(r#"[{{"app":"http://h/a","sha256":"{}"}}]"#, "0".repeat(64));
        assert_eq!(decode(&encode(&json)).unwrap()[0].app_url, "http://h/a");
    }

    #[test]
    fn workload_limits() {
        assert_eq!(check_workloads(0, 3001, MAX_WORKLOADS), Ok(()));
        assert_eq!(check_workloads(MAX_WORKLOADS, 3001, MAX_WORKLOADS), Ok(()));
        assert_eq!(
            check_workloads(MAX_WORKLOADS + 1, 3001, MAX_WORKLOADS),
            Err(WorkloadsError::TooMany { count: 65, max: 64 })
        );
        // The attack's lists put 44,026 workloads on port 65535: every port must be distinct.
        assert_eq!(check_workloads(1, 65535, 64), Ok(()));
        assert_eq!(
            check_workloads(2, 65535, 64),
            Err(WorkloadsError::PortsExhausted { count: 2, base_port: 65535, last: 65536 })
        );
        let ports: std::collections::BTreeSet<u16> = (0..64).map(|i| workload_port(65472, i)).collect();
        assert!(check_workloads(64, 65472, 64).is_ok());
        assert_eq!(ports.len(), 64);
    }

    #[test]
    fn event_strings() {
        let ev = events(
            &[Sha256Digest([1; 32])],
            &["a.example".into(), "b.example".into()],
            3001,
        );
        assert_eq!(
            ev[0],
            format!(
                "cvmkit-runtime/v1 workload=0 port=3001 sha256={}",
                "01".repeat(32)
            )
        );
        assert_eq!(ev[1], "cvmkit-runtime/v1 hostnames=a.example,b.example");
        assert_eq!(events(&[], &[], 3001), ["cvmkit-runtime/v1 hostnames="]);
    }
}
