//! vTPM attestations: go-tpm-tools' `attest.Attestation` (what `gotpm attest` writes on GCE),
//! verified offline.
//!
//! The chain of trust, checked step by step so a failure names its step:
//! pinned Google root → AK certificate (`ak-certificate`) and/or a pinned AK (`ak-pin`) → the
//! AK (`ak-attributes`: a restricted signing key, so it only signs TPM-made structures) signs
//! each quote (`quote-signature`) → the quote covers exactly the PCRs given (`pcr-selection`)
//! and their digest (`pcr-digest`) → the caller's nonce (`nonce`) → the event log replays to the
//! quoted PCRs (`event-log`).
//!
//! The TPM structures are parsed here ([`TpmsAttest`], [`TpmtPublic`], [`TpmtSignature`]), after
//! TPM 2.0 Library Part 2 (Structures), revision 1.59; section numbers are that document's.
//! [`verify_quotes`] is the piece other TPM-based evidence (Azure's HCL vTPM) reuses: quotes and
//! PCR values checked against an AK the caller already trusts.

use std::collections::BTreeMap;

use cvmkit_measure::{Bank, Measurements, Platform, Reader, Register};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, SubjectPublicKeyInfoDer, UnixTime};

use crate::tdx::{describe_webpki, rfc3339};
use crate::{expect, Error, Report};

/// `TPM_GENERATED_VALUE` (Part 2 §6.2): every structure the TPM signs starts with it.
pub const TPM_GENERATED_VALUE: u32 = 0xff54_4347;
/// `TPM_ST_ATTEST_QUOTE` (Part 2 §6.9).
pub const TPM_ST_ATTEST_QUOTE: u16 = 0x8018;

/// `TPM_ALG_ID` values (Part 2 §6.3; TCG Algorithm Registry).
pub mod alg {
    pub const RSA: u16 = 0x0001;
    pub const SHA1: u16 = 0x0004;
    pub const HMAC: u16 = 0x0005;
    pub const KEYEDHASH: u16 = 0x0008;
    pub const SHA256: u16 = 0x000B;
    pub const SHA384: u16 = 0x000C;
    pub const SHA512: u16 = 0x000D;
    pub const NULL: u16 = 0x0010;
    pub const RSASSA: u16 = 0x0014;
    pub const RSAES: u16 = 0x0015;
    pub const RSAPSS: u16 = 0x0016;
    pub const OAEP: u16 = 0x0017;
    pub const ECDSA: u16 = 0x0018;
    pub const ECDH: u16 = 0x0019;
    pub const ECDAA: u16 = 0x001A;
    pub const SM2: u16 = 0x001B;
    pub const ECSCHNORR: u16 = 0x001C;
    pub const ECMQV: u16 = 0x001D;
    pub const ECC: u16 = 0x0023;
    pub const SYMCIPHER: u16 = 0x0025;

    /// A short name for messages (`0x1234` when unknown).
    pub fn name(id: u16) -> String {
        let n = match id {
            RSA => "RSA",
            SHA1 => "SHA-1",
            HMAC => "HMAC",
            KEYEDHASH => "KEYEDHASH",
            SHA256 => "SHA-256",
            SHA384 => "SHA-384",
            SHA512 => "SHA-512",
            NULL => "NULL",
            RSASSA => "RSASSA",
            RSAES => "RSAES",
            RSAPSS => "RSAPSS",
            OAEP => "OAEP",
            ECDSA => "ECDSA",
            ECDH => "ECDH",
            ECDAA => "ECDAA",
            SM2 => "SM2",
            ECSCHNORR => "ECSCHNORR",
            ECMQV => "ECMQV",
            ECC => "ECC",
            SYMCIPHER => "SYMCIPHER",
            _ => return format!("{id:#06x}"),
        };
        n.to_string()
    }
}

/// `TPM_ECC_CURVE` values (Part 2 §6.4) for the curves verified here.
pub const TPM_ECC_NIST_P256: u16 = 0x0003;
/// NIST P-384.
pub const TPM_ECC_NIST_P384: u16 = 0x0004;

// ---------------------------------------------------------------------------------------------
// The protobuf messages.

/// go-tpm-tools' protobuf messages, written by hand with `prost` (no build script). Field
/// numbers and types are those of `proto/attest.proto` and `proto/tpm.proto` in
/// google/go-tpm-tools at commit 67670e5c021a24f2366eb1808db2659211af5eb2. Fields this verifier
/// does not use (`instance_info` = 4, `canonical_event_log` = 5, `sev_snp_attestation` = 8,
/// `tdx_attestation` = 9) are skipped as unknown fields when decoding.
pub mod proto {
    use std::collections::BTreeMap;

    /// `attest.Attestation`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Attestation {
        /// The AK's public area, a `TPMT_PUBLIC`.
        #[prost(bytes = "vec", tag = "1")]
        pub ak_pub: Vec<u8>,
        /// One quote per PCR bank.
        #[prost(message, repeated, tag = "2")]
        pub quotes: Vec<Quote>,
        /// The TCG event log (SHA-1 or crypto-agile), raw.
        #[prost(bytes = "vec", tag = "3")]
        pub event_log: Vec<u8>,
        /// The AK certificate, DER (optional).
        #[prost(bytes = "vec", tag = "6")]
        pub ak_cert: Vec<u8>,
        /// Intermediates for the AK certificate, DER (optional).
        #[prost(bytes = "vec", repeated, tag = "7")]
        pub intermediate_certs: Vec<Vec<u8>>,
    }

    /// `tpm.Quote`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Quote {
        /// A `TPMS_ATTEST`.
        #[prost(bytes = "vec", tag = "1")]
        pub quote: Vec<u8>,
        /// A `TPMT_SIGNATURE`.
        #[prost(bytes = "vec", tag = "2")]
        pub raw_sig: Vec<u8>,
        /// The values of the quoted PCRs.
        #[prost(message, optional, tag = "3")]
        pub pcrs: Option<Pcrs>,
    }

    /// `tpm.PCRs`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Pcrs {
        /// `tpm.HashAlgo`: the bank's `TPM_ALG_ID`.
        #[prost(int32, tag = "1")]
        pub hash: i32,
        /// PCR index → value.
        #[prost(btree_map = "uint32, bytes", tag = "2")]
        pub pcrs: BTreeMap<u32, Vec<u8>>,
    }
}

// ---------------------------------------------------------------------------------------------
// TPM structures.

/// A TPM structure that could not be read: what, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what}: {reason}")]
pub struct ParseError {
    pub what: &'static str,
    pub reason: String,
}

fn perr(what: &'static str, reason: impl ToString) -> ParseError {
    ParseError { what, reason: reason.to_string() }
}

/// Big-endian reads over [`Reader`] (TPM structures are big-endian, Part 1 §18.4).
struct Be<'a> {
    r: Reader<'a>,
    what: &'static str,
}

impl<'a> Be<'a> {
    fn new(data: &'a [u8], what: &'static str) -> Be<'a> {
        Be { r: Reader::new(data), what }
    }

    fn short(&self, field: &str) -> ParseError {
        perr(self.what, format!("{field} at offset {} extends past the end ({} bytes)", self.r.pos(), self.r.pos() + self.r.remaining()))
    }

    fn u8(&mut self, field: &str) -> Result<u8, ParseError> {
        self.r.u8().ok_or_else(|| self.short(field))
    }

    fn u16(&mut self, field: &str) -> Result<u16, ParseError> {
        self.r.array().map(u16::from_be_bytes).ok_or_else(|| self.short(field))
    }

    fn u32(&mut self, field: &str) -> Result<u32, ParseError> {
        self.r.array().map(u32::from_be_bytes).ok_or_else(|| self.short(field))
    }

    fn u64(&mut self, field: &str) -> Result<u64, ParseError> {
        self.r.array().map(u64::from_be_bytes).ok_or_else(|| self.short(field))
    }

    fn bytes(&mut self, len: usize, field: &str) -> Result<&'a [u8], ParseError> {
        self.r.bytes(len).ok_or_else(|| self.short(field))
    }

    /// A `TPM2B_*` (Part 2 §10.4): a u16 size and that many bytes, at most `max`.
    fn tpm2b(&mut self, field: &str, max: usize) -> Result<&'a [u8], ParseError> {
        let size = self.u16(field)? as usize;
        if size > max {
            return Err(perr(self.what, format!("{field} claims {size} bytes, more than {max}")));
        }
        self.bytes(size, field)
    }

    fn end(&self) -> Result<(), ParseError> {
        match self.r.remaining() {
            0 => Ok(()),
            n => Err(perr(self.what, format!("{n} bytes after the end of the structure"))),
        }
    }
}

/// Largest digest (SHA-512).
const MAX_DIGEST: usize = 64;
/// Largest `TPM2B_NAME`: an algorithm ID and a digest, or a handle.
const MAX_NAME: usize = 2 + MAX_DIGEST;
/// Largest RSA modulus accepted (16384 bits).
const MAX_RSA_BYTES: usize = 2048;
/// Largest ECC parameter (P-521).
const MAX_ECC_BYTES: usize = 66;
/// Banks in one selection list (`HASH_COUNT` of any real TPM is at most a handful).
const MAX_SELECTIONS: u32 = 16;
/// `sizeofSelect` limit: 32 bytes, 256 PCRs (real TPMs have 24 PCRs, 3 bytes).
const MAX_SELECT_BYTES: u8 = 32;

/// `TPMS_CLOCK_INFO` (Part 2 §10.11.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClockInfo {
    pub clock: u64,
    pub reset_count: u32,
    pub restart_count: u32,
    pub safe: bool,
}

/// `TPMS_PCR_SELECTION` (Part 2 §10.6.2): a bank and its PCR bitmap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PcrSelection {
    pub hash: u16,
    /// PCR *n* is selected when bit *n* % 8 of byte *n* / 8 is set.
    pub select: Vec<u8>,
}

impl PcrSelection {
    /// The selected PCR indices, ascending (the order their values are hashed in).
    pub fn pcrs(&self) -> Vec<u32> {
        let mut out = Vec::new();
        for (i, byte) in self.select.iter().enumerate() {
            for bit in 0..8 {
                if byte & (1 << bit) != 0 {
                    out.push(i as u32 * 8 + bit);
                }
            }
        }
        out
    }
}

/// `TPMS_ATTEST` (Part 2 §10.12.12) of type `TPM_ST_ATTEST_QUOTE`, whose `attested` member is a
/// `TPMS_QUOTE_INFO` (§10.12.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TpmsAttest {
    /// `magic`: always [`TPM_GENERATED_VALUE`] (checked by the parser).
    pub magic: u32,
    /// `type`: always [`TPM_ST_ATTEST_QUOTE`] (checked by the parser).
    pub attest_type: u16,
    /// `qualifiedSigner` (`TPM2B_NAME`).
    pub qualified_signer: Vec<u8>,
    /// `extraData` (`TPM2B_DATA`): the caller's nonce.
    pub extra_data: Vec<u8>,
    pub clock_info: ClockInfo,
    pub firmware_version: u64,
    /// `TPMS_QUOTE_INFO.pcrSelect` (`TPML_PCR_SELECTION`, §10.9.7).
    pub pcr_select: Vec<PcrSelection>,
    /// `TPMS_QUOTE_INFO.pcrDigest` (`TPM2B_DIGEST`).
    pub pcr_digest: Vec<u8>,
}

impl TpmsAttest {
    /// Parses a quote's `TPMS_ATTEST`; other attestation types are refused.
    pub fn parse(data: &[u8]) -> Result<TpmsAttest, ParseError> {
        const WHAT: &str = "TPMS_ATTEST";
        let mut b = Be::new(data, WHAT);
        let magic = b.u32("magic")?;
        if magic != TPM_GENERATED_VALUE {
            return Err(perr(WHAT, format!("magic is {magic:#010x}, not TPM_GENERATED_VALUE (0xff544347)")));
        }
        let attest_type = b.u16("type")?;
        if attest_type != TPM_ST_ATTEST_QUOTE {
            return Err(perr(WHAT, format!("type is {attest_type:#06x}, not TPM_ST_ATTEST_QUOTE (0x8018)")));
        }
        let qualified_signer = b.tpm2b("qualifiedSigner", MAX_NAME)?.to_vec();
        let extra_data = b.tpm2b("extraData", MAX_DIGEST)?.to_vec();
        let clock_info = ClockInfo {
            clock: b.u64("clockInfo.clock")?,
            reset_count: b.u32("clockInfo.resetCount")?,
            restart_count: b.u32("clockInfo.restartCount")?,
            safe: match b.u8("clockInfo.safe")? {
                0 => false,
                1 => true,
                v => return Err(perr(WHAT, format!("clockInfo.safe is {v}, not a TPMI_YES_NO"))),
            },
        };
        let firmware_version = b.u64("firmwareVersion")?;
        let count = b.u32("pcrSelect.count")?;
        if count > MAX_SELECTIONS {
            return Err(perr(WHAT, format!("pcrSelect.count is {count}, more than {MAX_SELECTIONS}")));
        }
        let mut pcr_select = Vec::new();
        for _ in 0..count {
            let hash = b.u16("pcrSelections.hash")?;
            let size = b.u8("pcrSelections.sizeofSelect")?;
            if size > MAX_SELECT_BYTES {
                return Err(perr(WHAT, format!("sizeofSelect is {size}, more than {MAX_SELECT_BYTES}")));
            }
            let select = b.bytes(size as usize, "pcrSelections.pcrSelect")?.to_vec();
            pcr_select.push(PcrSelection { hash, select });
        }
        let pcr_digest = b.tpm2b("pcrDigest", MAX_DIGEST)?.to_vec();
        b.end()?;
        Ok(TpmsAttest { magic, attest_type, qualified_signer, extra_data, clock_info, firmware_version, pcr_select, pcr_digest })
    }
}

/// `TPMA_OBJECT` bits (Part 2 §8.3.2) an AK's attributes are judged by.
pub mod attr {
    pub const FIXED_TPM: u32 = 1 << 1;
    pub const ST_CLEAR: u32 = 1 << 2;
    pub const FIXED_PARENT: u32 = 1 << 4;
    pub const SENSITIVE_DATA_ORIGIN: u32 = 1 << 5;
    pub const USER_WITH_AUTH: u32 = 1 << 6;
    pub const ADMIN_WITH_POLICY: u32 = 1 << 7;
    pub const NO_DA: u32 = 1 << 10;
    pub const ENCRYPTED_DUPLICATION: u32 = 1 << 11;
    pub const RESTRICTED: u32 = 1 << 16;
    pub const DECRYPT: u32 = 1 << 17;
    pub const SIGN_ENCRYPT: u32 = 1 << 18;
    pub const X509_SIGN: u32 = 1 << 19;

    /// The names of the set bits, as Part 2 spells them.
    pub fn names(a: u32) -> Vec<&'static str> {
        [
            (FIXED_TPM, "fixedTPM"),
            (ST_CLEAR, "stClear"),
            (FIXED_PARENT, "fixedParent"),
            (SENSITIVE_DATA_ORIGIN, "sensitiveDataOrigin"),
            (USER_WITH_AUTH, "userWithAuth"),
            (ADMIN_WITH_POLICY, "adminWithPolicy"),
            (NO_DA, "noDA"),
            (ENCRYPTED_DUPLICATION, "encryptedDuplication"),
            (RESTRICTED, "restricted"),
            (DECRYPT, "decrypt"),
            (SIGN_ENCRYPT, "sign"),
            (X509_SIGN, "x509sign"),
        ]
        .into_iter()
        .filter(|(bit, _)| a & bit != 0)
        .map(|(_, n)| n)
        .collect()
    }
}

/// A key's scheme (`TPMT_RSA_SCHEME` §11.2.4.2, `TPMT_ECC_SCHEME` §11.2.5.6): the algorithm and,
/// for the signing and OAEP schemes, its hash (`TPM_ALG_NULL` when there is none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scheme {
    pub scheme: u16,
    pub hash: u16,
}

/// `TPMU_PUBLIC_PARMS` and `TPMU_PUBLIC_ID` for the key types read here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublicKey {
    /// `TPMS_RSA_PARMS` (§12.2.3.5) and `TPM2B_PUBLIC_KEY_RSA` (§11.2.4.5).
    Rsa {
        key_bits: u16,
        /// 0 means the default, 65537.
        exponent: u32,
        modulus: Vec<u8>,
    },
    /// `TPMS_ECC_PARMS` (§12.2.3.6) and `TPMS_ECC_POINT` (§11.2.5.2).
    Ecc { curve: u16, kdf: u16, x: Vec<u8>, y: Vec<u8> },
}

/// `TPMT_PUBLIC` (Part 2 §12.2.4) of an RSA or ECC key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TpmtPublic {
    /// `type`: `TPM_ALG_RSA` or `TPM_ALG_ECC`.
    pub key_type: u16,
    pub name_alg: u16,
    /// `objectAttributes` (`TPMA_OBJECT`, §8.3).
    pub attributes: u32,
    pub auth_policy: Vec<u8>,
    /// `parameters.symmetric.algorithm` (`TPM_ALG_NULL` for signing keys).
    pub symmetric: u16,
    pub scheme: Scheme,
    pub key: PublicKey,
}

impl TpmtPublic {
    /// Parses an RSA or ECC `TPMT_PUBLIC`; KEYEDHASH and SYMCIPHER objects are refused.
    pub fn parse(data: &[u8]) -> Result<TpmtPublic, ParseError> {
        const WHAT: &str = "TPMT_PUBLIC";
        let mut b = Be::new(data, WHAT);
        let key_type = b.u16("type")?;
        let name_alg = b.u16("nameAlg")?;
        let attributes = b.u32("objectAttributes")?;
        let auth_policy = b.tpm2b("authPolicy", MAX_DIGEST)?.to_vec();
        // TPMT_SYM_DEF_OBJECT (§11.1.7): algorithm, then keyBits and mode unless NULL.
        let symmetric = b.u16("parameters.symmetric.algorithm")?;
        if symmetric != alg::NULL {
            b.u16("parameters.symmetric.keyBits")?;
            b.u16("parameters.symmetric.mode")?;
        }
        let read_scheme = |b: &mut Be| -> Result<Scheme, ParseError> {
            let scheme = b.u16("parameters.scheme.scheme")?;
            let hash = match scheme {
                alg::NULL => alg::NULL,
                // TPMS_ENC_SCHEME_RSAES and TPMS_KEY_SCHEME_ECDH/ECMQV carry a hash or nothing:
                // RSAES is empty (§11.2.3.2); the others are TPMS_SCHEME_HASH.
                alg::RSAES => alg::NULL,
                alg::ECDAA => {
                    // TPMS_SCHEME_ECDAA (§11.2.3.3): hashAlg, count.
                    let h = b.u16("parameters.scheme.details.hashAlg")?;
                    b.u16("parameters.scheme.details.count")?;
                    h
                }
                _ => b.u16("parameters.scheme.details.hashAlg")?,
            };
            Ok(Scheme { scheme, hash })
        };
        let (scheme, key) = match key_type {
            alg::RSA => {
                let scheme = read_scheme(&mut b)?;
                let key_bits = b.u16("parameters.keyBits")?;
                let exponent = b.u32("parameters.exponent")?;
                let modulus = b.tpm2b("unique.rsa", MAX_RSA_BYTES)?.to_vec();
                (scheme, PublicKey::Rsa { key_bits, exponent, modulus })
            }
            alg::ECC => {
                let scheme = read_scheme(&mut b)?;
                let curve = b.u16("parameters.curveID")?;
                // TPMT_KDF_SCHEME (§11.2.3.7): scheme, then hashAlg unless NULL.
                let kdf = b.u16("parameters.kdf.scheme")?;
                if kdf != alg::NULL {
                    b.u16("parameters.kdf.details.hashAlg")?;
                }
                let x = b.tpm2b("unique.ecc.x", MAX_ECC_BYTES)?.to_vec();
                let y = b.tpm2b("unique.ecc.y", MAX_ECC_BYTES)?.to_vec();
                (scheme, PublicKey::Ecc { curve, kdf, x, y })
            }
            other => return Err(perr(WHAT, format!("type {} is not an RSA or ECC key", alg::name(other)))),
        };
        b.end()?;
        Ok(TpmtPublic { key_type, name_alg, attributes, auth_policy, symmetric, scheme, key })
    }
}

/// `TPMT_SIGNATURE` (Part 2 §11.3.4) for the schemes verified here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TpmtSignature {
    /// `TPM_ALG_RSASSA` or `TPM_ALG_RSAPSS` with `TPMS_SIGNATURE_RSA` (§11.3.1).
    Rsa { scheme: u16, hash: u16, sig: Vec<u8> },
    /// `TPM_ALG_ECDSA` with `TPMS_SIGNATURE_ECC` (§11.3.2).
    Ecdsa { hash: u16, r: Vec<u8>, s: Vec<u8> },
}

impl TpmtSignature {
    /// Parses RSASSA, RSAPSS and ECDSA signatures; other schemes are refused.
    pub fn parse(data: &[u8]) -> Result<TpmtSignature, ParseError> {
        const WHAT: &str = "TPMT_SIGNATURE";
        let mut b = Be::new(data, WHAT);
        let sig_alg = b.u16("sigAlg")?;
        let out = match sig_alg {
            alg::RSASSA | alg::RSAPSS => {
                let hash = b.u16("signature.hash")?;
                let sig = b.tpm2b("signature.sig", MAX_RSA_BYTES)?.to_vec();
                TpmtSignature::Rsa { scheme: sig_alg, hash, sig }
            }
            alg::ECDSA => {
                let hash = b.u16("signature.hash")?;
                let r = b.tpm2b("signature.signatureR", MAX_ECC_BYTES)?.to_vec();
                let s = b.tpm2b("signature.signatureS", MAX_ECC_BYTES)?.to_vec();
                TpmtSignature::Ecdsa { hash, r, s }
            }
            other => return Err(perr(WHAT, format!("signature scheme {} is not RSASSA, RSAPSS or ECDSA", alg::name(other)))),
        };
        b.end()?;
        Ok(out)
    }

    /// The structure's bytes: for evidence that gives a bare signature (Azure's vTPM quote is
    /// an RSASSA-SHA256 signature without its TPMT_SIGNATURE header) to go through
    /// [`verify_quotes`].
    pub fn encode(&self) -> Vec<u8> {
        let tpm2b = |out: &mut Vec<u8>, b: &[u8]| {
            out.extend_from_slice(&u16::try_from(b.len()).unwrap_or(u16::MAX).to_be_bytes());
            out.extend_from_slice(&b[..b.len().min(u16::MAX as usize)]);
        };
        let mut out = Vec::new();
        out.extend_from_slice(&self.scheme().to_be_bytes());
        out.extend_from_slice(&self.hash().to_be_bytes());
        match self {
            TpmtSignature::Rsa { sig, .. } => tpm2b(&mut out, sig),
            TpmtSignature::Ecdsa { r, s, .. } => {
                tpm2b(&mut out, r);
                tpm2b(&mut out, s);
            }
        }
        out
    }

    /// The signature scheme (`sigAlg`).
    pub fn scheme(&self) -> u16 {
        match self {
            TpmtSignature::Rsa { scheme, .. } => *scheme,
            TpmtSignature::Ecdsa { .. } => alg::ECDSA,
        }
    }

    /// The hash the signed data was digested with.
    pub fn hash(&self) -> u16 {
        match self {
            TpmtSignature::Rsa { hash, .. } | TpmtSignature::Ecdsa { hash, .. } => *hash,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The AK.

/// An attestation key's public key, normalized so that two encodings of the same key compare
/// equal: from a `TPMT_PUBLIC`, an X.509 SubjectPublicKeyInfo (certificate, PEM), or the RSA
/// modulus and exponent (Azure's JWK `n` and `e`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AkPublic {
    /// Big-endian modulus and exponent without leading zero bytes.
    Rsa { n: Vec<u8>, e: Vec<u8> },
    /// A NIST curve point, coordinates left-padded to the curve's size.
    Ecc { curve: u16, x: Vec<u8>, y: Vec<u8> },
}

fn strip_zeros(b: &[u8]) -> Vec<u8> {
    let first = b.iter().position(|&x| x != 0).unwrap_or(b.len());
    b[first..].to_vec()
}

fn curve_size(curve: u16) -> Option<usize> {
    match curve {
        TPM_ECC_NIST_P256 => Some(32),
        TPM_ECC_NIST_P384 => Some(48),
        _ => None,
    }
}

fn left_pad(b: &[u8], size: usize) -> Option<Vec<u8>> {
    let b = &b[b.iter().position(|&x| x != 0).unwrap_or(b.len())..];
    if b.len() > size {
        return None;
    }
    let mut out = vec![0; size - b.len()];
    out.extend_from_slice(b);
    Some(out)
}

impl AkPublic {
    /// An RSA key from its big-endian modulus and public exponent.
    pub fn rsa(n: &[u8], e: &[u8]) -> AkPublic {
        AkPublic::Rsa { n: strip_zeros(n), e: strip_zeros(e) }
    }

    /// The key of a `TPMT_PUBLIC` (RSA, or ECC on P-256/P-384).
    pub fn from_tpmt_public(p: &TpmtPublic) -> Result<AkPublic, String> {
        match &p.key {
            PublicKey::Rsa { exponent, modulus, .. } => {
                let e = if *exponent == 0 { 65537 } else { *exponent };
                Ok(AkPublic::rsa(modulus, &e.to_be_bytes()))
            }
            PublicKey::Ecc { curve, x, y, .. } => {
                let size = curve_size(*curve).ok_or_else(|| format!("ECC curve {curve:#06x} is not NIST P-256 or P-384"))?;
                let x = left_pad(x, size).ok_or("ECC x coordinate longer than the curve")?;
                let y = left_pad(y, size).ok_or("ECC y coordinate longer than the curve")?;
                Ok(AkPublic::Ecc { curve: *curve, x, y })
            }
        }
    }

    /// The key of a DER SubjectPublicKeyInfo (RSA, or EC on P-256/P-384).
    pub fn from_spki_der(der: &[u8]) -> Result<AkPublic, String> {
        use x509_cert::der::Decode;
        let spki = x509_cert::spki::SubjectPublicKeyInfoRef::from_der(der).map_err(|e| format!("not a SubjectPublicKeyInfo: {e}"))?;
        AkPublic::from_spki(&spki)
    }

    fn from_spki(spki: &x509_cert::spki::SubjectPublicKeyInfoRef) -> Result<AkPublic, String> {
        const RSA_ENCRYPTION: &str = "1.2.840.113549.1.1.1";
        const EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";
        let bits = spki.subject_public_key.raw_bytes();
        match spki.algorithm.oid.to_string().as_str() {
            RSA_ENCRYPTION => {
                use rsa::pkcs1::DecodeRsaPublicKey;
                use rsa::traits::PublicKeyParts;
                let key = rsa::RsaPublicKey::from_pkcs1_der(bits).map_err(|e| format!("not an RSA public key: {e}"))?;
                Ok(AkPublic::rsa(&key.n().to_bytes_be(), &key.e().to_bytes_be()))
            }
            EC_PUBLIC_KEY => {
                let (curve, size) = match bits.len() {
                    65 => (TPM_ECC_NIST_P256, 32),
                    97 => (TPM_ECC_NIST_P384, 48),
                    n => return Err(format!("EC point of {n} bytes is not an uncompressed P-256 or P-384 point")),
                };
                if bits[0] != 4 {
                    return Err("EC point is not uncompressed".into());
                }
                Ok(AkPublic::Ecc { curve, x: bits[1..1 + size].to_vec(), y: bits[1 + size..].to_vec() })
            }
            other => Err(format!("public key algorithm {other} is neither RSA nor EC")),
        }
    }

    /// The subject public key of a DER certificate.
    pub fn from_certificate(der: &[u8]) -> Result<AkPublic, String> {
        use x509_cert::der::{Decode, Encode};
        let cert = x509_cert::Certificate::from_der(der).map_err(|e| format!("not an X.509 certificate: {e}"))?;
        let spki = cert.tbs_certificate().subject_public_key_info().to_der().map_err(|e| e.to_string())?;
        AkPublic::from_spki_der(&spki)
    }

    /// An `--ak` file: a PEM public key (`PUBLIC KEY`), a DER SubjectPublicKeyInfo, or a
    /// `TPMT_PUBLIC`.
    pub fn from_file(data: &[u8]) -> Result<AkPublic, Error> {
        if let Ok(spki) = SubjectPublicKeyInfoDer::from_pem_slice(data) {
            return AkPublic::from_spki_der(spki.as_ref()).map_err(|e| Error::Input(format!("--ak: {e}")));
        }
        if let Ok(k) = AkPublic::from_spki_der(data) {
            return Ok(k);
        }
        match TpmtPublic::parse(data) {
            Ok(p) => AkPublic::from_tpmt_public(&p).map_err(|e| Error::Input(format!("--ak: {e}"))),
            Err(e) => Err(Error::Input(format!(
                "--ak: neither a PEM public key, a DER SubjectPublicKeyInfo nor a TPMT_PUBLIC ({e})"
            ))),
        }
    }

    /// A short description: `RSA-2048`, `ECC NIST P-256`.
    pub fn describe(&self) -> String {
        match self {
            AkPublic::Rsa { n, .. } => format!("RSA-{}", n.len() * 8),
            AkPublic::Ecc { curve: TPM_ECC_NIST_P256, .. } => "ECC NIST P-256".into(),
            AkPublic::Ecc { curve: TPM_ECC_NIST_P384, .. } => "ECC NIST P-384".into(),
            AkPublic::Ecc { curve, .. } => format!("ECC curve {curve:#06x}"),
        }
    }

    /// Verifies `sig` over `msg` (the raw `TPMS_ATTEST`).
    pub fn verify(&self, msg: &[u8], sig: &TpmtSignature) -> Result<(), String> {
        let hash_alg = sig.hash();
        if ![alg::SHA256, alg::SHA384, alg::SHA512].contains(&hash_alg) {
            return Err(format!("signature hash {} is not SHA-256, SHA-384 or SHA-512", alg::name(hash_alg)));
        }
        let bank = Bank::from_tpm_alg_id(hash_alg).ok_or("unsupported hash")?;
        let digest = bank.hash(msg);
        match (self, sig) {
            (AkPublic::Rsa { n, e }, TpmtSignature::Rsa { scheme, sig, .. }) => {
                let key = rsa::RsaPublicKey::new(rsa::BigUint::from_bytes_be(n), rsa::BigUint::from_bytes_be(e))
                    .map_err(|e| format!("unusable RSA key: {e}"))?;
                rsa_verify(&key, *scheme, bank, &digest, sig)
            }
            (AkPublic::Ecc { curve, x, y }, TpmtSignature::Ecdsa { r, s, .. }) => ecdsa_verify(*curve, x, y, &digest, r, s),
            (k, s) => Err(format!("a {} signature cannot come from an {} key", alg::name(s.scheme()), k.describe())),
        }
    }
}

fn rsa_verify(key: &rsa::RsaPublicKey, scheme: u16, bank: Bank, digest: &[u8], sig: &[u8]) -> Result<(), String> {
    use rsa::traits::PublicKeyParts;
    use rsa::{Pkcs1v15Sign, Pss};
    let ok = match (scheme, bank) {
        (alg::RSASSA, Bank::Sha256) => key.verify(Pkcs1v15Sign::new::<sha2::Sha256>(), digest, sig).is_ok(),
        (alg::RSASSA, Bank::Sha384) => key.verify(Pkcs1v15Sign::new::<sha2::Sha384>(), digest, sig).is_ok(),
        (alg::RSASSA, Bank::Sha512) => key.verify(Pkcs1v15Sign::new::<sha2::Sha512>(), digest, sig).is_ok(),
        (alg::RSAPSS, _) => {
            // The TPM's salt is the digest size, or the largest the key allows (Part 1 Annex B.7,
            // depending on the TPM's FIPS mode): either is accepted.
            let h = bank.digest_size();
            let max = key.size().saturating_sub(h + 2);
            [h, max].iter().any(|&salt| match bank {
                Bank::Sha256 => key.verify(Pss::new_with_salt::<sha2::Sha256>(salt), digest, sig).is_ok(),
                Bank::Sha384 => key.verify(Pss::new_with_salt::<sha2::Sha384>(salt), digest, sig).is_ok(),
                Bank::Sha512 => key.verify(Pss::new_with_salt::<sha2::Sha512>(salt), digest, sig).is_ok(),
                Bank::Sha1 => false,
            })
        }
        _ => return Err(format!("RSA scheme {} with {} is not verified here", alg::name(scheme), bank)),
    };
    if ok {
        Ok(())
    } else {
        Err(format!("the {} signature does not verify with the AK", alg::name(scheme)))
    }
}

fn ecdsa_verify(curve: u16, x: &[u8], y: &[u8], digest: &[u8], r: &[u8], s: &[u8]) -> Result<(), String> {
    use p256::ecdsa::signature::hazmat::PrehashVerifier;
    let size = curve_size(curve).ok_or("unsupported curve")?;
    let r = left_pad(r, size).ok_or("ECDSA r longer than the curve")?;
    let s = left_pad(s, size).ok_or("ECDSA s longer than the curve")?;
    let mut point = vec![4u8];
    point.extend_from_slice(x);
    point.extend_from_slice(y);
    let mut rs = r;
    rs.extend_from_slice(&s);
    let ok = match curve {
        TPM_ECC_NIST_P256 => {
            let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(&point).map_err(|_| "not a P-256 public key")?;
            let sig = p256::ecdsa::Signature::from_slice(&rs).map_err(|_| "malformed ECDSA signature")?;
            key.verify_prehash(digest, &sig).is_ok()
        }
        TPM_ECC_NIST_P384 => {
            let key = p384::ecdsa::VerifyingKey::from_sec1_bytes(&point).map_err(|_| "not a P-384 public key")?;
            let sig = p384::ecdsa::Signature::from_slice(&rs).map_err(|_| "malformed ECDSA signature")?;
            key.verify_prehash(digest, &sig).is_ok()
        }
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err("the ECDSA signature does not verify with the AK".into())
    }
}

// ---------------------------------------------------------------------------------------------
// Quotes.

/// One quote: the signed `TPMS_ATTEST`, its `TPMT_SIGNATURE`, and the values of the PCRs it
/// claims to cover in one bank.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quote {
    pub attest: Vec<u8>,
    pub signature: Vec<u8>,
    /// The bank's `TPM_ALG_ID`.
    pub bank: u16,
    /// PCR index → value.
    pub pcrs: BTreeMap<u32, Vec<u8>>,
}

impl Quote {
    fn bank_name(&self) -> String {
        Bank::from_tpm_alg_id(self.bank).map(|b| b.name().to_string()).unwrap_or_else(|| alg::name(self.bank))
    }
}

/// A quote that passed every check: its bank and PCR values can be trusted as far as the AK is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedQuote {
    pub bank: Bank,
    pub pcrs: BTreeMap<u32, Vec<u8>>,
    pub attest: TpmsAttest,
}

/// Verifies quotes and their PCR values against an AK the caller trusts (its trust is the
/// caller's check), recording `quote-format`, `quote-signature`, `pcr-selection`, `pcr-digest`
/// and `nonce` (one check each, over all quotes; a failure names the quote's bank). Returns the
/// quotes that passed all of them. Claims `quotes` (one object per quote).
///
/// The PCR digest is the hash of the selected PCRs' values, concatenated in selection order
/// (Part 3 §18.4 TPM2_Quote), with the signing scheme's hash — the signature's hash algorithm,
/// as go-tpm-tools' `quote.Verify` computes it (`internal.PCRDigest(pcrs, hash)`).
pub fn verify_quotes(report: &mut Report, ak: &AkPublic, quotes: &[Quote], nonce: Option<&[u8]>) -> Vec<VerifiedQuote> {
    let mut format = Outcome::default();
    let mut signature = Outcome::default();
    let mut selection = Outcome::default();
    let mut digest = Outcome::default();
    let mut nonce_out = Outcome::default();
    let mut claims = Vec::new();
    let mut verified = Vec::new();

    if quotes.is_empty() {
        report.fail("quote-signature", "the evidence holds no quote");
        return verified;
    }
    for q in quotes {
        let bank_name = q.bank_name();
        let sig = TpmtSignature::parse(&q.signature);
        let attest = TpmsAttest::parse(&q.attest);
        let mut ok = true;

        // The signature is over the raw bytes: it is checked even when they do not parse.
        match &sig {
            Ok(s) => match ak.verify(&q.attest, s) {
                Ok(()) => signature.pass(&bank_name),
                Err(e) => {
                    signature.fail(&bank_name, e);
                    ok = false;
                }
            },
            Err(e) => {
                signature.fail(&bank_name, e.to_string());
                ok = false;
            }
        }
        let attest = match attest {
            Ok(a) => {
                format.pass(&bank_name);
                a
            }
            Err(e) => {
                format.fail(&bank_name, e.to_string());
                continue;
            }
        };
        claims.push(quote_claim(q, &attest, sig.as_ref().ok()));

        match check_selection(q, &attest) {
            Ok(()) => selection.pass(&bank_name),
            Err(e) => {
                selection.fail(&bank_name, e);
                ok = false;
            }
        }
        match sig.as_ref().map_err(|e| e.to_string()).and_then(|s| check_digest(q, &attest, s.hash())) {
            Ok(()) => digest.pass(&bank_name),
            Err(e) => {
                digest.fail(&bank_name, e);
                ok = false;
            }
        }
        if let Some(n) = nonce {
            if attest.extra_data == n {
                nonce_out.pass(&bank_name);
            } else {
                nonce_out.fail(&bank_name, format!("extraData is {:?}, not the given nonce", cvmkit_measure::hex(&attest.extra_data)));
                ok = false;
            }
        }
        match Bank::from_tpm_alg_id(q.bank) {
            Some(bank) if ok => verified.push(VerifiedQuote { bank, pcrs: q.pcrs.clone(), attest }),
            _ => {}
        }
    }

    format.record(report, "quote-format", "TPMS_ATTEST of a quote (TPM_GENERATED_VALUE, TPM_ST_ATTEST_QUOTE)");
    signature.record(report, "quote-signature", &format!("signed by the AK ({})", ak.describe()));
    selection.record(report, "pcr-selection", "the quote selects exactly the PCRs given");
    digest.record(report, "pcr-digest", "the quote's pcrDigest is the digest of the PCR values given");
    match nonce {
        None => report.skip("nonce", "no --nonce given: the quote is not checked to be fresh"),
        Some(_) => nonce_out.record(report, "nonce", "extraData equals the given nonce"),
    }
    report.claim("quotes", serde_json::Value::Array(claims));
    verified
}

/// One check's results over several quotes.
#[derive(Default)]
struct Outcome {
    passed: Vec<String>,
    failed: Vec<String>,
}

impl Outcome {
    fn pass(&mut self, bank: &str) {
        self.passed.push(bank.to_string());
    }

    fn fail(&mut self, bank: &str, why: impl Into<String>) {
        self.failed.push(format!("{bank} quote: {}", why.into()));
    }

    fn record(self, report: &mut Report, name: &str, what: &str) {
        if !self.failed.is_empty() {
            report.fail(name, self.failed.join("; "));
        } else if self.passed.is_empty() {
            report.skip(name, "no quote could be read");
        } else {
            report.pass(name, format!("{what}: {} quote{}", self.passed.join(", "), if self.passed.len() == 1 { "" } else { "s" }));
        }
    }
}

fn quote_claim(q: &Quote, a: &TpmsAttest, sig: Option<&TpmtSignature>) -> serde_json::Value {
    let selection: Vec<serde_json::Value> = a
        .pcr_select
        .iter()
        .map(|s| serde_json::json!({ "hash": alg::name(s.hash), "pcrs": s.pcrs() }))
        .collect();
    serde_json::json!({
        "bank": q.bank_name(),
        "qualified_signer": cvmkit_measure::hex(&a.qualified_signer),
        "extra_data": cvmkit_measure::hex(&a.extra_data),
        "clock": a.clock_info.clock,
        "reset_count": a.clock_info.reset_count,
        "restart_count": a.clock_info.restart_count,
        "safe": a.clock_info.safe,
        "firmware_version": format!("{:#018x}", a.firmware_version),
        "pcr_select": selection,
        "pcr_digest": cvmkit_measure::hex(&a.pcr_digest),
        "signature_scheme": sig.map(|s| alg::name(s.scheme())),
        "signature_hash": sig.map(|s| alg::name(s.hash())),
    })
}

fn check_selection(q: &Quote, a: &TpmsAttest) -> Result<(), String> {
    let mut selected = std::collections::BTreeSet::new();
    for s in &a.pcr_select {
        if s.hash != q.bank {
            return Err(format!("the quote selects {} PCRs, but the values given are {}", alg::name(s.hash), q.bank_name()));
        }
        selected.extend(s.pcrs());
    }
    let given: std::collections::BTreeSet<u32> = q.pcrs.keys().copied().collect();
    if selected == given {
        Ok(())
    } else {
        let list = |s: &std::collections::BTreeSet<u32>| s.iter().map(u32::to_string).collect::<Vec<_>>().join(",");
        Err(format!("the quote selects PCRs {{{}}}, the values given are for {{{}}}", list(&selected), list(&given)))
    }
}

fn check_digest(q: &Quote, a: &TpmsAttest, hash: u16) -> Result<(), String> {
    let bank = Bank::from_tpm_alg_id(hash).ok_or_else(|| format!("unsupported digest hash {}", alg::name(hash)))?;
    let mut data = Vec::new();
    for s in &a.pcr_select {
        for n in s.pcrs() {
            data.extend_from_slice(q.pcrs.get(&n).ok_or_else(|| format!("no value given for PCR{n}"))?);
        }
    }
    let computed = bank.hash(&data);
    if computed == a.pcr_digest {
        Ok(())
    } else {
        Err(format!(
            "pcrDigest is {}, the {} of the PCR values given is {}",
            cvmkit_measure::hex(&a.pcr_digest),
            bank,
            cvmkit_measure::hex(&computed)
        ))
    }
}

// ---------------------------------------------------------------------------------------------
// The attestation.

/// What to check an attestation against.
#[derive(Debug, Clone)]
pub struct Options<'a> {
    /// The nonce given to `gotpm attest --nonce` (the quotes' extraData).
    pub nonce: Option<&'a [u8]>,
    /// A pinned AK (`--ak FILE`: PEM public key, DER SPKI or TPMT_PUBLIC).
    pub ak: Option<&'a [u8]>,
    /// Unix time at which certificates must be valid.
    pub at: u64,
    /// A prediction to compare the registers with.
    pub expect: Option<&'a Measurements>,
    /// Roots the AK certificate must chain to (DER): [`crate::roots::GCE_VTPM_ROOTS`] unless
    /// testing.
    pub roots: &'a [&'a [u8]],
}

impl Options<'_> {
    pub fn new(at: u64) -> Options<'static> {
        Options { nonce: None, ak: None, at, expect: None, roots: crate::roots::GCE_VTPM_ROOTS }
    }
}

/// Decodes go-tpm-tools' `attest.Attestation`.
pub fn parse(raw: &[u8]) -> Result<proto::Attestation, Error> {
    use prost::Message;
    let att = proto::Attestation::decode(raw).map_err(|e| Error::malformed("go-tpm-tools Attestation protobuf", e))?;
    if att.ak_pub.is_empty() && att.quotes.is_empty() {
        return Err(Error::malformed("go-tpm-tools Attestation protobuf", "it has neither ak_pub nor quotes"));
    }
    Ok(att)
}

/// Verifies an attestation. `Err` only for input that cannot be parsed (not the protobuf, an AK
/// that is not a TPMT_PUBLIC, an unusable `--ak`); every check is in the report.
pub fn verify(raw: &[u8], opts: &Options) -> Result<Report, Error> {
    let att = parse(raw)?;
    let ak_pub = TpmtPublic::parse(&att.ak_pub).map_err(|e| Error::malformed("AK public area (ak_pub)", e))?;
    let pinned = opts.ak.map(AkPublic::from_file).transpose()?;

    let mut report = Report::new("tpm");
    report.claim("evaluated_at", rfc3339(opts.at));
    report.claim("ak_type", alg::name(ak_pub.key_type));
    report.claim("ak_name_alg", alg::name(ak_pub.name_alg));
    report.claim("ak_attributes", attr::names(ak_pub.attributes));
    report.claim("ak_scheme", format!("{} {}", alg::name(ak_pub.scheme.scheme), alg::name(ak_pub.scheme.hash)));

    let ak = match AkPublic::from_tpmt_public(&ak_pub) {
        Ok(k) => k,
        Err(e) => return Err(Error::malformed("AK public area (ak_pub)", e)),
    };
    report.claim("ak_key", ak.describe());
    ak_attributes_check(&mut report, &ak_pub);
    ak_certificate_check(&mut report, &att, &ak, opts);
    match &pinned {
        None => report.skip("ak-pin", "no --ak given: the AK is trusted through its certificate only"),
        Some(p) if *p == ak => report.pass("ak-pin", format!("the AK is the pinned key ({})", p.describe())),
        Some(p) => report.fail("ak-pin", format!("the attestation's AK ({}) is not the pinned key ({})", ak.describe(), p.describe())),
    }

    let quotes: Vec<Quote> = att
        .quotes
        .iter()
        .map(|q| {
            let pcrs = q.pcrs.clone().unwrap_or_default();
            Quote { attest: q.quote.clone(), signature: q.raw_sig.clone(), bank: u16::try_from(pcrs.hash).unwrap_or(0), pcrs: pcrs.pcrs }
        })
        .collect();
    verify_quotes(&mut report, &ak, &quotes, opts.nonce);

    let doc = registers(&mut report, &quotes, &att.event_log);
    report.set_registers(expect::compare(&doc, opts.expect));
    Ok(report)
}

fn ak_attributes_check(report: &mut Report, p: &TpmtPublic) {
    let a = p.attributes;
    let outcome = if a & attr::SIGN_ENCRYPT == 0 {
        Err("the AK is not a signing key (sign attribute clear)".to_string())
    } else if a & attr::RESTRICTED == 0 {
        Err("the AK is not restricted: it can sign data that only looks like a TPM quote".to_string())
    } else if a & attr::DECRYPT != 0 {
        Err("the AK is also a decryption key".to_string())
    } else if a & attr::FIXED_TPM == 0 {
        Err("the AK is not fixedTPM: it may exist outside this TPM".to_string())
    } else {
        Ok(format!("a restricted signing key that cannot leave the TPM ({})", attr::names(a).join(", ")))
    };
    report.check("ak-attributes", outcome);
}

/// Accepts any extended key usage, as go-tpm-tools does (`x509.ExtKeyUsageAny`): GCE's AK and
/// EK certificates and CAs carry tcg-kp-EKCertificate (2.23.133.8.1) or tcg-kp-AIKCertificate
/// (2.23.133.8.3). The extension must still parse.
struct AnyEku;

impl webpki::ExtendedKeyUsageValidator for AnyEku {
    fn validate(&self, iter: webpki::KeyPurposeIdIter<'_, '_>) -> Result<(), webpki::Error> {
        for k in iter {
            k?;
        }
        Ok(())
    }
}

const CERT_ALGS: &[&dyn rustls_pki_types::SignatureVerificationAlgorithm] = &[
    webpki::rustcrypto::RSA_PKCS1_2048_8192_SHA256,
    webpki::rustcrypto::RSA_PKCS1_2048_8192_SHA384,
    webpki::rustcrypto::RSA_PKCS1_2048_8192_SHA512,
    webpki::rustcrypto::RSA_PSS_2048_8192_SHA256_LEGACY_KEY,
    webpki::rustcrypto::RSA_PSS_2048_8192_SHA384_LEGACY_KEY,
    webpki::rustcrypto::RSA_PSS_2048_8192_SHA512_LEGACY_KEY,
    webpki::rustcrypto::ECDSA_P256_SHA256,
    webpki::rustcrypto::ECDSA_P256_SHA384,
    webpki::rustcrypto::ECDSA_P384_SHA256,
    webpki::rustcrypto::ECDSA_P384_SHA384,
];

fn ak_certificate_check(report: &mut Report, att: &proto::Attestation, ak: &AkPublic, opts: &Options) {
    const NAME: &str = "ak-certificate";
    if att.ak_cert.is_empty() {
        report.skip(
            NAME,
            "the attestation carries no AK certificate: unless --ak pins it, nothing shows the AK belongs to a (v)TPM, and anyone could have made these quotes",
        );
        return;
    }
    let outcome = verify_ak_certificate(&att.ak_cert, &att.intermediate_certs, opts.roots, opts.at).and_then(|cert_key| {
        if &cert_key != ak {
            return Err(format!("the AK certificate is for another key ({}) than the attestation's AK ({})", cert_key.describe(), ak.describe()));
        }
        Ok("the AK certificate chains to a pinned Google vTPM root and certifies the AK".to_string())
    });
    if outcome.is_ok() {
        certificate_claims(report, &att.ak_cert);
    }
    report.check(NAME, outcome);
}

/// Verifies an AK (or EK) certificate (DER) through `intermediates` and the pinned
/// [`crate::roots::GCE_VTPM_INTERMEDIATES`] to one of `roots` at `at`, accepting any extended key
/// usage (as go-tpm-tools' `VerifyAKCert`); returns the certified key.
pub fn verify_ak_certificate(cert: &[u8], intermediates: &[Vec<u8>], roots: &[&[u8]], at: u64) -> Result<AkPublic, String> {
    let leaf = CertificateDer::from(cert);
    let ee = webpki::EndEntityCert::try_from(&leaf).map_err(|e| format!("the certificate does not parse: {e:?}"))?;
    let anchors = roots
        .iter()
        .map(|r| webpki::anchor_from_trusted_cert(&CertificateDer::from(*r)).map(|a| a.to_owned()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("a pinned root is unusable: {e:?}"))?;
    let intermediates: Vec<CertificateDer> = intermediates
        .iter()
        .map(|c| CertificateDer::from(c.as_slice()))
        .chain(crate::roots::GCE_VTPM_INTERMEDIATES.iter().map(|c| CertificateDer::from(*c)))
        .collect();
    let time = UnixTime::since_unix_epoch(std::time::Duration::from_secs(at));
    ee.verify_for_usage(CERT_ALGS, &anchors, &intermediates, time, AnyEku, None, None)
        .map_err(|e| format!("the certificate does not chain to a pinned root: {}", describe_webpki(&e, at)))?;
    AkPublic::from_certificate(cert)
}

/// The AK certificate's subject and, on GCE, the instance it was issued to (extension
/// 1.3.6.1.4.1.11129.2.1.21, go-tpm-tools' `cloudComputeInstanceIdentifierOID`; claimed raw).
fn certificate_claims(report: &mut Report, der: &[u8]) {
    use x509_cert::der::Decode;
    let Ok(cert) = x509_cert::Certificate::from_der(der) else { return };
    let tbs = cert.tbs_certificate();
    report.claim("ak_cert_issuer", tbs.issuer().to_string());
    report.claim("ak_cert_serial", cvmkit_measure::hex(tbs.serial_number().as_bytes()));
    for ext in tbs.extensions().into_iter().flatten() {
        if ext.extn_id.to_string() == "1.3.6.1.4.1.11129.2.1.21" {
            report.claim_hex("gce_instance_info_der", ext.extn_value.as_bytes());
        }
    }
}

/// The quoted PCRs as registers `PCR<n>` per bank, with the event log's events where it
/// replays to them; records `event-log`.
fn registers(report: &mut Report, quotes: &[Quote], event_log: &[u8]) -> Measurements {
    let mut doc = Measurements::new(Platform::Tpm);
    let log = if event_log.is_empty() {
        None
    } else {
        match cvmkit_tcg_log::document("event_log", event_log, Some(cvmkit_tcg_log::LogKind::Tpm)) {
            Ok((d, _)) => {
                for n in d.notes.iter().filter(|n| n.starts_with("warning")) {
                    report.notes.push(format!("event log: {n}"));
                }
                Some(Ok(d))
            }
            Err(e) => Some(Err(e.to_string())),
        }
    };
    let mut compared = Vec::new();
    let mut not_covered = Vec::new();
    let mut differ = Vec::new();
    for q in quotes {
        let Some(bank) = Bank::from_tpm_alg_id(q.bank) else { continue };
        let log_bank = match &log {
            Some(Ok(l)) if l.registers.iter().any(|r| r.bank == bank) => Some(l),
            _ => None,
        };
        if log_bank.is_some() {
            compared.push(bank.name());
        } else {
            not_covered.push(bank.name());
        }
        for (n, value) in &q.pcrs {
            let name = format!("PCR{n}");
            let Ok(mut reg) = Register::with_value(&name, bank, value) else {
                report.notes.push(format!("{bank} {name} is {} bytes, not a {bank} digest: not listed", value.len()));
                continue;
            };
            if let Some(replayed) = log_bank.and_then(|l| l.register(&name, bank)) {
                if replayed.value.as_bytes() == value.as_slice() {
                    reg.events = replayed.events.clone();
                } else {
                    differ.push(format!(
                        "{bank} {name}: quoted {}, the log replays to {}",
                        cvmkit_measure::hex(value),
                        replayed.value.to_hex()
                    ));
                }
            }
            doc.registers.push(reg);
        }
        // PCRs the log extends that the quote does not cover cannot be checked.
        if let Some(l) = log_bank {
            for r in l.registers.iter().filter(|r| r.bank == bank) {
                let n = r.name.strip_prefix("PCR").and_then(|n| n.parse::<u32>().ok());
                if n.is_some_and(|n| !q.pcrs.contains_key(&n)) {
                    report.notes.push(format!("event log: {bank} {} is extended by the log but not quoted", r.name));
                }
            }
        }
    }
    const NAME: &str = "event-log";
    match &log {
        None => report.skip(NAME, "the attestation carries no event log: PCRs are compared by value only"),
        Some(Err(e)) => report.fail(NAME, format!("the event log cannot be read: {e}")),
        Some(Ok(_)) if !differ.is_empty() => report.fail(NAME, format!("the event log does not replay to the quoted PCRs ({} differ); first: {}", differ.len(), differ[0])),
        Some(Ok(_)) if compared.is_empty() => {
            report.fail(NAME, format!("the event log has none of the quoted banks ({})", not_covered.join(", ")))
        }
        Some(Ok(_)) => {
            let missing = if not_covered.is_empty() { String::new() } else { format!(" ({} not in the log)", not_covered.join(", ")) };
            report.pass(NAME, format!("the event log replays to every PCR it extends in the {} quotes{missing}", compared.join(", ")))
        }
    }
    doc
}
