//! Every SNP, SEV-ES and SEV case of sev-snp-measure's own test suite (tests/test_guest.py, as
//! transcribed in tests/fixtures/expected.derived.json) reproduces its expected digest or error.
//! The two SNP:SVSM cases are skipped: their firmware and SVSM image are not shipped.

use std::path::Path;

use cvmkit_snp::cvmkit_ovmf::Firmware;
use cvmkit_snp::*;
use serde_json::Value;

fn fixture(name: &str) -> Vec<u8> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../cvmkit-ovmf/tests/fixtures");
    std::fs::read(dir.join(name)).unwrap_or_else(|e| panic!("fixture {name}: {e}"))
}

/// `"/dev/null"` is an empty file, `null` is absent.
fn file_arg(v: &Value) -> Option<Vec<u8>> {
    match v.as_str() {
        Some("/dev/null") => Some(Vec::new()),
        Some(other) => panic!("unexpected file {other}"),
        None => None,
    }
}

#[test]
fn sev_snp_measure_test_suite() {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/expected.derived.json"),
    )
    .unwrap();
    let doc: Value = serde_json::from_str(&text).unwrap();
    let cases = doc["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 24);
    let mut checked = 0;
    for case in cases {
        let name = case["test"].as_str().unwrap();
        let mode = match case["mode"].as_str().unwrap() {
            "SEV_SNP" => SevMode::Snp,
            "SEV_ES" => SevMode::SevEs,
            "SEV" => SevMode::Sev,
            "SEV_SNP_SVSM" => continue,
            other => panic!("{name}: mode {other}"),
        };
        let ovmf_name = case["ovmf"].as_str().unwrap();
        let ovmf = fixture(ovmf_name);
        let firmware = Firmware::parse(&ovmf).unwrap();
        let kernel = file_arg(&case["kernel"]);
        let initrd = file_arg(&case["initrd"]);
        let features = case["guest_features"].as_str().unwrap();
        let args = SnpArgs {
            vcpus: case["vcpus"].as_u64().unwrap() as u32,
            vcpu: case["vcpu_type"]
                .as_str()
                .map(|t| Vcpu::Type(t.parse().unwrap())),
            guest_features: u64::from_str_radix(features.trim_start_matches("0x"), 16).unwrap(),
            vmm_type: case["vmm_type"].as_str().unwrap().parse().unwrap(),
            kernel: kernel.as_deref(),
            initrd: initrd.as_deref(),
            append: case["append"].as_str(),
            ovmf_hash: case
                .get("snp_ovmf_hash")
                .and_then(Value::as_str)
                .map(|h| parse_ovmf_hash(h).unwrap()),
            hashed: None,
        };
        if let Some(also) = case.get("also_asserts") {
            for (what, expected) in also.as_object().unwrap() {
                assert_eq!(what, &format!("calc_snp_ovmf_hash({ovmf_name})"));
                assert_eq!(
                    hex(&ovmf_hash(&firmware).unwrap()),
                    expected.as_str().unwrap(),
                    "{name}: {what}"
                );
            }
        }
        let result = launch_digest(mode, &firmware, &args);
        match (
            case["expected_launch_digest"].as_str(),
            case.get("expected_error"),
        ) {
            (Some(expected), _) => {
                let got = result.unwrap_or_else(|e| panic!("{name}: {e}"));
                assert_eq!(got.to_string(), expected, "{name}");
                // With the OVMF hash computed instead of given, and with the step recorder, SNP
                // gives the same digest.
                if mode == SevMode::Snp {
                    let args = SnpArgs {
                        ovmf_hash: None,
                        ..args.clone()
                    };
                    assert_eq!(
                        hex(&snp_launch_digest(&firmware, &args).unwrap()),
                        expected,
                        "{name}"
                    );
                    let measured = snp_launch_measure(&firmware, &args).unwrap();
                    assert_eq!(hex(&measured.digest), expected, "{name}");
                    assert_eq!(measured.steps.last().unwrap().digest, measured.digest);
                }
            }
            (None, Some(error)) => {
                let err = result.expect_err(name).to_string();
                assert!(err.starts_with(error.as_str().unwrap()), "{name}: {err}");
            }
            _ => panic!("{name}: neither digest nor error"),
        }
        checked += 1;
    }
    assert_eq!(checked, 22);
}

#[test]
fn steps_of_an_snp_launch() {
    let ovmf = fixture("ovmf_AmdSev_suffix.bin");
    let firmware = Firmware::parse_named(&ovmf, "ovmf_AmdSev_suffix.bin").unwrap();
    let args = SnpArgs {
        vcpus: 2,
        vcpu: Some(VcpuType::EpycMilan.into()),
        guest_features: 0x1,
        vmm_type: VmmType::Ec2,
        kernel: Some(&b"kernel"[..]),
        ..SnpArgs::default()
    };
    let m = snp_launch_measure(&firmware, &args).unwrap();
    let listing: Vec<String> = m
        .steps
        .iter()
        .map(|s| format!("{:#x} {} {} {}", s.gpa, s.pages, s.page_type, s.label))
        .collect();
    assert_eq!(
        listing,
        [
            "0xfffff000 1 NORMAL OVMF firmware",
            "0x800000 9 ZERO SNP_SEC_MEM",
            "0x80a000 3 ZERO SNP_SEC_MEM",
            "0x80d000 1 SECRETS SNP_SECRETS",
            "0x80f000 1 ZERO SVSM_CAA",
            "0x810000 1 NORMAL SNP_KERNEL_HASHES (kernel, initrd and cmdline hashes table)",
            "0x811000 15 ZERO SNP_SEC_MEM",
            "0x80e000 1 CPUID CPUID (EC2 measures it last)",
            "0xfffffffff000 1 VMSA VMSA vCPU 0 (BSP, EIP 0xfffffff0)",
            "0xfffffffff000 1 VMSA VMSA vCPU 1 (AP, EIP 0x80b004)",
        ]
    );
    assert_eq!(m.digest, snp_launch_digest(&firmware, &args).unwrap());
}

#[test]
fn errors_name_what_is_missing() {
    let ovmf = fixture("ovmf_OvmfX64_suffix.bin");
    let firmware = Firmware::parse_named(&ovmf, "OVMF.fd").unwrap();
    let base = SnpArgs {
        vcpus: 1,
        vcpu: Some(VcpuType::EpycV4.into()),
        guest_features: 1,
        ..SnpArgs::default()
    };

    let with_kernel = SnpArgs {
        kernel: Some(&b""[..]),
        ..base.clone()
    };
    assert_eq!(
        snp_launch_digest(&firmware, &with_kernel).unwrap_err().to_string(),
        "Kernel specified but OVMF metadata doesn't include SNP_KERNEL_HASHES section (firmware OVMF.fd): \
         measured direct boot needs an AmdSev OVMF build (OvmfPkg/AmdSev/AmdSevX64.dsc)"
    );
    assert!(sev_launch_digest(&firmware, &with_kernel)
        .unwrap_err()
        .to_string()
        .starts_with("Kernel specified but OVMF doesn't support kernel/initrd/cmdline measurement (firmware OVMF.fd)"));
    let no_vcpu = SnpArgs {
        vcpu: None,
        ..base.clone()
    };
    assert_eq!(
        snp_launch_digest(&firmware, &no_vcpu).unwrap_err(),
        SnpError::NoVcpuSignature
    );
    let gce = SnpArgs {
        vcpu: None,
        vmm_type: VmmType::Gce,
        ..base.clone()
    };
    assert!(snp_launch_digest(&firmware, &gce).is_ok());
    let initrd_only = SnpArgs {
        initrd: Some(&b"x"[..]),
        ..base.clone()
    };
    assert_eq!(
        snp_launch_digest(&firmware, &initrd_only)
            .unwrap_err()
            .to_string(),
        "initrd given without a kernel: kernel hashes are only measured for direct kernel boot"
    );
    let hash_for_sev = SnpArgs {
        ovmf_hash: Some([0; 48]),
        ..base.clone()
    };
    assert_eq!(
        seves_launch_digest(&firmware, &hash_for_sev)
            .unwrap_err()
            .to_string(),
        "SNP OVMF hash only works with SNP"
    );
    assert_eq!(
        parse_ovmf_hash("abc").unwrap_err(),
        SnpError::BadOvmfHash("abc".into())
    );

    // A firmware that is not a whole number of pages, and one without an OVMF footer.
    let mut odd = ovmf.clone();
    odd.insert(0, 0);
    let fw = Firmware::parse_named(&odd, "odd.fd").unwrap();
    assert_eq!(
        ovmf_hash(&fw).unwrap_err().to_string(),
        "firmware odd.fd is 4097 bytes: SNP needs a whole number of 4 KiB pages, at most 4 GiB"
    );
    let blank = vec![0u8; 4096];
    let fw = Firmware::parse_named(&blank, "blank.fd").unwrap();
    assert!(snp_launch_digest(&fw, &base)
        .unwrap_err()
        .to_string()
        .starts_with("firmware blank.fd has no OVMF footer GUID table"));
    // SEV needs no metadata at all: the digest is the firmware's SHA-256.
    assert_eq!(
        hex(&sev_launch_digest(&fw, &base).unwrap()),
        "ad7facb2586fc6e966c004d7d1d16b024f5805ff7cb47c7a85dabd8b48892ca7"
    );
}
