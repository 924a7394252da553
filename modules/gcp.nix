# Google Compute Engine (Confidential VMs: TDX on C3, SEV-SNP on N2D).
#
# Console: `console=ttyS0,38400n8d`, the setting GCE's image import guide asks for so that the
#   interactive serial console and `gcloud compute instances get-serial-port-output` work
#   (https://cloud.google.com/compute/docs/import/import-existing-image, "Configure the
#   bootloader"; osbuild's GCE image type uses the same argument).
# Disk: a file named `disk.raw` in a gzip-compressed tar (GNU `oldgnu` format), the size a whole
#   number of GiB (https://cloud.google.com/compute/docs/import/import-existing-image and
#   "Image management best practices"): `disk.format = "gcp"`.
# Network: gVNIC (CONFIG_GVE) or virtio-net, configured by DHCP through the base module.
{
  _file = "modules/gcp.nix";
  cmdline = [ "console=ttyS0,38400n8d" ];
  disk.format = "gcp";
  network.default = "dhcp";
  # The cloud's own firmware boots the image: measurements.json predicts only the image's
  # registers and names the firmware's under `cloud` (README, "What cvmkit predicts where").
  measure.target = "gcp";
  # The runtime (modules/runtime.nix) asks this cloud's metadata service only.
  runtime.settings.sources = "gcp";
}
