//! One-shot zstd compression with the context in memory advised to be transparent huge pages.
//!
//! Why: at the default level 10 zstd's match finder looks up a hash table of several MiB at
//! random. In 4 KiB pages nearly every lookup misses the TLB, and each miss is a two-level page
//! walk in a VM. The context's tables are also zeroed when it is set up, a page fault for each
//! 4 KiB. In 2 MiB pages both costs mostly go away. On this project's 2-core VM that makes the
//! example image's 2 MB initrd compress in about two thirds of the time (BENCHMARKS.md).
//!
//! zstd-safe has no way to give the library memory, so this calls zstd's static-linking API
//! (`ZSTD_initStaticCCtx`) through zstd-sys, the same libzstd zstd-safe uses. The parameters are
//! the ones `compress.rs` sets through zstd-safe, and compression is the same one-shot
//! `ZSTD_compress2`, so the bytes are the same (a test compares them). Where any step fails
//! (no memory, an input too large for one shot), `None` sends the caller to zstd-safe's path.
#![allow(unsafe_code)]

use zstd_sys as sys;

/// `data` compressed as one zstd frame at `level`, with a checksum, the content size and no
/// dictionary ID: the bytes of `zstd::bulk::Compressor` with those settings. `None` if this
/// path could not run.
pub(crate) fn compress(data: &[u8], level: i32) -> Option<Vec<u8>> {
    // SAFETY: plain functions of value arguments.
    let (size, bound) = unsafe {
        let params = sys::ZSTD_getCParams(level, data.len() as u64, 0);
        let size = sys::ZSTD_estimateCCtxSize_usingCParams(params);
        (size, sys::ZSTD_compressBound(data.len()))
    };
    // SAFETY: ZSTD_isError only inspects the value.
    if size == 0 || unsafe { sys::ZSTD_isError(size) != 0 || sys::ZSTD_isError(bound) != 0 } {
        return None;
    }
    let mut workspace = memmap2::MmapMut::map_anon(size).ok()?;
    // Advice only: without transparent huge pages (or with them off) the pages are 4 KiB.
    let _ = workspace.advise(memmap2::Advice::HugePage);
    let mut out: Vec<u8> = Vec::with_capacity(bound);
    // SAFETY: the workspace is page-aligned (zstd needs 8 bytes), `size` bytes long, and
    // outlives the context, which is only used in this block and needs no freeing (it lives in
    // the workspace, never allocating). The input is `data.len()` readable bytes; the output has
    // `bound` bytes of capacity, of which zstd reports how many it wrote before they are
    // exposed by `set_len`.
    unsafe {
        let cctx = sys::ZSTD_initStaticCCtx(workspace.as_mut_ptr().cast(), size);
        if cctx.is_null() {
            return None;
        }
        use sys::ZSTD_cParameter::*;
        for (param, value) in [
            (ZSTD_c_compressionLevel, level),
            (ZSTD_c_checksumFlag, 1),
            (ZSTD_c_contentSizeFlag, 1),
            (ZSTD_c_dictIDFlag, 0),
        ] {
            if sys::ZSTD_isError(sys::ZSTD_CCtx_setParameter(cctx, param, value)) != 0 {
                return None;
            }
        }
        let n = sys::ZSTD_compress2(cctx, out.as_mut_ptr().cast(), bound, data.as_ptr().cast(), data.len());
        if sys::ZSTD_isError(n) != 0 || n > bound {
            return None;
        }
        out.set_len(n);
    }
    Some(out)
}
