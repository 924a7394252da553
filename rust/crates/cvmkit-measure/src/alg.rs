//! Hash algorithms: [`HashAlg`] names any `TPM_ALG_ID` a log may declare, [`Bank`] is one this
//! crate can compute (a PCR bank, an RTMR's SHA-384, the SNP launch digest's SHA-384).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

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

    /// The time a byte takes in this bank's [`Hasher`], relative to SHA-1, for spreading
    /// digests over cores. SHA-1 and SHA-256 run on the CPU's SHA instructions; SHA-384/512 in
    /// software, 3× slower with RustCrypto, 2× with OpenSSL (x86-64 with SHA-NI, measured).
    pub fn relative_cost(self) -> u64 {
        match self {
            Bank::Sha1 | Bank::Sha256 => 1,
            Bank::Sha384 | Bank::Sha512 if cfg!(feature = "openssl") => 2,
            Bank::Sha384 | Bank::Sha512 => 3,
        }
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
///
/// With the `openssl` feature (the `cvmkit` CLI turns it on) the bytes go through OpenSSL's
/// libcrypto, otherwise through RustCrypto's `sha1`/`sha2`. Why two: measuring an image is SHA-384
/// over every byte at least twice (Authenticode, then the section), and on x86-64 OpenSSL's
/// SHA-384/512 run about 1.4× faster than `sha2`'s (OpenSSL has AVX2/BMI2 code `sha2` lacks);
/// SHA-1 and SHA-256 use the CPU's SHA instructions in both. The digests are the same: a test
/// holds the OpenSSL side to RustCrypto's on the same bytes, split the same ways.
#[derive(Clone)]
pub struct Hasher(backend::State);

/// A backend: an enum over its four hash types, `$finish` naming their final call.
macro_rules! backend {
    ($sha1:ty, $sha256:ty, $sha384:ty, $sha512:ty, $finish:ident) => {
        #[derive(Clone)]
        pub enum State {
            Sha1($sha1),
            Sha256($sha256),
            Sha384($sha384),
            Sha512($sha512),
        }

        impl State {
            pub fn new(bank: super::Bank) -> State {
                use super::Bank;
                match bank {
                    Bank::Sha1 => State::Sha1(<$sha1>::new()),
                    Bank::Sha256 => State::Sha256(<$sha256>::new()),
                    Bank::Sha384 => State::Sha384(<$sha384>::new()),
                    Bank::Sha512 => State::Sha512(<$sha512>::new()),
                }
            }

            pub fn update(&mut self, data: &[u8]) {
                match self {
                    State::Sha1(h) => h.update(data),
                    State::Sha256(h) => h.update(data),
                    State::Sha384(h) => h.update(data),
                    State::Sha512(h) => h.update(data),
                }
            }

            pub fn finalize(self) -> Vec<u8> {
                match self {
                    State::Sha1(h) => h.$finish().to_vec(),
                    State::Sha256(h) => h.$finish().to_vec(),
                    State::Sha384(h) => h.$finish().to_vec(),
                    State::Sha512(h) => h.$finish().to_vec(),
                }
            }
        }
    };
}

#[cfg(not(feature = "openssl"))]
mod backend {
    use sha2::Digest as _;
    backend!(sha1::Sha1, sha2::Sha256, sha2::Sha384, sha2::Sha512, finalize);
}

#[cfg(feature = "openssl")]
mod backend {
    // The one-shot-context API (SHA384_Init/Update/Final): no allocation, no error path, and a
    // context that copies by value (a hash state forked mid-stream, see `Hasher: Clone`).
    use openssl::sha;
    backend!(sha::Sha1, sha::Sha256, sha::Sha384, sha::Sha512, finish);
}

impl Hasher {
    /// A fresh hash of `bank`'s algorithm.
    pub fn new(bank: Bank) -> Hasher {
        Hasher(backend::State::new(bank))
    }

    /// Feeds `data`.
    pub fn update(&mut self, data: &[u8]) {
        self.0.update(data)
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
        self.0.finalize()
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

    /// OpenSSL's digests are RustCrypto's (an implementation written apart from it): every
    /// bank, on inputs that cross block boundaries, fed in pieces of uneven sizes, and from a
    /// state copied mid-stream (the stub's initrd continues from a copy of `.initrd`'s).
    #[cfg(feature = "openssl")]
    #[test]
    fn openssl_digests_are_rustcrypto_digests() {
        use sha2::Digest as _;
        fn rustcrypto(bank: Bank, data: &[u8]) -> Vec<u8> {
            match bank {
                Bank::Sha1 => sha1::Sha1::digest(data).to_vec(),
                Bank::Sha256 => sha2::Sha256::digest(data).to_vec(),
                Bank::Sha384 => sha2::Sha384::digest(data).to_vec(),
                Bank::Sha512 => sha2::Sha512::digest(data).to_vec(),
            }
        }
        let data: Vec<u8> = (0..300_000u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
        for bank in Bank::ALL {
            for len in [0, 1, 55, 56, 63, 64, 111, 112, 127, 128, 129, 1000, 4096, 300_000] {
                let d = &data[..len];
                assert_eq!(bank.hash(d), rustcrypto(bank, d), "{bank} over {len} bytes");
                let mut h = Hasher::new(bank);
                let (mut at, mut step) = (0, 1);
                let mut fork = None;
                while at < len {
                    let n = step.min(len - at);
                    h.update(&d[at..at + n]);
                    at += n;
                    step = step * 7 % 1021 + 1;
                    if fork.is_none() && at >= len / 2 {
                        fork = Some((at, h.clone()));
                    }
                }
                assert_eq!(h.finalize(), rustcrypto(bank, d), "{bank} over {len} bytes in pieces");
                if let Some((at, mut f)) = fork {
                    f.update(b"tail");
                    let mut want = d[..at].to_vec();
                    want.extend_from_slice(b"tail");
                    assert_eq!(f.finalize(), rustcrypto(bank, &want), "{bank}: a copy at {at} continues on its own");
                }
            }
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
