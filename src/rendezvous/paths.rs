//! Where the agent listens and keeps its runtime files: the socket path (from the
//! environment), the files beside it, and the socket's name for interprocess.

use std::path::{Path, PathBuf};

use super::SOCKET_ENV;

/// How the file name of a forwarded socket on the remote side starts (`wbl ssh` binds
/// `/tmp/wbl-fwd-<32 hex digits>.sock` there). The client never starts an agent for a socket
/// named like this: a forwarded socket is never replaced by a local agent.
pub const FORWARD_PREFIX: &str = "wbl-fwd-";

/// True when `socket` is named like a forwarded socket ([`FORWARD_PREFIX`]).
pub fn is_forwarded(socket: &Path) -> bool {
    socket
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with(FORWARD_PREFIX))
}

/// Where the agent listens and keeps its runtime files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimePaths {
    /// The socket file (Unix) or the pipe name (Windows).
    pub socket: PathBuf,
}

impl RuntimePaths {
    /// Paths from the environment: `$WBL_SOCKET`, else `$XDG_RUNTIME_DIR/wbl/agent.sock`, else
    /// `$TMPDIR/wbl-<uid>/agent.sock`.
    pub fn from_env() -> Self {
        Self::resolve(
            std::env::var_os(SOCKET_ENV).map(PathBuf::from),
            std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from),
            std::env::temp_dir(),
        )
    }

    /// The resolution rule itself, without reading the environment (for tests).
    pub fn resolve(socket: Option<PathBuf>, runtime: Option<PathBuf>, tmp: PathBuf) -> Self {
        if let Some(socket) = socket.filter(|p| !p.as_os_str().is_empty()) {
            return RuntimePaths { socket };
        }
        let dir = match runtime.filter(|p| p.is_absolute()) {
            Some(runtime) => runtime.join("wbl"),
            None => tmp.join(format!("wbl-{}", user_tag())),
        };
        RuntimePaths {
            socket: dir.join("agent.sock"),
        }
    }

    /// The directory holding the socket and its sibling files.
    pub fn dir(&self) -> &Path {
        self.socket.parent().unwrap_or(Path::new("."))
    }

    fn sibling(&self, suffix: &str) -> PathBuf {
        let mut name = self
            .socket
            .file_name()
            .map(|n| n.to_os_string())
            .unwrap_or_else(|| "agent.sock".into());
        name.push(suffix);
        self.socket.with_file_name(name)
    }

    /// The agent's pid file; holding its lock means "I am the agent for this socket".
    pub fn pidfile(&self) -> PathBuf {
        self.sibling(".pid")
    }

    /// Lock file clients hold while auto-starting an agent, so two never start one each.
    pub fn autostart_lock(&self) -> PathBuf {
        self.sibling(".start.lock")
    }

    /// Log file of an agent started in the background.
    pub fn logfile(&self) -> PathBuf {
        self.sibling(".log")
    }

    /// The restricted socket of forward `id` (`wbl ssh`), beside the agent's own.
    pub fn forward_socket(&self, id: &str) -> PathBuf {
        self.sibling(&format!(".fwd-{id}"))
    }

    /// The socket as a string for display and for Windows pipe names.
    pub fn socket_display(&self) -> String {
        self.socket.display().to_string()
    }
}

/// The current user's id on Unix, the user name elsewhere: keeps per-user paths apart.
pub fn user_tag() -> String {
    #[cfg(unix)]
    {
        crate::sys::uid().to_string()
    }
    #[cfg(not(unix))]
    {
        std::env::var("USERNAME").unwrap_or_else(|_| "user".into())
    }
}

/// The socket name for interprocess: a file path on Unix, a namespaced pipe on Windows.
pub fn socket_name(
    paths: &RuntimePaths,
) -> std::io::Result<interprocess::local_socket::Name<'static>> {
    use interprocess::local_socket::prelude::*;
    #[cfg(unix)]
    {
        use interprocess::local_socket::GenericFilePath;
        paths.socket.clone().to_fs_name::<GenericFilePath>()
    }
    #[cfg(not(unix))]
    {
        use interprocess::local_socket::GenericNamespaced;
        pipe_name(paths).to_ns_name::<GenericNamespaced>()
    }
}

/// The Windows pipe name for these paths.
#[cfg(not(unix))]
fn pipe_name(paths: &RuntimePaths) -> String {
    let name: String = paths
        .socket_display()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("wbl-{name}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_socket_wins() {
        let p = RuntimePaths::resolve(
            Some("/x/s.sock".into()),
            Some("/run/user/1".into()),
            "/tmp".into(),
        );
        assert_eq!(p.socket, PathBuf::from("/x/s.sock"));
        assert_eq!(p.pidfile(), PathBuf::from("/x/s.sock.pid"));
        assert_eq!(p.logfile(), PathBuf::from("/x/s.sock.log"));
        assert_eq!(p.dir(), Path::new("/x"));
    }

    #[test]
    fn runtime_dir_then_tmp() {
        let p = RuntimePaths::resolve(None, Some("/run/user/1".into()), "/tmp".into());
        assert_eq!(p.socket, PathBuf::from("/run/user/1/wbl/agent.sock"));
        let p = RuntimePaths::resolve(Some("".into()), Some("relative".into()), "/tmp".into());
        assert_eq!(
            p.socket,
            PathBuf::from(format!("/tmp/wbl-{}/agent.sock", user_tag()))
        );
    }
}
