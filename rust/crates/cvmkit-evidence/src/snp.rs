//! AMD SEV-SNP attestation reports (versions 2, 3 and 5), verified offline.
//!
//! The chain of trust, checked step by step so a failure names its step:
//! AMD Root Key (ARK, pinned in [`crate::roots`]) → AMD SEV Key (ASK; ASVK for VLEKs) →
//! the chip's VCEK (or the cloud's VLEK) → the report's ECDSA P-384 signature over its first
//! 0x2A0 bytes, exactly as received. The VCEK's X.509 extensions name the TCB it was derived
//! for and the chip it belongs to; both must equal the report's `REPORTED_TCB` and `CHIP_ID`.
//!
//! # Input
//!
//! [`verify`] and [`parse`] take, as one byte string:
//! * the 1184-byte (0x4A0) `ATTESTATION_REPORT` as the firmware returns it (`/dev/sev-guest`,
//!   `snpguest report`, go-sev-guest's raw report, the report inside a dstack or Azure
//!   envelope once taken out);
//! * or that report directly followed by the certificate table of an extended report
//!   (`SNP_GET_EXT_REPORT`: entries of a 16-byte GUID in RFC 4122 byte order, a u32 offset from
//!   the start of the table and a u32 length, ended by an all-zero entry; the certificates
//!   follow). The two buffers the kernel returns, concatenated;
//! * or either of these written as hexadecimal text (whitespace ignored), as virtee/sev keeps
//!   its test reports.
//!
//! Certificates may also be given separately ([`Options::certs`], the CLI's `--cert`). Every
//! certificate is recognised by its subject CN — `SEV-VCEK`, `SEV-VLEK`, `SEV-<gen>` (ASK),
//! `SEV-VLEK-<gen>` (ASVK), `ARK-<gen>` — never by where it came from or the table's GUID. An
//! ARK that arrives this way is never trusted: only the pinned ARKs are roots, and a given ARK
//! that differs from them is ignored (with a note). The ASKs and ASVKs of Milan, Genoa and
//! Turin are bundled too, so a report plus its VCEK is enough; they are intermediates only, and
//! each is verified against the pinned ARK like a given one.
//!
//! # Policy defaults
//!
//! * `DEBUG` in the guest policy fails (the hypervisor may read and change the guest's memory)
//!   unless [`Options::allow_debug`].
//! * `MIGRATE_MA` (a migration agent may be bound to the guest and move its memory to another
//!   platform) fails unless [`Options::allow_migration_agent`]: the migration agent is a second
//!   guest that sees this guest's memory, and whether it is trustworthy is not in this report.
//! * SMT, VMPL, single-socket, CXL, ciphertext hiding, RAPL and the platform info are shown as
//!   claims and not judged: they are the platform's configuration, a matter for the caller.
//! * The report is checked to come from the TCB its VCEK certifies; whether that TCB is recent
//!   enough is not judged (it needs AMD's current TCB values, not shipped here).

use cvmkit_measure::{Bank, Digest, HashAlg, Measurements, Platform, Register};
use p384::ecdsa::signature::Verifier;
use rsa::pkcs1::DecodeRsaPublicKey;
use sha2::{Digest as _, Sha384};
use x509_cert::der::Decode;

use crate::tdx::rfc3339;
use crate::{expect, Error, Report};

/// Size of an `ATTESTATION_REPORT`.
pub const REPORT_LEN: usize = 0x4A0;
/// The signed part: bytes 0 to 0x29F.
pub const SIGNED_LEN: usize = 0x2A0;
/// `SIGNATURE_ALGO` 1: ECDSA P-384 with SHA-384.
const ECDSA_P384_SHA384: u32 = 1;

/// Certificate table GUIDs (RFC 4122 byte order, as the GHCB spec and the sev crate use).
pub const GUID_VCEK: [u8; 16] = guid("63da758d-e664-4564-adc5-f4b93be8accd");
pub const GUID_VLEK: [u8; 16] = guid("a8074bc2-a25a-483e-aae6-39c045a0b8a1");
pub const GUID_ASK: [u8; 16] = guid("4ab7b379-bbac-4fe4-a02f-05aef327c782");
pub const GUID_ARK: [u8; 16] = guid("c0b406a4-a803-4952-9743-3fb6014cd0ae");
pub const GUID_CRL: [u8; 16] = guid("92f81bc3-5811-4d3d-97ff-d19f88dc67ea");

const fn guid(s: &str) -> [u8; 16] {
    let b = s.as_bytes();
    let mut out = [0u8; 16];
    let (mut i, mut o) = (0, 0);
    while o < 16 {
        if b[i] == b'-' {
            i += 1;
            continue;
        }
        out[o] = (hexval(b[i]) << 4) | hexval(b[i + 1]);
        i += 2;
        o += 1;
    }
    out
}

const fn hexval(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        _ => panic!("not a lower-case hex digit"),
    }
}

/// What to check a report against.
#[derive(Debug, Clone)]
pub struct Options<'a> {
    /// Certificates given besides the evidence: (file name for messages, PEM or DER contents;
    /// a PEM file may hold several).
    pub certs: &'a [(String, Vec<u8>)],
    /// Expected report_data (at most 64 bytes; shorter is zero-padded).
    pub report_data: Option<&'a [u8]>,
    /// Accept a guest whose policy allows debugging.
    pub allow_debug: bool,
    /// Accept a guest whose policy allows a migration agent.
    pub allow_migration_agent: bool,
    /// Refuse a host with SMT enabled.
    pub deny_smt: bool,
    /// Unix time at which the certificates must be valid.
    pub at: u64,
    /// A prediction to compare `LAUNCH_DIGEST` with.
    pub expect: Option<&'a Measurements>,
    /// The trusted ARKs (DER); [`crate::roots::AMD_ARKS`] unless testing.
    pub roots: &'a [&'a [u8]],
    /// Bundled intermediates (DER), verified like given ones; [`crate::roots::AMD_SEV_KEYS`]
    /// unless testing.
    pub intermediates: &'a [&'a [u8]],
}

impl Options<'_> {
    pub fn new(at: u64) -> Options<'static> {
        Options {
            certs: &[],
            report_data: None,
            allow_debug: false,
            allow_migration_agent: false,
            deny_smt: false,
            at,
            expect: None,
            roots: crate::roots::AMD_ARKS,
            intermediates: crate::roots::AMD_SEV_KEYS,
        }
    }
}

/// A processor generation: its ARK, and its `TCB_VERSION` layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Generation {
    Milan,
    Genoa,
    Turin,
}

impl Generation {
    pub fn name(self) -> &'static str {
        match self {
            Generation::Milan => "Milan",
            Generation::Genoa => "Genoa",
            Generation::Turin => "Turin",
        }
    }

    fn from_name(name: &str) -> Option<Generation> {
        match name {
            "Milan" => Some(Generation::Milan),
            "Genoa" => Some(Generation::Genoa),
            "Turin" => Some(Generation::Turin),
            _ => None,
        }
    }

    /// From CPUID family and model (the families and model ranges the sev crate 8.0.0 uses in
    /// `Generation::identify_cpu`; Siena and Bergamo are Genoa's family 19h models).
    pub fn from_cpuid(family: u8, model: u8) -> Option<Generation> {
        match (family, model) {
            (0x19, 0x00..=0x0F) => Some(Generation::Milan),
            (0x19, 0x10..=0x1F | 0xA0..=0xAF) => Some(Generation::Genoa),
            (0x1A, 0x00..=0x11) => Some(Generation::Turin),
            _ => None,
        }
    }
}

/// A `TCB_VERSION`, decoded by generation: Milan and Genoa put the boot loader in byte 0, the
/// TEE in 1, SNP in 6 and microcode in 7; Turin adds the FMC in byte 0 and moves the others to
/// 1, 2 and 3 (microcode stays in 7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcbVersion {
    pub fmc: Option<u8>,
    pub bootloader: u8,
    pub tee: u8,
    pub snp: u8,
    pub microcode: u8,
}

impl TcbVersion {
    pub fn decode(raw: u64, turin_layout: bool) -> TcbVersion {
        let b = raw.to_le_bytes();
        if turin_layout {
            TcbVersion { fmc: Some(b[0]), bootloader: b[1], tee: b[2], snp: b[3], microcode: b[7] }
        } else {
            TcbVersion { fmc: None, bootloader: b[0], tee: b[1], snp: b[6], microcode: b[7] }
        }
    }

    fn json(&self, raw: u64) -> serde_json::Value {
        let mut m = serde_json::Map::new();
        m.insert("raw".into(), format!("{raw:#018x}").into());
        if let Some(f) = self.fmc {
            m.insert("fmc".into(), f.into());
        }
        m.insert("bootloader".into(), self.bootloader.into());
        m.insert("tee".into(), self.tee.into());
        m.insert("snp".into(), self.snp.into());
        m.insert("microcode".into(), self.microcode.into());
        m.into()
    }
}

/// The `ATTESTATION_REPORT` structure (AMD SEV-SNP Firmware ABI specification, publication
/// 56860, table "ATTESTATION_REPORT Structure"), field names as there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttestationReport {
    /// The report's 1184 bytes as received: the signature is checked over these.
    pub raw: Vec<u8>,
    pub version: u32,
    pub guest_svn: u32,
    pub policy: u64,
    pub family_id: [u8; 16],
    pub image_id: [u8; 16],
    pub vmpl: u32,
    pub signature_algo: u32,
    pub current_tcb: u64,
    pub platform_info: u64,
    /// Bit 0 of the word at 0x48.
    pub author_key_en: bool,
    /// Bit 1 of the word at 0x48.
    pub mask_chip_key: bool,
    /// Bits 4:2 of the word at 0x48: 0 VCEK, 1 VLEK, 7 none.
    pub signing_key: u8,
    pub report_data: [u8; 64],
    pub measurement: [u8; 48],
    pub host_data: [u8; 32],
    pub id_key_digest: [u8; 48],
    pub author_key_digest: [u8; 48],
    pub report_id: [u8; 32],
    pub report_id_ma: [u8; 32],
    pub reported_tcb: u64,
    /// Version 3 and later.
    pub cpuid_fam_id: Option<u8>,
    pub cpuid_mod_id: Option<u8>,
    pub cpuid_step: Option<u8>,
    pub chip_id: [u8; 64],
    pub committed_tcb: u64,
    pub current_build: u8,
    pub current_minor: u8,
    pub current_major: u8,
    pub committed_build: u8,
    pub committed_minor: u8,
    pub committed_major: u8,
    pub launch_tcb: u64,
    /// Version 5 and later.
    pub launch_mit_vector: Option<u64>,
    pub current_mit_vector: Option<u64>,
    /// R and S, 72 bytes each, little-endian (P-384 uses the low 48).
    pub signature_r: [u8; 72],
    pub signature_s: [u8; 72],
    /// Certificates from an extended report's table: (GUID, contents).
    pub cert_table: CertTable,
}

/// An extended report's certificates: (GUID, contents), in table order.
pub type CertTable = Vec<([u8; 16], Vec<u8>)>;

/// The `SIGNING_KEY` values.
pub const SIGNING_KEY_VCEK: u8 = 0;
pub const SIGNING_KEY_VLEK: u8 = 1;
pub const SIGNING_KEY_NONE: u8 = 7;

impl AttestationReport {
    /// The generation the report itself says it comes from: CPUID family and model (version 3
    /// and later); for version 2, a chip ID with only its first 8 bytes set is Turin's, any
    /// other non-zero one Milan's or Genoa's (same TCB layout, `None` here); a masked (zero)
    /// chip ID says nothing.
    pub fn generation(&self) -> Option<Generation> {
        match (self.cpuid_fam_id, self.cpuid_mod_id) {
            (Some(f), Some(m)) if f != 0 => Generation::from_cpuid(f, m),
            _ if self.chip_id_is_turin_like() => Some(Generation::Turin),
            _ => None,
        }
    }

    fn chip_id_is_turin_like(&self) -> bool {
        self.chip_id[..8].iter().any(|&b| b != 0) && self.chip_id[8..].iter().all(|&b| b == 0)
    }

    fn tcb(&self, raw: u64, turin: bool) -> TcbVersion {
        TcbVersion::decode(raw, turin)
    }

    pub fn debug_allowed(&self) -> bool {
        self.policy & (1 << 19) != 0
    }

    pub fn migrate_ma_allowed(&self) -> bool {
        self.policy & (1 << 18) != 0
    }

    /// POLICY bit 16: the guest may run on a host with SMT enabled.
    pub fn smt_allowed(&self) -> bool {
        self.policy & (1 << 16) != 0
    }

    /// PLATFORM_INFO bit 0: SMT is enabled on the host.
    pub fn platform_smt_enabled(&self) -> bool {
        self.platform_info & 1 != 0
    }
}

/// Parses a report (or an extended report, or either as hex text). `Err` only when no
/// 1184-byte report can be read.
pub fn parse(raw: &[u8]) -> Result<AttestationReport, Error> {
    let decoded;
    let bytes = if looks_like_hex(raw) {
        decoded = unhex_text(raw).ok_or_else(|| Error::malformed("SEV-SNP report", "hex text with an odd number of digits"))?;
        &decoded[..]
    } else {
        raw
    };
    if bytes.len() < REPORT_LEN {
        return Err(Error::malformed("SEV-SNP report", format!("{} bytes, an attestation report is {REPORT_LEN}", bytes.len())));
    }
    let (r, rest) = bytes.split_at(REPORT_LEN);
    let u32_at = |o: usize| u32::from_le_bytes(r[o..o + 4].try_into().expect("4 bytes"));
    let u64_at = |o: usize| u64::from_le_bytes(r[o..o + 8].try_into().expect("8 bytes"));
    let arr = |o: usize| -> &[u8] { &r[o..] };
    let version = u32_at(0);
    if version < 2 {
        return Err(Error::malformed("SEV-SNP report", format!("version {version} (reports are version 2 or later)")));
    }
    let flags = u32_at(0x48);
    let cert_table = if rest.is_empty() { Vec::new() } else { parse_cert_table(rest)? };
    Ok(AttestationReport {
        raw: r.to_vec(),
        version,
        guest_svn: u32_at(0x04),
        policy: u64_at(0x08),
        family_id: take(arr(0x10)),
        image_id: take(arr(0x20)),
        vmpl: u32_at(0x30),
        signature_algo: u32_at(0x34),
        current_tcb: u64_at(0x38),
        platform_info: u64_at(0x40),
        author_key_en: flags & 1 != 0,
        mask_chip_key: flags & 2 != 0,
        signing_key: ((flags >> 2) & 7) as u8,
        report_data: take(arr(0x50)),
        measurement: take(arr(0x90)),
        host_data: take(arr(0xC0)),
        id_key_digest: take(arr(0xE0)),
        author_key_digest: take(arr(0x110)),
        report_id: take(arr(0x140)),
        report_id_ma: take(arr(0x160)),
        reported_tcb: u64_at(0x180),
        cpuid_fam_id: (version >= 3).then_some(r[0x188]),
        cpuid_mod_id: (version >= 3).then_some(r[0x189]),
        cpuid_step: (version >= 3).then_some(r[0x18A]),
        chip_id: take(arr(0x1A0)),
        committed_tcb: u64_at(0x1E0),
        current_build: r[0x1E8],
        current_minor: r[0x1E9],
        current_major: r[0x1EA],
        committed_build: r[0x1EC],
        committed_minor: r[0x1ED],
        committed_major: r[0x1EE],
        launch_tcb: u64_at(0x1F0),
        launch_mit_vector: (version >= 5).then(|| u64_at(0x1F8)),
        current_mit_vector: (version >= 5).then(|| u64_at(0x200)),
        signature_r: take(arr(0x2A0)),
        signature_s: take(arr(0x2E8)),
        cert_table,
    })
}

fn take<const N: usize>(s: &[u8]) -> [u8; N] {
    s[..N].try_into().expect("the report is long enough")
}

fn looks_like_hex(raw: &[u8]) -> bool {
    let digits = raw.iter().filter(|b| !b.is_ascii_whitespace()).count();
    digits >= 2 * REPORT_LEN && raw.iter().all(|b| b.is_ascii_hexdigit() || b.is_ascii_whitespace())
}

fn unhex_text(raw: &[u8]) -> Option<Vec<u8>> {
    let digits: Vec<u8> = raw.iter().copied().filter(|b| !b.is_ascii_whitespace()).collect();
    if digits.len() % 2 != 0 {
        return None;
    }
    let val = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    digits.chunks(2).map(|p| Some((val(p[0])? << 4) | val(p[1])?)).collect()
}

/// Parses an extended report's certificate table: {GUID, offset, length} entries ended by an
/// all-zero entry, offsets from the table's start. Trailing bytes after the last certificate
/// (the kernel hands a page-sized buffer) are allowed.
pub fn parse_cert_table(table: &[u8]) -> Result<CertTable, Error> {
    const ENTRY: usize = 24;
    let bad = |reason: String| Error::malformed("SEV-SNP certificate table", reason);
    let mut out = Vec::new();
    for i in 0.. {
        let at = i * ENTRY;
        let Some(entry) = table.get(at..at + ENTRY) else {
            return Err(bad(format!("entry {i} at offset {at} runs past the end ({} bytes) before the all-zero terminator", table.len())));
        };
        if entry.iter().all(|&b| b == 0) {
            break;
        }
        let guid: [u8; 16] = take(entry);
        let offset = u32::from_le_bytes(entry[16..20].try_into().expect("4 bytes")) as usize;
        let length = u32::from_le_bytes(entry[20..24].try_into().expect("4 bytes")) as usize;
        let data = offset
            .checked_add(length)
            .and_then(|end| table.get(offset..end))
            .ok_or_else(|| bad(format!("entry {i} ({}) points at bytes {offset}+{length}, past the table's {} bytes", guid_name(&guid), table.len())))?;
        out.push((guid, data.to_vec()));
    }
    Ok(out)
}

/// A certificate table GUID's name.
pub fn guid_name(guid: &[u8; 16]) -> String {
    match *guid {
        GUID_VCEK => "VCEK".into(),
        GUID_VLEK => "VLEK".into(),
        GUID_ASK => "ASK".into(),
        GUID_ARK => "ARK".into(),
        GUID_CRL => "CRL".into(),
        g => {
            let h = cvmkit_measure::hex(&g);
            format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
        }
    }
}

/// Verifies a report. `Err` only for input that cannot be parsed (the report, or a `--cert`
/// that is neither PEM nor DER certificates); every check is in the report.
pub fn verify(raw: &[u8], opts: &Options) -> Result<Report, Error> {
    let ar = parse(raw)?;
    let mut report = Report::new("snp");
    let mut pool = Vec::new();
    for (name, bytes) in opts.certs {
        for der in split_certs(bytes).map_err(|e| Error::Input(format!("{name}: {e}")))? {
            let cert = Cert::parse(name.clone(), der).map_err(|e| Error::Input(format!("{name}: not an X.509 certificate: {e}")))?;
            pool.push(cert);
        }
    }
    for (guid, der) in &ar.cert_table {
        if *guid == GUID_CRL {
            report.notes.push("the certificate table's CRL entry is not evaluated".into());
            continue;
        }
        match Cert::parse(format!("certificate table {}", guid_name(guid)), der.clone()) {
            Ok(c) => pool.push(c),
            Err(e) => report.notes.push(format!("certificate table entry {} is not an X.509 certificate ({e}); ignored", guid_name(guid))),
        }
    }
    claims(&mut report, &ar, opts.at);
    version_check(&mut report, &ar);
    let leaf = signature_check(&mut report, &ar, &pool);
    let generation = match leaf {
        Some(l) => chain_check(&mut report, l, &pool, opts),
        None => {
            report.skip("cert-chain", "no endorsement key certificate to check");
            None
        }
    };
    tcb_checks(&mut report, &ar, leaf, generation);
    policy_check(&mut report, &ar, opts.allow_debug, opts.allow_migration_agent);
    smt_check(&mut report, &ar, opts.deny_smt);
    expect::report_data_check(&mut report, &ar.report_data, opts.report_data);
    report.set_registers(expect::compare(&registers(&ar), opts.expect));
    Ok(report)
}

/// The report's register: `LAUNCH_DIGEST`, SHA-384, = `MEASUREMENT`.
pub fn registers(ar: &AttestationReport) -> Measurements {
    let mut doc = Measurements::new(Platform::Snp);
    let mut reg = Register::new("LAUNCH_DIGEST", Bank::Sha384);
    reg.value = Digest::new(HashAlg::SHA384, ar.measurement.to_vec());
    doc.registers.push(reg);
    doc
}

fn claims(report: &mut Report, ar: &AttestationReport, at: u64) {
    let turin = ar.generation() == Some(Generation::Turin);
    report.claim("evaluated_at", rfc3339(at));
    report.claim("version", ar.version);
    report.claim("guest_svn", ar.guest_svn);
    report.claim("policy", format!("{:#x}", ar.policy));
    report.claim("policy_abi_minor", ar.policy & 0xFF);
    report.claim("policy_abi_major", (ar.policy >> 8) & 0xFF);
    let bit = |n: u32| ar.policy & (1 << n) != 0;
    report.claim("policy_smt_allowed", bit(16));
    report.claim("policy_migrate_ma", bit(18));
    report.claim("policy_debug", bit(19));
    report.claim("policy_single_socket", bit(20));
    report.claim("policy_cxl_allowed", bit(21));
    report.claim("policy_mem_aes_256_xts", bit(22));
    report.claim("policy_rapl_dis", bit(23));
    report.claim("policy_ciphertext_hiding", bit(24));
    report.claim("policy_page_swap_disable", bit(25));
    report.claim_hex("family_id", &ar.family_id);
    report.claim_hex("image_id", &ar.image_id);
    report.claim("vmpl", ar.vmpl);
    report.claim("signature_algo", ar.signature_algo);
    report.claim("current_tcb", ar.tcb(ar.current_tcb, turin).json(ar.current_tcb));
    report.claim("platform_info", format!("{:#x}", ar.platform_info));
    let pbit = |n: u32| ar.platform_info & (1 << n) != 0;
    report.claim("platform_smt_enabled", pbit(0));
    report.claim("platform_tsme_enabled", pbit(1));
    report.claim("platform_ecc_enabled", pbit(2));
    report.claim("platform_rapl_disabled", pbit(3));
    report.claim("platform_ciphertext_hiding_enabled", pbit(4));
    report.claim("platform_alias_check_complete", pbit(5));
    report.claim("author_key_en", ar.author_key_en);
    report.claim("mask_chip_key", ar.mask_chip_key);
    report.claim(
        "signing_key",
        match ar.signing_key {
            SIGNING_KEY_VCEK => "VCEK".to_string(),
            SIGNING_KEY_VLEK => "VLEK".to_string(),
            SIGNING_KEY_NONE => "none".to_string(),
            n => format!("reserved ({n})"),
        },
    );
    report.claim_hex("report_data", &ar.report_data);
    report.claim_hex("measurement", &ar.measurement);
    report.claim_hex("host_data", &ar.host_data);
    report.claim_hex("id_key_digest", &ar.id_key_digest);
    report.claim_hex("author_key_digest", &ar.author_key_digest);
    report.claim_hex("report_id", &ar.report_id);
    report.claim_hex("report_id_ma", &ar.report_id_ma);
    report.claim("reported_tcb", ar.tcb(ar.reported_tcb, turin).json(ar.reported_tcb));
    if let (Some(f), Some(m), Some(s)) = (ar.cpuid_fam_id, ar.cpuid_mod_id, ar.cpuid_step) {
        report.claim("cpuid_fam_id", format!("{f:#04x}"));
        report.claim("cpuid_mod_id", format!("{m:#04x}"));
        report.claim("cpuid_step", format!("{s:#04x}"));
    }
    if let Some(g) = ar.generation() {
        report.claim("generation", g.name());
    }
    report.claim_hex("chip_id", &ar.chip_id);
    report.claim("committed_tcb", ar.tcb(ar.committed_tcb, turin).json(ar.committed_tcb));
    report.claim("current_version", format!("{}.{}.{}", ar.current_major, ar.current_minor, ar.current_build));
    report.claim("committed_version", format!("{}.{}.{}", ar.committed_major, ar.committed_minor, ar.committed_build));
    report.claim("launch_tcb", ar.tcb(ar.launch_tcb, turin).json(ar.launch_tcb));
    if let (Some(l), Some(c)) = (ar.launch_mit_vector, ar.current_mit_vector) {
        report.claim("launch_mit_vector", format!("{l:#x}"));
        report.claim("current_mit_vector", format!("{c:#x}"));
    }
}

fn version_check(report: &mut Report, ar: &AttestationReport) {
    let outcome = if !(2..=5).contains(&ar.version) {
        Err(format!("report version {} (versions 2 to 5 are known)", ar.version))
    } else if ar.signature_algo != ECDSA_P384_SHA384 {
        Err(format!("signature algorithm {} (only 1, ECDSA P-384 with SHA-384, is defined)", ar.signature_algo))
    } else {
        Ok(format!("version {}, ECDSA P-384 with SHA-384", ar.version))
    };
    report.check("report-version", outcome);
}

/// Finds the endorsement key named by `SIGNING_KEY` and checks the report's signature with it.
fn signature_check<'c>(report: &mut Report, ar: &AttestationReport, pool: &'c [Cert]) -> Option<&'c Cert> {
    const NAME: &str = "report-signature";
    let (role, hint) = match ar.signing_key {
        SIGNING_KEY_VCEK => (Role::Vcek, "the chip's VCEK (from AMD KDS, --cert FILE)"),
        SIGNING_KEY_VLEK => (Role::Vlek, "the cloud's VLEK (--cert FILE)"),
        SIGNING_KEY_NONE => {
            report.fail(NAME, "the report is not signed (SIGNING_KEY says none)");
            return None;
        }
        n => {
            report.fail(NAME, format!("SIGNING_KEY {n} is reserved"));
            return None;
        }
    };
    let candidates: Vec<&Cert> = pool.iter().filter(|c| c.role == role).collect();
    if candidates.is_empty() {
        report.fail(NAME, format!("the report is signed by a {role}, and no {role} certificate was given: {hint}", role = role.word()));
        return None;
    }
    let mut last = String::new();
    for c in &candidates {
        match verify_report_signature(ar, c) {
            Ok(()) => {
                report.pass(NAME, format!("the {} ({}) signs the report's bytes 0x0-0x29f", role.word(), c.name));
                return Some(c);
            }
            Err(e) => last = format!("the report's signature does not verify with the {} from {}: {e}", role.word(), c.name),
        }
    }
    report.fail(NAME, last);
    // The chain of the (only or first) given key is still checked: its result is reported.
    candidates.first().copied()
}

fn verify_report_signature(ar: &AttestationReport, cert: &Cert) -> Result<(), String> {
    if cert.spki_alg != OID_EC_PUBLIC_KEY {
        return Err("its key is not an elliptic-curve key".into());
    }
    let key = p384::ecdsa::VerifyingKey::from_sec1_bytes(&cert.spki_key).map_err(|_| "its key is not a P-384 key".to_string())?;
    if ar.signature_r[48..].iter().chain(&ar.signature_s[48..]).any(|&b| b != 0) {
        return Err("the signature's R or S has non-zero bytes beyond 48".into());
    }
    let mut rs = [0u8; 96];
    for i in 0..48 {
        rs[i] = ar.signature_r[47 - i];
        rs[48 + i] = ar.signature_s[47 - i];
    }
    let sig = p384::ecdsa::Signature::from_slice(&rs).map_err(|_| "malformed signature (R or S out of range)".to_string())?;
    key.verify(&ar.raw[..SIGNED_LEN], &sig).map_err(|_| "signature mismatch".to_string())
}

/// Verifies leaf → ASK/ASVK → pinned ARK; returns the generation of the ARK reached.
fn chain_check(report: &mut Report, leaf: &Cert, pool: &[Cert], opts: &Options) -> Option<Generation> {
    const NAME: &str = "cert-chain";
    let mut pinned_ints = Vec::new();
    for (i, der) in opts.intermediates.iter().enumerate() {
        match Cert::parse(format!("bundled intermediate {i}"), der.to_vec()) {
            Ok(c) => pinned_ints.push(c),
            Err(e) => report.notes.push(format!("bundled intermediate {i} is unusable: {e}")),
        }
    }
    let mut roots = Vec::new();
    for (i, der) in opts.roots.iter().enumerate() {
        match Cert::parse(format!("pinned ARK {i}"), der.to_vec()) {
            Ok(c) => roots.push(c),
            Err(e) => report.notes.push(format!("pinned root {i} is unusable: {e}")),
        }
    }
    for c in pool.iter().filter(|c| c.role == Role::Ark) {
        if !opts.roots.contains(&c.der.as_slice()) {
            report.notes.push(format!("{} holds an ARK ({}) that is not one of the pinned AMD roots: ignored", c.name, c.cn));
        }
    }
    let issuer_role = if leaf.role == Role::Vlek { Role::Asvk } else { Role::Ask };
    let candidates: Vec<&Cert> = pool.iter().chain(&pinned_ints).filter(|c| c.role == issuer_role && c.subject == leaf.issuer).collect();
    if candidates.is_empty() {
        let seen: Vec<String> = pool.iter().filter(|c| c.role == issuer_role).map(|c| format!("{} ({})", c.cn, c.name)).collect();
        report.fail(
            NAME,
            format!(
                "no {} named {:?} (the {}'s issuer) was given or is bundled{}",
                issuer_role.word(),
                leaf.issuer_cn,
                leaf.role.word(),
                if seen.is_empty() { String::new() } else { format!("; given: {}", seen.join(", ")) }
            ),
        );
        return None;
    }
    let mut errors = Vec::new();
    for ask in candidates {
        if let Err(e) = verify_link(leaf, ask, opts.at) {
            errors.push(format!("{} ({}) is not validly signed by {} ({}): {e}", leaf.role.word(), leaf.name, ask.cn, ask.name));
            continue;
        }
        let arks: Vec<&Cert> = roots.iter().filter(|r| r.subject == ask.issuer).collect();
        if arks.is_empty() {
            errors.push(format!("{} ({}) is issued by {:?}, which is not a pinned AMD root", ask.cn, ask.name, ask.issuer_cn));
            continue;
        }
        for ark in arks {
            let link = verify_link(ask, ark, opts.at).map_err(|e| format!("{} ({}) is not validly signed by the pinned {}: {e}", ask.cn, ask.name, ark.cn));
            let root = verify_link(ark, ark, opts.at).map_err(|e| format!("the pinned {} does not verify: {e}", ark.cn));
            match link.and(root) {
                Ok(()) => {
                    let generation = ark.cn.strip_prefix("ARK-").and_then(Generation::from_name);
                    report.pass(
                        NAME,
                        format!("{} ← {} ← pinned {}, RSA-PSS SHA-384, valid at {}", leaf.role.word(), ask.cn, ark.cn, rfc3339(opts.at)),
                    );
                    if let Some(g) = generation {
                        report.claim("chain_generation", g.name());
                    }
                    return generation;
                }
                Err(e) => errors.push(e),
            }
        }
    }
    report.fail(NAME, errors.join("; "));
    None
}

/// `child` is signed by `issuer` (RSA-PSS, SHA-384, MGF1-SHA-384, 48-byte salt: what AMD's
/// KDS certificates use), names it as issuer, and both are valid at `at`.
fn verify_link(child: &Cert, issuer: &Cert, at: u64) -> Result<(), String> {
    for c in [child, issuer] {
        if at < c.not_before {
            return Err(format!("{} is not valid before {} (evaluated at {}; see --at)", c.cn, rfc3339(c.not_before), rfc3339(at)));
        }
        if at > c.not_after {
            return Err(format!("{} expired at {} (evaluated at {}; see --at)", c.cn, rfc3339(c.not_after), rfc3339(at)));
        }
    }
    if child.issuer != issuer.subject {
        return Err(format!("its issuer is {:?}", child.issuer_cn));
    }
    if child.sig_alg_oid != OID_RSASSA_PSS {
        return Err("not an RSA-PSS signature".into());
    }
    if child.tbs_sig_alg != child.sig_alg {
        return Err("the signed and the outer signature algorithms differ".into());
    }
    if issuer.spki_alg != OID_RSA_ENCRYPTION {
        return Err(format!("{}'s key is not an RSA key", issuer.cn));
    }
    let key = rsa::RsaPublicKey::from_pkcs1_der(&issuer.spki_key).map_err(|e| format!("{}'s RSA key: {e}", issuer.cn))?;
    let hashed = Sha384::digest(&child.tbs);
    key.verify(rsa::Pss::new_with_salt::<Sha384>(48), &hashed, &child.signature).map_err(|_| "signature mismatch".to_string())
}

/// `tcb`: the report's `REPORTED_TCB` is the TCB the VCEK/VLEK was issued for; `chip-id`: the
/// VCEK is this chip's; `product`: the report's CPUID names the chain's generation.
fn tcb_checks(report: &mut Report, ar: &AttestationReport, leaf: Option<&Cert>, chain: Option<Generation>) {
    let Some(leaf) = leaf else {
        for name in ["product", "tcb", "chip-id"] {
            report.skip(name, "no endorsement key certificate");
        }
        return;
    };
    let reported_gen = ar.generation();
    match (reported_gen, chain) {
        (_, None) => report.skip("product", "the certificate chain did not verify to a pinned root"),
        (Some(r), Some(c)) if r != c => report.fail(
            "product",
            format!("the report says it comes from a {} processor, and it is certified by AMD's {} chain", r.name(), c.name()),
        ),
        (Some(r), Some(_)) => report.pass("product", format!("{} processor, certified by AMD's {} chain", r.name(), r.name())),
        (None, Some(c)) => {
            let why = match (ar.cpuid_fam_id, ar.cpuid_mod_id) {
                (Some(f), Some(m)) if f != 0 => format!("its CPUID family {f:#x} model {m:#x} is not a generation known here"),
                _ => format!("a version {} report does not name its processor", ar.version),
            };
            report.pass("product", format!("certified by AMD's {} chain ({why})", c.name()))
        }
    }
    let turin = reported_gen.or(chain) == Some(Generation::Turin);
    let tcb = ar.tcb(ar.reported_tcb, turin);
    let ext = |oid: &[u8]| leaf.extension(oid).and_then(der_small_uint);
    let mut fields = vec![
        ("blSPL", ext(OID_BL_SPL), Some(tcb.bootloader)),
        ("teeSPL", ext(OID_TEE_SPL), Some(tcb.tee)),
        ("snpSPL", ext(OID_SNP_SPL), Some(tcb.snp)),
        ("ucodeSPL", ext(OID_UCODE_SPL), Some(tcb.microcode)),
    ];
    if turin {
        fields.insert(0, ("fmcSPL", ext(OID_FMC_SPL), tcb.fmc));
    }
    let mut differ = Vec::new();
    for (name, cert, reported) in &fields {
        match cert {
            None => differ.push(format!("the {} has no readable {name} extension", leaf.role.word())),
            Some(v) if Some(*v) != *reported => {
                differ.push(format!("{name} {v} in the certificate, {} in the report", reported.map_or("none".into(), |r| r.to_string())))
            }
            Some(_) => {}
        }
    }
    let shown: Vec<String> = fields.iter().map(|(n, _, r)| format!("{n}={}", r.map_or("-".into(), |r| r.to_string()))).collect();
    if differ.is_empty() {
        report.pass("tcb", format!("the {} is issued for the report's REPORTED_TCB ({})", leaf.role.word(), shown.join(", ")));
    } else {
        report.fail("tcb", format!("the {} is not issued for the report's REPORTED_TCB: {}", leaf.role.word(), differ.join("; ")));
    }

    if leaf.role == Role::Vlek {
        report.skip("chip-id", "a VLEK is not bound to one chip");
    } else if ar.mask_chip_key || ar.chip_id.iter().all(|&b| b == 0) {
        report.skip("chip-id", "the report's CHIP_ID is masked (MASK_CHIP_KEY)");
    } else {
        let outcome = match leaf.extension(OID_HW_ID).map(hw_id) {
            None => Err("the VCEK has no hwID extension".to_string()),
            Some(id) if id.is_empty() || id.len() > 64 => Err(format!("the VCEK's hwID is {} bytes", id.len())),
            Some(id) if ar.chip_id[..id.len()] == id[..] && ar.chip_id[id.len()..].iter().all(|&b| b == 0) => {
                Ok("the VCEK's hwID equals the report's CHIP_ID".to_string())
            }
            Some(id) => Err(format!("the VCEK is for chip {}, the report's CHIP_ID is {}", cvmkit_measure::hex(&id), cvmkit_measure::hex(&ar.chip_id))),
        };
        report.check("chip-id", outcome);
    }
}

/// The guest policy: debug and migration agent (see the module's documentation).
/// `smt`: the host's SMT state (PLATFORM_INFO) against the guest policy, and against
/// `deny_smt` (sibling hyperthreads share caches with other tenants' code).
pub fn smt_check(report: &mut Report, ar: &AttestationReport, deny_smt: bool) {
    let on = ar.platform_smt_enabled();
    let outcome = if on && !ar.smt_allowed() {
        Err("SMT is enabled on the host although the guest policy forbids it: the firmware should have refused this launch".to_string())
    } else if on && deny_smt {
        Err("SMT is enabled on the host (--deny-smt)".to_string())
    } else if on {
        Ok("SMT is enabled on the host, which the policy allows (--deny-smt refuses it)".to_string())
    } else {
        Ok("SMT is disabled on the host".to_string())
    };
    report.check("smt", outcome);
}

pub fn policy_check(report: &mut Report, ar: &AttestationReport, allow_debug: bool, allow_migration_agent: bool) {
    let mut problems = Vec::new();
    let mut allowed = Vec::new();
    if ar.debug_allowed() {
        if allow_debug {
            allowed.push("debugging (allowed by --allow-debug)");
        } else {
            problems.push("the policy allows debugging: the hypervisor can read and change the guest's memory (--allow-debug accepts it)");
        }
    }
    if ar.migrate_ma_allowed() {
        if allow_migration_agent {
            allowed.push("a migration agent (allowed by --allow-migration-agent)");
        } else {
            problems.push("the policy allows a migration agent, which can export the guest's memory (--allow-migration-agent accepts it)");
        }
    }
    let outcome = if !problems.is_empty() {
        Err(problems.join("; "))
    } else if allowed.is_empty() {
        Ok(format!("policy {:#x}: no debugging, no migration agent", ar.policy))
    } else {
        Ok(format!("policy {:#x} allows {}", ar.policy, allowed.join(" and ")))
    };
    report.check("guest-policy", outcome);
}

// ---- certificates ----

const OID_RSA_ENCRYPTION: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x01];
const OID_RSASSA_PSS: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x0A];
const OID_EC_PUBLIC_KEY: &[u8] = &[0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x02, 0x01];
/// 1.3.6.1.4.1.3704.1.3.{1,2,3,8,9} and 1.3.6.1.4.1.3704.1.4 (AMD publication 57230, "Versioned
/// Chip Endorsement Key (VCEK) Certificate and KDS Interface Specification"; fmcSPL is Turin's).
const OID_BL_SPL: &[u8] = &[0x2B, 0x06, 0x01, 0x04, 0x01, 0x9C, 0x78, 0x01, 0x03, 0x01];
const OID_TEE_SPL: &[u8] = &[0x2B, 0x06, 0x01, 0x04, 0x01, 0x9C, 0x78, 0x01, 0x03, 0x02];
const OID_SNP_SPL: &[u8] = &[0x2B, 0x06, 0x01, 0x04, 0x01, 0x9C, 0x78, 0x01, 0x03, 0x03];
const OID_UCODE_SPL: &[u8] = &[0x2B, 0x06, 0x01, 0x04, 0x01, 0x9C, 0x78, 0x01, 0x03, 0x08];
const OID_FMC_SPL: &[u8] = &[0x2B, 0x06, 0x01, 0x04, 0x01, 0x9C, 0x78, 0x01, 0x03, 0x09];
const OID_HW_ID: &[u8] = &[0x2B, 0x06, 0x01, 0x04, 0x01, 0x9C, 0x78, 0x01, 0x04];

/// What a certificate is, by its subject CN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Ark,
    Ask,
    Asvk,
    Vcek,
    Vlek,
    Other,
}

impl Role {
    fn from_cn(cn: &str) -> Role {
        match cn {
            "SEV-VCEK" => Role::Vcek,
            "SEV-VLEK" => Role::Vlek,
            _ if cn.starts_with("ARK-") => Role::Ark,
            _ if cn.starts_with("SEV-VLEK-") => Role::Asvk,
            _ if cn.starts_with("SEV-") => Role::Ask,
            _ => Role::Other,
        }
    }

    fn word(self) -> &'static str {
        match self {
            Role::Ark => "ARK",
            Role::Ask => "ASK",
            Role::Asvk => "ASVK",
            Role::Vcek => "VCEK",
            Role::Vlek => "VLEK",
            Role::Other => "certificate",
        }
    }
}

/// A certificate with what the checks need, taken from its bytes as given.
struct Cert {
    name: String,
    der: Vec<u8>,
    cn: String,
    role: Role,
    /// DER of the subject and issuer names (compared byte for byte).
    subject: Vec<u8>,
    issuer: Vec<u8>,
    issuer_cn: String,
    not_before: u64,
    not_after: u64,
    /// The signed bytes, exactly as in the certificate.
    tbs: Vec<u8>,
    /// The outer signatureAlgorithm and the one inside the signed part, as DER.
    sig_alg: Vec<u8>,
    tbs_sig_alg: Vec<u8>,
    sig_alg_oid: Vec<u8>,
    signature: Vec<u8>,
    spki_alg: Vec<u8>,
    spki_key: Vec<u8>,
    /// (OID, extnValue contents).
    extensions: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Cert {
    fn parse(name: String, der: Vec<u8>) -> Result<Cert, String> {
        // x509-cert checks the whole structure; the raw pieces (the signed bytes above all) are
        // taken from the input itself, never re-encoded.
        let x = x509_cert::Certificate::from_der(&der).map_err(|e| e.to_string())?;
        let tbs_x = x.tbs_certificate();
        let not_before = tbs_x.validity().not_before.to_unix_duration().as_secs();
        let not_after = tbs_x.validity().not_after.to_unix_duration().as_secs();

        let (outer, _) = der_read(&der, 0x30).ok_or("not a DER SEQUENCE")?;
        let (tbs_full, rest) = der_full(outer, 0x30).ok_or("no tbsCertificate")?;
        let (sig_alg, rest) = der_full(rest, 0x30).ok_or("no signatureAlgorithm")?;
        let (sig_bits, _) = der_read(rest, 0x03).ok_or("no signature")?;
        let signature = sig_bits.split_first().filter(|(unused, _)| **unused == 0).ok_or("signature BIT STRING with unused bits")?.1.to_vec();
        let (sig_alg_body, _) = der_read(sig_alg, 0x30).ok_or("bad signatureAlgorithm")?;
        let (sig_alg_oid, _) = der_read(sig_alg_body, 0x06).ok_or("bad signatureAlgorithm OID")?;

        let (mut t, _) = der_read(tbs_full, 0x30).ok_or("bad tbsCertificate")?;
        if t.first() == Some(&0xA0) {
            t = der_full(t, 0xA0).ok_or("bad version")?.1;
        }
        let (_, t) = der_full(t, 0x02).ok_or("no serial number")?;
        let (tbs_sig_alg, t) = der_full(t, 0x30).ok_or("no signature algorithm")?;
        let (issuer, t) = der_full(t, 0x30).ok_or("no issuer")?;
        let (_, t) = der_full(t, 0x30).ok_or("no validity")?;
        let (subject, t) = der_full(t, 0x30).ok_or("no subject")?;
        let (spki, mut t) = der_read(t, 0x30).ok_or("no subjectPublicKeyInfo")?;
        let (spki_alg_seq, spki_rest) = der_read(spki, 0x30).ok_or("bad key algorithm")?;
        let (spki_alg, _) = der_read(spki_alg_seq, 0x06).ok_or("bad key algorithm OID")?;
        let (key_bits, _) = der_read(spki_rest, 0x03).ok_or("bad public key")?;
        let spki_key = key_bits.get(1..).ok_or("empty public key")?.to_vec();

        let mut extensions = Vec::new();
        while let Some(&tag) = t.first() {
            let (body, rest) = der_read(t, tag).ok_or("bad optional field")?;
            t = rest;
            if tag != 0xA3 {
                continue;
            }
            let (mut exts, _) = der_read(body, 0x30).ok_or("bad extensions")?;
            while !exts.is_empty() {
                let (ext, rest) = der_read(exts, 0x30).ok_or("bad extension")?;
                exts = rest;
                let (oid, mut e) = der_read(ext, 0x06).ok_or("bad extension OID")?;
                if e.first() == Some(&0x01) {
                    e = der_read(e, 0x01).ok_or("bad critical flag")?.1;
                }
                let (value, _) = der_read(e, 0x04).ok_or("bad extension value")?;
                extensions.push((oid.to_vec(), value.to_vec()));
            }
        }
        let cn = common_name(subject).unwrap_or_default();
        Ok(Cert {
            name,
            role: Role::from_cn(&cn),
            cn,
            issuer_cn: common_name(issuer).unwrap_or_default(),
            subject: subject.to_vec(),
            issuer: issuer.to_vec(),
            not_before,
            not_after,
            tbs: tbs_full.to_vec(),
            sig_alg: sig_alg.to_vec(),
            tbs_sig_alg: tbs_sig_alg.to_vec(),
            sig_alg_oid: sig_alg_oid.to_vec(),
            signature,
            spki_alg: spki_alg.to_vec(),
            spki_key,
            extensions,
            der,
        })
    }

    fn extension(&self, oid: &[u8]) -> Option<&[u8]> {
        self.extensions.iter().find(|(o, _)| o == oid).map(|(_, v)| v.as_slice())
    }
}

/// The certificates of a `--cert` file: PEM (any number) or one DER certificate.
fn split_certs(bytes: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    use rustls_pki_types::pem::PemObject;
    if bytes.first() == Some(&0x30) {
        return Ok(vec![bytes.to_vec()]);
    }
    let certs: Vec<Vec<u8>> = rustls_pki_types::CertificateDer::pem_slice_iter(bytes)
        .map(|c| c.map(|c| c.to_vec()))
        .collect::<Result<_, _>>()
        .map_err(|e| format!("not PEM certificates: {e:?}"))?;
    if certs.is_empty() {
        return Err("neither a DER certificate nor PEM holding one".into());
    }
    Ok(certs)
}

/// Reads one DER element with `tag` from the start of `data`: (contents, rest).
fn der_read(data: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (full, rest) = der_full(data, tag)?;
    let header = if full[1] & 0x80 == 0 { 2 } else { 2 + (full[1] & 0x7F) as usize };
    Some((&full[header..], rest))
}

/// Reads one DER element with `tag`: (the whole element with its header, rest).
fn der_full(data: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    if *data.first()? != tag {
        return None;
    }
    let first = *data.get(1)?;
    let (len, header) = if first & 0x80 == 0 {
        (first as usize, 2)
    } else {
        let n = (first & 0x7F) as usize;
        if n == 0 || n > 4 {
            return None;
        }
        let mut len = 0usize;
        for &b in data.get(2..2 + n)? {
            len = (len << 8) | b as usize;
        }
        (len, 2 + n)
    };
    let end = header.checked_add(len)?;
    Some((data.get(..end)?, data.get(end..)?))
}

/// The CN of a DER Name (SEQUENCE OF SET OF {OID, string}).
fn common_name(name: &[u8]) -> Option<String> {
    let (mut rdns, _) = der_read(name, 0x30)?;
    while !rdns.is_empty() {
        let (set, rest) = der_read(rdns, 0x31)?;
        rdns = rest;
        let (atv, _) = der_read(set, 0x30)?;
        let (oid, value) = der_read(atv, 0x06)?;
        if oid == [0x55, 0x04, 0x03] {
            let tag = *value.first()?;
            let (s, _) = der_read(value, tag)?;
            return Some(String::from_utf8_lossy(s).into_owned());
        }
    }
    None
}

/// A small DER INTEGER (an SPL extension value).
fn der_small_uint(value: &[u8]) -> Option<u8> {
    let (body, rest) = der_read(value, 0x02)?;
    if !rest.is_empty() {
        return None;
    }
    match body {
        [v] if *v < 0x80 => Some(*v),
        [0, v] if *v >= 0x80 => Some(*v),
        _ => None,
    }
}

/// The hwID extension: 64 raw bytes (older KDS certificates) or a DER OCTET STRING (newer
/// ones; Turin's holds 8 bytes) — the same two encodings trustee accepts.
fn hw_id(value: &[u8]) -> Vec<u8> {
    if value.len() == 64 {
        return value.to_vec();
    }
    match der_read(value, 0x04) {
        Some((inner, [])) => inner.to_vec(),
        _ => value.to_vec(),
    }
}
