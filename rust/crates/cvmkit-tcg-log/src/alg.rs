//! Hash algorithms (`TPM_ALG_ID`) and digests (`TPMT_HA`).

use std::fmt;

use sha1::Sha1;
use sha2::{Sha256, Sha384, Sha512};

/// A TPM 2.0 algorithm identifier (`TPM_ALG_ID`, TPM 2.0 Part 2 §6.3) naming a digest algorithm.
///
/// Logs may declare algorithms this crate cannot compute (SM3, SHA-3): they are still parsed, using
/// the digest size the Spec ID event declares for them, but they get no replay bank.
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
        let lower = name.to_ascii_lowercase().replace('-', "");
        [
            HashAlg::SHA1,
            HashAlg::SHA256,
            HashAlg::SHA384,
            HashAlg::SHA512,
            HashAlg::SM3_256,
            HashAlg::SHA3_256,
            HashAlg::SHA3_384,
            HashAlg::SHA3_512,
        ]
        .into_iter()
        .find(|alg| alg.name().map(|n| n.replace('_', "")) == Some(lower.replace('_', "")))
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

    /// Whether this crate can compute the algorithm, and so replay a bank of it.
    pub fn is_supported(self) -> bool {
        matches!(
            self,
            HashAlg::SHA1 | HashAlg::SHA256 | HashAlg::SHA384 | HashAlg::SHA512
        )
    }

    /// Hashes `data`; `None` if the algorithm is not [supported](HashAlg::is_supported).
    pub fn hash(self, data: &[u8]) -> Option<Digest> {
        self.hash_parts(&[data])
    }

    /// Hashes the concatenation of `parts`; `None` if the algorithm is not supported.
    pub fn hash_parts(self, parts: &[&[u8]]) -> Option<Digest> {
        fn run<D: sha2::Digest>(parts: &[&[u8]]) -> Vec<u8> {
            let mut hasher = D::new();
            for part in parts {
                hasher.update(part);
            }
            hasher.finalize().to_vec()
        }
        let bytes = match self {
            HashAlg::SHA1 => run::<Sha1>(parts),
            HashAlg::SHA256 => run::<Sha256>(parts),
            HashAlg::SHA384 => run::<Sha384>(parts),
            HashAlg::SHA512 => run::<Sha512>(parts),
            _ => return None,
        };
        Some(Digest {
            alg: self,
            bytes: bytes.into_boxed_slice(),
        })
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

/// A digest tagged with its algorithm (`TPMT_HA`). `Display` prints lowercase hex.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Digest {
    alg: HashAlg,
    bytes: Box<[u8]>,
}

impl Digest {
    /// Wraps `bytes` as a digest of `alg`. The length is not checked against the algorithm.
    pub fn new(alg: HashAlg, bytes: impl Into<Box<[u8]>>) -> Digest {
        Digest {
            alg,
            bytes: bytes.into(),
        }
    }

    /// An all-zero digest of `size` bytes.
    pub fn zero(alg: HashAlg, size: usize) -> Digest {
        Digest {
            alg,
            bytes: vec![0; size].into_boxed_slice(),
        }
    }

    /// Parses hex (either case); `None` on odd length or a non-hex character.
    pub fn from_hex(alg: HashAlg, hex: &str) -> Option<Digest> {
        let hex = hex.as_bytes();
        if hex.len() % 2 != 0 {
            return None;
        }
        let nibble = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
        let bytes = hex
            .chunks_exact(2)
            .map(|pair| Some(nibble(pair[0])? << 4 | nibble(pair[1])?))
            .collect::<Option<Vec<u8>>>()?;
        Some(Digest::new(alg, bytes))
    }

    /// The algorithm.
    pub fn alg(&self) -> HashAlg {
        self.alg
    }

    /// The digest bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Lowercase hex, the same as `to_string()`.
    pub fn to_hex(&self) -> String {
        self.to_string()
    }

    /// `self = H(self ‖ digest)`, the TPM2_PCR_Extend and TDG.MR.RTMR.EXTEND operation. Returns
    /// `false` (and leaves `self` alone) if the algorithm cannot be computed.
    pub(crate) fn extend(&mut self, digest: &[u8]) -> bool {
        match self.alg.hash_parts(&[&self.bytes, digest]) {
            Some(next) => {
                self.bytes = next.bytes;
                true
            }
            None => false,
        }
    }
}

impl AsRef<[u8]> for Digest {
    fn as_ref(&self) -> &[u8] {
        &self.bytes
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for byte in self.bytes.iter() {
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_sizes() {
        assert_eq!(HashAlg::from_name("SHA-256"), Some(HashAlg::SHA256));
        assert_eq!(HashAlg::from_name("sha3_384"), Some(HashAlg::SHA3_384));
        assert_eq!(HashAlg::from_name("md5"), None);
        assert_eq!(HashAlg(0x1234).to_string(), "algorithm 0x1234");
        assert_eq!(HashAlg::SHA384.digest_size(), Some(48));
        assert!(HashAlg::SM3_256.hash(b"").is_none());
    }

    #[test]
    fn hex_round_trip() {
        let d = Digest::from_hex(HashAlg::SHA1, "00aBff").unwrap();
        assert_eq!(d.to_string(), "00abff");
        assert!(Digest::from_hex(HashAlg::SHA1, "0").is_none());
        assert!(Digest::from_hex(HashAlg::SHA1, "zz").is_none());
        assert!(Digest::from_hex(HashAlg::SHA1, "é0").is_none());
    }

    #[test]
    fn extend_is_hash_of_concatenation() {
        let mut pcr = Digest::zero(HashAlg::SHA256, 32);
        let event = HashAlg::SHA256.hash(b"abc").unwrap();
        assert!(pcr.extend(event.as_bytes()));
        let expected = HashAlg::SHA256
            .hash_parts(&[&[0; 32], event.as_bytes()])
            .unwrap();
        assert_eq!(pcr, expected);
    }
}
