{
  description = "cvmkit: reproducible confidential-VM images and the measurements a verifier pins";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-25.05";

  # Layout (crane's pattern): the library lives in nix/ and needs only builtins; `mkLib pkgs` binds
  # it to a nixpkgs for the defaults of `mkImage` (cvmkit, the guest kernel of kernel/, systemd's
  # stub, a static busybox, OVMF). Every output kind is one attribute set (Nix 2.8 cannot define
  # `packages.${system}.a` and `packages.${system}.b` separately). checks/offline.sh runs the same
  # library, and this very file, without nixpkgs.
  outputs =
    { self, nixpkgs }:
    let
      system = "x86_64-linux";
      pkgs = nixpkgs.legacyPackages.${system};

      /**
        cvmkit's library (nix/default.nix) with `mkImage` defaults taken from `pkgs`: the cvmkit
        package, the TDX/SNP guest kernel of kernel/ (no modules), systemd-stub from
        `pkgs.systemd` (the path NixOS' boot.uki uses), `pkgs.pkgsStatic.busybox` and OVMF.

        # Inputs

        `pkgs`
        : a nixpkgs package set (x86_64-linux)

        # Type

        ```
        mkLib :: Pkgs -> Lib
        ```

        # Examples

        ```nix
        (cvmkit.mkLib pkgs).mkImage { name = "demo"; modules = [ … ]; }
        ```
      */
      mkLib =
        pkgs:
        let
          kernel = pkgs.callPackage ./kernel { };
        in
        import ./nix {
          inherit pkgs;
          cvmkit = pkgs.callPackage ./nix/cvmkit.nix { };
          kernel = "${kernel}/${pkgs.stdenv.hostPlatform.linux-kernel.target}";
          uname = kernel.modDirVersion;
          stub = "${pkgs.systemd}/lib/systemd/boot/efi/linux${pkgs.stdenv.hostPlatform.efiArch}.efi.stub";
          busybox = "${pkgs.pkgsStatic.busybox}/bin/busybox";
          firmware = "${pkgs.OVMF.fd}/FV/OVMF.fd";
          inherit (pkgs.stdenv.hostPlatform) system;
        };

      lib = mkLib pkgs;
      cvmkit = pkgs.callPackage ./nix/cvmkit.nix { };
      guestKernel = pkgs.callPackage ./kernel { };

      # The images: a platform and a cloud profile over the base init. No workload: the init
      # brings up the network and waits; add `workload` in your own module (see
      # examples/downstream).
      imageModules = with lib.modules; {
        tdx-qemu = [ base qemu tdx ];
        tdx-gcp = [ base gcp tdx ];
        tdx-azure = [ base azure tdx ];
        snp-qemu = [ base qemu snp ];
        snp-gcp = [ base gcp snp ];
        snp-azure = [ base azure snp ];
        tdx-qemu-devtools = [ base qemu tdx devtools ];
      };
      images = builtins.mapAttrs (
        name: modules:
        lib.mkImage {
          inherit name modules;
          # Outputs: uki.efi, initrd.img, disk.<format>, measurements.json.
          specExtensions = { inherit (lib.specExtensions) disk measure; };
        }
      ) imageModules;

      # Builds `image` again as another derivation (a salt attribute) and requires the same bytes.
      # The builder is `cvmkit diff` itself (no shell): identical output directories give $out,
      # any difference fails the check with its path through every layer
      # (`disk.raw › part 1 (ESP) › EFI/BOOT/BOOTX64.EFI › .initrd › zstd › cpio › etc/…`).
      reproducible =
        name: image:
        derivation {
          name = "reproducible-${name}";
          inherit system;
          builder = "${cvmkit}/bin/cvmkit";
          args = [
            "diff"
            "${image}"
            "${image.withSalt "reproducibility-check"}"
            "--output"
            (placeholder "out")
          ];
        };

      # `cvmkit SUBCOMMAND "$@"` as a program for `nix run .#SUBCOMMAND -- …`.
      subcommandApp = sub: {
        type = "app";
        program = "${pkgs.writeShellScriptBin "cvmkit-${sub}" ''exec ${cvmkit}/bin/cvmkit ${sub} "$@"''}/bin/cvmkit-${sub}";
        meta.description = "cvmkit ${sub}";
      };

      libTests = import ./nix/tests.nix;
    in
    {
      inherit mkLib;

      lib.${system} = lib;

      packages.${system} = images // {
        inherit cvmkit;
        default = cvmkit;
        guest-kernel = guestKernel;
      };

      apps.${system} = {
        default = {
          type = "app";
          program = "${cvmkit}/bin/cvmkit";
          meta.description = "cvmkit: build images, compute and check measurements";
        };
        measure = subcommandApp "measure";
        inspect = subcommandApp "inspect";
        # `cvmkit diff` arrives with the CLI's diff subcommand; until then this app says so.
        diff = subcommandApp "diff";
      };

      checks.${system} =
        builtins.listToAttrs (
          map (name: {
            name = "reproducible-${name}";
            value = reproducible name images.${name};
          }) (builtins.attrNames images)
        )
        // {
          inherit cvmkit;
          # The library's unit tests run at evaluation; the derivation records the count.
          nix-lib =
            if libTests.failed == [ ] then
              pkgs.runCommand "cvmkit-nix-lib-tests" { } ''
                echo "${toString libTests.passed} of ${toString libTests.total} Nix library tests passed" > "$out"
              ''
            else
              throw "cvmkit: Nix library tests failed: ${builtins.toJSON libTests.failed}";
          # Fails unless every option of kernel/guest.config survives olddefconfig.
          kernel-config = guestKernel.configfile;
        };

      overlays.default = final: prev: {
        cvmkit = final.callPackage ./nix/cvmkit.nix { };
        cvmkit-guest-kernel = final.callPackage ./kernel { };
        cvmkitLib = mkLib final;
      };

      devShells.${system}.default = pkgs.mkShell {
        inputsFrom = [ cvmkit ];
        packages = [
          pkgs.qemu
          pkgs.OVMF
          pkgs.mtools
          pkgs.dosfstools
          pkgs.cpio
          pkgs.osslsigncode
        ];
      };
    };
}
