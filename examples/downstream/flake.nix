# A downstream flake: your own confidential-VM image with your own workload, built by cvmkit.
#
#   nix build            # ./result/uki.efi (boot it with OVMF/TDVF) and ./result/initrd.img
#   nix build .#debug    # the same with a root shell on the serial console (never for production)
#
# The image has no /nix/store: the workload is a static program whose package is merged at `/`
# (so pkgsStatic.hello's bin/hello is /bin/hello in the image).
{
  description = "hello-cvm: a TDX guest image that runs one program";

  inputs.cvmkit.url = "github:cvmkit/cvmkit";
  # Build with cvmkit's pinned nixpkgs: the same kernel, stub and busybox as its own images.
  inputs.nixpkgs.follows = "cvmkit/nixpkgs";

  outputs =
    { cvmkit, nixpkgs, ... }:
    let
      system = "x86_64-linux";
      pkgs = nixpkgs.legacyPackages.${system};
      cvm = cvmkit.lib.${system};

      # What this image is for, as one module (what mkosi users put in mkosi.extra, skeleton
      # trees and postinst scripts). Owners and modes are set without root: they go into the
      # initrd's cpio headers, not onto a file system.
      app = {
        # The program the base init runs last; its package is merged at / (static: no /nix/store).
        workload = {
          package = pkgs.pkgsStatic.hello;
          command = [
            "/bin/hello"
            "--greeting=hello from a confidential VM"
          ];
        };
        # A skeleton tree merged at / (regular files 0644, executables 0755, owned by root).
        trees = [ ./rootfs ];
        # Single files and directories with their own modes and owners.
        files."/etc/hello/config" = {
          text = "greeting=hello\n";
          mode = "0640";
          uid = 1000;
          gid = 1000;
        };
        dirs."/var/lib/hello" = {
          mode = "0700";
          uid = 1000;
          gid = 1000;
        };
        # A user and a group for them (lines of /etc/passwd and /etc/group).
        users.passwd = [ "hello:x:1000:1000:hello:/var/lib/hello:/bin/sh" ];
        users.group = [ "hello:x:1000:" ];
        # Run at boot after the mounts and the network, before the services: the place for what a
        # postinst script would do that needs the running system.
        init.commands = [ "cat /etc/motd" ];
        # Started in the background before the workload.
        init.services.heartbeat = "while sleep 60; do echo alive; done";
        osRelease.VERSION_ID = "1";
      };
      modules = with cvm.modules; [
        base
        gcp
        tdx
        app
      ];
    in
    {
      packages.${system} = {
        default = cvm.mkImage {
          name = "hello-cvm";
          inherit modules;
        };
        debug = cvm.mkImage {
          name = "hello-cvm-debug";
          modules = modules ++ [ cvm.modules.devtools ];
        };
      };
      # The measurements to pin come from cvmkit's apps, e.g. `nix run .#measure -- tdx …`.
      apps.${system}.measure = cvmkit.apps.${system}.measure;
    };
}
