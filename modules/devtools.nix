# Debugging aids: every busybox applet (installed as symlinks at boot) and a root shell on the
# serial console when there is no workload or after it exits, instead of powering off.
#
# NOT for production confidential VMs: a shell on the console gives whoever controls the host's
# serial port (the cloud provider) a root shell inside the guest. The image measurements differ,
# so a verifier pinning the production measurements rejects a devtools image.
#
# With the runtime module it also sets `unmeasured = allow`: on a TDX/SNP image without a vTPM
# or RTMR (a plain QEMU, say) the runtime launches the workloads anyway, which production images
# refuse; the boot prints a warning on the console and os-release says CVMKIT_UNMEASURED=allow.
{
  _file = "modules/devtools.nix";
  dirs = {
    "/sbin" = { };
    "/usr/bin" = { };
    "/usr/sbin" = { };
  };
  init.commands = [ "/bin/busybox --install -s" ];
  init.shell = true;
  osRelease.VARIANT_ID = "devtools";
  osRelease.CVMKIT_UNMEASURED = "allow";
  runtime.settings.unmeasured = "allow";
}
