//! `cvmkit run-local`: boot an image under QEMU the way a cloud would run it, with nothing but
//! the host in reach, and check that its workload answers.
//!
//! The work is the `cvmkit-runlocal` crate's (QEMU command, process supervision, metadata
//! server, guestfwd relay); this file parses the flags and prints.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};
use cvmkit_runlocal::{Event, Observer, Options};

/// How QEMU runs the guest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Accel {
    /// Emulation: slow (a UKI boots in tens of seconds) but works everywhere.
    Tcg,
    /// Hardware virtualization through /dev/kvm.
    Kvm,
    /// kvm if /dev/kvm opens read-write, else tcg.
    Auto,
}

#[derive(clap::Args)]
pub struct Args {
    /// The image: a UKI, a raw GPT disk, a qcow2 disk, or a directory holding uki.efi (what the
    /// Nix image derivations output). Recognized by content; never modified (disks boot with
    /// snapshot=on, a UKI is put on a temporary disk).
    #[arg(value_name = "IMAGE", required = true)]
    image: Option<PathBuf>,
    /// A workload program (repeatable): the N-th --app is workload N, served to the guest at
    /// /apps/N with its sha256 in the manifest key `manifest` (N=0), `manifest-N` (N>0), and
    /// listening on guest port 3001+N.
    #[arg(long, value_name = "FILE")]
    app: Vec<PathBuf>,
    /// A manifest JSON served as is (base64-encoded) as the next manifest key after the --app
    /// ones (repeatable): for apps hosted elsewhere, or deliberately wrong hashes.
    #[arg(long, value_name = "FILE")]
    manifest_json: Vec<PathBuf>,
    /// The `hostname` metadata value (the runtime's HTTPS mapping); absent (404) without it.
    #[arg(long, value_name = "NAMES")]
    hostname: Option<String>,
    /// Forward 127.0.0.1:HOST_PORT to a guest port (repeatable). Every workload whose port is not
    /// forwarded this way gets a free host port.
    #[arg(long, value_name = "HOST_PORT:GUEST_PORT")]
    forward: Vec<String>,
    /// Let the guest reach 127.0.0.1:HOST_PORT as 10.0.2.2:GUEST_PORT (repeatable), through the
    /// same relay as the metadata server: e.g. an ACME test CA on the host (Pebble) for the
    /// runtime's `acme-directory = https://10.0.2.2:GUEST_PORT/dir`.
    #[arg(long, value_name = "GUEST_PORT:HOST_PORT")]
    guest_forward: Vec<String>,
    /// The UEFI firmware (default: $CVMKIT_FIRMWARE, which the flake's app sets to nixpkgs'
    /// OVMF, else /usr/share/ovmf/OVMF.fd or /usr/share/qemu/OVMF.fd).
    #[arg(long, value_name = "FILE")]
    firmware: Option<PathBuf>,
    /// Guest memory (QEMU -m): a size such as 1G or 512M; a plain number is MiB, as for QEMU.
    #[arg(long, value_name = "SIZE", default_value = "1G")]
    memory: String,
    /// Number of virtual CPUs (QEMU -smp).
    #[arg(
        long = "vcpus",
        visible_alias = "smp",
        value_name = "N",
        default_value_t = 1
    )]
    smp: u32,
    /// The guest's NIC (a QEMU device model); the image must have its driver. The default,
    /// e1000e, is QEMU's own default NIC on q35: built into the flake's guest kernel, and a single
    /// module without dependencies in Debian's (which builds every NIC driver as a module), so an
    /// image carries it with one `insmod`. virtio-net-pci needs 8 modules on Debian's kernel.
    #[arg(long, value_name = "MODEL", default_value = "e1000e")]
    nic_model: String,
    /// Give the guest a TPM 2.0 (swtpm, tpm-crb), so the runtime binds the manifest to PCR 15.
    #[arg(long)]
    tpm: bool,
    /// Accelerator.
    #[arg(long, value_enum, default_value_t = Accel::Auto)]
    accel: Accel,
    /// Write the serial console here (default: a temporary file, kept and named on failure).
    #[arg(long, value_name = "FILE")]
    serial: Option<PathBuf>,
    /// The QEMU binary (default: qemu-system-x86_64 on PATH).
    #[arg(long, value_name = "PATH")]
    qemu: Option<PathBuf>,
    /// Wait until workload 0 answers 200 with a body containing TEXT, then stop the VM (exit 0;
    /// 1 on timeout or if QEMU exits first). Without it: boot, print the URLs, run until QEMU
    /// exits or Ctrl-C.
    #[arg(long, value_name = "TEXT")]
    expect: Option<String>,
    /// The path --expect requests.
    #[arg(long, value_name = "PATH", default_value = "/", requires = "expect")]
    expect_path: String,
    /// Seconds --expect waits, from QEMU's start.
    #[arg(long, value_name = "SECS", default_value_t = 300, requires = "expect")]
    timeout: u64,
    /// With --app: seconds the guest has, from QEMU's start, to ask the metadata server for its
    /// manifest; a guest that never asks (no network driver for --nic-model, no runtime in the
    /// image, a boot that hangs) fails then with that reason instead of after --timeout. 0: wait.
    #[arg(long, value_name = "SECS", default_value_t = 120)]
    metadata_timeout: u64,
    /// Print one JSON object with the result.
    #[arg(long)]
    json: bool,
    /// Internal: QEMU's guestfwd command; copies stdin/stdout to and from ADDR.
    #[arg(long, value_name = "ADDR", hide = true, exclusive = true)]
    relay: Option<String>,
}

pub fn run(args: Args) -> Result<ExitCode> {
    if let Some(addr) = &args.relay {
        let reached = cvmkit_runlocal::relay::relay(addr)?;
        return Ok(if reached {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        });
    }
    let quiet = args.json || args.expect.is_some();
    let memory = cvmkit_image::parse_memory(&args.memory).context("--memory")?;
    let exe = std::env::current_exe()
        .context("cannot find this program's path for the metadata relay")?;
    let opts = Options {
        image: args.image.context("give the IMAGE to boot")?,
        app: args.app,
        manifest_json: args.manifest_json,
        hostname: args.hostname,
        forward: args.forward,
        guest_forward: args.guest_forward,
        firmware: args.firmware,
        memory: (args.memory, memory),
        smp: args.smp,
        nic_model: args.nic_model,
        tpm: args.tpm,
        accel: match args.accel {
            Accel::Tcg => cvmkit_runlocal::Accel::Tcg,
            Accel::Kvm => cvmkit_runlocal::Accel::Kvm,
            Accel::Auto => cvmkit_runlocal::Accel::Auto,
        },
        serial: args.serial,
        qemu: args.qemu,
        expect: args.expect,
        expect_path: args.expect_path,
        timeout: args.timeout,
        metadata_timeout: args.metadata_timeout,
        relay: (exe, vec!["run-local".into(), "--relay".into()]),
    };
    let observer: Observer = Arc::new(move |event| show(event, quiet));
    let finished = cvmkit_runlocal::run(&opts, &observer)?;

    if let Some(f) = &finished.failure {
        eprintln!("run-local: {}", f.why);
        eprintln!(
            "run-local: last {} serial console lines (full log: {}):",
            f.serial_tail.len(),
            f.serial_log.display()
        );
        for l in &f.serial_tail {
            eprintln!("  {l}");
        }
    }
    if args.json {
        crate::output::print_json(&finished.report)?;
    } else if finished.report.answered {
        println!(
            "run-local: workload 0 answered http://127.0.0.1:{}{} after {:.1} s",
            finished.workload0.unwrap_or(0),
            opts.expect_path,
            finished.report.seconds
        );
    }
    Ok(if finished.success {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Prints what happens while the VM runs: the metadata requests (stderr, always), and unless
/// `quiet` (--json or --expect) where the workloads are.
fn show(event: Event<'_>, quiet: bool) {
    match event {
        Event::Metadata {
            method,
            target,
            status,
        } => eprintln!("run-local: metadata {method} {target} -> {status}"),
        Event::KvmFallback => {
            eprintln!("run-local: KVM cannot run the guest on this host; booting again with TCG")
        }
        Event::Started(_) if quiet => {}
        Event::Started(s) => {
            println!(
                "run-local: QEMU is running ({} accel); serial console: {}",
                s.accel,
                s.serial.display()
            );
            for (index, host_port, guest_port) in &s.workloads {
                println!(
                    "run-local: workload {index}: http://127.0.0.1:{host_port}/ (guest port {guest_port})"
                );
            }
            for (h, g) in &s.other_forwards {
                println!("run-local: forward: 127.0.0.1:{h} -> guest port {g}");
            }
            println!("run-local: stop with Ctrl-C");
            let _ = std::io::stdout().flush();
        }
    }
}
