# The flake's `rust-tests` check: the workspace's tests that need nothing outside the flake
# source, with the host tools they drive as oracles from nixpkgs:
#   - every crate's unit tests (`--lib --bins`);
#   - integration tests against real tools: cpio (cpio), FAT (dosfstools, mtools), GPT
#     (util-linux sfdisk, gptfdisk sgdisk), the initrd builder, the differ, the debloater, the
#     synthetic TCG-log/TPM/SNP vectors, and the runtime over loopback HTTP (nginx -t, openssl
#     certificates, swtpm for PCR 15, busybox httpd workloads, Pebble for ACME) except its QEMU boot.
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
  pkg-config,
  curl,
  swtpm,
  zstd,
  pebble,
  pkgsStatic,
  systemd,
  linuxPackages,
  stdenv,
}:
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
      # Compared with the schema cvmkit-image's types generate (its `schema` test).
      ./cvmkit.image.v1.schema.json
      ./rust-tests.sh
    ];
  };
  cargoLock.lockFile = ../Cargo.lock;
  # The workspace builds the CLI with its default `openssl` feature (libcrypto's SHA-384).
  nativeBuildInputs = [ pkg-config ];
  buildInputs = [ openssl ];
  # getBin: the output holding bin/ (openssl, curl and util-linux split theirs off). busybox is
  # not among them: stdenv puts every input's bin/ ahead of its own tools, and busybox's find,
  # sed and sort would shadow GNU's (the debloat tests use `find -printf`); it is passed by path.
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
    zstd
    # Let's Encrypt's ACME test server (pebble, pebble-challtestsrv): the runtime's ACME tests.
    pebble
  ];
  # The example inputs the differ's tests take apart, from nixpkgs instead of Debian's packages:
  # by environment, as cvmkit-testutil reads them (no .cache in the sandbox).
  BUSYBOX = "${pkgsStatic.busybox}/bin/busybox";
  STUB = "${systemd}/lib/systemd/boot/efi/linux${stdenv.hostPlatform.efiArch}.efi.stub";
  KERNEL = "${linuxPackages.kernel}/${stdenv.hostPlatform.linux-kernel.target}";
  # Only tests: nothing to build or install beyond what `cargo test` compiles.
  buildPhase = "runHook preBuild; runHook postBuild";
  doCheck = true;
  # The same script checks/rust-tests-sandbox.sh runs on Debian with a PATH shaped like this one.
  checkPhase = ''
    runHook preCheck
    bash nix/rust-tests.sh
    runHook postCheck
  '';
  installPhase = ''
    runHook preInstall
    echo "cvmkit: unit tests and the self-contained integration test targets of nix/rust-tests.sh passed" > "$out"
    runHook postInstall
  '';
}
