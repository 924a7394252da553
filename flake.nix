{
  description = "cvmkit: reproducible confidential-VM images and the measurements a verifier pins";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-25.05";

  # Layout (crane's pattern): the library lives in nix/ and needs only builtins; `mkLib pkgs` binds
  # it to a nixpkgs for the defaults of `mkImage` (cvmkit, the guest kernel of kernel/, systemd's
  # stub, a static busybox, OVMF per platform: nix/firmware.nix). Every output kind is one
  # attribute set (Nix 2.8 cannot define `packages.${system}.a` and `packages.${system}.b`
  # separately). checks/offline.sh runs the same library, and this very file, without nixpkgs.
  outputs =
    { self, nixpkgs }:
    let
      system = "x86_64-linux";
      pkgs = nixpkgs.legacyPackages.${system};

      /**
        cvmkit's library (nix/default.nix) with `mkImage` defaults taken from `pkgs`: the cvmkit
        package, the TDX/SNP guest kernel of kernel/ (no modules), systemd-stub from
        `pkgs.systemd` (the path NixOS' boot.uki uses), `pkgs.pkgsStatic.busybox`, the firmware
        of each platform (nix/firmware.nix: TDX and the fallback `firmware` OVMF with TPM
        support, SNP the AmdSev build), and the static in-image runtime (`cvmkit-runtime`, musl,
        for modules/runtime.nix).

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
          fw = import ./nix/firmware.nix { inherit pkgs; };
        in
        import ./nix {
          inherit pkgs;
          cvmkit = pkgs.callPackage ./nix/cvmkit.nix { };
          kernel = "${kernel}/${pkgs.stdenv.hostPlatform.linux-kernel.target}";
          uname = kernel.modDirVersion;
          stub = "${pkgs.systemd}/lib/systemd/boot/efi/linux${pkgs.stdenv.hostPlatform.efiArch}.efi.stub";
          busybox = "${pkgs.pkgsStatic.busybox}/bin/busybox";
          firmware = fw.vtpm.file;
          firmwares = {
            tdx = fw.tdx.file;
            snp = fw.snp.file;
          };
          runtime = pkgs.pkgsStatic.callPackage ./nix/cvmkit.nix { crate = "cvmkit-runtime"; };
          # What each image's sbom.cdx.json says about these packages beyond their bytes
          # (version, licence, source hash, the kernel's .config): nix/image.nix
          # `describeComponent`. Only those whose files are in an image are listed in its SBOM.
          components = [
            kernel
            pkgs.systemd
            pkgs.pkgsStatic.busybox
            (pkgs.pkgsStatic.callPackage ./nix/cvmkit.nix { crate = "cvmkit-runtime"; })
            (pkgs.callPackage ./nix/nginx-static.nix { })
            fw.tdx.package.fd
            fw.snp.package.fd
          ];
          inherit (pkgs.stdenv.hostPlatform) system;
        };

      lib = mkLib pkgs;
      firmware = import ./nix/firmware.nix { inherit pkgs; };
      cvmkit = pkgs.callPackage ./nix/cvmkit.nix { };
      cvmkitRuntime = lib.defaults.runtime;
      guestKernel = pkgs.callPackage ./kernel { };

      # The images: a platform and a cloud profile over the base init, with the runtime, which
      # runs the workloads named by the manifest in the cloud's metadata (verified by sha256;
      # README "In-image runtime"). To bake a workload into the image instead, add `workload`
      # in your own module (see examples/downstream).
      # nginx (static, nix/nginx-static.nix: `pkgsStatic.nginx` does not build) lets the runtime
      # put HTTPS in front of the workloads (`hostname` metadata).
      https = {
        _file = "flake.nix (https)";
        runtime.nginx = "${pkgs.callPackage ./nix/nginx-static.nix { }}/bin/nginx";
      };
      imageModules = with lib.modules; {
        tdx-qemu = [ base qemu tdx runtime https ];
        tdx-gcp = [ base gcp tdx runtime https ];
        tdx-azure = [ base azure tdx runtime https ];
        snp-qemu = [ base qemu snp runtime https ];
        snp-gcp = [ base gcp snp runtime https ];
        snp-azure = [ base azure snp runtime https ];
        tdx-qemu-devtools = [ base qemu tdx runtime https devtools ];
      };
      images = builtins.mapAttrs (
        name: modules:
        let
          image = lib.mkImage {
            inherit name modules;
            # Outputs: uki.efi, initrd.img, disk.<format>, measurements.json, sbom.cdx.json.
            specExtensions = { inherit (lib.specExtensions) disk measure; };
          };
        in
        image
        // {
          # `nix build .#tdx-gcp.provenance`: the in-toto/SLSA statement of the image's outputs
          # (unsigned; .github/workflows/release.yml signs it on a release).
          provenance = lib.mkProvenance {
            inherit image;
            flake = "github:cvmkit/cvmkit";
            flakeLock = ./flake.lock;
            rev = self.rev or null;
            narHash = self.narHash or null;
          };
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

      # checks/golden/<image>.json: the measurements each image must keep. A change to the
      # kernel, stub, firmware, initrd or command line changes them; `nix run .#update-golden`
      # writes the current values for review and commit.
      golden = name: image: lib.mkGoldenCheck {
        inherit image;
        golden = ./checks/golden + "/${name}.json";
      };
      updateGolden = pkgs.writeShellScriptBin "cvmkit-update-golden" ''
        set -eu
        if [ ! -f flake.nix ] || [ ! -d nix ] || [ ! -d checks ]; then
          echo "cvmkit-update-golden: run this at the root of the cvmkit checkout (flake.nix, nix/, checks/)" >&2
          exit 2
        fi
        mkdir -p checks/golden
        ${builtins.concatStringsSep "\n" (
          map (name: ''
            cp ${images.${name}}/measurements.json checks/golden/.${name}.json.tmp
            chmod 0644 checks/golden/.${name}.json.tmp
            mv checks/golden/.${name}.json.tmp checks/golden/${name}.json
            echo "checks/golden/${name}.json"
          '') (builtins.attrNames images)
        )}
        echo "review with: git diff checks/golden" >&2
      '';

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
        cvmkit-runtime = cvmkitRuntime;
        default = cvmkit;
        # The TDX/SNP guest kernel of kernel/ (both names).
        kernel = guestKernel;
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
        diff = subcommandApp "diff";
        # `nix run .#run-local -- result --app ./server --expect hello`: QEMU, swtpm and OVMF
        # with TPM support (nix/firmware.nix `vtpm`) from nixpkgs.
        run-local = {
          type = "app";
          program = "${pkgs.writeShellScriptBin "cvmkit-run-local" ''
            export PATH=${pkgs.qemu}/bin:${pkgs.swtpm}/bin:$PATH
            export CVMKIT_FIRMWARE=''${CVMKIT_FIRMWARE:-${firmware.vtpm.file}}
            exec ${cvmkit}/bin/cvmkit run-local "$@"
          ''}/bin/cvmkit-run-local";
          meta.description = "boot an image under QEMU with a local metadata server and check its workload";
        };
        # Writes checks/golden/<image>.json from the images' measurements.json.
        update-golden = {
          type = "app";
          program = "${updateGolden}/bin/cvmkit-update-golden";
          meta.description = "refresh checks/golden/*.json from the images' current measurements";
        };
      };

      checks.${system} =
        builtins.listToAttrs (
          builtins.concatMap (name: [
            {
              name = "reproducible-${name}";
              value = reproducible name images.${name};
            }
            {
              name = "golden-${name}";
              value = golden name images.${name};
            }
          ]) (builtins.attrNames images)
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
          # The Rust tests that need nothing outside the flake (unit tests; cpio, FAT, GPT, initrd,
          # differ, debloat, runtime against real tools); scripts/test.sh runs the whole suite.
          rust-tests = pkgs.callPackage ./nix/rust-tests.nix { };
          # Fails unless every option of kernel/guest.config survives olddefconfig.
          kernel-config = guestKernel.configfile;
        };

      overlays.default = final: prev: {
        cvmkit = final.callPackage ./nix/cvmkit.nix { };
        cvmkit-runtime = final.pkgsStatic.callPackage ./nix/cvmkit.nix { crate = "cvmkit-runtime"; };
        cvmkit-guest-kernel = final.callPackage ./kernel { };
        cvmkitLib = mkLib final;
      };

      devShells.${system}.default = pkgs.mkShell {
        inputsFrom = [ cvmkit ];
        packages = [
          pkgs.qemu
          firmware.vtpm.package
          pkgs.mtools
          pkgs.dosfstools
          pkgs.cpio
          pkgs.osslsigncode
          pkgs.swtpm
          pkgs.nginx
        ];
        # `cvmkit run-local` without --firmware: OVMF with TPM support (nix/firmware.nix `vtpm`).
        CVMKIT_FIRMWARE = firmware.vtpm.file;
      };
    };
}
