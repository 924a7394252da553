//! One integration-test binary for cvmkit-disk, run against the real example UKI (Debian kernel
//! and systemd-stub, busybox initramfs) and checked with the real tools each module names.
//! Missing tools or inputs fail the tests with the command that installs them.

mod util;

/// `sfdisk --verify`, `sgdisk -v`, `fsck.vfat -n` on the extracted ESP, `mdir`/`mtype`, and our
/// own readers on the raw disk; sparseness of the raw file.
mod raw;

/// GCP `tar.gz` (GNU tar `-tvf`, `--sparse -x` + compare, `gzip -t`, header bytes), fixed VHD
/// (`qemu-img info -f vpc`, convert + compare, footer fields against the spec) and qcow2
/// (`qemu-img check`, `qemu-img compare` with the raw disk).
mod formats;

/// Same inputs, same bytes, in every format; what a timestamp or seed change changes.
mod determinism;

/// Bad inputs give one-line errors naming the input and the fix.
mod errors;

/// The raw disk alone boots under OVMF (no `-kernel`) to the example's marker.
mod boot;
