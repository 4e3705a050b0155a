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
/// `LISTEN_PID`, `LISTEN_FDS` and `LISTEN_FDNAMES` so that no child inherits them. Call it
/// first thing in `main`, before any other thread exists (the environment changes): it fails
/// otherwise.
#[cfg(target_os = "linux")]
pub fn take_inherited_socket() -> Result<Option<Inherited>, ActivationError> {
    let mut fds = crate::sys::take_listen_fds().map_err(ActivationError::Env)?;
    match fds.len() {
        0 => Ok(None),
        1 => {
            let (fd, name) = fds.pop().expect("one element");
            check_listening_unix_stream(&fd)?;
            Ok(Some(Inherited { fd, name }))
        }
        n => Err(ActivationError::Count(n)),
    }
}

/// Without systemd there is nothing to inherit.
#[cfg(not(target_os = "linux"))]
pub fn take_inherited_socket() -> Result<Option<Inherited>, ActivationError> {
    Ok(None)
}

/// Checks that `fd` is an `AF_UNIX` `SOCK_STREAM` socket in the listening state.
#[cfg(target_os = "linux")]
fn check_listening_unix_stream(fd: &std::os::fd::OwnedFd) -> Result<(), ActivationError> {
    use rustix::net::{AddressFamily, SocketType, sockopt};
    use std::os::fd::AsRawFd;
    let bad = |why: String| ActivationError::NotAListener {
        fd: fd.as_raw_fd(),
        why,
    };
    let io = std::io::Error::from;
    let domain =
        sockopt::socket_domain(fd).map_err(|e| bad(format!("is not a socket: {}", io(e))))?;
    if domain != AddressFamily::UNIX {
        return Err(bad(format!(
            "is not a Unix socket (family {}); use ListenStream=<path>",
            domain.as_raw()
        )));
    }
    let kind = sockopt::socket_type(fd).map_err(|e| bad(io(e).to_string()))?;
    if kind != SocketType::STREAM {
        return Err(bad("is not a stream socket; use ListenStream=".into()));
    }
    let listening = sockopt::socket_acceptconn(fd).map_err(|e| bad(io(e).to_string()))?;
    if !listening {
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
