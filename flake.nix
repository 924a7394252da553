{
  description = "cvmkit: reproducible confidential-VM images and the measurements a verifier pins";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-25.05";

  # First step of the flake: the CLI itself. Images, measurements and checks come with the Nix issue;
  # everything here already builds with real nixpkgs.
  outputs =
    { self, nixpkgs }:
    let
      system = "x86_64-linux";
      pkgs = nixpkgs.legacyPackages.${system};
      cvmkit = pkgs.callPackage ./nix/cvmkit.nix { };
    in
    {
      packages.${system} = {
        inherit cvmkit;
        default = cvmkit;
      };
      apps.${system} = {
        default = {
          type = "app";
          program = "${cvmkit}/bin/cvmkit";
        };
      };
      checks.${system} = {
        inherit cvmkit;
      };
      overlays.default = final: prev: { cvmkit = final.callPackage ./nix/cvmkit.nix { }; };
      devShells.${system}.default = pkgs.mkShell {
        inputsFrom = [ cvmkit ];
        packages = [ pkgs.qemu pkgs.OVMF pkgs.mtools pkgs.dosfstools pkgs.cpio pkgs.osslsigncode ];
      };
    };
}
