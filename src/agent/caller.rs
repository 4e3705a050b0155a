//! Who is on the other end of a connection: uid, pid, executable and three parents, read from
//! `/proc` in a way that a recycled pid can never make the agent name the wrong program.
//!
//! How (Linux):
//! - `SO_PEERCRED` gives the uid and pid of the process that connected. With `SO_PEERPIDFD`
//!   (Linux 6.5+) the kernel also hands over a pidfd of that very process. The agent opens
//!   `/proc/<pid>` and only then asks the pidfd whether the process is still alive: if it is,
//!   the pid could not have been reused in between, so the opened directory is that process,
//!   and reads through it fail (rather than show another process) once it is gone. If it has
//!   exited, the entry says the program is unknown.
//! - Without `SO_PEERPIDFD`, the process found under the pid must have started no later than
//!   the connection was accepted (start times in clock ticks since boot); anything younger is
//!   a newcomer that inherited the pid, and the program is unknown.
//! - Parents: the parent pid read through the child's pinned directory, the parent's
//!   directory opened and pinned, and its start time compared: a parent (or the subreaper that
//!   adopted the child) is never younger than the child, while a process that took the pid
//!   after the parent died is. The comparison is in clock ticks (10 ms), so a pid would have
//!   to be freed and handed out again within the tick of the child's birth, which the pid
//!   allocator does not do (it hands pids out in a cycle) short of a privileged `ns_last_pid`.
//!
//! - When: the caller itself is read just before the hello is answered, while it waits for
//!   that answer and so certainly runs — and while a client of wbl's is still readable: it
//!   makes itself non-dumpable (which hides `/proc/<pid>/exe` from a process of the same
//!   user) once the answer arrives, before it holds any key (`client::seal`). Its parents
//!   (whose chain only needs the caller's parent pid and start time, taken then) are read once
//!   its first request is answered, off the time it waits for that answer. A parent that exits
//!   in between ends the chain there. A process that is not dumpable when it connects (a
//!   program that sealed itself, or runs set-uid) is of unknown program: `exe` is `null`.
//!
//! What it cannot tell: a process that connected and then replaced its program (`exec`) is
//! still the same process, and is named by the program it runs when the agent looks (before
//! answering its hello); a socket handed to another process is attributed to the one that
//! connected, as `SO_PEERCRED` always does.

use super::dispatch::Peer;
use crate::accesslog::Caller;

/// How many parents are followed.
pub const PARENTS: usize = 3;

/// What the kernel says about the peer, taken when the connection is accepted: uid, pid and
/// a pidfd of the connecting process. [`finish`] reads `/proc` with it later.
pub struct Grabbed {
    #[cfg(target_os = "linux")]
    inner: linux::Grabbed,
    #[cfg(not(target_os = "linux"))]
    caller: Caller,
}

/// Takes the kernel's facts about the peer of an accepted connection, beside its uid and pid
/// (`peer`, read once by the agent's uid check). Call it right after accepting: a caller that
/// has exited by then is unknown.
pub fn grab(stream: &interprocess::local_socket::tokio::Stream, peer: Peer) -> Grabbed {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsFd;
        let interprocess::local_socket::tokio::Stream::UdSocket(s) = stream;
        // 0: the peer is in a pid namespace we cannot see into.
        let cred = peer
            .uid
            .zip(peer.pid)
            .map(|(uid, pid)| (uid, u32::try_from(pid).unwrap_or(0)));
        Grabbed {
            inner: linux::grab(s.as_fd(), cred),
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = stream;
        Grabbed {
            caller: Caller {
                uid: peer.uid,
                pid: peer.pid.and_then(|p| u32::try_from(p).ok()),
                ..Caller::unknown()
            },
        }
    }
}

/// The caller without its parents yet, and what they are checked against.
pub struct Identified {
    caller: Caller,
    /// The caller's parent pid and start time, read while it was known to run.
    #[cfg(target_os = "linux")]
    chain: Option<linux::Stat>,
}

impl Identified {
    /// What is known so far: uid, pid, executable; no parents.
    pub fn caller(&self) -> &Caller {
        &self.caller
    }

    /// The whole caller: the parents are read now (see the module documentation for when).
    pub fn with_parents(self) -> Caller {
        #[cfg(target_os = "linux")]
        {
            let mut caller = self.caller;
            if let Some(stat) = self.chain {
                caller.parents = linux::parents(stat);
            }
            caller
        }
        #[cfg(not(target_os = "linux"))]
        {
            self.caller
        }
    }
}

/// The caller: its executable read from `/proc` and checked against what was grabbed; never
/// fails (what cannot be known is left out). Call it before answering a request, while the
/// client waits for the answer and so certainly runs; [`Identified::with_parents`] adds the
/// parents later.
pub fn finish(g: Grabbed) -> Identified {
    #[cfg(target_os = "linux")]
    {
        linux::finish(g.inner)
    }
    #[cfg(not(target_os = "linux"))]
    {
        Identified { caller: g.caller }
    }
}

/// `/proc/<pid>`, held open: reads through it concern that process or fail.
#[cfg(target_os = "linux")]
pub fn process_dir(pid: u32) -> Option<std::os::fd::OwnedFd> {
    linux::proc_dir(pid)
}

/// The process of `dir` (a [`process_dir`] handle, opened before the process was found to be
/// the caller, e.g. to hold a socket): its executable and parents, read through that handle,
/// so that a process that exited meanwhile is of unknown program rather than another's.
#[cfg(target_os = "linux")]
pub fn of_process(
    uid: u32,
    pid: u32,
    dir: &std::os::fd::OwnedFd,
    check: crate::accesslog::Check,
) -> Caller {
    linux::of_process(uid, pid, dir, check)
}

#[cfg(target_os = "linux")]
mod linux {
    use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

    use rustix::fs::{Mode, OFlags};

    use super::{Identified, PARENTS};
    use crate::accesslog::{Caller, Check, Process};

    /// What the kernel says about the peer at accept time.
    pub(super) struct Grabbed {
        accepted: Option<u64>,
        cred: Option<(u32, u32)>,
        pidfd: std::io::Result<OwnedFd>,
    }

    /// The part that must happen at once: the pidfd of the connecting process, whose uid
    /// and pid (`SO_PEERCRED`) are `cred`.
    pub(super) fn grab(sock: BorrowedFd<'_>, cred: Option<(u32, u32)>) -> Grabbed {
        let accepted = crate::sys::boot_ticks();
        let pidfd = match cred {
            Some((_, pid)) if pid > 0 => crate::sys::peer_pidfd(sock),
            _ => Err(std::io::Error::from(std::io::ErrorKind::NotFound)),
        };
        Grabbed {
            accepted,
            cred,
            pidfd,
        }
    }

    /// The `/proc` reads of the caller itself, checked against what was grabbed (may run
    /// later, on any thread).
    pub(super) fn finish(g: Grabbed) -> Identified {
        let unknown = |caller| Identified {
            caller,
            chain: None,
        };
        let Some((uid, pid)) = g.cred else {
            return unknown(Caller::unknown());
        };
        let mut caller = Caller {
            uid: Some(uid),
            pid: Some(pid).filter(|p| *p > 0),
            ..Caller::unknown()
        };
        let Some(pid) = caller.pid else {
            return unknown(caller);
        };
        let dir = match g.pidfd {
            Ok(pidfd) => {
                caller.check = Check::Pidfd;
                // Open first, then check: alive now means the pid was never reused meanwhile.
                proc_dir(pid).filter(|_| !exited(pidfd.as_fd()))
            }
            Err(e) if e.raw_os_error() == Some(libc::ENOPROTOOPT) => {
                caller.check = Check::StartTime;
                proc_dir(pid).filter(|d| {
                    stat(d.as_fd()).is_some_and(|s| g.accepted.is_some_and(|t| s.start <= t))
                })
            }
            // The kernel has SO_PEERPIDFD but no pidfd for the peer: it has exited.
            Err(_) => {
                caller.check = Check::Pidfd;
                None
            }
        };
        let Some(dir) = dir else {
            return unknown(caller);
        };
        caller.exe = exe(dir.as_fd());
        Identified {
            caller,
            chain: stat(dir.as_fd()),
        }
    }

    /// All three steps at once.
    #[cfg(test)]
    fn identify(sock: BorrowedFd<'_>) -> Caller {
        let cred = crate::sys::peer_credentials(sock).ok().map(|c| {
            (
                c.uid,
                c.pid.and_then(|p| u32::try_from(p).ok()).unwrap_or(0),
            )
        });
        finish(grab(sock, cred)).with_parents()
    }

    /// True once the process of `pidfd` has exited (a pidfd polls readable then).
    fn exited(pidfd: BorrowedFd<'_>) -> bool {
        use rustix::event::{PollFd, PollFlags, Timespec, poll};
        let mut fds = [PollFd::new(&pidfd, PollFlags::IN)];
        let zero = Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // An error (should not happen) counts as gone: better unknown than wrong.
        !matches!(poll(&mut fds, Some(&zero)), Ok(0))
    }

    pub(super) fn of_process(uid: u32, pid: u32, dir: &OwnedFd, check: Check) -> Caller {
        let mut caller = Caller {
            uid: Some(uid),
            pid: Some(pid),
            exe: exe(dir.as_fd()),
            check,
            ..Caller::unknown()
        };
        if caller.exe.is_some()
            && let Some(s) = stat(dir.as_fd())
        {
            caller.parents = parents(s);
        }
        caller
    }

    /// `/proc/<pid>`, held open: reads through it concern that process or fail.
    pub(super) fn proc_dir(pid: u32) -> Option<OwnedFd> {
        rustix::fs::open(
            format!("/proc/{pid}"),
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .ok()
    }

    fn exe(dir: BorrowedFd<'_>) -> Option<String> {
        let link = rustix::fs::readlinkat(dir, "exe", Vec::new()).ok()?;
        Some(String::from_utf8_lossy(link.as_bytes()).into_owned())
    }

    #[derive(Debug, Clone, Copy)]
    pub(super) struct Stat {
        ppid: u32,
        /// Start time in clock ticks since boot.
        start: u64,
    }

    fn stat(dir: BorrowedFd<'_>) -> Option<Stat> {
        let fd = rustix::fs::openat(dir, "stat", OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())
            .ok()?;
        let mut buf = [0u8; 1024];
        let n = rustix::io::read(&fd, &mut buf).ok()?;
        parse_stat(&buf[..n])
    }

    /// Fields 4 (ppid) and 22 (starttime) of `/proc/<pid>/stat`; the command name (field 2)
    /// may hold spaces and parentheses, so fields are counted from its last `)`.
    fn parse_stat(text: &[u8]) -> Option<Stat> {
        let close = text.iter().rposition(|b| *b == b')')?;
        let rest = std::str::from_utf8(&text[close + 1..]).ok()?;
        let mut fields = rest.split_ascii_whitespace();
        // After the name: state (3), ppid (4), … starttime (22).
        let ppid = fields.nth(1)?.parse().ok()?;
        let start = fields.nth(17)?.parse().ok()?;
        Some(Stat { ppid, start })
    }

    /// Up to [`PARENTS`] ancestors of the process whose `stat` this is, nearest first, each
    /// checked as described in the module documentation; the chain stops where that check
    /// fails or at pid 1's parent.
    pub(super) fn parents(mut child_stat: Stat) -> Vec<Process> {
        let mut out = Vec::with_capacity(PARENTS);
        while out.len() < PARENTS {
            let ppid = child_stat.ppid;
            if ppid == 0 {
                break;
            }
            let Some(dir) = proc_dir(ppid) else { break };
            // A parent is older than its child; whatever took its pid after it died is not.
            let Some(parent_stat) = stat(dir.as_fd()).filter(|s| s.start <= child_stat.start)
            else {
                break;
            };
            out.push(Process {
                pid: ppid,
                exe: exe(dir.as_fd()),
            });
            child_stat = parent_stat;
        }
        out
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use std::os::unix::net::UnixStream;

        #[test]
        fn parse_stat_counts_from_the_last_parenthesis() {
            let line =
                b"123 (a) b) (c) S 45 123 123 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 98765 0 0";
            let s = parse_stat(line).unwrap();
            assert_eq!((s.ppid, s.start), (45, 98765));
            assert!(parse_stat(b"garbage").is_none());
        }

        #[test]
        fn identifies_this_process_and_its_parents() {
            let (a, _b) = UnixStream::pair().unwrap();
            let c = identify(a.as_fd());
            assert_eq!(c.pid, Some(std::process::id()));
            assert_eq!(c.uid, Some(crate::sys::euid()));
            let me = std::env::current_exe().unwrap();
            assert_eq!(c.exe.as_deref(), me.to_str());
            // Our parent is who started the test binary.
            let ppid = std::os::unix::process::parent_id();
            assert_eq!(c.parents.first().map(|p| p.pid), Some(ppid));
            assert!(c.parents.len() <= PARENTS);
        }

        #[test]
        fn a_process_younger_than_the_connection_is_not_named() {
            // The fallback's rule, on a process started after "accept".
            let accepted = crate::sys::boot_ticks().unwrap();
            std::thread::sleep(std::time::Duration::from_millis(30));
            let mut child = std::process::Command::new("sleep")
                .arg("5")
                .spawn()
                .unwrap();
            let dir = proc_dir(child.id()).unwrap();
            let s = stat(dir.as_fd()).unwrap();
            let _ = child.kill();
            let _ = child.wait();
            assert!(s.start > accepted, "{} <= {accepted}", s.start);
        }

        #[test]
        fn a_dead_process_reads_as_exited_and_its_dir_goes_stale() {
            let mut child = std::process::Command::new("sleep")
                .arg("5")
                .spawn()
                .unwrap();
            let pid = child.id();
            let pidfd = rustix::process::pidfd_open(
                rustix::process::Pid::from_raw(pid as i32).unwrap(),
                rustix::process::PidfdFlags::empty(),
            )
            .unwrap();
            let dir = proc_dir(pid).unwrap();
            assert!(!exited(pidfd.as_fd()));
            assert!(exe(dir.as_fd()).is_some_and(|e| e.ends_with("sleep")));
            child.kill().unwrap();
            child.wait().unwrap();
            assert!(exited(pidfd.as_fd()));
            // Reaped: whatever gets the pid next, this handle shows nothing.
            assert!(exe(dir.as_fd()).is_none());
            assert!(stat(dir.as_fd()).is_none());
        }
    }
}
