# Unit tests of cvmkit's Nix library: pure, builtins only, no nixpkgs, nothing built.
#
#   nix-instantiate --eval --strict --json --readonly-mode nix/tests.nix
#
# prints { "passed": N, "failed": [ … ], "total": N }; `failed` lists each failing test with what it
# computed and what was expected. The flake's `checks.nix-lib` and checks/offline.sh both run it.
# Inputs are stand-in derivations (never built): only store paths and strings are compared.
let
  inherit (builtins)
    attrNames
    concatStringsSep
    deepSeq
    elemAt
    filter
    length
    toJSON
    tryEval
    ;

  fake =
    name:
    derivation {
      inherit name;
      system = "x86_64-linux";
      builder = "/bin/sh";
      args = [
        "-c"
        "exit 1"
      ];
    };
  cvmkit = fake "cvmkit";
  kernelPkg = fake "linux";
  stubPkg = fake "systemd";
  busyboxPkg = fake "busybox";
  kernel = "${kernelPkg}/bzImage";
  stub = "${stubPkg}/lib/systemd/boot/efi/linuxx64.efi.stub";
  busybox = "${busyboxPkg}/bin/busybox";

  L = import ./. {
    inherit
      cvmkit
      kernel
      stub
      busybox
      ;
  };
  u = L.util;
  eval = modules: L.evalModules { inherit modules; };
  lines = modules: (L.mkInitrdSpec (eval modules)).lines;
  noHeader = ls: builtins.tail ls;

  # A test: its value must equal `expected`.
  eq = name: expr: expected: { inherit name expr expected; };
  # A test: evaluating `expr` fully must fail with a cvmkit error (throw/assert).
  throws = name: expr: {
    inherit name;
    expr = (tryEval (deepSeq expr expr)).success;
    expected = false;
  };

  example = L.mkImage {
    name = "demo";
    modules = [
      {
        dirs."/tmp".mode = "1777";
        devices."/dev/console" = {
          type = "c";
          major = 5;
          minor = 1;
        };
        files."/etc/motd".text = "hello\n";
        symlinks."/bin/sh" = "busybox";
        cmdline = [ "console=ttyS0" ];
      }
      { cmdline = [ "panic=-1" ]; }
    ];
  };
  motd = builtins.toFile "motd" "hello\n";
  osRelease = builtins.toFile "os-release" (
    concatStringsSep "\n" [
      "ID=\"cvmkit\""
      "IMAGE_ID=\"demo\""
      "NAME=\"cvmkit\""
      "PRETTY_NAME=\"cvmkit image demo\""
      ""
    ]
  );

  baseImage = L.mkImage {
    name = "based";
    modules = [
      L.modules.base
      L.modules.qemu
      {
        workload.command = [
          "/bin/app"
          "it's"
        ];
        init.services.logger = "dmesg -w";
      }
    ];
  };
  baseFiles = (eval [ L.modules.base { busybox = busybox; } ]).files;

  # Firmware per platform, as the flake passes it (nix/firmware.nix): images pick theirs.
  fw = name: "${fake name}/FV/OVMF.fd";
  LF = L.override {
    firmware = fw "ovmf-vtpm";
    firmwares = {
      tdx = fw "ovmf-tdx";
      snp = fw "ovmf-amdsev";
    };
  };
  measured =
    args:
    LF.mkImage (
      {
        name = "fw";
        specExtensions = { inherit (LF.specExtensions) measure; };
      }
      // args
    );
  # The platform item of measurements.json's spec (the last one; tpm comes first).
  platformItem = image: let m = image.spec.measure; in elemAt m (length m - 1);
  # nixpkgs' OVMF as far as nix/firmware.nix uses it: `override` collects the arguments,
  # `overrideAttrs` applies its function to the attributes, `fd` names both.
  fakeOvmf =
    args: attrs:
    {
      inherit args attrs;
      fd = "/fake-ovmf-${builtins.hashString "sha256" (toJSON [ args attrs ])}";
      override = a: fakeOvmf (args // a) attrs;
      overrideAttrs = f: fakeOvmf args (attrs // f attrs);
    };
  firmwareNix = import ./firmware.nix { pkgs.OVMF = fakeOvmf { } { postPatch = "echo nixpkgs\n"; }; };

  tests = [
    # --- helpers ---
    (eq "nix32 of sha256(\"\") matches `nix hash to-base32`"
      (u.toNix32 (u.hexToBytes (builtins.hashString "sha256" "")))
      "0mdqa9w1p6cmli6976v4wi0sw9r4p5prkj7lzfd1877wk11c9c73"
    )
    (eq "nix32 of a 20-byte sha1 matches `nix hash to-base32`" (u.toNix32 (
      u.hexToBytes (builtins.hashString "sha1" "abc")
    )) "kpcd173cq987hw957sx6m0868wv3x6d9")
    # The name a real Nix 2.8 build showed for `passAsFile = [ "initrdSpec" ]` (ls -a /build).
    (eq "passAsFileName matches the file Nix writes" (u.passAsFileName "initrdSpec")
      ".attr-14ppp8ra1h0qw0r145vjg74ikv0x61i6qdyzypkchg3hrp0wcr77"
    )
    (eq "shellQuote escapes single quotes" (u.shellQuote "it's") "'it'\\''s'")
    (eq "storeName makes valid store names" (map u.storeName [
      ".profile"
      "a b"
      ""
      "os-release"
    ]) [ "_profile" "a-b" "file" "os-release" ])
    (eq "renderOsRelease sorts keys and escapes" (L.renderOsRelease {
      NAME = "a \"b\" $c";
      ID = "x";
    }) "ID=\"x\"\nNAME=\"a \\\"b\\\" \\$c\"\n")

    # --- the merge rule ---
    (eq "no modules: every option at its default" (eval [ ]) L.options)
    (eq "lists concatenate in module order" (eval [
      { cmdline = [ "a" ]; }
      { cmdline = [ "b" "c" ]; }
      { cmdline = [ "d" ]; }
    ]).cmdline [ "a" "b" "c" "d" ])
    (eq "attribute sets merge recursively, the later scalar wins"
      (eval [
        {
          init.services.a = "one";
          init.shell = true;
        }
        {
          init.services.b = "two";
          init.services.a = "uno";
        }
      ]).init
      {
        commands = [ ];
        services = {
          a = "uno";
          b = "two";
        };
        shell = true;
        onWorkloadExit = "poweroff";
      }
    )
    (eq "values of different kinds: the later wins" (eval [
      { osRelease.ID = "x"; }
      { osRelease = ./default.nix; }
    ]).osRelease ./default.nix)
    (eq "workload is replaced whole, argv lists do not concatenate" (eval [
      { workload.command = [ "/bin/a" ]; }
      { workload.command = [ "/bin/b" "-v" ]; }
    ]).workload { command = [ "/bin/b" "-v" ]; })
    (throws "the same file from two modules, differently, is an error" (eval [
      { files."/etc/x".text = "a"; }
      { files."/etc/x".text = "b"; }
    ]).files)
    (eq "the same file defined equally twice is fine (defaults filled in)" (eval [
      { files."/etc/x".text = "a"; }
      {
        files."/etc/x" = {
          text = "a";
          mode = "0644";
          uid = 0;
        };
      }
    ]).files."/etc/x".text "a")
    (eq "force = true in the later module replaces the entry" (eval [
      { files."/etc/x".text = "a"; }
      {
        files."/etc/x" = {
          text = "b";
          force = true;
        };
      }
    ]).files."/etc/x".text "b")
    (throws "symlinks conflict like files" (eval [
      { symlinks."/bin/sh" = "busybox"; }
      { symlinks."/bin/sh" = "bash"; }
    ]).symlinks)
    (eq "a symlink as a string equals the same as { target } (the first is kept)" (eval [
      { symlinks."/bin/sh" = "busybox"; }
      { symlinks."/bin/sh".target = "busybox"; }
    ]).symlinks."/bin/sh" "busybox")
    (eq "function modules get config (the fixed point) and lib" (eval [
      { hostname = "h1"; }
      (
        { config, lib, ... }:
        {
          cmdline = [ "host=${config.hostname}" (lib.shellQuote "q") ];
        }
      )
    ]).cmdline [ "host=h1" "'q'" ])
    (eq "a module that is a plain lambda receives all arguments" (eval [
      (args: { cmdline = [ (if args ? config && args ? lib && args ? pkgs then "ok" else "no") ]; })
    ]).cmdline [ "ok" ])
    (throws "an unknown option is an error" (eval [ { fiels = { }; } ]))
    (throws "an unknown option inside a checked group is an error" (eval [ { init.comands = [ ]; } ]))
    (eq "_file names a module and is not an option" (eval [ { _file = "m.nix"; } ]) L.options)

    # --- initrd spec lines ---
    (eq "spec lines: dirs, nods, files, slinks, each sorted, defaults applied"
      (noHeader (lines [
        {
          symlinks."/bin/sh" = "busybox";
          dirs."/tmp".mode = "1777";
          dirs."/etc" = { };
          devices."/dev/console" = {
            type = "c";
            major = 5;
            minor = 1;
          };
          devices."/dev/sda" = {
            type = "b";
            major = 8;
            minor = 0;
            mode = "0660";
            gid = 6;
          };
          files."/bin/busybox" = {
            source = busybox;
            mode = "0755";
          };
        }
      ]))
      [
        "dir /etc 0755 0 0"
        "dir /tmp 1777 0 0"
        "nod /dev/console 0600 0 0 c 5 1"
        "nod /dev/sda 0660 0 6 b 8 0"
        "file /bin/busybox ${busybox} 0755 0 0"
        "slink /bin/sh busybox 0777 0 0"
      ]
    )
    (eq "text files become builtins.toFile store paths"
      (noHeader (lines [ { files."/etc/motd".text = "hello\n"; } ]))
      [ "file /etc/motd ${motd} 0644 0 0" ]
    )
    (eq "text with store references goes through passAsFile"
      (
        let
          s = L.mkInitrdSpec (eval [ { files."/etc/k".text = "kernel=${kernel}\n"; } ]);
        in
        {
          lines = noHeader s.lines;
          inherit (s) passFiles;
        }
      )
      {
        lines = [ "file /etc/k ${u.passAsFileName "cvmkitFile-${builtins.substring 0 12 (builtins.hashString "sha256" "/etc/k")}"} 0644 0 0" ];
        passFiles = [
          {
            name = "cvmkitFile-${builtins.substring 0 12 (builtins.hashString "sha256" "/etc/k")}";
            text = "kernel=${kernel}\n";
          }
        ];
      }
    )
    (eq "users become /etc/passwd and /etc/group"
      (noHeader (lines [
        {
          users.passwd = [ "root:x:0:0::/root:/bin/sh" ];
          users.group = [ "root:x:0:" ];
        }
        { users.passwd = [ "app:x:1000:1000::/:/bin/false" ]; }
      ]))
      [
        "file /etc/group ${builtins.toFile "group" "root:x:0:\n"} 0644 0 0"
        "file /etc/passwd ${builtins.toFile "passwd" "root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/:/bin/false\n"} 0644 0 0"
      ]
    )
    (throws "a path in two tables is an error" (lines [
      {
        files."/bin/sh".source = busybox;
        symlinks."/bin/sh" = "busybox";
      }
    ]))
    (throws "files needs exactly one of source and text" (lines [ { files."/x" = { mode = "0644"; }; } ]))
    (throws "a plain string source is refused (the sandbox cannot see it)" (lines [
      { files."/bin/busybox".source = "/bin/busybox"; }
    ]))
    (throws "an integer mode is refused" (lines [ { dirs."/x".mode = 755; } ]))
    (throws "a non-octal mode is refused" (lines [ { dirs."/x".mode = "0789"; } ]))
    (throws "a relative image path is refused" (lines [ { dirs."etc" = { }; } ]))
    (throws "an image path with a space is refused" (lines [ { dirs."/a b" = { }; } ]))
    (throws "an image path with .. is refused" (lines [ { dirs."/a/../b" = { }; } ]))
    (throws "a device needs type c or b" (lines [
      {
        devices."/dev/x" = {
          type = "x";
          major = 1;
          minor = 1;
        };
      }
    ]))

    # --- the spec and the derivation ---
    (eq "spec JSON" example.specJSON (toJSON {
      initrd = {
        allow_dangling_symlinks = false;
        compress = "zstd";
        preserve_modes = false;
        spec_files = [ (u.passAsFileName "cvmkitInitrdSpec") ];
        trees = [ ];
      };
      name = "demo";
      schema = "cvmkit.image/v1";
      source_date_epoch = 0;
      uki = {
        cmdline = "console=ttyS0 panic=-1";
        inherit kernel stub;
        os_release = osRelease;
      };
    }))
    (eq "the derivation runs cvmkit build with the spec, no shell"
      {
        inherit (example) builder system;
        args = example.drvAttrs.args;
        passAsFile = example.drvAttrs.passAsFile;
        specText = example.drvAttrs.cvmkitInitrdSpec;
      }
      {
        builder = "${cvmkit}/bin/cvmkit";
        system = "x86_64-linux";
        args = [
          "build"
          "--spec-json"
          example.specJSON
          "--out"
          (builtins.placeholder "out")
        ];
        passAsFile = [ "cvmkitInitrdSpec" ];
        specText = concatStringsSep "\n" [
          "# initrd spec generated by cvmkit's nix/lib from the image modules (gen_init_cpio format)"
          "dir /tmp 1777 0 0"
          "nod /dev/console 0600 0 0 c 5 1"
          "file /etc/motd ${motd} 0644 0 0"
          "slink /bin/sh busybox 0777 0 0"
          ""
        ];
      }
    )
    (eq "the spec's store paths are build inputs (string context)" (builtins.sort builtins.lessThan (
      attrNames (builtins.getContext example.specJSON)
    )) (builtins.sort builtins.lessThan [
      kernelPkg.drvPath
      stubPkg.drvPath
      osRelease
    ]))
    (eq "a salt makes another derivation with the same spec"
      (
        let
          s = example.withSalt "again";
        in
        [
          (s.drvPath != example.drvPath)
          (s.specJSON == example.specJSON)
        ]
      )
      [ true true ]
    )
    (eq "mkImage arguments are defaults that modules override" (L.mkImage {
      name = "k";
      modules = [ { kernel = "${fake "other"}/bzImage"; } ];
    }).spec.uki.kernel "${fake "other"}/bzImage")
    (eq "spec extensions are off by default and opt-in"
      [
        (example.spec ? disk)
        (L.mkImage {
          name = "d";
          modules = [ L.modules.gcp ];
          specExtensions = { inherit (L.specExtensions) disk; };
        }).spec.disk
      ]
      [ false { format = "gcp"; } ]
    )
    (eq "initrd.specFiles follow the generated spec" (L.mkImage {
      name = "s";
      modules = [ { initrd.specFiles = [ ./default.nix ]; } ];
    }).spec.initrd.spec_files [ (u.passAsFileName "cvmkitInitrdSpec") "${./default.nix}" ])
    (eq "workload.package is merged as a tree" (L.mkImage {
      name = "w";
      modules = [
        {
          trees = [ ./. ];
          workload = {
            package = fake "app";
            command = [ "/bin/app" ];
          };
        }
      ];
    }).spec.initrd.trees [ "${./.}" "${fake "app"}" ])
    (throws "workload.command naming a store path is refused" (L.mkImage {
      name = "w";
      modules = [ { workload.command = [ "${fake "app"}/bin/app" ]; } ];
    }).drvPath)
    (throws "a missing kernel is an error" ((import ./. { inherit cvmkit stub; }).mkImage { name = "x"; }).drvPath)
    (throws "a bad image name is refused" (L.mkImage { name = ".hidden"; }).drvPath)
    (throws "sourceDateEpoch must fit in 32 bits" (L.mkImage {
      name = "x";
      sourceDateEpoch = 4294967296;
    }).drvPath)
    (throws "disk.format is checked" (L.mkImage {
      name = "x";
      modules = [ { disk.format = "vmdk"; } ];
    }).drvPath)
    (eq "disk.format: every format of cvmkit build and mkDisk, qcow2 too"
      (map (f: (L.mkImage {
        name = "x";
        modules = [ { disk.format = f; } ];
        specExtensions = { inherit (L.specExtensions) disk; };
      }).spec.disk) [ "raw" "gcp" "vhd" "qcow2" ])
      [ { format = "raw"; } { format = "gcp"; } { format = "vhd"; } { format = "qcow2"; } ]
    )

    # --- the spec against the schema of the Rust types (nix/cvmkit.image.v1.schema.json) ---
    (eq "mkSpec's output follows the schema: plain, with disk and measurements, every platform"
      (map L.specErrors [
        example.spec
        (L.mkImage {
          name = "all";
          modules = [
            {
              initrd = {
                compress = "zstd:19";
                extra = [ "${fake "ucode"}/intel.img" ];
                preserveModes = true;
                specFiles = [ ./default.nix ];
              };
              uname = "6.18.0";
              disk.format = "qcow2";
              trees = [ ./. ];
            }
          ];
          sourceDateEpoch = 4294967295;
          specExtensions = { inherit (L.specExtensions) disk measure; };
        }).spec
        (measured { modules = [ L.modules.tdx L.modules.runtime ]; runtime = fake "runtime"; specExtensions = { inherit (LF.specExtensions) disk measure; }; }).spec
        (measured { modules = [ L.modules.snp ]; }).spec
        (measured { modules = [ L.modules.gcp L.modules.tdx { measure = { memory = "4G"; ovmf_profile = "no-cc"; kernel_measures = "none"; failed_boot_attempts = 1; }; } ]; }).spec
      ])
      [ [ ] [ ] [ ] [ ] [ ] ]
    )
    (eq "schema check: a key Rust does not know, planted in mkSpec's output, fails"
      (L.specErrors (L.mkSpec {
        name = "x";
        config = eval [ { kernel = kernel; stub = stub; } ];
        specExtensions = { colour = _: "red"; };
      }))
      [ "spec: unknown key \"colour\" (not in the schema; known: components, disk, initrd, measure, name, schema, source_date_epoch, uki)" ]
    )
    (eq "schema check: an unknown key inside a measure item (from a module's `measure`) fails"
      (L.specErrors (measured { modules = [ L.modules.tdx { measure.qemu = "9.2"; } ]; }).spec)
      [ "spec.measure[1]: unknown key \"qemu\" (not in the schema; known: failed_boot_attempts, firmware, guest_features, kernel_hashes, kernel_measures, memory, notes, ovmf_profile, platform, qemu_version, rtmr0_captured, target, tee, vcpu_type, vcpus, vmm_type)" ]
    )
    (eq "schema check: a wrong enum value or type fails"
      (map (spec: L.specErrors spec) [
        (example.spec // { disk.format = "vmdk"; })
        (example.spec // { measure = { platform = "tdx"; ovmf_profile = "edk2-2024"; }; })
        (example.spec // { schema = "cvmkit.image/v2"; source_date_epoch = -1; })
        (example.spec // { initrd = example.spec.initrd // { compress = "lz4"; }; })
        (example.spec // { disk = { format = "raw"; data_size = "8 parsecs"; }; })
        (example.spec // { measure = 3; })
      ])
      [
        [ "spec.disk.format: \"vmdk\" is not one of \"raw\", \"gcp\", \"vhd\", \"qcow2\"" ]
        [ "spec.measure.ovmf_profile: \"edk2-2024\" is not one of \"edk2-202411\", \"edk2-before-202411\", \"no-cc\"" ]
        [ "spec.schema: \"cvmkit.image/v2\" is not \"cvmkit.image/v1\"" "spec.source_date_epoch: -1 is less than 0" ]
        [ "spec.initrd.compress: \"lz4\" does not match \"^(none|gzip|zstd)(:[0-9]+)?$\"" ]
        [ "spec.disk.data_size: \"8 parsecs\" does not match \"^ *[0-9]+ *([KkMmGgTt]([Ii]?[Bb])?|[Bb])? *$\"" ]
        [ "spec.measure: 3 is not of type object or array" ]
      ]
    )
    # --- the SBOM's package metadata (describeComponent, mkImage's `components`) ---
    (eq "describeComponent reads pname, version, meta.license (SPDX ids), src's URL and outputHash, a kernel's configfile"
      (map L.describeComponent [
        (busyboxPkg // {
          pname = "busybox";
          version = "1.36.1";
          meta.license = { spdxId = "GPL-2.0-only"; shortName = "gpl2Only"; };
          src = { url = "https://busybox.net/downloads/busybox-1.36.1.tar.bz2"; outputHash = "sha256-uMwkyVdNgJ5yecO+NJeVxdXOtv3xnKcJ+AzeUOR94xQ="; };
        })
        (kernelPkg // {
          version = "6.18.5";
          meta.license = [ { shortName = "gpl2Only"; } ];
          src = { urls = [ "mirror://kernel/linux/kernel/v6.x/linux-6.18.5.tar.xz" ]; outputHash = "sha256-GJ0fQJzvjQ0jQhDgRZUXLfOS+MspfhS0R+2Vcg4v2UA="; };
          configfile = fake "linux-config";
        })
        stubPkg
        { path = stubPkg; name = "systemd-stub"; }
      ])
      [
        {
          path = "${busyboxPkg}";
          name = "busybox";
          version = "1.36.1";
          licenses = [ "GPL-2.0-only" ];
          source = { url = "https://busybox.net/downloads/busybox-1.36.1.tar.bz2"; hash = "sha256-uMwkyVdNgJ5yecO+NJeVxdXOtv3xnKcJ+AzeUOR94xQ="; };
        }
        {
          path = "${kernelPkg}";
          name = "linux";
          version = "6.18.5";
          licenses = [ "gpl2Only" ];
          source = { url = "mirror://kernel/linux/kernel/v6.x/linux-6.18.5.tar.xz"; hash = "sha256-GJ0fQJzvjQ0jQhDgRZUXLfOS+MspfhS0R+2Vcg4v2UA="; };
          config = "${fake "linux-config"}";
        }
        { path = "${stubPkg}"; name = "systemd"; licenses = [ ]; }
        { path = "${stubPkg}"; name = "systemd-stub"; }
      ]
    )
    (throws "describeComponent refuses an attribute set without path" (L.describeComponent { name = "x"; }))
    (eq "a described package is not a dependency of the image (its path has no string context); a kernel's config is"
      (map (c: [ (builtins.hasContext c.path) (builtins.hasContext (c.config or "")) ]) [
        (L.describeComponent (kernelPkg // { configfile = fake "linux-config"; }))
        (L.describeComponent { path = stubPkg; })
      ])
      [ [ false true ] [ false false ] ]
    )
    (eq "mkImage's components (and the workload's package) reach the spec, which follows the schema"
      (let
        hello = fake "hello-2.12.1";
        img = L.mkImage {
          name = "sbom";
          modules = [ { workload = { package = hello; command = [ "/bin/hello" ]; }; } ];
          components = [ kernelPkg { path = busyboxPkg; licenses = [ "GPL-2.0-only" ]; } ];
        };
      in
      [ (map (c: [ c.path (c.name or null) (c.version or null) ]) img.spec.components) (L.specErrors img.spec) ])
      [
        [
          [ "${kernelPkg}" "linux" null ]
          [ "${busyboxPkg}" null null ]
          [ "${fake "hello-2.12.1"}" "hello" "2.12.1" ]
        ]
        [ ]
      ]
    )
    (eq "without components the spec has none"
      (example.spec ? components) false)
    (throws "checkSpec throws on an invalid spec" (L.checkSpec (example.spec // { colour = 1; })))
    (eq "checkSpec returns a valid spec" (L.checkSpec example.spec == example.spec) true)
    (throws "the validator refuses a schema keyword it does not check" (L.schema.validate {
      root = { };
      path = "x";
      schema = { minLength = 1; };
      value = "a";
    }))
    (eq "disk formats and platforms come from the schema"
      [ (L.schema.enumValues "DiskFormat") (L.schema.enumValues "Platform") ]
      [ [ "raw" "gcp" "vhd" "qcow2" ] [ "tpm" "tdx" "snp" ] ]
    )

    # --- the shipped modules ---
    (eq "base: busybox, init and its files; applets as slinks"
      (map (p: builtins.elem p (attrNames baseFiles)) [
        "/init"
        "/bin/busybox"
        "/etc/cvmkit/init.conf"
        "/etc/cvmkit/udhcpc.script"
        "/etc/hostname"
        "/etc/os-release"
      ])
      [ true true true true true true ]
    )
    (eq "base: the workload script execs the quoted argv"
      baseImage.config.files."/etc/cvmkit/workload".text
      "#!/bin/sh\n# workload.command\nexec '/bin/app' 'it'\\''s'\n"
    )
    (eq "base: services become scripts" (builtins.match ".*(file /etc/cvmkit/services/logger [^ ]+ 0755 0 0).*" baseImage.initrdSpec != null) true)
    (eq "base + devtools: init.conf content"
      (eval [ L.modules.base L.modules.devtools { busybox = busybox; } ]).files."/etc/cvmkit/init.conf".text
      "# generated by modules/base.nix\nCVMKIT_NET_DEFAULT='dhcp'\nCVMKIT_NET_IFACE=''\nCVMKIT_SHELL=1\nCVMKIT_ON_EXIT='poweroff'\n"
    )
    (eq "base: kernel modules load in the order given"
      (builtins.filter (n: builtins.match "/lib/modules/.*" n != null) (attrNames (eval [
        L.modules.base
        {
          busybox = busybox;
          kernelModules = [
            "${fake "m"}/b.ko"
            "${fake "m"}/a.ko"
          ];
        }
      ]).files))
      [ "/lib/modules/cvmkit/000-b.ko" "/lib/modules/cvmkit/001-a.ko" ]
    )
    (throws "base without busybox is an error" (L.mkInitrdSpec (eval [ L.modules.base ])).text)
    (eq "cloud profiles: command lines and disk formats"
      (map (m: { inherit (eval [ m ]) cmdline disk; }) [
        L.modules.qemu
        L.modules.gcp
        L.modules.azure
      ])
      [
        {
          cmdline = [
            "console=ttyS0"
            "no_timer_check"
          ];
          disk.format = "raw";
        }
        {
          cmdline = [ "console=ttyS0,38400n8d" ];
          disk.format = "gcp";
        }
        {
          cmdline = [ "console=ttyS0" "earlyprintk=ttyS0" ];
          disk.format = "vhd";
        }
      ]
    )
    (eq "platform modules" (map (m: (eval [ m ]).platform) [ L.modules.tdx L.modules.snp ]) [ "tdx" "snp" ])
    (eq "module order is kept across shipped and own modules" (L.mkImage {
      name = "o";
      modules = [
        L.modules.qemu
        { cmdline = [ "quiet" ]; }
        L.modules.azure
      ];
    }).spec.uki.cmdline "console=ttyS0 no_timer_check quiet console=ttyS0 earlyprintk=ttyS0")
    (eq "a text file with store references is passed with passAsFile by the image derivation"
      (
        let
          img = L.mkImage {
            name = "p";
            modules = [ { files."/etc/k".text = "kernel=${kernel}\n"; } ];
          };
          attr = "cvmkitFile-${builtins.substring 0 12 (builtins.hashString "sha256" "/etc/k")}";
        in
        [
          img.drvAttrs.passAsFile
          img.drvAttrs.${attr}
        ]
      )
      [
        [
          "cvmkitInitrdSpec"
          "cvmkitFile-${builtins.substring 0 12 (builtins.hashString "sha256" "/etc/k")}"
        ]
        "kernel=${kernel}\n"
      ]
    )
    (eq "runtime: the binary, runtime.conf with the profile's source, and the service"
      (
        let
          c = eval [
            L.modules.base
            L.modules.gcp
            L.modules.runtime
            {
              busybox = busybox;
              runtime.package = fake "cvmkit-runtime";
              runtime.settings.discover-wait-secs = 300;
            }
          ];
        in
        [
          c.files."/usr/bin/cvmkit-runtime".source
          c.files."/etc/cvmkit/runtime.conf".text
          c.init.services.cvmkit-runtime
          (c.files ? "/usr/sbin/nginx")
        ]
      )
      [
        "${fake "cvmkit-runtime"}/bin/cvmkit-runtime"
        "# /etc/cvmkit/runtime.conf, generated by modules/runtime.nix from runtime.settings\ndiscover-wait-secs = 300\nsources = gcp\n"
        "exec /usr/bin/cvmkit-runtime run --config /etc/cvmkit/runtime.conf"
        false
      ]
    )
    (eq "runtime: mkImage's `runtime` is the default package; a binary path is taken as is"
      [
        (builtins.match ".*(file /usr/bin/cvmkit-runtime [^ ]+ 0755).*" ((L.override { runtime = fake "rt"; }).mkImage {
          name = "r";
          modules = [ L.modules.runtime ];
        }).initrdSpec)
        (eval [
          L.modules.runtime
          { runtime.package = "${fake "rt"}/x/cvmkit-runtime"; }
        ]).files."/usr/bin/cvmkit-runtime".source
      ]
      [ [ "file /usr/bin/cvmkit-runtime ${fake "rt"}/bin/cvmkit-runtime 0755" ] "${fake "rt"}/x/cvmkit-runtime" ]
    )
    (eq "runtime: nginx adds the binary, its settings and the nobody user; lists join with commas"
      (
        let
          c = eval [
            L.modules.runtime
            {
              runtime.package = fake "rt";
              runtime.nginx = "${fake "nginx"}/bin/nginx";
              runtime.settings.sources = [ "qemu" "gcp" ];
              runtime.settings.https-port = null;
            }
          ];
        in
        [
          c.files."/usr/sbin/nginx".source
          c.files."/etc/cvmkit/runtime.conf".text
          c.users
        ]
      )
      [
        "${fake "nginx"}/bin/nginx"
        "# /etc/cvmkit/runtime.conf, generated by modules/runtime.nix from runtime.settings\nnginx-bin = /usr/sbin/nginx\nnginx-user = nobody nogroup\nsources = qemu,gcp\n"
        {
          passwd = [ "nobody:x:65534:65534:nobody:/nonexistent:/bin/false" ];
          group = [ "nogroup:x:65534:" ];
        }
      ]
    )
    (eq "runtime: measurements.json notes say how the manifest reaches PCR 15 / RTMR3, only with the runtime"
      (map
        (mods:
          map (m: map (n: builtins.substring 0 38 n) (m.notes or [ ])) (L.mkImage {
            name = "m";
            modules = mods ++ [ { firmware = "${fake "ovmf"}/OVMF.fd"; } ];
            specExtensions = { inherit (L.specExtensions) measure; };
          }).spec.measure)
        [
          [ L.modules.tdx ]
          [ L.modules.tdx L.modules.runtime { runtime.package = fake "rt"; } ]
          [ L.modules.snp L.modules.runtime { runtime.package = fake "rt"; } ]
        ])
      [
        [ [ ] [ ] ]
        [ [ "cvmkit-runtime extends PCR 15 (SHA-256" ] [ "cvmkit-runtime extends RTMR3 (Linux >=" ] ]
        [ [ "cvmkit-runtime extends PCR 15 (SHA-256" ] [ "the launch digest pins the image and w" ] ]
      ]
    )
    (eq "runtime: the platform reaches runtime.conf; devtools allows unmeasured launches and warns at boot"
      (map
        (mods:
          let
            c = eval ([ L.modules.runtime { runtime.package = fake "rt"; } ] ++ mods);
          in
          [
            c.files."/etc/cvmkit/runtime.conf".text
            (builtins.length c.init.commands)
          ])
        [
          [ L.modules.tdx ]
          [ L.modules.snp L.modules.devtools ]
          [ ]
        ])
      [
        [ "# /etc/cvmkit/runtime.conf, generated by modules/runtime.nix from runtime.settings\nplatform = tdx\n" 0 ]
        [
          "# /etc/cvmkit/runtime.conf, generated by modules/runtime.nix from runtime.settings\nplatform = snp\nunmeasured = allow\n"
          5
        ]
        [ "# /etc/cvmkit/runtime.conf, generated by modules/runtime.nix from runtime.settings\n" 0 ]
      ]
    )
    (throws "runtime: unmeasured = allow on a TDX image without devtools is an error at evaluation" (eval [
      L.modules.tdx
      L.modules.runtime
      {
        runtime.package = fake "rt";
        runtime.settings.unmeasured = "allow";
      }
    ]).files."/etc/cvmkit/runtime.conf".text)
    (throws "runtime: an unknown setting is an error at evaluation" (eval [
      L.modules.runtime
      {
        runtime.package = fake "rt";
        runtime.settings.discover-wait = 3;
      }
    ]).files."/etc/cvmkit/runtime.conf".text)
    (throws "runtime: a value with a newline is refused" (eval [
      L.modules.runtime
      {
        runtime.package = fake "rt";
        runtime.settings.qemu-url = "http://x/\nsources = gcp";
      }
    ]).files."/etc/cvmkit/runtime.conf".text)
    (throws "runtime: no package is an error" (eval [ L.modules.runtime ]).files."/usr/bin/cvmkit-runtime".source)
    (eq "mkUki: cvmkit uki with every argument, $out as the output"
      (L.mkUki {
        initrds = [ "${fake "i"}/initrd.img" ];
        cmdline = "console=ttyS0 quiet";
        uname = "6.12.0";
      }).drvAttrs.args
      [
        "uki"
        "--stub"
        stub
        "--linux"
        kernel
        "--initrd"
        "${fake "i"}/initrd.img"
        "--cmdline=console=ttyS0 quiet"
        "--uname=6.12.0"
        "-o"
        (builtins.placeholder "out")
      ]
    )
    (eq "mkUki: a command line starting with @ goes through a file, not `@FILE` syntax"
      (builtins.match "--cmdline=@/nix/store/[a-z0-9]{32}-cmdline" (builtins.elemAt (L.mkUki { cmdline = "@x"; }).drvAttrs.args 5) != null)
      true
    )
    (eq "mkDisk: the name follows the format; sizes become flags"
      (map (f: let d = L.mkDisk { uki = "${fake "u"}/uki.efi"; format = f; dataSize = "8M"; }; in [ d.name (builtins.elemAt d.drvAttrs.args 5) ]) [ "raw" "gcp" "vhd" "qcow2" ])
      [
        [ "disk.raw" "--data-size=8M" ]
        [ "disk.tar.gz" "--data-size=8M" ]
        [ "disk.vhd" "--data-size=8M" ]
        [ "disk.qcow2" "--data-size=8M" ]
      ]
    )
    (throws "mkDisk: an unknown format is refused" (L.mkDisk { uki = "${fake "u"}/uki.efi"; format = "vmdk"; }).drvPath)
    (eq "measure: platform flags and settings"
      (L.measure {
        platform = "snp";
        firmware = "${fake "ovmf"}/OVMF.fd";
        settings = {
          vcpus = 2;
          vcpu-type = "EPYC-Milan";
        };
      }).drvAttrs.args
      [
        "measure"
        "snp"
        "--firmware"
        "${fake "ovmf"}/OVMF.fd"
        "--vcpu-type=EPYC-Milan"
        "--vcpus=2"
        "-o"
        (builtins.placeholder "out")
      ]
    )
    (throws "measure tdx needs the disk" (L.measure { platform = "tdx"; uki = "${fake "u"}/uki.efi"; firmware = "${fake "o"}/f"; }).drvPath)
    (eq "mkInitrd: cvmkit initrd with the generated spec passed as a file"
      (let d = L.mkInitrd { modules = [ { files."/etc/x".text = "x"; workload = { package = fake "app"; command = [ "/bin/app" ]; }; } ]; }; in [
        d.name
        (builtins.elemAt d.drvAttrs.args 1)
        (builtins.elemAt d.drvAttrs.args 2)
        d.drvAttrs.passAsFile
        (builtins.match ".*file /etc/x /nix/store/[a-z0-9]{32}-x 0644 0 0.*" d.drvAttrs.cvmkitInitrdSpec != null)
      ])
      [ "initrd.img" "${fake "app"}" "--spec" [ "cvmkitInitrdSpec" ] true ]
    )
    (throws "base: init.onWorkloadExit is checked" (L.mkInitrdSpec (eval [
      L.modules.base
      {
        busybox = busybox;
        init.onWorkloadExit = "explode";
      }
    ])).text)
    (eq "firmware: tdx, snp and platform-less images are measured against their platform's firmware"
      (map (mods: (measured { modules = mods; }).config.firmware) [
        [ L.modules.qemu L.modules.tdx ]
        [ L.modules.qemu L.modules.snp ]
        [ L.modules.qemu ]
      ])
      [ (fw "ovmf-tdx") (fw "ovmf-amdsev") (fw "ovmf-vtpm") ]
    )
    (eq "firmware: the spec's platform item names it; snp's asks for kernel hashes"
      (map (p: platformItem (measured { modules = [ L.modules.qemu p ]; })) [ L.modules.tdx L.modules.snp ])
      [
        {
          platform = "tdx";
          firmware = fw "ovmf-tdx";
        }
        {
          platform = "snp";
          firmware = fw "ovmf-amdsev";
          kernel_hashes = true;
        }
      ]
    )
    (eq "cloud targets: gcp and azure images are predicted without the build's firmware, and every item names the target"
      (map (mods: map (i: [ (i.target or null) (i ? firmware) ]) (measured { modules = mods; }).spec.measure) [
        [ L.modules.gcp L.modules.tdx ]
        [ L.modules.gcp L.modules.snp ]
        [ L.modules.azure L.modules.tdx ]
        [ L.modules.azure L.modules.snp ]
        [ L.modules.qemu L.modules.tdx ]
      ])
      [
        [ [ "gcp" false ] [ "gcp" false ] ]
        [ [ "gcp" false ] [ "gcp" false ] ]
        [ [ "azure" false ] [ "azure" false ] ]
        [ [ "azure" false ] [ "azure" false ] ]
        [ [ null false ] [ null true ] ]
      ]
    )
    (eq "firmware: a module's firmware wins over the platform's, and over mkImage's argument"
      (map (args: (measured args).config.firmware) [
        { modules = [ L.modules.snp { firmware = fw "mine"; } ]; }
        {
          modules = [ L.modules.snp { firmware = fw "mine"; } ];
          firmware = fw "arg";
        }
      ])
      [ (fw "mine") (fw "mine") ]
    )
    (eq "firmware: an explicit mkImage firmware wins over the platform's; a module can turn kernel hashes off"
      [
        (measured { modules = [ L.modules.tdx ]; firmware = fw "arg"; }).config.firmware
        (platformItem (measured { modules = [ L.modules.snp { measure.kernel_hashes = false; } ]; })).kernel_hashes
      ]
      [ (fw "arg") false ]
    )
    (eq "firmware: a library without firmwares keeps its one firmware for every platform"
      ((L.override { firmware = fw "one"; }).mkImage { name = "x"; modules = [ L.modules.snp ]; }).config.firmware
      (fw "one")
    )
    (eq "firmware: measure (the building block) defaults to the platform's firmware"
      (map (p: builtins.elemAt (LF.measure { platform = p; uki = "${fake "u"}/uki.efi"; disk = "${fake "d"}/disk.raw"; }).drvAttrs.args 7) [ "tdx" ])
      [ (fw "ovmf-tdx") ]
    )
    (eq "firmware: measure snp defaults to the AmdSev build"
      (builtins.elemAt (LF.measure { platform = "snp"; }).drvAttrs.args 3)
      (fw "ovmf-amdsev")
    )
    (eq "firmware.nix: tdx and vtpm are OVMF with tpmSupport; snp the AmdSev dsc with an empty grub.efi and OVMF.fd moved to $fd"
      [
        firmwareNix.tdx.package.args
        (firmwareNix.tdx.file == firmwareNix.vtpm.file)
        firmwareNix.snp.package.args
        firmwareNix.snp.package.attrs
        (firmwareNix.snp.file == "${firmwareNix.snp.package.fd}/FV/OVMF.fd")
        (firmwareNix.snp.file != firmwareNix.tdx.file)
      ]
      [
        { tpmSupport = true; }
        true
        { projectDscPath = "OvmfPkg/AmdSev/AmdSevX64.dsc"; }
        {
          postPatch = "echo nixpkgs\ntouch OvmfPkg/AmdSev/Grub/grub.efi\n";
          postInstall = "mkdir -p $fd/FV\nmv -v $out/FV/OVMF.fd $fd/FV/\n";
        }
        true
        true
      ]
    )
    (eq "base: network settings reach init.conf"
      (builtins.match ".*(CVMKIT_NET_DEFAULT='off'\nCVMKIT_NET_IFACE='ens4').*" (eval [
        L.modules.base
        {
          busybox = busybox;
          network = {
            default = "off";
            interface = "ens4";
          };
        }
      ]).files."/etc/cvmkit/init.conf".text)
      [ "CVMKIT_NET_DEFAULT='off'\nCVMKIT_NET_IFACE='ens4'" ]
    )
  ];

  results = map (
    t:
    let
      r = tryEval (deepSeq t.expr t.expr);
    in
    t
    // {
      ok = r.success && r.value == t.expected;
      got = if r.success then r.value else "<evaluation failed>";
    }
  ) tests;
  failed = filter (r: !r.ok) results;
in
{
  total = length tests;
  passed = length tests - length failed;
  failed = map (r: {
    inherit (r) name got expected;
  }) failed;
}
