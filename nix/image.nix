# Images: merged module config -> the JSON spec of `cvmkit build` -> a derivation whose builder is
# cvmkit itself (no shell, no stdenv), so the same function builds with nixpkgs' inputs in the
# flake and with Debian's inputs in checks/offline.sh.
{
  util,
  schemaLib,
  modulesLib,
  initrdLib,
  defaults,
}:
let
  inherit (builtins)
    attrNames
    concatStringsSep
    filter
    isAttrs
    isInt
    isList
    isString
    listToAttrs
    map
    mapAttrs
    match
    replaceStrings
    toFile
    toJSON
    ;
  inherit (util)
    assertMsg
    assertOneOf
    passAsFileName
    toInput
    ;
in
rec {
  /**
    The `passAsFile` attribute that carries the generated initrd spec into the build.
  */
  specAttr = "cvmkitInitrdSpec";

  /**
    The directory trees of an image's initrd, in merge order: `trees`, then the workload's
    package (merged at `/`).

    # Type

    ```
    initrdTrees :: AttrSet -> [String]
    ```
  */
  initrdTrees =
    config:
    let
      w = config.workload;
    in
    map (toInput "trees") config.trees
    ++ (if w != null && (w.package or null) != null then [ (toInput "workload.package" w.package) ] else [ ]);

  /**
    The derivation attributes that carry a generated initrd spec (`mkInitrdSpec`) into the build:
    the spec as `specAttr`, and its text files that name store paths, all with `passAsFile`.

    # Type

    ```
    initrdSpecAttrs :: { text, passFiles, … } -> AttrSet
    ```
  */
  initrdSpecAttrs =
    initrdSpec:
    {
      ${specAttr} = initrdSpec.text;
      passAsFile = [ specAttr ] ++ map (f: f.name) initrdSpec.passFiles;
    }
    // listToAttrs (
      map (f: {
        inherit (f) name;
        value = f.text;
      }) initrdSpec.passFiles
    );

  /**
    Renders os-release fields as os-release(5) text: `KEY="value"` lines sorted by key, with
    `"`, `\`, `$` and backtick escaped.

    # Inputs

    `fields`
    : attribute set of strings (or integers)

    # Type

    ```
    renderOsRelease :: AttrSet -> String
    ```

    # Examples

    ```nix
    renderOsRelease { ID = "cvmkit"; VERSION_ID = 1; }
    => "ID=\"cvmkit\"\nVERSION_ID=\"1\"\n"
    ```
  */
  renderOsRelease =
    fields:
    util.concatLines (
      map (
        k:
        assert assertMsg (match "[A-Z][A-Z0-9_]*" k != null) "osRelease key ${toJSON k} is not an os-release variable name (A-Z, 0-9, _)";
        "${k}=\"${
          replaceStrings [ "\\" "\"" "$" "`" ] [ "\\\\" "\\\"" "\\$" "\\`" ] (toString fields.${k})
        }\""
      ) (attrNames fields)
    );

  /**
    Optional spec keys, each computed from the config: `mkImage` adds none by default;
    `specExtensions = { inherit (lib.specExtensions) disk measure; }` adds the disk image and
    measurements.json to an image's outputs (`disk` and `measure` of the `cvmkit.image/v1`
    spec, whose definition is the Rust types of rust/crates/cvmkit-image and, generated from
    them, nix/cvmkit.image.v1.schema.json).

    # Type

    ```
    specExtensions :: { <key> :: (config -> JSON value) }
    ```
  */
  specExtensions = {
    # The disk image to write around the UKI: raw GPT with an ESP, GCP's disk.raw in a
    # tar.gz, Azure's fixed VHD, or qcow2.
    disk = config: { inherit (config.disk) format; };
    # Inputs of the measurements to predict (firmware and platform, plus free-form settings such
    # as vcpus and vcpu_type for SEV-SNP).
    # TPM PCRs always (vTPM clouds, QEMU + swtpm); the image's platform (tdx, snp) too when a
    # firmware is known, with the module's `measure` settings (memory, qemu_version, vcpus, …).
    # With the runtime in the image (modules/runtime.nix), each document's notes say how the
    # workload manifest reaches the registers, so measurements.json tells a verifier the whole
    # story: image registers here, manifest registers from `cvmkit-runtime events`.
    measure =
      config:
      let
        withNotes = item: notes: item // (if notes == [ ] then { } else { inherit notes; });
        hasRuntime = config.files ? "/usr/bin/cvmkit-runtime";
        # `measure.target` (modules/gcp.nix, modules/azure.nix): which firmware boots the image,
        # so which registers the build can predict; every document of the image gets it.
        onCloud = (config.measure.target or "qemu") != "qemu";
        targetOf = if config.measure ? target then { inherit (config.measure) target; } else { };
        runtimeNote =
          register:
          "cvmkit-runtime extends ${register} at boot, before any workload runs, with one event per workload (cvmkit-runtime/v1 workload=N port=P sha256=<hex>) and then the hostnames; the expected value is `cvmkit-runtime events --manifest <the base64 manifest you deployed> [--hostname <list>]`, and the runtime runs only apps whose sha256 equals the manifest's";
        notesFor =
          platform:
          if !hasRuntime then
            [ ]
          else if platform == "tpm" then
            [ (runtimeNote "PCR 15 (SHA-256 bank)") ]
          else if platform == "tdx" then
            [ (runtimeNote "RTMR3 (Linux >= 6.16 exposes it; on older kernels the runtime uses the vTPM, if any, and leaves RTMR3 zero)") ]
          else
            [ "the launch digest pins the image and with it cvmkit-runtime, which runs only apps whose sha256 equals the manifest's; SEV-SNP has no runtime register: with a vTPM, see the tpm document's PCR 15" ];
      in
      [ (withNotes ({ platform = "tpm"; } // targetOf) (notesFor "tpm")) ]
      ++ (
        if config.platform != null && onCloud then
          # A cloud boots its own firmware: the build's is not an input of the prediction.
          [ (withNotes ({ inherit (config) platform; } // config.measure) (notesFor config.platform)) ]
        else if config.platform != null && config.firmware != null then
          [
            (withNotes (
              { inherit (config) platform; firmware = toInput "firmware" config.firmware; } // config.measure
            ) (notesFor config.platform))
          ]
        else
          [ ]
      );
  };

  /**
    What the SBOM (`sbom.cdx.json`) says about a package beyond its bytes, from a derivation:
    `path` (its store path: the image inputs and initrd files under it are this package), `name`
    (`pname`, else the name without its version), `version`, `licenses` (`meta.license`'s SPDX
    ids, else short names), `source` (`src`'s URL and `outputHash`, the fixed-output hash Nix
    checked) and, for a kernel with one, `config` (its `configfile`, hashed into the SBOM).
    An attribute set with `path` is taken as already described (missing keys stay out).

    # Inputs

    `c`
    : a derivation (or one of its outputs), or `{ path; name ? …; version ? …; licenses ? [ ];
      source ? { url; hash; }; config ? …; }`

    # Type

    ```
    describeComponent :: (Derivation | AttrSet) -> AttrSet
    ```

    # Examples

    ```nix
    describeComponent pkgs.pkgsStatic.busybox
    => { path = "/nix/store/…-busybox-static-…-1.36.1"; name = "busybox"; version = "1.36.1";
         licenses = [ "GPL-2.0-only" ]; source = { url = "https://busybox.net/…"; hash = "sha256-…"; }; }
    ```
  */
  describeComponent =
    c:
    let
      isDrv = isAttrs c && (c.type or null) == "derivation";
      plain = s: builtins.unsafeDiscardStringContext (toString s);
      nonNull = attrs: builtins.removeAttrs attrs (filter (k: attrs.${k} == null) (attrNames attrs));
      licenseList =
        l:
        if l == null then [ ] else if isList l then l else [ l ];
      licenseName = l: if isString l then l else l.spdxId or l.shortName or l.fullName or "unknown";
      src = c.src or null;
      srcUrl =
        if src == null || !(isAttrs src) then
          null
        else if src ? url && isString src.url then
          plain src.url
        else if (src.urls or [ ]) != [ ] then
          plain (builtins.head src.urls)
        else
          null;
      srcHash = if src != null && isAttrs src && src ? outputHash then plain src.outputHash else null;
      parsed = builtins.parseDrvName (c.name or "");
    in
    # `path` without its string context: naming a package in the SBOM must not make every image
    # depend on it (the flake names both platforms' firmware; a TDX image must not build the
    # SNP one). Only `config`, which cvmkit reads, stays a dependency.
    if isDrv then
      nonNull {
        path = plain "${c}";
        name = c.pname or parsed.name;
        version = c.version or (if parsed.version == "" then null else parsed.version);
        licenses = map licenseName (licenseList (c.meta.license or null));
        source = if srcUrl == null && srcHash == null then null else nonNull { url = srcUrl; hash = srcHash; };
        config = if c ? configfile && c.configfile != null then "${c.configfile}" else null;
      }
    else
      assert assertMsg (isAttrs c && c ? path) "a component is a derivation or an attribute set with `path`, got ${builtins.typeOf c}";
      c // { path = plain (toInput "components.path" c.path); };

  /**
    The `cvmkit.image/v1` spec (the types of `rust/crates/cvmkit-image`, as JSON Schema in
    `nix/cvmkit.image.v1.schema.json`; the library tests validate this function's output
    against it) for a merged config.
    Store paths keep their string context, so `builtins.toJSON` of the result makes every
    input a dependency of whatever uses it. The initrd spec is named by its `passAsFile`
    name, relative to the build directory.

    # Inputs

    `name`
    : the image name

    `config`
    : a config from `evalModules`

    `sourceDateEpoch`
    : the one timestamp of the outputs (integer, default 0)

    `specExtensions`
    : further top-level keys, each computed from the config (see `specExtensions`)

    `components`
    : packages for the SBOM (derivations or attribute sets, see `describeComponent`); the
      workload's package is added when it is a derivation

    # Type

    ```
    mkSpec :: { name, config, sourceDateEpoch ? 0, specExtensions ? {}, components ? [] } -> AttrSet
    ```

    # Examples

    ```nix
    mkSpec { name = "demo"; config = …; }
    => { schema = "cvmkit.image/v1"; name = "demo"; source_date_epoch = 0;
         initrd = { compress = "zstd"; spec_files = [ ".attr-…" ]; trees = [ ]; … };
         uki = { cmdline = "console=ttyS0"; kernel = "/nix/store/…"; stub = "/nix/store/…"; }; }
    ```
  */
  mkSpec =
    {
      name,
      config,
      sourceDateEpoch ? 0,
      specExtensions ? { },
      components ? [ ],
    }:
    let
      osRelease = config.osRelease;
      w = config.workload;
      workloadPackage = if w != null && isAttrs (w.package or null) && (w.package.type or null) == "derivation" then [ w.package ] else [ ];
      described = map describeComponent (components ++ workloadPackage);
      osReleaseFile =
        if isAttrs osRelease && !(osRelease ? outPath) then
          (if osRelease == { } then null else toFile "os-release" (renderOsRelease osRelease))
        else
          toInput "osRelease" osRelease;
      cmdline = concatStringsSep " " config.cmdline;
      optional = cond: attrs: if cond then attrs else { };
    in
    assert assertMsg (config.kernel != null) "image ${name} has no kernel: pass `kernel` to mkImage or set it in a module";
    assert assertMsg (config.stub != null) "image ${name} has no stub: pass `stub` (a systemd-stub, linuxx64.efi.stub) to mkImage or set it in a module";
    assert assertMsg (isInt sourceDateEpoch && sourceDateEpoch >= 0 && sourceDateEpoch <= 4294967295) "sourceDateEpoch must be an integer from 0 to 4294967295, got ${toJSON sourceDateEpoch}";
    assert assertMsg (isList config.cmdline && builtins.all isString config.cmdline) "cmdline must be a list of strings";
    assert assertMsg (match "(none|gzip|zstd)(:[0-9]+)?" config.initrd.compress != null) "initrd.compress is ${toJSON config.initrd.compress}; expected none, gzip, zstd, or one of them with a level (zstd:19)";
    assert assertOneOf "disk.format" config.disk.format (schemaLib.enumValues "DiskFormat");
    assert assertOneOf "platform" config.platform [
      null
      "tdx"
      "snp"
    ];
    {
      schema = "cvmkit.image/v1";
      inherit name;
      source_date_epoch = sourceDateEpoch;
      initrd = {
        trees = initrdTrees config;
        spec_files = [ (passAsFileName specAttr) ] ++ map (toInput "initrd.specFiles") config.initrd.specFiles;
        inherit (config.initrd) compress;
        preserve_modes = config.initrd.preserveModes;
        allow_dangling_symlinks = config.initrd.allowDanglingSymlinks;
      };
      uki =
        {
          stub = toInput "stub" config.stub;
          kernel = toInput "kernel" config.kernel;
        }
        // optional (config.cmdline != [ ]) { inherit cmdline; }
        // optional (osReleaseFile != null) { os_release = osReleaseFile; }
        // optional (config.uname != null) { inherit (config) uname; }
        // optional (config.initrd.extra != [ ]) {
          extra_initrds = map (toInput "initrd.extra") config.initrd.extra;
        };
    }
    // optional (described != [ ]) { components = described; }
    // mapAttrs (_: f: f config) specExtensions;

  /**
    The firmware an image is measured against: the first that is not null of a module's
    `firmware`, mkImage's explicit `firmware` argument, `firmwares.<platform>` (images with a
    platform), and the library's `firmware`.

    # Inputs

    `platform`
    : null, `"tdx"` or `"snp"`

    `moduleFirmware`, `firmware`
    : the merged modules' `firmware` and an explicit mkImage argument (null when not given)

    `firmwares`
    : firmware by platform name

    `default`
    : the fallback (the library's `firmware`)

    # Type

    ```
    firmwareFor :: { platform; moduleFirmware; firmware; firmwares; default; } -> Firmware or null
    ```

    # Examples

    ```nix
    firmwareFor { platform = "snp"; moduleFirmware = null; firmware = null; firmwares.snp = amdsev; default = ovmf; }
    => amdsev
    ```
  */
  firmwareFor =
    {
      platform,
      moduleFirmware,
      firmware,
      firmwares,
      default,
    }:
    if moduleFirmware != null then
      moduleFirmware
    else if firmware != null then
      firmware
    else if platform != null && firmwares ? ${platform} then
      firmwares.${platform}
    else
      default;

  /**
    Builds an image: the modules are merged (`evalModules`), turned into an initrd spec
    (`mkInitrdSpec`) and a `cvmkit.image/v1` spec (`mkSpec`), and a raw `derivation` runs
    `cvmkit build --spec-json SPEC --out $out` with cvmkit itself as the builder: no shell, no
    stdenv. The output directory holds `initrd.img` and `uki.efi`, and with `specExtensions` the
    disk image (`disk.<format's extension>`) and `measurements.json`.

    The arguments `kernel`, `stub`, `busybox`, `uname` and `runtime` become a first module, so
    modules may override them. The firmware the measurements use is, first to last: a module's
    `firmware`, the `firmware` argument when given, `firmwares.<platform>` for an image with a
    platform, then the library's `firmware` (see `firmwareFor`). The generated initrd spec is passed with `passAsFile`
    (it names store paths of derivation outputs, which `builtins.toFile` cannot); text files
    without store references become `builtins.toFile` store paths.

    # Inputs

    `name`
    : image and derivation name (store-path characters)

    `modules`
    : image modules (see nix/modules.nix); order matters for the merge

    `cvmkit`
    : the cvmkit package (a directory with `bin/cvmkit`, statically linked when built outside Nix)

    `kernel`, `stub`, `busybox`, `firmware`
    : image inputs: a bzImage, a systemd-stub (`linuxx64.efi.stub`), a static busybox binary,
      the firmware (OVMF, for measurements); paths, derivations or store path strings

    `firmwares`
    : the firmware per platform (`{ tdx = …; snp = …; }`, default: the library's), used unless a
      module or the `firmware` argument names one

    `uname`
    : the `.uname` section (the kernel release), or null

    `runtime`
    : the static cvmkit-runtime package, for modules/runtime.nix (`runtime.package`), or null

    `sourceDateEpoch`
    : every timestamp in the outputs (default 0)

    `specExtensions`
    : extra spec keys (see `specExtensions`), default none

    `components`
    : packages described in the image's SBOM (`sbom.cdx.json`, which every build writes):
      derivations or attribute sets (`describeComponent`); default the library's (the flake
      names its kernel, systemd, busybox, runtime, nginx and firmware packages). The workload's
      package is added when it is a derivation. Packages whose files are not in the image are
      left out of the SBOM.

    `salt`
    : null, or any string: added as an unused attribute so the same image builds again as a
      different derivation (reproducibility checks)

    `system`
    : the Nix system of the build (default x86_64-linux)

    `pkgs`
    : nixpkgs or null, handed to function modules

    # Type

    ```
    mkImage :: AttrSet -> Derivation
    ```

    # Examples

    ```nix
    cvmkit.lib.x86_64-linux.mkImage {
      name = "hello-cvm";
      modules = with cvmkit.lib.x86_64-linux.modules; [ base qemu {
        workload = { package = pkgs.pkgsStatic.hello; command = [ "/bin/hello" ]; };
      } ];
    }
    => «derivation /nix/store/…-hello-cvm.drv»   # $out/uki.efi, $out/initrd.img
    ```
  */
  mkImage =
    {
      name,
      modules ? [ ],
      cvmkit ? defaults.cvmkit,
      kernel ? defaults.kernel,
      stub ? defaults.stub,
      busybox ? defaults.busybox,
      firmware ? defaults.firmware,
      firmwares ? defaults.firmwares,
      uname ? defaults.uname,
      runtime ? defaults.runtime,
      sourceDateEpoch ? 0,
      specExtensions ? { },
      components ? defaults.components,
      salt ? null,
      system ? defaults.system,
      pkgs ? defaults.pkgs,
      lib ? defaults.lib,
    }@args:
    let
      argsModule = {
        _file = "<mkImage arguments>";
        inherit
          kernel
          stub
          busybox
          uname
          ;
        runtime.package = runtime;
        hostname = name;
        osRelease = {
          ID = "cvmkit";
          NAME = "cvmkit";
          IMAGE_ID = name;
          PRETTY_NAME = "cvmkit image ${name}";
        };
      };
      # The module set decides the platform; the firmware follows it unless named.
      merged = modulesLib.evalModules {
        inherit lib pkgs modules;
        prefixModules = [ argsModule ];
      };
      config = merged // {
        firmware = firmwareFor {
          inherit (merged) platform;
          moduleFirmware = merged.firmware;
          firmware = if args ? firmware then firmware else null;
          inherit firmwares;
          default = firmware;
        };
      };
      initrdSpec = initrdLib.mkInitrdSpec config;
      spec = mkSpec {
        inherit
          name
          config
          sourceDateEpoch
          specExtensions
          components
          ;
      };
      specJSON = toJSON spec;
      drv = derivation (
        {
          inherit name system;
          builder = "${toInput "cvmkit" cvmkit}/bin/cvmkit";
          args = [
            "build"
            "--spec-json"
            specJSON
            "--out"
            (placeholder "out")
          ];
        }
        // initrdSpecAttrs initrdSpec
        // (if salt != null then { cvmkitSalt = salt; } else { })
      );
    in
    assert assertMsg (match "[A-Za-z0-9+_?=-][A-Za-z0-9+._?=-]*" name != null) "image name ${toJSON name} must use only store path characters (A-Z a-z 0-9 + - . _ ? =) and not start with a dot";
    assert assertMsg (cvmkit != null) "mkImage needs `cvmkit` (the package, with bin/cvmkit)";
    assert assertMsg (
      config.workload == null
      || (
        isList (config.workload.command or null)
        && config.workload.command != [ ]
        && builtins.all isString config.workload.command
      )
    ) "workload.command must be a non-empty list of strings (argv), like [ \"/bin/server\" \"--port\" \"8443\" ]";
    assert assertMsg (
      config.workload == null || !(builtins.any builtins.hasContext config.workload.command)
    ) "workload.command refers to a store path, which is not in the image; put the program in workload.package (merged at /) and name it by its path in the image, like \"/bin/hello\"";
    drv
    // {
      inherit config spec specJSON;
      initrdSpec = initrdSpec.text;
      initrdSpecLines = initrdSpec.lines;
      uki = "${drv}/uki.efi";
      initrd = "${drv}/initrd.img";
      imageArgs = args;
      /**
        The same image as a different derivation (an extra unused attribute): building both
        and comparing the outputs checks reproducibility.
      */
      withSalt = s: mkImage (args // { salt = s; });
    };

  /**
    A check that an image's measurements equal a golden file: a derivation whose builder is
    `cvmkit measure check GOLDEN IMAGE/measurements.json --output $out` (no shell). It builds
    when every register of every platform matches (values, and events where the golden file
    lists them); otherwise it fails and its log names each differing register with both values,
    then `refreshHint`. A golden file that does not exist fails the build the same way (the
    path is not imported), so a missing file is never a silent pass.

    # Inputs

    `image`
    : an image built with `specExtensions.measure` (its output has measurements.json)

    `golden`
    : path of the golden file, e.g. `./checks/golden/tdx-gcp.json` (an image's
      measurements.json, committed)

    `name`
    : the check's derivation name (default `golden-<image name>`)

    `refreshHint`
    : printed when the values differ or the file is missing

    `cvmkit`, `system`
    : as for `mkImage`

    # Type

    ```
    mkGoldenCheck :: { image :: Derivation; golden :: Path; … } -> Derivation
    ```

    # Examples

    ```nix
    lib.mkGoldenCheck { image = images.tdx-gcp; golden = ./checks/golden/tdx-gcp.json; }
    => «derivation /nix/store/…-golden-tdx-gcp.drv»
    ```
  */
  mkGoldenCheck =
    {
      image,
      golden,
      name ? "golden-${image.name}",
      refreshHint ? "if the change is intended, refresh the golden files (`nix run .#update-golden` in cvmkit's checkout) and commit them",
      cvmkit ? defaults.cvmkit,
      system ? defaults.system,
    }:
    derivation {
      inherit name system;
      builder = "${toInput "cvmkit" cvmkit}/bin/cvmkit";
      args = [
        "measure"
        "check"
        (if builtins.pathExists golden then "${golden}" else toString golden)
        "${image}/measurements.json"
        "--output"
        (placeholder "out")
        "--refresh-hint"
        refreshHint
      ];
    };

  /**
    The provenance of an image: a derivation whose builder is `cvmkit provenance IMAGE --image
    NAME …` (no shell), whose output is an in-toto Statement (v1) with a SLSA v1 provenance
    predicate. Its subjects are the image's `uki.efi`, disk, `measurements.json` and
    `sbom.cdx.json` (sha256); its build definition names the flake, the locked inputs of
    `flakeLock` (each input's git revision and narHash: nixpkgs, and cvmkit when it is an input)
    and the flake's own revision. Unsigned: README "Provenance" signs it with cosign or GitHub's
    attest action. A separate derivation, so the image itself does not depend on the revision
    of the flake (a new commit rebuilds only this file).

    # Inputs

    `image`
    : an image from `mkImage`

    `flake`
    : how the flake is referred to, e.g. `"github:you/images"` (or null)

    `flakeLock`
    : the flake's `flake.lock` (a path, or null)

    `rev`, `narHash`
    : the flake's `self.rev` and `self.narHash` (or null: a dirty tree has no rev)

    `cvmkit`, `system`
    : as for `mkImage`

    # Type

    ```
    mkProvenance :: { image; flake ? null; flakeLock ? null; rev ? null; narHash ? null; … } -> Derivation
    ```

    # Examples

    ```nix
    lib.mkProvenance { image = images.tdx-gcp; flake = "github:cvmkit/cvmkit";
      flakeLock = ./flake.lock; rev = self.rev or null; narHash = self.narHash or null; }
    => «derivation /nix/store/…-tdx-gcp.intoto.json.drv»
    ```
  */
  mkProvenance =
    {
      image,
      flake ? null,
      flakeLock ? null,
      rev ? null,
      narHash ? null,
      cvmkit ? defaults.cvmkit,
      system ? defaults.system,
    }:
    let
      opt = flag: v: if v == null then [ ] else [ flag (toString v) ];
    in
    derivation {
      name = "${image.name}.intoto.json";
      inherit system;
      builder = "${toInput "cvmkit" cvmkit}/bin/cvmkit";
      args =
        [
          "provenance"
          "${image}"
          "--image"
          image.name
          "--output"
          (placeholder "out")
        ]
        ++ opt "--flake" flake
        ++ (if flakeLock == null then [ ] else [ "--flake-lock" "${flakeLock}" ])
        ++ opt "--source-rev" rev
        ++ opt "--source-nar-hash" narHash;
    };
}
