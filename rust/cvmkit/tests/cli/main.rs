//! Integration tests: each module runs the real `cvmkit` binary in fresh temporary directories
//! against real inputs (Debian's kernel, systemd-boot stub, OVMF and busybox; scripts/setup.sh).

#[macro_use]
mod util;

/// `cvmkit build --spec`: the JSON image spec the Nix layer drives.
mod build;
/// `cvmkit debloat`: dry run, apply, keep-rules, errors.
mod debloat;
/// `cvmkit diff`: the changed file named through every layer.
mod diff;
/// `cvmkit disk`: formats, validity, reproducibility, errors.
mod disk;
/// A UKI boots under QEMU + OVMF (TCG) from a FAT ESP to the example's marker.
mod boot;
/// Bad input: one-line errors, exit status 2, nothing left at -o.
mod errors;
/// `cvmkit initrd` end to end, checked with GNU cpio.
mod initrd;
/// `cvmkit measure` against peers, `cvmkit replay` against real event logs and quotes.
mod measure;
/// Issue 17: the SBOM, the provenance statement, a planted change named by diff and verify.
mod provenance;
/// `cvmkit reference capture` on real GCE logs; `cvmkit verify --reference`.
mod reference;
/// The QEMU 10.2 boundary: the TDX kernel measured as patched before, as the file from then on.
mod qemu_boundary;
/// `cvmkit run-local`: a UKI boots under QEMU with a local metadata server; errors; the relay.
mod run_local;
/// Byte-identical outputs under a perturbed clock, umask, TZ, locale, cwd, paths and mtimes.
mod repro;
/// One name and one unit per concept across subcommands.
mod vocabulary;
/// `cvmkit verify`: real evidence, tampered copies, predictions, unusable input.
mod verify;
/// `cvmkit uki` and `cvmkit inspect`, checked with objdump and Authenticode peers.
mod uki;
