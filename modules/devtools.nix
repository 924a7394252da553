# Debugging aids: every busybox applet (installed as symlinks at boot) and a root shell on the
# serial console when there is no workload or after it exits, instead of powering off.
#
# NOT for production confidential VMs: a shell on the console gives whoever controls the host's
# serial port (the cloud provider) a root shell inside the guest. The image measurements differ,
# so a verifier pinning the production measurements rejects a devtools image.
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
}
