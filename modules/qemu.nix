# QEMU/KVM (local TDX or SEV-SNP guests, and TCG for tests): the serial console is ttyS0, which
# QEMU connects to stdio with `-nographic` or `-serial stdio`; the disk is a raw GPT image that
# QEMU takes as `-drive format=raw,file=…`. `no_timer_check`: under TCG on a busy host the kernel's
# IO-APIC timer check can miss its ticks and panic ("IO-APIC + timer doesn't work!"), as it did in
# this project's CI; a VM's timer needs no such probe (cloud images such as Fedora's set it too).
{
  _file = "modules/qemu.nix";
  cmdline = [
    "console=ttyS0"
    "no_timer_check"
  ];
  disk.format = "raw";
  # The runtime (modules/runtime.nix) asks the host's metadata service only (10.0.2.2:8090,
  # e.g. `cvmkit run-local`'s).
  runtime.settings.sources = "qemu";
}
