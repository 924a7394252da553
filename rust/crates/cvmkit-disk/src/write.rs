//! Writing a planned disk in each format.

use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::Path;


use crate::content::{MapFeeder, OpenUki};
use crate::gcp::{data_padding, end_padding, sparse_headers, GzWriter, GCP_MEMBER_NAME};
use crate::layout::{DiskLayout, DiskReport, DiskSpec, Format};
use crate::qcow2::Qcow2Plan;
use crate::vhd::vhd_footer;
use crate::Error;

const WRITING: &str = "writing the disk image";

/// Counts the bytes passed through to the inner writer.
struct Counter<W> {
    inner: W,
    count: u64,
}

impl<W: Write> Write for Counter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.count += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

fn write_zeros<W: Write>(out: &mut W, mut n: u64) -> std::io::Result<()> {
    static ZEROS: [u8; 65536] = [0; 65536];
    while n > 0 {
        let k = n.min(ZEROS.len() as u64) as usize;
        out.write_all(&ZEROS[..k])?;
        n -= k as u64;
    }
    Ok(())
}

impl DiskLayout {
    /// Writes the disk to `out`, which must be empty (a new or truncated file, an empty
    /// buffer): raw and VHD are written sparsely, seeking over zero blocks, so old bytes would
    /// survive. The output's length is exact when this returns: the last bytes of every format
    /// are written, never seeked over.
    pub fn write<W: Write + Seek>(&self, out: &mut W) -> Result<DiskReport, Error> {
        self.write_from(out, None)
    }

    /// [`DiskLayout::write`], reading the UKI's bytes from what `open_uki` opens (at their
    /// start; once for raw and VHD, twice for GCP and qcow2, which first map the zero blocks)
    /// instead of from the file at the planned path. The reader must give exactly the planned
    /// length, then end: `cvmkit build` plans the disk from the UKI's length and writes it
    /// while the UKI is still being written, from a reader that follows the UKI's writer.
    pub fn write_with_uki<W: Write + Seek>(&self, out: &mut W, open_uki: &OpenUki<'_>) -> Result<DiskReport, Error> {
        self.write_from(out, Some(open_uki))
    }

    fn write_from<W: Write + Seek>(&self, out: &mut W, uki: Option<&OpenUki<'_>>) -> Result<DiskReport, Error> {
        let len = out.seek(SeekFrom::End(0)).map_err(Error::io(WRITING))?;
        if len != 0 {
            return Err(Error::OutputNotEmpty { len });
        }
        let mut report = self.report();
        match self.format {
            Format::Raw | Format::Vhd => {
                let mut w = BufWriter::with_capacity(1 << 20, &mut *out);
                let mut pos = 0u64;
                let mut data = 0u64;
                self.visit_nonzero(uki, |offset, bytes| {
                    if offset != pos {
                        w.seek(SeekFrom::Start(offset))
                            .map_err(Error::io(WRITING))?;
                    }
                    w.write_all(bytes).map_err(Error::io(WRITING))?;
                    pos = offset + bytes.len() as u64;
                    data += bytes.len() as u64;
                    Ok(())
                })?;
                let size = self.disk_size();
                if pos < size {
                    // Unreachable with a GPT (its backup header ends the disk), but keep the length exact.
                    w.seek(SeekFrom::Start(size - 1))
                        .map_err(Error::io(WRITING))?;
                    w.write_all(&[0]).map_err(Error::io(WRITING))?;
                }
                let mut end = size;
                if self.format == Format::Vhd {
                    let id = cvmkit_gpt::seeded_guid(&self.seed, "vhd-unique-id").to_bytes_be();
                    w.write_all(&vhd_footer(size, self.timestamp, id))
                        .map_err(Error::io(WRITING))?;
                    end += 512;
                }
                w.flush().map_err(Error::io(WRITING))?;
                report.data_bytes = data;
                report.output_size = end;
            }
            Format::Gcp => {
                let map = self.data_map(uki)?;
                let stored: u64 = map.iter().map(|e| e.1).sum();
                let counter = Counter {
                    inner: BufWriter::with_capacity(1 << 20, &mut *out),
                    count: 0,
                };
                let mut gz = GzWriter::new(counter).map_err(Error::io(WRITING))?;
                let headers =
                    sparse_headers(GCP_MEMBER_NAME, self.disk_size(), self.timestamp, &map);
                gz.write_all(&headers).map_err(Error::io(WRITING))?;
                // The data of each mapped range, in order.
                let mut feeder = MapFeeder::new(&map);
                let mut emit = |b: &[u8]| gz.write_all(b).map_err(Error::io(WRITING));
                self.visit(uki, |offset, bytes| feeder.feed(offset, bytes, &mut emit))?;
                feeder.finish(&mut emit)?;
                let written = feeder.emitted;
                debug_assert_eq!(written, stored);
                let tail = data_padding(stored)
                    + end_padding(headers.len() as u64 + stored + data_padding(stored));
                write_zeros(&mut gz, tail).map_err(Error::io(WRITING))?;
                let mut counter = gz.finish().map_err(Error::io(WRITING))?;
                counter.flush().map_err(Error::io(WRITING))?;
                report.data_bytes = stored;
                report.output_size = counter.count;
            }
            Format::Qcow2 => {
                let map = self.data_map(uki)?;
                let plan = Qcow2Plan::new(self.disk_size(), &map);
                let cs = plan.cluster_size();
                let mut w = BufWriter::with_capacity(1 << 20, &mut *out);
                w.write_all(&plan.metadata()).map_err(Error::io(WRITING))?;
                let clusters = &plan.data_clusters;
                let mut next = 0usize; // index of the next data cluster to write
                let mut buf = vec![0u8; cs as usize];
                let mut current: Option<u64> = None; // guest cluster held in buf
                let flush_to = |w: &mut BufWriter<&mut W>,
                                next: &mut usize,
                                current: &mut Option<u64>,
                                buf: &mut [u8],
                                g: u64| {
                    if let Some(c) = current.take() {
                        w.write_all(buf).map_err(Error::io(WRITING))?;
                        buf.fill(0);
                        debug_assert_eq!(clusters[*next], c);
                        *next += 1;
                    }
                    while *next < clusters.len() && clusters[*next] < g {
                        w.write_all(buf).map_err(Error::io(WRITING))?; // allocated but now zero
                        *next += 1;
                    }
                    Ok::<(), Error>(())
                };
                self.visit(uki, |offset, bytes| {
                    let mut pos = 0usize;
                    while pos < bytes.len() {
                        let abs = offset + pos as u64;
                        let g = abs / cs;
                        let n = ((cs - abs % cs) as usize).min(bytes.len() - pos);
                        if current != Some(g) {
                            flush_to(&mut w, &mut next, &mut current, &mut buf, g)?;
                            if clusters.get(next) == Some(&g) {
                                current = Some(g);
                            }
                        }
                        if current == Some(g) {
                            let at = (abs % cs) as usize;
                            buf[at..at + n].copy_from_slice(&bytes[pos..pos + n]);
                        }
                        pos += n;
                    }
                    Ok(())
                })?;
                flush_to(&mut w, &mut next, &mut current, &mut buf, u64::MAX)?;
                w.flush().map_err(Error::io(WRITING))?;
                report.data_bytes = clusters.len() as u64 * cs;
                report.output_size = plan.file_size();
            }
        }
        Ok(report)
    }
}

/// Plans the disk described by `spec` and writes it to `out` (empty, see
/// [`DiskLayout::write`]) in `format`.
pub fn write_disk<W: Write + Seek>(
    spec: &DiskSpec,
    format: Format,
    out: &mut W,
) -> Result<DiskReport, Error> {
    DiskLayout::plan(spec, format)?.write(out)
}

/// Plans the disk and writes it to a new (or truncated) file at `path`. The inputs are checked
/// before the file is created, so a bad spec leaves no file behind.
pub fn write_disk_file(spec: &DiskSpec, format: Format, path: &Path) -> Result<DiskReport, Error> {
    let layout = DiskLayout::plan(spec, format)?;
    let what = || format!("writing {}", path.display());
    let mut file = std::fs::File::create(path).map_err(Error::io(what()))?;
    let report = layout.write(&mut file)?;
    file.set_len(report.output_size)
        .map_err(Error::io(what()))?;
    Ok(report)
}
