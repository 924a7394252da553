# AMD SEV-SNP guest. Recorded for the measurements (the launch digest covers the firmware and,
# with QEMU's kernel-hashes, the kernel, initrd and command line); the kernel needs
# CONFIG_AMD_MEM_ENCRYPT and, for attestation reports through /dev/sev-guest or configfs-tsm,
# CONFIG_SEV_GUEST (kernel/guest.config has both).
#
# The flake measures SNP images against OVMF's AmdSev build (nix/firmware.nix), which boots by
# direct kernel boot only: `kernel_hashes` predicts the launch digest of QEMU booting this image's
# own kernel, initrd.img and command line with `-kernel`/`-initrd`/`-append` and
# `kernel-hashes=on` (measurements.json's notes give the command). A firmware without the
# kernel-hashes table (an OvmfPkgX64 build) needs `measure.kernel_hashes = false`.
{
  _file = "modules/snp.nix";
  platform = "snp";
  measure.kernel_hashes = true;
}
