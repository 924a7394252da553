//! Child processes and signals: QEMU and swtpm each run in a process group of their own, so a
//! terminal's Ctrl-C reaches only this process, which then stops them in order; and so that
//! helpers they start are stopped with them.
//!
//! The syscalls go through `rustix` (safe wrappers, no hand-declared `extern "C"`); signal
//! handlers through `signal-hook`, since rustix offers no safe way to install one.

use std::os::unix::process::CommandExt as _;
use std::process::{Child, Command, ExitStatus};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Once;
use std::time::{Duration, Instant};

use rustix::process::{kill_process_group, Pid, Signal};

static STOP: AtomicBool = AtomicBool::new(false);

/// SIGINT, SIGTERM and SIGHUP set a flag ([`stop_requested`]) instead of killing this process,
/// so the VM is stopped cleanly. Installed once per process; later calls do nothing.
pub fn install_signal_handlers() -> std::io::Result<()> {
    static ONCE: Once = Once::new();
    let mut result = Ok(());
    ONCE.call_once(|| {
        for sig in [
            signal_hook::consts::SIGINT,
            signal_hook::consts::SIGTERM,
            signal_hook::consts::SIGHUP,
        ] {
            if let Err(e) = signal_hook::flag::register(sig, &STOP) {
                result = Err(e);
            }
        }
    });
    result
}

/// Whether one of the signals of [`install_signal_handlers`] arrived.
pub fn stop_requested() -> bool {
    STOP.load(Ordering::SeqCst)
}

/// A child in a process group of its own; the whole group is stopped on drop.
pub struct Group {
    child: Child,
    done: bool,
}

impl Group {
    /// Spawns `cmd` as the leader of a new process group. On Linux the child also gets SIGKILL
    /// when this process dies without running the guard (e.g. it is SIGKILLed itself).
    pub fn spawn(cmd: &mut Command) -> std::io::Result<Group> {
        cmd.process_group(0);
        #[cfg(target_os = "linux")]
        // SAFETY: the closure runs between fork and exec and only makes one prctl syscall,
        // which is async-signal-safe; it allocates nothing and takes no lock.
        unsafe {
            cmd.pre_exec(|| {
                rustix::process::set_parent_process_death_signal(Some(Signal::KILL))?;
                Ok(())
            });
        }
        Ok(Group {
            child: cmd.spawn()?,
            done: false,
        })
    }

    /// The leader's exit status, if it has exited.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// SIGTERM to the group, SIGKILL after 5 s, then reaps the leader.
    pub fn stop(&mut self) {
        if self.done {
            return;
        }
        self.done = true;
        let pgid = Pid::from_child(&self.child);
        // Errors mean the group is already gone: nothing left to stop.
        let _ = kill_process_group(pgid, Signal::TERM);
        let end = Instant::now() + Duration::from_secs(5);
        while Instant::now() < end {
            if self.child.try_wait().ok().flatten().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        // Whatever is left of the group (the leader, or helpers it started).
        let _ = kill_process_group(pgid, Signal::KILL);
        let _ = self.child.wait();
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The guard stops the whole group: a helper the leader started goes too.
    #[test]
    fn stop_kills_the_group() {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("helper.pid");
        let mut cmd = Command::new("/bin/sh");
        cmd.arg("-c")
            .arg(format!("sleep 300 & echo $! > {}; wait", pidfile.display()));
        let mut g = Group::spawn(&mut cmd).unwrap();
        let end = Instant::now() + Duration::from_secs(10);
        while std::fs::read_to_string(&pidfile).map_or(true, |s| !s.ends_with('\n')) {
            assert!(Instant::now() < end, "the helper did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        let helper: i32 = std::fs::read_to_string(&pidfile)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert!(g.try_wait().is_none());
        g.stop();
        assert!(g.try_wait().is_some() || g.done);
        // The helper is gone (or a zombie of init's, which /proc shows as state Z). A SIGKILL is
        // delivered when the process next runs: on a busy machine that takes a moment.
        let end = Instant::now() + Duration::from_secs(10);
        loop {
            let stat = std::fs::read_to_string(format!("/proc/{helper}/stat")).unwrap_or_default();
            if stat.is_empty() || stat.contains(") Z ") {
                break;
            }
            assert!(Instant::now() < end, "the helper outlived stop(): {stat}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}
