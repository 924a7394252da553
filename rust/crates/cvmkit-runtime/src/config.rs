//! Runtime settings: defaults, a config file, then command-line flags (later wins).
//!
//! The config file (default `/etc/cvmkit/runtime.conf`, read if it exists; `--config PATH` makes
//! it mandatory) has `name = value` lines whose names are the long flags without `--`; `#` starts
//! a comment. Every endpoint, path, port and timeout is a setting, so tests and harnesses never
//! depend on the defaults (which name the real metadata services).

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::metadata::SourceKind;

/// The default config file.
pub const DEFAULT_CONFIG: &str = "/etc/cvmkit/runtime.conf";

/// A bad setting. Messages are one line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// Unknown flag or config key.
    #[error("unknown setting '{0}'; see --help")]
    Unknown(String),
    /// A flag without its value.
    #[error("setting '{0}' needs a value")]
    MissingValue(String),
    /// A value that does not parse.
    #[error("setting '{name}' = '{value}': {reason}")]
    BadValue {
        /// The setting.
        name: String,
        /// The value.
        value: String,
        /// What is expected.
        reason: &'static str,
    },
    /// The config file cannot be read or has a bad line.
    #[error("config file {path}: {reason}")]
    File {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
}

/// Which runtime registers to extend (see [`crate::measure`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MeasureMode {
    /// Extend the vTPM PCR; `None`: only if the device exists.
    pub tpm: Option<bool>,
    /// Extend the TDX RTMR; `None`: only if the file exists.
    pub tdx: Option<bool>,
}

impl MeasureMode {
    /// `auto` (each if present), `none`, or a comma list of `tpm`, `tdx` (each required).
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim() {
            "auto" => return Some(Self { tpm: None, tdx: None }),
            "none" => return Some(Self { tpm: Some(false), tdx: Some(false) }),
            _ => {}
        }
        let mut m = Self { tpm: Some(false), tdx: Some(false) };
        for part in s.split(',') {
            match part.trim() {
                "tpm" => m.tpm = Some(true),
                "tdx" => m.tdx = Some(true),
                _ => return None,
            }
        }
        Some(m)
    }
}

/// The confidential-computing platform the image was built for (setting `platform`, written by
/// the image's `runtime` module from its `platform` option).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Platform {
    /// Not a confidential platform (or not said).
    None,
    /// Intel TDX.
    Tdx,
    /// AMD SEV-SNP.
    Snp,
}

impl Platform {
    /// Whether the platform is confidential, i.e. a verifier relies on the runtime registers.
    pub fn is_confidential(self) -> bool {
        self != Self::None
    }
}

/// What to do when no runtime register can be extended (setting `unmeasured`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unmeasured {
    /// `refuse` on a confidential [`Platform`], `allow` otherwise.
    Auto,
    /// Launch nothing: the attestation would not say what runs.
    Refuse,
    /// Launch anyway, with a warning (development images only).
    Allow,
}

/// All settings of `cvmkit-runtime`.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Metadata sources, in order.
    pub sources: Vec<SourceKind>,
    /// GCP attribute base URL.
    pub gcp_url: String,
    /// Azure tagsList URL.
    pub azure_url: String,
    /// QEMU host service base URL.
    pub qemu_url: String,
    /// Manifest key.
    pub manifest_key: String,
    /// Hostname key.
    pub hostname_key: String,
    /// Per-request connect timeout for metadata.
    pub connect_timeout: Duration,
    /// Per-request overall timeout for metadata.
    pub request_timeout: Duration,
    /// How long to keep retrying discovery when no source has a manifest.
    pub discover_wait: Duration,
    /// Pause between discovery rounds.
    pub discover_interval: Duration,
    /// Where discovery results are written.
    pub env_file: PathBuf,
    /// Where fetched apps are stored (`apps/app-N`).
    pub state_dir: PathBuf,
    /// Log directory (`runtime.log`, `app-N.log`, nginx logs).
    pub log_dir: PathBuf,
    /// Port of workload 0.
    pub base_port: u16,
    /// First restart delay.
    pub backoff_initial: Duration,
    /// Largest restart delay.
    pub backoff_max: Duration,
    /// A run this long resets the delay.
    pub backoff_reset: Duration,
    /// Restart limit per workload.
    pub max_restarts: Option<u32>,
    /// Attempts to fetch an app (network errors only; a hash mismatch is final).
    pub fetch_attempts: u32,
    /// Largest app, in bytes.
    pub max_app_bytes: u64,
    /// Timeout for downloading one app.
    pub fetch_timeout: Duration,
    /// Replacement roots for `https://` apps.
    pub ca_file: Option<PathBuf>,
    /// Certificate directory (`{tls_dir}/{hostname}/fullchain.pem`, `privkey.pem`).
    pub tls_dir: PathBuf,
    /// Where the nginx configuration is written.
    pub nginx_conf: PathBuf,
    /// nginx binary to test and start (`None`: only write the configuration).
    pub nginx_bin: Option<PathBuf>,
    /// Directory for nginx's pid file and temp directories.
    pub nginx_run_dir: PathBuf,
    /// Address nginx listens on (`None`: all).
    pub nginx_listen: Option<String>,
    /// nginx HTTPS port.
    pub https_port: u16,
    /// nginx HTTP port.
    pub http_port: u16,
    /// `user` directive for nginx workers.
    pub nginx_user: Option<String>,
    /// Registers to extend.
    pub measure: MeasureMode,
    /// TPM device.
    pub tpm_device: PathBuf,
    /// PCR index.
    pub tpm_pcr: u32,
    /// TDX RTMR file.
    pub rtmr_file: PathBuf,
    /// Where the measured events are written, one per line.
    pub events_file: PathBuf,
    /// The only directory `file://` apps may come from (`None`: no `file://` apps).
    pub app_dir: Option<PathBuf>,
    /// The most workloads a deployment may have (see [`cvmkit_manifest::MAX_WORKLOADS`]).
    pub max_workloads: usize,
    /// The image's platform.
    pub platform: Platform,
    /// Whether workloads may run when no register binds them.
    pub unmeasured: Unmeasured,
    /// Obtain a certificate for the hostnames with ACME (needs `nginx_bin`).
    pub acme: bool,
    /// The ACME directory URL.
    pub acme_directory: String,
    /// PEM roots replacing the built-in ones for the ACME server.
    pub acme_ca_file: Option<PathBuf>,
    /// Account contact (`mailto:…`).
    pub acme_contact: Option<String>,
    /// Bound of one issuance.
    pub acme_timeout: Duration,
    /// Pause before trying again after a failed issuance.
    pub acme_retry: Duration,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        let ep = crate::metadata::Endpoints::default();
        Self {
            sources: SourceKind::DEFAULT_ORDER.to_vec(),
            gcp_url: ep.gcp,
            azure_url: ep.azure,
            qemu_url: ep.qemu,
            manifest_key: ep.manifest_key,
            hostname_key: ep.hostname_key,
            connect_timeout: Duration::from_millis(1000),
            request_timeout: Duration::from_millis(3000),
            discover_wait: Duration::from_secs(60),
            discover_interval: Duration::from_secs(2),
            env_file: "/etc/cvmkit/cloud-config.env".into(),
            state_dir: "/var/lib/cvmkit".into(),
            log_dir: "/var/log/cvmkit".into(),
            base_port: cvmkit_manifest::BASE_PORT,
            backoff_initial: Duration::from_secs(1),
            backoff_max: Duration::from_secs(60),
            backoff_reset: Duration::from_secs(60),
            max_restarts: None,
            fetch_attempts: 5,
            max_app_bytes: 2 << 30,
            fetch_timeout: Duration::from_secs(600),
            ca_file: None,
            tls_dir: "/etc/cvmkit/tls".into(),
            nginx_conf: "/etc/cvmkit/nginx.conf".into(),
            nginx_bin: None,
            nginx_run_dir: "/run/cvmkit/nginx".into(),
            nginx_listen: None,
            https_port: 443,
            http_port: 80,
            nginx_user: None,
            measure: MeasureMode { tpm: None, tdx: None },
            tpm_device: "/dev/tpmrm0".into(),
            tpm_pcr: cvmkit_manifest::TPM_PCR,
            rtmr_file: "/sys/devices/virtual/misc/tdx_guest/measurements/rtmr3:sha384".into(),
            events_file: "/run/cvmkit/measured-events.txt".into(),
            app_dir: Some(crate::fetch::DEFAULT_APP_DIR.into()),
            max_workloads: cvmkit_manifest::MAX_WORKLOADS,
            platform: Platform::None,
            unmeasured: Unmeasured::Auto,
            acme: true,
            // Let's Encrypt production (crate::acme::LETS_ENCRYPT; spelled out so that the
            // setting exists in builds without the `acme` feature too).
            acme_directory: "https://acme-v02.api.letsencrypt.org/directory".into(),
            acme_ca_file: None,
            acme_contact: None,
            acme_timeout: Duration::from_secs(180),
            acme_retry: Duration::from_secs(3600),
        }
    }
}

/// The settings, their value syntax and meaning, for `--help`.
pub const SETTINGS: &[(&str, &str, &str)] = &[
    ("config", "PATH", "config file of `name = value` lines (default /etc/cvmkit/runtime.conf if present)"),
    ("sources", "LIST", "metadata sources in order: gcp,azure,qemu"),
    ("gcp-url", "URL", "GCP attribute base URL (the key is appended)"),
    ("azure-url", "URL", "Azure IMDS tagsList URL"),
    ("qemu-url", "URL", "QEMU host metadata base URL (the key is appended)"),
    ("manifest-key", "NAME", "metadata key of the manifest (default manifest; then NAME-1, NAME-2, …)"),
    ("hostname-key", "NAME", "metadata key of the hostname list (default hostname)"),
    ("connect-timeout-ms", "MS", "metadata connect timeout (1000)"),
    ("timeout-ms", "MS", "metadata request timeout (3000)"),
    ("discover-wait-secs", "S", "keep retrying discovery this long (60)"),
    ("discover-interval-ms", "MS", "pause between discovery rounds (2000)"),
    ("env-file", "PATH", "discovery results (/etc/cvmkit/cloud-config.env)"),
    ("state-dir", "PATH", "fetched apps go to PATH/apps (/var/lib/cvmkit)"),
    ("log-dir", "PATH", "runtime.log, app-N.log, nginx logs (/var/log/cvmkit)"),
    ("base-port", "PORT", "port of workload 0; workload N gets PORT+N (3001)"),
    ("backoff-initial-ms", "MS", "first restart delay (1000)"),
    ("backoff-max-ms", "MS", "largest restart delay (60000)"),
    ("backoff-reset-ms", "MS", "a run this long resets the delay (60000)"),
    ("max-restarts", "N", "stop restarting a workload after N restarts (unlimited)"),
    ("fetch-attempts", "N", "attempts per app on network errors (5)"),
    ("max-app-bytes", "N", "largest app accepted (2 GiB)"),
    ("fetch-timeout-secs", "S", "timeout for one app download (600)"),
    ("ca-file", "PATH", "PEM roots replacing the built-in ones for https:// apps"),
    ("tls-dir", "PATH", "certificates: PATH/HOSTNAME/{fullchain,privkey}.pem (/etc/cvmkit/tls)"),
    ("nginx-conf", "PATH", "generated nginx configuration (/etc/cvmkit/nginx.conf)"),
    ("nginx-bin", "PATH", "nginx to check (-t) and run; unset: only write the configuration"),
    ("nginx-run-dir", "PATH", "nginx pid file and temp directories (/run/cvmkit/nginx)"),
    ("nginx-listen", "ADDR", "address nginx listens on (all)"),
    ("https-port", "PORT", "nginx HTTPS port (443)"),
    ("http-port", "PORT", "nginx HTTP port (80)"),
    ("nginx-user", "USER", "user for nginx worker processes"),
    ("measure", "MODE", "auto | none | tpm,tdx: registers to extend with the manifest events (auto)"),
    ("tpm-device", "PATH", "TPM device (/dev/tpmrm0)"),
    ("tpm-pcr", "N", "PCR extended with the events (15)"),
    ("rtmr-file", "PATH", "TDX RTMR file (/sys/devices/virtual/misc/tdx_guest/measurements/rtmr3:sha384)"),
    ("events-file", "PATH", "measured events, one per line (/run/cvmkit/measured-events.txt)"),
    ("app-dir", "PATH", "the only directory file:// apps may come from; empty: none (/opt/cvmkit/apps)"),
    ("max-workloads", "N", "refuse a deployment of more workloads (64)"),
    ("platform", "NAME", "none | tdx | snp: the image's platform, set by the Nix module (none)"),
    (
        "unmeasured",
        "MODE",
        "auto | refuse | allow: launch when no register can be extended? auto refuses on tdx/snp (auto)",
    ),
    ("acme", "on|off", "get one certificate for the hostnames over ACME HTTP-01 via nginx, renew it (on; needs nginx-bin)"),
    ("acme-directory", "URL", "ACME directory (Let's Encrypt production; staging: https://acme-staging-v02.api.letsencrypt.org/directory)"),
    ("acme-ca-file", "PATH", "PEM roots replacing the built-in ones for the ACME server's TLS (a private or test CA)"),
    ("acme-contact", "URI", "ACME account contact, e.g. mailto:ops@example.com (none)"),
    ("acme-timeout-secs", "S", "bound of one certificate issuance (180)"),
    ("acme-retry-secs", "S", "pause before asking again after a failure (3600)"),
];

fn num<T: std::str::FromStr>(name: &str, value: &str) -> Result<T, ConfigError> {
    value.trim().parse().map_err(|_| ConfigError::BadValue {
        name: name.into(),
        value: value.into(),
        reason: "expected a non-negative integer in range",
    })
}

fn ms(name: &str, value: &str) -> Result<Duration, ConfigError> {
    num::<u64>(name, value).map(Duration::from_millis)
}

fn opt_path(value: &str) -> Option<PathBuf> {
    (!value.is_empty()).then(|| PathBuf::from(value))
}

impl RuntimeConfig {
    /// Applies one setting by name.
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), ConfigError> {
        let v = value.trim();
        match name {
            "sources" => {
                let mut s = Vec::new();
                for part in v.split(',').filter(|p| !p.trim().is_empty()) {
                    s.push(SourceKind::parse(part).ok_or_else(|| ConfigError::BadValue {
                        name: name.into(),
                        value: value.into(),
                        reason: "expected a comma list of gcp, azure, qemu",
                    })?);
                }
                if s.is_empty() {
                    return Err(ConfigError::BadValue { name: name.into(), value: value.into(), reason: "no source" });
                }
                self.sources = s;
            }
            "gcp-url" => self.gcp_url = v.into(),
            "azure-url" => self.azure_url = v.into(),
            "qemu-url" => self.qemu_url = v.into(),
            "manifest-key" => self.manifest_key = v.into(),
            "hostname-key" => self.hostname_key = v.into(),
            "connect-timeout-ms" => self.connect_timeout = ms(name, v)?,
            "timeout-ms" => self.request_timeout = ms(name, v)?,
            "discover-wait-secs" => self.discover_wait = Duration::from_secs(num(name, v)?),
            "discover-interval-ms" => self.discover_interval = ms(name, v)?,
            "env-file" => self.env_file = v.into(),
            "state-dir" => self.state_dir = v.into(),
            "log-dir" => self.log_dir = v.into(),
            "base-port" => self.base_port = num(name, v)?,
            "backoff-initial-ms" => self.backoff_initial = ms(name, v)?,
            "backoff-max-ms" => self.backoff_max = ms(name, v)?,
            "backoff-reset-ms" => self.backoff_reset = ms(name, v)?,
            "max-restarts" => self.max_restarts = Some(num(name, v)?),
            "fetch-attempts" => self.fetch_attempts = num::<u32>(name, v)?.max(1),
            "max-app-bytes" => self.max_app_bytes = num(name, v)?,
            "fetch-timeout-secs" => self.fetch_timeout = Duration::from_secs(num(name, v)?),
            "ca-file" => self.ca_file = opt_path(v),
            "tls-dir" => self.tls_dir = v.into(),
            "nginx-conf" => self.nginx_conf = v.into(),
            "nginx-bin" => self.nginx_bin = opt_path(v),
            "nginx-run-dir" => self.nginx_run_dir = v.into(),
            "nginx-listen" => self.nginx_listen = (!v.is_empty()).then(|| v.to_string()),
            "https-port" => self.https_port = num(name, v)?,
            "http-port" => self.http_port = num(name, v)?,
            "nginx-user" => self.nginx_user = (!v.is_empty()).then(|| v.to_string()),
            "measure" => {
                self.measure = MeasureMode::parse(v).ok_or_else(|| ConfigError::BadValue {
                    name: name.into(),
                    value: value.into(),
                    reason: "expected auto, none, or a comma list of tpm, tdx",
                })?
            }
            "tpm-device" => self.tpm_device = v.into(),
            "tpm-pcr" => {
                self.tpm_pcr = num(name, v)?;
                if self.tpm_pcr > 23 {
                    return Err(ConfigError::BadValue {
                        name: name.into(),
                        value: value.into(),
                        reason: "PCRs are 0-23",
                    });
                }
            }
            "rtmr-file" => self.rtmr_file = v.into(),
            "events-file" => self.events_file = v.into(),
            "app-dir" => self.app_dir = opt_path(v),
            "max-workloads" => {
                self.max_workloads = num(name, v)?;
                if self.max_workloads == 0 || self.max_workloads > 65535 {
                    return Err(ConfigError::BadValue { name: name.into(), value: value.into(), reason: "expected 1-65535" });
                }
            }
            "platform" => {
                self.platform = match v {
                    "none" | "" => Platform::None,
                    "tdx" => Platform::Tdx,
                    "snp" => Platform::Snp,
                    _ => {
                        return Err(ConfigError::BadValue {
                            name: name.into(),
                            value: value.into(),
                            reason: "expected none, tdx or snp",
                        })
                    }
                }
            }
            "unmeasured" => {
                self.unmeasured = match v {
                    "auto" => Unmeasured::Auto,
                    "refuse" => Unmeasured::Refuse,
                    "allow" => Unmeasured::Allow,
                    _ => {
                        return Err(ConfigError::BadValue {
                            name: name.into(),
                            value: value.into(),
                            reason: "expected auto, refuse or allow",
                        })
                    }
                }
            }
            "acme" => {
                self.acme = match v {
                    "on" | "true" | "1" => true,
                    "off" | "false" | "0" => false,
                    _ => {
                        return Err(ConfigError::BadValue { name: name.into(), value: value.into(), reason: "expected on or off" })
                    }
                }
            }
            "acme-directory" => self.acme_directory = v.into(),
            "acme-ca-file" => self.acme_ca_file = opt_path(v),
            "acme-contact" => self.acme_contact = (!v.is_empty()).then(|| v.to_string()),
            "acme-timeout-secs" => self.acme_timeout = Duration::from_secs(num(name, v)?),
            "acme-retry-secs" => self.acme_retry = Duration::from_secs(num::<u64>(name, v)?.max(1)),
            _ => return Err(ConfigError::Unknown(name.into())),
        }
        Ok(())
    }

    /// Applies a config file's `name = value` lines.
    pub fn apply_file(&mut self, path: &Path) -> Result<(), ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::File { path: path.display().to_string(), reason: e.to_string() })?;
        self.apply_text(path, &text)
    }

    /// Applies the `name = value` lines of `text`, read from `path` (named in errors).
    pub fn apply_text(&mut self, path: &Path, text: &str) -> Result<(), ConfigError> {
        for (n, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let (k, v) = line.split_once('=').ok_or_else(|| ConfigError::File {
                path: path.display().to_string(),
                reason: format!("line {}: expected `name = value`", n + 1),
            })?;
            self.set(k.trim(), v.trim())?;
        }
        Ok(())
    }

    /// Whether a launch without any extended register is refused (see [`Unmeasured`]).
    pub fn refuses_unmeasured(&self) -> bool {
        match self.unmeasured {
            Unmeasured::Auto => self.platform.is_confidential(),
            Unmeasured::Refuse => true,
            Unmeasured::Allow => false,
        }
    }

    /// Builds the settings from `args` (flags only, no subcommand): the config file named by
    /// `--config` (or the default one if it exists), then the flags in order.
    pub fn from_flags(args: &[String]) -> Result<Self, ConfigError> {
        let pairs = split_flags(args)?;
        let mut cfg = Self::default();
        match pairs.iter().find(|(k, _)| k == "config") {
            Some((_, path)) => cfg.apply_file(Path::new(path))?,
            None if Path::new(DEFAULT_CONFIG).is_file() => cfg.apply_file(Path::new(DEFAULT_CONFIG))?,
            None => {}
        }
        for (k, v) in pairs.iter().filter(|(k, _)| k != "config") {
            cfg.set(k, v)?;
        }
        Ok(cfg)
    }
}

/// Splits `--name value` / `--name=value` flags into pairs.
pub fn split_flags(args: &[String]) -> Result<Vec<(String, String)>, ConfigError> {
    let mut out = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let flag = a.strip_prefix("--").ok_or_else(|| ConfigError::Unknown(a.clone()))?;
        let (name, value) = match flag.split_once('=') {
            Some((n, v)) => (n.to_string(), v.to_string()),
            None => (flag.to_string(), it.next().ok_or_else(|| ConfigError::MissingValue(a.clone()))?.clone()),
        };
        out.push((name, value));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_and_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("r.conf");
        std::fs::write(&file, "# comment\nsources = qemu\nbase-port = 4000 # trailing\n").unwrap();
        let args: Vec<String> =
            ["--config", file.to_str().unwrap(), "--base-port=5000", "--measure", "tpm"].map(String::from).to_vec();
        let cfg = RuntimeConfig::from_flags(&args).unwrap();
        assert_eq!(cfg.sources, [SourceKind::Qemu]);
        assert_eq!(cfg.base_port, 5000);
        assert_eq!(cfg.measure, MeasureMode { tpm: Some(true), tdx: Some(false) });
        assert!(matches!(RuntimeConfig::from_flags(&["--nope".into(), "1".into()]), Err(ConfigError::Unknown(_))));
        assert!(matches!(RuntimeConfig::from_flags(&["--base-port".into()]), Err(ConfigError::MissingValue(_))));
        for (name, _, _) in SETTINGS.iter().filter(|(n, _, _)| *n != "config") {
            let r = RuntimeConfig::default().set(name, "x");
            assert!(!matches!(r, Err(ConfigError::Unknown(_))), "{name} documented but unknown");
        }
    }
}
