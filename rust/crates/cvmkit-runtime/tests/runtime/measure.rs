//! Binding the manifest into a vTPM PCR, against a real software TPM (swtpm on 127.0.0.1): the
//! TPM2_PCR_Extend commands the runtime sends give exactly the PCR 15 value a verifier computes
//! from the manifest with `measure::expected_pcr`.

use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

use cvmkit_runtime::manifest::Sha256Digest;
use cvmkit_runtime::measure::{events, expected_pcr, tpm_extend, tpm_read_pcr, MeasureError};
use cvmkit_runtime::routes::parse_hostnames;

use crate::support::*;

struct Swtpm(std::process::Child);

impl Drop for Swtpm {
    fn drop(&mut self) {
        cvmkit_testutil::kill_and_reap(&mut self.0);
    }
}

/// A fresh swtpm (TPM 2.0, started with TPM2_Startup(CLEAR)) and a connection to its command port.
fn swtpm(dir: &std::path::Path) -> (Swtpm, TcpStream) {
    let port = free_ports(2);
    std::fs::create_dir_all(dir.join("state")).unwrap();
    let child = Command::new(require_tool("swtpm"))
        .args(["socket", "--tpm2"])
        .arg("--tpmstate")
        .arg(format!("dir={}", dir.join("state").display()))
        .arg("--server")
        .arg(format!("type=tcp,port={port},bindaddr=127.0.0.1"))
        .arg("--ctrl")
        .arg(format!("type=tcp,port={},bindaddr=127.0.0.1", port + 1))
        .args(["--flags", "not-need-init,startup-clear"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let guard = Swtpm(child);
    let conn = wait_for(Duration::from_secs(10), || TcpStream::connect(("127.0.0.1", port)).ok())
        .expect("swtpm did not start");
    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    (guard, conn)
}

#[test]
fn pcr15_equals_the_verifiers_replay() {
    let dir = tempfile::tempdir().unwrap();
    let (_tpm, mut conn) = swtpm(dir.path());
    assert_eq!(tpm_read_pcr(&mut conn, 15).unwrap(), [0u8; 32], "PCR 15 starts at zero");
    let apps = [Sha256Digest([0x11; 32]), Sha256Digest([0x22; 32])];
    let ev = events(&apps, &parse_hostnames("a.example").unwrap(), 3001);
    tpm_extend(&mut conn, 15, &ev).unwrap();
    assert_eq!(tpm_read_pcr(&mut conn, 15).unwrap(), expected_pcr(&ev));
    // Another manifest gives another value: the register tells them apart.
    let other = events(&[Sha256Digest([0x11; 32])], &[], 3001);
    assert_ne!(expected_pcr(&other), expected_pcr(&ev));
    // PCR 16 was not touched.
    assert_eq!(tpm_read_pcr(&mut conn, 16).unwrap(), [0u8; 32]);
}

#[test]
fn tpm_errors_are_reported_with_their_code() {
    let dir = tempfile::tempdir().unwrap();
    let (_tpm, mut conn) = swtpm(dir.path());
    // PCR 30 does not exist: the TPM refuses the extend.
    let e = tpm_extend(&mut conn, 30, &["x".to_string()]).unwrap_err();
    assert!(matches!(e, MeasureError::Tpm { command: "PCR_Extend", .. }), "{e}");
}
