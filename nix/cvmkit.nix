# A binary of the workspace, built from its Cargo.lock: the cvmkit CLI (default), or, with
# `crate = "cvmkit-runtime"` and `pkgs.pkgsStatic.callPackage`, the static in-image runtime.
{
  lib,
  rustPlatform,
  pkg-config,
  openssl,
  crate ? "cvmkit",
}:
rustPlatform.buildRustPackage {
  pname = crate;
  version = "0.1.0";
  src = lib.fileset.toSource {
    root = ../.;
    fileset = lib.fileset.unions [
      ../Cargo.toml
      ../Cargo.lock
      ../rust
    ];
  };
  cargoLock.lockFile = ../Cargo.lock;
  cargoBuildFlags = [
    "-p"
    crate
  ];
  # The CLI's default `openssl` feature: libcrypto's SHA-384 (cvmkit_measure::Hasher). The
  # runtime does not use it.
  nativeBuildInputs = lib.optionals (crate == "cvmkit") [ pkg-config ];
  buildInputs = lib.optionals (crate == "cvmkit") [ openssl ];
  # The test suite needs Debian's kernel/stub/OVMF and QEMU: it runs through scripts/test.sh.
  doCheck = false;
  meta = {
    description =
      if crate == "cvmkit-runtime" then
        "In-image runtime of cvmkit CVMs: manifest from cloud metadata, verified workload launch, HTTPS mapping"
      else
        "Build reproducible confidential-VM images and compute their measurements";
    license = with lib.licenses; [
      mit
      asl20
    ];
    mainProgram = crate;
  };
}
