//! The `run` sequence: discover, record, measure, fetch + verify, proxy, supervise.
//!
//! 1. [`discover`]: try the sources until one has a manifest, retrying for
//!    [`RuntimeConfig::discover_wait`]. A bad manifest is final.
//! 2. Parse `hostname` and plan the routes; a bad hostname value is logged and leaves every
//!    workload HTTP-only (it never stops the workloads).
//! 3. Write the env file atomically.
//! 4. Extend the measurement events into the TPM / RTMR ([`crate::measure`]) and write them to
//!    the events file; a register that was asked for (or found) but cannot be extended stops the
//!    launch, because the attestation would not describe what runs. So does finding no register
//!    at all on a TDX or SNP image (setting `unmeasured`, default `auto`): a host that withholds
//!    the vTPM must not get workloads running whose identity is in no register.
//! 5. Fetch each app to `STATE/apps/app-N`, verified before it is made executable; an app that
//!    fails is logged and skipped, the others still run. Network errors are retried; a refusal
//!    (wrong digest, too large, outside the app directory, a refused redirect) is final.
//! 6. Write the nginx configuration; with `nginx-bin`, check it with `nginx -t` (falling back to
//!    HTTP-only if the HTTPS one is refused) and supervise nginx.
//! 7. Supervise each verified workload with `PORT=base_port+N`.
//! 8. With `acme` on, hostnames, and nginx running: start the ACME thread ([`crate::acme`]),
//!    which obtains one certificate for all the names, switches nginx to HTTPS by a checked
//!    reload, and renews it; every failure leaves nginx on HTTP and the workloads untouched.

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use crate::config::RuntimeConfig;
use crate::envfile;
use crate::fetch::Fetcher;
use crate::http::{Client, TlsRoots};
use crate::log::Logger;
use crate::measure;
use crate::metadata::{DiscoverError, Discovery, Endpoints, Found};
use crate::nginx::{self, NginxOptions};
use crate::routes::{self, workload_port, Plan};
use crate::supervise::{supervise, Backoff, Program, Supervised};

/// Why the runtime could not start its workloads. Messages are one line.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    /// Discovery failed.
    #[error(transparent)]
    Discover(#[from] DiscoverError),
    /// A register could not be extended.
    #[error("cannot bind the manifest to the attestation: {0}")]
    Measure(#[from] measure::MeasureError),
    /// No register exists on an image that refuses to run unmeasured workloads.
    #[error(
        "no vTPM ({tpm}) and no TDX RTMR ({rtmr}) to bind the manifest to on this {platform} image; refusing to launch \
         workloads the attestation would not describe (the host may be withholding the device; \
         setting `unmeasured = allow` is for development images only)"
    )]
    Unmeasured {
        /// The platform name.
        platform: &'static str,
        /// The TPM device looked for.
        tpm: String,
        /// The RTMR file looked for.
        rtmr: String,
    },
    /// A setting is unusable (e.g. the CA file).
    #[error("{0}")]
    Config(String),
    /// A file could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

/// What [`start`] started.
#[derive(Debug)]
pub struct Running {
    /// What discovery found.
    pub found: Found,
    /// The routes.
    pub plan: Plan,
    /// The supervised workloads, by workload number (`None`: refused or not fetched).
    pub workloads: Vec<Option<Supervised>>,
    /// Supervised nginx, if started.
    pub nginx: Option<Supervised>,
    /// The certificate thread, if started.
    #[cfg(feature = "acme")]
    pub acme: Option<crate::acme::AcmeThread>,
}

impl Running {
    /// Stops everything.
    pub fn stop(self) {
        for w in self.workloads.into_iter().flatten() {
            w.stop();
        }
        #[cfg(feature = "acme")]
        if let Some(a) = self.acme {
            a.stop();
        }
        if let Some(n) = self.nginx {
            n.stop();
        }
    }
}

/// The discovery procedure the settings describe.
pub fn discovery(cfg: &RuntimeConfig) -> Discovery {
    Discovery {
        sources: cfg.sources.clone(),
        endpoints: Endpoints {
            gcp: cfg.gcp_url.clone(),
            azure: cfg.azure_url.clone(),
            qemu: cfg.qemu_url.clone(),
            manifest_key: cfg.manifest_key.clone(),
            hostname_key: cfg.hostname_key.clone(),
        },
        client: Client {
            connect_timeout: cfg.connect_timeout,
            timeout: cfg.request_timeout,
            max_body: crate::metadata::MAX_VALUE_BYTES,
            tls: TlsRoots::default(),
        },
        max_workloads: cfg.max_workloads,
        base_port: cfg.base_port,
    }
}

/// Discovers with retries: rounds over all sources until one has a manifest, a manifest is bad,
/// or [`RuntimeConfig::discover_wait`] has passed.
pub fn discover(cfg: &RuntimeConfig, log: &Logger) -> Result<Found, DiscoverError> {
    let d = discovery(cfg);
    let start = Instant::now();
    loop {
        match d.discover(&mut |line| log.info(line)) {
            Err(DiscoverError::NotFound { .. }) if start.elapsed() + cfg.discover_interval < cfg.discover_wait => {
                std::thread::sleep(cfg.discover_interval);
            }
            r => return r,
        }
    }
}

/// Normalized hostnames of `found`; a bad value is logged and gives none.
pub fn hostnames(found: &Found, log: &Logger) -> Vec<String> {
    match found.hostname.as_deref().map(routes::parse_hostnames) {
        None => Vec::new(),
        Some(Ok(h)) => h,
        Some(Err(e)) => {
            log.info(format!("{e}; no HTTPS mapping, every workload stays HTTP-only"));
            Vec::new()
        }
    }
}

fn write(path: &std::path::Path, text: &str) -> Result<(), RunError> {
    envfile::write_atomic(path, text.as_bytes()).map_err(|source| RunError::Write { path: path.to_path_buf(), source })
}

/// Extends the events into the registers `cfg.measure` selects; returns the registers extended.
pub fn bind_measurements(cfg: &RuntimeConfig, events: &[String], log: &Logger) -> Result<Vec<String>, RunError> {
    let mut done = Vec::new();
    let tpm = cfg.measure.tpm.unwrap_or_else(|| cfg.tpm_device.exists());
    if tpm {
        measure::tpm_extend_device(&cfg.tpm_device, cfg.tpm_pcr, events)?;
        done.push(format!("PCR {} (SHA-256 bank) via {}", cfg.tpm_pcr, cfg.tpm_device.display()));
    }
    let tdx = cfg.measure.tdx.unwrap_or_else(|| cfg.rtmr_file.exists());
    if tdx {
        measure::rtmr_extend(&cfg.rtmr_file, events)?;
        done.push(format!("RTMR via {}", cfg.rtmr_file.display()));
    }
    if done.is_empty() {
        if cfg.refuses_unmeasured() {
            return Err(RunError::Unmeasured {
                platform: match cfg.platform {
                    crate::config::Platform::Tdx => "tdx",
                    crate::config::Platform::Snp => "snp",
                    crate::config::Platform::None => "non-confidential",
                },
                tpm: cfg.tpm_device.display().to_string(),
                rtmr: cfg.rtmr_file.display().to_string(),
            });
        }
        let banner = "*".repeat(72);
        log.info(&banner);
        log.info("WARNING: no TPM or TDX RTMR found: the manifest is NOT bound to the attestation;");
        let why = match cfg.unmeasured {
            crate::config::Unmeasured::Allow => "unmeasured = allow",
            _ => "platform none: not a TDX/SNP image",
        };
        log.info(format!("WARNING: a verifier cannot tell what these workloads are ({why})"));
        log.info(&banner);
    }
    Ok(done)
}

/// Fetches app `i` with retries on network errors; a refusal ([`crate::fetch::FetchError::is_final`]) is final.
fn fetch_app(cfg: &RuntimeConfig, fetcher: &Fetcher, i: usize, found: &Found, log: &Logger) -> Option<PathBuf> {
    let m = &found.manifests[i];
    let apps = cfg.state_dir.join("apps");
    if let Err(e) = std::fs::create_dir_all(&apps) {
        log.info(format!("app-{i}: cannot create {}: {e}", apps.display()));
        return None;
    }
    let dest = apps.join(format!("app-{i}"));
    // A file left by an earlier run is not trusted: remove it so only a fresh verified copy runs.
    let _ = std::fs::remove_file(&dest);
    let mut delay = cfg.backoff_initial;
    for attempt in 1..=cfg.fetch_attempts {
        match fetcher.fetch_verified(m, &dest) {
            Ok(()) => {
                log.info(format!("app-{i}: fetched {} and verified sha256 {}", m.app_url, m.sha256));
                return Some(dest);
            }
            Err(e) if e.is_final() => {
                log.info(format!("app-{i}: {e}"));
                return None;
            }
            Err(e) => {
                log.info(format!("app-{i}: attempt {attempt}/{}: {e}", cfg.fetch_attempts));
                if attempt < cfg.fetch_attempts {
                    std::thread::sleep(delay);
                    delay = (delay * 2).min(cfg.backoff_max);
                }
            }
        }
    }
    log.info(format!("app-{i}: giving up; it will not run"));
    None
}

fn nginx_test(bin: &std::path::Path, conf: &std::path::Path, errlog: &std::path::Path) -> Result<(), String> {
    let out = Command::new(bin)
        .arg("-t")
        .arg("-q")
        .arg("-c")
        .arg(conf)
        .arg("-e")
        .arg(errlog)
        .output()
        .map_err(|e| format!("cannot run {}: {e}", bin.display()))?;
    if out.status.success() {
        Ok(())
    } else {
        let msg = String::from_utf8_lossy(&out.stderr);
        Err(msg.lines().last().unwrap_or("").trim().to_string())
    }
}

/// Whether the ACME thread will run: the feature, the setting, names, and an nginx to serve.
fn acme_wanted(cfg: &RuntimeConfig, plan: &Plan) -> bool {
    cfg!(feature = "acme") && cfg.acme && !plan.routes.is_empty() && cfg.nginx_bin.is_some()
}

fn nginx_options(cfg: &RuntimeConfig, plan: &Plan) -> NginxOptions {
    NginxOptions {
        tls_dir: cfg.tls_dir.clone(),
        run_dir: cfg.nginx_run_dir.clone(),
        log_dir: cfg.log_dir.clone(),
        listen_addr: cfg.nginx_listen.clone(),
        https_port: cfg.https_port,
        http_port: cfg.http_port,
        user: cfg.nginx_user.clone(),
        force_http: false,
        acme_challenge_dir: acme_wanted(cfg, plan).then(|| cfg.nginx_run_dir.join("acme-challenge")),
    }
}

fn start_nginx(cfg: &RuntimeConfig, plan: &Plan, log: &Logger) -> Result<Option<Supervised>, RunError> {
    let mut opts = nginx_options(cfg, plan);
    for d in nginx::dirs_to_create(&opts).into_iter().chain(opts.acme_challenge_dir.clone()) {
        std::fs::create_dir_all(&d).map_err(|source| RunError::Write { path: d.clone(), source })?;
    }
    let mut conf = nginx::render(plan, &opts);
    for h in &conf.http_fallback {
        let (c, k) = nginx::cert_paths(&opts.tls_dir, h);
        log.info(format!("{h}: no certificate ({} / {}): serving it over plain HTTP", c.display(), k.display()));
    }
    write(&cfg.nginx_conf, &conf.text)?;
    log.info(format!(
        "wrote {} ({} HTTPS, {} HTTP-only hostnames)",
        cfg.nginx_conf.display(),
        conf.https.len(),
        conf.http_fallback.len()
    ));
    let Some(bin) = &cfg.nginx_bin else { return Ok(None) };
    let errlog = cfg.log_dir.join("nginx-error.log");
    if let Err(e) = nginx_test(bin, &cfg.nginx_conf, &errlog) {
        if conf.https.is_empty() {
            log.info(format!("nginx refused {}: {e}; not starting nginx", cfg.nginx_conf.display()));
            return Ok(None);
        }
        log.info(format!("nginx refused the HTTPS configuration: {e}; falling back to HTTP only"));
        opts.force_http = true;
        conf = nginx::render(plan, &opts);
        write(&cfg.nginx_conf, &conf.text)?;
        if let Err(e) = nginx_test(bin, &cfg.nginx_conf, &errlog) {
            log.info(format!("nginx refused {}: {e}; not starting nginx", cfg.nginx_conf.display()));
            return Ok(None);
        }
    }
    let program = Program {
        name: "nginx".into(),
        path: bin.clone(),
        args: [
            "-c".into(),
            cfg.nginx_conf.clone().into_os_string(),
            "-e".into(),
            errlog.into_os_string(),
            "-g".into(),
            "daemon off;".into(),
        ]
        .to_vec(),
        env: Vec::new(),
        cwd: None,
        sha256: None,
        log_file: Some(cfg.log_dir.join("nginx.log")),
    };
    supervise(program, backoff(cfg), log.clone())
        .map(Some)
        .map_err(|source| RunError::Write { path: cfg.log_dir.clone(), source })
}

fn backoff(cfg: &RuntimeConfig) -> Backoff {
    Backoff {
        initial: cfg.backoff_initial,
        max: cfg.backoff_max,
        reset_after: cfg.backoff_reset,
        max_restarts: cfg.max_restarts,
    }
}

/// Runs steps 1–7 of the module docs and returns what is being supervised.
pub fn start(cfg: &RuntimeConfig, log: &Logger) -> Result<Running, RunError> {
    let found = discover(cfg, log)?;
    let names = hostnames(&found, log);
    let plan = routes::plan(&names, found.manifests.len(), cfg.base_port);

    let env = envfile::render(&envfile::entries(&found, &plan, cfg.base_port));
    write(&cfg.env_file, &env)?;
    log.info(format!("wrote {}", cfg.env_file.display()));

    let digests: Vec<_> = found.manifests.iter().map(|m| m.sha256).collect();
    let events = measure::events(&digests, &names, cfg.base_port);
    let mut text: String = events.iter().map(|e| format!("{e}\n")).collect();
    let bound = bind_measurements(cfg, &events, log)?;
    for b in &bound {
        text.push_str(&format!("# extended into {b}\n"));
        log.info(format!("extended {} event(s) into {b}", events.len()));
    }
    write(&cfg.events_file, &text)?;

    let tls = match &cfg.ca_file {
        Some(ca) => TlsRoots::from_pem_file(ca).map_err(RunError::Config)?,
        None => TlsRoots::default(),
    };
    let fetcher = Fetcher {
        client: Client {
            connect_timeout: cfg.connect_timeout.max(std::time::Duration::from_secs(5)),
            timeout: cfg.fetch_timeout,
            max_body: cfg.max_app_bytes,
            tls,
        },
        max_size: cfg.max_app_bytes,
        app_dir: cfg.app_dir.clone(),
        timeout: cfg.fetch_timeout,
    };
    let mut workloads = Vec::new();
    for (i, m) in found.manifests.iter().enumerate() {
        let Some(path) = fetch_app(cfg, &fetcher, i, &found, log) else {
            workloads.push(None);
            continue;
        };
        let port = workload_port(cfg.base_port, i);
        let program = Program {
            name: format!("app-{i}"),
            path,
            args: Vec::new(),
            env: vec![("PORT".into(), port.to_string()), ("CVMKIT_WORKLOAD".into(), i.to_string())],
            cwd: Some(cfg.state_dir.clone()),
            sha256: Some(m.sha256),
            log_file: Some(cfg.log_dir.join(format!("app-{i}.log"))),
        };
        let s = supervise(program, backoff(cfg), log.clone())
            .map_err(|source| RunError::Write { path: cfg.log_dir.clone(), source })?;
        log.info(format!("app-{i}: supervised on port {port}"));
        workloads.push(Some(s));
    }
    let nginx = start_nginx(cfg, &plan, log)?;
    #[cfg(feature = "acme")]
    let acme = if nginx.is_some() { start_acme(cfg, &plan, log) } else { None };
    Ok(Running {
        found,
        plan,
        workloads,
        nginx,
        #[cfg(feature = "acme")]
        acme,
    })
}

/// Re-renders the nginx configuration (now with the certificates present), checks it with
/// `nginx -t` and reloads the running nginx (`-s reload`, i.e. SIGHUP to the master in the pid
/// file). If nginx refuses it, the HTTP-only configuration is written back and nginx keeps
/// running what it had.
#[cfg(feature = "acme")]
fn reload_nginx(cfg: &RuntimeConfig, plan: &Plan, log: &Logger) -> Result<(), String> {
    let bin = cfg.nginx_bin.as_ref().ok_or("no nginx-bin")?;
    let errlog = cfg.log_dir.join("nginx-error.log");
    let mut opts = nginx_options(cfg, plan);
    let conf = nginx::render(plan, &opts);
    let save = |text: &str| write(&cfg.nginx_conf, text).map_err(|e| e.to_string());
    save(&conf.text)?;
    if let Err(e) = nginx_test(bin, &cfg.nginx_conf, &errlog) {
        opts.force_http = true;
        save(&nginx::render(plan, &opts).text)?;
        return Err(format!("nginx refused the new certificate: {e}; nginx keeps serving HTTP"));
    }
    let out = Command::new(bin)
        .arg("-c")
        .arg(&cfg.nginx_conf)
        .arg("-e")
        .arg(&errlog)
        .args(["-s", "reload"])
        .output()
        .map_err(|e| format!("cannot run {} -s reload: {e}", bin.display()))?;
    if !out.status.success() {
        let msg = String::from_utf8_lossy(&out.stderr);
        return Err(format!("nginx -s reload failed: {}", msg.lines().last().unwrap_or("").trim()));
    }
    log.info(format!("wrote {} ({} HTTPS hostnames)", cfg.nginx_conf.display(), conf.https.len()));
    Ok(())
}

/// Step 8: the ACME thread for every hostname, once nginx answers on the HTTP port.
#[cfg(feature = "acme")]
fn start_acme(cfg: &RuntimeConfig, plan: &Plan, log: &Logger) -> Option<crate::acme::AcmeThread> {
    use std::net::{TcpStream, ToSocketAddrs};
    if !acme_wanted(cfg, plan) {
        return None;
    }
    let names: Vec<String> = plan.routes.iter().map(|r| r.hostname.clone()).collect();
    // Certificates that came with the image (or an operator) are not replaced.
    let present = |n: &String| {
        let (c, k) = nginx::cert_paths(&cfg.tls_dir, n);
        c.is_file() && k.is_file()
    };
    if names.iter().all(present) {
        log.info(format!(
            "acme: every hostname has a certificate in {}: not asking the CA",
            cfg.tls_dir.display()
        ));
        return None;
    }
    let acme = crate::acme::Acme {
        directory: cfg.acme_directory.clone(),
        ca_file: cfg.acme_ca_file.clone(),
        contact: cfg.acme_contact.clone(),
        challenge_dir: cfg.nginx_run_dir.join("acme-challenge"),
        timeout: cfg.acme_timeout,
        request_timeout: cfg.request_timeout.max(std::time::Duration::from_secs(30)),
        poll_interval: std::time::Duration::from_secs(1),
        retry: cfg.acme_retry,
    };
    // The CA connects to port 80 as soon as a challenge is marked ready: wait until nginx
    // accepts there (it was just started).
    let host = match cfg.nginx_listen.as_deref() {
        None | Some("0.0.0.0") | Some("::") | Some("[::]") => "127.0.0.1".to_string(),
        Some(a) => a.trim_matches(|c| c == '[' || c == ']').to_string(),
    };
    let port = cfg.http_port;
    let ready = move || {
        let addr = (host.as_str(), port)
            .to_socket_addrs()
            .ok()
            .and_then(|mut a| a.next())
            .ok_or_else(|| format!("cannot resolve nginx's address {host}:{port}"))?;
        let start = Instant::now();
        while TcpStream::connect_timeout(&addr, std::time::Duration::from_secs(1)).is_err() {
            if start.elapsed() > std::time::Duration::from_secs(30) {
                return Err(format!("nginx does not accept connections on {addr} after 30 s"));
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        Ok(())
    };
    let (c, p, l) = (cfg.clone(), plan.clone(), log.clone());
    let reload = move || reload_nginx(&c, &p, &l);
    match crate::acme::spawn(acme, names, cfg.tls_dir.clone(), log.clone(), ready, reload) {
        Ok(t) => Some(t),
        Err(e) => {
            log.info(format!("acme: cannot start its thread: {e}; the names stay on HTTP"));
            None
        }
    }
}
