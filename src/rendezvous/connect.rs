//! Connecting to our own agent: within a bound, only through a directory the rule accepts,
//! and only to a peer that runs as our own user.

use std::time::Duration;

#[cfg(not(unix))]
use super::socket_name;
#[cfg(not(unix))]
use super::user_tag;
use super::{OWN_DIR_FIX, RuntimePaths, TIMEOUT_ENV, UnsafeDir};
#[cfg(unix)]
use super::{check_dir, check_forward, is_forwarded};

/// The client's end of the connection.
#[cfg(unix)]
pub type ClientStream = std::os::unix::net::UnixStream;
/// The client's end of the connection.
#[cfg(not(unix))]
pub type ClientStream = interprocess::local_socket::Stream;

/// Why [`connect`] gave no connection.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// Nothing listens there (no directory, no socket, or a stale socket file).
    #[error("no wbl-agent listens on {socket}")]
    NotRunning { socket: String },
    /// The directory fails the rule: nothing was sent, nothing is started.
    #[error(transparent)]
    UnsafeDir(#[from] UnsafeDir),
    /// Something answers, but not as us.
    #[error(
        "refusing to talk to {socket}: it is served by {who}, not by you ({me}); another user may be trying to intercept your keys, so nothing was sent. {OWN_DIR_FIX}"
    )]
    Impostor {
        socket: String,
        who: String,
        me: String,
    },
    /// The peer's identity could not be read: treated as an impostor.
    #[error(
        "refusing to talk to {socket}: cannot tell who serves it ({error}), so nothing was sent"
    )]
    PeerUnknown { socket: String, error: String },
    #[error(
        "wbl-agent did not accept the connection on {socket} within {:.0} s ({TIMEOUT_ENV} changes the bound); `wbl doctor` checks the agent",
        timeout.as_secs_f64()
    )]
    Timeout { socket: String, timeout: Duration },
    #[error("cannot connect to {socket}: {error}")]
    Io {
        socket: String,
        error: std::io::Error,
    },
}

/// Connects to the agent of `paths`, only if it is ours: the directory passes [`check_dir`]
/// (checked before connecting), connecting takes at most `timeout`, and the peer runs as our
/// own user (`SO_PEERCRED` / `getpeereid`; the pipe server's process owner on Windows). The
/// stream's reads and writes are bounded by `timeout` too. Nothing is sent.
pub fn connect(paths: &RuntimePaths, timeout: Duration) -> Result<ClientStream, ConnectError> {
    let socket = paths.socket_display();
    #[cfg(unix)]
    {
        // A forward (`wbl ssh`) lives in a shared directory such as /tmp: the file itself must
        // be ours and private, and the peer check below must still find our own user.
        let usable = if is_forwarded(&paths.socket) {
            check_forward(&paths.socket)?
        } else {
            check_dir(paths.dir())?
        };
        if !usable {
            return Err(ConnectError::NotRunning { socket });
        }
        let stream = crate::sys::connect_bounded(&paths.socket, timeout).map_err(|e| {
            use std::io::ErrorKind::*;
            match e.kind() {
                NotFound | ConnectionRefused => ConnectError::NotRunning {
                    socket: socket.clone(),
                },
                TimedOut => ConnectError::Timeout {
                    socket: socket.clone(),
                    timeout,
                },
                _ => ConnectError::Io {
                    socket: socket.clone(),
                    error: e,
                },
            }
        })?;
        let me = crate::sys::euid();
        match crate::sys::peer_credentials(std::os::fd::AsFd::as_fd(&stream)).map(|c| c.uid) {
            Ok(uid) if uid == me => {}
            Ok(uid) => {
                return Err(ConnectError::Impostor {
                    socket,
                    who: format!("uid {uid}"),
                    me: format!("uid {me}"),
                });
            }
            Err(e) => {
                return Err(ConnectError::PeerUnknown {
                    socket,
                    error: e.to_string(),
                });
            }
        }
        let io = |error| ConnectError::Io {
            socket: paths.socket_display(),
            error,
        };
        stream.set_read_timeout(Some(timeout)).map_err(io)?;
        stream.set_write_timeout(Some(timeout)).map_err(io)?;
        Ok(stream)
    }
    #[cfg(not(unix))]
    {
        use interprocess::local_socket::traits::{Stream as _, StreamCommon as _};
        let name = socket_name(paths).map_err(|error| ConnectError::Io {
            socket: socket.clone(),
            error,
        })?;
        // Named pipes have no connect timeout in interprocess; a pipe with no free instance
        // fails at once (ERROR_PIPE_BUSY) rather than blocking.
        let _ = timeout;
        let stream = ClientStream::connect(name).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => ConnectError::NotRunning {
                socket: socket.clone(),
            },
            _ => ConnectError::Io {
                socket: socket.clone(),
                error: e,
            },
        })?;
        let pid = stream
            .peer_creds()
            .ok()
            .and_then(|c| c.pid())
            .ok_or_else(|| ConnectError::PeerUnknown {
                socket: socket.clone(),
                error: "no server process id".into(),
            })?;
        match crate::sys::same_user(pid) {
            Ok(true) => Ok(stream),
            Ok(false) => Err(ConnectError::Impostor {
                socket,
                who: format!("process {pid} of another user"),
                me: user_tag(),
            }),
            Err(e) => Err(ConnectError::PeerUnknown {
                socket,
                error: e.to_string(),
            }),
        }
    }
}

impl ConnectError {
    /// For a refusal (unsafe directory, another user's peer): what is wrong and how to fix it,
    /// as separate lines (what `wbl doctor` prints). `None` for the other errors.
    pub fn refusal(&self) -> Option<(String, String)> {
        match self {
            ConnectError::UnsafeDir(u) => {
                Some((format!("{}: {}", u.dir.display(), u.problem.why()), u.fix()))
            }
            ConnectError::Impostor { socket, who, me } => Some((
                format!(
                    "{socket} is served by {who}, not by you ({me}); another user may be trying to intercept your keys"
                ),
                OWN_DIR_FIX.to_owned(),
            )),
            ConnectError::PeerUnknown { socket, error } => Some((
                format!("cannot tell who serves {socket}: {error}"),
                OWN_DIR_FIX.to_owned(),
            )),
            _ => None,
        }
    }
}
