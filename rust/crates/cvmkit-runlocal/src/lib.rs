//! Boot an image under QEMU the way a cloud would run it, with nothing but the host in reach,
//! and check that its workload answers: the library behind `cvmkit run-local`.
//!
//! The guest gets QEMU user networking with `restrict=on`: it can reach only two forwards.
//!
//! * `guestfwd` 10.0.2.2:8090 → a relay ([`relay`], `cvmkit run-local --relay`, spawned by QEMU
//!   once per guest connection with the connection on stdin/stdout) → the metadata server
//!   ([`metadata`]) on 127.0.0.1. That is where cvmkit-runtime's QEMU source looks: `manifest`,
//!   `manifest-1`, … up to the first 404, then `hostname`; the app files are served at
//!   `/apps/N`. Keys, addresses and ports come from [`cvmkit_manifest`], which the runtime uses
//!   too, so the two sides cannot drift apart.
//! * `hostfwd` 127.0.0.1:HOST_PORT → guest port 3001+N, one per workload.
//! * with `--guest-forward GUEST_PORT:HOST_PORT`, more `guestfwd`s through the same relay:
//!   10.0.2.2:GUEST_PORT → 127.0.0.1:HOST_PORT (e.g. an ACME test CA on the host).
//!
//! QEMU's slirp refuses a `guestfwd` on its own host address, so the virtual host (the gateway)
//! is moved to 10.0.2.254 and 10.0.2.2 is free to be the forwarded metadata address.
//!
//! Every input is checked before anything is started ([`Plan::check`]); QEMU and swtpm run in
//! process groups of their own that a guard kills on every way out, and they get SIGKILL if
//! this process dies ([`process`]). The caller (the CLI) parses arguments and prints: what
//! happens while the VM runs reaches it as [`Event`]s, the end as a [`Finished`].

// The one `unsafe` is std's `pre_exec` (process.rs), for PR_SET_PDEATHSIG in the child.
#![deny(missing_docs)]

pub mod metadata;
mod plan;
pub mod process;
pub mod relay;
mod run;

use std::path::PathBuf;

pub use plan::{parse_forward, Plan};
pub use run::{Failure, Finished, Outcome, Report, Started, WorkloadReport};

/// How QEMU runs the guest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Accel {
    /// Emulation: slow but works everywhere.
    Tcg,
    /// Hardware virtualization through /dev/kvm.
    Kvm,
    /// kvm if /dev/kvm opens read-write, else tcg.
    Auto,
}

impl Accel {
    /// The name QEMU's `-accel` takes (and the report shows).
    pub fn name(self) -> &'static str {
        match self {
            Accel::Tcg => "tcg",
            Accel::Kvm => "kvm",
            Accel::Auto => "auto",
        }
    }
}

/// What to boot and how; the CLI's flags, one field each (see `cvmkit run-local --help`).
/// Error messages name the flags, since that is what the user typed.
#[derive(Clone, Debug)]
pub struct Options {
    /// A UKI, a raw GPT disk, a qcow2 disk, or a directory holding uki.efi.
    pub image: PathBuf,
    /// Workload programs: the N-th is workload N, served at /apps/N.
    pub app: Vec<PathBuf>,
    /// Manifest JSON files served as is as the next manifest keys.
    pub manifest_json: Vec<PathBuf>,
    /// The `hostname` metadata value.
    pub hostname: Option<String>,
    /// `HOST_PORT:GUEST_PORT` forwards.
    pub forward: Vec<String>,
    /// `GUEST_PORT:HOST_PORT`: the guest's 10.0.2.2:GUEST_PORT reaches 127.0.0.1:HOST_PORT.
    pub guest_forward: Vec<String>,
    /// The UEFI firmware (default: $CVMKIT_FIRMWARE, else Debian's OVMF paths).
    pub firmware: Option<PathBuf>,
    /// Guest memory as given (for messages) and in bytes.
    pub memory: (String, u64),
    /// Virtual CPUs.
    pub smp: u32,
    /// The guest's NIC model.
    pub nic_model: String,
    /// Give the guest a TPM 2.0 (swtpm).
    pub tpm: bool,
    /// Accelerator.
    pub accel: Accel,
    /// Where the serial console goes (default: a temporary file, kept on failure).
    pub serial: Option<PathBuf>,
    /// The QEMU binary (default: qemu-system-x86_64 on PATH).
    pub qemu: Option<PathBuf>,
    /// Wait until workload 0 answers 200 with a body containing this.
    pub expect: Option<String>,
    /// The path `expect` requests.
    pub expect_path: String,
    /// Seconds `expect` waits, from QEMU's start.
    pub timeout: u64,
    /// Seconds the guest has to ask for its manifest (with apps); 0: wait.
    pub metadata_timeout: u64,
    /// The program QEMU runs for each guest connection to the metadata address, and its
    /// arguments, to which the metadata server's `ADDR` is appended: `cvmkit run-local --relay`
    /// (see [`relay::relay`]).
    pub relay: (PathBuf, Vec<String>),
}

/// What happens while the VM runs, for the caller to show. Metadata requests arrive from the
/// server's threads, hence `Send + Sync` observers.
#[derive(Debug)]
pub enum Event<'a> {
    /// The guest asked the metadata server for something; `target` is escaped (guest text).
    Metadata {
        /// `GET`, `HEAD`, …
        method: &'a str,
        /// The request target, escaped with `escape_debug`.
        target: &'a str,
        /// The status answered.
        status: u16,
    },
    /// QEMU runs; workloads are reachable on the host.
    Started(&'a Started),
    /// `Accel::Auto` chose KVM, which cannot run the guest here: booting again with TCG.
    KvmFallback,
}

/// Something that is told of [`Event`]s.
pub type Observer = std::sync::Arc<dyn Fn(Event<'_>) + Send + Sync>;

/// Checks the inputs, boots, waits and stops everything. `auto` chose KVM because /dev/kvm
/// opens; some hosts' KVM still cannot run a guest (QEMU stops with "KVM internal error", or
/// dies at start, e.g. "failed to set MSR" then SIGABRT): then it boots again with TCG instead
/// of failing.
pub fn run(opts: &Options, observer: &Observer) -> anyhow::Result<Finished> {
    let plan = Plan::check(opts)?;
    let fallback = opts.accel == Accel::Auto && plan.accel == Accel::Kvm;
    match plan.launch(opts, observer, fallback)? {
        Some(finished) => Ok(finished),
        None => {
            observer(Event::KvmFallback);
            let mut plan = Plan::check(opts)?;
            plan.accel = Accel::Tcg;
            plan.launch(opts, observer, false)?
                .ok_or_else(|| anyhow::anyhow!("no fallback from TCG"))
        }
    }
}
