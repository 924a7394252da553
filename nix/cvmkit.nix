# The cvmkit CLI, built from the workspace's Cargo.lock.
{ lib, rustPlatform }:
rustPlatform.buildRustPackage {
  pname = "cvmkit";
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
  cargoBuildFlags = [ "-p" "cvmkit" ];
  # The test suite needs Debian's kernel/stub/OVMF and QEMU: it runs through scripts/test.sh.
  doCheck = false;
  meta = {
    description = "Build reproducible confidential-VM images and compute their measurements";
    license = with lib.licenses; [ mit asl20 ];
    mainProgram = "cvmkit";
  };
}
