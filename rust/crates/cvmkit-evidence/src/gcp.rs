//! Google's signed launch endorsements of its Compute Engine confidential-VM firmware
//! (`VMLaunchEndorsement`, google/gce-tcb-verifier), verified offline and turned into
//! reference values.
//!
//! An endorsement is a serialized `VMGoldenMeasurement` and an RSA signature over exactly those
//! bytes. The golden measurement carries the signer's certificate, the SHA-384 of the firmware
//! and the launch measurements Google computed for it: an SEV-SNP launch digest per vCPU
//! (VMSA) count and a TDX MRTD per memory configuration. The chain of trust, checked step by
//! step:
//!
//! pinned root → the signer's certificate (`endorsement-chain`) → its key signs the serialized
//! golden measurement (`endorsement-signature`, RSASSA-PSS with SHA-256 and a 32-byte salt, as
//! gce-tcb-verifier's `endorse.SignDoc` signs and `verify.EndorsementProto` checks).
//!
//! The `ca_bundle` fields inside the endorsement are never trusted: only the roots passed in.

use std::collections::BTreeMap;

use cvmkit_measure::{hex, Bank, Measurements, Platform, Register};
use prost::Message;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, UnixTime};

use crate::tdx::{describe_webpki, rfc3339};
use crate::{Error, Report};

/// The evidence name in a [`Report`].
pub const EVIDENCE: &str = "gcp-launch-endorsement";

/// gce-tcb-verifier's protobuf messages, written by hand with `prost` (no build script). Field
/// numbers and types are those of `proto/endorsement.proto` in google/gce-tcb-verifier at
/// commit 74582c07899756043cf4ae98789bf5f670f1374a.
pub mod proto {
    use std::collections::BTreeMap;

    /// `cloud_vmm_proto.VMLaunchEndorsement`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct VmLaunchEndorsement {
        /// A serialized [`VmGoldenMeasurement`]: the signed bytes.
        #[prost(bytes = "vec", tag = "1")]
        pub serialized_uefi_golden: Vec<u8>,
        /// RSASSA-PSS (SHA-256) over `serialized_uefi_golden`.
        #[prost(bytes = "vec", tag = "2")]
        pub signature: Vec<u8>,
    }

    /// `google.protobuf.Timestamp`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Timestamp {
        #[prost(int64, tag = "1")]
        pub seconds: i64,
        #[prost(int32, tag = "2")]
        pub nanos: i32,
    }

    /// `cloud_vmm_proto.VMGoldenMeasurement`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct VmGoldenMeasurement {
        #[prost(message, optional, tag = "1")]
        pub timestamp: Option<Timestamp>,
        /// The changelist the firmware was built from.
        #[prost(uint64, tag = "2")]
        pub cl_spec: u64,
        /// The git commit (SHA-1, 20 bytes) the firmware was built from.
        #[prost(bytes = "vec", tag = "3")]
        pub commit: Vec<u8>,
        /// The signer's certificate, DER.
        #[prost(bytes = "vec", tag = "4")]
        pub cert: Vec<u8>,
        /// SHA-384 of the firmware binary.
        #[prost(bytes = "vec", tag = "5")]
        pub digest: Vec<u8>,
        /// PEM certificates root … last intermediate (informational; never trusted here).
        #[prost(bytes = "vec", tag = "6")]
        pub ca_bundle: Vec<u8>,
        #[prost(message, optional, tag = "7")]
        pub sev_snp: Option<VmSevSnp>,
        #[prost(message, optional, tag = "8")]
        pub tdx: Option<VmTdx>,
    }

    /// `cloud_vmm_proto.VMSevSnp`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct VmSevSnp {
        #[prost(uint32, tag = "1")]
        pub svn: u32,
        /// Launch VMSA count → expected MEASUREMENT (48 bytes).
        #[prost(btree_map = "uint32, bytes", tag = "2")]
        pub measurements: BTreeMap<u32, Vec<u8>>,
        #[prost(bytes = "vec", tag = "3")]
        pub family_id: Vec<u8>,
        #[prost(bytes = "vec", tag = "4")]
        pub image_id: Vec<u8>,
        #[prost(uint64, tag = "5")]
        pub policy: u64,
        #[prost(bytes = "vec", tag = "6")]
        pub ca_bundle: Vec<u8>,
        /// The launch measurement with an SVSM (igvmmeasure `--native_zero`).
        #[prost(bytes = "vec", tag = "7")]
        pub svsm_measurement: Vec<u8>,
    }

    /// `cloud_vmm_proto.VMTdx`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct VmTdx {
        #[prost(uint32, tag = "1")]
        pub svn: u32,
        #[prost(message, repeated, tag = "2")]
        pub measurements: Vec<VmTdxMeasurement>,
    }

    /// `cloud_vmm_proto.VMTdx.Measurement`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct VmTdxMeasurement {
        #[prost(uint32, tag = "1")]
        pub ram_gib: u32,
        #[prost(bool, tag = "2")]
        pub early_accept: bool,
        #[prost(bytes = "vec", tag = "3")]
        pub mrtd: Vec<u8>,
    }
}

/// A decoded endorsement: the signed bytes, the signature, and the golden measurement they hold.
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed {
    /// `serialized_uefi_golden`, exactly as signed.
    pub signed: Vec<u8>,
    pub signature: Vec<u8>,
    pub golden: proto::VmGoldenMeasurement,
}

/// One endorsed TDX MRTD and the launch configuration it is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TdxMeasurement {
    /// Memory in GiB (0: the default launch, independent of the machine shape).
    pub ram_gib: u32,
    /// All memory accepted by the firmware (no `EFI_UNACCEPTED_MEMORY`).
    pub early_accept: bool,
    /// 48 bytes.
    pub mrtd: Vec<u8>,
}

/// What an endorsement endorses, once its signature and chain hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endorsement {
    /// SHA-384 of the firmware binary.
    pub firmware_sha384: Vec<u8>,
    /// Endorsed MRTDs (alternatives).
    pub tdx: Vec<TdxMeasurement>,
    pub tdx_svn: Option<u32>,
    /// Launch VMSA (vCPU) count → endorsed SEV-SNP launch digest.
    pub snp: BTreeMap<u32, Vec<u8>>,
    /// The SEV-SNP launch digest with an SVSM, if endorsed.
    pub snp_svsm: Option<Vec<u8>>,
    pub snp_svn: Option<u32>,
    /// The guest policy verifiers should expect on SEV-SNP.
    pub snp_policy: Option<u64>,
    pub snp_family_id: Option<Vec<u8>>,
    pub snp_image_id: Option<Vec<u8>>,
    /// When the endorsement was made, RFC 3339.
    pub timestamp: Option<String>,
    /// The changelist the firmware was built from.
    pub cl_spec: Option<u64>,
    /// The git commit the firmware was built from, hex.
    pub commit: Option<String>,
}

/// Decodes an endorsement and the golden measurement inside it. Never panics.
pub fn parse(raw: &[u8]) -> Result<Parsed, Error> {
    let outer = proto::VmLaunchEndorsement::decode(raw).map_err(|e| Error::malformed("VMLaunchEndorsement", e))?;
    if outer.serialized_uefi_golden.is_empty() {
        return Err(Error::malformed("VMLaunchEndorsement", "no serialized_uefi_golden"));
    }
    let golden = proto::VmGoldenMeasurement::decode(outer.serialized_uefi_golden.as_slice())
        .map_err(|e| Error::malformed("VMGoldenMeasurement", e))?;
    Ok(Parsed { signed: outer.serialized_uefi_golden, signature: outer.signature, golden })
}

impl Endorsement {
    /// The endorsed values of a golden measurement; every digest must be 48 bytes.
    pub fn from_golden(g: &proto::VmGoldenMeasurement) -> Result<Endorsement, Error> {
        let bad = |reason: String| Error::malformed("VMGoldenMeasurement", reason);
        let check48 = |what: String, v: &[u8]| if v.len() == 48 { Ok(()) } else { Err(bad(format!("{what} is {} bytes, not 48", v.len()))) };
        check48("digest".into(), &g.digest)?;
        let mut tdx = Vec::new();
        if let Some(t) = &g.tdx {
            for (i, m) in t.measurements.iter().enumerate() {
                check48(format!("tdx.measurements[{i}].mrtd"), &m.mrtd)?;
                tdx.push(TdxMeasurement { ram_gib: m.ram_gib, early_accept: m.early_accept, mrtd: m.mrtd.clone() });
            }
        }
        let mut snp = BTreeMap::new();
        let mut snp_svsm = None;
        if let Some(s) = &g.sev_snp {
            for (vcpus, m) in &s.measurements {
                check48(format!("sev_snp.measurements[{vcpus}]"), m)?;
                snp.insert(*vcpus, m.clone());
            }
            if !s.svsm_measurement.is_empty() {
                check48("sev_snp.svsm_measurement".into(), &s.svsm_measurement)?;
                snp_svsm = Some(s.svsm_measurement.clone());
            }
        }
        let nonempty = |v: &Vec<u8>| (!v.is_empty()).then(|| v.clone());
        let timestamp = g.timestamp.as_ref().map(|t| match u64::try_from(t.seconds) {
            Ok(s) => rfc3339(s),
            Err(_) => t.seconds.to_string(),
        });
        Ok(Endorsement {
            firmware_sha384: g.digest.clone(),
            tdx,
            tdx_svn: g.tdx.as_ref().map(|t| t.svn),
            snp,
            snp_svsm,
            snp_svn: g.sev_snp.as_ref().map(|s| s.svn),
            snp_policy: g.sev_snp.as_ref().map(|s| s.policy),
            snp_family_id: g.sev_snp.as_ref().and_then(|s| nonempty(&s.family_id)),
            snp_image_id: g.sev_snp.as_ref().and_then(|s| nonempty(&s.image_id)),
            timestamp,
            cl_spec: (g.cl_spec != 0).then_some(g.cl_spec),
            commit: (!g.commit.is_empty()).then(|| hex(&g.commit)),
        })
    }
}

/// Verifies an endorsement at `at` (Unix seconds) against `roots` (DER or PEM certificates;
/// the endorsement's own `ca_bundle` is ignored). Checks: `endorsement-chain`,
/// `endorsement-signature`. The [`Endorsement`] is returned only when both pass.
///
/// An endorsement whose bytes cannot be decoded is an [`Error`]; one that decodes but fails a
/// check is a [`Report`] that did not pass.
pub fn verify(raw: &[u8], roots: &[&[u8]], at: u64) -> Result<(Report, Option<Endorsement>), Error> {
    let parsed = parse(raw)?;
    let mut report = Report::new(EVIDENCE);
    report.claim("verified_at", rfc3339(at));
    let g = &parsed.golden;
    if let Some(t) = &g.timestamp {
        report.claim("timestamp", u64::try_from(t.seconds).map(rfc3339).unwrap_or_else(|_| t.seconds.to_string()));
    }
    report.claim_hex("firmware_sha384", &g.digest);

    let chain = chain_check(&g.cert, roots, at);
    let chained = report.check("endorsement-chain", chain);
    if chained {
        let outcome = pss_sha256_verify(&g.cert, &parsed.signed, &parsed.signature)
            .map(|()| "RSASSA-PSS (SHA-256) signature over the serialized golden measurement verifies with the signer's key".to_string())
            .map_err(|e| format!("the signature over the serialized golden measurement does not verify: {e}"));
        report.check("endorsement-signature", outcome);
    } else {
        report.skip("endorsement-signature", "no trusted signer key: the certificate chain did not verify");
    }
    if !report.passed() {
        return Ok((report, None));
    }
    let endorsement = Endorsement::from_golden(g)?;
    if let Some(c) = &endorsement.commit {
        report.claim("commit", c.clone());
    }
    if let Some(cl) = endorsement.cl_spec {
        report.claim("cl_spec", cl);
    }
    report.claim("tdx_mrtds", endorsement.tdx.len());
    report.claim("snp_launch_digests", endorsement.snp.len());
    Ok((report, Some(endorsement)))
}

fn certificate(bytes: &[u8]) -> CertificateDer<'static> {
    match CertificateDer::from_pem_slice(bytes) {
        Ok(c) => c,
        Err(_) => CertificateDer::from(bytes.to_vec()),
    }
}

fn chain_check(leaf: &[u8], roots: &[&[u8]], at: u64) -> Result<String, String> {
    if leaf.is_empty() {
        return Err("the golden measurement carries no signer certificate".into());
    }
    if roots.is_empty() {
        return Err("no root of trust given".into());
    }
    let roots: Vec<CertificateDer> = roots.iter().map(|r| certificate(r)).collect();
    let anchors = roots
        .iter()
        .map(|r| webpki::anchor_from_trusted_cert(r).map_err(|e| format!("root unusable: {e:?}")))
        .collect::<Result<Vec<_>, _>>()?;
    let leaf = CertificateDer::from(leaf);
    let ee = webpki::EndEntityCert::try_from(&leaf).map_err(|e| format!("signer certificate: {e:?}"))?;
    let time = UnixTime::since_unix_epoch(std::time::Duration::from_secs(at));
    // gce-tcb-verifier's certificates are signed RSASSA-PSS/SHA-256 (Go's encoding, which is
    // webpki's); PKCS#1 v1.5 accepted too. The signer certificate has no EKU extension, which
    // webpki accepts for any usage.
    let algs = [
        webpki::rustcrypto::RSA_PSS_2048_8192_SHA256_LEGACY_KEY,
        webpki::rustcrypto::RSA_PSS_2048_8192_SHA384_LEGACY_KEY,
        webpki::rustcrypto::RSA_PKCS1_2048_8192_SHA256,
        webpki::rustcrypto::RSA_PKCS1_2048_8192_SHA384,
    ];
    ee.verify_for_usage(&algs, &anchors, &[], time, webpki::KeyUsage::server_auth(), None, None)
        .map(|_| format!("the signer certificate chains to a given root, valid at {}", rfc3339(at)))
        .map_err(|e| format!("the signer certificate does not verify to a given root: {}", describe_webpki(&e, at)))
}

fn pss_sha256_verify(cert: &[u8], msg: &[u8], sig: &[u8]) -> Result<(), String> {
    use rsa::pkcs1::DecodeRsaPublicKey;
    use sha2::{Digest, Sha256};
    use x509_cert::der::Decode;
    const RSA_ENCRYPTION: &str = "1.2.840.113549.1.1.1";
    let cert = x509_cert::Certificate::from_der(cert).map_err(|e| format!("signer certificate: {e}"))?;
    let spki = cert.tbs_certificate().subject_public_key_info();
    if spki.algorithm.oid.to_string() != RSA_ENCRYPTION {
        return Err("the signer key is not an RSA key".into());
    }
    let key = rsa::RsaPublicKey::from_pkcs1_der(spki.subject_public_key.raw_bytes()).map_err(|e| format!("signer RSA key: {e}"))?;
    let hashed = Sha256::digest(msg);
    key.verify(rsa::Pss::new_with_salt::<Sha256>(32), &hashed, sig).map_err(|_| "signature mismatch".to_string())
}

/// `cvmkit.measurements/v1` documents of the endorsed values: one `tdx` document with an
/// `MRTD` register per endorsed configuration, one `snp` document with a `LAUNCH_DIGEST` per
/// vCPU count (and one for the SVSM launch, if endorsed). Registers of the same name are
/// alternatives; each names its origin in `source`. A platform with nothing endorsed gets no
/// document.
pub fn reference_document(e: &Endorsement) -> Vec<Measurements> {
    let firmware = hex(&e.firmware_sha384);
    let origin = |what: String| format!("Google GCE launch endorsement of firmware sha384:{firmware}: {what}");
    let mut out = Vec::new();
    let meta = |doc: &mut Measurements| {
        doc.add_value("firmware_sha384", &firmware);
        if let Some(t) = &e.timestamp {
            doc.add_value("endorsement_timestamp", t);
        }
        if let Some(c) = &e.commit {
            doc.add_value("firmware_commit", c);
        }
        if let Some(cl) = e.cl_spec {
            doc.add_value("firmware_cl_spec", cl);
        }
        doc.notes.push("registers of the same name are alternatives: the value must equal one of them".into());
    };
    let push = |doc: &mut Measurements, name: &str, value: &[u8], source: String| {
        if let Ok(mut r) = Register::with_value(name, Bank::Sha384, value) {
            r.source = Some(source);
            doc.registers.push(r);
        }
    };
    if !e.tdx.is_empty() {
        let mut doc = Measurements::new(Platform::Tdx);
        meta(&mut doc);
        for m in &e.tdx {
            let config = if m.ram_gib == 0 { "default launch".to_string() } else { format!("{} GiB", m.ram_gib) };
            let accept = if m.early_accept { ", early accept" } else { "" };
            push(&mut doc, "MRTD", &m.mrtd, origin(format!("tdx.measurements {{ram_gib: {}, early_accept: {}}} ({config}{accept})", m.ram_gib, m.early_accept)));
        }
        out.push(doc);
    }
    if !e.snp.is_empty() || e.snp_svsm.is_some() {
        let mut doc = Measurements::new(Platform::Snp);
        meta(&mut doc);
        if let Some(p) = e.snp_policy {
            doc.add_value("snp_policy", format!("{p:#x}"));
        }
        for (vcpus, m) in &e.snp {
            push(&mut doc, "LAUNCH_DIGEST", m, origin(format!("sev_snp.measurements[{vcpus}] ({vcpus} vCPUs)")));
        }
        if let Some(m) = &e.snp_svsm {
            push(&mut doc, "LAUNCH_DIGEST", m, origin("sev_snp.svsm_measurement (SVSM launch)".into()));
        }
        out.push(doc);
    }
    out
}
