# A stand-in for nixpkgs, for checks/offline.sh only (nixpkgs cannot be fetched there). It offers
# just the attributes cvmkit's flake.nix uses, each built from the Debian inputs and the static
# cvmkit that offline.sh put in the store (listed in an inputs.json it copies next to this file),
# with busybox as the only shell. So `nix flake check`, `nix build .#tdx-qemu` and
# `nix run .#measure` exercise flake.nix's own wiring and the image derivations for real; what
# this cannot show is that the nixpkgs attributes themselves (systemd's stub path,
# pkgsStatic.busybox, linuxManualConfig, …) behave as assumed: that needs real nixpkgs.
#
#   nix flake check path:<cvmkit> --override-input nixpkgs path:<copy of this dir + inputs.json>
{
  description = "stand-in nixpkgs for cvmkit's offline checks";

  outputs =
    { self }:
    let
      system = "x86_64-linux";
      inputs = builtins.fromJSON (builtins.readFile ./inputs.json);

      # A path offline.sh added with `nix-store --add-fixed`; valid, so never built.
      fixed =
        {
          name,
          sha256,
          recursive ? false,
          ...
        }:
        derivation {
          inherit name system;
          builder = "/bin/sh";
          args = [
            "-c"
            "echo 'stub-nixpkgs: ${name} is not in the store (checks/offline.sh adds it)' >&2; exit 1"
          ];
          outputHashMode = if recursive then "recursive" else "flat";
          outputHashAlgo = "sha256";
          outputHash = sha256;
        };
      flat = name: fixed inputs.${name};

      # A derivation whose builder is a busybox shell script, with busybox's applets on PATH.
      sh =
        name: env: script:
        derivation (
          {
            inherit name system;
            builder = "${pkgsStatic.busybox}/bin/busybox";
            args = [
              "sh"
              "-c"
              script
            ];
            PATH = "${applets}/bin";
          }
          // env
        );
      pkgsStatic = {
        # busybox as nixpkgs lays it out ($out/bin/busybox): a builder must be called busybox.
        busybox = fixed (inputs.busyboxTree // { recursive = true; });
        # For examples/downstream: a stand-in workload package with bin/hello (not run).
        hello = sh "hello" { } "mkdir -p $out/bin && echo 'stand-in for hello' > $out/bin/hello && chmod 0555 $out/bin/hello";
        # The static runtime (nix/cvmkit.nix with crate = "cvmkit-runtime"): offline.sh's
        # static cargo build.
        callPackage =
          fn: args:
          if baseNameOf (toString fn) == "cvmkit.nix" && (args.crate or "") == "cvmkit-runtime" then
            fixed (inputs.runtime // { recursive = true; })
          else
            throw "stub-nixpkgs: pkgsStatic.callPackage ${baseNameOf (toString fn)} is not stood in for";
      };
      applets = derivation {
        name = "busybox-applets";
        inherit system;
        builder = "${pkgsStatic.busybox}/bin/busybox";
        args = [
          "sh"
          "-c"
          "b=${pkgsStatic.busybox}/bin/busybox; $b mkdir -p $out/bin && for a in $($b --list); do $b ln -s $b $out/bin/$a; done"
        ];
      };
      # A directory holding one input file at REL (as the nixpkgs package would).
      tree =
        name: rel: file:
        sh name { } "mkdir -p $out/$(dirname ${rel}) && cp ${file} $out/${rel}";

      cvmkit = fixed (inputs.cvmkit // { recursive = true; });
      kernel =
        tree "linux-${inputs.uname}" "bzImage" (flat "kernel")
        // {
          modDirVersion = inputs.uname;
          # Stand-in only: the real check runs kernel/mkconfig.sh on the kernel.org source;
          # offline.sh runs it separately on Debian's linux-source.
          configfile = sh "guest-kernel-config-stand-in" { } "echo 'stand-in for kernel.configfile' > $out";
        };
      systemd = tree "systemd" "lib/systemd/boot/efi/linuxx64.efi.stub" (flat "stub");
      # OVMF as nix/firmware.nix uses it: `override`, `overrideAttrs` and `$fd/FV/OVMF.fd`.
      # Stand-ins: Debian's OVMF.fd for the default build and for `tpmSupport = true` (tdx, vtpm);
      # for `projectDscPath = "OvmfPkg/AmdSev/AmdSevX64.dsc"` (snp), the 4 KiB AmdSev suffix
      # fixture of rust/crates/cvmkit-ovmf/tests/fixtures (its SNP_KERNEL_HASHES page is what the
      # snp images' `kernel_hashes` measurement needs; it is no bootable firmware).
      # overrideAttrs changes nothing here.
      ovmfStandIn =
        name: file:
        let
          ovmf = {
            fd = tree "${name}-fd" "FV/OVMF.fd" file;
            override =
              args:
              if (args.projectDscPath or null) == "OvmfPkg/AmdSev/AmdSevX64.dsc" then
                ovmfStandIn "OVMF-amdsev-stand-in" (flat "ovmfAmdSev")
              else
                ovmf;
            overrideAttrs = _: ovmf;
          };
        in
        ovmf;
      OVMF = ovmfStandIn "OVMF" (flat "ovmf");
      # nix/nginx-static.nix: stand-in only (the flake's images are built, not booted, here;
      # Debian's nginx is dynamically linked and could not run in an image).
      nginxStatic = sh "nginx-static-stand-in" { } "mkdir -p $out/bin && echo 'stand-in for nix/nginx-static.nix' > $out/bin/nginx && chmod 0555 $out/bin/nginx";

      pkgs = {
        inherit
          system
          pkgsStatic
          systemd
          OVMF
          ;
        stdenv.hostPlatform = {
          inherit system;
          efiArch = "x64";
          linux-kernel.target = "bzImage";
        };
        callPackage =
          fn: _args:
          let
            what = baseNameOf (toString fn);
          in
          if what == "cvmkit.nix" then
            cvmkit
          else if what == "kernel" then
            kernel
          else if what == "nginx-static.nix" then
            nginxStatic
          else if what == "rust-tests.nix" then
            # Stand-in only: the sandbox here has no Rust toolchain; offline.sh's caller
            # (scripts/test.sh) runs the same tests with cargo.
            sh "cvmkit-rust-tests-stand-in" { } "echo 'stand-in for the rust-tests check' > $out"
          else
            throw "stub-nixpkgs: callPackage ${what} is not stood in for";
        writeShellScriptBin =
          name: text:
          sh name {
            inherit text;
            passAsFile = [ "text" ];
          } "mkdir -p $out/bin && { echo '#!${applets}/bin/sh'; cat $textPath; } > $out/bin/${name} && chmod 0555 $out/bin/${name}";
        runCommand = name: env: script: sh name env script;
        mkShell = args: sh "stand-in-shell" { } "echo stand-in > $out";
        # Stand-ins: offline.sh runs `nix run .#run-local` on the host's own QEMU (PATH).
        qemu = applets;
        swtpm = applets;
        mtools = applets;
        dosfstools = applets;
        cpio = applets;
        osslsigncode = applets;
      };
    in
    {
      legacyPackages.${system} = pkgs;
    };
}
