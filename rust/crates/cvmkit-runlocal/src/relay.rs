//! The relay QEMU runs (with /bin/sh) per guest connection to 10.0.2.2:8090: the guest's
//! connection is its stdin and stdout (and stderr), and it copies both ways to the metadata
//! server. QEMU's `guestfwd` can only run a command, not connect to a host port itself.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::Duration;

use anyhow::{Context, Result};

/// Copies stdin → `addr` and `addr` → stdout until both directions are closed. `Ok(false)`:
/// the server could not be reached and stderr is the guest's connection, so nothing was said.
pub fn relay(addr: &str) -> Result<bool> {
    let sock = match TcpStream::connect(addr) {
        Ok(s) => s,
        // Under QEMU, stderr is the guest's connection too: say nothing there.
        Err(_) if !stderr_is_separate() => return Ok(false),
        Err(e) => return Err(e).with_context(|| format!("--relay: cannot connect to {addr}")),
    };
    let mut up = sock
        .try_clone()
        .context("--relay: cannot clone the socket")?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin().lock();
        let mut buf = [0u8; 16384];
        loop {
            match stdin.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if up.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            }
        }
        let _ = up.shutdown(Shutdown::Write);
        let _ = tx.send(());
    });
    let mut down = sock;
    {
        let mut stdout = std::io::stdout().lock();
        let mut buf = [0u8; 16384];
        loop {
            match down.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if stdout
                        .write_all(&buf[..n])
                        .and_then(|_| stdout.flush())
                        .is_err()
                    {
                        break;
                    }
                }
            }
        }
        let _ = stdout.flush();
    }
    close_stdout();
    // Let the near end finish sending; a peer that never closes does not keep us forever.
    let _ = rx.recv_timeout(Duration::from_secs(30));
    Ok(true)
}

/// The far end is done: tell the near end. Under QEMU fd 1 is a socket whose other copy is
/// stdin, so closing fd 1 alone would not end the connection: shut its write side down. When it
/// is a pipe (shutdown fails with ENOTSOCK), closing it is what ends it: fd 1 is replaced by
/// /dev/null, which closes the pipe without leaving fd 1 free for something else to take.
fn close_stdout() {
    let stdout = std::io::stdout();
    let _ = rustix::net::shutdown(&stdout, rustix::net::Shutdown::Write);
    if let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") {
        let _ = rustix::stdio::dup2_stdout(&null);
    }
}

/// Whether fd 2 is another file than fd 1 (under QEMU both are the guest's connection).
fn stderr_is_separate() -> bool {
    use std::os::unix::fs::MetadataExt as _;
    let id = |fd: &str| std::fs::metadata(fd).ok().map(|m| (m.dev(), m.ino()));
    match (id("/proc/self/fd/1"), id("/proc/self/fd/2")) {
        (Some(a), Some(b)) => a != b,
        _ => true,
    }
}
