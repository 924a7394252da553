# The image modules shipped with cvmkit, by name: `lib.modules.base` etc. in the flake's library.
# Options and the merge rule: nix/modules.nix (`options`, `mergeDefs`).
{
  # Minimal busybox init: pseudo-filesystems, DHCP or static `ip=`, services, the workload.
  base = ./base.nix;
  # Cloud and VMM profiles: console, command line, intended disk format.
  qemu = ./qemu.nix;
  gcp = ./gcp.nix;
  azure = ./azure.nix;
  # Confidential-computing platform (for measurements): Intel TDX or AMD SEV-SNP.
  tdx = ./tdx.nix;
  snp = ./snp.nix;
  # A root shell on the serial console, the full busybox applet set. Debugging only.
  devtools = ./devtools.nix;
  # The in-image runtime: manifest from cloud metadata, verified workload launch, HTTPS mapping.
  runtime = ./runtime.nix;
}
