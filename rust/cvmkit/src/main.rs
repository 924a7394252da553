//! `cvmkit`: a thin command line over the cvmkit library crates.
//!
//! Every subcommand lives in its own module under `cmd/`; this file only parses arguments and
//! turns errors into one `error: …` line and exit status 2.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cmd;
mod output;

#[derive(Parser)]
#[command(
    name = "cvmkit",
    version,
    about = "Build reproducible confidential-VM images and compute their measurements ahead of boot",
    propagate_version = true
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Say where two builds differ, through every layer (exit 0 identical, 1 different, 2 error).
    Diff(cmd::diff::Args),
    /// Write a bootable GPT disk (ESP with the UKI, roots, data) as raw, GCP tar.gz, VHD or qcow2.
    Disk(cmd::disk::Args),
    /// Remove docs, locales, caches, headers … from a root tree by glob rules (with keep-rules).
    Debloat(cmd::debloat::Args),
    /// Print the built-in debloat config (a starting point for your own).
    #[command(name = "debloat-default-config")]
    DebloatDefaultConfig,
    /// Build a whole image (initrd, UKI, …) from a JSON spec: the builder of the Nix derivations.
    Build(cmd::build::Args),
    /// Pack a directory tree (and/or a gen_init_cpio spec) into a deterministic newc initramfs.
    Initrd(cmd::initrd::Args),
    /// Assemble a Unified Kernel Image from a systemd-stub, a kernel, initrds and a command line.
    Uki(cmd::uki::Args),
    /// Show a PE file's sections, digests and Authenticode hashes (UKIs, kernels, stubs).
    Inspect(cmd::inspect::Args),
    /// Compute the measurements a verifier pins (SNP launch digest, TDX MRTD/RTMRs, TPM PCRs).
    Measure(cmd::measure::Args),
    /// Replay a TPM or TDX CCEL event log; with --expect, check it against a prediction.
    Replay(cmd::replay::Args),
    /// Boot an image under QEMU with a local metadata server; --expect checks the workload answers.
    #[command(name = "run-local")]
    RunLocal(cmd::run_local::Args),
    /// Check attestation evidence (TDX quote, SNP report, vTPM quote, Azure HCL report) offline,
    /// and against a prediction (exit 0 valid, 1 invalid or mismatch, 2 unusable input).
    Verify(cmd::verify::Args),
    /// Reference values for the registers a cloud's firmware sets (from a real VM's log and quote).
    Reference(cmd::reference::Args),
    /// Write the in-toto provenance statement (SLSA v1) of a built image, unsigned.
    Provenance(cmd::provenance::Args),
}

fn main() -> ExitCode {
    // Rust ignores SIGPIPE, so a write to a closed pipe (`cvmkit replay LOG | head -1`) makes
    // print! panic. With the default action the process ends quietly, as other Unix tools do.
    // SAFETY: called first thing, before any thread exists; SIG_DFL installs no handler.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Build(args) => cmd::build::run(args),
        Command::Debloat(args) => cmd::debloat::run(args),
        Command::Diff(args) => cmd::diff::run(args),
        Command::Disk(args) => cmd::disk::run(args),
        Command::DebloatDefaultConfig => {
            print!("{}", cmd::debloat::default_config_text());
            Ok(ExitCode::SUCCESS)
        }
        Command::Initrd(args) => cmd::initrd::run(args),
        Command::Uki(args) => cmd::uki::run(args),
        Command::Inspect(args) => cmd::inspect::run(args),
        Command::Measure(args) => cmd::measure::run(args),
        Command::Replay(args) => cmd::replay::run(args),
        Command::RunLocal(args) => cmd::run_local::run(args),
        Command::Verify(args) => cmd::verify::run(args),
        Command::Reference(args) => cmd::reference::run(args),
        Command::Provenance(args) => cmd::provenance::run(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            // A closed pipe (`cvmkit inspect … | head`) is not an error worth a message.
            if err
                .chain()
                .filter_map(|e| e.downcast_ref::<std::io::Error>())
                .any(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
            {
                return ExitCode::SUCCESS;
            }
            eprintln!("error: {}", one_line(&err));
            ExitCode::from(2)
        }
    }
}

/// One line: the outermost context first, then each cause, joined by ": ". A cause whose text
/// its parent already shows (an error type that prints its source inline *and* returns it from
/// `source()`) is not repeated.
fn one_line(err: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

#[cfg(test)]
mod tests {
    #[derive(Debug, thiserror::Error)]
    #[error("the UKI is not a valid PE image: {0}")]
    struct Outer(#[source] Inner);
    #[derive(Debug, thiserror::Error)]
    #[error("section .text extends past end of file")]
    struct Inner;

    #[test]
    fn a_cause_shown_inline_is_not_repeated() {
        let err = anyhow::Error::new(Outer(Inner)).context("UKI x.efi");
        assert_eq!(
            super::one_line(&err),
            "UKI x.efi: the UKI is not a valid PE image: section .text extends past end of file"
        );
        let plain = anyhow::anyhow!("inner").context("outer");
        assert_eq!(super::one_line(&plain), "outer: inner");
    }
}
