//! macOS only: no debugger for the agent, a peer's pid, and what the kernel says about a pid.

use std::os::fd::RawFd;
use std::path::PathBuf;

/// `ptrace(PT_DENY_ATTACH)`: no debugger may attach to this process from now on.
pub(super) fn deny_attach() {
    const PT_DENY_ATTACH: libc::c_int = 31;
    // SAFETY: PT_DENY_ATTACH takes no address or data.
    unsafe { libc::ptrace(PT_DENY_ATTACH, 0, std::ptr::null_mut(), 0) };
}

/// The pid of the peer of Unix socket `fd` (`LOCAL_PEERPID`).
pub(super) fn peer_pid(fd: RawFd) -> Option<i32> {
    let mut pid: libc::pid_t = 0;
    let mut len = std::mem::size_of::<libc::pid_t>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `pid`, a pid_t of that size.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_LOCAL,
            libc::LOCAL_PEERPID,
            (&raw mut pid).cast(),
            &mut len,
        )
    };
    (rc == 0).then_some(pid)
}

/// The uid process `pid` runs as (`proc_pidinfo`); `None` when it is gone.
pub fn process_uid(pid: u32) -> Option<u32> {
    let raw = libc::pid_t::try_from(pid).ok()?;
    let mut info = std::mem::MaybeUninit::<libc::proc_bsdinfo>::zeroed();
    let size = std::mem::size_of::<libc::proc_bsdinfo>() as libc::c_int;
    // SAFETY: a valid out-pointer of `size` bytes.
    let n = unsafe {
        libc::proc_pidinfo(
            raw,
            libc::PROC_PIDTBSDINFO,
            0,
            info.as_mut_ptr().cast(),
            size,
        )
    };
    if n != size {
        return None;
    }
    // SAFETY: proc_bsdinfo is plain data (zeroed is valid) and proc_pidinfo filled all of it.
    Some(unsafe { info.assume_init() }.pbi_uid)
}

/// The executable of process `pid` (`proc_pidpath`); `None` when it cannot be read.
pub fn process_exe(pid: u32) -> Option<PathBuf> {
    let raw = libc::pid_t::try_from(pid).ok()?;
    let mut buf = vec![0u8; libc::PROC_PIDPATHINFO_MAXSIZE as usize];
    // SAFETY: `buf` has the size passed.
    let n = unsafe { libc::proc_pidpath(raw, buf.as_mut_ptr().cast(), buf.len() as u32) };
    if n <= 0 {
        return None;
    }
    buf.truncate(n as usize);
    Some(PathBuf::from(String::from_utf8_lossy(&buf).into_owned()))
}
