//! The C `main` of the two helper programs (`git-credential-wbl`, `docker-credential-wbl`) on
//! Linux with glibc: git starts its helper twice per fetch and push, and std's runtime start-up
//! spends a measurable part of that process (BENCHMARKS.md) finding the main thread's stack in
//! `/proc/self/maps` for a stack-overflow message. Each helper's `main` is one line calling
//! [`c_main`]; the unsafe code lives here, once.
//!
//! - kept: fds 0, 1 and 2 are opened on `/dev/null` when closed, so the agent's socket can
//!   never become "stdout" and receive what the helper prints (std's `sanitize_standard_fds`);
//!   SIGPIPE is ignored, so writing to a closed pipe is an `EPIPE` error, not a silent death;
//!   stdout is flushed before exit.
//! - skipped: the SIGSEGV handler and alternate stack that turn a stack overflow into a
//!   message. Without it a stack overflow is still caught by the kernel's guard page, as a
//!   plain SIGSEGV.
//! - not needed: arguments and environment (glibc hands them to std through `.init_array`,
//!   which runs before any `main`).
//!
//! `tests/cli_fast_path.rs` fails if any of the kept guarantees goes.

use std::io::Write;

/// Opens `/dev/null` on each of fds 0–2 that is closed (poll reports `POLLNVAL`).
fn sanitize_standard_fds() {
    let mut fds = [0, 1, 2].map(|fd| libc::pollfd {
        fd,
        events: 0,
        revents: 0,
    });
    // SAFETY: poll on a valid array of three pollfd structs, zero timeout.
    let polled = loop {
        let r = unsafe { libc::poll(fds.as_mut_ptr(), 3, 0) };
        if r != -1 {
            break true;
        }
        if std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
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
            r == -1 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EBADF)
        };
        // SAFETY: open with a NUL-terminated path; the lowest free fd is the closed one.
        if closed && unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDWR, 0) } == -1 {
            std::process::abort();
        }
    }
}

/// What a helper's C `main` returns: `run`'s exit status, after std's guarantees above.
pub fn c_main(run: fn() -> u8) -> libc::c_int {
    sanitize_standard_fds();
    // SAFETY: setting a signal's disposition to SIG_IGN has no memory effects.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    let status = run();
    let _ = std::io::stdout().flush();
    libc::c_int::from(status)
}
