//! Linux only: the peer's pidfd, clock ticks since boot, the kernel keyring's listing, and the
//! sockets a service manager passes.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// `SO_PEERPIDFD` (Linux 6.5); not in the `libc` crate yet. Its value is 77 everywhere but on
/// SPARC.
#[cfg(not(target_arch = "sparc64"))]
const SO_PEERPIDFD: libc::c_int = 77;
#[cfg(target_arch = "sparc64")]
const SO_PEERPIDFD: libc::c_int = 0x56;

/// A pidfd of the peer of a Unix socket, from the kernel (no pid lookup in between). A kernel
/// without `SO_PEERPIDFD` says `ENOPROTOOPT`.
pub fn peer_pidfd(sock: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    let mut fd: libc::c_int = -1;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `fd`, a c_int of that size.
    let r = unsafe {
        libc::getsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            SO_PEERPIDFD,
            (&raw mut fd).cast(),
            &mut len,
        )
    };
    if r != 0 || fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just gave us this new descriptor; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Now, in clock ticks since boot (the unit of `/proc/<pid>/stat`'s start time), rounded up:
/// a process started in this very tick still counts as older.
pub fn boot_ticks() -> Option<u64> {
    let ts = rustix::time::clock_gettime(rustix::time::ClockId::Boottime);
    // SAFETY: sysconf has no memory effects.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let hz = u64::try_from(hz).ok().filter(|h| *h > 0)?;
    let secs = u64::try_from(ts.tv_sec).ok()?;
    let nanos = u64::try_from(ts.tv_nsec).ok()?;
    Some(secs * hz + (nanos * hz).div_ceil(1_000_000_000))
}

/// `KEYCTL_READ` and the special id of the user keyring (`man 2 keyctl`).
const KEYCTL_READ: libc::c_long = 11;
const KEY_SPEC_USER_KEYRING: libc::c_long = -4;

/// Serial numbers of every key linked into the user keyring (`keyctl(KEYCTL_READ)`): asks for
/// the size first and retries until the buffer fits.
pub fn user_keyring_ids() -> io::Result<Vec<i32>> {
    let mut ids: Vec<i32> = Vec::new();
    loop {
        let cap_bytes = ids.capacity() * std::mem::size_of::<i32>();
        // SAFETY: the kernel writes at most `cap_bytes` bytes into the vector's spare capacity
        // (a null pointer with length 0 only asks for the size).
        let needed = unsafe {
            libc::syscall(
                libc::SYS_keyctl,
                KEYCTL_READ,
                KEY_SPEC_USER_KEYRING,
                if cap_bytes == 0 {
                    std::ptr::null_mut()
                } else {
                    ids.as_mut_ptr()
                },
                cap_bytes,
            )
        };
        if needed < 0 {
            return Err(io::Error::last_os_error());
        }
        let needed = needed as usize;
        if needed <= cap_bytes {
            // SAFETY: the kernel initialised the first `needed` bytes (whole i32 ids).
            unsafe { ids.set_len(needed / std::mem::size_of::<i32>()) };
            return Ok(ids);
        }
        // Grow with some slack: keys may be added between the two calls.
        ids = Vec::with_capacity(needed / std::mem::size_of::<i32>() + 64);
    }
}

/// True when this process runs one thread (`/proc/self/task` has one entry).
fn single_threaded() -> bool {
    std::fs::read_dir("/proc/self/task").is_ok_and(|d| d.count() == 1)
}

/// Takes the descriptors a service manager passed (`LISTEN_PID`, `LISTEN_FDS`,
/// `LISTEN_FDNAMES`, through `sd-notify`) with their names, and unsets those variables so no
/// child inherits them. Changing the environment is sound only while no other thread runs:
/// refused (an error) when another one does.
pub fn take_listen_fds() -> io::Result<Vec<(OwnedFd, String)>> {
    const VARS: [&str; 3] = ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"];
    if VARS.iter().all(|v| std::env::var_os(v).is_none()) {
        return Ok(Vec::new()); // nothing passed, nothing to unset
    }
    if !single_threaded() {
        return Err(io::Error::other(
            "other threads run already; the sockets must be taken first thing",
        ));
    }
    // SAFETY: this is the only thread (checked just above; only it could start another), so
    // nothing reads the environment while it changes.
    let fds: Vec<(i32, String)> =
        unsafe { sd_notify::listen_fds_with_names_and_unset_env() }?.collect();
    Ok(fds
        .into_iter()
        .map(|(raw, name)| {
            // SAFETY: the service manager handed this descriptor to this process for exactly
            // this use (LISTEN_PID matched our pid), and nothing else owns it.
            (unsafe { OwnedFd::from_raw_fd(raw) }, name)
        })
        .collect())
}
