/**
  cvmkit's Nix library: composable image modules, their merge, the generated initrd spec and
  `mkImage`, which builds an image with `cvmkit build` as the derivation's builder.

  Everything here needs only `builtins`: nixpkgs is optional. The arguments are the defaults of
  `mkImage` (the flake passes nixpkgs' packages; checks/offline.nix passes Debian's files added
  to the store), so a per-system library builds images in a few lines:

  ```nix
  lib = import ./nix { inherit pkgs; cvmkit = …; kernel = …; stub = …; busybox = …; };
  lib.mkImage { name = "demo"; modules = [ lib.modules.base lib.modules.qemu ]; }
  ```

  # Inputs

  `pkgs`
  : nixpkgs or null; handed to function modules as `pkgs`

  `cvmkit`, `kernel`, `stub`, `busybox`, `firmware`, `uname`, `runtime`
  : defaults of the `mkImage` arguments of the same names

  `firmwares`
  : the firmware per platform, `{ tdx ? …; snp ? …; }` (the flake's come from nix/firmware.nix):
    an image of that platform is measured against it; `firmware` serves the rest

  `components`
  : packages described in every image's SBOM (derivations or attribute sets: see
    `describeComponent`), default none

  `system`
  : the Nix system images build for (default x86_64-linux)

  # Type

  ```
  import ./nix :: AttrSet -> Lib
  ```
*/
{
  pkgs ? null,
  cvmkit ? null,
  kernel ? null,
  stub ? null,
  busybox ? null,
  firmware ? null,
  firmwares ? { },
  uname ? null,
  runtime ? null,
  components ? [ ],
  system ? "x86_64-linux",
}:
let
  util = import ./util.nix;
  schemaLib = import ./schema.nix;
  modulesLib = import ./modules.nix { inherit util; };
  initrdLib = import ./initrd.nix { inherit util; };
  defaults = {
    inherit
      pkgs
      cvmkit
      kernel
      stub
      busybox
      firmware
      firmwares
      uname
      runtime
      components
      system
      ;
    lib = self;
  };
  imageLib = import ./image.nix {
    inherit
      util
      schemaLib
      modulesLib
      initrdLib
      defaults
      ;
  };
  blocksLib = import ./blocks.nix {
    inherit
      util
      schemaLib
      modulesLib
      initrdLib
      imageLib
      defaults
      ;
  };

  self = {
    inherit (imageLib)
      mkImage
      mkGoldenCheck
      mkProvenance
      describeComponent
      mkSpec
      renderOsRelease
      specExtensions
      specAttr
      ;
    inherit (initrdLib) mkInitrdSpec fileLocation;
    inherit (blocksLib)
      mkInitrd
      mkUki
      mkDisk
      measure
      ;
    inherit (modulesLib) options mergeDefs;
    inherit util;
    # The committed cvmkit.image/v1 JSON Schema and its validator (nix/schema.nix).
    schema = schemaLib;
    inherit (schemaLib) specErrors checkSpec;
    inherit (util)
      assertMsg
      assertOneOf
      shellQuote
      concatLines
      passAsFileName
      toNix32
      ;

    /**
      `evalModules` (nix/modules.nix) with this library and its `pkgs` handed to the modules.

      # Type

      ```
      evalModules :: { modules :: [Module]; pkgs ? Pkgs } -> AttrSet
      ```

      # Examples

      ```nix
      (lib.evalModules { modules = [ lib.modules.qemu ]; }).cmdline => [ "console=ttyS0" "no_timer_check" ]
      ```
    */
    evalModules =
      {
        modules,
        pkgs ? defaults.pkgs,
      }:
      modulesLib.evalModules {
        inherit modules pkgs;
        lib = self;
      };

    /**
      The modules shipped in `modules/`, by name (paths, so errors name their file):
      `base` (busybox init), `qemu`, `gcp`, `azure` (cloud profiles), `devtools` (debug
      shell), `tdx`, `snp` (platform), `runtime` (the in-image runtime, started by the base init).

      # Type

      ```
      modules :: { <name> :: Path }
      ```
    */
    modules = import ../modules;

    /**
      This library with other defaults, like a nixpkgs scope's `override`.

      # Type

      ```
      override :: AttrSet -> Lib
      ```

      # Examples

      ```nix
      (lib.override { kernel = myKernel; }).mkImage { … }
      ```
    */
    override =
      newArgs:
      import ./default.nix (
        {
          inherit
            pkgs
            cvmkit
            kernel
            stub
            busybox
            firmware
            firmwares
            uname
            runtime
            components
            system
            ;
        }
        // newArgs
      );

    /**
      The defaults this library was made with (`mkImage` arguments).
    */
    defaults = removeAttrs defaults [ "lib" ];
  };
in
self
