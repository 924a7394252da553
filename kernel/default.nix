/**
  cvmkit's confidential guest kernel (Intel TDX and AMD SEV-SNP): a pinned kernel.org release,
  x86_64 `defconfig` plus `guest.config` (TDX and SEV-SNP guest support with their attestation
  drivers, EFI stub, virtio, vsock, gVNIC, Hyper-V; no modules), built with nixpkgs'
  `linuxManualConfig`, so no import-from-derivation is needed.

  The configuration is a derivation of its own (`kernel.configfile`) whose build runs
  `mkconfig.sh`: it fails if any option of the fragment does not survive `olddefconfig`. The
  result is `$out/bzImage` (plus System.map), for `mkImage { kernel = "${kernel}/bzImage"; }`.

  Reproducibility: nixpkgs' kernel build already drops the ELF build-id, sets
  `KBUILD_BUILD_TIMESTAMP` from `SOURCE_DATE_EPOCH` and `KBUILD_BUILD_VERSION`; the user and
  host name that `/proc/version` shows are fixed here too.

  # Inputs

  The nixpkgs packages named below (`pkgs.callPackage ./kernel { }`).

  # Type

  ```
  callPackage ./kernel {} :: Derivation
  ```

  # Examples

  ```nix
  guestKernel = pkgs.callPackage ./kernel { };
  "${guestKernel}/bzImage"
  ```
*/
{
  stdenv,
  fetchurl,
  linuxManualConfig,
  flex,
  bison,
  bc,
  perl,
}:
let
  # Linux 6.18 LTS: the first LTS with the TDX RTMR sysfs interface (6.16+,
  # /sys/devices/virtual/misc/tdx_guest/measurements/rtmr3:sha384) that cvmkit-runtime extends
  # with the workload manifest. Version and hash as nixpkgs pins them in
  # pkgs/os-specific/linux/kernel/kernels-org.json ("6.18": version 6.18.5,
  # hash sha256:0h6r5w7755gd8ys18zi9rgw95wrd2yalbq0h88ihv3ggki01z78q at nixpkgs 001fc17c, which is
  # 189d1f409cef8d0d234210e04595172df392f8cb297e14b447ed95720e2fd940 in hex, the form of
  # https://cdn.kernel.org/pub/linux/kernel/v6.x/sha256sums.asc).
  version = "6.18.5";
  src = fetchurl {
    url = "mirror://kernel/linux/kernel/v6.x/linux-${version}.tar.xz";
    hash = "sha256-GJ0fQJzvjQ0jQhDgRZUXLfOS+MspfhS0R+2Vcg4v2UA=";
  };

  configfile = stdenv.mkDerivation {
    pname = "cvmkit-guest-kernel-config";
    inherit version src;
    nativeBuildInputs = [
      flex
      bison
      bc
      perl
    ];
    postPatch = "patchShebangs scripts";
    dontConfigure = true;
    buildPhase = ''
      runHook preBuild
      bash ${./mkconfig.sh} "$PWD" ${./guest.config} "$TMPDIR/guest.config.out"
      runHook postBuild
    '';
    installPhase = ''
      runHook preInstall
      cp "$TMPDIR/guest.config.out" "$out"
      runHook postInstall
    '';
  };
in
# manual-config's passthru already carries `configfile` (and `version`, `modDirVersion`).
linuxManualConfig {
  inherit version src configfile;
  modDirVersion = version;
  # What manual-config would otherwise read from the .config by import-from-derivation: only
  # whether modules and Rust are enabled matters to it.
  config = {
    CONFIG_MODULES = "n";
    CONFIG_RUST = "n";
  };
  extraMakeFlags = [
    "KBUILD_BUILD_USER=cvmkit"
    "KBUILD_BUILD_HOST=cvmkit"
  ];
  extraMeta.description = "Linux ${version} for cvmkit's Intel TDX / AMD SEV-SNP guests (no modules)";
}
