# The flake's `rust-tests` check: the workspace's tests that need nothing outside the flake
# source, with the host tools they drive as oracles from nixpkgs:
#   - every crate's unit tests (`--lib --bins`);
#   - integration tests against real tools: cpio (cpio), FAT (dosfstools, mtools), GPT
#     (util-linux sfdisk, gptfdisk sgdisk), the initrd builder, the differ, the debloater, the
#     synthetic TCG-log/TPM/SNP vectors, and the runtime over loopback HTTP (nginx -t, openssl
#     certificates, swtpm for PCR 15, busybox httpd workloads) except its QEMU boot.
# The rest of the suite needs Debian's kernel/stub/OVMF packages, the shared real-machine
# fixtures, the PyPI peers and QEMU boots; `scripts/test.sh` runs all of it (CI: .ci/run).
{
  lib,
  rustPlatform,
  cpio,
  dosfstools,
  mtools,
  util-linux,
  gptfdisk,
  nginx,
  openssl,
  curl,
  swtpm,
  pkgsStatic,
}:
let
  # package -> its integration test targets (and arguments after `--`)
  integration = [
    { package = "cvmkit-cpio"; test = "interop"; }
    { package = "cvmkit-debloat"; test = "debloat"; }
    { package = "cvmkit-diff"; test = "diff"; }
    { package = "cvmkit-fat"; test = "tools"; }
    { package = "cvmkit-gpt"; test = "tools"; }
    { package = "cvmkit-initrd"; test = "build"; }
    { package = "cvmkit-snp"; test = "expected"; }
    { package = "cvmkit-tcg-log"; test = "synthetic"; }
    { package = "cvmkit-tpm"; test = "synthetic"; }
    {
      package = "cvmkit-runtime";
      test = "runtime";
      args = "--skip qemu::";
    }
  ];
in
rustPlatform.buildRustPackage {
  pname = "cvmkit-rust-tests";
  version = "0.1.0";
  src = lib.fileset.toSource {
    root = ../.;
    fileset = lib.fileset.unions [
      ../Cargo.toml
      ../Cargo.lock
      ../rust
      # Read by the runtime test that keeps modules/runtime.nix's setting names in sync.
      ../modules/runtime.nix
    ];
  };
  cargoLock.lockFile = ../Cargo.lock;
  # getBin: the output holding bin/ (openssl, curl and util-linux split theirs off).
  nativeCheckInputs = map lib.getBin [
    cpio
    dosfstools
    mtools
    util-linux
    gptfdisk
    nginx
    openssl
    curl
    swtpm
    pkgsStatic.busybox
  ];
  # Only tests: nothing to build or install beyond what `cargo test` compiles.
  buildPhase = "runHook preBuild; runHook postBuild";
  doCheck = true;
  checkPhase = ''
    runHook preCheck
    export CVMKIT_INPUTS_ENV=/nonexistent
    cargo test --workspace --offline --locked --lib --bins -j "$NIX_BUILD_CORES"
    ${lib.concatMapStrings (t: ''
      cargo test --offline --locked -p ${t.package} --test ${t.test} -j "$NIX_BUILD_CORES" -- ${t.args or ""}
    '') integration}
    runHook postCheck
  '';
  installPhase = ''
    runHook preInstall
    echo "cvmkit: unit tests and ${toString (builtins.length integration)} self-contained integration test targets passed" > "$out"
    runHook postInstall
  '';
}
