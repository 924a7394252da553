//! Reader and writer for the "new ASCII" (newc, magic `070701`) cpio format,
//! the only format the Linux kernel unpacks into its initramfs.
//!
//! An archive is a sequence of entries, each a 110-byte ASCII header (magic plus
//! 13 eight-digit hex fields), the NUL-terminated name padded to a multiple of 4
//! bytes, then the data padded to a multiple of 4 bytes. An entry named
//! `TRAILER!!!` ends the archive. The format is described in the kernel's
//! `Documentation/driver-api/early-userspace/buffer-format.rst` and in
//! `man 5 cpio`.
//!
//! - [`Writer`] streams entries into any [`std::io::Write`] with bounded memory and
//!   pads the finished archive to 512 bytes, as the kernel's `usr/gen_init_cpio`
//!   does.
//! - [`Reader`] iterates over the entries of an archive held in memory. It is
//!   meant for untrusted input (diffing, fuzzing): it never panics and never
//!   allocates according to a size claimed by the input. Like the kernel it can
//!   also continue past a trailer into a following, concatenated archive.
//!
//! ```
//! use cvmkit_cpio::{mode, Header, Reader, Writer};
//!
//! let mut w = Writer::new(Vec::new());
//! let dir = Header { ino: 1, mode: mode::S_IFDIR | 0o755, nlink: 2, ..Header::default() };
//! w.write_entry(b"etc", &dir, &mut std::io::empty())?;
//! let data = b"cvm\n";
//! let file = Header { ino: 2, mode: mode::S_IFREG | 0o644, nlink: 1, filesize: 4, ..Header::default() };
//! w.write_entry(b"etc/hostname", &file, &mut &data[..])?;
//! let archive = w.finish()?;
//! assert_eq!(archive.len() % 512, 0);
//!
//! let entries: Vec<_> = Reader::new(&archive).collect::<Result<_, _>>()?;
//! assert_eq!(entries.len(), 2);
//! assert_eq!(entries[1].name, b"etc/hostname");
//! assert_eq!(entries[1].data, b"cvm\n");
//! assert_eq!(entries[1].header, file);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod read;
mod write;

pub use read::{Entry, Error, Format, Reader};
pub use write::Writer;

/// Magic of the newc format without checksums: `"070701"`.
pub const MAGIC_NEWC: &[u8; 6] = b"070701";
/// Magic of the newc format with a checksum field: `"070702"`. The kernel does not
/// verify the checksum; [`Reader`] reports it in [`Entry::check`] without checking it.
pub const MAGIC_CRC: &[u8; 6] = b"070702";
/// Length of a newc header: the 6-byte magic and 13 fields of 8 hex digits.
pub const HEADER_LEN: usize = 110;
/// Name of the entry that ends an archive.
pub const TRAILER_NAME: &[u8] = b"TRAILER!!!";
/// Largest `filesize` a newc header can express: 8 hex digits.
pub const MAX_FILE_SIZE: u64 = 0xFFFF_FFFF;
/// Block size the finished archive is padded to, like the kernel's `gen_init_cpio`.
pub const ARCHIVE_ALIGN: u64 = 512;

/// File type and permission bits of [`Header::mode`], as in `<sys/stat.h>`.
///
/// These are the Linux values, which the newc format stores verbatim.
pub mod mode {
    /// Mask of the file type bits.
    pub const S_IFMT: u32 = 0o170000;
    /// Socket.
    pub const S_IFSOCK: u32 = 0o140000;
    /// Symbolic link; the entry data is the target.
    pub const S_IFLNK: u32 = 0o120000;
    /// Regular file.
    pub const S_IFREG: u32 = 0o100000;
    /// Block device; see [`Header::rdevmajor`](crate::Header::rdevmajor).
    pub const S_IFBLK: u32 = 0o060000;
    /// Directory.
    pub const S_IFDIR: u32 = 0o040000;
    /// Character device.
    pub const S_IFCHR: u32 = 0o020000;
    /// Named pipe (FIFO).
    pub const S_IFIFO: u32 = 0o010000;
    /// Set-user-ID, set-group-ID, sticky and rwx bits: everything but the type.
    pub const PERMISSION_BITS: u32 = 0o7777;
}

/// The numeric fields of a newc header, in on-disk order.
///
/// `namesize` is derived from the name and `check` is always written as 0 for
/// `070701`, so neither is stored here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Header {
    /// Inode number; entries with the same `ino` (and `nlink` ≥ 2) are hard links.
    pub ino: u32,
    /// File type ([`mode::S_IFMT`]) and permission bits.
    pub mode: u32,
    /// Owner user id.
    pub uid: u32,
    /// Owner group id.
    pub gid: u32,
    /// Number of links.
    pub nlink: u32,
    /// Modification time, seconds since the Unix epoch.
    pub mtime: u32,
    /// Length of the entry data in bytes.
    pub filesize: u32,
    /// Major number of the device holding the file.
    pub devmajor: u32,
    /// Minor number of the device holding the file.
    pub devminor: u32,
    /// Major number of a block or character device entry.
    pub rdevmajor: u32,
    /// Minor number of a block or character device entry.
    pub rdevminor: u32,
}

impl Header {
    /// The file type bits of `mode` (one of the `mode::S_IF*` constants).
    pub fn file_type(&self) -> u32 {
        self.mode & mode::S_IFMT
    }

    /// Encodes the 110-byte header with the given magic, name size and checksum.
    ///
    /// Lower-case hex, as GNU cpio writes it; the kernel and GNU cpio read either case.
    fn encode(&self, magic: &[u8; 6], namesize: u32, check: u32) -> [u8; HEADER_LEN] {
        let fields = [
            self.ino,
            self.mode,
            self.uid,
            self.gid,
            self.nlink,
            self.mtime,
            self.filesize,
            self.devmajor,
            self.devminor,
            self.rdevmajor,
            self.rdevminor,
            namesize,
            check,
        ];
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = [0u8; HEADER_LEN];
        out[..6].copy_from_slice(magic);
        for (field, chunk) in fields.iter().zip(out[6..].chunks_exact_mut(8)) {
            for (i, digit) in chunk.iter_mut().enumerate() {
                // Most significant nibble first.
                let shift = 28 - 4 * i;
                *digit = HEX[((field >> shift) & 0xf) as usize];
            }
        }
        out
    }
}

/// Number of zero bytes that pad `len` up to a multiple of 4.
fn pad4(len: u64) -> u64 {
    len.wrapping_neg() & 3
}

/// Size in bytes that one entry with a name of `name_len` bytes (without its NUL)
/// and `filesize` bytes of data occupies in an archive, padding included.
///
/// Lets a caller size a buffer for a whole archive before writing it.
///
/// ```
/// // 110-byte header + "a\0" = 112, already aligned; 5 data bytes padded to 8.
/// assert_eq!(cvmkit_cpio::entry_size(1, 5), 120);
/// ```
pub fn entry_size(name_len: u64, filesize: u64) -> u64 {
    let head = HEADER_LEN as u64 + name_len + 1;
    head + pad4(head) + filesize + pad4(filesize)
}

/// Total size of an archive whose entries (without the trailer) take `entries_len`
/// bytes, once [`Writer::finish`] has added the trailer and the padding to 512.
///
/// ```
/// // An empty archive is the trailer alone, padded to one 512-byte block.
/// assert_eq!(cvmkit_cpio::archive_size(0), 512);
/// ```
pub fn archive_size(entries_len: u64) -> u64 {
    let end = entries_len + entry_size(TRAILER_NAME.len() as u64, 0);
    end + (end.wrapping_neg() % ARCHIVE_ALIGN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_encoding_matches_the_kernel_documentation() {
        // Field order and widths from the kernel's
        // Documentation/driver-api/early-userspace/buffer-format.rst: magic, then
        // ino mode uid gid nlink mtime filesize maj min rmaj rmin namesize chksum,
        // each 8 hex digits.
        let h = Header {
            ino: 0x1234_5678,
            mode: 0o100644,
            uid: 1,
            gid: 2,
            nlink: 3,
            mtime: 0xdead_beef,
            filesize: 10,
            devmajor: 4,
            devminor: 5,
            rdevmajor: 6,
            rdevminor: 7,
        };
        let enc = h.encode(MAGIC_NEWC, 9, 0);
        assert_eq!(
            &enc[..],
            &b"070701\
               12345678\
               000081a4\
               00000001\
               00000002\
               00000003\
               deadbeef\
               0000000a\
               00000004\
               00000005\
               00000006\
               00000007\
               00000009\
               00000000"[..]
        );
    }

    #[test]
    fn sizes_include_padding() {
        // "TRAILER!!!\0" is 11 bytes: 110 + 11 = 121, padded to 124.
        assert_eq!(entry_size(10, 0), 124);
        // 110 + 2 = 112 needs no padding; 3 data bytes pad to 4.
        assert_eq!(entry_size(1, 3), 116);
        assert_eq!(archive_size(512 - 124), 512);
        assert_eq!(archive_size(512 - 123), 1024);
    }
}
