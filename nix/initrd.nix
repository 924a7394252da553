# The initrd part of an image: merged module config -> lines of a gen_init_cpio spec, which
# `cvmkit build` applies (every `file` line points at a store path, so no tree has to be
# assembled with a shell).
{ util }:
let
  inherit (builtins)
    attrNames
    concatLists
    concatStringsSep
    filter
    hasContext
    hashString
    isAttrs
    isString
    length
    listToAttrs
    map
    match
    stringLength
    substring
    toFile
    toJSON
    toString
    ;
  inherit (util)
    assertMsg
    assertOneOf
    checkId
    checkImagePath
    checkMode
    concatLines
    passAsFileName
    storeName
    toInput
    unique
    ;

  maxId = 4294967295;

  /**
    The `<uid> <gid>` fields of a spec line for an entry (0 when not given), checked.

    # Type

    ```
    owner :: String -> AttrSet -> String
    ```
  */
  owner =
    what: e: "${toString (checkId "${what}.uid" maxId (e.uid or 0))} ${toString (checkId "${what}.gid" maxId (e.gid or 0))}";

  /**
    The `files` entries the `users` option stands for: /etc/passwd and /etc/group, each only
    when it has lines.

    # Type

    ```
    userFiles :: AttrSet -> AttrSet
    ```
  */
  userFiles =
    config:
    let
      mk = lines: {
        text = concatLines lines;
        mode = "0644";
      };
    in
    (if config.users.passwd != [ ] then { "/etc/passwd" = mk config.users.passwd; } else { })
    // (if config.users.group != [ ] then { "/etc/group" = mk config.users.group; } else { });
in
rec {
  /**
    The `passAsFile` attribute that carries a `text` file with store references (which
    `builtins.toFile` cannot hold) into the build; stable per image path.

    # Type

    ```
    textAttrName :: String -> String
    ```

    # Examples

    ```nix
    textAttrName "/etc/app.conf" => "cvmkitFile-<12 hex digits>"
    ```
  */
  textAttrName = path: "cvmkitFile-" + substring 0 12 (hashString "sha256" path);

  /**
    The location of a `files` entry, as a spec `file` line names it, plus the text the
    derivation must pass as a file for it (if any):

    - `source` (a path literal, a derivation, or a store path string): that store path;
    - `text` without store references: a store file made with `builtins.toFile`;
    - `text` with store references: `passAsFile`, so the location is the relative
      `.attr-…` file Nix writes into the build directory (see `util.passAsFileName`).

    # Inputs

    `path`
    : the file's path in the image

    `entry`
    : the `files` entry

    # Type

    ```
    fileLocation :: String -> AttrSet -> { location :: String; passFile :: null | { name; text; }; }
    ```

    # Examples

    ```nix
    fileLocation "/etc/motd" { text = "hi\n"; }
    => { location = "/nix/store/…-motd"; passFile = null; }
    ```
  */
  fileLocation =
    path: entry:
    let
      what = "files.${toJSON path}";
      hasSource = entry ? source && entry.source != null;
      hasText = entry ? text && entry.text != null;
    in
    assert assertMsg (isAttrs entry) "${what} must be an attribute set like { source = ./file; } or { text = \"…\"; }";
    assert assertMsg (hasSource != hasText) "${what} needs exactly one of `source` and `text`";
    if hasSource then
      {
        location = toInput "${what}.source" entry.source;
        passFile = null;
      }
    else
      assert assertMsg (isString entry.text) "${what}.text must be a string";
      if hasContext entry.text then
        let
          name = textAttrName path;
        in
        {
          location = passAsFileName name;
          passFile = {
            inherit name;
            inherit (entry) text;
          };
        }
      else
        {
          location = toFile (storeName (baseNameOf path)) entry.text;
          passFile = null;
        };

  /**
    The lines of the initrd spec for a merged config, in gen_init_cpio format, the same
    format as `cvmkit initrd --spec` (see README, "The initrd spec format"): `dir` lines first,
    then `nod`, `file` and `slink`, each group sorted by path; `users` adds /etc/passwd and
    /etc/group files. A path may appear in only one of `files`, `dirs`, `devices` and
    `symlinks`.

    # Inputs

    `config`
    : a config from `evalModules`

    # Type

    ```
    mkInitrdSpec :: AttrSet -> { lines :: [String]; text :: String; passFiles :: [{ name; text; }]; }
    ```

    # Examples

    ```nix
    (mkInitrdSpec (evalModules { inherit lib; modules = [ {
      dirs."/tmp".mode = "1777";
      devices."/dev/console" = { type = "c"; major = 5; minor = 1; };
      symlinks."/bin/sh" = "busybox";
    } ]; })).lines
    => [ "# …" "dir /tmp 1777 0 0" "nod /dev/console 0600 0 0 c 5 1" "slink /bin/sh busybox 0777 0 0" ]
    ```
  */
  mkInitrdSpec =
    config:
    let
      generated = userFiles config;
      clash = filter (p: config.files ? ${p}) (attrNames generated);
      files = config.files // generated;
      tables = {
        inherit files;
        inherit (config) dirs devices symlinks;
      };
      allPaths = concatLists (map (t: map (p: { inherit t p; }) (attrNames tables.${t})) (attrNames tables));
      pathNames = map (x: x.p) allPaths;
      dupes = filter (p: length (filter (x: x.p == p) allPaths) > 1) (unique pathNames);
      where = p: concatStringsSep " and " (map (x: x.t) (filter (x: x.p == p) allPaths));

      dirLine =
        p: e:
        let
          what = "dirs.${toJSON p}";
        in
        "dir ${checkImagePath "dirs" p} ${checkMode what (e.mode or "0755")} ${owner what e}";

      devLine =
        p: e:
        let
          what = "devices.${toJSON p}";
        in
        assert assertMsg (isAttrs e) "${what} must be { type = \"c\"; major = …; minor = …; }";
        assert assertOneOf "${what}.type" (e.type or null) [
          "c"
          "b"
        ];
        "nod ${checkImagePath "devices" p} ${checkMode what (e.mode or "0600")} ${owner what e} ${e.type} ${toString (checkId "${what}.major" 4095 (e.major or null))} ${toString (checkId "${what}.minor" 1048575 (e.minor or null))}";

      fileInfo = p: e: fileLocation (checkImagePath "files" p) e;
      fileLine =
        p: e:
        let
          what = "files.${toJSON p}";
        in
        "file ${p} ${(fileInfo p e).location} ${checkMode what (e.mode or "0644")} ${owner what e}";

      linkLine =
        p: e:
        let
          what = "symlinks.${toJSON p}";
          target = if isAttrs e then e.target or null else e;
        in
        assert assertMsg (isString target && target != "") "${what} must be a target string or { target = \"…\"; }";
        assert assertMsg (match ".*[[:space:]].*" target == null) "${what}: target ${toJSON target} contains whitespace, which the initrd spec format cannot hold";
        assert assertMsg (stringLength target <= 4095) "${what}: target is longer than Linux allows (4095 bytes)";
        "slink ${checkImagePath "symlinks" p} ${target} 0777 ${owner what (if isAttrs e then e else { })}";

      linesOf = t: f: map (p: f p tables.${t}.${p}) (attrNames tables.${t});
      lines = [
        "# initrd spec generated by cvmkit's nix/lib from the image modules (gen_init_cpio format)"
      ]
      ++ linesOf "dirs" dirLine
      ++ linesOf "devices" devLine
      ++ linesOf "files" fileLine
      ++ linesOf "symlinks" linkLine;
      passFiles = filter (x: x != null) (map (p: (fileInfo p files.${p}).passFile) (attrNames files));
    in
    assert assertMsg (clash == [ ])
      "files.${toJSON (builtins.head clash)} is set by a module and also generated from `users`; put those lines in users.passwd/users.group instead";
    assert assertMsg (dupes == [ ])
      "image path ${toJSON (builtins.head dupes)} is declared in more than one of files, dirs, devices, symlinks (${where (builtins.head dupes)})";
    {
      inherit lines passFiles;
      text = concatLines lines;
    };
}
