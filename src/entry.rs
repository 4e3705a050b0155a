//! The C `main` of the two helper programs (`git-credential-wbl`, `docker-credential-wbl`) on
//! Linux with glibc: git starts its helper twice per fetch and push, and std's runtime start-up
//! spends a measurable part of that process (BENCHMARKS.md) finding the main thread's stack in
//! `/proc/self/maps` for a stack-overflow message. Each helper's `main` is one line calling
//! [`c_main`]; its system calls are in [`crate::sys`].
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

/// What a helper's C `main` returns: `run`'s exit status, after std's guarantees above.
pub fn c_main(run: fn() -> u8) -> libc::c_int {
    crate::sys::sanitize_standard_fds();
    crate::sys::ignore_sigpipe();
    let status = run();
    let _ = std::io::stdout().flush();
    libc::c_int::from(status)
}
