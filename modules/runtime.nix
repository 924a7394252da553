# The in-image runtime (rust/crates/cvmkit-runtime): at boot it finds the workload manifest in
# cloud metadata (GCP attribute, Azure IMDS tag, or the QEMU host service at 10.0.2.2:8090),
# writes /etc/cvmkit/cloud-config.env, extends the manifest's events into PCR 15 / RTMR 3, fetches
# each app, runs it only if its sha256 matches (workload N on port 3001+N, restarted with
# backoff, logs on the console and in /var/log/cvmkit), and, with nginx, maps the `hostname`
# metadata value to the workloads over HTTPS. The base module's init starts it as the
# `cvmkit-runtime` service. README.md ("In-image runtime") says how a verifier combines the
# image measurements with the manifest hash.
#
# Options (nix/modules.nix):
#   runtime.package   the runtime: a package with bin/cvmkit-runtime, or the binary itself; it must
#                     be static (the image has no /lib). Default: mkImage's `runtime` argument
#                     (the flake passes its `cvmkit-runtime` package).
#   runtime.settings  `name = value` lines of /etc/cvmkit/runtime.conf: the runtime's long flags
#                     without `--` (`cvmkit-runtime --help`). Values are strings, integers or
#                     lists (written comma-separated); null leaves a setting out. The cloud
#                     profiles set `sources` (gcp.nix: gcp, azure.nix: azure, qemu.nix: qemu).
#                     `platform` is the image's `platform` option unless set: on tdx and snp the
#                     runtime then refuses to launch workloads it cannot bind to a register
#                     (no vTPM, no RTMR). `unmeasured = "allow"` overrides that and is accepted
#                     there only on development images (modules/devtools.nix sets it, and the
#                     boot then prints a warning on the console).
#   runtime.nginx     null (the runtime only writes the nginx configuration), or a static nginx
#                     binary (e.g. "${pkgs.callPackage ./nix/nginx-static.nix { }}/bin/nginx"): installed as
#                     /usr/sbin/nginx, checked with `nginx -t` and run by the runtime; workers
#                     run as nobody:nogroup.
#                     With nginx and `hostname` names, the runtime also obtains one certificate
#                     for them over ACME HTTP-01 (Let's Encrypt production unless
#                     `runtime.settings.acme-directory` says otherwise; `acme = "off"` disables it;
#                     README "HTTPS with ACME").
#
# Example (a QEMU image whose workload comes from the host's metadata service):
#   modules = with cvmkit.lib.x86_64-linux.modules; [ base qemu tdx runtime
#     { runtime.settings.discover-wait-secs = 300; } ];
{ config, lib, ... }:
let
  inherit (builtins)
    attrNames
    concatStringsSep
    filter
    isAttrs
    isBool
    isInt
    isList
    isString
    toJSON
    ;
  inherit (lib) assertMsg;
  rt = config.runtime;

  # The runtime's settings (rust/crates/cvmkit-runtime/src/config.rs, SETTINGS): a typo fails at
  # evaluation instead of at boot. A test of that crate keeps the two lists equal.
  knownSettings = [
    "sources"
    "gcp-url"
    "azure-url"
    "qemu-url"
    "manifest-key"
    "hostname-key"
    "connect-timeout-ms"
    "timeout-ms"
    "discover-wait-secs"
    "discover-interval-ms"
    "env-file"
    "state-dir"
    "log-dir"
    "base-port"
    "backoff-initial-ms"
    "backoff-max-ms"
    "backoff-reset-ms"
    "max-restarts"
    "fetch-attempts"
    "max-app-bytes"
    "fetch-timeout-secs"
    "ca-file"
    "tls-dir"
    "nginx-conf"
    "nginx-bin"
    "nginx-run-dir"
    "nginx-listen"
    "https-port"
    "http-port"
    "nginx-user"
    "measure"
    "tpm-device"
    "tpm-pcr"
    "rtmr-file"
    "events-file"
    "app-dir"
    "max-workloads"
    "platform"
    "unmeasured"
    "acme"
    "acme-directory"
    "acme-ca-file"
    "acme-contact"
    "acme-timeout-secs"
    "acme-retry-secs"
  ];

  render =
    name: v:
    if isString v then
      assert assertMsg (builtins.match ".*[\n#].*" v == null) "runtime.settings.${name}: the value ${toJSON v} must not contain a newline or #";
      v
    else if isInt v then
      toString v
    else if isList v then
      concatStringsSep "," (map (render name) v)
    else if isBool v then
      throw "cvmkit: runtime.settings.${name} is a boolean; the runtime's settings take strings, integers or lists"
    else if isAttrs v && v ? outPath then
      "${v}"
    else
      throw "cvmkit: runtime.settings.${name} = ${toJSON v}: expected a string, an integer or a list";

  nginxSettings = if rt.nginx == null then { } else {
    nginx-bin = "/usr/sbin/nginx";
    nginx-user = "nobody nogroup";
  };
  # The runtime's `unmeasured = auto` refuses to launch on TDX/SNP without a register to bind
  # the manifest to: a host that withholds the vTPM must not get unidentifiable workloads.
  platformSettings = if config.platform == null then { } else { platform = config.platform; };
  settings = platformSettings // nginxSettings // rt.settings;
  confidential = builtins.elem (settings.platform or null) [ "tdx" "snp" ];
  allowsUnmeasured = (settings.unmeasured or null) == "allow";
  devImage = builtins.isAttrs config.osRelease && (config.osRelease.VARIANT_ID or null) == "devtools";
  names = filter (n: settings.${n} != null) (attrNames settings);
  unknown = filter (n: !(builtins.elem n knownSettings)) names;

  runtimeConf =
    assert assertMsg (unknown == [ ]) "runtime.settings: unknown setting(s) ${concatStringsSep ", " unknown}; the runtime knows ${concatStringsSep " " knownSettings}";
    assert assertMsg (!(confidential && allowsUnmeasured) || devImage) "runtime.settings.unmeasured = \"allow\" on a ${settings.platform} image launches workloads that no register identifies (e.g. when the host withholds the vTPM); only development images (modules.devtools) may set it";
    lib.concatLines (
      [ "# /etc/cvmkit/runtime.conf, generated by modules/runtime.nix from runtime.settings" ]
      ++ map (n: "${n} = ${render n settings.${n}}") names
    );

  binary =
    assert assertMsg (rt.package != null) "modules/runtime.nix needs `runtime.package` (a static cvmkit-runtime): pass `runtime` to mkImage or set runtime.package in a module";
    # A package (derivation) holds bin/cvmkit-runtime; a path or string is the binary itself.
    if isAttrs rt.package then "${rt.package}/bin/cvmkit-runtime" else rt.package;
in
{
  _file = "modules/runtime.nix";
  files = {
    "/usr/bin/cvmkit-runtime" = {
      source = binary;
      mode = "0755";
    };
    "/etc/cvmkit/runtime.conf".text = runtimeConf;
  }
  // (
    if rt.nginx == null then
      { }
    else
      {
        "/usr/sbin/nginx" = {
          source = rt.nginx;
          mode = "0755";
        };
      }
  );
  dirs = {
    "/var" = { };
    "/var/lib" = { };
    "/var/log" = { };
  };
  # Keys fixed, values from config: the module checks read the keys before config exists.
  users = {
    passwd = if rt.nginx == null then [ ] else [ "nobody:x:65534:65534:nobody:/nonexistent:/bin/false" ];
    group = if rt.nginx == null then [ ] else [ "nogroup:x:65534:" ];
  };
  # Loud, on the console before anything starts: this image may run unidentifiable workloads.
  init.commands =
    if allowsUnmeasured then
      [
        "echo '********************************************************************************'"
        "echo 'WARNING: cvmkit-runtime unmeasured = allow: workloads launch even when no vTPM/RTMR'"
        "echo 'WARNING: binds them to the attestation. Development image: NOT for production.'"
        "echo '********************************************************************************'"
      ]
    else
      [ ];
  # The base init starts services after the network is up; the runtime reads runtime.conf.
  init.services.cvmkit-runtime = "exec /usr/bin/cvmkit-runtime run --config /etc/cvmkit/runtime.conf";
}
