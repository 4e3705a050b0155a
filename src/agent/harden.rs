//! Process hardening for the agent: no core dumps, no ptrace by other processes of the user
//! (the calls themselves are [`crate::sys::harden`]'s), and a panic hook that never prints a
//! secret.

/// Best effort: failures are logged, not fatal (a missing hardening call must not lose keys).
/// Not dumpable (Linux), no debugger (macOS), no core file ever.
pub fn harden_process() {
    let done = crate::sys::harden(crate::sys::Hardening {
        core_files: crate::sys::CoreFiles::Off,
        not_dumpable: true,
        deny_debugger: true,
    });
    for call in done.failed {
        tracing::warn!("{call} failed");
    }
}

/// Raises the soft limit on open files to the hard limit, so many concurrent clients do not
/// run the agent out of descriptors. Best effort.
pub fn raise_fd_limit() {
    #[cfg(unix)]
    crate::sys::raise_fd_limit();
}

/// Locks the pages holding `secret` into RAM so they are never written to swap. Best effort:
/// a failure (e.g. `RLIMIT_MEMLOCK` reached) is ignored. Pages are not unlocked again — they
/// are heap pages the allocator reuses, and the set that ever held a secret stays small.
pub fn lock_memory(secret: &[u8]) {
    #[cfg(unix)]
    crate::sys::lock_memory(secret);
    #[cfg(not(unix))]
    let _ = secret;
}

/// A panic hook that prints where, never what: a panic message could carry a secret.
pub fn quiet_panics(program: &'static str) {
    std::panic::set_hook(Box::new(move |info| {
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        eprintln!("{program}: internal error{at}; please report it");
    }));
    // Test hook (tests/security.rs): panic with a payload, to show the payload never prints.
    if let Some(payload) = std::env::var_os("WBL_TEST_PANIC") {
        panic!("test panic carrying {}", payload.to_string_lossy());
    }
}
