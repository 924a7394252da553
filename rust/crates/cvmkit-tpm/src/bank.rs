//! PCR banks: the hash algorithms a TPM keeps one set of PCRs for.

use std::fmt;
use std::str::FromStr;

use cvmkit_pe::sha2::{Digest, Sha256, Sha384, Sha512};
use cvmkit_pe::PeFile;
use sha1::Sha1;

/// A PCR bank, named after its hash algorithm.
///
/// ```
/// use cvmkit_tpm::Bank;
///
/// let bank: Bank = "sha256".parse()?;
/// assert_eq!(bank, Bank::Sha256);
/// assert_eq!(bank.tpm_alg_id(), 0x000B);
/// // PCR_new = H(PCR_old || digest), starting from zeros.
/// let pcr = bank.extend(&bank.zero(), &bank.hash(b"ready"));
/// assert_eq!(pcr.len(), 32);
/// # Ok::<(), cvmkit_tpm::UnknownBank>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Bank {
    /// SHA-1 (`TPM_ALG_SHA1`, 0x0004).
    Sha1,
    /// SHA-256 (`TPM_ALG_SHA256`, 0x000B).
    Sha256,
    /// SHA-384 (`TPM_ALG_SHA384`, 0x000C).
    Sha384,
    /// SHA-512 (`TPM_ALG_SHA512`, 0x000D).
    Sha512,
}

/// A bank name that [`Bank::from_str`] does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown PCR bank '{0}'; expected sha1, sha256, sha384 or sha512")]
pub struct UnknownBank(pub String);

impl Bank {
    /// Every bank this crate can compute, in TPM algorithm-id order.
    pub const ALL: [Bank; 4] = [Bank::Sha1, Bank::Sha256, Bank::Sha384, Bank::Sha512];

    /// Lowercase name: `sha1`, `sha256`, `sha384`, `sha512` (as `systemd-measure --bank` and
    /// Linux's `/sys/class/tpm/tpm0/pcr-<bank>/` spell them).
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

    /// The value of a PCR after reset: all zeros (PCRs 0–15 at locality 0).
    pub fn zero(self) -> Vec<u8> {
        vec![0; self.digest_size()]
    }

    /// The digest of `data`.
    pub fn hash(self, data: &[u8]) -> Vec<u8> {
        let mut h = Hasher::new(self);
        h.update(data);
        h.finalize()
    }

    /// `TPM2_PCR_Extend`: the hash of the old value followed by the digest.
    pub fn extend(self, pcr: &[u8], digest: &[u8]) -> Vec<u8> {
        let mut h = Hasher::new(self);
        h.update(pcr);
        h.update(digest);
        h.finalize()
    }

    /// The Authenticode image hash of `pe` in this bank's algorithm, as firmware measures an
    /// image it loads (no padding; see `cvmkit_pe::PeFile::authenticode`).
    pub fn authenticode(self, pe: &PeFile<'_>) -> Vec<u8> {
        match self {
            Bank::Sha1 => pe.authenticode::<Sha1>(),
            Bank::Sha256 => pe.authenticode::<Sha256>(),
            Bank::Sha384 => pe.authenticode::<Sha384>(),
            Bank::Sha512 => pe.authenticode::<Sha512>(),
        }
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
        Bank::ALL
            .into_iter()
            .find(|b| b.name() == norm)
            .ok_or_else(|| UnknownBank(s.to_string()))
    }
}

/// An incremental hash in one bank's algorithm.
pub(crate) enum Hasher {
    Sha1(Sha1),
    Sha256(Sha256),
    Sha384(Sha384),
    Sha512(Sha512),
}

impl Hasher {
    pub(crate) fn new(bank: Bank) -> Hasher {
        match bank {
            Bank::Sha1 => Hasher::Sha1(Sha1::new()),
            Bank::Sha256 => Hasher::Sha256(Sha256::new()),
            Bank::Sha384 => Hasher::Sha384(Sha384::new()),
            Bank::Sha512 => Hasher::Sha512(Sha512::new()),
        }
    }

    pub(crate) fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Sha1(h) => h.update(data),
            Hasher::Sha256(h) => h.update(data),
            Hasher::Sha384(h) => h.update(data),
            Hasher::Sha512(h) => h.update(data),
        }
    }

    /// Feeds `n` zero bytes without allocating `n` bytes.
    pub(crate) fn update_zeros(&mut self, mut n: u64) {
        const ZEROS: [u8; 4096] = [0; 4096];
        while n > 0 {
            let k = n.min(ZEROS.len() as u64) as usize;
            self.update(&ZEROS[..k]);
            n -= k as u64;
        }
    }

    pub(crate) fn finalize(self) -> Vec<u8> {
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
            assert_eq!(b.hash(b"").len(), b.digest_size());
        }
        assert_eq!("SHA-384".parse::<Bank>().unwrap(), Bank::Sha384);
        assert_eq!(
            "md5".parse::<Bank>().unwrap_err().to_string(),
            "unknown PCR bank 'md5'; expected sha1, sha256, sha384 or sha512"
        );
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
}
