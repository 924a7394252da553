# The building blocks of an image, each one `cvmkit` subcommand as a derivation (cvmkit is the
# builder: no shell, no stdenv) whose output is one file: `mkInitrd` (cvmkit initrd), `mkUki`
# (cvmkit uki), `mkDisk` (cvmkit disk), `measure` (cvmkit measure). `mkImage` does all of it in
# one `cvmkit build`; these are for images assembled another way (your own initrd, a UKI for an
# existing disk, measurements of a UKI built elsewhere). checks/offline.sh requires their
# outputs to equal mkImage's, byte for byte.
{
  util,
  schemaLib,
  modulesLib,
  initrdLib,
  imageLib,
  defaults,
}:
let
  inherit (builtins)
    attrNames
    concatMap
    isAttrs
    isInt
    isList
    isString
    substring
    toFile
    toJSON
    ;
  inherit (util)
    assertMsg
    assertOneOf
    passAsFileName
    toInput
    ;
  inherit (imageLib) specAttr renderOsRelease;

  # A derivation running `cvmkit ARGS…` with $out as its output file.
  run =
    {
      name,
      args,
      cvmkit,
      system,
      sourceDateEpoch ? 0,
      extra ? { },
    }:
    assert assertMsg (cvmkit != null) "${name}: needs `cvmkit` (the package, with bin/cvmkit)";
    assert assertMsg (isInt sourceDateEpoch && sourceDateEpoch >= 0 && sourceDateEpoch <= 4294967295) "sourceDateEpoch must be an integer from 0 to 4294967295, got ${toJSON sourceDateEpoch}";
    derivation (
      {
        inherit name system args;
        builder = "${toInput "cvmkit" cvmkit}/bin/cvmkit";
        SOURCE_DATE_EPOCH = toString sourceDateEpoch;
      }
      // extra
    );

  # `--name=value` flags from an attribute set: strings and integers as values, lists joined with
  # commas, `true` as a bare flag, `false` and null left out.
  flags =
    what: attrs:
    concatMap (
      k:
      let
        v = attrs.${k};
      in
      if v == null || v == false then
        [ ]
      else if v == true then
        [ "--${k}" ]
      else if isString v || isInt v then
        [ "--${k}=${toString v}" ]
      else if isList v then
        [ "--${k}=${builtins.concatStringsSep "," (map toString v)}" ]
      else
        throw "cvmkit: ${what}.${k} = ${toJSON v}: expected a string, an integer, a list or a boolean"
    ) (attrNames attrs);
in
{
  /**
    An initramfs from image modules: `cvmkit initrd TREES… --spec <generated> -o $out`, the same
    bytes as the `initrd.img` of `mkImage` with the same modules (and the same `hostname`, which
    `mkImage` sets to the image name).

    # Inputs

    `modules`
    : image modules (nix/modules.nix); only what goes into the initrd matters here (files,
      dirs, devices, symlinks, trees, users, workload, init, `initrd.*`)

    `name`
    : the derivation name (default `initrd.img`)

    `busybox`
    : the static busybox the base module installs (default: the library's)

    `sourceDateEpoch`
    : every mtime in the archive (default 0)

    `cvmkit`, `system`, `pkgs`
    : as for `mkImage`

    # Type

    ```
    mkInitrd :: { modules :: [Module]; … } -> Derivation   # $out is the initrd file
    ```

    # Examples

    ```nix
    lib.mkInitrd { modules = [ lib.modules.base { workload.command = [ "/bin/sh" ]; } ]; }
    => «derivation /nix/store/…-initrd.img.drv»
    ```
  */
  mkInitrd =
    {
      modules ? [ ],
      name ? "initrd.img",
      busybox ? defaults.busybox,
      sourceDateEpoch ? 0,
      cvmkit ? defaults.cvmkit,
      system ? defaults.system,
      pkgs ? defaults.pkgs,
      lib ? defaults.lib,
    }:
    let
      config = modulesLib.evalModules {
        inherit lib pkgs modules;
        prefixModules = [
          {
            _file = "<mkInitrd arguments>";
            inherit busybox;
          }
        ];
      };
      spec = initrdLib.mkInitrdSpec config;
    in
    run {
      inherit name cvmkit system sourceDateEpoch;
      args =
        [ "initrd" ]
        ++ imageLib.initrdTrees config
        ++ [
          "--spec"
          (passAsFileName specAttr)
        ]
        ++ concatMap (f: [
          "--spec"
          (toInput "initrd.specFiles" f)
        ]) config.initrd.specFiles
        ++ [ "--compress=${config.initrd.compress}" ]
        ++ (if config.initrd.preserveModes then [ "--preserve-modes" ] else [ ])
        ++ (if config.initrd.allowDanglingSymlinks then [ "--allow-dangling-symlinks" ] else [ ])
        ++ [
          "-o"
          (placeholder "out")
        ];
      extra = imageLib.initrdSpecAttrs spec;
    };

  /**
    A Unified Kernel Image: `cvmkit uki --stub … --linux … -o $out`.

    # Inputs

    `initrds`
    : initrds concatenated in order (derivations, paths), e.g. `[ (mkInitrd { … }) ]`

    `cmdline`
    : the kernel command line, verbatim (default none)

    `osRelease`
    : null, an os-release file, or attributes (`{ ID = "x"; }`, rendered as `mkImage` does)

    `kernel`, `stub`, `uname`
    : a bzImage with an EFI stub, a systemd-stub, the `.uname` text (defaults: the library's)

    `sbat`
    : null or a file of SBAT lines merged into the stub's `.sbat`

    `name`, `sourceDateEpoch` (the PE TimeDateStamp), `cvmkit`, `system`
    : as for `mkImage`

    # Type

    ```
    mkUki :: { initrds ? [Derivation]; cmdline ? String; … } -> Derivation   # $out is the UKI
    ```

    # Examples

    ```nix
    lib.mkUki { initrds = [ myInitrd ]; cmdline = "console=ttyS0"; osRelease.ID = "demo"; }
    ```
  */
  mkUki =
    {
      initrds ? [ ],
      cmdline ? "",
      osRelease ? null,
      kernel ? defaults.kernel,
      stub ? defaults.stub,
      uname ? defaults.uname,
      sbat ? null,
      name ? "uki.efi",
      sourceDateEpoch ? 0,
      cvmkit ? defaults.cvmkit,
      system ? defaults.system,
    }:
    let
      osReleaseFile =
        if osRelease == null then
          null
        else if isAttrs osRelease && !(osRelease ? outPath) then
          toFile "os-release" (renderOsRelease osRelease)
        else
          toInput "osRelease" osRelease;
      # `--cmdline @FILE` reads a file: a command line starting with @ goes through one.
      cmdlineArgs =
        if cmdline == "" then
          [ ]
        else if substring 0 1 cmdline == "@" then
          [ "--cmdline=@${toFile "cmdline" cmdline}" ]
        else
          [ "--cmdline=${cmdline}" ];
    in
    assert assertMsg (kernel != null) "mkUki: no kernel: pass `kernel` (a bzImage)";
    assert assertMsg (stub != null) "mkUki: no stub: pass `stub` (a systemd-stub, linuxx64.efi.stub)";
    assert assertMsg (isString cmdline) "mkUki: cmdline must be a string";
    run {
      inherit name cvmkit system sourceDateEpoch;
      args =
        [
          "uki"
          "--stub"
          (toInput "stub" stub)
          "--linux"
          (toInput "kernel" kernel)
        ]
        ++ concatMap (i: [
          "--initrd"
          (toInput "initrds" i)
        ]) initrds
        ++ cmdlineArgs
        ++ (if osReleaseFile == null then [ ] else [ "--os-release" osReleaseFile ])
        ++ (if uname == null then [ ] else [ "--uname=${uname}" ])
        ++ (if sbat == null then [ ] else [ "--sbat" (toInput "sbat" sbat) ])
        ++ [
          "-o"
          (placeholder "out")
        ];
    };

  /**
    A bootable GPT disk with the UKI on its ESP: `cvmkit disk --uki … --format … -o $out`.

    # Inputs

    `uki`
    : the UKI (a derivation from `mkUki`, or `image.uki`)

    `format`
    : `raw` (sparse), `gcp` (disk.raw in a tar.gz), `vhd` (Azure, fixed) or `qcow2`

    `seed`
    : text every GUID and the FAT volume id derive from (default `cvmkit`, the CLI's; `mkImage`
      uses the image name)

    `dataSize`, `espSize`, `diskSize`
    : null or sizes such as `"1G"` (an empty data partition; the ESP; the whole disk)

    `roots`
    : root filesystem images, each copied into its own partition

    `name` (default `disk.<format's extension>`), `sourceDateEpoch`, `cvmkit`, `system`
    : as for `mkImage`

    # Type

    ```
    mkDisk :: { uki; format ? String; seed ? String; … } -> Derivation   # $out is the disk
    ```
  */
  mkDisk =
    {
      uki,
      format ? "raw",
      seed ? "cvmkit",
      dataSize ? null,
      espSize ? null,
      diskSize ? null,
      roots ? [ ],
      name ? "disk.${
        {
          raw = "raw";
          gcp = "tar.gz";
          vhd = "vhd";
          qcow2 = "qcow2";
        }.${format} or "img"
      }",
      sourceDateEpoch ? 0,
      cvmkit ? defaults.cvmkit,
      system ? defaults.system,
    }:
    # The formats of the image spec's `disk.format` (the Rust enum, through the schema).
    assert assertOneOf "mkDisk format" format (schemaLib.enumValues "DiskFormat");
    run {
      inherit name cvmkit system sourceDateEpoch;
      args =
        [
          "disk"
          "--uki"
          (toInput "uki" uki)
          "--format=${format}"
          "--seed=${seed}"
        ]
        ++ concatMap (r: [
          "--root"
          (toInput "roots" r)
        ]) roots
        ++ flags "mkDisk" {
          data-size = dataSize;
          esp-size = espSize;
          disk-size = diskSize;
        }
        ++ [
          "-o"
          (placeholder "out")
        ];
    };

  /**
    One platform's measurements as a `cvmkit.measurements/v1` JSON file:
    `cvmkit measure PLATFORM … -o $out`.

    # Inputs

    `platform`
    : `tpm` (PCR 4/11 of a UKI), `tdx` (MRTD, RTMRs) or `snp` (launch digest)

    `uki`
    : the UKI (tpm; tdx with `disk`)

    `disk`
    : tdx: the raw GPT disk the UKI boots from (its GPT is measured)

    `firmware`
    : tdx, snp: OVMF (default: the library's for the platform, `firmwares.<platform>`, else its
      `firmware`)

    `settings`
    : further flags of `cvmkit measure PLATFORM` without `--`, e.g. `{ qemu-version = "9.2"; }`,
      `{ vcpus = 2; vcpu-type = "EPYC-Milan"; }`, `{ banks = [ "sha256" ]; }`; SNP direct boot
      with kernel hashes: `{ kernel = "${image.config.kernel}"; initrd = image.initrd; append = "…"; }`

    `name` (default `measurements-<platform>.json`), `cvmkit`, `system`
    : as for `mkImage`

    # Type

    ```
    measure :: { platform; uki ? Derivation; disk ? Derivation; settings ? AttrSet; … } -> Derivation
    ```

    # Examples

    ```nix
    lib.measure { platform = "tdx"; uki = image.uki; disk = lib.mkDisk { uki = image.uki; }; }
    ```
  */
  measure =
    {
      platform,
      uki ? null,
      disk ? null,
      firmware ? defaults.firmwares.${platform} or defaults.firmware,
      settings ? { },
      name ? "measurements-${platform}.json",
      cvmkit ? defaults.cvmkit,
      system ? defaults.system,
    }:
    assert assertOneOf "measure platform" platform [
      "tpm"
      "tdx"
      "snp"
    ];
    assert assertMsg (platform == "snp" || uki != null) "measure ${platform}: needs `uki`";
    assert assertMsg (platform != "tdx" || disk != null) "measure tdx: needs `disk` (a raw GPT disk holding the UKI, from mkDisk)";
    assert assertMsg (platform == "tpm" || firmware != null) "measure ${platform}: needs `firmware` (OVMF)";
    run {
      inherit name cvmkit system;
      args =
        [
          "measure"
          platform
        ]
        ++ (if uki != null && platform != "snp" then [ "--uki" (toInput "uki" uki) ] else [ ])
        ++ (if disk != null then [ "--disk" (toInput "disk" disk) ] else [ ])
        ++ (if platform != "tpm" then [ "--firmware" (toInput "firmware" firmware) ] else [ ])
        ++ flags "measure.settings" settings
        ++ [
          "-o"
          (placeholder "out")
        ];
    };
}
