# QEMU/KVM (local TDX or SEV-SNP guests, and TCG for tests): the serial console is ttyS0, which
# QEMU connects to stdio with `-nographic` or `-serial stdio`; the disk is a raw GPT image that
# QEMU takes as `-drive format=raw,file=…`.
{
  _file = "modules/qemu.nix";
  cmdline = [ "console=ttyS0" ];
  disk.format = "raw";
  # The runtime (modules/runtime.nix) asks the host's metadata service only (10.0.2.2:8090,
  # e.g. `cvmkit run-local`'s).
  runtime.settings.sources = "qemu";
}
