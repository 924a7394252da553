# AMD SEV-SNP guest. Recorded for the measurements (the launch digest covers the firmware and,
# with QEMU's kernel-hashes, the kernel, initrd and command line); the kernel needs
# CONFIG_AMD_MEM_ENCRYPT and, for attestation reports through /dev/sev-guest or configfs-tsm,
# CONFIG_SEV_GUEST (kernel/guest.config has both).
{
  _file = "modules/snp.nix";
  platform = "snp";
}
