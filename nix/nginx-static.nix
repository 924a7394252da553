# A static nginx for the images (`runtime.nginx`, modules/runtime.nix): nixpkgs' own nginx
# source (`nginx.src`, so the version and its security bumps follow the nixpkgs pin) built by
# pkgsStatic's stdenv (x86_64 musl, static) against static openssl and pcre2, with exactly the
# configure flags of ./nginx-static.flags, the list scripts/check-nginx-static.sh builds and tests
# on Debian. `pkgs.pkgsStatic.nginx` itself does not build: the static stdenv appends
# `--enable-static --disable-shared`, which nginx's hand-written ./configure rejects, and
# generic.nix pulls in perl, libxslt and libxml2 besides.
#
#   pkgs.callPackage ./nix/nginx-static.nix { }   # → $out/bin/nginx
#
# nixpkgs (nixos-25.05) names used, and where they were read (NixOS/nixpkgs; the exact pinned
# revision was not in the stored sources, the files below were read at the versions stored):
#   nginx, nginx.src, nginx.version
#       pkgs/servers/http/nginx/generic.nix: `stdenv.mkDerivation { inherit pname version …;
#       src = fetchurl { url = "https://nginx.org/download/nginx-${version}.tar.gz"; … }; }`,
#       called by stable.nix (`nginx = nginxStable`); its own build also sets
#       `configurePlatforms = [ ]` and, for musl, NIX_CFLAGS_COMPILE "-Wno-error=cpp".
#   pkgsStatic, pkgsStatic.stdenv, pkgsStatic.openssl, pkgsStatic.pcre2, pkgsStatic.zlib
#       pkgsStatic is already used by flake.nix (pkgsStatic.busybox, pkgsStatic.callPackage).
#   dontAddStaticConfigureFlags
#       pkgs/stdenv/adapters.nix: makeStaticLibraries adds `--enable-static --disable-shared`
#       and makeStaticBinaries `--disable-shared` unless it is set; makeStaticBinaries still
#       adds `-static` to NIX_CFLAGS_LINK.
#   configurePlatforms, dontAddPrefix, configureFlags
#       pkgs/stdenv/generic/setup.sh configurePhase: `--prefix=$out` unless dontAddPrefix;
#       configureFlags go through `concatTo flagsArray configureFlags …`, which splits a string
#       on whitespace (hence no whitespace inside a flag); make-derivation.nix turns
#       configurePlatforms into --build/--host (none with [ ]).
#   lib.hasPrefix, lib.platforms.linux, lib.licenses.bsd2 (lib/strings.nix, lib/systems, lib/licenses.nix)
{
  lib,
  nginx,
  pkgsStatic,
}:
let
  # ./nginx-static.flags: one flag per line, '#' comment lines and blank lines dropped, ends
  # trimmed; the same parse as scripts/check-nginx-static.sh.
  words = line: builtins.filter (w: builtins.isString w && w != "") (builtins.split "[[:space:]]+" line);
  lines = map words (builtins.filter builtins.isString (builtins.split "\n" (builtins.readFile ./nginx-static.flags)));
  flagLines = builtins.filter (ws: ws != [ ] && !(lib.hasPrefix "#" (builtins.head ws))) lines;
  flags = map (
    ws:
    if builtins.length ws == 1 then
      builtins.head ws
    else
      throw "nix/nginx-static.flags: '${toString ws}' has whitespace inside a flag (stdenv would split it)"
  ) flagLines;
  has = flag: builtins.elem flag flags;
in
pkgsStatic.stdenv.mkDerivation {
  pname = "nginx-static";
  inherit (nginx) version src;

  # zlib only for the gzip module, which the flags leave out.
  buildInputs = [
    pkgsStatic.openssl
    pkgsStatic.pcre2
  ]
  ++ lib.optional (!has "--without-http_gzip_module") pkgsStatic.zlib;

  # nginx's ./configure is not autoconf: no --enable-static/--disable-shared, no
  # --build/--host, no --prefix=$out (the prefix is in the flags: the image's paths).
  dontAddStaticConfigureFlags = true;
  configurePlatforms = [ ];
  dontAddPrefix = true;
  configureFlags = flags;

  # As nixpkgs' generic.nix does for musl: musl's compatibility sys/cdefs.h #warns, and nginx
  # builds with -Werror.
  env.NIX_CFLAGS_COMPILE = "-Wno-error=cpp";

  enableParallelBuilding = true;

  # `make install` would create the /run, /etc and /var paths of the flags; the image needs the
  # binary only.
  installPhase = ''
    runHook preInstall
    install -D -m 0755 objs/nginx $out/bin/nginx
    runHook postInstall
  '';

  # The static stdenv propagates buildInputs: nix-support/propagated-build-inputs would name the
  # openssl and pcre2 development outputs; a static binary needs none of them.
  postFixup = ''
    rm -rf $out/nix-support
  '';

  # x86_64 musl runs on the build machine: the binary reports the flags it was built with.
  doInstallCheck = true;
  installCheckPhase = ''
    runHook preInstallCheck
    $out/bin/nginx -V 2>&1 | tee nginx-V.txt
    grep -qF -- ${lib.escapeShellArg "configure arguments: ${toString flags}"} nginx-V.txt
    grep -q '^TLS SNI support enabled' nginx-V.txt
    runHook postInstallCheck
  '';

  meta = {
    description = "Static nginx for cvmkit images: TLS termination in front of the workloads";
    homepage = "https://nginx.org";
    license = lib.licenses.bsd2;
    mainProgram = "nginx";
    platforms = lib.platforms.linux;
  };
}
