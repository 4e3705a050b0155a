//! Every path wbl uses, in one place: the agent's socket and the files kept beside it, and the
//! state directory holding the access log.
//!
//! `WBL_SOCKET` moves the runtime files at once, so tests and several instances never collide;
//! `XDG_STATE_HOME` moves the state directory.

use std::path::{Path, PathBuf};

/// Environment variable naming the agent socket (a file path on Unix, a pipe name on Windows).
pub const SOCKET_ENV: &str = "WBL_SOCKET";

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

    /// The socket as a string for display and for Windows pipe names.
    pub fn socket_display(&self) -> String {
        self.socket.display().to_string()
    }
}

/// Where the agent keeps what outlives it (the access log): `$XDG_STATE_HOME/wbl` when that
/// is an absolute path, else `~/.local/state/wbl` (the XDG default) on Linux and other Unix,
/// `~/Library/Logs/wbl` on macOS (where launchd's logs of the agent already go), and
/// `%LOCALAPPDATA%\wbl` on Windows. `None` without a home directory.
pub fn state_dir() -> Option<PathBuf> {
    resolve_state_dir(
        std::env::var_os("XDG_STATE_HOME").map(PathBuf::from),
        home_dir(),
    )
}

/// The rule of [`state_dir`] without reading the environment (for tests).
pub fn resolve_state_dir(xdg_state: Option<PathBuf>, home: Option<PathBuf>) -> Option<PathBuf> {
    if let Some(dir) = xdg_state.filter(|p| p.is_absolute()) {
        return Some(dir.join("wbl"));
    }
    #[cfg(windows)]
    {
        let _ = home;
        directories::BaseDirs::new().map(|d| d.data_local_dir().join("wbl"))
    }
    #[cfg(target_os = "macos")]
    {
        home.map(|h| h.join("Library/Logs/wbl"))
    }
    #[cfg(not(any(windows, target_os = "macos")))]
    {
        home.map(|h| h.join(".local/state/wbl"))
    }
}

/// The access log: `access.log` in [`state_dir`]; rotated copies are `access.log.1` (newest)
/// to `access.log.N` beside it.
pub fn access_log() -> Option<PathBuf> {
    state_dir().map(|d| d.join("access.log"))
}

/// The current user's id on Unix, the user name elsewhere: keeps per-user paths apart.
pub fn user_tag() -> String {
    #[cfg(unix)]
    {
        // SAFETY: getuid has no preconditions and cannot fail.
        unsafe { libc::getuid() }.to_string()
    }
    #[cfg(not(unix))]
    {
        std::env::var("USERNAME").unwrap_or_else(|_| "user".into())
    }
}

/// The user's home directory, from `directories` (which honours `$HOME` on Unix).
pub fn home_dir() -> Option<PathBuf> {
    #[cfg(unix)]
    if let Some(home) = std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        return Some(PathBuf::from(home));
    }
    directories::BaseDirs::new().map(|d| d.home_dir().to_path_buf())
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

    #[cfg(all(unix, not(target_os = "macos")))]
    #[test]
    fn state_dir_follows_xdg() {
        let home = Some(PathBuf::from("/home/u"));
        assert_eq!(
            resolve_state_dir(Some("/s".into()), home.clone()),
            Some(PathBuf::from("/s/wbl"))
        );
        // A relative XDG_STATE_HOME is ignored, as the XDG spec says.
        assert_eq!(
            resolve_state_dir(Some("rel".into()), home.clone()),
            Some(PathBuf::from("/home/u/.local/state/wbl"))
        );
        assert_eq!(
            resolve_state_dir(None, home),
            Some(PathBuf::from("/home/u/.local/state/wbl"))
        );
        assert_eq!(resolve_state_dir(None, None), None);
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
