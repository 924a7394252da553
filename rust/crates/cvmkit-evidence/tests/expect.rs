//! The runtime register a verifier predicts from a manifest equals what cvmkit-runtime extends.

use cvmkit_evidence::expect::{workload_register, RuntimeRegister};

#[test]
fn workload_register_equals_the_runtimes_extension() {
    let json = format!(r#"[{{"app": "http://10.0.2.2:8090/apps/0", "sha256": "{}"}}, {{"app": "http://10.0.2.2:8090/apps/1", "sha256": "{}"}}]"#, "ab".repeat(32), "cd".repeat(32));
    let manifest = cvmkit_manifest::encode(&json);
    let decoded = cvmkit_manifest::decode(&manifest).unwrap();
    let names = cvmkit_runtime::routes::parse_hostnames("B.example, a.example.").unwrap();
    let digests: Vec<_> = decoded.iter().map(|m| m.sha256).collect();
    let events = cvmkit_runtime::measure::events(&digests, &names, cvmkit_manifest::BASE_PORT);

    let rtmr3 = workload_register(&manifest, Some("B.example, a.example."), RuntimeRegister::Rtmr3).unwrap();
    assert_eq!(rtmr3.name, "RTMR3");
    assert_eq!(rtmr3.value.as_bytes(), cvmkit_runtime::measure::expected_rtmr([0; 48], &events));
    assert_eq!(rtmr3.events.len(), 3);
    assert_eq!(rtmr3.events[2].label, "cvmkit-runtime/v1 hostnames=b.example,a.example");

    let pcr15 = workload_register(&manifest, None, RuntimeRegister::Pcr15).unwrap();
    let events = cvmkit_runtime::measure::events(&digests, &[], cvmkit_manifest::BASE_PORT);
    assert_eq!(pcr15.name, "PCR15");
    assert_eq!(pcr15.value.as_bytes(), cvmkit_runtime::measure::expected_pcr(&events));

    assert!(workload_register(&manifest, Some("bad_name"), RuntimeRegister::Pcr15).is_err());
    assert!(workload_register("%%%", None, RuntimeRegister::Pcr15).is_err());

    // A list the runtime refuses (more than MAX_WORKLOADS) has no register to expect.
    let one = format!(r#"{{"app": "http://h/a", "sha256": "{}"}}"#, "ab".repeat(32));
    let too_many = cvmkit_manifest::encode(&format!("[{}]", vec![one; cvmkit_manifest::MAX_WORKLOADS + 1].join(",")));
    let e = workload_register(&too_many, None, RuntimeRegister::Pcr15).unwrap_err();
    assert!(e.to_string().contains("cvmkit-runtime refuses this deployment"), "{e}");
}
