# Small helpers for cvmkit's Nix library, written with `builtins` only so that the library evaluates
# and builds without nixpkgs (checks/offline.sh uses it with Debian's nix-bin and no nixpkgs).
let
  inherit (builtins)
    attrNames
    bitAnd
    bitOr
    concatLists
    concatStringsSep
    elem
    elemAt
    filter
    foldl'
    genList
    getContext
    hasContext
    hashString
    head
    isAttrs
    isInt
    isList
    isPath
    isString
    length
    listToAttrs
    match
    replaceStrings
    stringLength
    substring
    tail
    toJSON
    typeOf
    ;
in
rec {
  /**
    Throws `cvmkit: <message>` unless `cond` holds; returns `true` otherwise, so checks chain
    with `assert`. The builtins-only counterpart of nixpkgs' `lib.assertMsg`.

    # Inputs

    `cond`
    : the condition that must hold

    `msg`
    : what is wrong and how to fix it, shown after `cvmkit: `

    # Type

    ```
    assertMsg :: Bool -> String -> Bool
    ```

    # Examples

    ```nix
    assert assertMsg (mode != null) "files.\"/init\" needs a mode"; …
    ```
  */
  assertMsg = cond: msg: if cond then true else throw "cvmkit: ${msg}";

  /**
    Checks that `value` is one of `allowed`, like nixpkgs' `lib.assertOneOf`; throws a message
    naming the option, the bad value and the allowed ones.

    # Inputs

    `name`
    : the option, as the user wrote it (`disk.format`)

    `value`
    : the value given

    `allowed`
    : the values accepted

    # Type

    ```
    assertOneOf :: String -> a -> [a] -> Bool
    ```

    # Examples

    ```nix
    assertOneOf "disk.format" "qcow2" [ "raw" "vhd" ]
    => error: cvmkit: disk.format is "qcow2"; expected one of "raw", "vhd"
    ```
  */
  assertOneOf =
    name: value: allowed:
    assertMsg (elem value allowed)
      "${name} is ${toJSON value}; expected one of ${concatStringsSep ", " (map toJSON allowed)}";

  /**
    The last element of a non-empty list.

    # Type

    ```
    last :: [a] -> a
    ```
  */
  last = xs: elemAt xs (length xs - 1);

  /**
    The elements of a list without repeats, first occurrence kept (quadratic: for short lists).

    # Type

    ```
    unique :: [a] -> [a]
    ```

    # Examples

    ```nix
    unique [ "b" "a" "b" ] => [ "b" "a" ]
    ```
  */
  unique = foldl' (acc: x: if elem x acc then acc else acc ++ [ x ]) [ ];

  /**
    The attributes of `set` whose names are in `names`, in the style of `lib.getAttrs` but
    skipping missing ones.

    # Type

    ```
    pick :: [String] -> AttrSet -> AttrSet
    ```
  */
  pick =
    names: set:
    listToAttrs (
      map (n: {
        name = n;
        value = set.${n};
      }) (filter (n: set ? ${n}) names)
    );

  /**
    Joins lines with `\n` and ends the text with one, or gives "" for no lines.

    # Type

    ```
    concatLines :: [String] -> String
    ```

    # Examples

    ```nix
    concatLines [ "a" "b" ] => "a\nb\n"
    ```
  */
  concatLines = ls: if ls == [ ] then "" else concatStringsSep "\n" ls + "\n";

  /**
    Quotes a string for POSIX `sh` (single quotes; `'` becomes `'\''`).

    # Inputs

    `s`
    : any string

    # Type

    ```
    shellQuote :: String -> String
    ```

    # Examples

    ```nix
    shellQuote "it's" => "'it'\\''s'"
    ```
  */
  shellQuote = s: "'" + replaceStrings [ "'" ] [ "'\\''" ] s + "'";

  /**
    Whether `v` is a derivation or another attribute set that coerces to a store path
    (`outPath`): the values the merge treats as scalars rather than merging into.

    # Type

    ```
    isStorePathLike :: a -> Bool
    ```
  */
  isStorePathLike = v: isAttrs v && v ? outPath;

  /**
    An attribute set that is merged into rather than replaced: not a derivation.

    # Type

    ```
    isPlainAttrs :: a -> Bool
    ```
  */
  isPlainAttrs = v: isAttrs v && !(v ? outPath);

  /**
    Turns an image input (a path literal, a derivation, or a string that carries its store
    path as context, like `"${pkgs.busybox}/bin/busybox"`) into a string with context, so that
    the image derivation depends on it and the sandbox can read it. Plain strings such as
    `"/usr/bin/busybox"` are refused: the sandbox could not see them and the image would not be
    reproducible.

    # Inputs

    `what`
    : the option being converted, for the error message (`files."/init".source`)

    `v`
    : the value

    # Type

    ```
    toInput :: String -> (Path | Derivation | String) -> String
    ```

    # Examples

    ```nix
    toInput "kernel" "${linux}/bzImage" => "/nix/store/…-linux-6.18.5/bzImage"
    toInput "kernel" "/boot/vmlinuz"
    => error: cvmkit: kernel is the plain string "/boot/vmlinuz", which Nix cannot track; …
    ```
  */
  toInput =
    what: v:
    if isPath v || isStorePathLike v then
      "${v}"
    else if isString v && hasContext v then
      v
    else if isString v then
      throw "cvmkit: ${what} is the plain string ${toJSON v}, which Nix cannot track as a build input; give a path literal (./file), a derivation, or a string made from one (\"\${pkg}/bin/x\")"
    else
      throw "cvmkit: ${what} must be a path, a derivation or a store path string, not a ${typeOf v}";

  /**
    Whether a string names a store path produced by a derivation (its context has outputs),
    which `builtins.toFile` cannot refer to.

    # Type

    ```
    hasDerivationContext :: String -> Bool
    ```
  */
  hasDerivationContext =
    s: hasContext s && builtins.any (c: c ? outputs || c.allOutputs or false) (builtins.attrValues (getContext s));

  /**
    A valid store path name made from `s`: characters Nix refuses become `-`, a leading `.`
    becomes `_`, and an empty result becomes `file`.

    # Type

    ```
    storeName :: String -> String
    ```

    # Examples

    ```nix
    storeName ".profile" => "_profile"
    storeName "a b"      => "a-b"
    ```
  */
  storeName =
    s:
    let
      chars = genList (i: substring i 1 s) (stringLength s);
      ok = c: match "[A-Za-z0-9+._?=-]" c != null;
      clean = concatStringsSep "" (map (c: if ok c then c else "-") chars);
      name = if clean == "" then "file" else clean;
    in
    if substring 0 1 name == "." then "_" + substring 1 (stringLength name) name else name;

  /**
    Checks a name inside the image: absolute, no whitespace (the gen_init_cpio format splits on
    it), no `..` component, not the root itself. Returns the name.

    # Inputs

    `what`
    : where the name comes from, for the message (`files`)

    `p`
    : the name, e.g. `/etc/passwd`

    # Type

    ```
    checkImagePath :: String -> String -> String
    ```
  */
  checkImagePath =
    what: p:
    assert assertMsg (isString p) "${what}: image paths are strings like \"/etc/hostname\", got a ${typeOf p}";
    assert assertMsg (match "/.*[^/].*" p != null) "${what}: ${toJSON p} must be an absolute path below / (like \"/etc/hostname\")";
    assert assertMsg (match ".*[[:space:]].*" p == null) "${what}: ${toJSON p} contains whitespace, which the initrd spec format cannot hold";
    assert assertMsg (match "(.*/)?\\.\\.(/.*)?" p == null) "${what}: ${toJSON p} has a '..' component";
    p;

  /**
    Checks a permission mode given as an octal string (`"0755"`, `"1777"`); Nix has no octal
    literals, so integers are refused rather than silently read as decimal.

    # Type

    ```
    checkMode :: String -> (String | Int) -> String
    ```

    # Examples

    ```nix
    checkMode "dirs.\"/tmp\"" "1777" => "1777"
    checkMode "files.\"/init\"" 755
    => error: cvmkit: files."/init": mode 755 must be an octal string like "0755" (…)
    ```
  */
  checkMode =
    what: m:
    assert assertMsg (isString m) "${what}: mode ${toJSON m} must be an octal string like \"0755\" (Nix has no octal numbers)";
    assert assertMsg (match "0?[0-7]{3,4}" m != null) "${what}: mode ${toJSON m} is not octal permission bits like \"0644\" or \"1777\"";
    m;

  /**
    Checks a uid/gid or device number: a non-negative integer up to `max`.

    # Type

    ```
    checkId :: String -> Int -> Int -> Int
    ```
  */
  checkId =
    what: max: v:
    assert assertMsg (isInt v && v >= 0 && v <= max) "${what} must be an integer from 0 to ${toString max}, got ${toJSON v}";
    v;

  # Nix's base-32 alphabet (no e, o, u, t).
  nix32Alphabet = "0123456789abcdfghijklmnpqrsvwxyz";

  /**
    The bytes of a lowercase hex string.

    # Type

    ```
    hexToBytes :: String -> [Int]
    ```

    # Examples

    ```nix
    hexToBytes "00ff10" => [ 0 255 16 ]
    ```
  */
  hexToBytes =
    hex:
    let
      digit =
        c:
        let
          i = builtins.listToAttrs (
            genList (n: {
              name = substring n 1 "0123456789abcdef";
              value = n;
            }) 16
          );
        in
        i.${c} or (throw "cvmkit: hexToBytes: ${toJSON c} is not a lowercase hex digit");
    in
    genList (
      i: 16 * digit (substring (2 * i) 1 hex) + digit (substring (2 * i + 1) 1 hex)
    ) (stringLength hex / 2);

  /**
    Encodes bytes in Nix's base-32 (the encoding of store path hashes and of
    `nix hash to-base32`): 5 bits per character, least significant first, most significant
    character written first.

    # Inputs

    `bytes`
    : a list of integers 0–255

    # Type

    ```
    toNix32 :: [Int] -> String
    ```

    # Examples

    ```nix
    toNix32 (hexToBytes (builtins.hashString "sha256" ""))
    => "0mdqa9w1p6cmli6976v4wi0sw9r4p5prkj7lzfd1877wk11c9c73"
    ```
  */
  toNix32 =
    bytes:
    let
      size = length bytes;
      len = (size * 8 - 1) / 5 + 1;
      pow2 = elemAt [
        1
        2
        4
        8
        16
        32
        64
        128
        256
      ];
      char =
        n:
        let
          b = n * 5;
          i = b / 8;
          j = b - i * 8;
          lo = elemAt bytes i / pow2 j;
          hi = if i >= size - 1 then 0 else elemAt bytes (i + 1) * pow2 (8 - j);
        in
        substring (bitAnd (bitOr lo hi) 31) 1 nix32Alphabet;
    in
    concatStringsSep "" (genList (k: char (len - 1 - k)) len);

  /**
    The file name under which Nix hands a `passAsFile` attribute to the builder: it writes the
    value to `.attr-<nix32 sha256 of the attribute name>` in the build directory, which is
    also the builder's working directory (Nix ≥ 2.0, unchanged since; see `passAsFile` in the
    Nix manual and `initEnv` in libstore). Relative to the working directory, this name works
    with and without the sandbox.

    # Inputs

    `attr`
    : the attribute name listed in `passAsFile`

    # Type

    ```
    passAsFileName :: String -> String
    ```

    # Examples

    ```nix
    passAsFileName "initrdSpec" => ".attr-14ppp8ra1h0qw0r145vjg74ikv0x61i6qdyzypkchg3hrp0wcr77"
    ```
  */
  passAsFileName = attr: ".attr-" + toNix32 (hexToBytes (hashString "sha256" attr));

  /**
    Concatenates a list of lists (re-exported from builtins for modules).

    # Type

    ```
    concatLists :: [[a]] -> [a]
    ```
  */
  inherit concatLists;

  /**
    Names of an attribute set, sorted (re-exported for symmetry with nixpkgs' lib).

    # Type

    ```
    attrNames :: AttrSet -> [String]
    ```
  */
  inherit attrNames;

  /**
    `head`/`tail` re-exported for modules that take `lib` from cvmkit rather than nixpkgs.
  */
  inherit head tail isList;
}
