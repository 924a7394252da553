//! cvmkit-snp against the reference tool, sev-snp-measure 0.0.13 (PyPI), run as a subprocess on
//! the same files: a generated matrix over every vCPU type name it accepts, vCPU counts, guest
//! features, VMM types, modes (snp, snp with --snp-ovmf-hash, snp:ovmf-hash, seves, sev), direct
//! boot inputs (none, empty kernel, the real Debian kernel, kernel + initrd + append) and firmware
//! (Debian bookworm's OVMF.fd; the AmdSev and OvmfX64 suffix fixtures used whole, as the peer's
//! own tests do; the AmdSev suffix padded in front to 4 MiB, the size of the original build).
//! Errors must match too: the peer's message is a prefix of ours.
//!
//! The peer is found in $CVMKIT_VENV or .cache/venv (scripts/setup.sh installs it); without it the
//! test fails. The real inputs come from .cache/inputs/inputs.env (scripts/fetch-inputs.sh).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use cvmkit_snp::cvmkit_ovmf::Firmware;
use cvmkit_snp::*;

fn venv() -> PathBuf {
    cvmkit_testutil::venv()
}

/// `cmd`'s output, bounded in time.
fn output(cmd: &mut Command) -> std::process::Output {
    cvmkit_testutil::output_deadline(cmd, cvmkit_testutil::RUN_TIMEOUT)
}

/// The peer binary; its absence fails the test with the fix.
fn peer() -> PathBuf {
    let bin = venv().join("bin/sev-snp-measure");
    if !bin.is_file() {
        panic!(
            "the reference tool sev-snp-measure is not installed at {}: run scripts/setup.sh, or \
             `python3 -m venv .cache/venv && .cache/venv/bin/pip install sev-snp-measure==0.0.13` \
             (or point CVMKIT_VENV at a venv that has it)",
            bin.display()
        );
    }
    let out = output(Command::new(&bin).arg("--version"));
    let version = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        version.trim(),
        "sev-snp-measure 0.0.13",
        "the matrix pins sev-snp-measure 0.0.13"
    );
    bin
}

/// The example inputs the matrix uses: each from its environment variable, else inputs.env.
fn inputs() -> BTreeMap<String, PathBuf> {
    ["OVMF", "KERNEL"]
        .map(|k| (k.to_owned(), cvmkit_testutil::input(k)))
        .into_iter()
        .collect()
}

/// Deterministic pseudo-random numbers (xorshift64*), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[(self.next() % items.len() as u64) as usize]
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Mode {
    Snp,
    /// `--mode snp --snp-ovmf-hash <the peer's own snp:ovmf-hash output>`.
    SnpWithOvmfHash,
    SevEs,
    Sev,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Boot {
    None,
    /// `--kernel /dev/null`, as the peer's tests.
    EmptyKernel,
    Kernel,
    KernelInitrdAppend,
}

#[derive(Clone, Copy, Debug)]
enum VcpuArg {
    Name(VcpuType),
    Sig(u32),
    /// Only for ec2/gce, which do not need one.
    Absent,
}

#[derive(Clone, Debug)]
struct Case {
    mode: Mode,
    fw: usize,
    vcpus: u32,
    vcpu: VcpuArg,
    features: u64,
    vmm: VmmType,
    boot: Boot,
}

struct Fw {
    name: &'static str,
    path: PathBuf,
    bytes: Vec<u8>,
}

struct Files {
    fws: Vec<Fw>,
    kernel: PathBuf,
    kernel_bytes: Vec<u8>,
    initrd: PathBuf,
    initrd_bytes: Vec<u8>,
    append: &'static str,
}

#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Digest(String),
    /// The peer's `Error: …` message (without the prefix) / our error's message.
    Error(String),
}

fn run_peer(peer: &Path, args: &[String]) -> Outcome {
    let out = output(Command::new(peer).args(args));
    let stdout = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).trim().to_owned();
    match out.status.code() {
        Some(0) => Outcome::Digest(stdout),
        Some(1) if stderr.starts_with("Error: ") => {
            Outcome::Error(stderr["Error: ".len()..].to_owned())
        }
        code => panic!("sev-snp-measure {args:?} exited {code:?}: {stderr}"),
    }
}

fn peer_args(case: &Case, files: &Files, ovmf_hashes: &[String]) -> Vec<String> {
    let mut a: Vec<String> = Vec::new();
    let mut push = |s: &str| a.push(s.to_owned());
    match case.mode {
        Mode::Snp | Mode::SnpWithOvmfHash => push("--mode=snp"),
        Mode::SevEs => push("--mode=seves"),
        Mode::Sev => push("--mode=sev"),
    }
    push("--ovmf");
    push(files.fws[case.fw].path.to_str().unwrap());
    if case.mode != Mode::Sev {
        push(&format!("--vcpus={}", case.vcpus));
        match case.vcpu {
            VcpuArg::Name(t) => push(&format!("--vcpu-type={}", t.name())),
            VcpuArg::Sig(s) => push(&format!("--vcpu-sig={s:#x}")),
            VcpuArg::Absent => {}
        }
        push(&format!("--vmm-type={}", case.vmm.name()));
    }
    if matches!(case.mode, Mode::Snp | Mode::SnpWithOvmfHash) {
        push(&format!("--guest-features={:#x}", case.features));
    }
    if case.mode == Mode::SnpWithOvmfHash {
        push(&format!("--snp-ovmf-hash={}", ovmf_hashes[case.fw]));
    }
    match case.boot {
        Boot::None => {}
        Boot::EmptyKernel => push("--kernel=/dev/null"),
        Boot::Kernel => push(&format!("--kernel={}", files.kernel.display())),
        Boot::KernelInitrdAppend => {
            push(&format!("--kernel={}", files.kernel.display()));
            push(&format!("--initrd={}", files.initrd.display()));
            push(&format!("--append={}", files.append));
        }
    }
    a
}

fn ours(case: &Case, files: &Files, ovmf_hashes: &[String]) -> Outcome {
    let fw = &files.fws[case.fw];
    let firmware = match Firmware::parse_named(&fw.bytes, fw.name) {
        Ok(f) => f,
        Err(e) => return Outcome::Error(e.to_string()),
    };
    let (kernel, initrd, append): (Option<&[u8]>, Option<&[u8]>, Option<&str>) = match case.boot {
        Boot::None => (None, None, None),
        Boot::EmptyKernel => (Some(&[]), None, None),
        Boot::Kernel => (Some(&files.kernel_bytes), None, None),
        Boot::KernelInitrdAppend => (
            Some(&files.kernel_bytes),
            Some(&files.initrd_bytes),
            Some(files.append),
        ),
    };
    let args = SnpArgs {
        vcpus: case.vcpus,
        vcpu: match case.vcpu {
            VcpuArg::Name(t) => Some(Vcpu::Type(t)),
            VcpuArg::Sig(s) => Some(Vcpu::Signature(s)),
            VcpuArg::Absent => None,
        },
        guest_features: case.features,
        vmm_type: case.vmm,
        kernel,
        initrd,
        append,
        ovmf_hash: (case.mode == Mode::SnpWithOvmfHash)
            .then(|| parse_ovmf_hash(&ovmf_hashes[case.fw]).unwrap()),
        hashed: None,
    };
    let mode = match case.mode {
        Mode::Snp | Mode::SnpWithOvmfHash => SevMode::Snp,
        Mode::SevEs => SevMode::SevEs,
        Mode::Sev => SevMode::Sev,
    };
    // The CLI's `sev` mode takes no vCPU arguments.
    let args = if mode == SevMode::Sev {
        SnpArgs {
            vcpus: 0,
            vcpu: None,
            ..args
        }
    } else {
        args
    };
    match launch_digest(mode, &firmware, &args) {
        Ok(d) => Outcome::Digest(d.to_string()),
        Err(e) => Outcome::Error(e.to_string()),
    }
}

/// Builds the matrix: full coverage of each dimension against the others in rotation, plus a
/// random sample of the whole product.
fn matrix(nfw: usize) -> Vec<Case> {
    let mut rng = Rng(0x5eed_cafe_f00d_0001);
    let counts = [1u32, 2, 3, 4, 64];
    let boots = [
        Boot::None,
        Boot::EmptyKernel,
        Boot::Kernel,
        Boot::KernelInitrdAppend,
    ];
    let fws: Vec<usize> = (0..nfw).collect();
    let features = |rng: &mut Rng| match rng.next() % 3 {
        0 => 0x1,
        1 => 0x21,
        _ => rng.next(),
    };
    let vcpu_for = |rng: &mut Rng, vmm: VmmType| match (rng.next() % 8, vmm) {
        (0, _) => VcpuArg::Sig((rng.next() as u32) | 1),
        (1, VmmType::Ec2 | VmmType::Gce) => VcpuArg::Absent,
        _ => VcpuArg::Name(rng.pick(VcpuType::ALL)),
    };
    let mut cases = Vec::new();
    // A. Every vCPU type name under every VMM (SNP), and under QEMU for SEV-ES.
    for &t in VcpuType::ALL {
        for &vmm in VmmType::ALL {
            let f = features(&mut rng);
            cases.push(Case {
                mode: rng.pick(&[Mode::Snp, Mode::SnpWithOvmfHash]),
                fw: rng.pick(&fws),
                vcpus: rng.pick(&counts),
                vcpu: VcpuArg::Name(t),
                features: f,
                vmm,
                boot: rng.pick(&boots),
            });
        }
        cases.push(Case {
            mode: Mode::SevEs,
            fw: rng.pick(&fws),
            vcpus: rng.pick(&counts),
            vcpu: VcpuArg::Name(t),
            features: 0x1,
            vmm: VmmType::Qemu,
            boot: rng.pick(&boots),
        });
    }
    // B. Every firmware × VMM × direct boot input × SNP mode (with and without --snp-ovmf-hash).
    for &fw in &fws {
        for &vmm in VmmType::ALL {
            for &boot in &boots {
                for mode in [Mode::Snp, Mode::SnpWithOvmfHash] {
                    let f = features(&mut rng);
                    let vcpu = vcpu_for(&mut rng, vmm);
                    cases.push(Case {
                        mode,
                        fw,
                        vcpus: rng.pick(&counts),
                        vcpu,
                        features: f,
                        vmm,
                        boot,
                    });
                }
            }
        }
    }
    // C. Every vCPU count × VMM × firmware (SNP) and × guest features 0x1 / 0x21 / random.
    for &vcpus in &counts {
        for &vmm in VmmType::ALL {
            for &fw in &fws {
                let f = features(&mut rng);
                let vcpu = vcpu_for(&mut rng, vmm);
                cases.push(Case {
                    mode: Mode::Snp,
                    fw,
                    vcpus,
                    vcpu,
                    features: f,
                    vmm,
                    boot: rng.pick(&boots),
                });
            }
            for f in [0x1, 0x21, rng.next()] {
                let vcpu = vcpu_for(&mut rng, vmm);
                let fw = rng.pick(&fws);
                cases.push(Case {
                    mode: Mode::Snp,
                    fw,
                    vcpus,
                    vcpu,
                    features: f,
                    vmm,
                    boot: rng.pick(&boots),
                });
            }
        }
    }
    // D. SEV-ES: every firmware × direct boot input × VMM.
    for &fw in &fws {
        for &boot in &boots {
            for &vmm in VmmType::ALL {
                let vcpu = vcpu_for(&mut rng, vmm);
                cases.push(Case {
                    mode: Mode::SevEs,
                    fw,
                    vcpus: rng.pick(&counts),
                    vcpu,
                    features: 0,
                    vmm,
                    boot,
                });
            }
            // E. SEV: every firmware × direct boot input.
            cases.push(Case {
                mode: Mode::Sev,
                fw,
                vcpus: 1,
                vcpu: VcpuArg::Absent,
                features: 0,
                vmm: VmmType::Qemu,
                boot,
            });
        }
    }
    // G. A random sample of the whole product.
    let modes = [Mode::Snp, Mode::SnpWithOvmfHash, Mode::SevEs, Mode::Sev];
    for _ in 0..40 {
        let vmm = rng.pick(VmmType::ALL);
        let f = features(&mut rng);
        let vcpu = vcpu_for(&mut rng, vmm);
        cases.push(Case {
            mode: rng.pick(&modes),
            fw: rng.pick(&fws),
            vcpus: rng.pick(&counts),
            vcpu,
            features: f,
            vmm,
            boot: rng.pick(&boots),
        });
    }
    cases
}

#[test]
fn matrix_agrees_with_sev_snp_measure() {
    let peer = peer();
    let inputs = inputs();
    let tmp = std::env::temp_dir().join(format!("cvmkit-snp-peer-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();

    // The vCPU type names and signatures are the peer's, one for one.
    let out = output(Command::new(venv().join("bin/python")).args([
        "-c",
        "from sevsnpmeasure.vcpu_types import CPU_SIGS\nfor k, v in CPU_SIGS.items(): print(k, v)",
    ]));
    let theirs: Vec<(String, u32)> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let (k, v) = l.split_once(' ').unwrap();
            (k.to_owned(), v.parse().unwrap())
        })
        .collect();
    let ours_table: Vec<(String, u32)> = VcpuType::ALL
        .iter()
        .map(|t| (t.name().to_owned(), t.signature()))
        .collect();
    assert_eq!(
        ours_table, theirs,
        "vCPU type table differs from sevsnpmeasure.vcpu_types.CPU_SIGS"
    );

    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../cvmkit-ovmf/tests/fixtures");
    let amdsev = std::fs::read(fixtures.join("ovmf_AmdSev_suffix.bin")).unwrap();
    let mut padded = vec![0u8; (4 << 20) - amdsev.len()];
    padded.extend_from_slice(&amdsev);
    let padded_path = tmp.join("ovmf_AmdSev_padded_4MiB.fd");
    std::fs::write(&padded_path, &padded).unwrap();
    let fw = |name: &'static str, path: PathBuf| Fw {
        name,
        bytes: std::fs::read(&path).unwrap(),
        path,
    };
    let fws = vec![
        fw("OVMF.fd (Debian)", inputs["OVMF"].clone()),
        fw(
            "ovmf_AmdSev_suffix.bin",
            fixtures.join("ovmf_AmdSev_suffix.bin"),
        ),
        fw("ovmf_AmdSev_padded_4MiB.fd", padded_path),
        fw(
            "ovmf_OvmfX64_suffix.bin",
            fixtures.join("ovmf_OvmfX64_suffix.bin"),
        ),
    ];
    let mut rng = Rng(42);
    let initrd_bytes: Vec<u8> = (0..100_000).map(|_| rng.next() as u8).collect();
    let initrd = tmp.join("initrd.img");
    std::fs::write(&initrd, &initrd_bytes).unwrap();
    let kernel = inputs["KERNEL"].clone();
    let files = Files {
        fws,
        kernel_bytes: std::fs::read(&kernel).unwrap(),
        kernel,
        initrd,
        initrd_bytes,
        append: "console=ttyS0 root=/dev/vda1 ro quiet",
    };

    // Mode snp:ovmf-hash, per firmware; the peer's output feeds --snp-ovmf-hash below.
    let mut ovmf_hashes = Vec::new();
    for fw in &files.fws {
        let theirs = run_peer(
            &peer,
            &[
                "--mode=snp:ovmf-hash".into(),
                format!("--ovmf={}", fw.path.display()),
            ],
        );
        let Outcome::Digest(h) = theirs else {
            panic!("snp:ovmf-hash on {}: {theirs:?}", fw.name)
        };
        let firmware = Firmware::parse(&fw.bytes).unwrap();
        assert_eq!(
            hex(&ovmf_hash(&firmware).unwrap()),
            h,
            "snp:ovmf-hash on {}",
            fw.name
        );
        ovmf_hashes.push(h);
    }

    let cases = matrix(files.fws.len());
    let next = AtomicUsize::new(0);
    let failures = Mutex::new(Vec::new());
    let tally = Mutex::new(BTreeMap::<String, (usize, usize)>::new());
    let started = Instant::now();
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .min(4);
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(case) = cases.get(i) else { break };
                let args = peer_args(case, &files, &ovmf_hashes);
                let theirs = run_peer(&peer, &args);
                let mine = ours(case, &files, &ovmf_hashes);
                let agree = match (&theirs, &mine) {
                    (Outcome::Digest(a), Outcome::Digest(b)) => a == b,
                    (Outcome::Error(a), Outcome::Error(b)) => b.starts_with(a.as_str()),
                    _ => false,
                };
                let key = format!(
                    "{:?} {}",
                    case.mode,
                    if matches!(theirs, Outcome::Error(_)) {
                        "error"
                    } else {
                        "digest"
                    }
                );
                let mut t = tally.lock().unwrap();
                let e = t.entry(key).or_default();
                e.0 += 1;
                if agree {
                    e.1 += 1;
                } else {
                    failures.lock().unwrap().push(format!(
                        "{case:?}\n  peer {args:?}\n  theirs {theirs:?}\n  ours   {mine:?}"
                    ));
                }
            });
        }
    });
    let elapsed = started.elapsed();
    let tally = tally.into_inner().unwrap();
    eprintln!(
        "{} cases against sev-snp-measure 0.0.13 in {elapsed:.1?} ({workers} workers):",
        cases.len()
    );
    for (k, (n, ok)) in &tally {
        eprintln!("  {k}: {ok}/{n} agree");
    }
    let failures = failures.into_inner().unwrap();
    assert!(
        failures.is_empty(),
        "{} of {} cases disagree:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );

    // The matrix really covers each dimension.
    let names: BTreeSet<&str> = cases
        .iter()
        .filter_map(|c| match (c.vcpu, c.vmm) {
            (VcpuArg::Name(t), VmmType::Qemu) => Some(t.name()),
            _ => None,
        })
        .collect();
    assert_eq!(names.len(), VcpuType::ALL.len());
    for vcpus in [1, 2, 3, 4, 64] {
        assert!(cases
            .iter()
            .any(|c| c.vcpus == vcpus && c.mode == Mode::Snp));
    }
    assert!(
        tally.keys().any(|k| k.ends_with("error")),
        "the error case was not exercised"
    );
    std::fs::remove_dir_all(&tmp).ok();
}

/// Timing of both tools on the same files, each including reading them (printed; run with
/// `--nocapture`, and `--release` for release-mode numbers). The bound on ours is loose because
/// tests share the machine.
#[test]
fn large_inputs_are_fast() {
    let peer = peer();
    let inputs = inputs();
    let tmp = std::env::temp_dir().join(format!("cvmkit-snp-timing-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../cvmkit-ovmf/tests/fixtures");
    let amdsev = std::fs::read(fixtures.join("ovmf_AmdSev_suffix.bin")).unwrap();
    let mut rng = Rng(7);
    let mut fw4m: Vec<u8> = (0..(4 << 20) - amdsev.len())
        .map(|_| rng.next() as u8)
        .collect();
    fw4m.extend_from_slice(&amdsev);
    let fw4m_path = tmp.join("fw4m.fd");
    std::fs::write(&fw4m_path, &fw4m).unwrap();
    let kernel60: Vec<u8> = (0..60u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let kernel60_path = tmp.join("kernel60");
    std::fs::write(&kernel60_path, &kernel60).unwrap();

    let time_both = |label: &str, fw_path: &Path, kernel_path: Option<&Path>| {
        let t = Instant::now();
        let fw = std::fs::read(fw_path).unwrap();
        let kernel = kernel_path.map(|p| std::fs::read(p).unwrap());
        let firmware = Firmware::parse(&fw).unwrap();
        let args = SnpArgs {
            vcpus: 4,
            vcpu: Some(VcpuType::EpycV4.into()),
            guest_features: 0x1,
            kernel: kernel.as_deref(),
            append: kernel.as_ref().map(|_| "console=ttyS0"),
            ..SnpArgs::default()
        };
        let ours = snp_launch_digest(&firmware, &args).map(|d| hex(&d));
        let ours_time = t.elapsed();
        let mut a = vec![
            "--mode=snp".to_owned(),
            "--vcpus=4".into(),
            "--vcpu-type=EPYC-v4".into(),
            format!("--ovmf={}", fw_path.display()),
        ];
        if let Some(p) = kernel_path {
            a.push(format!("--kernel={}", p.display()));
            a.push("--append=console=ttyS0".into());
        }
        let t = Instant::now();
        let theirs = run_peer(&peer, &a);
        let peer_time = t.elapsed();
        match (&theirs, &ours) {
            (Outcome::Digest(h), Ok(o)) => assert_eq!(h, o, "{label}"),
            (Outcome::Error(e), Err(o)) => {
                assert!(o.to_string().starts_with(e.as_str()), "{label}")
            }
            _ => panic!("{label}: {theirs:?} vs {ours:?}"),
        }
        eprintln!("{label}: cvmkit-snp {ours_time:.1?}, sev-snp-measure {peer_time:.1?}");
        ours_time
    };
    time_both("Debian OVMF.fd (2 MiB), no kernel", &inputs["OVMF"], None);
    time_both(
        "Debian OVMF.fd + real kernel (error: no kernel hashes)",
        &inputs["OVMF"],
        Some(&inputs["KERNEL"]),
    );
    time_both(
        "AmdSev suffix padded to 4 MiB + real kernel (8 MB)",
        &fw4m_path,
        Some(&inputs["KERNEL"]),
    );
    let big = time_both(
        "AmdSev suffix padded to 4 MiB + 60 MiB kernel",
        &fw4m_path,
        Some(&kernel60_path),
    );
    assert!(
        big.as_secs_f64() < 3.0,
        "4 MiB firmware + 60 MiB kernel took {big:?}"
    );
    std::fs::remove_dir_all(&tmp).ok();
}
