//! Started by a service manager: the listening socket systemd passes (`LISTEN_PID`,
//! `LISTEN_FDS`, `LISTEN_FDNAMES`) and the readiness report it waits for (`READY=1` on
//! `$NOTIFY_SOCKET`, for `Type=notify`).
//!
//! Both protocols come from the `sd-notify` crate (maintained, no dependency but `libc`, and it
//! sets `FD_CLOEXEC` on the inherited descriptors the way `sd_listen_fds(3)` does); this module
//! only checks that what we inherited really is a listening Unix stream socket. An inherited
//! socket is never unlinked nor rebound: connections systemd queued on it before we started
//! are accepted like any other (an agent that rebinds would leave the first client hanging).

/// Why an inherited socket cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ActivationError {
    #[error("cannot read the sockets passed by the service manager (LISTEN_FDS): {0}")]
    Env(std::io::Error),
    #[error(
        "the service manager passed {0} sockets; wbl-agent expects exactly one (check ListenStream= in wbl-agent.socket)"
    )]
    Count(usize),
    #[error("the socket passed by the service manager (fd {fd}) {why}")]
    NotAListener { fd: i32, why: String },
}

/// A listening socket inherited from the service manager.
#[derive(Debug)]
pub struct Inherited {
    #[cfg(unix)]
    pub fd: std::os::fd::OwnedFd,
    /// Its `FileDescriptorName=` (systemd's default is the socket unit's name).
    pub name: String,
}

/// Takes the socket passed by systemd-style socket activation, if any, and unsets
/// `LISTEN_PID`, `LISTEN_FDS` and `LISTEN_FDNAMES` so that no child inherits them.
///
/// # Safety
///
/// Changes the environment: call it before any other thread exists (first thing in `main`,
/// before the async runtime starts).
#[cfg(target_os = "linux")]
pub unsafe fn take_inherited_socket() -> Result<Option<Inherited>, ActivationError> {
    use std::os::fd::{FromRawFd, OwnedFd};

    // SAFETY: the caller guarantees that no other thread runs (see above).
    let fds: Vec<(i32, String)> = unsafe { sd_notify::listen_fds_with_names_and_unset_env() }
        .map_err(ActivationError::Env)?
        .collect();
    match fds.len() {
        0 => Ok(None),
        1 => {
            let (raw, name) = fds.into_iter().next().expect("one element");
            check_listening_unix_stream(raw)?;
            // SAFETY: the service manager handed this descriptor to this process for exactly
            // this use; LISTEN_FDS/LISTEN_PID matched our pid and nothing else owns it.
            let fd = unsafe { OwnedFd::from_raw_fd(raw) };
            Ok(Some(Inherited { fd, name }))
        }
        n => Err(ActivationError::Count(n)),
    }
}

/// Without systemd there is nothing to inherit.
///
/// # Safety
///
/// No requirements; `unsafe` only to match the Linux signature.
#[cfg(not(target_os = "linux"))]
pub unsafe fn take_inherited_socket() -> Result<Option<Inherited>, ActivationError> {
    Ok(None)
}

/// Checks that `fd` is an `AF_UNIX` `SOCK_STREAM` socket in the listening state.
#[cfg(target_os = "linux")]
fn check_listening_unix_stream(fd: i32) -> Result<(), ActivationError> {
    let get = |opt: libc::c_int| -> std::io::Result<libc::c_int> {
        let mut value: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: value and len are valid for writes of the sizes given.
        let r = unsafe {
            libc::getsockopt(
                fd,
                libc::SOL_SOCKET,
                opt,
                (&raw mut value).cast(),
                &raw mut len,
            )
        };
        if r == 0 {
            Ok(value)
        } else {
            Err(std::io::Error::last_os_error())
        }
    };
    let bad = |why: String| ActivationError::NotAListener { fd, why };
    let domain = get(libc::SO_DOMAIN).map_err(|e| bad(format!("is not a socket: {e}")))?;
    if domain != libc::AF_UNIX {
        return Err(bad(format!(
            "is not a Unix socket (family {domain}); use ListenStream=<path>"
        )));
    }
    let kind = get(libc::SO_TYPE).map_err(|e| bad(e.to_string()))?;
    if kind != libc::SOCK_STREAM {
        return Err(bad("is not a stream socket; use ListenStream=".into()));
    }
    let listening = get(libc::SO_ACCEPTCONN).map_err(|e| bad(e.to_string()))?;
    if listening == 0 {
        return Err(bad(
            "is not listening (Accept=yes is not supported; use Accept=no)".into(),
        ));
    }
    Ok(())
}

/// Tells the service manager we are ready to serve (`READY=1`), when it asked to be told
/// (`$NOTIFY_SOCKET` is set, as it is for `Type=notify`). Elsewhere does nothing.
pub fn notify_ready() {
    #[cfg(target_os = "linux")]
    notify(&[
        sd_notify::NotifyState::Ready,
        sd_notify::NotifyState::Status("serving"),
    ]);
}

/// Tells the service manager we are shutting down (`STOPPING=1`).
pub fn notify_stopping() {
    #[cfg(target_os = "linux")]
    notify(&[sd_notify::NotifyState::Stopping]);
}

#[cfg(target_os = "linux")]
fn notify(states: &[sd_notify::NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::warn!(error = %e, "could not notify the service manager");
    }
}
