//! The Authenticode image hash ("Windows Authenticode Portable Executable Signature Format",
//! section "Calculating the PE Image Hash").

use std::ops::Range;

use sha2::{Digest, Sha256, Sha384};

use crate::pe::IMAGE_DIRECTORY_ENTRY_SECURITY;
use crate::PeFile;

/// SHA-256 and SHA-384 Authenticode digests of one image, computed in one pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthenticodeDigests {
    /// SHA-256 (Secure Boot `db`, TPM PCR 4 sha256 bank).
    pub sha256: [u8; 32],
    /// SHA-384 (TDX RTMR 1, TPM sha384 bank).
    pub sha384: [u8; 48],
}

/// Chunk size for feeding two hashers alternately, small enough to stay in L2 cache.
const CHUNK: usize = 64 * 1024;

impl PeFile<'_> {
    /// The file ranges the Authenticode hash covers, in hashing order.
    ///
    /// 1. The headers up to `SizeOfHeaders`, without the 4-byte `CheckSum` and the 8-byte
    ///    Security data directory entry (when `NumberOfRvaAndSizes` > 4).
    /// 2. The raw data of each section with `SizeOfRawData` > 0, sorted by `PointerToRawData`.
    /// 3. The data after that, from `SUM_OF_BYTES_HASHED` (`SizeOfHeaders` plus all
    ///    `SizeOfRawData`) to the end of the file minus the certificate table's size.
    ///
    /// Step 3 is the spec's formula and what EDK2's `DxeImageVerificationLib` and
    /// `DxeTpm2MeasureBootLib` (the code that verifies and measures images) compute. For the
    /// usual layout (sections contiguous after the headers, certificate table last) it is
    /// "everything after the last section except the certificate table".
    ///
    /// No zero padding is added: an unsigned file whose hashed length is not a multiple of 8
    /// is hashed as it is, like EDK2, signify and `pesign -h` do. Signing tools pad the file to
    /// 8 bytes before they append the signature, so the digest embedded in a signature covers
    /// the padding; see [`PeFile::authenticode_signing_padding`].
    pub fn authenticode_ranges(&self) -> Vec<Range<usize>> {
        let l = self.layout();
        let size_of_headers = self.optional_header().size_of_headers as usize;
        let mut ranges = Vec::with_capacity(4 + self.sections().len());
        ranges.push(0..l.checksum);
        match l.security_directory {
            Some(dir) => {
                ranges.push(l.checksum + 4..dir);
                ranges.push(dir + 8..size_of_headers);
            }
            None => ranges.push(l.checksum + 4..size_of_headers),
        }

        let mut sections: Vec<_> = self
            .sections()
            .iter()
            .filter(|s| s.header.size_of_raw_data > 0)
            .collect();
        // Stable: sections sharing an offset keep table order, as in EDK2's insertion sort.
        sections.sort_by_key(|s| s.header.pointer_to_raw_data);
        let mut sum_of_bytes_hashed = size_of_headers as u64;
        for s in sections {
            let start = s.header.pointer_to_raw_data as usize;
            // In bounds: `parse` checked every section with raw data against the file length.
            ranges.push(start..start + s.header.size_of_raw_data as usize);
            sum_of_bytes_hashed += u64::from(s.header.size_of_raw_data);
        }

        let cert_size = self
            .data_directory(IMAGE_DIRECTORY_ENTRY_SECURITY)
            .map_or(0, |d| u64::from(d.size));
        let file_size = self.data().len() as u64;
        if file_size > sum_of_bytes_hashed + cert_size {
            ranges.push(sum_of_bytes_hashed as usize..(file_size - cert_size) as usize);
        }
        ranges.retain(|r| !r.is_empty());
        ranges
    }

    /// Number of zero bytes a signing tool appends before the certificate table so that it
    /// starts on an 8-byte boundary: `(8 - len % 8) % 8` for an unsigned file, 0 for a signed
    /// one (whose padding is already part of the file).
    ///
    /// `osslsigncode sign` and `pesign -P` hash these zeros; EDK2, signify and `pesign -h` do not.
    pub fn authenticode_signing_padding(&self) -> usize {
        if self.certificate_table().is_some() {
            0
        } else {
            (8 - self.data().len() % 8) % 8
        }
    }

    /// Feeds the Authenticode-covered bytes to `hasher`, without copying them.
    pub fn authenticode_update<D: Digest>(&self, hasher: &mut D) {
        for r in self.authenticode_ranges() {
            hasher.update(&self.data()[r]);
        }
    }

    /// The Authenticode digest with hash `D`, as firmware computes it when it verifies or
    /// measures the image (no padding).
    pub fn authenticode<D: Digest>(&self) -> Vec<u8> {
        let mut h = D::new();
        self.authenticode_update(&mut h);
        h.finalize().to_vec()
    }

    /// The Authenticode digest with hash `D` including the zero padding a signing tool adds
    /// ([`PeFile::authenticode_signing_padding`]): the digest a signature made of this file
    /// will embed. Equal to [`PeFile::authenticode`] for signed files and 8-byte-aligned ones.
    pub fn authenticode_padded<D: Digest>(&self) -> Vec<u8> {
        let mut h = D::new();
        self.authenticode_update(&mut h);
        h.update(&[0u8; 8][..self.authenticode_signing_padding()]);
        h.finalize().to_vec()
    }

    /// SHA-256 and SHA-384 Authenticode digests (no padding) in one pass over the file.
    pub fn authenticode_sha256_sha384(&self) -> AuthenticodeDigests {
        let mut a = Sha256::new();
        let mut b = Sha384::new();
        for r in self.authenticode_ranges() {
            for chunk in self.data()[r].chunks(CHUNK) {
                a.update(chunk);
                b.update(chunk);
            }
        }
        AuthenticodeDigests {
            sha256: a.finalize().into(),
            sha384: b.finalize().into(),
        }
    }
}
