//! [`Digest`]: a hash value tagged with its algorithm, and lowercase [`hex`].

use std::fmt;

use crate::alg::HashAlg;

/// A digest tagged with its algorithm (`TPMT_HA`). `Display` and serde use lowercase hex.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    alg: HashAlg,
    bytes: Box<[u8]>,
}

impl Digest {
    /// Wraps `bytes` as a digest of `alg`. The length is not checked (logs declare sizes of
    /// algorithms this crate does not know); [`crate::Register`] checks it against its bank.
    pub fn new(alg: HashAlg, bytes: impl Into<Box<[u8]>>) -> Digest {
        Digest { alg, bytes: bytes.into() }
    }

    /// An all-zero digest of `size` bytes.
    pub fn zero(alg: HashAlg, size: usize) -> Digest {
        Digest::new(alg, vec![0; size])
    }

    /// Parses hex (either case); `None` on odd length or a non-hex character.
    pub fn from_hex(alg: HashAlg, hex: &str) -> Option<Digest> {
        unhex(hex).map(|b| Digest::new(alg, b))
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
        hex(&self.bytes)
    }

    /// `self = H(self ‖ digest)`, the TPM2_PCR_Extend and TDG.MR.RTMR.EXTEND operation. Returns
    /// `false` (and leaves `self` alone) if the algorithm cannot be computed.
    pub fn extend(&mut self, digest: &[u8]) -> bool {
        match self.alg.bank() {
            Some(bank) => {
                self.bytes = bank.extend(&self.bytes, digest).into_boxed_slice();
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
        f.write_str(&hex(&self.bytes))
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

/// Lowercase hex of `bytes`: the one spelling of a digest in every output.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}

/// Parses hex (either case); `None` on odd length or a non-hex character.
pub fn unhex(text: &str) -> Option<Vec<u8>> {
    let t = text.as_bytes();
    if t.len() % 2 != 0 {
        return None;
    }
    let nibble = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    t.chunks_exact(2).map(|p| Some(nibble(p[0])? << 4 | nibble(p[1])?)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Bank;

    #[test]
    fn hex_round_trip() {
        let d = Digest::from_hex(HashAlg::SHA1, "00aBff").unwrap();
        assert_eq!(d.to_string(), "00abff");
        assert!(Digest::from_hex(HashAlg::SHA1, "0").is_none());
        assert!(Digest::from_hex(HashAlg::SHA1, "zz").is_none());
        assert!(Digest::from_hex(HashAlg::SHA1, "é0").is_none());
        assert_eq!(serde_json::to_string(&d).unwrap(), "\"00abff\"");
    }

    #[test]
    fn extend_is_hash_of_concatenation() {
        let mut pcr = Digest::zero(HashAlg::SHA256, 32);
        let event = HashAlg::SHA256.hash(b"abc").unwrap();
        assert!(pcr.extend(event.as_bytes()));
        let expected = HashAlg::SHA256.hash_parts(&[&[0; 32], event.as_bytes()]).unwrap();
        assert_eq!(pcr, expected);
        assert_eq!(pcr.as_bytes(), Bank::Sha256.fold([event]).as_slice());
        assert!(!Digest::zero(HashAlg::SM3_256, 32).extend(&[0; 32]));
    }
}
