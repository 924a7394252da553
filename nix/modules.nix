# Image modules and their merge. See `evalModules` for the rule; `options` lists every option with
# its default, which is also the first "module" of every merge.
{ util }:
let
  inherit (builtins)
    all
    attrNames
    concatLists
    concatStringsSep
    filter
    foldl'
    functionArgs
    genList
    intersectAttrs
    isAttrs
    isFunction
    isList
    isPath
    length
    listToAttrs
    removeAttrs
    toJSON
    typeOf
    ;
  inherit (util) assertMsg isPlainAttrs last unique;

  # Tables of image entries keyed by their path in the image: two modules defining the same
  # path is an error unless the definitions are equal or the later one sets `force = true`.
  entryTables = [
    "files"
    "dirs"
    "devices"
    "symlinks"
  ];

  # Options a later module replaces as a whole instead of merging into.
  wholeValues = [ "workload" ];
in
rec {
  /**
    Every option of an image module, with its default. Modules set any subset; `evalModules`
    starts from these values, so a merged config always has every key.

    | option | type | merge | meaning |
    |---|---|---|---|
    | `files."/p"` | `{ source = path \| drv \| "${drv}/f"; }` or `{ text = "…"; }`, plus `mode ? "0644"`, `uid ? 0`, `gid ? 0`, `force ? false` | entry | a regular file in the initrd |
    | `dirs."/p"` | `{ mode ? "0755"; uid; gid; force; }` | entry | a directory (parents are created 0755 anyway) |
    | `devices."/p"` | `{ type = "c" \| "b"; major; minor; mode ? "0600"; uid; gid; force; }` | entry | a device node (`nod`) |
    | `symlinks."/p"` | `"target"` or `{ target; force; }` | entry | a symlink (`slink`); relative targets resolve from the link's directory |
    | `trees` | `[ path ]` | concatenate | directories merged at `/` in order (later entries replace earlier ones) |
    | `cmdline` | `[ "k=v" ]` | concatenate | kernel command line fragments, joined by one space, verbatim |
    | `init.commands` | `[ "sh line" ]` | concatenate | run by the base init after mounts and network, before services |
    | `init.services.<name>` | `"sh command"` | later wins | started in the background by the base init, in name order |
    | `init.shell` | bool | later wins | a root shell on the console when there is no workload or it exits |
    | `init.onWorkloadExit` | `"poweroff" \| "reboot" \| "wait"` | later wins | what the base init does when the workload exits (with `init.shell`, a shell first) |
    | `network.default` | `"dhcp" \| "off"` | later wins | network set-up when the command line has no `ip=` |
    | `network.interface` | string or null | later wins | interface for DHCP/`ip=` without a device (null: the first one that is not `lo`) |
    | `hostname` | string or null | later wins | /etc/hostname (base module; null: the image name) |
    | `users.passwd`, `users.group` | `[ "line" ]` | concatenate | lines of /etc/passwd and /etc/group (files written only when not empty) |
    | `kernelModules` | `[ path ]` | concatenate | `.ko` files the base init loads with insmod, in order (the TDX/SNP kernel of kernel/ needs none) |
    | `workload` | null or `{ package ? null; command = [ argv ]; }` | whole value | the program the base init runs last; `package` is merged at `/` like a tree |
    | `kernel`, `stub`, `busybox`, `firmware` | path, derivation or store path string | later wins | the kernel image (bzImage), the systemd-stub, the static busybox binary, the firmware (for measurements; unset, mkImage's `firmware` argument or the library's firmware of the platform: `firmwareFor` in image.nix) |
    | `uname` | string or null | later wins | the UKI `.uname` section |
    | `osRelease` | attrs of `KEY = "value"`, or a file | merge / later wins | the UKI `.osrel` section (and /etc/os-release with the base module) |
    | `platform` | null, `"tdx"`, `"snp"` | later wins | the confidential-computing platform, for measurements |
    | `initrd.compress` | `"none" \| "gzip" \| "zstd" \| "zstd:19"` | later wins | compression of the built initrd |
    | `initrd.preserveModes`, `initrd.allowDanglingSymlinks` | bool | later wins | as `cvmkit initrd --preserve-modes` / `--allow-dangling-symlinks` |
    | `initrd.extra` | `[ path ]` | concatenate | further initrds appended in the UKI (microcode, …) |
    | `initrd.specFiles` | `[ path ]` | concatenate | more gen_init_cpio spec files, applied after the generated one (their `file` locations must be absolute store paths) |
    | `disk.format` | `"raw" \| "gcp" \| "vhd" \| "qcow2"` | later wins | disk image format (the `disk` spec key, with `specExtensions.disk`) |
    | `measure` | attrs | merge | settings of the platform's item of `cvmkit build`'s `measure` spec key (`memory`, `qemu_version`, `vcpus`, `vcpu_type`, `kernel_hashes` (snp: direct boot with QEMU's kernel hashes; `modules/snp.nix` sets it), `target` (`"qemu"`, `"gcp"`, `"azure"`: whose firmware boots the image; the cloud modules set it, and then every document predicts only the image's registers, without the firmware), …) |
    | `runtime.package` | package with `bin/cvmkit-runtime`, a binary, or null | later wins | the static in-image runtime (modules/runtime.nix; default: mkImage's `runtime`) |
    | `runtime.settings.<name>` | string, int or list | later wins (lists concatenate) | lines of /etc/cvmkit/runtime.conf (modules/runtime.nix; the cloud profiles set `sources`) |
    | `runtime.nginx` | null or a static nginx binary | later wins | installed as /usr/sbin/nginx and run by the runtime for the HTTPS mapping |

    # Type

    ```
    options :: AttrSet
    ```
  */
  options = {
    files = { };
    dirs = { };
    devices = { };
    symlinks = { };
    trees = [ ];
    cmdline = [ ];
    init = {
      commands = [ ];
      services = { };
      shell = false;
      onWorkloadExit = "poweroff";
    };
    network = {
      default = "dhcp";
      interface = null;
    };
    hostname = null;
    users = {
      passwd = [ ];
      group = [ ];
    };
    kernelModules = [ ];
    workload = null;
    kernel = null;
    stub = null;
    busybox = null;
    firmware = null;
    uname = null;
    osRelease = { };
    platform = null;
    initrd = {
      compress = "zstd";
      preserveModes = false;
      allowDanglingSymlinks = false;
      extra = [ ];
      specFiles = [ ];
    };
    disk = {
      format = "raw";
    };
    measure = { };
    runtime = {
      package = null;
      settings = { };
      nginx = null;
    };
  };

  # Option groups whose keys are checked (free-form ones such as init.services, osRelease and
  # measure are not).
  checkedGroups = [
    "init"
    "network"
    "users"
    "initrd"
    "disk"
    "runtime"
  ];

  /**
    Loads one module: a path is imported; a function is called with the arguments it names
    among `{ lib, pkgs, config }` (all of them when it takes a plain argument); the result must
    be an attribute set. `_file` (nixpkgs' convention) names the module in error messages;
    otherwise it is named by its path or its position in the list.

    # Inputs

    `args`
    : `{ lib, pkgs, config }`: cvmkit's library, nixpkgs or null, the final merged config

    `index`
    : the module's position, for its default name

    `module`
    : a path, a function, or an attribute set

    # Type

    ```
    loadModule :: AttrSet -> Int -> Module -> { file :: String; value :: AttrSet; }
    ```
  */
  loadModule =
    args: index: module:
    let
      file0 = if isPath module then toString module else "modules[${toString index}]";
      imported = if isPath module then import module else module;
      fa = functionArgs imported;
      value =
        if isFunction imported then
          imported (if fa == { } then args else intersectAttrs fa args)
        else
          imported;
      file = if isAttrs value && value ? _file then toString value._file else file0;
      unknown = filter (n: !(options ? ${n}) && n != "_file") (attrNames value);
      unknownIn =
        g:
        if isAttrs (value.${g} or null) && !(value.${g} ? outPath) then
          filter (n: !(options.${g} ? ${n})) (attrNames value.${g})
        else
          [ ];
      badGroups = filter (g: value ? ${g} && unknownIn g != [ ]) checkedGroups;
      known = names: concatStringsSep ", " names;
    in
    assert assertMsg (isAttrs value) "module ${file} must evaluate to an attribute set, got a ${typeOf value}";
    assert assertMsg (unknown == [ ])
      "module ${file} sets unknown option${if length unknown > 1 then "s" else ""} ${known unknown}; the options are ${known (attrNames options)} (see nix/modules.nix)";
    assert assertMsg (badGroups == [ ]) (
      let
        g = builtins.head badGroups;
      in
      "module ${file} sets unknown option ${known (map (n: "${g}.${n}") (unknownIn g))}; ${g} has ${known (attrNames options.${g})} (see nix/modules.nix)"
    );
    {
      inherit file;
      value = removeAttrs value [ "_file" ];
    };

  /**
    An entry of an entry table in the form two definitions are compared in: defaults filled in
    (uid/gid 0, mode 0644 for files, 0755 for dirs, 0600 for devices), `force` dropped, a
    symlink given as a target string turned into `{ target }`.

    # Type

    ```
    normalizeEntry :: String -> (AttrSet | String) -> AttrSet
    ```

    # Examples

    ```nix
    normalizeEntry "symlinks" "busybox" => { gid = 0; target = "busybox"; uid = 0; }
    ```
  */
  normalizeEntry =
    table: v:
    let
      defaults = {
        files = {
          mode = "0644";
        };
        dirs = {
          mode = "0755";
        };
        devices = {
          mode = "0600";
        };
        symlinks = { };
      };
      entry = if table == "symlinks" && !(isAttrs v) then { target = v; } else v;
    in
    removeAttrs (
      {
        uid = 0;
        gid = 0;
      }
      // defaults.${table}
      // entry
    ) [ "force" ];

  /**
    Merges the definitions of one path of an entry table, in module order: equal definitions
    (after `normalizeEntry`) are kept once, a definition with `force = true` replaces what came
    before, anything else throws an error naming both modules.

    # Inputs

    `table`
    : `files`, `dirs`, `devices` or `symlinks`

    `path`
    : the path in the image

    `defs`
    : the definitions, as `{ file; value; }`

    # Type

    ```
    mergeEntry :: String -> String -> [{ file; value; }] -> a
    ```
  */
  mergeEntry =
    table: path: defs:
    let
      step =
        acc: d:
        if isAttrs d.value && (d.value.force or false) then
          d
        else if normalizeEntry table acc.value == normalizeEntry table d.value then
          acc
        else
          throw "cvmkit: ${table}.${toJSON path} is defined by ${acc.file} and again, differently, by ${d.file}; set `force = true` in the later definition to replace the earlier one";
    in
    (foldl' step (builtins.head defs) (builtins.tail defs)).value;

  /**
    Merges definitions of one option, given as `[ { file; value; } ]` in module order:

    1. lists concatenate, in module order;
    2. attribute sets (not derivations) merge key by key, recursively, by these rules;
    3. anything else (strings, numbers, booleans, paths, null, derivations, functions), and
       values of different kinds: the last definition wins;
    4. except: in the entry tables `files`, `dirs`, `devices` and `symlinks`, a path defined by
       several modules must be defined equally, unless a later definition sets
       `force = true`, which replaces the earlier ones whole;
    5. and `workload` is replaced whole by a later definition (argv lists must not
       concatenate).

    Values are only forced as far as needed to tell lists from sets, so modules can read
    `config` lazily.

    # Inputs

    `path`
    : the option path, as a list of names (`[ "init" "services" ]`)

    `defs`
    : the definitions, as `{ file; value; }`

    # Type

    ```
    mergeDefs :: [String] -> [{ file :: String; value :: a; }] -> a
    ```

    # Examples

    ```nix
    mergeDefs [ "cmdline" ] [ { file = "a"; value = [ "x" ]; } { file = "b"; value = [ "y" ]; } ]
    => [ "x" "y" ]
    ```
  */
  mergeDefs =
    path: defs:
    let
      values = map (d: d.value) defs;
      isTable = length path == 1 && builtins.elem (builtins.head path) entryTables;
      isWhole = length path == 1 && builtins.elem (builtins.head path) wholeValues;
      names = unique (concatLists (map attrNames values));
    in
    if length defs == 1 || isWhole then
      (last defs).value
    else if all isList values then
      concatLists values
    else if all isPlainAttrs values then
      listToAttrs (
        map (n: {
          name = n;
          value =
            let
              sub = map (d: {
                inherit (d) file;
                value = d.value.${n};
              }) (filter (d: d.value ? ${n}) defs);
            in
            if isTable then mergeEntry (builtins.head path) n sub else mergeDefs (path ++ [ n ]) sub;
        }) names
      )
    else
      (last defs).value;

  /**
    Evaluates image modules into one config: `options` (the defaults) first, then the
    modules in list order, merged by the rule of `mergeDefs`. Function modules receive
    `{ lib, pkgs, config }` where `config` is this result (a fixed point: read it lazily, e.g.
    inside values, never to decide which top-level options a module sets).

    # Inputs

    `lib`
    : cvmkit's library, handed to function modules

    `pkgs`
    : nixpkgs, or null without it, handed to function modules

    `modules`
    : a list of modules (paths, functions or attribute sets)

    # Type

    ```
    evalModules :: { lib, pkgs ? null, modules :: [Module] } -> AttrSet
    ```

    # Examples

    ```nix
    (evalModules { inherit lib; modules = [ { cmdline = [ "console=ttyS0" ]; } { cmdline = [ "quiet" ]; } ]; }).cmdline
    => [ "console=ttyS0" "quiet" ]
    ```
  */
  evalModules =
    {
      lib,
      pkgs ? null,
      modules,
      # Modules merged before `modules`, not counted in their names (mkImage's arguments).
      prefixModules ? [ ],
    }:
    let
      args = {
        inherit lib pkgs config;
      };
      load = list: genList (i: loadModule args i (builtins.elemAt list i)) (length list);
      loaded = [
        {
          file = "<cvmkit defaults>";
          value = options;
        }
      ]
      ++ load prefixModules
      ++ load modules;
      config = mergeDefs [ ] loaded;
    in
    assert assertMsg (isList modules) "modules must be a list, got a ${typeOf modules}";
    config;
}
