//! The Spec ID event (`TCG_EfiSpecIDEvent`) that opens a crypto-agile log.

use crate::HashAlg;
use crate::error::{Error, ErrorKind};
use cvmkit_measure::Reader;

/// `"Spec ID Event03\0"`, the signature of a crypto-agile (TPM 2.0) log.
pub const SPEC_ID_EVENT03: &[u8; 16] = b"Spec ID Event03\0";

/// One entry of `TCG_EfiSpecIDEvent.digestSizes` (`TCG_EfiSpecIdEventAlgorithmSize`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AlgorithmSize {
    /// `algorithmId`.
    pub algorithm_id: HashAlg,
    /// `digestSize` in bytes.
    pub digest_size: u16,
}

/// `TCG_EfiSpecIDEvent` (PC Client PFP §10.4.5.1), the data of the first, SHA-1-format, record.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SpecIdEvent {
    /// `signature`, always `"Spec ID Event03\0"` here.
    pub signature: [u8; 16],
    /// `platformClass` (0 client, 1 server).
    pub platform_class: u32,
    /// `specVersionMinor`.
    pub spec_version_minor: u8,
    /// `specVersionMajor`.
    pub spec_version_major: u8,
    /// `specErrata`.
    pub spec_errata: u8,
    /// `uintnSize` (1: UINT32, 2: UINT64).
    pub uintn_size: u8,
    /// `digestSizes[numberOfAlgorithms]`: every algorithm records may carry, with its size.
    pub digest_sizes: Vec<AlgorithmSize>,
    /// `vendorInfo[vendorInfoSize]` (td-shim puts `"td-shim"` here).
    pub vendor_info: Vec<u8>,
    /// Bytes of event data after `vendorInfo` (should be 0).
    pub trailing_bytes: usize,
}

impl SpecIdEvent {
    /// Parses the event data. `event` and `base` (the data's offset in the log) locate errors.
    pub(crate) fn parse(data: &[u8], event: usize, base: usize) -> Result<SpecIdEvent, Error> {
        let mut r = Reader::new(data);
        let at = |r: &Reader<'_>| base + r.pos();
        let truncated = |r: &Reader<'_>, needed: usize| {
            Error::new(
                event,
                at(r),
                ErrorKind::Truncated {
                    field: "TCG_EfiSpecIDEvent",
                    needed,
                    available: r.remaining(),
                },
            )
        };
        // signature[16], platformClass, 4 version bytes, numberOfAlgorithms
        const HEADER: usize = 16 + 4 + 4 + 4;
        if r.remaining() < HEADER {
            return Err(truncated(&r, HEADER));
        }
        let signature = r.array::<16>().unwrap_or_default();
        if &signature != SPEC_ID_EVENT03 {
            return Err(Error::new(event, base, ErrorKind::NotSpecIdEvent));
        }
        let platform_class = r.u32().unwrap_or_default();
        let spec_version_minor = r.u8().unwrap_or_default();
        let spec_version_major = r.u8().unwrap_or_default();
        let spec_errata = r.u8().unwrap_or_default();
        let uintn_size = r.u8().unwrap_or_default();
        let count_at = at(&r);
        let count = r.u32().unwrap_or_default();
        if count == 0 {
            return Err(Error::new(event, count_at, ErrorKind::NoAlgorithms));
        }
        let needed = u64::from(count) * 4;
        if needed > r.remaining() as u64 {
            return Err(Error::new(
                event,
                count_at,
                ErrorKind::TooManyAlgorithms {
                    count,
                    needed,
                    available: r.remaining(),
                },
            ));
        }
        // `count` is now bounded by the data length, so this allocation is too.
        let mut digest_sizes: Vec<AlgorithmSize> = Vec::with_capacity(count as usize);
        for _ in 0..count {
            let entry_at = at(&r);
            let (Some(id), Some(size)) = (r.u16(), r.u16()) else {
                return Err(truncated(&r, 4));
            };
            let alg = HashAlg(id);
            if digest_sizes.iter().any(|a| a.algorithm_id == alg) {
                return Err(Error::new(
                    event,
                    entry_at,
                    ErrorKind::DuplicateAlgorithm { alg },
                ));
            }
            if let Some(expected) = alg.digest_size() {
                if usize::from(size) != expected {
                    return Err(Error::new(
                        event,
                        entry_at,
                        ErrorKind::WrongDigestSize {
                            alg,
                            declared: size,
                            expected,
                        },
                    ));
                }
            }
            digest_sizes.push(AlgorithmSize {
                algorithm_id: alg,
                digest_size: size,
            });
        }
        let vendor_at = at(&r);
        let Some(vendor_size) = r.u8() else {
            return Err(truncated(&r, 1));
        };
        let Some(vendor_info) = r.bytes(usize::from(vendor_size)) else {
            return Err(Error::new(
                event,
                vendor_at,
                ErrorKind::VendorInfoTooLarge {
                    size: vendor_size,
                    available: r.remaining(),
                },
            ));
        };
        Ok(SpecIdEvent {
            signature,
            platform_class,
            spec_version_minor,
            spec_version_major,
            spec_errata,
            uintn_size,
            digest_sizes,
            vendor_info: vendor_info.to_vec(),
            trailing_bytes: r.remaining(),
        })
    }

    /// The declared size of `alg`'s digests.
    pub fn digest_size(&self, alg: HashAlg) -> Option<usize> {
        self.digest_sizes
            .iter()
            .find(|a| a.algorithm_id == alg)
            .map(|a| usize::from(a.digest_size))
    }

    /// The declared algorithms in order.
    pub fn algorithms(&self) -> impl Iterator<Item = HashAlg> + '_ {
        self.digest_sizes.iter().map(|a| a.algorithm_id)
    }
}
