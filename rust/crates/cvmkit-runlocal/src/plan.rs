//! Checking the inputs: nothing is started here, so a bad flag fails before QEMU runs.

use std::collections::HashMap;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use cvmkit_manifest::{BASE_PORT, QEMU_METADATA_ADDR, QEMU_METADATA_PORT};

use crate::metadata::Route;
use crate::{Accel, Options};

/// Firmware looked for when --firmware is not given (Debian/Ubuntu's `ovmf` package).
const DEFAULT_FIRMWARE: [&str; 2] = ["/usr/share/ovmf/OVMF.fd", "/usr/share/qemu/OVMF.fd"];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ImageKind {
    Uki,
    Raw,
    Qcow2,
}

pub(crate) struct Workload {
    pub(crate) index: usize,
    pub(crate) sha256: Option<String>,
    pub(crate) guest_port: u16,
    pub(crate) host_port: Option<u16>,
}

/// Everything [`crate::run`] needs, checked: found tools and firmware, the disk to boot, the
/// metadata the guest will be served, the forwards.
pub struct Plan {
    pub(crate) image: PathBuf,
    pub(crate) firmware: PathBuf,
    pub(crate) qemu: PathBuf,
    pub(crate) swtpm: Option<PathBuf>,
    /// The accelerator chosen (`Auto` resolved).
    pub accel: Accel,
    pub(crate) memory: u32,
    pub(crate) smp: u32,
    pub(crate) nic_model: String,
    /// The disk QEMU boots and its format; `snapshot` when it is the user's file.
    pub(crate) disk: PathBuf,
    pub(crate) disk_format: &'static str,
    pub(crate) snapshot: bool,
    pub(crate) routes: HashMap<String, Route>,
    pub(crate) workloads: Vec<Workload>,
    /// (host port, guest port).
    pub(crate) forwards: Vec<(u16, u16)>,
    /// (guest port on 10.0.2.2, host port on 127.0.0.1).
    pub(crate) guest_forwards: Vec<(u16, u16)>,
    pub(crate) serial: SerialLog,
    /// Holds the temporary disk, swtpm's state and QEMU's stderr; removed on drop.
    pub(crate) tmp: tempfile::TempDir,
}

pub(crate) enum SerialLog {
    User(PathBuf),
    Temp(tempfile::TempPath),
}

impl SerialLog {
    pub(crate) fn path(&self) -> &Path {
        match self {
            Self::User(p) => p,
            Self::Temp(t) => t,
        }
    }
}

impl Plan {
    /// Checks every input and prepares the disk; starts nothing.
    pub fn check(args: &Options) -> Result<Plan> {
        let image = args.image.clone();
        let (image_file, kind) = detect_image(&image)?;

        let mut routes = HashMap::new();
        let mut manifests = Vec::new();
        let mut workloads = Vec::new();
        for (n, app) in args.app.iter().enumerate() {
            let sha = sha256_file(app)
                .with_context(|| format!("cannot read --app file {}", app.display()))?;
            let json = serde_json::json!({
                "app": format!("http://{QEMU_METADATA_ADDR}:{QEMU_METADATA_PORT}/apps/{n}"),
                "sha256": sha,
            });
            manifests.push(json.to_string());
            routes.insert(format!("/apps/{n}"), Route::File(app.clone()));
            workloads.push(Workload {
                index: n,
                sha256: Some(sha),
                guest_port: 0,
                host_port: None,
            });
        }
        for file in &args.manifest_json {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("cannot read --manifest-json file {}", file.display()))?;
            // Served exactly as given (a wrong hash or a broken value is a legitimate test); the
            // workloads are counted as the runtime will, when it is JSON at all.
            let entries = match serde_json::from_str::<serde_json::Value>(&text) {
                Ok(serde_json::Value::Array(list)) => list,
                Ok(v) => vec![v],
                Err(_) => vec![serde_json::Value::Null],
            };
            for e in entries {
                let sha = e
                    .get("sha256")
                    .and_then(|s| s.as_str())
                    .map(|s| s.to_ascii_lowercase());
                workloads.push(Workload {
                    index: workloads.len(),
                    sha256: sha,
                    guest_port: 0,
                    host_port: None,
                });
            }
            manifests.push(text);
        }
        for (i, json) in manifests.iter().enumerate() {
            let key = format!(
                "/{}",
                cvmkit_manifest::manifest_key(cvmkit_manifest::MANIFEST_KEY, i)
            );
            // A file's trailing newline is not part of the value.
            let value = cvmkit_manifest::encode(json.trim_end());
            routes.insert(key, Route::Bytes(value.into_bytes()));
        }
        if let Some(h) = &args.hostname {
            let key = format!("/{}", cvmkit_manifest::HOSTNAME_KEY);
            routes.insert(key, Route::Bytes(h.clone().into_bytes()));
        }

        let mut forwards = Vec::new();
        for f in &args.forward {
            forwards.push(parse_forward(f)?);
        }
        let mut guest_forwards = Vec::new();
        for f in &args.guest_forward {
            let (g, h) = parse_forward(f).map_err(|_| {
                anyhow::anyhow!(
                    "--guest-forward {f:?}: want GUEST_PORT:HOST_PORT, two ports from 1 to 65535"
                )
            })?;
            if g == QEMU_METADATA_PORT || guest_forwards.iter().any(|(o, _)| *o == g) {
                bail!("--guest-forward {f:?}: guest port {g} is already forwarded (the metadata server is {QEMU_METADATA_PORT})");
            }
            guest_forwards.push((g, h));
        }
        for w in &mut workloads {
            w.guest_port = u16::try_from(w.index)
                .ok()
                .and_then(|i| BASE_PORT.checked_add(i))
                .context("too many workloads")?;
            w.host_port = forwards
                .iter()
                .find(|(_, g)| *g == w.guest_port)
                .map(|(h, _)| *h);
        }
        if args.expect.is_some() {
            if !args.expect_path.starts_with('/') {
                bail!("--expect-path {:?} must start with /", args.expect_path);
            }
            let forwarded = forwards.iter().any(|(_, g)| *g == BASE_PORT);
            if workloads.is_empty() && !forwarded {
                bail!("--expect needs workload 0: give --app or --manifest-json, or --forward HOST_PORT:{BASE_PORT}");
            }
        }

        let firmware = find_firmware(args.firmware.as_deref())?;
        let qemu = find_tool(
            args.qemu.as_deref(),
            "qemu-system-x86_64",
            "--qemu",
            "qemu-system-x86",
        )?;
        let swtpm = if args.tpm {
            Some(find_tool(None, "swtpm", "--tpm", "swtpm")?)
        } else {
            None
        };
        let (memory_text, memory) = (&args.memory.0, args.memory.1);
        if memory % (1 << 20) != 0 || memory < (64 << 20) {
            bail!("--memory {memory_text}: a whole number of MiB, at least 64M");
        }
        let memory = u32::try_from(memory >> 20).context("--memory: too large")?;
        let accel = match args.accel {
            Accel::Auto if kvm_usable() => Accel::Kvm,
            Accel::Auto => Accel::Tcg,
            a => a,
        };
        if accel == Accel::Kvm && !kvm_usable() {
            bail!("--accel kvm: cannot open /dev/kvm read-write; use --accel tcg");
        }

        let serial = match &args.serial {
            Some(p) => {
                File::create(p)
                    .with_context(|| format!("cannot create --serial file {}", p.display()))?;
                SerialLog::User(p.clone())
            }
            None => SerialLog::Temp(
                tempfile::Builder::new()
                    .prefix("cvmkit-run-local-")
                    .suffix(".serial.log")
                    .tempfile()
                    .context("cannot create a temporary serial log")?
                    .into_temp_path(),
            ),
        };
        let tmp = tempfile::Builder::new()
            .prefix("cvmkit-run-local.")
            .tempdir()
            .context("cannot create a temporary directory")?;
        let (disk, disk_format, snapshot) = match kind {
            ImageKind::Uki => {
                let disk = tmp.path().join("disk.raw");
                let spec = cvmkit_disk::DiskSpec::new(&image_file, "cvmkit-run-local", 0);
                cvmkit_disk::write_disk_file(&spec, cvmkit_disk::Format::Raw, &disk).with_context(
                    || format!("cannot put the UKI {} on a disk", image_file.display()),
                )?;
                (disk, "raw", false)
            }
            ImageKind::Raw => (image_file.clone(), "raw", true),
            ImageKind::Qcow2 => (image_file.clone(), "qcow2", true),
        };

        Ok(Plan {
            image,
            firmware,
            qemu,
            swtpm,
            accel,
            memory,
            smp: args.smp,
            nic_model: args.nic_model.clone(),
            disk,
            disk_format,
            snapshot,
            routes,
            workloads,
            forwards,
            guest_forwards,
            serial,
            tmp,
        })
    }
}

/// Lower-case hex SHA-256 of a file, read in chunks.
fn sha256_file(path: &Path) -> Result<String> {
    use sha2::{Digest, Sha256};
    let mut f = File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut h = Sha256::new();
    std::io::copy(&mut f, &mut h).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(cvmkit_manifest::hex(&h.finalize()))
}

/// Resolves a directory to its uki.efi and tells the format by the first bytes.
fn detect_image(image: &Path) -> Result<(PathBuf, ImageKind)> {
    let meta = std::fs::metadata(image)
        .with_context(|| format!("cannot read image {}", image.display()))?;
    let file = if meta.is_dir() {
        let uki = image.join("uki.efi");
        if !uki.is_file() {
            bail!("image {} is a directory without uki.efi", image.display());
        }
        uki
    } else {
        image.to_path_buf()
    };
    let mut head = Vec::with_capacity(520);
    File::open(&file)
        .and_then(|f| f.take(520).read_to_end(&mut head))
        .with_context(|| format!("cannot read image {}", file.display()))?;
    let kind = if head.starts_with(b"MZ") {
        ImageKind::Uki
    } else if head.starts_with(b"QFI\xfb") {
        ImageKind::Qcow2
    } else if head.get(512..520) == Some(b"EFI PART") {
        ImageKind::Raw
    } else {
        bail!(
            "image {} is not a UKI (PE, starts with MZ), a raw GPT disk (\"EFI PART\" at byte 512) \
             or a qcow2 disk (starts with QFI\\xfb)",
            file.display()
        );
    };
    Ok((file, kind))
}

/// `HOST_PORT:GUEST_PORT`, both from 1 to 65535.
pub fn parse_forward(s: &str) -> Result<(u16, u16)> {
    let bad = || format!("--forward {s:?}: want HOST_PORT:GUEST_PORT, two ports from 1 to 65535");
    let (h, g) = s.split_once(':').with_context(bad)?;
    let port = |p: &str| p.trim().parse::<u16>().ok().filter(|&p| p != 0);
    match (port(h), port(g)) {
        (Some(h), Some(g)) => Ok((h, g)),
        _ => bail!(bad()),
    }
}

fn find_firmware(given: Option<&Path>) -> Result<PathBuf> {
    if let Some(p) = given {
        let meta = std::fs::metadata(p)
            .with_context(|| format!("cannot read firmware {} (--firmware)", p.display()))?;
        if !meta.is_file() {
            bail!(
                "firmware {} (--firmware) is not a regular file",
                p.display()
            );
        }
        return Ok(p.to_path_buf());
    }
    if let Some(p) = std::env::var_os("CVMKIT_FIRMWARE").filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        if !p.is_file() {
            bail!(
                "firmware {} (CVMKIT_FIRMWARE) is not a regular file",
                p.display()
            );
        }
        return Ok(p);
    }
    DEFAULT_FIRMWARE
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .with_context(|| {
            format!(
            "no UEFI firmware found at {}; install it (apt-get install ovmf) or give --firmware FILE",
            DEFAULT_FIRMWARE.join(" or ")
        )
        })
}

/// `given` (a path, or a name looked up on PATH), else `default` on PATH.
fn find_tool(given: Option<&Path>, default: &str, flag: &str, package: &str) -> Result<PathBuf> {
    let name = given.unwrap_or(Path::new(default));
    if name.components().count() > 1 {
        if !name.is_file() {
            bail!("{} ({flag}) does not exist", name.display());
        }
        return Ok(name.to_path_buf());
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .with_context(|| {
            format!(
                "{} not found on PATH; install it (apt-get install {package}) or give {flag}",
                name.display()
            )
        })
}

fn kvm_usable() -> bool {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwards() {
        assert_eq!(parse_forward("8080:3001").unwrap(), (8080, 3001));
        // anyhow errors: compare the message.
        for bad in ["0:3001", "80"] {
            assert_eq!(
                parse_forward(bad).unwrap_err().to_string(),
                format!("--forward {bad:?}: want HOST_PORT:GUEST_PORT, two ports from 1 to 65535")
            );
        }
    }
}
