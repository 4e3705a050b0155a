//! Claiming the agent's socket safely: a private directory (the rule is
//! `crate::rendezvous`'s, shared with the client), a pid-file lock that makes one agent per
//! socket, stale sockets of ours replaced, anything else at the socket path left alone, a
//! live agent never displaced.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use interprocess::local_socket::{ListenerOptions, tokio::Listener};

use crate::rendezvous::{self, PrepareError, RuntimePaths, UnsafeDir};

/// Why the agent could not claim its socket.
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    #[error("another wbl-agent is already running for {socket}{}", pid.map(|p| format!(" (pid {p})")).unwrap_or_default())]
    AlreadyRunning { socket: String, pid: Option<u32> },
    #[error(transparent)]
    UnsafeDirectory(#[from] UnsafeDir),
    #[error(
        "refusing to replace {}: {why}; it is not a socket of yours, so it was left alone: remove it yourself if you know what it is, or set WBL_SOCKET to another path",
        path.display()
    )]
    NotOurSocket { path: PathBuf, why: String },
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

fn io_err(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> BindError {
    let path = path.to_owned();
    move |source| BindError::Io { what, path, source }
}

/// The claimed socket: dropping it removes the socket file if it is still the one we bound
/// (never an inherited one), and releases the pid-file lock.
pub struct Claimed {
    pub listener: Option<Listener>,
    #[cfg_attr(not(unix), allow(dead_code))]
    socket: PathBuf,
    #[cfg(unix)]
    identity: Option<(u64, u64)>,
    pidfile: PathBuf,
    _lock: File,
}

impl Claimed {
    pub fn take_listener(&mut self) -> Listener {
        self.listener
            .take()
            .expect("listener taken twice (a bug in wbl-agent)")
    }
}

impl Drop for Claimed {
    fn drop(&mut self) {
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            if let (Some(id), Ok(meta)) = (self.identity, std::fs::symlink_metadata(&self.socket))
                && (meta.dev(), meta.ino()) == id
            {
                let _ = std::fs::remove_file(&self.socket);
            }
        }
        let _ = std::fs::remove_file(&self.pidfile);
    }
}

/// Makes the runtime directory (0700) or checks an existing one, by the rendezvous rule.
pub fn prepare_dir(dir: &Path) -> Result<(), BindError> {
    rendezvous::prepare_dir(dir).map_err(|e| match e {
        PrepareError::Unsafe(u) => BindError::UnsafeDirectory(u),
        PrepareError::Create { path, source } => BindError::Io {
            what: "cannot create directory",
            path,
            source,
        },
    })
}

/// `Ok` when what sits at the socket path may be removed as stale: a socket (never followed
/// through a symbolic link) owned by us.
fn removable_stale_socket(socket: &Path, meta: &std::fs::Metadata) -> Result<(), BindError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{FileTypeExt, MetadataExt};
        let why = if !meta.file_type().is_socket() {
            Some(if meta.file_type().is_symlink() {
                "it is a symbolic link".to_owned()
            } else {
                "it is not a socket".to_owned()
            })
        } else {
            let me = crate::sys::euid();
            (meta.uid() != me).then(|| format!("it belongs to uid {}, not to you", meta.uid()))
        };
        if let Some(why) = why {
            return Err(BindError::NotOurSocket {
                path: socket.to_owned(),
                why,
            });
        }
    }
    #[cfg(not(unix))]
    let _ = (socket, meta);
    Ok(())
}

/// Takes the pid-file lock; `AlreadyRunning` when another agent holds it.
pub fn lock_pidfile(paths: &RuntimePaths) -> Result<File, BindError> {
    let path = paths.pidfile();
    let mut opts = OpenOptions::new();
    opts.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut file = opts.open(&path).map_err(io_err("cannot open", &path))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut text = String::new();
            let _ = file.read_to_string(&mut text);
            Err(BindError::AlreadyRunning {
                socket: paths.socket_display(),
                pid: text.trim().parse().ok(),
            })
        }
        Err(std::fs::TryLockError::Error(e)) => Err(io_err("cannot lock", &path)(e)),
    }
}

fn write_pid(file: &mut File, path: &Path) -> Result<(), BindError> {
    file.set_len(0).map_err(io_err("cannot write", path))?;
    file.rewind().map_err(io_err("cannot write", path))?;
    writeln!(file, "{}", std::process::id()).map_err(io_err("cannot write", path))
}

/// True when something accepts connections on the socket right now.
fn socket_is_live(socket: &Path) -> bool {
    #[cfg(unix)]
    {
        std::os::unix::net::UnixStream::connect(socket).is_ok()
    }
    #[cfg(not(unix))]
    {
        let _ = socket;
        false
    }
}

/// Claims the socket: directory, lock, stale-file check, bind, mode 0600. Needs a Tokio runtime.
pub fn claim(paths: &RuntimePaths) -> Result<Claimed, BindError> {
    prepare_dir(paths.dir())?;
    let mut lock = lock_pidfile(paths)?;
    // At once, so that an agent losing the race can name us.
    write_pid(&mut lock, &paths.pidfile())?;
    remove_stale_forwards(paths);
    let socket = paths.socket.clone();
    if let Ok(meta) = std::fs::symlink_metadata(&socket) {
        removable_stale_socket(&socket, &meta)?;
        if socket_is_live(&socket) {
            return Err(BindError::AlreadyRunning {
                socket: paths.socket_display(),
                pid: None,
            });
        }
        tracing::info!(socket = %socket.display(), "removing stale socket file");
        std::fs::remove_file(&socket).map_err(io_err("cannot remove stale socket", &socket))?;
    }
    let listener = bind_listener(paths).map_err(io_err("cannot listen on", &socket))?;
    #[cfg(unix)]
    let identity = {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o600))
            .map_err(io_err("cannot set permissions on", &socket))?;
        std::fs::symlink_metadata(&socket)
            .ok()
            .map(|m| (m.dev(), m.ino()))
    };
    Ok(Claimed {
        listener: Some(listener),
        socket,
        #[cfg(unix)]
        identity,
        pidfile: paths.pidfile(),
        _lock: lock,
    })
}

/// Claims a socket inherited from the service manager (systemd socket activation): the same
/// directory checks and pid-file lock as [`claim`], but the socket is used as it is — never
/// unlinked, rebound or re-moded, and never removed at exit (the service manager owns it).
#[cfg(unix)]
pub fn adopt(paths: &RuntimePaths, fd: std::os::fd::OwnedFd) -> Result<Claimed, BindError> {
    use interprocess::os::unix::uds_local_socket::tokio::Listener as UdsListener;

    prepare_dir(paths.dir())?;
    let mut lock = lock_pidfile(paths)?;
    write_pid(&mut lock, &paths.pidfile())?;
    remove_stale_forwards(paths);
    let std_listener = std::os::unix::net::UnixListener::from(fd);
    match std_listener.local_addr() {
        Ok(addr) if addr.as_pathname() == Some(paths.socket.as_path()) => {}
        Ok(addr) => tracing::warn!(
            inherited = ?addr.as_pathname(),
            expected = %paths.socket.display(),
            "the inherited socket is not where clients look for it; set WBL_SOCKET for both"
        ),
        Err(e) => tracing::warn!(error = %e, "cannot read the inherited socket's address"),
    }
    let listener = UdsListener::try_from(std::os::fd::OwnedFd::from(std_listener))
        .map_err(io_err("cannot use the inherited socket for", &paths.socket))?;
    Ok(Claimed {
        listener: Some(Listener::from(listener)),
        socket: paths.socket.clone(),
        identity: None,
        pidfile: paths.pidfile(),
        _lock: lock,
    })
}

/// Removes forward sockets (`<socket>.fwd-*`) left by an agent that did not exit cleanly.
/// Called with the pid-file lock held: no other agent of this socket can own them.
fn remove_stale_forwards(paths: &RuntimePaths) {
    let Some(prefix) = paths
        .forward_socket("")
        .file_name()
        .map(|n| n.to_os_string())
    else {
        return;
    };
    let prefix = prefix.to_string_lossy().into_owned();
    for entry in std::fs::read_dir(paths.dir())
        .into_iter()
        .flatten()
        .flatten()
    {
        if entry.file_name().to_string_lossy().starts_with(&prefix) {
            tracing::info!(socket = %entry.path().display(), "removing a stale forward socket");
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Binds a forward's restricted socket at `socket` (in the agent's private directory); see
/// [`restricted`].
#[cfg(unix)]
pub(crate) fn bind_restricted(socket: &Path) -> std::io::Result<Listener> {
    restricted(socket, |s| {
        bind_listener(&RuntimePaths {
            socket: s.to_owned(),
        })
    })
}

/// A restricted socket (a forward's, a proxy's for `ssh -R`) bound at `socket` by `bind`,
/// mode 0600. A leftover file of that name is replaced: the name is the agent's own.
#[cfg(unix)]
pub(crate) fn restricted<L>(
    socket: &Path,
    bind: impl FnOnce(&Path) -> std::io::Result<L>,
) -> std::io::Result<L> {
    use std::os::unix::fs::PermissionsExt;
    if std::fs::symlink_metadata(socket).is_ok() {
        std::fs::remove_file(socket)?;
    }
    let listener = bind(socket)?;
    std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

/// The Windows pipe's security descriptor: protected DACL, generic-all for the owner only.
#[cfg(windows)]
const PIPE_SDDL: &str = "D:P(A;;GA;;;OW)";

fn bind_listener(paths: &RuntimePaths) -> std::io::Result<Listener> {
    let opts = ListenerOptions::new().name(rendezvous::socket_name(paths)?);
    #[cfg(windows)]
    let opts = {
        use interprocess::os::windows::local_socket::ListenerOptionsExt;
        use interprocess::os::windows::security_descriptor::SecurityDescriptor;
        // A protected DACL with one entry: full access for the pipe's owner (the user running
        // the agent). The default DACL would also let Everyone read.
        let sddl = widestring::U16CString::from_str(PIPE_SDDL).map_err(std::io::Error::other)?;
        opts.security_descriptor(SecurityDescriptor::deserialize(&sddl)?)
    };
    let mut listener = opts.reclaim_name(false).create_tokio()?;
    use interprocess::local_socket::traits::tokio::Listener as _;
    listener.do_not_reclaim_name_on_drop();
    Ok(listener)
}
