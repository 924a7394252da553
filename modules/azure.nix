# Microsoft Azure (confidential VMs: DCesv5/ECesv5 with TDX, DCasv5/ECasv5 with SEV-SNP).
#
# Console: `console=ttyS0 earlyprintk=ttyS0`, from Azure's requirements for generic Linux images
#   (https://learn.microsoft.com/azure/virtual-machines/linux/create-upload-generic, "kernel boot
#   line": console=ttyS0 earlyprintk=ttyS0 rootdelay=300). `rootdelay=300` waits for a root
#   disk; these images run from the initrd, so it is left out.
# Disk: a fixed-size VHD whose virtual size is a whole number of MiB (same page, "General Linux
#   system requirements"): `disk.format = "vhd"`.
# Network: Hyper-V netvsc (CONFIG_HYPERV_NET in kernel/guest.config), configured by DHCP.
{
  _file = "modules/azure.nix";
  cmdline = [
    "console=ttyS0"
    "earlyprintk=ttyS0"
  ];
  disk.format = "vhd";
  network.default = "dhcp";
  # The cloud's own firmware boots the image: measurements.json predicts only the image's
  # registers and names the firmware's under `cloud` (README, "What cvmkit predicts where").
  measure.target = "azure";
  # The runtime (modules/runtime.nix) asks this cloud's metadata service only.
  runtime.settings.sources = "azure";
}
