//! Binding the manifest to the attestation: runtime measurement events.
//!
//! The image measurements (UKI → PCR 4/11 or RTMR 1/2, or the SEV-SNP launch digest) pin the
//! code of this runtime. The runtime only executes a file whose SHA-256 equals the manifest's, so
//! what runs is fully described by the image measurements **plus** the manifest digests. To make
//! the second half attestable too, the runtime extends, before fetching any app, one event per
//! workload and one for the hostname mapping into a runtime register:
//!
//! ```text
//! cvmkit-runtime/v1 workload=0 port=3001 sha256=<app sha256 hex>
//! cvmkit-runtime/v1 workload=1 port=3002 sha256=<…>
//! cvmkit-runtime/v1 hostnames=a.example,b.example
//! ```
//!
//! (ASCII, no newline; the hostname list is the normalized one, empty when there is none.) The
//! strings are defined in [`cvmkit_manifest::events`], which run-local and verifiers share. The
//! app URLs are deliberately not measured: they say where the bytes come from, not what runs.
//!
//! - **vTPM**: `TPM2_PCR_Extend(PCR 15, SHA-256(event))` in the SHA-256 bank through
//!   `/dev/tpmrm0` ([`tpm_extend`]); a verifier checks
//!   `PCR15 = SHA-256(… SHA-256(0³² ‖ SHA-256(e₀)) ‖ SHA-256(e₁) …)` ([`expected_pcr`]) from the quote.
//! - **TDX**: write `SHA-384(event)` (48 bytes, one `write`) to
//!   `/sys/devices/virtual/misc/tdx_guest/measurements/rtmr3:sha384` (Linux ≥ 6.16,
//!   `Documentation/ABI/testing/sysfs-devices-virtual-misc-tdx_guest`) ([`rtmr_extend`]); RTMR3 is
//!   not used by firmware, so the verifier checks `RTMR3 = SHA-384(… SHA-384(0⁴⁸ ‖ SHA-384(e₀)) …)`
//!   ([`expected_rtmr`]) from the TD quote.
//!
//! The events are also written to a text file, one per line, so a verifier can replay them.
//! PCR 15 is unused by firmware and by this image (no systemd), and is not resettable (unlike the
//! debug PCR 16).

use std::io::{Read, Write};
use std::path::Path;

use sha2::{Digest as _, Sha256, Sha384};


/// Why extending a register failed. Messages are one line.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MeasureError {
    /// Talking to the TPM or the RTMR file failed.
    #[error("{what} {path}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The device or file.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// The TPM answered with an error code.
    #[error("TPM {command} failed with response code {code:#x}")]
    Tpm {
        /// The command.
        command: &'static str,
        /// `TPM_RC`.
        code: u32,
    },
    /// The TPM's answer is malformed.
    #[error("TPM {command}: malformed response ({reason})")]
    BadResponse {
        /// The command.
        command: &'static str,
        /// What is wrong.
        reason: &'static str,
    },
}

/// The events for `workloads` (app digests in workload order) and `hostnames` (normalized):
/// defined with the rest of the protocol in [`cvmkit_manifest::events`].
pub use cvmkit_manifest::events;

/// PCR value after extending `events` (as SHA-256 digests) into a PCR that starts at zero.
pub fn expected_pcr(events: &[String]) -> [u8; 32] {
    let mut pcr = [0u8; 32];
    for e in events {
        let mut h = Sha256::new();
        h.update(pcr);
        h.update(Sha256::digest(e.as_bytes()));
        pcr = h.finalize().into();
    }
    pcr
}

/// RTMR value after extending `events` (as SHA-384 digests) into `initial`.
pub fn expected_rtmr(initial: [u8; 48], events: &[String]) -> [u8; 48] {
    let mut r = initial;
    for e in events {
        let mut h = Sha384::new();
        h.update(r);
        h.update(Sha384::digest(e.as_bytes()));
        r = h.finalize().into();
    }
    r
}

const TPM_ST_NO_SESSIONS: u16 = 0x8001;
const TPM_ST_SESSIONS: u16 = 0x8002;
const TPM_CC_PCR_EXTEND: u32 = 0x0000_0182;
const TPM_CC_PCR_READ: u32 = 0x0000_017E;
const TPM_RS_PW: u32 = 0x4000_0009;
const TPM_ALG_SHA256: u16 = 0x000B;

fn finish_command(tag: u16, code: u32, body: &[u8]) -> Vec<u8> {
    let mut c = Vec::with_capacity(10 + body.len());
    c.extend_from_slice(&tag.to_be_bytes());
    c.extend_from_slice(&(10 + body.len() as u32).to_be_bytes());
    c.extend_from_slice(&code.to_be_bytes());
    c.extend_from_slice(body);
    c
}

/// `TPM2_PCR_Extend` of `digest` into the SHA-256 bank of `pcr`, with an empty password session.
pub fn pcr_extend_command(pcr: u32, digest: &[u8; 32]) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&pcr.to_be_bytes()); // pcrHandle
    b.extend_from_slice(&9u32.to_be_bytes()); // authorizationSize
    b.extend_from_slice(&TPM_RS_PW.to_be_bytes()); // sessionHandle
    b.extend_from_slice(&0u16.to_be_bytes()); // nonce (empty)
    b.push(0); // sessionAttributes
    b.extend_from_slice(&0u16.to_be_bytes()); // hmac (empty password)
    b.extend_from_slice(&1u32.to_be_bytes()); // TPML_DIGEST_VALUES.count
    b.extend_from_slice(&TPM_ALG_SHA256.to_be_bytes());
    b.extend_from_slice(digest);
    finish_command(TPM_ST_SESSIONS, TPM_CC_PCR_EXTEND, &b)
}

/// `TPM2_PCR_Read` of the SHA-256 bank of `pcr` (0–23).
pub fn pcr_read_command(pcr: u32) -> Vec<u8> {
    let mut select = [0u8; 3];
    select[(pcr / 8) as usize % 3] = 1 << (pcr % 8);
    let mut b = Vec::new();
    b.extend_from_slice(&1u32.to_be_bytes()); // TPML_PCR_SELECTION.count
    b.extend_from_slice(&TPM_ALG_SHA256.to_be_bytes());
    b.push(3); // sizeofSelect
    b.extend_from_slice(&select);
    finish_command(TPM_ST_NO_SESSIONS, TPM_CC_PCR_READ, &b)
}

/// Sends one command on `dev` (a `/dev/tpmrm0` handle or a swtpm socket) and returns the whole
/// response after checking its header and response code.
pub fn tpm_transact(dev: &mut (impl Read + Write), cmd: &[u8], command: &'static str) -> Result<Vec<u8>, MeasureError> {
    let io = |source| MeasureError::Io { what: "TPM command", path: command.to_string(), source };
    dev.write_all(cmd).map_err(io)?;
    dev.flush().map_err(io)?;
    // A TPM character device hands over the whole response in one read (which must be large
    // enough); a socket may split it. Read until the size in the header is reached.
    let mut resp = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = dev.read(&mut buf).map_err(io)?;
        if n == 0 {
            return Err(MeasureError::BadResponse { command, reason: "the TPM closed the connection" });
        }
        resp.extend_from_slice(&buf[..n]);
        if resp.len() >= 10 {
            let size = u32::from_be_bytes([resp[2], resp[3], resp[4], resp[5]]) as usize;
            if !(10..=4096).contains(&size) || resp.len() > size {
                return Err(MeasureError::BadResponse { command, reason: "response size out of range" });
            }
            if resp.len() == size {
                break;
            }
        }
    }
    let code = u32::from_be_bytes([resp[6], resp[7], resp[8], resp[9]]);
    if code != 0 {
        return Err(MeasureError::Tpm { command, code });
    }
    Ok(resp)
}

/// Extends SHA-256 of each event into `pcr` through `dev`.
pub fn tpm_extend(dev: &mut (impl Read + Write), pcr: u32, events: &[String]) -> Result<(), MeasureError> {
    for e in events {
        let digest: [u8; 32] = Sha256::digest(e.as_bytes()).into();
        tpm_transact(dev, &pcr_extend_command(pcr, &digest), "PCR_Extend")?;
    }
    Ok(())
}

/// Reads the SHA-256 bank of `pcr` through `dev`.
pub fn tpm_read_pcr(dev: &mut (impl Read + Write), pcr: u32) -> Result<[u8; 32], MeasureError> {
    let resp = tpm_transact(dev, &pcr_read_command(pcr), "PCR_Read")?;
    // header(10) updateCounter(4) TPML_PCR_SELECTION(4 + 2 + 1 + 3) TPML_DIGEST.count(4) size(2)
    let at = 10 + 4 + 10 + 4;
    let bad = |reason| MeasureError::BadResponse { command: "PCR_Read", reason };
    let count = resp.get(at - 4..at).ok_or_else(|| bad("truncated"))?;
    if count != [0, 0, 0, 1] {
        return Err(bad("expected one digest"));
    }
    let size = resp.get(at..at + 2).ok_or_else(|| bad("truncated"))?;
    if size != [0, 32] {
        return Err(bad("digest is not 32 bytes"));
    }
    resp.get(at + 2..at + 34).and_then(|d| d.try_into().ok()).ok_or_else(|| bad("truncated"))
}

/// Extends each event into the TPM character device at `path` (e.g. `/dev/tpmrm0`).
pub fn tpm_extend_device(path: &Path, pcr: u32, events: &[String]) -> Result<(), MeasureError> {
    let mut dev = std::fs::OpenOptions::new().read(true).write(true).open(path).map_err(|source| MeasureError::Io {
        what: "open",
        path: path.display().to_string(),
        source,
    })?;
    tpm_extend(&mut dev, pcr, events)
}

/// Extends SHA-384 of each event into the RTMR file at `path` (one 48-byte `write` each).
pub fn rtmr_extend(path: &Path, events: &[String]) -> Result<(), MeasureError> {
    let io = |what, source| MeasureError::Io { what, path: path.display().to_string(), source };
    for e in events {
        let digest = Sha384::digest(e.as_bytes());
        let mut f = std::fs::OpenOptions::new().write(true).open(path).map_err(|s| io("open", s))?;
        let n = f.write(&digest).map_err(|s| io("extend", s))?;
        if n != digest.len() {
            return Err(io("extend", std::io::Error::other("short write")));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::Sha256Digest;

    #[test]
    fn command_layout() {
        let c = pcr_extend_command(15, &[0xAA; 32]);
        assert_eq!(c.len(), 10 + 4 + 4 + 9 + 4 + 2 + 32);
        assert_eq!(&c[2..6], &(c.len() as u32).to_be_bytes());
        assert_eq!(&c[10..14], &[0, 0, 0, 15]);
        let r = pcr_read_command(15);
        assert_eq!(&r[r.len() - 3..], &[0, 0x80, 0]);
    }

    #[test]
    fn replay() {
        let ev = events(&[Sha256Digest([1; 32])], &["a.example".into()], 3001);
        assert_eq!(ev[0], format!("cvmkit-runtime/v1 workload=0 port=3001 sha256={}", "01".repeat(32)));
        assert_eq!(ev[1], "cvmkit-runtime/v1 hostnames=a.example");
        let mut pcr = [0u8; 32];
        for e in &ev {
            let d: [u8; 32] = Sha256::digest(e.as_bytes()).into();
            pcr = Sha256::digest([pcr, d].concat()).into();
        }
        assert_eq!(expected_pcr(&ev), pcr);
    }
}
