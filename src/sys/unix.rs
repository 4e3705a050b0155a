//! Unix (Linux and macOS): ids, signals, resource limits, the peer of a Unix socket, a bounded
//! connect, the standard fds of a C `main`, and the local time.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use rustix::process::{Pid, Resource, Rlimit};

use super::{CoreFiles, Hardened, Hardening};

/// The effective uid (what the kernel checks a file's owner against).
pub fn euid() -> u32 {
    rustix::process::geteuid().as_raw()
}

/// The real uid (launchd's `gui/<uid>` domain, per-user path names).
pub fn uid() -> u32 {
    rustix::process::getuid().as_raw()
}

/// `pid` as the kernel's type: never 0 (the process group) nor beyond `i32`.
fn pid_of(pid: u32) -> Option<Pid> {
    i32::try_from(pid).ok().and_then(Pid::from_raw)
}

/// True when process `pid` exists and we may signal it (`kill(pid, 0)`); false for pid 0 and
/// out-of-range pids.
pub fn can_signal(pid: u32) -> bool {
    pid_of(pid).is_some_and(|p| rustix::process::test_kill_process(p).is_ok())
}

/// A signal [`signal`] sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    Terminate,
    Kill,
}

/// Sends `sig` to process `pid` (never to a group: pid 0 and out-of-range pids are refused).
pub fn signal(pid: u32, sig: Signal) -> io::Result<()> {
    let pid = pid_of(pid).ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
    let sig = match sig {
        Signal::Terminate => rustix::process::Signal::TERM,
        Signal::Kill => rustix::process::Signal::KILL,
    };
    rustix::process::kill_process(pid, sig).map_err(io::Error::from)
}

/// The one hardening function: core files, dumpability and debuggers, as `h` says. Best
/// effort: what failed is in [`Hardened::failed`].
pub fn harden(h: Hardening) -> Hardened {
    let mut done = Hardened::default();
    #[cfg(target_os = "linux")]
    if h.not_dumpable
        && rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable)
            .is_err()
    {
        done.failed.push("prctl(PR_SET_DUMPABLE, 0)");
    }
    #[cfg(target_os = "macos")]
    if h.deny_debugger {
        super::macos::deny_attach();
    }
    let core = |current, maximum| Rlimit { current, maximum };
    match h.core_files {
        CoreFiles::Unchanged => {}
        CoreFiles::SoftOff => {
            let lim = rustix::process::getrlimit(Resource::Core);
            done.core_soft_before = Some(lim.current);
            if rustix::process::setrlimit(Resource::Core, core(Some(0), lim.maximum)).is_err() {
                done.failed.push("setrlimit(RLIMIT_CORE, 0)");
            }
        }
        CoreFiles::Off => {
            done.core_soft_before = Some(rustix::process::getrlimit(Resource::Core).current);
            if rustix::process::setrlimit(Resource::Core, core(Some(0), Some(0))).is_err() {
                done.failed.push("setrlimit(RLIMIT_CORE, 0)");
            }
        }
    }
    let _ = (h.not_dumpable, h.deny_debugger);
    done
}

/// Sets the soft core-file limit back to `soft` (`None`: unlimited), the hard one kept.
pub fn set_core_soft_limit(soft: Option<u64>) {
    let lim = rustix::process::getrlimit(Resource::Core);
    let _ = rustix::process::setrlimit(
        Resource::Core,
        Rlimit {
            current: soft,
            maximum: lim.maximum,
        },
    );
}

/// Raises the soft limit on open files to the hard limit. Best effort.
pub fn raise_fd_limit() {
    let lim = rustix::process::getrlimit(Resource::Nofile);
    let below = match (lim.current, lim.maximum) {
        (Some(cur), Some(max)) => cur < max,
        (Some(_), None) => true,
        (None, _) => false,
    };
    if below {
        let _ = rustix::process::setrlimit(
            Resource::Nofile,
            Rlimit {
                current: lim.maximum,
                maximum: lim.maximum,
            },
        );
    }
}

/// Locks the pages holding `secret` into RAM so they are never written to swap. Best effort.
pub fn lock_memory(secret: &[u8]) {
    if secret.is_empty() {
        return;
    }
    // SAFETY: sysconf has no memory effects.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(4096) as usize;
    let start = secret.as_ptr() as usize & !(page - 1);
    let end = secret.as_ptr() as usize + secret.len();
    // SAFETY: mlock only changes paging attributes of pages we own; the range covers
    // `secret`, rounded out to page boundaries, all of which lie in mapped memory.
    let _ = unsafe { libc::mlock(start as *const libc::c_void, end - start) };
}

/// Whether we may write (and, for a directory, enter) `p`, asked of the kernel without
/// writing (`access(2)`, with the real ids).
pub fn may_write(p: &Path) -> io::Result<()> {
    use rustix::fs::Access;
    let mode = if p.is_dir() {
        Access::WRITE_OK | Access::EXEC_OK
    } else {
        Access::WRITE_OK
    };
    rustix::fs::access(p, mode).map_err(io::Error::from)
}

/// The credentials of the process at the other end of a Unix socket, as the kernel recorded
/// them when it connected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerCred {
    /// Its effective uid.
    pub uid: u32,
    /// Its pid; `Some(0)` on Linux when it lives in a pid namespace we cannot see into.
    pub pid: Option<i32>,
}

/// The one reader of a peer's credentials (the client's check of its agent, the agent's of
/// its callers): `SO_PEERCRED` on Linux, `getpeereid` and `LOCAL_PEERPID` on macOS. Not
/// rustix's `socket_peercred`: its pid type cannot hold the 0 the kernel gives for a peer in
/// another pid namespace.
pub fn peer_credentials(sock: BorrowedFd<'_>) -> io::Result<PeerCred> {
    let fd = sock.as_raw_fd();
    #[cfg(target_os = "linux")]
    {
        let mut cred = libc::ucred {
            pid: 0,
            uid: 0,
            gid: 0,
        };
        let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
        // SAFETY: `cred` is a valid, writable ucred of `len` bytes; SO_PEERCRED fills it.
        let rc = unsafe {
            libc::getsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_PEERCRED,
                (&raw mut cred).cast(),
                &mut len,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(PeerCred {
            uid: cred.uid,
            pid: Some(cred.pid),
        })
    }
    #[cfg(not(target_os = "linux"))]
    {
        let mut uid: libc::uid_t = 0;
        let mut gid: libc::gid_t = 0;
        // SAFETY: two valid out-pointers.
        if unsafe { libc::getpeereid(fd, &mut uid, &mut gid) } != 0 {
            return Err(io::Error::last_os_error());
        }
        #[cfg(target_os = "macos")]
        let pid = super::macos::peer_pid(fd);
        #[cfg(not(target_os = "macos"))]
        let pid = None;
        Ok(PeerCred { uid, pid })
    }
}

/// `connect(2)` to a Unix socket without blocking: a listener whose queue is full (a stopped
/// or flooded agent) gives `EAGAIN`, retried every 10 ms until `timeout`. The stream returned
/// is blocking and close-on-exec.
pub fn connect_bounded(path: &Path, timeout: Duration) -> io::Result<UnixStream> {
    #[cfg(not(target_os = "linux"))]
    use rustix::fs::fcntl_getfl;
    use rustix::fs::{OFlags, fcntl_setfl};
    use rustix::io::Errno;
    use rustix::net::{AddressFamily, SocketAddrUnix, SocketType};
    // sockaddr_un's sun_path, with its NUL.
    const SUN_PATH: usize = {
        #[cfg(target_os = "linux")]
        {
            108
        }
        #[cfg(not(target_os = "linux"))]
        {
            104
        }
    };
    use std::os::unix::ffi::OsStrExt;
    if path.as_os_str().as_bytes().len() >= SUN_PATH {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the socket path is too long for a Unix socket",
        ));
    }
    let addr = SocketAddrUnix::new(path)?;
    let deadline = Instant::now() + timeout;
    loop {
        // Linux takes close-on-exec and non-blocking with the socket: three calls fewer on a
        // helper's every run.
        #[cfg(target_os = "linux")]
        let fd = rustix::net::socket_with(
            AddressFamily::UNIX,
            SocketType::STREAM,
            rustix::net::SocketFlags::CLOEXEC | rustix::net::SocketFlags::NONBLOCK,
            None,
        )?;
        #[cfg(not(target_os = "linux"))]
        let fd = {
            let fd = rustix::net::socket(AddressFamily::UNIX, SocketType::STREAM, None)?;
            rustix::io::fcntl_setfd(&fd, rustix::io::FdFlags::CLOEXEC)?;
            let fl = fcntl_getfl(&fd)?;
            fcntl_setfl(&fd, fl | OFlags::NONBLOCK)?;
            fd
        };
        match rustix::net::connect(&fd, &addr) {
            Ok(()) => {}
            Err(Errno::INPROGRESS) => wait_connected(fd.as_fd(), deadline)?,
            Err(Errno::AGAIN) => {
                if Instant::now() >= deadline {
                    return Err(io::ErrorKind::TimedOut.into());
                }
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
            Err(e) => return Err(e.into()),
        }
        // Blocking again; the read and write timeouts bound each wait from here on.
        #[cfg(target_os = "linux")]
        // A fresh socket has no other status flag.
        let _ = fcntl_setfl(&fd, OFlags::empty());
        #[cfg(not(target_os = "linux"))]
        if let Ok(fl) = fcntl_getfl(&fd) {
            let _ = fcntl_setfl(&fd, fl & !OFlags::NONBLOCK);
        }
        return Ok(UnixStream::from(fd));
    }
}

/// Waits for a non-blocking connect to finish, until `deadline`.
fn wait_connected(fd: BorrowedFd<'_>, deadline: Instant) -> io::Result<()> {
    use rustix::event::{PollFd, PollFlags, Timespec, poll};
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        let left = left.max(Duration::from_millis(1));
        let ts = Timespec {
            tv_sec: left.as_secs().try_into().unwrap_or(i64::MAX),
            tv_nsec: left.subsec_nanos().into(),
        };
        let mut fds = [PollFd::new(&fd, PollFlags::OUT)];
        match poll(&mut fds, Some(&ts)) {
            Err(rustix::io::Errno::INTR) | Ok(0) => continue,
            Err(e) => return Err(e.into()),
            Ok(_) => {}
        }
        return match rustix::net::sockopt::socket_error(fd)? {
            Ok(()) => Ok(()),
            Err(e) => Err(e.into()),
        };
    }
}

/// Blocks until `fd` is readable or hung up, or polling fails. Unbounded: callers wait on a
/// thread of their own.
pub fn wait_readable(fd: BorrowedFd<'_>) {
    use rustix::event::{PollFd, PollFlags, poll};
    let mut fds = [PollFd::new(&fd, PollFlags::IN)];
    while let Err(rustix::io::Errno::INTR) = poll(&mut fds, None) {}
}

/// Signals blocked in this thread (and the threads it starts afterwards), to be taken with
/// [`BlockedSignals::wait`].
#[derive(Clone, Copy)]
pub struct BlockedSignals(libc::sigset_t);

impl BlockedSignals {
    /// Blocks `signals` in the calling thread. Call it before starting the threads that must
    /// not take them.
    pub fn block(signals: &[libc::c_int]) -> io::Result<BlockedSignals> {
        let mut set = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
        // SAFETY: sigemptyset initialises the set it is given.
        unsafe { libc::sigemptyset(set.as_mut_ptr()) };
        // SAFETY: initialised by sigemptyset just above.
        let mut set = unsafe { set.assume_init() };
        for &sig in signals {
            // SAFETY: a valid, initialised set; an invalid signal number is an error, not UB.
            if unsafe { libc::sigaddset(&mut set, sig) } != 0 {
                return Err(io::Error::last_os_error());
            }
        }
        // SAFETY: a valid set; the old mask is not asked for (null).
        let rc = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
        if rc != 0 {
            return Err(io::Error::from_raw_os_error(rc));
        }
        Ok(BlockedSignals(set))
    }

    /// Waits for one of the signals (`sigwait`); which one it was.
    pub fn wait(&self) -> libc::c_int {
        let mut sig: libc::c_int = 0;
        // SAFETY: a valid set, and a local to write the signal into.
        unsafe { libc::sigwait(&self.0, &mut sig) };
        sig
    }
}

extern "C" fn ignore_signal(_: libc::c_int) {}

/// Installs a handler that does nothing for each of `signals`: this process outlives them,
/// while a child it starts afterwards gets the default action back when it execs (which
/// `SIG_IGN` would not give it).
pub fn outlive_signals(signals: &[libc::c_int]) {
    for &sig in signals {
        // SAFETY: installs a handler that does nothing; it touches no memory and is
        // async-signal-safe.
        unsafe { libc::signal(sig, ignore_signal as *const () as libc::sighandler_t) };
    }
}

/// Ignores SIGPIPE, so writing to a closed pipe is an `EPIPE` error, not a silent death.
pub fn ignore_sigpipe() {
    // SAFETY: setting a signal's disposition to SIG_IGN has no memory effects.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
}

/// Opens `/dev/null` on each of fds 0–2 that is closed (poll reports `POLLNVAL`), as std's
/// runtime does before `main`: the agent's socket can then never become "stdout".
pub fn sanitize_standard_fds() {
    let mut fds = [0, 1, 2].map(|fd| libc::pollfd {
        fd,
        events: 0,
        revents: 0,
    });
    let polled = loop {
        // SAFETY: poll on a valid array of three pollfd structs, zero timeout.
        let r = unsafe { libc::poll(fds.as_mut_ptr(), 3, 0) };
        if r != -1 {
            break true;
        }
        if io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            break false;
        }
    };
    for pfd in fds {
        let closed = if polled {
            pfd.revents & libc::POLLNVAL != 0
        } else {
            // poll failed (e.g. RLIMIT_NOFILE below 3): ask fcntl, as std does.
            // SAFETY: F_GETFD on an fd number has no memory effects.
            let r = unsafe { libc::fcntl(pfd.fd, libc::F_GETFD) };
            r == -1 && io::Error::last_os_error().raw_os_error() == Some(libc::EBADF)
        };
        // SAFETY: open with a NUL-terminated path; the lowest free fd is the closed one, and
        // the new descriptor is deliberately left open for the life of the process.
        if closed && unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDWR, 0) } == -1 {
            std::process::abort();
        }
    }
}

/// Set once [`take_inherited_fd`] has taken its descriptor.
static INHERITED_TAKEN: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Takes ownership of descriptor `fd`, which the process that started us passed for one use
/// (the agent's ready pipe): once per process, and only an open descriptor above 2. `None`
/// otherwise.
pub fn take_inherited_fd(fd: RawFd) -> Option<OwnedFd> {
    if fd <= 2 || INHERITED_TAKEN.swap(true, std::sync::atomic::Ordering::SeqCst) {
        return None;
    }
    // SAFETY: F_GETFD on an fd number has no memory effects.
    if unsafe { libc::fcntl(fd, libc::F_GETFD) } == -1 {
        return None;
    }
    // SAFETY: the descriptor is open, was handed to this process by its parent for this one
    // use (no other part of the process knows its number), and is taken at most once.
    Some(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Makes `cmd`'s child start a new session (`setsid`) and find `fd` (a descriptor of ours
/// that stays open until the spawn) as descriptor `as_fd` without close-on-exec.
pub fn detach_passing_fd(cmd: &mut std::process::Command, fd: BorrowedFd<'_>, as_fd: RawFd) {
    use std::os::unix::process::CommandExt;
    let raw = fd.as_raw_fd();
    // SAFETY: only async-signal-safe calls (setsid, dup2, fcntl) between fork and exec, on
    // descriptor numbers only.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setsid() < 0 {
                return Err(io::Error::last_os_error());
            }
            if raw == as_fd {
                let flags = libc::fcntl(raw, libc::F_GETFD);
                libc::fcntl(raw, libc::F_SETFD, flags & !libc::FD_CLOEXEC);
            } else if libc::dup2(raw, as_fd) < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// A time of day in the local time zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalTime {
    pub year: i32,
    pub month: i32,
    pub day: i32,
    pub hour: i32,
    pub minute: i32,
    pub second: i32,
}

/// `secs` since the epoch in the local time zone (`localtime_r`); `None` when out of range.
pub fn local_time(secs: u64) -> Option<LocalTime> {
    // musl's libc marks time_t deprecated to announce that it becomes 64-bit there; the
    // checked conversion is right at either width.
    #[allow(deprecated)]
    let secs = libc::time_t::try_from(secs).ok()?;
    let mut tm = std::mem::MaybeUninit::<libc::tm>::zeroed();
    // SAFETY: localtime_r reads one time_t and writes one tm, both ours.
    if unsafe { libc::localtime_r(&secs, tm.as_mut_ptr()) }.is_null() {
        return None;
    }
    // SAFETY: zeroed (a valid tm: integers and, on some systems, a null zone pointer), then
    // filled by localtime_r.
    let tm = unsafe { tm.assume_init() };
    Some(LocalTime {
        year: tm.tm_year + 1900,
        month: tm.tm_mon + 1,
        day: tm.tm_mday,
        hour: tm.tm_hour,
        minute: tm.tm_min,
        second: tm.tm_sec,
    })
}
