//! One pass over a UKI for every platform (issue 16): the digests the TPM's three banks and
//! TDX's RTMR1/RTMR2 need are computed once by `Uki::prefetch`, and the predictions then hash
//! nothing again — with the same results as predictions without the cache. Real stubs 252 (the
//! kernel's initrd is the `.initrd` section) and 257 (it appends an `.osrel` cpio, hashed on
//! from a copy of the section's state).

mod util;

use std::sync::Arc;

use cvmkit_tdx::{uefi_gpt_data, uki_rtmr1, uki_rtmr2, LinuxStubMeasurement, OvmfProfile, UkiBoot};
use cvmkit_tpm::{predict, predict_with, Bank, DigestCache, Firmware, TpmOptions};
use cvmkit_uefi_boot::{measure_written, read_streamed_with, KnownLinux, Uki};
use cvmkit_uki::LinuxVirtualSize;
use util::*;

/// A one-partition GPT disk for the TDX boot (contents do not matter to the digests here).
fn gpt() -> Vec<u8> {
    let mut disk = vec![0u8; 64 * 512];
    let mut header = [0u8; 92];
    header[..8].copy_from_slice(b"EFI PART");
    header[8..12].copy_from_slice(&0x0001_0000u32.to_le_bytes());
    header[12..16].copy_from_slice(&92u32.to_le_bytes());
    header[24..32].copy_from_slice(&1u64.to_le_bytes());
    header[72..80].copy_from_slice(&2u64.to_le_bytes());
    header[80..84].copy_from_slice(&4u32.to_le_bytes());
    header[84..88].copy_from_slice(&128u32.to_le_bytes());
    disk[512..604].copy_from_slice(&header);
    let entry = &mut disk[1024..1152];
    entry[..16].copy_from_slice(&[0x28, 0x73, 0x2a, 0xc1, 0x1f, 0xf8, 0xd2, 0x11, 0xba, 0x4b, 0, 0xa0, 0xc9, 0x3e, 0xc9, 0x3b]);
    entry[32..40].copy_from_slice(&34u64.to_le_bytes());
    entry[40..48].copy_from_slice(&63u64.to_le_bytes());
    uefi_gpt_data(&disk, 512, None).unwrap()
}

fn check(stub: Stub) {
    let dir = tempfile::tempdir().unwrap();
    let uki = build_uki(stub, &build_initrd(dir.path()), LinuxVirtualSize::FileSize);
    let banks = [Bank::Sha1, Bank::Sha256, Bank::Sha384];

    let cache = Arc::new(DigestCache::new());
    let opened = Uki::open(&uki, None, None).unwrap().with_cache(Some(cache.clone()));
    opened.prefetch(&banks, &[Bank::Sha384]);
    let sections = opened.sections.len();
    // Per bank: the UKI's Authenticode, each section, .linux's Authenticode; the kernel's
    // initrd in SHA-384; the file's SHA-256 for the documents' inputs.
    assert_eq!(cache.computed(), 3 * (2 + sections) + 1 + 1, "{stub:?}");
    let after_prefetch = cache.computed();

    let opts = TpmOptions::default();
    let tpm = predict_with(&uki, &opts, Some(cache.clone())).unwrap();
    let gce = predict_with(&uki, &opts.clone().with_firmware(Firmware::GceTd).with_gpt_data(Some(gpt())), Some(cache.clone())).unwrap();
    let mut boot = UkiBoot::new(&uki, gpt());
    boot.digests = Some(cache.clone());
    let rtmr1 = uki_rtmr1(&boot, &OvmfProfile::EDK2_202411).unwrap();
    let rtmr2 = uki_rtmr2(&boot, LinuxStubMeasurement::CcMeasurement).unwrap();
    assert_eq!(cache.computed(), after_prefetch, "{stub:?}: a prediction hashed a large content again");

    // The same results as without sharing.
    assert_eq!(tpm, predict(&uki, &opts).unwrap());
    assert_eq!(gce, predict(&uki, &opts.clone().with_firmware(Firmware::GceTd).with_gpt_data(Some(gpt()))).unwrap());
    let plain = UkiBoot::new(&uki, gpt());
    assert_eq!(rtmr1, uki_rtmr1(&plain, &OvmfProfile::EDK2_202411).unwrap());
    assert_eq!(rtmr2, uki_rtmr2(&plain, LinuxStubMeasurement::CcMeasurement).unwrap());

    // A cache claimed by other bytes is not used (a copy of the UKI is other bytes).
    let copy = uki.clone();
    assert_eq!(predict_with(&copy, &opts, Some(cache.clone())).unwrap(), tpm);
    assert_eq!(cache.computed(), after_prefetch);
}

/// The predictions from `bytes` (what a pass read of the UKI) and the pass's digests are those of
/// the whole UKI in memory: TPM (OVMF, and GCE's TD firmware with the disk), RTMR1, RTMR2; and
/// none asked for a digest the pass did not compute.
fn same_predictions(stub: Stub, bytes: &[u8], cache: &Arc<DigestCache>, uki: &[u8]) {
    let opts = TpmOptions::default();
    let gce = opts.clone().with_firmware(Firmware::GceTd).with_gpt_data(Some(gpt()));
    assert_eq!(predict_with(bytes, &opts, Some(cache.clone())).unwrap(), predict(uki, &opts).unwrap(), "{stub:?}");
    assert_eq!(predict_with(bytes, &gce, Some(cache.clone())).unwrap(), predict(uki, &gce).unwrap(), "{stub:?}");
    let mut boot = UkiBoot::new(bytes, gpt());
    boot.digests = Some(cache.clone());
    let plain = UkiBoot::new(uki, gpt());
    assert_eq!(uki_rtmr1(&boot, &OvmfProfile::EDK2_202411).unwrap(), uki_rtmr1(&plain, &OvmfProfile::EDK2_202411).unwrap());
    assert_eq!(
        uki_rtmr2(&boot, LinuxStubMeasurement::CcMeasurement).unwrap(),
        uki_rtmr2(&plain, LinuxStubMeasurement::CcMeasurement).unwrap()
    );
    assert_eq!(cache.misses(), 0, "{stub:?}: a prediction needed a digest the pass did not compute");
}

/// The same digests from the file in one sequential pass, in bounded memory
/// (`cvmkit_uefi_boot::read_streamed`): the same count, the same predictions, although the
/// buffer the predictions see does not hold the kernel or the initrd.
/// With `known`, `.linux`'s digests come from the kernel hashed before the UKI was written
/// (`KnownLinux`, what `cvmkit build` does while the initrd compresses).
fn check_streamed(stub: Stub, linux: LinuxVirtualSize, known: bool) {
    let dir = tempfile::tempdir().unwrap();
    let uki = build_uki(stub, &build_initrd(dir.path()), linux);
    let path = dir.path().join("uki.efi");
    std::fs::write(&path, &uki).unwrap();
    let banks = [Bank::Sha1, Bank::Sha256, Bank::Sha384];
    let kernel = Arc::new(std::fs::read(input("KERNEL")).unwrap());
    let known = known.then(|| KnownLinux::compute(kernel, &banks));
    let streamed = read_streamed_with(&path, &banks, &[Bank::Sha384], None, None, known.as_ref()).unwrap();
    let cache = streamed.digests.clone().expect("the UKI opens");
    let sections = Uki::open(&uki, None, None).unwrap().sections.len();
    assert_eq!(cache.computed(), 3 * (2 + sections) + 1 + 1, "{stub:?}");
    assert_eq!(streamed.bytes.len(), uki.len());
    assert_ne!(streamed.bytes, uki, "{stub:?}: the large sections were read into memory");

    same_predictions(stub, &streamed.bytes, &cache, &uki);
}

/// A new file open for writing and reading (the hashers read pieces out of file order back).
fn create(path: &std::path::Path) -> std::fs::File {
    std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(true).open(path).unwrap()
}

/// What `cvmkit build` does: the UKI laid out and checksummed first (`cvmkit_uki::prepare_uki`),
/// then hashed on its way to the file (`measure_written`) rather than read back. The file is
/// `build_uki`'s bytes, and the digests give the predictions of the whole UKI in memory.
fn check_written(stub: Stub, linux: LinuxVirtualSize, known: bool) {
    let dir = tempfile::tempdir().unwrap();
    let initrd_path = dir.path().join("initrd.img");
    std::fs::write(&initrd_path, build_initrd(dir.path())).unwrap();
    let uki = build_uki(stub, &std::fs::read(&initrd_path).unwrap(), linux);
    let stub_bytes = stub.read();
    let kernel = Arc::new(std::fs::read(input("KERNEL")).unwrap());
    let parts = cvmkit_uki::UkiParts {
        linux: &kernel,
        cmdline: Some(CMDLINE),
        os_release: Some(OS_RELEASE.as_bytes()),
        uname: Some("6.1.0-cvmkit"),
        ..cvmkit_uki::UkiParts::default()
    };
    let opts = cvmkit_uki::UkiOptions::default().with_linux_virtual_size(linux);
    let prepared = cvmkit_uki::prepare_uki(&stub_bytes, &parts, &[initrd_path.as_path()], 0, &opts).unwrap();
    let banks = [Bank::Sha1, Bank::Sha256, Bank::Sha384];
    let known = known.then(|| KnownLinux::compute(kernel.clone(), &banks));
    let path = dir.path().join("uki.efi");
    let mut file = create(&path);
    let reader = file.try_clone().unwrap();
    let write = |out: &mut dyn std::io::Write| prepared.write(&mut &mut *out).map(drop).map_err(std::io::Error::other);
    let skeleton = prepared.skeleton().unwrap();
    let streamed = measure_written::<std::io::Error>(skeleton, &reader, &mut file, &banks, &[Bank::Sha384], None, known.as_ref(), write)
        .unwrap()
        .expect("the UKI opens");
    drop(file);
    assert_eq!(std::fs::read(&path).unwrap(), uki, "{stub:?}: the bytes written");
    let cache = streamed.digests.clone().unwrap();
    let sections = Uki::open(&uki, None, None).unwrap().sections.len();
    assert_eq!(cache.computed(), 3 * (2 + sections) + 1 + 1, "{stub:?}");
    assert_eq!(cache.whole_file_sha256(), Some(Bank::Sha256.hash(&uki)));
    assert_ne!(streamed.bytes, uki, "{stub:?}: the kernel and the initrd were held in memory");

    same_predictions(stub, &streamed.bytes, &cache, &uki);
}

#[test]
fn written_while_hashed() {
    check_written(Stub::V252, LinuxVirtualSize::FileSize, false);
    check_written(Stub::V257, LinuxVirtualSize::SizeOfImage, false);
    check_written(Stub::V252, LinuxVirtualSize::FileSize, true);
    check_written(Stub::V257, LinuxVirtualSize::SizeOfImage, true);
}

/// A write that fails part-way is the caller's error, not a hash of part of a UKI; a write
/// that stops short of the layout's length is refused.
#[test]
fn written_short_or_failed() {
    let dir = tempfile::tempdir().unwrap();
    let uki = build_uki(Stub::V257, &build_initrd(dir.path()), LinuxVirtualSize::FileSize);
    let path = dir.path().join("uki.efi");
    let banks = [Bank::Sha256];
    for stop in [0, 100, uki.len() / 2, uki.len() - 1] {
        let mut file = create(&path);
        let reader = file.try_clone().unwrap();
        let failed = measure_written::<std::io::Error>(uki.clone(), &reader, &mut file, &banks, &[], None, None, |out| {
            out.write_all(&uki[..stop])?;
            Err(std::io::Error::other("disk full"))
        });
        assert_eq!(failed.unwrap_err().to_string(), "disk full");
        let mut file = create(&path);
        let short = measure_written::<std::io::Error>(uki.clone(), &reader, &mut file, &banks, &[], None, None, |out| out.write_all(&uki[..stop]));
        let err = short.unwrap_err().to_string();
        assert!(err.contains(&format!("the UKI written is {stop} bytes, its layout {}", uki.len())), "{err}");
    }
}

#[test]
fn stub_252_streamed_from_the_file() {
    check_streamed(Stub::V252, LinuxVirtualSize::FileSize, false);
}

#[test]
fn stub_257_streamed_from_the_file() {
    check_streamed(Stub::V257, LinuxVirtualSize::FileSize, false);
}

#[test]
fn streamed_with_zero_filled_linux() {
    check_streamed(Stub::V257, LinuxVirtualSize::SizeOfImage, false);
}

#[test]
fn streamed_with_the_kernel_hashed_before() {
    check_streamed(Stub::V252, LinuxVirtualSize::FileSize, true);
    check_streamed(Stub::V257, LinuxVirtualSize::FileSize, true);
    check_streamed(Stub::V257, LinuxVirtualSize::SizeOfImage, true);
}

/// A kernel that is not the bytes of `.linux` (one bit flipped, same length) is refused: its
/// digests would be predictions of another image.
#[test]
fn known_kernel_that_is_not_linux_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let uki = build_uki(Stub::V257, &build_initrd(dir.path()), LinuxVirtualSize::FileSize);
    let path = dir.path().join("uki.efi");
    std::fs::write(&path, &uki).unwrap();
    let banks = [Bank::Sha1, Bank::Sha256, Bank::Sha384];
    let mut kernel = std::fs::read(input("KERNEL")).unwrap();
    let mid = kernel.len() / 2;
    kernel[mid] ^= 1;
    let known = KnownLinux::compute(Arc::new(kernel), &banks);
    let err = read_streamed_with(&path, &banks, &[Bank::Sha384], None, None, Some(&known)).unwrap_err();
    assert!(err.to_string().contains("is not the kernel"), "{err}");
}

#[test]
fn stub_252_predictions_share_one_pass() {
    check(Stub::V252);
}

#[test]
fn stub_257_predictions_share_one_pass() {
    check(Stub::V257);
}
