//! Where client and agent meet, and how a client makes sure it meets its own agent: the socket
//! path, the safe-directory rule, the pid file and start lock beside the socket, the client's
//! time bounds, the peer check and the check of a pid before it is signalled.
//!
//! Both sides import this module; neither imports the other. It needs only std, libc, and
//! interprocess for the socket name (and, on Windows, the pipe), so any client program can
//! call [`connect`] without an argument parser or an async runtime.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// Environment variable naming the agent socket (a file path on Unix, a pipe name on Windows).
pub const SOCKET_ENV: &str = "WBL_SOCKET";

/// Environment variable bounding every wait of a client (seconds, may be fractional).
pub const TIMEOUT_ENV: &str = "WBL_CLIENT_TIMEOUT";

/// Default bound on each client wait: connecting, the hello, and each request.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// The bound on each client wait: `$WBL_CLIENT_TIMEOUT` seconds, else [`DEFAULT_TIMEOUT`].
pub fn client_timeout() -> Duration {
    std::env::var(TIMEOUT_ENV)
        .ok()
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0 && *s < 1e6)
        .map(Duration::from_secs_f64)
        .unwrap_or(DEFAULT_TIMEOUT)
}

/// When one client operation must be over. An operation — connecting, the hello and one
/// request, or git's one `get` with the connections it takes — waits at most one
/// [`client_timeout`] in all, not one per wait: every wait takes what is left of the same
/// deadline. Starting an agent is not counted (it has bounds of its own); the deadline starts
/// again after it ([`Deadline::renew`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline {
    at: std::time::Instant,
    bound: Duration,
}

impl Deadline {
    /// `bound` from now.
    pub fn after(bound: Duration) -> Deadline {
        Deadline {
            at: std::time::Instant::now() + bound,
            bound,
        }
    }

    /// [`client_timeout`] from now.
    pub fn from_env() -> Deadline {
        Deadline::after(client_timeout())
    }

    /// The whole bound of the operation (for messages: "did not answer within N s").
    pub fn bound(&self) -> Duration {
        self.bound
    }

    /// The time left; `None` once the deadline has passed.
    pub fn remaining(&self) -> Option<Duration> {
        self.at
            .checked_duration_since(std::time::Instant::now())
            .filter(|d| !d.is_zero())
    }

    /// The same bound again from now: after starting an agent, or for the next request on a
    /// connection.
    pub fn renew(&mut self) {
        *self = Deadline::after(self.bound);
    }
}

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
        // SAFETY: getuid has no preconditions and cannot fail.
        unsafe { libc::getuid() }.to_string()
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

// ---------------------------------------------------------------------------------------------
// The safe-directory rule.

/// What is wrong with the socket's directory. The agent refuses to listen there, the client
/// refuses to connect or start an agent there, and `wbl doctor` reports it, all with the same
/// words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DirProblem {
    /// A symbolic link: never followed, whoever made it.
    Symlink,
    /// Something other than a directory.
    NotADirectory,
    /// Owned by another user.
    NotOurs { owner: u32, me: u32 },
    /// Writable by group or others (`mode` is the permission bits).
    WritableByOthers { mode: u32 },
    /// Cannot be inspected.
    Inspect(String),
}

/// A socket directory the rule refuses, with what is wrong and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("refusing to use {}: {}; {}", dir.display(), problem.why(), problem.fix(dir))]
pub struct UnsafeDir {
    pub dir: PathBuf,
    pub problem: DirProblem,
}

/// The way out that always works: a private directory of one's own.
const OWN_DIR_FIX: &str = "set WBL_SOCKET to a path in a private directory of yours \
     (`mkdir -m 700 ~/.wbl && export WBL_SOCKET=~/.wbl/agent.sock`), or XDG_RUNTIME_DIR to \
     your login session's runtime directory";

impl DirProblem {
    /// What is wrong, in a few words.
    pub fn why(&self) -> String {
        match self {
            DirProblem::Symlink => {
                "it is a symbolic link, which wbl never follows (someone may be \
                 trying to intercept your keys)"
                    .to_owned()
            }
            DirProblem::NotADirectory => "it is not a directory".to_owned(),
            DirProblem::NotOurs { owner, me } => format!(
                "it belongs to uid {owner}, not to you (uid {me}); another user may be trying to \
                 intercept your keys"
            ),
            DirProblem::WritableByOthers { mode } => {
                format!("it is writable by other users (mode {mode:04o})")
            }
            DirProblem::Inspect(e) => format!("cannot inspect it: {e}"),
        }
    }

    /// How to fix it.
    pub fn fix(&self, dir: &Path) -> String {
        match self {
            DirProblem::WritableByOthers { .. } => {
                format!("`chmod 700 {}`, or {OWN_DIR_FIX}", dir.display())
            }
            _ => format!("do not use it: {OWN_DIR_FIX}"),
        }
    }
}

/// Checks the socket's directory without following a symbolic link: a real directory, ours,
/// not writable by group or others. `Ok(false)` when it does not exist yet.
pub fn check_dir(dir: &Path) -> Result<bool, UnsafeDir> {
    check_path(dir, true)
}

/// `path`, not followed if a symbolic link, is ours and not writable by group or others (and
/// a directory, when `dir`). `Ok(false)` when it does not exist.
fn check_path(path: &Path, dir: bool) -> Result<bool, UnsafeDir> {
    let refuse = |problem| UnsafeDir {
        dir: path.to_owned(),
        problem,
    };
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(refuse(DirProblem::Inspect(e.to_string()))),
    };
    if meta.file_type().is_symlink() {
        return Err(refuse(DirProblem::Symlink));
    }
    if dir && !meta.is_dir() {
        return Err(refuse(DirProblem::NotADirectory));
    }
    owned_and_private(&meta).map_err(refuse)?;
    Ok(true)
}

/// The part of the rule both a directory and a forwarded socket follow: ours (the effective
/// uid) and not writable by group or others.
fn owned_and_private(meta: &std::fs::Metadata) -> Result<(), DirProblem> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let me = euid();
        if meta.uid() != me {
            return Err(DirProblem::NotOurs {
                owner: meta.uid(),
                me,
            });
        }
        let mode = meta.mode() & 0o7777;
        if mode & 0o022 != 0 {
            return Err(DirProblem::WritableByOthers { mode });
        }
    }
    #[cfg(not(unix))]
    let _ = meta;
    Ok(())
}

/// The rule for a forwarded socket, which sshd binds with the mode its `StreamLocalBindMask`
/// gives (0600 by default, `srwxrwxrwx` with a mask of 0000): the socket file itself, not
/// followed if a symbolic link, must be ours, and either not writable by group or others, or
/// in a directory only we can enter (`wbl ssh` binds it in a fresh 0700 directory: see
/// [`private_to_us`]). `Ok(false)` when it does not exist (the session has ended).
pub fn check_forward(socket: &Path) -> Result<bool, UnsafeDir> {
    match check_path(socket, false) {
        Err(UnsafeDir {
            problem: DirProblem::WritableByOthers { .. },
            ..
        }) if socket.parent().is_some_and(private_to_us) => Ok(true),
        r => r,
    }
}

/// True when `dir`, not followed if a symbolic link, is a directory of ours that group and
/// others may not enter, read or write (mode 0700 or tighter): whatever is inside is out of
/// other users' reach (root's aside), whatever its own mode.
fn private_to_us(dir: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        std::fs::symlink_metadata(dir)
            .is_ok_and(|m| m.is_dir() && m.uid() == euid() && m.mode() & 0o077 == 0)
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        false
    }
}

/// Why [`prepare_dir`] failed.
#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    #[error(transparent)]
    Unsafe(#[from] UnsafeDir),
    #[error("cannot create directory {}: {source}", path.display())]
    Create {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Makes the socket's directory (0700) when it is missing, then checks it with
/// [`check_dir`]. A directory someone else made first in the meantime is checked like any
/// other, so the race gains an attacker nothing.
pub fn prepare_dir(dir: &Path) -> Result<(), PrepareError> {
    if check_dir(dir)? {
        return Ok(());
    }
    let create = |source| PrepareError::Create {
        path: dir.to_owned(),
        source,
    };
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        let mut b = std::fs::DirBuilder::new();
        b.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
        b.create(parent).map_err(create)?;
    }
    #[cfg_attr(not(unix), allow(unused_mut))]
    let mut b = std::fs::DirBuilder::new();
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
    match b.create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(create(e)),
    }
    if check_dir(dir)? {
        Ok(())
    } else {
        Err(create(std::io::ErrorKind::NotFound.into()))
    }
}

/// The effective uid (what the kernel checks a file's owner against).
#[cfg(unix)]
pub(crate) fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

// ---------------------------------------------------------------------------------------------
// Connecting to our own agent.

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
        let stream = unix::connect_bounded(&paths.socket, timeout).map_err(|e| {
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
        let me = euid();
        match unix::peer_uid(&stream) {
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
        match windows::same_user(pid) {
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
            ConnectError::UnsafeDir(u) => Some((
                format!("{}: {}", u.dir.display(), u.problem.why()),
                u.problem.fix(&u.dir),
            )),
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

// ---------------------------------------------------------------------------------------------
// Which pid may be signalled.

/// Checks that `pid` is the agent of `paths` before anything signals it: above 1, the holder
/// of the pid-file lock (the pid written there, and on Linux the holder `/proc/locks` names),
/// running as our user, from an executable named `wbl-agent`. The error says which check
/// failed.
pub fn verify_agent_pid(paths: &RuntimePaths, pid: u32) -> Result<(), String> {
    #[cfg(unix)]
    {
        unix::verify_agent_pid(paths, pid)
    }
    #[cfg(not(unix))]
    {
        let _ = paths;
        Err(format!("wbl does not signal processes here (pid {pid})"))
    }
}

#[cfg(unix)]
mod unix {
    //! The Unix parts: a connect with a deadline, the peer's uid, and what the kernel says
    //! about a pid.

    use std::io;
    use std::os::fd::{FromRawFd, OwnedFd};
    use std::os::unix::net::UnixStream;
    use std::path::Path;
    use std::time::{Duration, Instant};

    use super::RuntimePaths;

    /// `connect(2)` without blocking: a listener whose queue is full (a stopped or flooded
    /// agent) gives `EAGAIN`, retried every 10 ms until `timeout`.
    pub(super) fn connect_bounded(path: &Path, timeout: Duration) -> io::Result<UnixStream> {
        use std::os::unix::ffi::OsStrExt;
        // SAFETY: sockaddr_un is plain data; zero is a valid value.
        let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
        addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
        let bytes = path.as_os_str().as_bytes();
        if bytes.len() >= addr.sun_path.len() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the socket path is too long for a Unix socket",
            ));
        }
        for (dst, src) in addr.sun_path.iter_mut().zip(bytes) {
            *dst = *src as libc::c_char;
        }
        let deadline = Instant::now() + timeout;
        loop {
            // Linux takes close-on-exec and non-blocking with the socket: three calls fewer on
            // a helper's every run.
            #[cfg(any(target_os = "linux", target_os = "android"))]
            // SAFETY: plain socket(2) call.
            let raw = unsafe {
                libc::socket(
                    libc::AF_UNIX,
                    libc::SOCK_STREAM | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
                    0,
                )
            };
            #[cfg(not(any(target_os = "linux", target_os = "android")))]
            // SAFETY: plain socket(2) call.
            let raw = unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_STREAM, 0) };
            if raw < 0 {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: `raw` is a fresh descriptor we own.
            let fd = unsafe { OwnedFd::from_raw_fd(raw) };
            #[cfg(not(any(target_os = "linux", target_os = "android")))]
            // SAFETY: fcntl on our own descriptor.
            unsafe {
                libc::fcntl(raw, libc::F_SETFD, libc::FD_CLOEXEC);
                let fl = libc::fcntl(raw, libc::F_GETFL);
                libc::fcntl(raw, libc::F_SETFL, fl | libc::O_NONBLOCK);
            }
            let len = std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t;
            // SAFETY: `addr` is a valid sockaddr_un of `len` bytes.
            let rc = unsafe { libc::connect(raw, (&raw const addr).cast::<libc::sockaddr>(), len) };
            let err = (rc != 0).then(io::Error::last_os_error);
            match err.as_ref().and_then(io::Error::raw_os_error) {
                None => {}
                Some(libc::EINPROGRESS) => wait_connected(&fd, deadline)?,
                Some(libc::EAGAIN) => {
                    if Instant::now() >= deadline {
                        return Err(io::ErrorKind::TimedOut.into());
                    }
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                }
                Some(_) => return Err(err.unwrap_or_else(|| io::ErrorKind::Other.into())),
            }
            // Blocking again; the read and write timeouts bound each wait from here on.
            // SAFETY: fcntl on our own descriptor.
            unsafe {
                #[cfg(any(target_os = "linux", target_os = "android"))]
                // A fresh socket has no other status flag.
                libc::fcntl(raw, libc::F_SETFL, 0);
                #[cfg(not(any(target_os = "linux", target_os = "android")))]
                {
                    let fl = libc::fcntl(raw, libc::F_GETFL);
                    libc::fcntl(raw, libc::F_SETFL, fl & !libc::O_NONBLOCK);
                }
            }
            return Ok(UnixStream::from(fd));
        }
    }

    /// Waits for a non-blocking connect to finish, until `deadline`.
    fn wait_connected(fd: &OwnedFd, deadline: Instant) -> io::Result<()> {
        use std::os::fd::AsRawFd;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(io::ErrorKind::TimedOut.into());
            }
            let mut pfd = libc::pollfd {
                fd: fd.as_raw_fd(),
                events: libc::POLLOUT,
                revents: 0,
            };
            let ms = left.as_millis().clamp(1, i32::MAX as u128) as libc::c_int;
            // SAFETY: one valid pollfd.
            let n = unsafe { libc::poll(&mut pfd, 1, ms) };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            if n == 0 {
                continue;
            }
            let mut err: libc::c_int = 0;
            let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
            // SAFETY: SO_ERROR writes one c_int.
            let rc = unsafe {
                libc::getsockopt(
                    fd.as_raw_fd(),
                    libc::SOL_SOCKET,
                    libc::SO_ERROR,
                    (&raw mut err).cast(),
                    &mut len,
                )
            };
            if rc != 0 {
                return Err(io::Error::last_os_error());
            }
            return if err == 0 {
                Ok(())
            } else {
                Err(io::Error::from_raw_os_error(err))
            };
        }
    }

    /// The effective uid of the process at the other end.
    pub(super) fn peer_uid(stream: &UnixStream) -> io::Result<u32> {
        use std::os::fd::AsRawFd;
        let fd = stream.as_raw_fd();
        #[cfg(any(target_os = "linux", target_os = "android"))]
        {
            // SAFETY: ucred is plain data; SO_PEERCRED fills it.
            let mut cred: libc::ucred = unsafe { std::mem::zeroed() };
            let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
            // SAFETY: a valid out-pointer of `len` bytes.
            let rc = unsafe {
                libc::getsockopt(
                    fd,
                    libc::SOL_SOCKET,
                    libc::SO_PEERCRED,
                    (&raw mut cred).cast(),
                    &mut len,
                )
            };
            if rc != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(cred.uid)
        }
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        {
            let mut uid: libc::uid_t = 0;
            let mut gid: libc::gid_t = 0;
            // SAFETY: two valid out-pointers.
            if unsafe { libc::getpeereid(fd, &mut uid, &mut gid) } != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(uid)
        }
    }

    pub(super) fn verify_agent_pid(paths: &RuntimePaths, pid: u32) -> Result<(), String> {
        use std::io::Read;
        use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
        let Ok(raw) = libc::pid_t::try_from(pid) else {
            return Err(format!("pid {pid} is out of range"));
        };
        if raw <= 1 {
            return Err(format!("pid {pid} is never an agent"));
        }
        let pidfile = paths.pidfile();
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&pidfile)
            .map_err(|e| format!("cannot open {}: {e}", pidfile.display()))?;
        match file.try_lock_shared() {
            Ok(()) => {
                return Err(format!(
                    "no agent holds the lock on {}, so pid {pid} is not the agent",
                    pidfile.display()
                ));
            }
            Err(std::fs::TryLockError::WouldBlock) => {}
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(format!(
                    "cannot check the lock on {}: {e}",
                    pidfile.display()
                ));
            }
        }
        let mut text = String::new();
        let _ = file.read_to_string(&mut text);
        if text.trim().parse::<u32>().ok() != Some(pid) {
            return Err(format!(
                "pid {pid} is not the one in {} ({})",
                pidfile.display(),
                text.trim()
            ));
        }
        let meta = file
            .metadata()
            .map_err(|e| format!("cannot inspect {}: {e}", pidfile.display()))?;
        if meta.uid() != super::euid() {
            return Err(format!("{} is not yours", pidfile.display()));
        }
        #[cfg(target_os = "linux")]
        {
            if let Some(holder) = flock_holder(meta.ino())
                && holder != pid
            {
                return Err(format!(
                    "the lock on {} is held by pid {holder}, not {pid}",
                    pidfile.display()
                ));
            }
            let proc = std::path::PathBuf::from(format!("/proc/{pid}"));
            let owner = std::fs::metadata(&proc)
                .map_err(|e| format!("pid {pid} is gone: {e}"))?
                .uid();
            if owner != super::euid() {
                return Err(format!("pid {pid} runs as uid {owner}, not as you"));
            }
            let exe = std::fs::read_link(proc.join("exe"))
                .map_err(|e| format!("cannot read the executable of pid {pid}: {e}"))?;
            let name = exe
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            if !name.starts_with("wbl-agent") {
                return Err(format!("pid {pid} runs {}, not wbl-agent", exe.display()));
            }
        }
        #[cfg(target_os = "macos")]
        {
            // SAFETY: proc_bsdinfo is plain data; proc_pidinfo fills at most its size.
            let mut info: libc::proc_bsdinfo = unsafe { std::mem::zeroed() };
            let size = std::mem::size_of::<libc::proc_bsdinfo>() as libc::c_int;
            // SAFETY: a valid out-pointer of `size` bytes.
            let n = unsafe {
                libc::proc_pidinfo(raw, libc::PROC_PIDTBSDINFO, 0, (&raw mut info).cast(), size)
            };
            if n != size {
                return Err(format!("pid {pid} is gone"));
            }
            if info.pbi_uid != super::euid() {
                return Err(format!(
                    "pid {pid} runs as uid {}, not as you",
                    info.pbi_uid
                ));
            }
            let mut buf = vec![0u8; libc::PROC_PIDPATHINFO_MAXSIZE as usize];
            // SAFETY: `buf` has the size passed.
            let n = unsafe { libc::proc_pidpath(raw, buf.as_mut_ptr().cast(), buf.len() as u32) };
            if n <= 0 {
                return Err(format!("cannot read the executable of pid {pid}"));
            }
            buf.truncate(n as usize);
            let exe = std::path::PathBuf::from(String::from_utf8_lossy(&buf).into_owned());
            let name = exe
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            if !name.starts_with("wbl-agent") {
                return Err(format!("pid {pid} runs {}, not wbl-agent", exe.display()));
            }
        }
        // SAFETY: signal 0 only checks that the process exists and may be signalled by us.
        if unsafe { libc::kill(raw, 0) } != 0 {
            return Err(format!("pid {pid} cannot be signalled by you"));
        }
        Ok(())
    }

    /// The pid `/proc/locks` names as holding the `flock` on inode `ino`, when listed.
    #[cfg(target_os = "linux")]
    fn flock_holder(ino: u64) -> Option<u32> {
        let text = std::fs::read_to_string("/proc/locks").ok()?;
        text.lines().find_map(|line| {
            // "1: FLOCK  ADVISORY  WRITE 1234 00:2a:5678 0 EOF"
            let f: Vec<&str> = line.split_whitespace().collect();
            let i = f.iter().position(|w| *w == "FLOCK")?;
            let pid = f.get(i + 3)?.parse().ok()?;
            let dev_ino = f.get(i + 4)?;
            (dev_ino.rsplit(':').next()?.parse::<u64>().ok()? == ino).then_some(pid)
        })
    }
}

#[cfg(windows)]
mod windows {
    //! Windows: who owns the process serving the pipe.

    use windows_sys::Win32::Foundation::{CloseHandle, HANDLE};
    use windows_sys::Win32::Security::{EqualSid, GetTokenInformation, TOKEN_QUERY, TokenUser};
    use windows_sys::Win32::System::Threading::{
        GetCurrentProcess, OpenProcess, OpenProcessToken, PROCESS_QUERY_LIMITED_INFORMATION,
    };

    /// A handle closed on drop.
    struct Handle(HANDLE);
    impl Drop for Handle {
        fn drop(&mut self) {
            // SAFETY: a handle we opened and own.
            unsafe { CloseHandle(self.0) };
        }
    }

    /// The TOKEN_USER of a process, as raw bytes (the SID points inside them).
    fn token_user(process: HANDLE) -> std::io::Result<Vec<u8>> {
        let mut token: HANDLE = std::ptr::null_mut();
        // SAFETY: a valid process handle and out-pointer.
        if unsafe { OpenProcessToken(process, TOKEN_QUERY, &mut token) } == 0 {
            return Err(std::io::Error::last_os_error());
        }
        let token = Handle(token);
        let mut len = 0u32;
        // SAFETY: asking for the size only.
        unsafe { GetTokenInformation(token.0, TokenUser, std::ptr::null_mut(), 0, &mut len) };
        let mut buf = vec![0u8; len as usize];
        // SAFETY: `buf` has `len` bytes.
        if unsafe {
            GetTokenInformation(token.0, TokenUser, buf.as_mut_ptr().cast(), len, &mut len)
        } == 0
        {
            return Err(std::io::Error::last_os_error());
        }
        Ok(buf)
    }

    /// True when process `pid` runs as the same user as this one.
    pub(super) fn same_user(pid: u32) -> std::io::Result<bool> {
        // SAFETY: OpenProcess with a pid and query rights; a null handle is an error.
        let process = unsafe { OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, 0, pid) };
        if process.is_null() {
            return Err(std::io::Error::last_os_error());
        }
        let process = Handle(process);
        let theirs = token_user(process.0)?;
        // SAFETY: the pseudo-handle of this process needs no closing.
        let ours = token_user(unsafe { GetCurrentProcess() })?;
        let sid = |buf: &[u8]| {
            // SAFETY: the buffer holds a TOKEN_USER as filled in by GetTokenInformation.
            unsafe {
                (*(buf.as_ptr() as *const windows_sys::Win32::Security::TOKEN_USER))
                    .User
                    .Sid
            }
        };
        // SAFETY: two valid SIDs inside live buffers.
        Ok(unsafe { EqualSid(sid(&theirs), sid(&ours)) } != 0)
    }
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

    #[cfg(unix)]
    #[test]
    fn the_directory_rule_never_follows_a_symlink() {
        use std::os::unix::fs::PermissionsExt;
        let t = tempfile::tempdir().unwrap();
        let real = t.path().join("real");
        prepare_dir(&real).unwrap();
        let mode = std::fs::metadata(&real).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        assert!(check_dir(&real).unwrap());
        let link = t.path().join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let e = check_dir(&link).unwrap_err();
        assert_eq!(e.problem, DirProblem::Symlink);
        assert!(prepare_dir(&link).is_err());
        std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o777)).unwrap();
        let e = check_dir(&real).unwrap_err();
        assert_eq!(e.problem, DirProblem::WritableByOthers { mode: 0o777 });
        assert!(e.to_string().contains("chmod 700"), "{e}");
        let file = t.path().join("file");
        std::fs::write(&file, "").unwrap();
        assert_eq!(
            check_dir(&file).unwrap_err().problem,
            DirProblem::NotADirectory
        );
        assert!(!check_dir(&t.path().join("missing")).unwrap());
    }

    #[test]
    fn a_deadline_is_spent_once_and_renewed_with_its_whole_bound() {
        let bound = Duration::from_secs(600);
        let past = std::time::Instant::now()
            .checked_sub(Duration::from_secs(1))
            .unwrap();
        let mut d = Deadline { at: past, bound };
        assert_eq!(d.remaining(), None);
        assert_eq!(d.bound(), bound);
        d.renew();
        let left = d.remaining().unwrap();
        assert!(left <= bound && left > bound / 2, "{left:?}");
        assert_eq!(Deadline::after(Duration::ZERO).remaining(), None);
    }

    /// A forward that sshd bound `srwxrwxrwx` (`StreamLocalBindMask 0000`) is usable only in a
    /// directory of ours that nobody else may enter.
    #[cfg(unix)]
    #[test]
    fn a_loose_forward_is_usable_only_in_a_private_directory() {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path, m| std::fs::set_permissions(p, std::fs::Permissions::from_mode(m));
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("wbl-fwd-x");
        std::fs::create_dir(&dir).unwrap();
        let sock = dir.join("wbl-fwd-agent.sock");
        let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        mode(&sock, 0o600).unwrap();
        mode(&dir, 0o755).unwrap();
        assert!(check_forward(&sock).unwrap(), "a private socket anywhere");
        mode(&sock, 0o777).unwrap();
        for shared in [0o755, 0o711, 0o750] {
            mode(&dir, shared).unwrap();
            let e = check_forward(&sock).unwrap_err();
            assert_eq!(e.problem, DirProblem::WritableByOthers { mode: 0o777 });
        }
        mode(&dir, 0o700).unwrap();
        assert!(
            check_forward(&sock).unwrap(),
            "a loose socket in a 0700 directory"
        );
        // A symbolic link to a private directory is not one.
        let link = t.path().join("link");
        std::os::unix::fs::symlink(&dir, &link).unwrap();
        assert!(check_forward(&link.join("wbl-fwd-agent.sock")).is_err());
        assert!(!check_forward(&dir.join("gone.sock")).unwrap());
    }

    #[cfg(unix)]
    #[test]
    fn pids_that_are_not_our_agent_are_never_approved() {
        let t = tempfile::tempdir().unwrap();
        let paths = RuntimePaths {
            socket: t.path().join("agent.sock"),
        };
        for pid in [0, 1, u32::MAX] {
            assert!(verify_agent_pid(&paths, pid).is_err(), "{pid}");
        }
        // A pid file nobody holds the lock of: not an agent, even for our own pid.
        std::fs::write(paths.pidfile(), format!("{}\n", std::process::id())).unwrap();
        let e = verify_agent_pid(&paths, std::process::id()).unwrap_err();
        assert!(e.contains("no agent holds the lock"), "{e}");
        // Holding the lock ourselves: the pid matches, but this test binary is not wbl-agent.
        let f = std::fs::File::open(paths.pidfile()).unwrap();
        f.lock().unwrap();
        #[cfg(target_os = "linux")]
        {
            let e = verify_agent_pid(&paths, std::process::id()).unwrap_err();
            assert!(e.contains("not wbl-agent"), "{e}");
        }
    }
}
