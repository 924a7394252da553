/**
  The firmware of each platform, from nixpkgs' OVMF (pkgs/applications/virtualization/OVMF/
  default.nix, built by `edk2.mkDerivation`, whose install phase moves the build tree, e.g.
  `Build/AmdSev/RELEASE_GCC5`, to `$out`; nix/README.md "Firmware per platform" names the
  revisions read). The flake passes `tdx` and
  `snp` to the library as `firmwares` and `vtpm` as `firmware`, the fallback of images without a
  platform; `run-local` and the devShell's `CVMKIT_FIRMWARE` use `vtpm`.

  - `tdx`: `OVMF.override { tpmSupport = true; }`, OvmfPkg/OvmfPkgX64.dsc. edk2 ≥ 202408 builds
    it with `CC_MEASUREMENT_ENABLE = TRUE`: TdTcg2Dxe measures into the RTMRs in a TD, where no
    TPM answers and Tcg2Dxe stays out. It is the `vtpm` build itself, so `nix run .#run-local`
    boots the very file whose MRTD the TDX measurements predict.
  - `snp`: `OVMF.override { projectDscPath = "OvmfPkg/AmdSev/AmdSevX64.dsc"; }`, whose SEV
    metadata has the SNP_KERNEL_HASHES page that QEMU fills with `kernel-hashes=on` (OvmfPkgX64's
    hashes table is zero-sized). AmdSevX64.fdf builds one unified OVMF.fd (no CODE/VARS pair, so
    nixpkgs' `mv $out/FV/OVMF_{CODE,VARS}.fd` would fail: `postInstall` is replaced), and its
    PREBUILD grub.sh is skipped by an existing Grub/grub.efi (empty here, as Fedora, kata and
    nixpkgs' later `OVMF-amdsev` do). It boots by direct kernel boot only (`-kernel`, `-initrd`,
    `-append`), never from the disk.
  - `vtpm`: the same build as `tdx`: TPM 2.0 support (Tcg2Dxe measures PCR 0–7 and the UKI into
    PCR 4 when QEMU has a TPM, e.g. swtpm) plus the CC measurement. No SMM and no secure boot
    (nixpkgs' `OVMFFull` needs SMM and pflash), so `-bios` loads it.

  # Inputs

  `pkgs`
  : nixpkgs (x86_64-linux)

  # Type

  ```
  firmware :: { pkgs } -> { tdx, snp, vtpm :: { file :: String; package :: Derivation; build :: String; description :: String; } }
  ```

  # Examples

  ```nix
  (import ./nix/firmware.nix { inherit pkgs; }).snp.file
  => "/nix/store/…-OVMF-202505-fd/FV/OVMF.fd"
  ```
*/
{ pkgs }:
let
  ovmfTpm = pkgs.OVMF.override { tpmSupport = true; };
  ovmfAmdSev = (pkgs.OVMF.override { projectDscPath = "OvmfPkg/AmdSev/AmdSevX64.dsc"; }).overrideAttrs (o: {
    postPatch = (o.postPatch or "") + "touch OvmfPkg/AmdSev/Grub/grub.efi\n";
    postInstall = "mkdir -p $fd/FV\nmv -v $out/FV/OVMF.fd $fd/FV/\n";
  });
  entry = package: build: description: {
    file = "${package.fd}/FV/OVMF.fd";
    inherit package build description;
  };
in
{
  tdx = entry ovmfTpm "OvmfPkgX64, tpmSupport" "TDX: MRTD from this file; TdTcg2Dxe measures into RTMR0-2";
  snp = entry ovmfAmdSev "AmdSevX64" "SEV-SNP: the launch digest covers this file and, with kernel-hashes=on, the directly booted kernel, initrd and command line; no disk boot";
  vtpm = entry ovmfTpm "OvmfPkgX64, tpmSupport" "vTPM (QEMU + swtpm, run-local): Tcg2Dxe measures PCR 0-7, the UKI into PCR 4; TdTcg2Dxe the RTMRs in a TD";
}
