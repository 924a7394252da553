//! [`build`]: the whole image from a [`Spec`]: initrd, UKI, disk, measurements.json.

use crate::output::{write_atomically_keep_old, write_bytes};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use cvmkit_measure::Measurements;

use crate::error::{bail, read_input, Context as _, Error, Result};
use crate::predict::{Snp, Tdx, TdxBoot, Tpm, Vcpu};
use crate::spec::{defaults, MeasureSpec, Platform, Spec, Target, Tee};
use cvmkit_tpm::{DigestCache, Firmware};

/// What [`build`] wrote.
#[derive(Debug)]
pub struct Artifacts {
    /// `initrd.img`.
    pub initrd: PathBuf,
    /// `uki.efi`.
    pub uki: PathBuf,
    /// `disk.<extension>`, with a `disk` in the spec.
    pub disk: Option<PathBuf>,
    /// `measurements.json`, with a `measure` in the spec.
    pub measurements: Option<PathBuf>,
    /// The documents in measurements.json, in the spec's order.
    pub documents: Vec<Measurements>,
    /// `sbom.cdx.json`: what the image is made of (CycloneDX 1.6).
    pub sbom: PathBuf,
}

/// Builds the image of `spec` into `out` (created; outputs already there are replaced). Every
/// output is written all-or-nothing, so a failure never leaves a half-written file.
///
/// Work that does not wait on the initrd runs beside it: while one core compresses the
/// initrd, another hashes the kernel for the measurements (`.linux`'s digests, taken instead of
/// hashing `.linux` again once the UKI exists) and predicts what depends on firmware alone.
/// The UKI is hashed on its way to the file (laid out and checksummed first, then written front
/// to back into the hashing threads as well), not read back; the disk is planned from the UKI's
/// length and written beside it, from its bytes as they reach the file, and finished while the
/// documents are predicted. Same bytes as one step after another.
pub fn build(spec: &Spec, out: &Path) -> Result<Artifacts> {
    std::fs::create_dir_all(out)
        .with_context(|| format!("cannot create output directory {}", out.display()))?;
    let what = |step: &str| format!("image {}: {step}", spec.name);
    let items: &[MeasureSpec] = spec.measure.as_ref().map_or(&[], |m| m.as_slice());
    let (banks, initrd_banks) = digest_banks(items);
    let mut all_banks = banks.clone();
    all_banks.extend(initrd_banks.iter().filter(|b| !banks.contains(b)));
    let (initrd_file, uki_file) = (out.join("initrd.img"), out.join("uki.efi"));
    // References, for the threads below to copy.
    let (initrd_path, uki_path, all_banks) = (&initrd_file, &uki_file, &all_banks);
    let stub = read_input(&spec.uki.stub, "stub")?;
    std::thread::scope(|scope| -> Result<Artifacts> {
        let (kernel_tx, kernel_rx) = std::sync::mpsc::sync_channel(1);
        let background = scope.spawn(move || {
            let kernel = match read_input(&spec.uki.kernel, "kernel") {
                Ok(k) => Arc::new(k),
                Err(e) => {
                    let _ = kernel_tx.send(Err(e));
                    return (None, Vec::new(), Vec::new(), Default::default());
                }
            };
            let _ = kernel_tx.send(Ok(kernel.clone()));
            let known = (!all_banks.is_empty())
                .then(|| cvmkit_uefi_boot::KnownLinux::compute(kernel.clone(), all_banks));
            // For the SBOM: the kernel's and the firmware's SHA-256.
            let mut hashed = std::collections::BTreeMap::new();
            let sha256 = known
                .as_ref()
                .and_then(|k| k.digest(cvmkit_measure::Bank::Sha256));
            let sha256 = sha256.unwrap_or_else(|| cvmkit_measure::Bank::Sha256.hash(&kernel));
            hashed.insert(
                spec.uki.kernel.clone(),
                sha256.try_into().expect("32 bytes"),
            );
            for fw in items.iter().filter_map(|m| m.firmware.as_ref()) {
                if !hashed.contains_key(fw) {
                    // Unreadable: left to the SBOM and the predictions to report.
                    if let Ok(d) = cvmkit_provenance::sha256_file(fw, "firmware") {
                        hashed.insert(fw.clone(), d);
                    }
                }
            }
            let early: Vec<Option<Result<Measurements>>> = items
                .iter()
                .map(|m| {
                    firmware_only(m)
                        .then(|| predict(spec, m, &[], uki_path, None, initrd_path, None, None))
                })
                .collect();
            // TDX's MRTD and RTMR0 (the firmware's part); an error is left to the prediction.
            let early_tdx: Vec<Option<cvmkit_tdx::FirmwareMeasurements>> = items
                .iter()
                .map(|m| {
                    let qemu_tdx = m.platform == Platform::Tdx
                        && m.target.unwrap_or_default() == Target::Qemu
                        && m.tee.is_none()
                        && !m.kernel_hashes;
                    let no_boot = TdxBoot::Direct {
                        kernel: PathBuf::new(),
                        initrd: None,
                        cmdline: String::new(),
                    };
                    qemu_tdx
                        .then(|| tdx_request(spec, m, no_boot).and_then(|t| t.firmware_measurements()).ok())
                        .flatten()
                })
                .collect();
            (known, early, early_tdx, hashed)
        });

        // 1. initrd
        let (initrd_model, initrd_sha256, file_digests, old_initrd) = build_initrd(spec, initrd_path)?;
        // Every output a rebuild replaces is removed on a thread of its own, beside the work: on
        // a file system mounted with `discard` freeing its blocks waits for the disk.
        let retire = |old: Option<PathBuf>| scope.spawn(move || old.map(std::fs::remove_file));
        let retire_initrd = retire(old_initrd);
        // 2. UKI, the initrds copied from their files into it (cvmkit_uki::PreparedUki::write).
        let kernel = kernel_rx
            .recv()
            .expect("the kernel is sent before anything else")?;
        let mut initrd_files: Vec<&Path> = vec![initrd_path];
        initrd_files.extend(spec.uki.extra_initrds.iter().map(PathBuf::as_path));
        let os_release = spec
            .uki
            .os_release
            .as_ref()
            .map(|p| read_input(p, "os-release"))
            .transpose()?;
        let parts = cvmkit_uki::UkiParts {
            linux: &kernel,
            cmdline: spec.uki.cmdline.as_deref(),
            os_release: os_release.as_deref(),
            uname: spec.uki.uname.as_deref(),
            ..Default::default()
        };
        let (known, mut early, early_tdx, hashed) = background
            .join()
            .unwrap_or_else(|e| std::panic::resume_unwind(e));
        // Laid out and summed first, so that every byte is final as it is written: 4.'s one pass
        // over the UKI then hashes the bytes on their way to the file instead of reading it back.
        let prepared = cvmkit_uki::prepare_uki(
            &stub,
            &parts,
            &initrd_files,
            spec.source_date_epoch,
            &cvmkit_uki::UkiOptions::default(),
        )
        .with_context(|| what("UKI"))?;
        // 3. the disk: planned from the UKI's length, and written beside the UKI from its bytes
        // as they reach the file (crate::follow) rather than read back once it is whole; it is
        // finished while 4. predicts.
        let mut gpt_disk: Option<Vec<u8>> = None;
        let mut disk_path = None;
        let mut layout = None;
        if let Some(d) = &spec.disk {
            let format = cvmkit_disk::Format::from(d.format);
            let seed = d.seed.clone().unwrap_or_else(|| spec.name.clone());
            let mut ds =
                cvmkit_disk::DiskSpec::new(uki_path, seed, u64::from(spec.source_date_epoch));
            ds.data_size = d.data_size.map(|s| s.0);
            ds.esp_size = d.esp_size.map(|s| s.0);
            ds.disk_size = d.disk_size.map(|s| s.0);
            ds.uki_len = Some(prepared.len());
            let l = cvmkit_disk::DiskLayout::plan(&ds, format).with_context(|| what("disk"))?;
            // The GPT as firmware reads it (protective MBR, header, entries): what TDX's
            // EV_EFI_GPT_EVENT measures, the same whatever container the disk ships in.
            gpt_disk = Some(l.gpt().primary_bytes());
            disk_path = Some(out.join(format!("disk.{}", format.extension())));
            layout = Some(l);
        }
        let follow = Arc::new(crate::follow::Follow::default());
        let disk = match (layout, &disk_path) {
            (Some(l), Some(p)) => {
                let (p, follow) = (p.clone(), follow.clone());
                Some(scope.spawn(move || {
                    let open = || -> std::io::Result<Box<dyn std::io::Read>> { Ok(Box::new(follow.reader())) };
                    let old = write_disk(&l, &p, &open)?;
                    Ok(retire(old))
                }))
            }
            _ => None,
        };
        // Until the UKI is whole and in place the disk's reader waits; if it never is (an error, a
        // panic), the reader fails and the disk is not written.
        let finish = crate::follow::Finish(&follow);
        let (written, old_uki) = write_atomically_keep_old(uki_path, |w| -> Result<Option<std::io::Result<_>>> {
            let clone = |f: &std::fs::File| f.try_clone().with_context(|| format!("cannot write {}", uki_path.display()));
            let file = clone(w.get_ref())?;
            follow.start(clone(&file)?);
            // Into the file through a counter, so that the disk's reader knows what it may read.
            let mut counted = std::io::BufWriter::with_capacity(
                1 << 20,
                crate::follow::Counted { inner: &mut **w.get_mut(), follow: &follow },
            );
            let w = &mut counted;
            // Flushed here: a failure to get the bytes into the file is the write's (no UKI),
            // not the hashing's (the UKI is whole and kept).
            let write = |out: &mut dyn std::io::Write| -> std::result::Result<(), TeeError> {
                prepared
                    .write(&mut &mut *out)
                    .map(drop)
                    .map_err(|e| TeeError::Write(Error::with_source(what("UKI"), e)))?;
                out.flush()
                    .map_err(|e| TeeError::Write(Error::with_source(format!("cannot write {}", uki_path.display()), e)))
            };
            let skeleton = match all_banks.is_empty() {
                // No item reads the UKI (SNP, Azure's TDX): nothing to hash.
                true => None,
                false => prepared.skeleton(),
            };
            let Some(skeleton) = skeleton else {
                write(w).map_err(TeeError::into_error)?;
                return Ok(None);
            };
            match cvmkit_uefi_boot::measure_written(
                skeleton,
                &file,
                w,
                &banks,
                &initrd_banks,
                None,
                known.as_ref(),
                write,
            ) {
                Ok(streamed) => Ok(streamed.map(Ok)),
                // The file is whole: it is kept, and the error reported after the disk's.
                Err(TeeError::Hash(e)) => Ok(Some(Err(e))),
                Err(e) => Err(e.into_error()),
            }
        })?;
        follow.finish(true);
        drop(finish);

        let retire_uki = retire(old_uki);
        // Its errors come first, as when the steps ran one after another.
        let disk_result = || {
            disk.map_or(Ok(None), |h| {
                h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)).map(Some)
            })
        };
        // Hashed as it was written, in bounded memory; read from the file when it did not open
        // as a UKI (the prediction then says why) or nothing was hashed.
        let streamed = match written {
            Some(Ok(s)) => s,
            Some(Err(e)) => {
                disk_result()?;
                return Err(Error::with_source(format!("cannot read UKI {}", uki_path.display()), e));
            }
            None if all_banks.is_empty() => cvmkit_uefi_boot::StreamedUki {
                bytes: Vec::new(),
                digests: None,
            },
            None => match crate::predict::read_uki_with(uki_path, &banks, &initrd_banks, None, known.as_ref()) {
                Ok(s) => s,
                Err(e) => {
                    disk_result()?;
                    return Err(e);
                }
            },
        };

        // 5. sbom.cdx.json (every component, with the sha256 of its bytes in the image), made
        // while 4. predicts.
        let sbom_path = out.join(crate::sbom::FILE);
        let uki_sha256 = streamed
            .digests
            .as_ref()
            .and_then(|d| d.whole_file_sha256());
        let sbom_file = sbom_path.clone();
        let sbom = scope.spawn(move || -> Result<()> {
            let uki_sha256: [u8; 32] = match uki_sha256 {
                Some(d) => d.try_into().expect("a SHA-256 digest is 32 bytes"),
                None => {
                    cvmkit_provenance::sha256_file(uki_path, "UKI").with_context(|| what("SBOM"))?
                }
            };
            let sbom = crate::sbom::generate(
                spec,
                &initrd_model,
                file_digests,
                &[("uki.efi", uki_sha256), ("initrd.img", initrd_sha256)],
                hashed,
            )?;
            write_bytes(&sbom_file, sbom.as_bytes())
        });

        // 4. measurements.json: one document per platform, in the order given.
        let mut documents = Vec::new();
        let mut measurements = None;
        let mut retire_measurements = None;
        let predicted = (|| -> Result<()> {
            if spec.measure.is_some() {
                let (uki, digests) = (&streamed.bytes, streamed.digests.clone());
                for (i, item) in items.iter().enumerate() {
                    let mut doc = match early.get_mut(i).and_then(Option::take) {
                        Some(doc) => doc?,
                        None => predict(
                            spec,
                            item,
                            uki,
                            uki_path,
                            gpt_disk.as_deref(),
                            initrd_path,
                            digests.as_ref(),
                            early_tdx.get(i).and_then(Option::as_ref),
                        )?,
                    };
                    doc.notes.extend(item.notes.iter().cloned());
                    // Outputs are named relative to the output directory: its path (a Nix store
                    // path, a temporary directory) must not reach the bytes of measurements.json.
                    for input in doc.inputs.values_mut() {
                        if let Some(rel) = input
                            .path
                            .as_deref()
                            .and_then(|p| Path::new(p).strip_prefix(out).ok())
                        {
                            input.path = Some(rel.display().to_string());
                        }
                    }
                    documents.push(doc);
                }
                crate::predict::check_streamed(digests.as_ref())?;
                let path = out.join("measurements.json");
                let mut text = serde_json::to_string_pretty(&documents)
                    .context("cannot serialize measurements")?;
                text.push('\n');
                let ((), old) = write_atomically_keep_old(&path, |w| {
                    w.write_all(text.as_bytes()).with_context(|| format!("cannot write {}", path.display()))
                })?;
                retire_measurements = Some(retire(old));
                measurements = Some(path);
            }
            Ok(())
        })();
        let retire_disk = disk_result()?;
        predicted?;
        sbom.join()
            .unwrap_or_else(|e| std::panic::resume_unwind(e))?;
        fn joined<T>(h: std::thread::ScopedJoinHandle<'_, T>) -> T {
            h.join().unwrap_or_else(|e| std::panic::resume_unwind(e))
        }
        let retired = [
            joined(retire_initrd),
            joined(retire_uki),
            retire_disk.and_then(joined),
            retire_measurements.and_then(joined),
        ];
        if let Some(Err(e)) = retired.into_iter().flatten().find(|r| r.is_err()) {
            return Err(Error::with_source(format!("cannot remove an output this build replaced in {}", out.display()), e));
        }
        Ok(Artifacts {
            initrd: initrd_file.clone(),
            uki: uki_file.clone(),
            disk: disk_path,
            measurements,
            documents,
            sbom: sbom_path,
        })
    })
}

/// How writing the UKI through [`cvmkit_uefi_boot::measure_written`] failed: writing it (no UKI),
/// or hashing it (the UKI is whole).
enum TeeError {
    Write(Error),
    Hash(std::io::Error),
}

impl From<std::io::Error> for TeeError {
    fn from(e: std::io::Error) -> TeeError {
        TeeError::Hash(e)
    }
}

impl TeeError {
    fn into_error(self) -> Error {
        match self {
            TeeError::Write(e) => e,
            TeeError::Hash(e) => Error::with_source("cannot hash the UKI", e),
        }
    }
}

/// Writes the initrd of `spec` to `path` as it is built (an uncompressed one never sits in
/// memory; a compressed one is compressed whole, as the compressors' bytes depend on it), taking
/// the SBOM's per-file and whole-initrd SHA-256 on the way rather than reading again.
/// Returns also the second name of the initrd it replaced (see [`write_atomically_keep_old`]).
fn build_initrd(
    spec: &Spec,
    path: &Path,
) -> Result<(cvmkit_initrd::Initrd, [u8; 32], crate::sbom::FileDigests, Option<PathBuf>)> {
    let what = |step: &str| format!("image {}: {step}", spec.name);
    let opts = cvmkit_initrd::Options {
        mtime: spec.source_date_epoch,
        preserve_modes: spec.initrd.preserve_modes,
        allow_dangling_symlinks: spec.initrd.allow_dangling_symlinks,
    };
    let specs = spec
        .initrd
        .spec_files
        .iter()
        .map(|p| cvmkit_initrd::Spec::from_file(p))
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| what("initrd spec"))?;
    let trees: Vec<&Path> = spec.initrd.trees.iter().map(PathBuf::as_path).collect();
    let spec_refs: Vec<&cvmkit_initrd::Spec> = specs.iter().collect();
    let mut file_digests = crate::sbom::FileDigests::default();
    let ((model, sha256), old) = write_atomically_keep_old(path, |w| {
        let mut hashing = crate::sbom::HashingWriter {
            inner: w,
            hash: Default::default(),
        };
        let (_, model) = cvmkit_initrd::build_observed(
            &trees,
            &spec_refs,
            &opts,
            spec.initrd.compress.0,
            &mut hashing,
            &mut |name, piece| file_digests.observe(name, piece),
        )
        .with_context(|| what("initrd"))?;
        Ok((model, sha2::Digest::finalize(hashing.hash).into()))
    })?;
    Ok((model, sha256, file_digests, old))
}

/// Writes the disk of `layout` to `path`, all or nothing.
/// Writes the disk; returns the second name of the disk it replaced (see
/// [`write_atomically_keep_old`]), for the caller to remove.
fn write_disk(
    layout: &cvmkit_disk::DiskLayout,
    path: &Path,
    open_uki: &cvmkit_disk::OpenUki<'_>,
) -> Result<Option<PathBuf>> {
    let ((), old) = write_atomically_keep_old(path, |w| {
        let file = w.get_mut();
        let report = layout
            .write_with_uki(&mut **file, open_uki)
            .with_context(|| format!("cannot write {}", path.display()))?;
        // Sparse formats seek over zeros; the length makes the trailing hole part of the file.
        file.set_len(report.output_size)
            .with_context(|| format!("cannot write {}", path.display()))?;
        Ok(())
    })?;
    Ok(old)
}

/// Items whose document depends on firmware alone (SNP's launch digest without kernel hashes,
/// on QEMU): predicted before the UKI exists.
fn firmware_only(m: &MeasureSpec) -> bool {
    m.platform == Platform::Snp
        && !m.kernel_hashes
        && m.target.unwrap_or_default() == Target::Qemu
        && m.tee.is_none()
}

/// The banks the items' predictions ask the UKI's digests in: the TPM's banks, TDX's SHA-384
/// (the same as the TPM's SHA-384 bank), and those of the initrd the kernel measures. One pass
/// over the UKI computes them all, shared by every document.
fn digest_banks(items: &[MeasureSpec]) -> (Vec<cvmkit_measure::Bank>, Vec<cvmkit_measure::Bank>) {
    use cvmkit_measure::Bank;
    let (mut banks, mut initrd) = (Vec::new(), Vec::new());
    for m in items {
        match (m.platform, m.target.unwrap_or_default()) {
            (Platform::Tpm, _) => banks.extend([Bank::Sha1, Bank::Sha256, Bank::Sha384]),
            (Platform::Tdx, Target::Qemu | Target::Gcp) => {
                banks.push(Bank::Sha384);
                if m.kernel_measures.unwrap_or_default() == crate::spec::KernelMeasures::Cc {
                    initrd.push(Bank::Sha384);
                }
            }
            _ => {}
        }
    }
    (banks, initrd)
}

/// The document of one `measure` item.
#[allow(clippy::too_many_arguments)] // the build's state, passed as it is
fn predict(
    spec: &Spec,
    m: &MeasureSpec,
    uki: &[u8],
    uki_path: &Path,
    gpt_disk: Option<&[u8]>,
    initrd_path: &Path,
    digests: Option<&Arc<DigestCache>>,
    firmware_measured: Option<&cvmkit_tdx::FirmwareMeasurements>,
) -> Result<Measurements> {
    let name = &spec.name;
    let ctx = || format!("image {name}: measure.{}", m.platform);
    if m.kernel_hashes && m.platform != Platform::Snp {
        bail!(
            "image {name}: measure {}: \"kernel_hashes\" is for snp only",
            m.platform
        );
    }
    let firmware = || {
        m.firmware
            .clone()
            .with_context(|| format!("image {name}: measure {} needs \"firmware\"", m.platform))
    };
    let target = m.target.unwrap_or_default();
    if m.tee.is_some() && !(m.platform == Platform::Tpm && target == Target::Gcp) {
        bail!("image {name}: measure {}: \"tee\" is for a tpm item with target gcp", m.platform);
    }
    if target != Target::Qemu {
        return cloud_document(spec, m, target, uki, uki_path, gpt_disk, digests);
    }
    match m.platform {
        Platform::Tpm => {
            let mut t = Tpm::new(uki_path);
            t.failed_boot_attempts = m.failed_boot_attempts.unwrap_or(0);
            t.digests = digests.cloned();
            t.document(uki).with_context(ctx)
        }
        Platform::Tdx => {
            let disk = gpt_disk.with_context(|| {
                format!("image {name}: measure tdx predicts a disk boot and needs a \"disk\"")
            })?;
            let gpt = cvmkit_tdx::uefi_gpt_data(disk, 512, None).with_context(ctx)?;
            let boot = TdxBoot::Uki {
                uki: uki_path.to_path_buf(),
                gpt,
                disk: None,
                failed_boot_attempts: m.failed_boot_attempts.unwrap_or(0),
                stub_version: None,
            };
            let mut t = tdx_request(spec, m, boot)?;
            t.firmware_measured = firmware_measured.cloned();
            t.document_with(Some(uki), digests.cloned()).with_context(ctx)
        }
        Platform::Snp => {
            let extra = spec.uki.extra_initrds.len();
            if m.kernel_hashes && extra > 0 {
                bail!("image {name}: measure snp: \"kernel_hashes\" predicts QEMU's -initrd, one file, but the UKI has {extra} extra initrd(s)");
            }
            let vcpus = m.vcpus.unwrap_or(defaults::SNP_VCPUS);
            let vcpu_type = m
                .vcpu_type
                .clone()
                .unwrap_or_else(|| defaults::SNP_VCPU_TYPE.into());
            let mut s = Snp::new(firmware()?);
            s.vcpus = Some(vcpus);
            s.vcpu = Some(Vcpu::Type(vcpu_type.clone()));
            if let Some(g) = &m.guest_features {
                s.guest_features = g.clone();
            }
            s.vmm_type = m.vmm_type.unwrap_or_default();
            if m.kernel_hashes {
                // The same inputs and code as `cvmkit measure snp --kernel --initrd --append`.
                s.kernel = Some(spec.uki.kernel.clone());
                s.initrd = Some(initrd_path.to_path_buf());
                s.append = spec.uki.cmdline.clone();
            }
            let mut doc = s.document().with_context(ctx)?;
            if m.kernel_hashes {
                doc.notes.push(format!(
                    "direct boot only: this launch digest holds for QEMU with -object sev-snp-guest,id=sev0,cbitpos=51,reduced-phys-bits=1,kernel-hashes=on -machine confidential-guest-support=sev0 -smp {vcpus} -cpu {vcpu_type} -bios <inputs.firmware> -kernel <inputs.kernel> -initrd <inputs.initrd> -append <inputs.append, byte for byte>; the firmware (OVMF's AmdSev build) does not boot the disk",
                ));
            }
            Ok(doc)
        }
    }
}

/// The TDX request of a `measure` item with target qemu, booting `boot`: one place, so that
/// the MRTD and RTMR0 computed early ([`Tdx::firmware_measurements`], before the UKI exists)
/// are those of the request that predicts the document.
fn tdx_request(spec: &Spec, m: &MeasureSpec, boot: TdxBoot) -> Result<Tdx> {
    let firmware = m.firmware.clone().with_context(|| {
        format!("image {}: measure {} needs \"firmware\"", spec.name, m.platform)
    })?;
    let mut t = Tdx::new(firmware, boot);
    if let Some(v) = &m.memory {
        t.memory = v.clone();
    }
    if let Some(v) = &m.qemu_version {
        t.qemu_version = v.clone();
    }
    t.ovmf_profile = m.ovmf_profile.unwrap_or_default();
    t.kernel_measures = m.kernel_measures.unwrap_or_default();
    if let Some(p) = &m.rtmr0_captured {
        t.rtmr0 = crate::predict::Rtmr0::Captured(p.clone());
    }
    Ok(t)
}

/// The document of one `measure` item for a cloud: only what the image decides is predicted;
/// what the cloud's firmware sets is named under `cloud`, with a note on where its values come
/// from. Nothing here reads the build's firmware: the cloud does not boot it.
fn cloud_document(
    spec: &Spec,
    m: &MeasureSpec,
    target: Target,
    uki: &[u8],
    uki_path: &Path,
    gpt_disk: Option<&[u8]>,
    digests: Option<&Arc<DigestCache>>,
) -> Result<Measurements> {
    let name = &spec.name;
    let ctx = || format!("image {name}: measure.{} (target {target})", m.platform);
    let mut doc = match (m.platform, target) {
        (Platform::Tpm, Target::Gcp) => {
            // Google's firmware logs the GPT and the images it starts into PCR 5/4 as OVMF does,
            // except in a TD, where both go into PCR 2 (real GCE logs: cvmkit-tpm's tests/gce.rs).
            let tee = match m.tee {
                Some(tee) => tee,
                None => {
                    let has = |p: Platform| spec.measure.iter().flat_map(|m| m.as_slice()).any(|i| i.platform == p);
                    match (has(Platform::Tdx), has(Platform::Snp)) {
                        (true, true) => bail!("image {name}: measure.tpm (target gcp) needs \"tee\" (tdx, snp or none): the image measures both tdx and snp"),
                        (true, false) => Tee::Tdx,
                        (false, true) => Tee::Snp,
                        (false, false) => Tee::None,
                    }
                }
            };
            let mut t = Tpm::new(uki_path);
            t.failed_boot_attempts = m.failed_boot_attempts.unwrap_or(0);
            t.digests = digests.cloned();
            t.firmware = if tee == Tee::Tdx { Firmware::GceTd } else { Firmware::Gce };
            t.gpt = gpt_disk.map(|d| cvmkit_tdx::uefi_gpt_data(d, 512, None)).transpose().with_context(ctx)?;
            let mut doc = t.document(uki).with_context(ctx)?;
            let predicted: Vec<String> = doc.registers.iter().map(|r| r.name.clone()).collect();
            doc.cloud = (0..8).map(|i| format!("PCR{i}")).filter(|n| !predicted.contains(n)).collect();
            doc.add_value("tee", tee);
            doc.notes.push(format!(
                "{} are Google's firmware's (its version, ACPI tables, boot variables, Secure Boot keys): references, not predictions; {} follow from this image ({}), PCR 11 from systemd-stub",
                doc.cloud.iter().map(|n| n.replacen("PCR", "PCR ", 1)).collect::<Vec<_>>().join(", "),
                predicted.iter().filter(|n| *n != "PCR11").map(|n| n.replacen("PCR", "PCR ", 1)).collect::<std::collections::BTreeSet<_>>().into_iter().collect::<Vec<_>>().join(", "),
                if tee == Tee::Tdx { "in a TD Google's firmware logs the GPT and the images it starts into PCR 2" } else { "the GPT into PCR 5, the UKI and its .linux into PCR 4" },
            ));
            doc
        }
        (Platform::Tpm, _) => {
            let mut t = Tpm::new(uki_path);
            t.failed_boot_attempts = m.failed_boot_attempts.unwrap_or(0);
            t.digests = digests.cloned();
            let mut doc = t.document(uki).with_context(ctx)?;
            // PCR 11 is systemd-stub's, the same under any firmware. PCR 0-7 are the firmware's,
            // and no Azure log here shows where Hyper-V UEFI places the GPT and the UKI.
            doc.registers.retain(|r| r.name == "PCR11");
            doc.cloud = (0..8).map(|i| format!("PCR{i}")).collect();
            doc.notes.push("PCR 0-7 are Hyper-V UEFI's (Azure's firmware, not this build's): not predicted; PCR 11 (systemd-stub: the UKI's sections) is the image's".into());
            doc
        }
        (Platform::Tdx, Target::Gcp) => {
            let disk = gpt_disk.with_context(|| format!("image {name}: measure tdx predicts a disk boot and needs a \"disk\""))?;
            let gpt = cvmkit_tdx::uefi_gpt_data(disk, 512, None).with_context(ctx)?;
            let mut boot = cvmkit_tdx::UkiBoot::new(uki, gpt);
            boot.digests = digests.cloned();
            boot.failed_boot_attempts = m.failed_boot_attempts.unwrap_or(0);
            let ovmf = match m.ovmf_profile.unwrap_or_default() {
                crate::spec::OvmfProfile::Edk2_202411 => cvmkit_tdx::OvmfProfile::EDK2_202411,
                crate::spec::OvmfProfile::Edk2Before202411 => cvmkit_tdx::OvmfProfile::EDK2_BEFORE_202411,
                crate::spec::OvmfProfile::NoCc => cvmkit_tdx::OvmfProfile::NO_CC_MEASUREMENT,
            };
            let stub = match m.kernel_measures.unwrap_or_default() {
                crate::spec::KernelMeasures::Cc => cvmkit_tdx::LinuxStubMeasurement::CcMeasurement,
                crate::spec::KernelMeasures::None => cvmkit_tdx::LinuxStubMeasurement::None,
            };
            let mut doc = cvmkit_tdx::cloud_disk_boot_document(&boot, &ovmf, stub, &uki_path.display().to_string()).with_context(ctx)?;
            doc.notes.push("MRTD and RTMR0 are Google's firmware's: MRTD per firmware release and RAM size (Google signs endorsements of it), RTMR0 per machine type and firmware release (capture it from a VM of the same shape); references, not predictions. RTMR1 and RTMR2 follow from this image booted as \\EFI\\BOOT\\BOOTX64.EFI from its disk".into());
            doc
        }
        (Platform::Tdx, _) => {
            let mut doc = Measurements::new(cvmkit_measure::Platform::Tdx);
            doc.cloud = ["MRTD", "RTMR0", "RTMR1", "RTMR2", "RTMR3"].map(String::from).to_vec();
            doc.notes.push("on Azure the TD is the paravisor: MRTD and the RTMRs are Microsoft's, not this image's; the image is judged by the vTPM's PCRs (the tpm document)".into());
            doc
        }
        (Platform::Snp, _) => {
            let mut doc = Measurements::new(cvmkit_measure::Platform::Snp);
            doc.cloud = vec!["LAUNCH_DIGEST".into()];
            doc.notes.push(match target {
                Target::Gcp => "the launch digest is Google's firmware's and the vCPUs' (Google signs endorsements of it per vCPU count); GCE boots the disk, not a direct kernel, so the image is judged by the vTPM's PCRs (the tpm document)".into(),
                _ => "on Azure the launch digest is the paravisor's (Microsoft's firmware), not this image's; the image is judged by the vTPM's PCRs (the tpm document)".into(),
            });
            doc
        }
    };
    doc.add_value("target", target);
    Ok(doc)
}
