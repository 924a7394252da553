//! Hash algorithms: [`HashAlg`] names any `TPM_ALG_ID` a log may declare, [`Bank`] is one this
//! crate can compute (a PCR bank, an RTMR's SHA-384, the SNP launch digest's SHA-384).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sha1::Sha1;
use sha2::{Digest as _, Sha256, Sha384, Sha512};

use crate::Digest;

/// A TPM 2.0 algorithm identifier (`TPM_ALG_ID`, TPM 2.0 Part 2 §6.3) naming a digest algorithm.
///
/// Logs may declare algorithms this crate cannot compute (SM3, SHA-3): they are still parsed, using
/// the digest size the Spec ID event declares for them, but they get no [`Bank`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HashAlg(pub u16);

impl HashAlg {
    /// `TPM_ALG_SHA1`.
    pub const SHA1: HashAlg = HashAlg(0x0004);
    /// `TPM_ALG_SHA256`.
    pub const SHA256: HashAlg = HashAlg(0x000B);
    /// `TPM_ALG_SHA384`.
    pub const SHA384: HashAlg = HashAlg(0x000C);
    /// `TPM_ALG_SHA512`.
    pub const SHA512: HashAlg = HashAlg(0x000D);
    /// `TPM_ALG_SM3_256`.
    pub const SM3_256: HashAlg = HashAlg(0x0012);
    /// `TPM_ALG_SHA3_256`.
    pub const SHA3_256: HashAlg = HashAlg(0x0027);
    /// `TPM_ALG_SHA3_384`.
    pub const SHA3_384: HashAlg = HashAlg(0x0028);
    /// `TPM_ALG_SHA3_512`.
    pub const SHA3_512: HashAlg = HashAlg(0x0029);

    const KNOWN: [HashAlg; 8] = [
        HashAlg::SHA1,
        HashAlg::SHA256,
        HashAlg::SHA384,
        HashAlg::SHA512,
        HashAlg::SM3_256,
        HashAlg::SHA3_256,
        HashAlg::SHA3_384,
        HashAlg::SHA3_512,
    ];

    /// Lowercase name (`"sha256"`), or `None` for an algorithm this crate does not know.
    pub fn name(self) -> Option<&'static str> {
        Some(match self {
            HashAlg::SHA1 => "sha1",
            HashAlg::SHA256 => "sha256",
            HashAlg::SHA384 => "sha384",
            HashAlg::SHA512 => "sha512",
            HashAlg::SM3_256 => "sm3_256",
            HashAlg::SHA3_256 => "sha3_256",
            HashAlg::SHA3_384 => "sha3_384",
            HashAlg::SHA3_512 => "sha3_512",
            _ => return None,
        })
    }

    /// Parses a name as printed by [`HashAlg::name`] (`"sha256"`; `"sha-256"` and upper case work too).
    pub fn from_name(name: &str) -> Option<HashAlg> {
        let norm = |s: &str| s.to_ascii_lowercase().replace(['-', '_'], "");
        let want = norm(name);
        HashAlg::KNOWN.into_iter().find(|alg| alg.name().map(norm) == Some(want.clone()))
    }

    /// The digest size the TPM specification fixes for a known algorithm, in bytes.
    pub fn digest_size(self) -> Option<usize> {
        Some(match self {
            HashAlg::SHA1 => 20,
            HashAlg::SHA256 | HashAlg::SM3_256 | HashAlg::SHA3_256 => 32,
            HashAlg::SHA384 | HashAlg::SHA3_384 => 48,
            HashAlg::SHA512 | HashAlg::SHA3_512 => 64,
            _ => return None,
        })
    }

    /// The bank of this algorithm, when this crate can compute it.
    pub fn bank(self) -> Option<Bank> {
        Bank::from_tpm_alg_id(self.0)
    }

    /// Whether this crate can compute the algorithm, and so replay a bank of it.
    pub fn is_supported(self) -> bool {
        self.bank().is_some()
    }

    /// Hashes `data`; `None` if the algorithm is not [supported](HashAlg::is_supported).
    pub fn hash(self, data: &[u8]) -> Option<Digest> {
        self.hash_parts(&[data])
    }

    /// Hashes the concatenation of `parts`; `None` if the algorithm is not supported.
    pub fn hash_parts(self, parts: &[&[u8]]) -> Option<Digest> {
        let mut h = Hasher::new(self.bank()?);
        for part in parts {
            h.update(part);
        }
        Some(Digest::new(self, h.finalize()))
    }
}

impl fmt::Display for HashAlg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "algorithm {:#06x}", self.0),
        }
    }
}

/// A hash this crate computes: a TPM PCR bank, and the algorithm of TDX and SNP registers.
///
/// ```
/// use cvmkit_measure::Bank;
///
/// let bank: Bank = "sha256".parse()?;
/// assert_eq!(bank, Bank::Sha256);
/// assert_eq!(bank.tpm_alg_id(), 0x000B);
/// // PCR_new = H(PCR_old || digest), starting from zeros.
/// let pcr = bank.extend(&bank.zero(), &bank.hash(b"ready"));
/// assert_eq!(pcr.len(), 32);
/// # Ok::<(), cvmkit_measure::UnknownBank>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Bank {
    /// SHA-1 (`TPM_ALG_SHA1`, 0x0004).
    Sha1,
    /// SHA-256 (`TPM_ALG_SHA256`, 0x000B).
    Sha256,
    /// SHA-384 (`TPM_ALG_SHA384`, 0x000C): TDX registers, the SNP launch digest.
    Sha384,
    /// SHA-512 (`TPM_ALG_SHA512`, 0x000D).
    Sha512,
}

/// A bank name that [`Bank::from_str`] does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown PCR bank '{0}'; expected sha1, sha256, sha384 or sha512")]
pub struct UnknownBank(pub String);

impl Bank {
    /// Every bank, in TPM algorithm-id order.
    pub const ALL: [Bank; 4] = [Bank::Sha1, Bank::Sha256, Bank::Sha384, Bank::Sha512];

    /// Lowercase name: `sha1`, `sha256`, `sha384`, `sha512` (as `systemd-measure --bank`, Linux's
    /// `/sys/class/tpm/tpm0/pcr-<bank>/` and the measurement document spell them).
    pub const fn name(self) -> &'static str {
        match self {
            Bank::Sha1 => "sha1",
            Bank::Sha256 => "sha256",
            Bank::Sha384 => "sha384",
            Bank::Sha512 => "sha512",
        }
    }

    /// The `TPM_ALG_ID` of the hash, as event logs list it.
    pub const fn tpm_alg_id(self) -> u16 {
        match self {
            Bank::Sha1 => 0x0004,
            Bank::Sha256 => 0x000B,
            Bank::Sha384 => 0x000C,
            Bank::Sha512 => 0x000D,
        }
    }

    /// The algorithm identifier of this bank.
    pub const fn alg(self) -> HashAlg {
        HashAlg(self.tpm_alg_id())
    }

    /// The bank with this `TPM_ALG_ID`.
    pub fn from_tpm_alg_id(id: u16) -> Option<Bank> {
        Bank::ALL.into_iter().find(|b| b.tpm_alg_id() == id)
    }

    /// Digest size in bytes.
    pub const fn digest_size(self) -> usize {
        match self {
            Bank::Sha1 => 20,
            Bank::Sha256 => 32,
            Bank::Sha384 => 48,
            Bank::Sha512 => 64,
        }
    }

    /// A register's reset value: all zeros (PCRs 0–15 at locality 0, RTMRs, MRTD before build).
    pub fn zero(self) -> Vec<u8> {
        vec![0; self.digest_size()]
    }

    /// The digest of `data`.
    pub fn hash(self, data: &[u8]) -> Vec<u8> {
        let mut h = Hasher::new(self);
        h.update(data);
        h.finalize()
    }

    /// The extend operation of TPM PCRs (`TPM2_PCR_Extend`) and TDX RTMRs
    /// (`TDG.MR.RTMR.EXTEND`): the hash of the old value followed by the digest.
    pub fn extend(self, register: &[u8], digest: &[u8]) -> Vec<u8> {
        let mut h = Hasher::new(self);
        h.update(register);
        h.update(digest);
        h.finalize()
    }

    /// Folds `digests` into a register that starts at [`Bank::zero`]: its value after these
    /// events were extended in order.
    pub fn fold<I>(self, digests: I) -> Vec<u8>
    where
        I: IntoIterator,
        I::Item: AsRef<[u8]>,
    {
        digests.into_iter().fold(self.zero(), |reg, d| self.extend(&reg, d.as_ref()))
    }
}

impl fmt::Display for Bank {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Bank {
    type Err = UnknownBank;

    /// Accepts the names case-insensitively, with or without a dash (`SHA-256`).
    fn from_str(s: &str) -> Result<Bank, UnknownBank> {
        let norm = s.to_ascii_lowercase().replace('-', "");
        Bank::ALL.into_iter().find(|b| b.name() == norm).ok_or_else(|| UnknownBank(s.to_string()))
    }
}

/// An incremental hash in one bank's algorithm (a streaming [`Bank::hash`]).
#[derive(Clone)]
pub enum Hasher {
    /// SHA-1.
    Sha1(Sha1),
    /// SHA-256.
    Sha256(Sha256),
    /// SHA-384.
    Sha384(Sha384),
    /// SHA-512.
    Sha512(Sha512),
}

impl Hasher {
    /// A fresh hash of `bank`'s algorithm.
    pub fn new(bank: Bank) -> Hasher {
        match bank {
            Bank::Sha1 => Hasher::Sha1(Sha1::new()),
            Bank::Sha256 => Hasher::Sha256(Sha256::new()),
            Bank::Sha384 => Hasher::Sha384(Sha384::new()),
            Bank::Sha512 => Hasher::Sha512(Sha512::new()),
        }
    }

    /// Feeds `data`.
    pub fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Sha1(h) => h.update(data),
            Hasher::Sha256(h) => h.update(data),
            Hasher::Sha384(h) => h.update(data),
            Hasher::Sha512(h) => h.update(data),
        }
    }

    /// Feeds `n` zero bytes without allocating `n` bytes.
    pub fn update_zeros(&mut self, mut n: u64) {
        const ZEROS: [u8; 4096] = [0; 4096];
        while n > 0 {
            let k = n.min(ZEROS.len() as u64) as usize;
            self.update(&ZEROS[..k]);
            n -= k as u64;
        }
    }

    /// The digest.
    pub fn finalize(self) -> Vec<u8> {
        match self {
            Hasher::Sha1(h) => h.finalize().to_vec(),
            Hasher::Sha256(h) => h.finalize().to_vec(),
            Hasher::Sha384(h) => h.finalize().to_vec(),
            Hasher::Sha512(h) => h.finalize().to_vec(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for b in Bank::ALL {
            assert_eq!(b.name().parse::<Bank>().unwrap(), b);
            assert_eq!(Bank::from_tpm_alg_id(b.tpm_alg_id()), Some(b));
            assert_eq!(b.alg().bank(), Some(b));
            assert_eq!(b.hash(b"").len(), b.digest_size());
            assert_eq!(b.alg().digest_size(), Some(b.digest_size()));
        }
        assert_eq!("SHA-384".parse::<Bank>().unwrap(), Bank::Sha384);
        assert_eq!(
            "md5".parse::<Bank>().unwrap_err().to_string(),
            "unknown PCR bank 'md5'; expected sha1, sha256, sha384 or sha512"
        );
        assert_eq!(HashAlg::from_name("SHA-256"), Some(HashAlg::SHA256));
        assert_eq!(HashAlg::from_name("sha3_384"), Some(HashAlg::SHA3_384));
        assert_eq!(HashAlg::from_name("md5"), None);
        assert_eq!(HashAlg(0x1234).to_string(), "algorithm 0x1234");
        assert!(HashAlg::SM3_256.hash(b"").is_none());
    }

    #[test]
    fn zeros_stream_like_a_buffer() {
        for b in Bank::ALL {
            let mut h = Hasher::new(b);
            h.update(b"x");
            h.update_zeros(10_000);
            let mut buf = vec![0u8; 10_001];
            buf[0] = b'x';
            assert_eq!(h.finalize(), b.hash(&buf));
        }
    }

    /// `sha384(b"\0"*48 + sha384(b"abc").digest()).hexdigest()` in Python's hashlib.
    #[test]
    fn fold_matches_hashlib() {
        let v = Bank::Sha384.fold([Bank::Sha384.hash(b"abc")]);
        assert_eq!(
            crate::hex(&v),
            "93732e3733514a841c982cfa75ea76ab55fe011acb9cd980ef4523913c65be1b0998e04d77f8c174f81a82151619ca40"
        );
    }
}
