# Intel TDX guest. Recorded for the measurements (MRTD from the firmware, RTMR0-3 from the firmware
# configuration, the UKI and its sections); the kernel needs CONFIG_INTEL_TDX_GUEST and, for
# attestation reports through /dev/tdx_guest or configfs-tsm, CONFIG_TDX_GUEST_DRIVER
# (kernel/guest.config has both). The flake measures TDX images against OVMF with TPM support and
# the CC measurement (nix/firmware.nix `tdx`), booting the UKI from the disk.
{
  _file = "modules/tdx.nix";
  platform = "tdx";
}
