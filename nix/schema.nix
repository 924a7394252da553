# The `cvmkit.image/v1` spec's JSON Schema, generated from the Rust types (rust/crates/cvmkit-image;
# `cvmkit build --print-schema`) and committed next to this file, and a validator for the part of
# JSON Schema that schemars emits, in `builtins` only. The library tests (nix/tests.nix) validate
# `mkSpec`'s output with it, so the Nix side cannot write a key or a value the Rust side does not
# know. A schema keyword the validator does not implement is an error, never silently ignored.
let
  inherit (builtins)
    all
    any
    attrNames
    concatLists
    concatStringsSep
    elem
    filter
    fromJSON
    genList
    head
    isAttrs
    isBool
    isFloat
    isInt
    isList
    isPath
    isString
    length
    map
    match
    readFile
    stringLength
    substring
    toJSON
    typeOf
    ;

  # Keywords checked here, and those that only describe (ignored).
  checked = [
    "$ref"
    "type"
    "const"
    "enum"
    "properties"
    "required"
    "additionalProperties"
    "items"
    "oneOf"
    "anyOf"
    "allOf"
    "minimum"
    "maximum"
    "pattern"
  ];
  annotations = [
    "$schema"
    "$defs"
    "$comment"
    "title"
    "description"
    "default"
    "examples"
    "deprecated"
    "readOnly"
    "writeOnly"
    "format"
  ];

  # The JSON type of a Nix value as `builtins.toJSON` writes it (paths and derivations are strings).
  jsonType =
    v:
    if v == null then
      "null"
    else if isBool v then
      "boolean"
    else if isInt v then
      "integer"
    else if isFloat v then
      "number"
    else if isString v || isPath v || (isAttrs v && (v ? outPath || v ? __toString)) then
      "string"
    else if isList v then
      "array"
    else if isAttrs v then
      "object"
    else
      typeOf v;

  hasType = t: v: jsonType v == t || (t == "number" && jsonType v == "integer");

  # A value in a message: short JSON, without copying paths to the store.
  show =
    v:
    let
      t = jsonType v;
    in
    if t == "string" then
      toJSON (toString v)
    else if t == "object" then
      "an object"
    else if t == "array" then
      "a list"
    else
      toJSON v;

  # `pattern` is a search; an anchored one (`^…$`, what schemars is given here) is a full match.
  matchesPattern =
    p: s:
    let
      n = stringLength p;
      anchored = n >= 2 && substring 0 1 p == "^" && substring (n - 1) 1 p == "$";
    in
    if anchored then match (substring 1 (n - 2) p) s != null else match ".*(${p}).*" s != null;

  # Bounds of schemars' integer formats (it writes `minimum` but leaves the maximum to `format`).
  formatMax = {
    uint8 = 255;
    uint16 = 65535;
    uint32 = 4294967295;
    int8 = 127;
    int16 = 32767;
    int32 = 2147483647;
  };
in
rec {
  /**
    The committed schema (nix/cvmkit.image.v1.schema.json) as a Nix value.
  */
  imageSchema = fromJSON (readFile ./cvmkit.image.v1.schema.json);

  /**
    The errors of `value` against `schema` (`root` resolves `$ref`s), each
    `<path>: <what is wrong>`; `[ ]` when it is valid.

    # Type

    ```
    validate :: { root :: AttrSet; path :: String; schema :: AttrSet; value :: a } -> [String]
    ```

    # Examples

    ```nix
    validate { root = imageSchema; path = "spec"; schema = imageSchema; value = { schema = "cvmkit.image/v1"; }; }
    => [ "spec: \"name\" is required" "spec: \"initrd\" is required" "spec: \"uki\" is required" ]
    ```
  */
  validate =
    {
      root,
      path,
      schema,
      value,
    }:
    let
      s = schema;
      sub = p: sch: v: validate {
        inherit root;
        path = p;
        schema = sch;
        value = v;
      };
      here = sch: sub path sch value;
      unknown = filter (k: !(elem k checked || elem k annotations)) (attrNames s);
      t = jsonType value;
      resolve =
        ref:
        let
          m = match "#/\\$defs/(.+)" ref;
        in
        if m != null && root ? "$defs" && root."$defs" ? ${head m} then
          root."$defs".${head m}
        else
          throw "cvmkit: schema at ${path}: cannot resolve $ref ${toJSON ref}";
      types = if isList s.type then s.type else [ s.type ];
      typeOk = !(s ? type) || any (ty: hasType ty value) types;
      # For `oneOf`/`anyOf` of constants (schemars' string enums), the allowed values.
      constants =
        alts:
        let
          resolved = map (a: if a ? "$ref" then resolve a."$ref" else a) alts;
        in
        if all (a: a ? const) resolved then map (a: a.const) resolved else null;
      # Only the alternatives of the value's JSON type are reported on: for schemars' `Option`
      # (`anyOf [ X { type = "null"; } ]`) and `OneOrMany` that is the one that was meant.
      deref = a: if a ? "$ref" then resolve a."$ref" else a;
      typeFits =
        a:
        let
          r = deref a;
        in
        !(r ? type) || any (ty: hasType ty value) (if isList r.type then r.type else [ r.type ]);
      alternatives =
        keyword: alts: okCount:
        let
          candidates = filter typeFits alts;
          results = map here candidates;
          passing = length (filter (r: r == [ ]) results);
          consts = constants alts;
        in
        if okCount passing then
          [ ]
        else if consts != null then
          [ "${path}: ${show value} is not one of ${concatStringsSep ", " (map toJSON consts)}" ]
        else if candidates == [ ] then
          [
            "${path}: ${show value} is not of type ${
              concatStringsSep " or " (concatLists (map (a: let t = (deref a).type; in if isList t then t else [ t ]) alts))
            }"
          ]
        else if length candidates == 1 && passing == 0 then
          head results
        else
          [
            "${path}: ${show value} matches ${toString passing} of the ${keyword} alternatives (${
              concatStringsSep "; or " (map (r: concatStringsSep ", " r) (filter (r: r != [ ]) results))
            })"
          ];
      objectErrors =
        let
          props = s.properties or { };
          extra = s.additionalProperties or true;
        in
        map (k: "${path}: ${toJSON k} is required") (filter (k: !(value ? ${k})) (s.required or [ ]))
        ++ concatLists (
          map (
            k:
            if props ? ${k} then
              sub "${path}.${k}" props.${k} value.${k}
            else if extra == false then
              [ "${path}: unknown key ${toJSON k} (not in the schema; known: ${concatStringsSep ", " (attrNames props)})" ]
            else if isAttrs extra then
              sub "${path}.${k}" extra value.${k}
            else
              [ ]
          ) (attrNames value)
        );
      max = s.maximum or (formatMax.${s.format or ""} or null);
    in
    if unknown != [ ] then
      throw "cvmkit: the schema at ${path} uses ${toJSON unknown}, which nix/schema.nix does not check; teach its validator"
    else if !typeOk then
      [ "${path}: ${show value} is not of type ${concatStringsSep " or " types}" ]
    else
      (if s ? "$ref" then here (resolve s."$ref") else [ ])
      ++ (if s ? const && value != s.const then [ "${path}: ${show value} is not ${toJSON s.const}" ] else [ ])
      ++ (
        if s ? enum && !(elem value s.enum) then
          [ "${path}: ${show value} is not one of ${concatStringsSep ", " (map toJSON s.enum)}" ]
        else
          [ ]
      )
      ++ (if s ? oneOf then alternatives "oneOf" s.oneOf (n: n == 1) else [ ])
      ++ (if s ? anyOf then alternatives "anyOf" s.anyOf (n: n >= 1) else [ ])
      ++ (if s ? allOf then concatLists (map here s.allOf) else [ ])
      ++ (if t == "object" then objectErrors else [ ])
      ++ (
        if t == "array" && s ? items then
          concatLists (genList (i: sub "${path}[${toString i}]" s.items (builtins.elemAt value i)) (length value))
        else
          [ ]
      )
      ++ (
        if (t == "integer" || t == "number") && s ? minimum && value < s.minimum then
          [ "${path}: ${show value} is less than ${toJSON s.minimum}" ]
        else
          [ ]
      )
      ++ (
        if (t == "integer" || t == "number") && max != null && value > max then
          [ "${path}: ${show value} is more than ${toJSON max}" ]
        else
          [ ]
      )
      ++ (
        if t == "string" && s ? pattern && !(matchesPattern s.pattern (toString value)) then
          [ "${path}: ${show value} does not match ${toJSON s.pattern}" ]
        else
          [ ]
      );

  /**
    The values of a string enum of the schema (`$defs.<name>`, a `oneOf` of constants), in the
    schema's order: `enumValues "DiskFormat"` is what `disk.format` accepts.

    # Type

    ```
    enumValues :: String -> [String]
    ```

    # Examples

    ```nix
    enumValues "Platform" => [ "tpm" "tdx" "snp" ]
    ```
  */
  enumValues =
    name:
    let
      d = imageSchema."$defs".${name};
    in
    if d ? enum then d.enum else map (a: a.const) d.oneOf;

  /**
    The errors of an image spec (`mkSpec`'s output) against the committed `cvmkit.image/v1`
    schema; `[ ]` when `cvmkit build` accepts its shape.

    # Type

    ```
    specErrors :: AttrSet -> [String]
    ```

    # Examples

    ```nix
    specErrors (mkSpec { … } // { colour = "red"; })
    => [ "spec: unknown key \"colour\" (not in the schema; known: …)" ]
    ```
  */
  specErrors =
    spec:
    validate {
      root = imageSchema;
      path = "spec";
      schema = imageSchema;
      value = spec;
    };

  /**
    `spec` itself when it is valid (see `specErrors`); otherwise an error listing what is wrong.

    # Type

    ```
    checkSpec :: AttrSet -> AttrSet
    ```
  */
  checkSpec =
    spec:
    let
      errors = specErrors spec;
    in
    if errors == [ ] then
      spec
    else
      throw "cvmkit: the image spec does not follow nix/cvmkit.image.v1.schema.json (the Rust types of cvmkit-image): ${concatStringsSep "; " errors}";
}
