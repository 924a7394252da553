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

      # What this image is for: its workload, a service beside it, its own os-release fields.
      app = {
        workload = {
          package = pkgs.pkgsStatic.hello;
          command = [
            "/bin/hello"
            "--greeting=hello from a confidential VM"
          ];
        };
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
