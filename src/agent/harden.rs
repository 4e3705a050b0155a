//! Process hardening for the agent: no core dumps, no ptrace by other processes of the user.

/// Best effort: failures are logged, not fatal (a missing hardening call must not lose keys).
pub fn harden_process() {
    #[cfg(target_os = "linux")]
    // SAFETY: prctl(PR_SET_DUMPABLE, 0) and setrlimit with a valid struct have no memory effects.
    unsafe {
        if libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) != 0 {
            tracing::warn!("prctl(PR_SET_DUMPABLE, 0) failed");
        }
    }
    #[cfg(target_os = "macos")]
    // SAFETY: PT_DENY_ATTACH takes no address or data.
    unsafe {
        const PT_DENY_ATTACH: libc::c_int = 31;
        libc::ptrace(PT_DENY_ATTACH, 0, std::ptr::null_mut(), 0);
    }
    #[cfg(unix)]
    // SAFETY: a valid rlimit struct on the stack.
    unsafe {
        let zero = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::setrlimit(libc::RLIMIT_CORE, &zero) != 0 {
            tracing::warn!("setrlimit(RLIMIT_CORE, 0) failed");
        }
    }
}

/// Raises the soft limit on open files to the hard limit, so many concurrent clients do not
/// run the agent out of descriptors. Best effort.
pub fn raise_fd_limit() {
    #[cfg(unix)]
    // SAFETY: getrlimit/setrlimit with a valid struct on the stack.
    unsafe {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            let _ = libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

/// Locks the pages holding `secret` into RAM so they are never written to swap. Best effort:
/// a failure (e.g. `RLIMIT_MEMLOCK` reached) is ignored. Pages are not unlocked again — they
/// are heap pages the allocator reuses, and the set that ever held a secret stays small.
pub fn lock_memory(secret: &[u8]) {
    #[cfg(unix)]
    if !secret.is_empty() {
        // SAFETY: mlock only changes paging attributes of pages we own; the range covers
        // `secret`, rounded out to page boundaries, all of which lie in mapped heap memory.
        unsafe {
            let page = libc::sysconf(libc::_SC_PAGESIZE).max(4096) as usize;
            let start = secret.as_ptr() as usize & !(page - 1);
            let end = secret.as_ptr() as usize + secret.len();
            let _ = libc::mlock(start as *const libc::c_void, end - start);
        }
    }
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
