# Images of checks/offline.sh: cvmkit's Nix library (nix/) exactly as the flake uses it, fed with
# no nixpkgs: Debian's kernel, systemd-stub, OVMF and busybox-static, and a static cvmkit built by
# cargo, all added to the store by offline.sh with `nix-store --add-fixed`, so the fixed-output
# derivations below are already valid and never run their builder.
#
#   nix-build checks/offline.nix --argstr inputsJSON "$(cat inputs.json)" -A example
#
# inputs.json (written by offline.sh):
#   { "cvmkit": { "name": "cvmkit-0.1.0", "sha256": "<nar hash>" },      # directory with bin/cvmkit
#     "runtime": { "name": "cvmkit-runtime-0.1.0", "sha256": "<nar hash>" }, # bin/cvmkit-runtime
#     "kernel" | "stub" | "ovmf" | "busybox": { "name": "<file name>", "sha256": "<file hash>" },
#     "ovmfAmdSev": { … },   # cvmkit-ovmf's AmdSev OVMF suffix fixture, for checks/stub-nixpkgs' snp firmware
#     "kernelModules": [ { "name": "virtio_net.ko", "sha256": "…" }, … ],   # load order
#     "uname": "6.1.0-…-amd64" }
{ inputsJSON }:
let
  inputs = builtins.fromJSON inputsJSON;
  system = "x86_64-linux";

  # A file or directory that offline.sh put in the store with `nix-store --add-fixed`: the same
  # name and hash make this fixed-output derivation valid without building.
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
        "echo 'checks/offline.nix: ${name} is not in the store; checks/offline.sh adds it with nix-store --add-fixed' >&2; exit 1"
      ];
      outputHashMode = if recursive then "recursive" else "flat";
      outputHashAlgo = "sha256";
      outputHash = sha256;
    };

  cvmkit = fixed (inputs.cvmkit // { recursive = true; });
  runtime = fixed (inputs.runtime // { recursive = true; });
  kernel = fixed inputs.kernel;
  stub = fixed inputs.stub;
  ovmf = fixed inputs.ovmf;
  busybox = fixed inputs.busybox;
  kernelModules = map fixed inputs.kernelModules;

  lib = import ../nix {
    inherit
      cvmkit
      kernel
      stub
      busybox
      runtime
      ;
    firmware = ovmf;
    inherit (inputs) uname;
    # The SBOM's package metadata, as the flake's comes from nixpkgs' `meta` (Debian's files
    # carry none: written here from their packages' copyright files).
    components = [
      { path = kernel; name = "linux"; version = inputs.uname; licenses = [ "GPL-2.0-only" ]; }
      { path = stub; name = "systemd-stub"; licenses = [ "LGPL-2.1-or-later" ]; }
      { path = busybox; name = "busybox"; licenses = [ "GPL-2.0-only" ]; }
      { path = ovmf; name = "OVMF"; licenses = [ "BSD-2-Clause-Patent" ]; }
      runtime
    ];
  };

  # examples/minimal as an image module: the same entries as its initrd.spec plus the tree that
  # scripts/example.sh stages (bin/busybox, init), the same command line (the file, newline
  # included, as `--cmdline @FILE` reads it) and os-release. offline.sh checks that the UKI is
  # bit-identical to the one `cvmkit initrd` + `cvmkit uki` make from examples/minimal.
  exampleModule = {
    _file = "checks/offline.nix (examples/minimal)";
    files = {
      "/init" = {
        source = ../examples/minimal/init;
        mode = "0755";
      };
      "/bin/busybox" = {
        source = busybox;
        mode = "0755";
      };
    };
    dirs = {
      "/dev" = { };
      "/proc".mode = "0555";
      "/sys".mode = "0555";
      "/tmp".mode = "1777";
    };
    devices = {
      "/dev/console" = {
        type = "c";
        major = 5;
        minor = 1;
        mode = "0600";
      };
      "/dev/null" = {
        type = "c";
        major = 1;
        minor = 3;
        mode = "0666";
      };
    };
    symlinks."/bin/sh" = "busybox";
    cmdline = [ (builtins.readFile ../examples/minimal/cmdline) ];
    osRelease = ../examples/minimal/os-release;
  };

  # The base module booted under QEMU: Debian's kernel has virtio as modules, so they are loaded
  # with `kernelModules`; the workload prints what the boot test looks for, then the image powers off.
  bootModule = {
    _file = "checks/offline.nix (boot test)";
    inherit kernelModules;
    cmdline = [ "panic=-1" ];
    init.commands = [ "echo CVMKIT-COMMANDS-OK" ];
    init.services.marker = "echo CVMKIT-SERVICE-OK";
    workload.command = [
      "/bin/sh"
      "-c"
      "sleep 1; grep -q ' /dev devtmpfs' /proc/mounts && grep -q ' /run tmpfs' /proc/mounts && grep -q ' /tmp tmpfs' /proc/mounts && echo CVMKIT-MOUNTS-OK; echo CVMKIT-HOSTNAME=$(hostname); ifconfig eth0 | grep 'inet addr'; route -n | grep '^0.0.0.0'; cat /etc/resolv.conf; echo CVMKIT-WORKLOAD-OK"
    ];
  };
  # The runtime image booted by `cvmkit run-local`: the base init starts cvmkit-runtime, which
  # asks the QEMU host service (10.0.2.2:8090, forwarded by run-local to its own server) for the
  # manifest. TCG boots slowly: discovery waits up to 5 minutes.
  runtimeModule = {
    _file = "checks/offline.nix (runtime)";
    inherit kernelModules;
    cmdline = [ "panic=-1" ];
    runtime.settings.discover-wait-secs = 300;
  };
  staticModule = {
    _file = "checks/offline.nix (static ip=)";
    cmdline = [ "ip=10.0.2.15::10.0.2.2:255.255.255.0:cvmstatic:eth0:off:10.0.2.3" ];
  };
in
{
  inherit lib;
  inherit (lib) mkImage;

  example = lib.mkImage {
    name = "cvmkit-example";
    modules = [ exampleModule ];
  };
  # With the disk and the measurements, as the flake's images.
  example-full = lib.mkImage {
    name = "cvmkit-example-full";
    modules = [ exampleModule lib.modules.tdx { measure.qemu_version = "9.2"; } ];
    specExtensions = { inherit (lib.specExtensions) disk measure; };
  };
  # Its provenance statement (nix/image.nix mkProvenance), naming this checkout's flake.lock.
  example-provenance = lib.mkProvenance {
    image = lib.mkImage {
      name = "cvmkit-example-full";
      modules = [ exampleModule lib.modules.tdx { measure.qemu_version = "9.2"; } ];
      specExtensions = { inherit (lib.specExtensions) disk measure; };
    };
    flake = "github:cvmkit/cvmkit";
    flakeLock = ../flake.lock;
    rev = "0123456789abcdef0123456789abcdef01234567";
  };
  # The same image as a different derivation: its outputs must be identical.
  exampleSalted = (lib.mkImage {
    name = "cvmkit-example";
    modules = [ exampleModule ];
  }).withSalt "rebuild";

  boot-dhcp = lib.mkImage {
    name = "cvmkit-boot-dhcp";
    modules = [
      lib.modules.base
      lib.modules.qemu
      lib.modules.tdx
      bootModule
    ];
  };
  boot-static = lib.mkImage {
    name = "cvmkit-boot-static";
    modules = [
      lib.modules.base
      lib.modules.qemu
      lib.modules.snp
      bootModule
      staticModule
    ];
  };
  # The building blocks (nix/blocks.nix), one cvmkit subcommand each, on examples/minimal:
  # offline.sh requires them to equal the outputs of `example` and `example-full`.
  blocks = rec {
    initrd = lib.mkInitrd { modules = [ exampleModule ]; };
    uki = lib.mkUki {
      initrds = [ initrd ];
      cmdline = builtins.readFile ../examples/minimal/cmdline;
      osRelease = ../examples/minimal/os-release;
    };
    disk = lib.mkDisk {
      inherit uki;
      seed = "cvmkit-example-full";
    };
    tpm = lib.measure {
      platform = "tpm";
      inherit uki;
    };
    tdx = lib.measure {
      platform = "tdx";
      inherit uki disk;
      settings.qemu-version = "9.2";
    };
  };

  runtime-qemu = lib.mkImage {
    name = "cvmkit-runtime-qemu";
    modules = [
      lib.modules.base
      lib.modules.qemu
      lib.modules.tdx
      lib.modules.runtime
      runtimeModule
    ];
  };
  # Every shipped module at once (evaluation and build, not booted).
  all-modules = lib.mkImage {
    name = "cvmkit-all-modules";
    modules = [
      lib.modules.base
      lib.modules.azure
      lib.modules.tdx
      lib.modules.devtools
      { workload.command = [ "/bin/true" ]; }
    ];
  };
}
