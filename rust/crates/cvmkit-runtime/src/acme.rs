//! One certificate for every `hostname` name from an ACME CA (RFC 8555), obtained inside the guest.
//!
//! At boot, once nginx serves plain HTTP, a thread ([`spawn`]) asks the CA for one SAN certificate
//! covering all the names, answering HTTP-01: the key authorization of each challenge is written
//! to [`Acme::challenge_dir`], which nginx serves at `/.well-known/acme-challenge/` on port 80 for
//! every name (see [`crate::nginx`]). The certificate and its key are then written in the certbot
//! layout nginx reads, nginx is reloaded with HTTPS, and the thread sleeps until [`renew_at`]
//! (two thirds of the lifetime) to do it again. Any failure is logged with its reason and leaves
//! nginx as it is: names stay on plain HTTP (or on the previous certificate) and the workloads are
//! never touched; the thread tries again after [`Acme::retry`].
//!
//! **Keys.** The account key and the certificate key (ECDSA P-256) are generated here, in the
//! guest. The account key lives in memory only (a new account per boot); the certificate key is
//! written mode 0600 next to the certificate for nginx, in the image's RAM-backed root. Neither
//! is written anywhere that outlives the VM, so a certificate is not reused across reboots: each
//! boot asks for a new one, as the seeds do (see the README on rate limits).
//!
//! **Protocol and transport.** [`instant_acme`] speaks ACME. Its own client is hyper on tokio;
//! this runtime is threaded and synchronous, so requests go through [`ureq`] (rustls with ring,
//! Mozilla roots, or the PEM roots of [`Acme::ca_file`]) and the futures are driven by a small
//! [`block_on`] on the calling thread: no request future ever waits on anything but the blocking
//! call inside it, and the polling instant-acme does with tokio timers (`poll_ready`) is replaced
//! by a loop with `std::thread::sleep`.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use instant_acme::{
    Account, AuthorizationStatus, BodyWrapper, BytesResponse, ChallengeType, HttpClient, Identifier,
    NewAccount, NewOrder, OrderStatus,
};

use crate::log::Logger;

/// Let's Encrypt's production directory, the default CA.
pub const LETS_ENCRYPT: &str = "https://acme-v02.api.letsencrypt.org/directory";
/// Let's Encrypt's staging directory (untrusted certificates, generous rate limits).
pub const LETS_ENCRYPT_STAGING: &str = "https://acme-staging-v02.api.letsencrypt.org/directory";

/// The largest ACME response read (directory, orders, a certificate chain are a few KiB).
const MAX_RESPONSE: u64 = 1 << 20;

/// How to reach the CA and where challenges go.
#[derive(Debug, Clone)]
pub struct Acme {
    /// The directory URL.
    pub directory: String,
    /// PEM roots that replace the built-in ones for the CA's TLS (a private or test CA).
    pub ca_file: Option<PathBuf>,
    /// Contact for the account (`mailto:…`); `None`: an account without contact.
    pub contact: Option<String>,
    /// Where each challenge's key authorization is written as a file named by its token.
    pub challenge_dir: PathBuf,
    /// Bound of one whole issuance (account, order, validation, finalization, download).
    pub timeout: Duration,
    /// Timeout of one request.
    pub request_timeout: Duration,
    /// Pause between polls of an order.
    pub poll_interval: Duration,
    /// Pause before trying again after a failure.
    pub retry: Duration,
}

impl Default for Acme {
    fn default() -> Self {
        Self {
            directory: LETS_ENCRYPT.into(),
            ca_file: None,
            contact: None,
            challenge_dir: "/run/cvmkit/nginx/acme-challenge".into(),
            timeout: Duration::from_secs(180),
            request_timeout: Duration::from_secs(30),
            poll_interval: Duration::from_secs(1),
            retry: Duration::from_secs(3600),
        }
    }
}

/// Why no certificate was obtained. Messages are one line and say what to check.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AcmeError {
    /// A local problem (CA file, challenge directory, key generation).
    #[error("{0}")]
    Local(String),
    /// The CA could not be reached or answered with an error before validation.
    #[error("ACME server {directory}: {reason}; check acme-directory, acme-ca-file and that the VM reaches it")]
    Server {
        /// The directory URL.
        directory: String,
        /// What went wrong.
        reason: String,
    },
    /// The CA could not validate a name.
    #[error("the CA could not validate {name}: {detail}; {name} must resolve to this VM and its port 80 must be reachable")]
    Validation {
        /// The name.
        name: String,
        /// The CA's explanation.
        detail: String,
    },
    /// The order did not finish in time.
    #[error("no certificate after {0:?} (order status: {1}); the CA may be slow or rate-limiting")]
    Timeout(Duration, String),
}

/// A certificate chain and its key, both PEM.
#[derive(Clone)]
pub struct Issued {
    /// The leaf first, then the intermediates.
    pub chain_pem: String,
    /// The PKCS#8 private key.
    pub key_pem: String,
    /// The leaf's notBefore.
    pub not_before: SystemTime,
    /// The leaf's notAfter.
    pub not_after: SystemTime,
}

impl std::fmt::Debug for Issued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.debug_struct("Issued").field("not_before", &self.not_before).field("not_after", &self.not_after).finish()
    }
}

/// When to renew a certificate valid from `not_before` to `not_after`: at two thirds of its
/// lifetime (day 60 of Let's Encrypt's 90), which leaves a third of it for retries.
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// let day = Duration::from_secs(86400);
/// let at = cvmkit_runtime::acme::renew_at(UNIX_EPOCH, UNIX_EPOCH + 90 * day);
/// assert_eq!(at, UNIX_EPOCH + 60 * day);
/// ```
pub fn renew_at(not_before: SystemTime, not_after: SystemTime) -> SystemTime {
    let life = not_after.duration_since(not_before).unwrap_or_default();
    not_before + life / 3 * 2
}

/// How long to sleep at `now` before renewing at `at`, never longer than `cap` (so that the
/// sleeping thread looks at the clock again after a suspend or a clock step).
pub fn wait_until(now: SystemTime, at: SystemTime, cap: Duration) -> Duration {
    at.duration_since(now).unwrap_or_default().min(cap)
}

/// notBefore and notAfter of the first certificate of a PEM chain.
pub fn validity(chain_pem: &str) -> Result<(SystemTime, SystemTime), String> {
    let certs = x509_cert::Certificate::load_pem_chain(chain_pem.as_bytes())
        .map_err(|e| format!("the CA sent an unreadable certificate chain: {e}"))?;
    let leaf = certs.first().ok_or("the CA sent an empty certificate chain")?;
    let v = leaf.tbs_certificate().validity();
    Ok((v.not_before.to_system_time(), v.not_after.to_system_time()))
}

/// Runs `f` to completion on this thread. instant-acme's futures, given [`UreqClient`], wait on
/// nothing but blocking calls made inside `poll`, so they never stay pending for long; the
/// waker still parks and unparks properly in case one does.
pub fn block_on<F: Future>(f: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut f = std::pin::pin!(f);
    loop {
        match f.as_mut().poll(&mut cx) {
            Poll::Ready(v) => return v,
            Poll::Pending => std::thread::park(),
        }
    }
}

/// instant-acme's transport: a blocking [`ureq`] agent (rustls with ring).
pub struct UreqClient(ureq::Agent);

impl UreqClient {
    /// An agent trusting `ca_file`'s PEM certificates, or the built-in Mozilla roots.
    pub fn new(ca_file: Option<&Path>, timeout: Duration) -> Result<Self, AcmeError> {
        use ureq::tls::{Certificate, PemItem, RootCerts, TlsConfig};
        let roots = match ca_file {
            None => RootCerts::WebPki,
            Some(path) => {
                let pem = std::fs::read(path)
                    .map_err(|e| AcmeError::Local(format!("cannot read acme-ca-file {}: {e}", path.display())))?;
                let mut certs: Vec<Certificate<'static>> = Vec::new();
                for item in ureq::tls::parse_pem(&pem) {
                    if let Ok(PemItem::Certificate(c)) = item {
                        certs.push(c);
                    }
                }
                if certs.is_empty() {
                    return Err(AcmeError::Local(format!(
                        "acme-ca-file {} holds no PEM certificate; give the CA's root certificate",
                        path.display()
                    )));
                }
                RootCerts::Specific(Arc::new(certs))
            }
        };
        let config = ureq::Agent::config_builder()
            .tls_config(TlsConfig::builder().root_certs(roots).build())
            .timeout_global(Some(timeout))
            // ACME errors are problem documents that instant-acme reads: never an Err here.
            .http_status_as_error(false)
            // The directory and its URLs are the configured server's; a proxy from the
            // environment is not consulted (the guest has none).
            .proxy(None)
            .build();
        Ok(Self(config.into()))
    }

    fn send(&self, req: http::Request<Vec<u8>>) -> Result<BytesResponse, instant_acme::Error> {
        let other = |e: ureq::Error| instant_acme::Error::Other(Box::new(e));
        let resp = self.0.run(req).map_err(other)?;
        let (parts, mut body) = resp.into_parts();
        let bytes = body.with_config().limit(MAX_RESPONSE).read_to_vec().map_err(other)?;
        Ok(BytesResponse { parts, body: Box::new(Bytes::from(bytes)) })
    }
}

impl HttpClient for UreqClient {
    fn request(
        &self,
        req: http::Request<BodyWrapper<Bytes>>,
    ) -> Pin<Box<dyn Future<Output = Result<BytesResponse, instant_acme::Error>> + Send>> {
        let agent = UreqClient(self.0.clone());
        Box::pin(async move {
            let (parts, mut body) = req.into_parts();
            let mut bytes = Vec::new();
            // The body is one in-memory frame (a JWS); its error type is Infallible.
            while let Some(Ok(frame)) =
                std::future::poll_fn(|cx| http_body::Body::poll_frame(Pin::new(&mut body), cx)).await
            {
                if let Ok(data) = frame.into_data() {
                    bytes.extend_from_slice(&data);
                }
            }
            agent.send(http::Request::from_parts(parts, bytes))
        })
    }
}

/// Text from the CA (problem details, echoed URLs) as one bounded log line: it is the network's,
/// not ours, so control characters (a forged newline would forge a log line) become spaces.
fn one_line(text: &str) -> String {
    text.chars().map(|c| if c.is_control() { ' ' } else { c }).take(600).collect()
}

fn server(cfg: &Acme) -> impl Fn(instant_acme::Error) -> AcmeError + '_ {
    move |e| AcmeError::Server { directory: cfg.directory.clone(), reason: one_line(&e.to_string()) }
}

/// Obtains one certificate for `names` (all of them as SANs, the first as subject): a new
/// account key, a new order, HTTP-01 through files in [`Acme::challenge_dir`], a new P-256
/// certificate key and CSR. Challenge files are removed afterwards, whatever happened.
pub fn obtain(cfg: &Acme, names: &[String], log: &Logger) -> Result<Issued, AcmeError> {
    if names.is_empty() {
        return Err(AcmeError::Local("no hostname to ask a certificate for".into()));
    }
    std::fs::create_dir_all(&cfg.challenge_dir).map_err(|e| {
        AcmeError::Local(format!("cannot create the challenge directory {}: {e}", cfg.challenge_dir.display()))
    })?;
    let mut written = Vec::new();
    let r = order(cfg, names, log, &mut written);
    for f in written {
        let _ = std::fs::remove_file(f);
    }
    r
}

fn order(cfg: &Acme, names: &[String], log: &Logger, written: &mut Vec<PathBuf>) -> Result<Issued, AcmeError> {
    let start = Instant::now();
    let err = server(cfg);
    let client = UreqClient::new(cfg.ca_file.as_deref(), cfg.request_timeout)?;
    let contact: Vec<&str> = cfg.contact.iter().map(String::as_str).collect();
    let new_account = NewAccount { contact: &contact, terms_of_service_agreed: true, only_return_existing: false };
    let (account, _credentials) =
        block_on(Account::builder_with_http(Box::new(client)).create(&new_account, cfg.directory.clone(), None))
            .map_err(&err)?;
    let ids: Vec<Identifier> = names.iter().map(|n| Identifier::Dns(n.clone())).collect();
    let mut order = block_on(account.new_order(&NewOrder::new(&ids))).map_err(&err)?;
    log.info(format!("acme: order for {} at {}", names.join(","), cfg.directory));

    let mut auths = order.authorizations();
    while let Some(a) = block_on(auths.next()) {
        let mut a = a.map_err(&err)?;
        let name = one_line(&a.identifier().to_string());
        match a.status {
            AuthorizationStatus::Pending => {}
            AuthorizationStatus::Valid => continue,
            s => return Err(AcmeError::Validation { name, detail: format!("authorization is {s:?}") }),
        }
        let mut ch = a.challenge(ChallengeType::Http01).ok_or_else(|| AcmeError::Validation {
            name: name.clone(),
            detail: "the CA offers no http-01 challenge".into(),
        })?;
        // A token is base64url (RFC 8555 §8.1); anything else must not become a path.
        if ch.token.is_empty() || !ch.token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
            return Err(AcmeError::Validation { name, detail: format!("the CA sent a bad token {:?}", one_line(&ch.token)) });
        }
        let file = cfg.challenge_dir.join(&ch.token);
        crate::envfile::write_atomic(&file, ch.key_authorization().as_str().as_bytes())
            .map_err(|e| AcmeError::Local(format!("cannot write {}: {e}", file.display())))?;
        written.push(file);
        block_on(ch.set_ready()).map_err(&err)?;
    }

    let status = loop {
        let state = block_on(order.refresh()).map_err(&err)?;
        match state.status {
            OrderStatus::Pending | OrderStatus::Processing if start.elapsed() < cfg.timeout => {
                std::thread::sleep(cfg.poll_interval)
            }
            s => break s,
        }
    };
    match status {
        OrderStatus::Ready => {}
        OrderStatus::Invalid => return Err(why_invalid(&mut order, &err)),
        s => return Err(AcmeError::Timeout(cfg.timeout, format!("{s:?}"))),
    }
    let key_pem = block_on(order.finalize()).map_err(&err)?;
    let chain_pem = loop {
        match block_on(order.certificate()).map_err(&err)? {
            Some(c) => break c,
            None if start.elapsed() < cfg.timeout => std::thread::sleep(cfg.poll_interval),
            None => return Err(AcmeError::Timeout(cfg.timeout, "processing".into())),
        }
    };
    let (not_before, not_after) = validity(&chain_pem).map_err(AcmeError::Local)?;
    Ok(Issued { chain_pem, key_pem, not_before, not_after })
}

/// The first failed challenge's problem, or the order's own error.
fn why_invalid(order: &mut instant_acme::Order, err: &impl Fn(instant_acme::Error) -> AcmeError) -> AcmeError {
    let order_error = order.state().error.as_ref().map(|p| p.to_string());
    let mut auths = order.authorizations();
    while let Some(Ok(mut a)) = block_on(auths.next()) {
        let name = one_line(&a.identifier().to_string());
        let Ok(state) = block_on(a.refresh()) else { continue };
        if let Some(p) = state.challenges.iter().find_map(|c| c.error.as_ref()) {
            return AcmeError::Validation { name, detail: one_line(&p.to_string()) };
        }
    }
    match order_error {
        Some(detail) => AcmeError::Validation { name: "the order".into(), detail: one_line(&detail) },
        None => err(instant_acme::Error::Str("the order became invalid without a reason")),
    }
}

/// Writes `issued` for each of `names` in the certbot layout nginx reads
/// (`{tls_dir}/{name}/fullchain.pem`, `privkey.pem` mode 0600), each file replaced atomically.
pub fn install(tls_dir: &Path, names: &[String], issued: &Issued) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    for name in names {
        let (cert, key) = crate::nginx::cert_paths(tls_dir, name);
        let dir = tls_dir.join(name);
        std::fs::create_dir_all(&dir)?;
        // The key is written to a fresh 0600 file before it gets its name, so it is never
        // readable by others, not even for a moment.
        let tmp = dir.join(".privkey.pem.tmp");
        let _ = std::fs::remove_file(&tmp);
        {
            use std::io::Write as _;
            use std::os::unix::fs::OpenOptionsExt as _;
            let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp)?;
            f.write_all(issued.key_pem.as_bytes())?;
            f.sync_all()?;
        }
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))?;
        std::fs::rename(&tmp, &key)?;
        crate::envfile::write_atomic(&cert, issued.chain_pem.as_bytes())?;
    }
    Ok(())
}

/// The ACME thread; [`AcmeThread::stop`] ends it.
#[derive(Debug)]
pub struct AcmeThread {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl AcmeThread {
    /// Stops the thread (at its next pause) and waits for it.
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            t.thread().unpark();
            let _ = t.join();
        }
    }
}

fn pause(d: Duration, stop: &AtomicBool) -> bool {
    let end = Instant::now() + d;
    while !stop.load(Ordering::SeqCst) {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return true;
        }
        std::thread::park_timeout(left.min(Duration::from_secs(1)));
    }
    false
}

/// Starts the thread that obtains a certificate for `names`, installs it into `tls_dir`, calls
/// `reload` (which switches nginx to HTTPS), and renews at [`renew_at`]; after a failure it logs
/// the reason and tries again after [`Acme::retry`]. `ready` is called before the first order and
/// waits until something answers the challenges (nginx listening).
pub fn spawn(
    cfg: Acme,
    names: Vec<String>,
    tls_dir: PathBuf,
    log: Logger,
    ready: impl FnOnce() -> Result<(), String> + Send + 'static,
    reload: impl Fn() -> Result<(), String> + Send + 'static,
) -> std::io::Result<AcmeThread> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let thread = std::thread::Builder::new().name("acme".into()).spawn(move || {
        if let Err(e) = ready() {
            log.info(format!("acme: {e}; no certificate, the names stay on HTTP"));
            return;
        }
        loop {
            let wait = match obtain(&cfg, &names, &log).and_then(|issued| {
                install(&tls_dir, &names, &issued)
                    .map_err(|e| AcmeError::Local(format!("cannot install the certificate in {}: {e}", tls_dir.display())))
                    .map(|()| issued)
            }) {
                Ok(issued) => {
                    let at = renew_at(issued.not_before, issued.not_after);
                    let utc = |t: SystemTime| {
                        x509_cert::der::DateTime::from_system_time(t).map_or_else(|_| format!("{t:?}"), |d| d.to_string())
                    };
                    log.info(format!(
                        "acme: certificate for {} installed (valid until {}; renewal at {})",
                        names.join(","),
                        utc(issued.not_after),
                        utc(at)
                    ));
                    match reload() {
                        Ok(()) => log.info("acme: nginx reloaded with HTTPS"),
                        Err(e) => log.info(format!("acme: {e}")),
                    }
                    // Sleep in capped steps, re-reading the clock, until the renewal time.
                    loop {
                        let d = wait_until(SystemTime::now(), at, Duration::from_secs(3600));
                        if d.is_zero() || !pause(d, &flag) {
                            break;
                        }
                    }
                    Duration::ZERO
                }
                Err(e) => {
                    log.info(format!(
                        "acme: {e}; serving {} over HTTP (workloads unaffected); trying again in {}s",
                        names.join(","),
                        cfg.retry.as_secs()
                    ));
                    cfg.retry
                }
            };
            if flag.load(Ordering::SeqCst) || !pause(wait, &flag) {
                return;
            }
        }
    })?;
    Ok(AcmeThread { stop, thread: Some(thread) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    #[test]
    fn renewal_time_is_two_thirds_of_the_lifetime() {
        let day = Duration::from_secs(86400);
        let t0 = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(renew_at(t0, t0 + 90 * day), t0 + 60 * day);
        // Short-lived (6-day) certificates: day 4.
        assert_eq!(renew_at(t0, t0 + 6 * day), t0 + 4 * day);
        // A certificate whose notAfter precedes notBefore is renewed at once.
        assert_eq!(renew_at(t0, t0 - day), t0);
        // Sleeps are capped and never negative.
        let cap = Duration::from_secs(3600);
        assert_eq!(wait_until(t0, t0 + 60 * day, cap), cap);
        assert_eq!(wait_until(t0, t0 + Duration::from_secs(10), cap), Duration::from_secs(10));
        assert_eq!(wait_until(t0 + day, t0, cap), Duration::ZERO);
    }

    #[test]
    fn validity_reads_the_leaf() {
        // A certificate made by openssl would need a tool; rcgen (instant-acme's CSR generator)
        // makes one with a known validity.
        let key = rcgen_key();
        let mut params = rcgen::CertificateParams::new(vec!["a.test".into()]).unwrap();
        params.not_before = rcgen::date_time_ymd(2025, 1, 1);
        params.not_after = rcgen::date_time_ymd(2025, 4, 1);
        let pem = params.self_signed(&key).unwrap().pem();
        let (nb, na) = validity(&pem).unwrap();
        assert_eq!(nb, UNIX_EPOCH + Duration::from_secs(1_735_689_600));
        assert_eq!(na.duration_since(nb).unwrap(), Duration::from_secs(90 * 86400));
        assert!(validity("not pem").is_err());
        assert_eq!(validity("").unwrap_err(), "the CA sent an empty certificate chain");
    }

    fn rcgen_key() -> rcgen::KeyPair {
        rcgen::KeyPair::generate().unwrap()
    }

    #[test]
    fn ca_text_stays_one_line() {
        assert_eq!(one_line("a\nfake: line\r\x1b[31m"), "a fake: line  [31m");
        assert_eq!(one_line(&"x".repeat(1000)).len(), 600);
    }

    #[test]
    fn installed_key_is_private() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let issued = Issued {
            chain_pem: "chain\n".into(),
            key_pem: "key\n".into(),
            not_before: UNIX_EPOCH,
            not_after: UNIX_EPOCH,
        };
        let names = ["a.test".to_string(), "b.test".to_string()];
        install(dir.path(), &names, &issued).unwrap();
        install(dir.path(), &names, &issued).unwrap(); // replacing works too
        for n in &names {
            let (c, k) = crate::nginx::cert_paths(dir.path(), n);
            assert_eq!(std::fs::read_to_string(c).unwrap(), "chain\n");
            assert_eq!(std::fs::read_to_string(&k).unwrap(), "key\n");
            assert_eq!(std::fs::metadata(&k).unwrap().permissions().mode() & 0o777, 0o600);
        }
        assert!(!format!("{issued:?}").contains("key\\n"));
    }
}
