//! Manifest discovery in cloud metadata.
//!
//! Three sources, tried in the order configured (default: GCP, Azure, QEMU), each with short
//! timeouts:
//!
//! | source | request | where the values are |
//! | --- | --- | --- |
//! | [`SourceKind::Gcp`] | `GET {gcp}{key}` with `Metadata-Flavor: Google` | the body of the custom attribute `key`; 404 = absent |
//! | [`SourceKind::Azure`] | `GET {azure}` with `Metadata: true` | the `value` of the entry whose `name` is `key` in the JSON array that IMDS `compute/tagsList` returns |
//! | [`SourceKind::Qemu`] | `GET {qemu}{key}` | the body; 404 = absent |
//!
//! The defaults are GCP's `http://metadata.google.internal/computeMetadata/v1/instance/attributes/`,
//! Azure's `http://169.254.169.254/metadata/instance/compute/tagsList?api-version=2021-02-01`
//! (the `tagsList` field of the Instance category, a JSON array of `{"name", "value"}` objects,
//! documented at <https://learn.microsoft.com/en-us/azure/virtual-machines/instance-metadata-service>;
//! it is used rather than the `tags` string because a `;`-joined string cannot carry values that
//! contain `;` or `:` unambiguously), and the QEMU host service `http://10.0.2.2:8090/`.
//!
//! **Several manifests.** The keys read are `manifest`, then `manifest-1`, `manifest-2`, … up to
//! the first one missing (at most [`MAX_MANIFEST_KEYS`]); each value may itself be a JSON list
//! (see [`crate::manifest`]). The workloads are all their entries in that order: entry `N` of the
//! concatenation is workload `N`. A source without `manifest` has no manifest, whatever numbered
//! keys it has. The key `hostname` of the same source gives the HTTPS mapping ([`crate::routes`]).
//!
//! **Size limits.** Azure tag values hold at most 256 characters, enough for one manifest with a
//! short URL (`{"app": "https://…/app", "sha256": "<64 hex>"}` is about 100 characters, 136 in
//! base64); put further workloads in `manifest-1`, `manifest-2`, … rather than in a list there.
//! GCP attribute values hold up to 256 KiB, so a list inside one `manifest` is fine there.
//!
//! **Which source wins.** A source that cannot be reached, times out or answers other than
//! 200/404 has not answered; one that answers without a `manifest` is empty; both make discovery
//! go on to the next source. The first source with a `manifest` decides: if any of its values
//! is bad (larger than 256 KiB, not UTF-8, base64, JSON, hash, URL, or more workloads than
//! `max-workloads` altogether), discovery fails instead of falling back to a later source, so a
//! broken deployment is loud rather than silently running something else.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use crate::http::{Client, HttpError};
use crate::manifest::{self, Manifest, ManifestError};

/// How many `manifest`, `manifest-1`, … keys are read at most.
pub const MAX_MANIFEST_KEYS: usize = 64;

/// The largest metadata value (and Azure tag list) read: GCP's limit for one attribute value.
pub const MAX_VALUE_BYTES: u64 = 256 << 10;

/// A metadata source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SourceKind {
    /// Google Compute Engine custom metadata attributes.
    Gcp,
    /// Azure Instance Metadata Service tags.
    Azure,
    /// A host-side HTTP service reachable from a QEMU user-network guest.
    Qemu,
}

impl SourceKind {
    /// The default order.
    pub const DEFAULT_ORDER: [SourceKind; 3] = [SourceKind::Gcp, SourceKind::Azure, SourceKind::Qemu];

    /// `gcp`, `azure` or `qemu`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Gcp => "gcp",
            Self::Azure => "azure",
            Self::Qemu => "qemu",
        }
    }

    /// Parses [`SourceKind::name`].
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "gcp" | "google" => Some(Self::Gcp),
            "azure" => Some(Self::Azure),
            "qemu" => Some(Self::Qemu),
            _ => None,
        }
    }
}

impl fmt::Display for SourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why discovery failed. Messages are one line.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DiscoverError {
    /// No source had a `manifest` (the reasons per source were logged).
    #[error(
        "no manifest found in any metadata source (tried {tried}); set the `manifest` attribute/tag or serve /manifest"
    )]
    NotFound {
        /// The sources tried, comma-separated.
        tried: String,
    },
    /// The first source with a manifest has a value that cannot be read as text.
    #[error("{source_kind} metadata value '{key}' is bad: {reason}")]
    Unreadable {
        /// The source.
        source_kind: SourceKind,
        /// The key.
        key: String,
        /// What is wrong (too large, not UTF-8).
        reason: String,
    },
    /// The first source with a manifest lists more workloads than allowed.
    #[error("{source_kind} metadata: {error}")]
    Workloads {
        /// The source.
        source_kind: SourceKind,
        /// The count or port problem.
        error: cvmkit_manifest::WorkloadsError,
    },
    /// The first source with a manifest has a bad value.
    #[error("{source_kind} metadata value '{key}' is bad: {error}")]
    Invalid {
        /// The source.
        source_kind: SourceKind,
        /// The key (`manifest`, `manifest-1`, …).
        key: String,
        /// What is wrong.
        error: ManifestError,
    },
}

/// Where each source lives and which keys to read.
#[derive(Debug, Clone)]
pub struct Endpoints {
    /// GCP attribute base URL; the key is appended.
    pub gcp: String,
    /// Azure `tagsList` URL (queried as is).
    pub azure: String,
    /// QEMU host service base URL; the key is appended.
    pub qemu: String,
    /// The manifest key (default `manifest`).
    pub manifest_key: String,
    /// The hostname key (default `hostname`).
    pub hostname_key: String,
}

impl Default for Endpoints {
    fn default() -> Self {
        Self {
            gcp: "http://metadata.google.internal/computeMetadata/v1/instance/attributes/".into(),
            azure: "http://169.254.169.254/metadata/instance/compute/tagsList?api-version=2021-02-01".into(),
            qemu: cvmkit_manifest::QEMU_METADATA_URL.into(),
            manifest_key: cvmkit_manifest::MANIFEST_KEY.into(),
            hostname_key: cvmkit_manifest::HOSTNAME_KEY.into(),
        }
    }
}

/// What discovery found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// The source that answered.
    pub source: SourceKind,
    /// The workloads, in order (workload `N` is `manifests[N]`).
    pub manifests: Vec<Manifest>,
    /// The keys the manifests came from, in order (`manifest`, `manifest-1`, …).
    pub keys: Vec<String>,
    /// The raw `hostname` value, if the source has one.
    pub hostname: Option<String>,
}

/// Outcome of asking one source.
#[derive(Debug)]
pub enum SourceOutcome {
    /// The source did not answer (unreachable, timeout, unexpected status).
    NoAnswer(String),
    /// The source answered but has no `manifest`.
    Empty,
    /// The source has a manifest, but the value of `key` cannot be read as text (too large,
    /// not UTF-8): final, like a bad value.
    Unreadable {
        /// The key.
        key: String,
        /// Why.
        reason: String,
    },
    /// The manifest values, key by key, and the hostname value.
    Values {
        /// `(key, value)` in order.
        manifests: Vec<(String, String)>,
        /// The `hostname` value.
        hostname: Option<String>,
    },
}

/// The discovery procedure: sources in order, HTTP client settings, endpoints.
#[derive(Debug, Clone)]
pub struct Discovery {
    /// Sources in the order tried.
    pub sources: Vec<SourceKind>,
    /// Endpoints and keys.
    pub endpoints: Endpoints,
    /// Client used for every request (its timeouts are the per-request ones; its `max_body`
    /// is [`MAX_VALUE_BYTES`] whatever it says).
    pub client: Client,
    /// The most workloads accepted (the runtime's `max-workloads`).
    pub max_workloads: usize,
    /// The port of workload 0: the last workload's port must stay ≤ 65535.
    pub base_port: u16,
}

impl Default for Discovery {
    fn default() -> Self {
        Self {
            sources: SourceKind::DEFAULT_ORDER.to_vec(),
            endpoints: Endpoints::default(),
            client: Client {
                connect_timeout: Duration::from_secs(1),
                timeout: Duration::from_secs(3),
                max_body: MAX_VALUE_BYTES,
                ..Client::default()
            },
            max_workloads: cvmkit_manifest::MAX_WORKLOADS,
            base_port: cvmkit_manifest::BASE_PORT,
        }
    }
}

enum Lookup {
    Value(String),
    Absent,
    /// The key exists but its value is not usable text.
    Unreadable(String),
}

/// Parses an Azure IMDS `tagsList` answer: a JSON array of `{"name", "value"}` objects, into a
/// map from lower-cased name (Azure tag names are case-insensitive) to value, the first of equal
/// names winning.
pub fn parse_azure_tags(body: &[u8]) -> Result<BTreeMap<String, String>, String> {
    #[derive(serde::Deserialize)]
    struct Tag {
        name: String,
        value: String,
    }
    let tags: Vec<Tag> =
        serde_json::from_slice(body).map_err(|e| format!("not a JSON array of {{\"name\", \"value\"}} tags: {e}"))?;
    let mut map = BTreeMap::new();
    for t in tags {
        map.entry(t.name.to_ascii_lowercase()).or_insert(t.value);
    }
    Ok(map)
}

impl Discovery {
    /// Tries each source once, in order; `log` receives one line per source tried.
    pub fn discover(&self, log: &mut dyn FnMut(String)) -> Result<Found, DiscoverError> {
        for &source in &self.sources {
            match self.ask(source) {
                SourceOutcome::NoAnswer(why) => log(format!("metadata source {source}: no answer ({why})")),
                SourceOutcome::Empty => {
                    log(format!("metadata source {source}: answered, no '{}' key", self.endpoints.manifest_key))
                }
                SourceOutcome::Unreadable { key, reason } => {
                    return Err(DiscoverError::Unreadable { source_kind: source, key, reason })
                }
                SourceOutcome::Values { manifests: values, hostname } => {
                    let mut manifests = Vec::new();
                    let mut keys = Vec::new();
                    for (key, value) in values {
                        let decoded = manifest::decode(&value).map_err(|error| DiscoverError::Invalid {
                            source_kind: source,
                            key: key.clone(),
                            error,
                        })?;
                        // Checked per key, so an oversized list is refused before the next is decoded.
                        let count = manifests.len() + decoded.len();
                        cvmkit_manifest::check_workloads(count, self.base_port, self.max_workloads)
                            .map_err(|error| DiscoverError::Workloads { source_kind: source, error })?;
                        for m in decoded {
                            manifests.push(m);
                            keys.push(key.clone());
                        }
                    }
                    log(format!(
                        "metadata source {source}: answered with {} workload(s){}",
                        manifests.len(),
                        hostname.as_deref().map(|h| format!(", hostname '{h}'")).unwrap_or_default()
                    ));
                    return Ok(Found { source, manifests, keys, hostname });
                }
            }
        }
        let tried = self.sources.iter().map(|s| s.name()).collect::<Vec<_>>().join(", ");
        Err(DiscoverError::NotFound { tried })
    }

    /// Asks one source for its manifest values and hostname.
    pub fn ask(&self, source: SourceKind) -> SourceOutcome {
        let result = match source {
            SourceKind::Gcp => self.ask_keyed(&self.endpoints.gcp, &[("Metadata-Flavor", "Google")]),
            SourceKind::Qemu => self.ask_keyed(&self.endpoints.qemu, &[]),
            SourceKind::Azure => self.ask_azure(),
        };
        result.unwrap_or_else(SourceOutcome::NoAnswer)
    }

    fn numbered_keys(&self) -> impl Iterator<Item = String> + '_ {
        let key = &self.endpoints.manifest_key;
        (0..MAX_MANIFEST_KEYS).map(move |i| cvmkit_manifest::manifest_key(key, i))
    }

    fn collect(&self, mut get: impl FnMut(&str) -> Result<Lookup, String>) -> Result<SourceOutcome, String> {
        let mut manifests = Vec::new();
        for key in self.numbered_keys() {
            match get(&key)? {
                Lookup::Value(v) => manifests.push((key, v)),
                Lookup::Absent => break,
                Lookup::Unreadable(reason) => return Ok(SourceOutcome::Unreadable { key, reason }),
            }
        }
        if manifests.is_empty() {
            return Ok(SourceOutcome::Empty);
        }
        let key = &self.endpoints.hostname_key;
        let hostname = match get(key)? {
            Lookup::Value(v) => Some(v),
            Lookup::Absent => None,
            Lookup::Unreadable(reason) => return Ok(SourceOutcome::Unreadable { key: key.clone(), reason }),
        };
        Ok(SourceOutcome::Values { manifests, hostname })
    }

    fn client(&self) -> Client {
        Client { max_body: MAX_VALUE_BYTES, ..self.client.clone() }
    }

    fn ask_keyed(&self, base: &str, headers: &[(&str, &str)]) -> Result<SourceOutcome, String> {
        let client = self.client();
        self.collect(|key| {
            let url = format!("{base}{key}");
            let resp = match client.get(&url, headers) {
                Ok(r) => r,
                // The source answered with the key: a value it cannot have is bad, not absent.
                Err(HttpError::TooLarge { limit, .. }) => {
                    return Ok(Lookup::Unreadable(format!("{url}: the value is larger than {limit} bytes")))
                }
                Err(e) => return Err(e.to_string()),
            };
            match resp.status {
                200 => Ok(String::from_utf8(resp.body)
                    .map(Lookup::Value)
                    .unwrap_or_else(|_| Lookup::Unreadable(format!("{url}: the value is not UTF-8")))),
                404 => Ok(Lookup::Absent),
                s => Err(format!("{url}: HTTP status {s}")),
            }
        })
    }

    fn ask_azure(&self) -> Result<SourceOutcome, String> {
        let url = &self.endpoints.azure;
        let resp = self.client().get(url, &[("Metadata", "true")]).map_err(|e: HttpError| e.to_string())?;
        if resp.status != 200 {
            return Err(format!("{url}: HTTP status {}", resp.status));
        }
        let map = parse_azure_tags(&resp.body).map_err(|e| format!("{url}: {e}"))?;
        self.collect(|key| {
            Ok(match map.get(&key.to_ascii_lowercase()) {
                Some(v) => Lookup::Value(v.clone()),
                None => Lookup::Absent,
            })
        })
    }
}
