//! The in-image runtime of cvmkit confidential VMs.
//!
//! `cvmkit-runtime` is a small static binary the image's base init starts. It
//!
//! 1. finds a **manifest** in cloud metadata ([`metadata`]): the GCP attribute `manifest`, the
//!    Azure IMDS tag `manifest`, or `http://10.0.2.2:8090/manifest` for QEMU user networking,
//!    each base64 JSON `{"app": URL, "sha256": HEX}` or a list of them ([`manifest`]), and
//!    records what it found in `/etc/cvmkit/cloud-config.env` ([`envfile`]);
//! 2. **binds** the manifest to the attestation by extending one event per workload into a
//!    runtime register, vTPM PCR 15 or TDX RTMR3 ([`measure`]);
//! 3. **fetches** each app and checks its SHA-256 before the file can be executed ([`fetch`]),
//!    then **supervises** workload `N` on port `3001 + N` with bounded exponential backoff,
//!    logging to the console and to files ([`supervise`], [`log`]);
//! 4. maps the `hostname` metadata value onto the workloads ([`routes`]) and writes the nginx
//!    HTTPS configuration ([`nginx`]);
//! 5. obtains one certificate for those names from an ACME CA, HTTP-01 through nginx, reloads
//!    nginx with it and renews it while the VM runs (`acme`, feature `acme`).
//!
//! [`run::start`] strings these together; [`config::RuntimeConfig`] holds every endpoint, path
//! and timeout, none of which is hard-wired.
//!
//! # What a verifier checks
//!
//! The image measurements (the UKI in PCR 4/11 or RTMR 1/2, or the SEV-SNP launch digest) pin
//! the code of this runtime, and the runtime executes only a file whose SHA-256 equals the
//! manifest's. So *image measurements + manifest digests* fully describe what runs. The
//! runtime makes the second half attestable by extending the events of [`measure::events`]
//! into PCR 15 (vTPM, SHA-256 bank) and/or RTMR3 (TDX) before any app is fetched; a verifier
//! recomputes [`measure::expected_pcr`] / [`measure::expected_rtmr`] from the manifest it
//! deployed and compares them with the quote, next to the image's predicted values.
//!
//! ```
//! use cvmkit_runtime::{manifest::Sha256Digest, measure, routes};
//! let app = Sha256Digest::from_hex(&"ab".repeat(32))?;
//! let names = routes::parse_hostnames("app.example")?;
//! let events = measure::events(&[app], &names, 3001);
//! assert_eq!(events[1], "cvmkit-runtime/v1 hostnames=app.example");
//! let pcr15 = measure::expected_pcr(&events); // compare with the vTPM quote's PCR 15
//! # let _ = pcr15;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs)]

#[cfg(feature = "acme")]
pub mod acme;
pub mod config;
pub mod envfile;
pub mod fetch;
pub mod http;
pub mod log;
/// The manifest protocol (types, keys, ports, event strings), shared with run-local and
/// verifiers: the [`cvmkit_manifest`] crate.
pub use cvmkit_manifest as manifest;
pub mod measure;
pub mod metadata;
pub mod nginx;
pub mod routes;
pub mod run;
pub mod supervise;
