//! Reading a file while it is written: `cvmkit build` writes the disk from the UKI's bytes as
//! they reach the UKI's file, instead of after the UKI is whole and then reading it back.
//!
//! The writer side counts what reached the file ([`Counted`]) and at the end says whether the
//! file is whole and in place ([`Follow::finish`]); readers ([`Follow::reader`]) read behind it
//! and wait for more. A reader never sees bytes the writer has not written, and never hangs:
//! [`Finish`] ends a write that returns early, fails or panics as not written, which the
//! readers report as an error.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::fs::FileExt as _;
use std::sync::{Arc, Condvar, Mutex};

/// The state a writer shares with its readers.
#[derive(Default)]
pub(crate) struct Follow {
    state: Mutex<State>,
    changed: Condvar,
}

#[derive(Default)]
struct State {
    /// The file being written (another handle to it), once writing starts.
    file: Option<Arc<File>>,
    /// Bytes in the file, from its start.
    written: u64,
    /// `Some(true)`: whole and in place, `Some(false)`: not written.
    done: Option<bool>,
}

impl Follow {
    fn update(&self, f: impl FnOnce(&mut State)) {
        f(&mut self.state.lock().unwrap_or_else(|e| e.into_inner()));
        self.changed.notify_all();
    }

    /// Writing `file` starts; readers read it through this handle.
    pub(crate) fn start(&self, file: File) {
        self.update(|s| s.file = Some(Arc::new(file)));
    }

    /// The write ended: the file whole and in place (`true`), or not written. The first call
    /// counts.
    pub(crate) fn finish(&self, whole: bool) {
        self.update(|s| {
            s.done.get_or_insert(whole);
        });
    }

    /// A reader of the file from its start.
    pub(crate) fn reader(self: &Arc<Self>) -> Follower {
        Follower { follow: self.clone(), pos: 0 }
    }
}

/// Ends the write as not written when dropped before [`Follow::finish`] was called.
pub(crate) struct Finish<'a>(pub(crate) &'a Follow);

impl Drop for Finish<'_> {
    fn drop(&mut self) {
        self.0.finish(false);
    }
}

/// The writer into the file: passes bytes on and counts those written.
pub(crate) struct Counted<'a, W: Write> {
    pub(crate) inner: W,
    pub(crate) follow: &'a Follow,
}

impl<W: Write> Write for Counted<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.follow.update(|s| s.written += n as u64);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A reader behind the writer: it waits for bytes not yet written, and ends where the file
/// ends once it is whole.
pub(crate) struct Follower {
    follow: Arc<Follow>,
    pos: u64,
}

impl Read for Follower {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let (file, available) = {
            let f = &self.follow;
            let mut s = f.state.lock().unwrap_or_else(|e| e.into_inner());
            loop {
                match (&s.file, s.done) {
                    (_, Some(false)) => return Err(io::Error::other("it was not written")),
                    (Some(file), _) if s.written > self.pos => break (file.clone(), s.written - self.pos),
                    (_, Some(true)) => return Ok(0),
                    _ => s = f.changed.wait(s).unwrap_or_else(|e| e.into_inner()),
                }
            }
        };
        let want = buf.len().min(usize::try_from(available).unwrap_or(usize::MAX));
        let n = file.read_at(&mut buf[..want], self.pos)?;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "it is shorter than its writer wrote"));
        }
        self.pos += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn follow_in(dir: &std::path::Path) -> (Arc<Follow>, File) {
        let path = dir.join("f");
        let file = File::create(&path).unwrap();
        let follow = Arc::new(Follow::default());
        follow.start(File::open(&path).unwrap());
        (follow, file)
    }

    /// A reader started before the writer gets every byte, in order, and ends when the file is
    /// whole; a second reader from the start too.
    #[test]
    fn reads_behind_the_writer() {
        let dir = tempfile::tempdir().unwrap();
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let follow = Arc::new(Follow::default());
        std::thread::scope(|s| {
            let reader = s.spawn(|| {
                let mut got = Vec::new();
                follow.reader().read_to_end(&mut got).unwrap();
                got
            });
            let path = dir.path().join("f");
            let mut file = File::create(&path).unwrap();
            follow.start(File::open(&path).unwrap());
            let mut w = Counted { inner: &mut file, follow: &follow };
            for piece in data.chunks(100_003) {
                w.write_all(piece).unwrap();
                std::thread::sleep(std::time::Duration::from_micros(200));
            }
            follow.finish(true);
            assert_eq!(reader.join().unwrap(), data);
        });
        let mut again = Vec::new();
        follow.reader().read_to_end(&mut again).unwrap();
        assert_eq!(again, data);
    }

    /// A write that stops (an error, an early return, a panic: [`Finish`] is dropped) ends every
    /// waiting reader with an error instead of leaving it waiting; a later `finish(true)` does
    /// not undo it.
    #[test]
    fn a_write_that_stops_ends_the_readers() {
        let dir = tempfile::tempdir().unwrap();
        let (follow, mut file) = follow_in(dir.path());
        std::thread::scope(|s| {
            let reader = s.spawn(|| {
                let mut got = Vec::new();
                follow.reader().read_to_end(&mut got)
            });
            Counted { inner: &mut file, follow: &follow }.write_all(b"partial").unwrap();
            drop(Finish(&follow));
            let err = reader.join().unwrap().unwrap_err();
            assert_eq!(err.to_string(), "it was not written");
        });
        follow.finish(true);
        assert!(follow.reader().read_to_end(&mut Vec::new()).is_err());
    }
}
