//! Auto-start: when no agent answers, start `wbl-agent` and wait until it listens.
//!
//! Two clients starting at once are serialised by a lock file beside the socket; the agent's
//! launcher exits only once the agent listens (it reports readiness through a pipe), so the
//! client never polls or sleeps. A client that meets an agent of another protocol version
//! stops it (SIGTERM), waits for its pid-file lock to be released, and starts a new one; the
//! keys are in the keychain, so nothing is lost.
//!
//! Only our own agent is ever used, started or stopped: a socket directory that fails the
//! rendezvous rule or a peer of another user stops everything here (nothing is started), and a
//! pid is signalled only once `rendezvous::verify_agent_pid` approved it. Every wait is
//! bounded. The agent starts with a cleaned environment and `/` as its working directory, so
//! nothing of the first client's environment (a `WANDB_API_KEY`, say) stays in it.

use std::fs::OpenOptions;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use wbl_proto::PROTOCOL_VERSION;

use super::{AgentClient, ClientError};
use crate::rendezvous::{self, Deadline, RuntimePaths};

/// Set to `1` to never start an agent from the client.
pub const AUTOSTART_ENV: &str = "WBL_NO_AUTOSTART";
/// Bound on waiting for an old agent to exit after it was asked to.
pub(crate) const STOP_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Bound on the launcher: it returns once the agent listens, which includes opening the
/// keychain (the `auto` probe gives the Secret Service 3 s).
const START_WAIT: Duration = Duration::from_secs(30);

fn autostart_disabled() -> bool {
    std::env::var(AUTOSTART_ENV).is_ok_and(|v| !v.is_empty() && v != "0")
}

/// The agent binary: `$WBL_AGENT_BIN`, else `wbl-agent` beside this executable, else `$PATH`.
fn agent_exe() -> PathBuf {
    if let Some(p) = std::env::var_os("WBL_AGENT_BIN").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    let name = format!("wbl-agent{}", std::env::consts::EXE_SUFFIX);
    std::env::current_exe()
        .ok()
        .map(|exe| exe.with_file_name(&name))
        .filter(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from(name))
}

/// True for the environment variables an agent needs; everything else is left behind.
pub(crate) fn agent_keeps_env(name: &str) -> bool {
    matches!(name, "HOME" | "PATH" | "LANG" | "DBUS_SESSION_BUS_ADDRESS")
        || name.starts_with("XDG_")
        || name.starts_with("WBL_")
        // What Windows processes cannot run without.
        || (cfg!(windows)
            && matches!(
                name.to_ascii_uppercase().as_str(),
                "SYSTEMROOT" | "WINDIR" | "USERNAME" | "USERPROFILE" | "APPDATA" | "LOCALAPPDATA"
                    | "TEMP" | "TMP" | "COMSPEC" | "PATHEXT"
            ))
}

/// True for the connection errors that starting an agent cannot cure: a refused directory or
/// peer (nothing may be started there), or an agent that accepts but does not answer.
fn final_error(e: &ClientError) -> bool {
    matches!(e, ClientError::Untrusted(_) | ClientError::Timeout { .. })
}

/// Connects to the agent, starting it when needed and allowed. A refused directory or peer, or
/// a timeout, is reported as it is; anything else (nothing listening, an agent on its way
/// out) leads to a start. A forwarded socket (`wbl ssh`) is used as it is: never restarted for
/// another version, and never replaced by a local agent when it does not answer.
pub fn connect_or_start(paths: &RuntimePaths) -> Result<AgentClient, ClientError> {
    connect_or_start_by(paths, &mut Deadline::from_env())
}

/// [`connect_or_start`] within what is left of an operation's `deadline`. Waiting for
/// another client's start-up (the start lock) or starting an agent is not counted: the
/// deadline starts again after it (`Deadline::renew`), for the caller too.
pub fn connect_or_start_by(
    paths: &RuntimePaths,
    deadline: &mut Deadline,
) -> Result<AgentClient, ClientError> {
    match AgentClient::connect_by(paths, *deadline) {
        Ok(client) => return check_version(client, paths, deadline),
        Err(e) if final_error(&e) => return Err(e),
        Err(_) => {}
    }
    if crate::rendezvous::is_forwarded(&paths.socket) {
        return Err(ClientError::ForwardGone {
            socket: paths.socket_display(),
        });
    }
    if autostart_disabled() {
        return Err(ClientError::NotRunning {
            socket: paths.socket_display(),
        });
    }
    rendezvous::prepare_dir(paths.dir()).map_err(|e| match e {
        rendezvous::PrepareError::Unsafe(u) => ClientError::Untrusted(u.into()),
        e => ClientError::StartFailed(e.to_string()),
    })?;
    let _lock = take_start_lock(paths)?;
    // Another client may have started it while we waited for the lock: that wait was its
    // start-up.
    deadline.renew();
    match AgentClient::connect_by(paths, *deadline) {
        Ok(client) => return check_version(client, paths, deadline),
        Err(e) if final_error(&e) => return Err(e),
        Err(_) => {}
    }
    start_and_connect(paths, deadline)
}

/// Takes the start lock, waiting (bounded) while another client starts the agent.
fn take_start_lock(paths: &RuntimePaths) -> Result<std::fs::File, ClientError> {
    let lock_path = paths.autostart_lock();
    let mut opts = OpenOptions::new();
    opts.create(true).truncate(false).write(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600).custom_flags(libc::O_NOFOLLOW);
    }
    let lock = opts
        .open(&lock_path)
        .map_err(|e| ClientError::Io(format!("cannot open {}: {e}", lock_path.display())))?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let res = lock.lock().map(|()| lock);
        let _ = tx.send(res);
    });
    match rx.recv_timeout(START_WAIT) {
        Ok(Ok(lock)) => Ok(lock),
        Ok(Err(e)) => Err(ClientError::Io(format!(
            "cannot lock {}: {e}",
            lock_path.display()
        ))),
        Err(_) => Err(ClientError::StartFailed(format!(
            "another wbl is starting the agent and has not finished within {} s",
            START_WAIT.as_secs()
        ))),
    }
}

/// What the launcher reported.
#[derive(Debug, PartialEq, Eq)]
enum Started {
    /// Our agent is ready.
    Ready,
    /// Another agent holds the pid-file lock (exit 3).
    AlreadyRunning,
}

/// Starts the agent and connects. When the launcher finds another agent holding the pid-file
/// lock that does not answer, that agent is on its way out (idle exit, `wbl agent stop`, a
/// signal): wait until it has released the lock, then start once more.
fn start_and_connect(
    paths: &RuntimePaths,
    deadline: &mut Deadline,
) -> Result<AgentClient, ClientError> {
    if start_agent(paths)? == Started::AlreadyRunning {
        deadline.renew();
        match AgentClient::connect_by(paths, *deadline) {
            Ok(client) => return Ok(client),
            Err(e) if final_error(&e) => return Err(e),
            Err(_) => {}
        }
        tracing::debug!("another agent holds the pid-file lock but does not answer; waiting");
        wait_released(paths, None)?;
        start_agent(paths)?;
    }
    deadline.renew();
    AgentClient::connect_by(paths, *deadline).map_err(|e| match e {
        e @ (ClientError::Untrusted(_) | ClientError::Timeout { .. }) => e,
        e => ClientError::StartFailed(format!(
            "it started but {} does not answer: {e}",
            paths.socket_display()
        )),
    })
}

/// The root directory the agent runs in.
fn root_dir() -> PathBuf {
    #[cfg(windows)]
    {
        std::env::var_os("SystemDrive")
            .map(|d| {
                let mut d = std::ffi::OsString::from(d);
                d.push("\\");
                PathBuf::from(d)
            })
            .unwrap_or_else(|| PathBuf::from("C:\\"))
    }
    #[cfg(not(windows))]
    {
        PathBuf::from("/")
    }
}

/// Runs the agent's launcher, which returns once the agent is ready (exit 0) or another agent
/// already owns the socket (exit 3). The launcher gets only the environment an agent needs
/// (plus `WBL_SOCKET` pinned to the socket this client uses), `/` as its working directory,
/// and at most [`START_WAIT`].
fn start_agent(paths: &RuntimePaths) -> Result<Started, ClientError> {
    let mut exe = agent_exe();
    // The working directory changes to `/`: a relative path must not change meaning.
    if exe.is_relative()
        && exe.components().count() > 1
        && let Ok(cwd) = std::env::current_dir()
    {
        exe = cwd.join(exe);
    }
    tracing::debug!(exe = %exe.display(), "starting wbl-agent");
    let mut cmd = Command::new(&exe);
    cmd.env_clear()
        .envs(std::env::vars_os().filter(|(k, _)| k.to_str().is_some_and(agent_keeps_env)))
        .env(rendezvous::SOCKET_ENV, &paths.socket)
        .current_dir(root_dir())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .map_err(|e| ClientError::StartFailed(format!("cannot run {}: {e}", exe.display())))?;
    let mut stderr = child.stderr.take();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut text = Vec::new();
        if let Some(s) = stderr.as_mut() {
            use std::io::Read;
            let _ = s.take(64 * 1024).read_to_end(&mut text);
        }
        let _ = tx.send(text);
    });
    let stderr = match rx.recv_timeout(START_WAIT) {
        Ok(text) => text,
        Err(_) => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(ClientError::StartFailed(format!(
                "{} did not report within {} s",
                exe.display(),
                START_WAIT.as_secs()
            )));
        }
    };
    let status = child
        .wait()
        .map_err(|e| ClientError::StartFailed(format!("waiting for {}: {e}", exe.display())))?;
    let out = std::process::Output {
        status,
        stdout: Vec::new(),
        stderr,
    };
    match out.status.code() {
        Some(0) => {
            // What the agent found when it opened the keychain (a locked keyring, the kernel
            // keyring instead of a Secret Service): the user who started it should know.
            let warning = String::from_utf8_lossy(&out.stderr);
            if !warning.trim().is_empty() {
                eprintln!("{}", warning.trim_end());
            }
            Ok(Started::Ready)
        }
        Some(3) => Ok(Started::AlreadyRunning),
        _ => {
            let msg = String::from_utf8_lossy(&out.stderr);
            let msg = msg.trim().trim_start_matches("wbl-agent: ");
            Err(ClientError::StartFailed(if msg.is_empty() {
                format!("{} exited with {}", exe.display(), out.status)
            } else {
                msg.to_owned()
            }))
        }
    }
}

fn check_version(
    client: AgentClient,
    paths: &RuntimePaths,
    deadline: &mut Deadline,
) -> Result<AgentClient, ClientError> {
    // A forward of another version is still asked: `get` has not changed since protocol 1.
    if client.agent_protocol == PROTOCOL_VERSION || client.forwarded() {
        return Ok(client);
    }
    tracing::info!(
        agent_protocol = client.agent_protocol,
        "agent speaks another protocol version; restarting it"
    );
    if autostart_disabled() {
        return Err(ClientError::StartFailed(format!(
            "the running wbl-agent (version {}, pid {}) is from another build; stop it with `kill {}` and start the new one",
            client.agent_version, client.agent_pid, client.agent_pid
        )));
    }
    stop_pid(client.agent_pid, paths)?;
    drop(client);
    start_and_connect(paths, deadline)
}

/// Asks an agent process to stop and waits (bounded) until it released its pid-file lock.
/// The pid is signalled only when [`rendezvous::verify_agent_pid`] approves it: the holder of
/// the pid-file lock, our user, `wbl-agent`, never pid 0 or 1.
pub(crate) fn stop_pid(pid: u32, paths: &RuntimePaths) -> Result<(), ClientError> {
    #[cfg(unix)]
    {
        if let Err(why) = rendezvous::verify_agent_pid(paths, pid) {
            return Err(ClientError::StartFailed(format!(
                "the agent on {} named pid {pid}, which wbl will not signal: {why}; stop the \
                 agent yourself, then retry",
                paths.socket_display()
            )));
        }
        if libc::pid_t::try_from(pid).is_err() {
            return Err(ClientError::Unexpected("hello (pid out of range)"));
        }
        if crate::sys::signal(pid, crate::sys::Signal::Terminate).is_err() {
            return Ok(()); // already gone
        }
        wait_released(paths, Some(pid))
    }
    #[cfg(not(unix))]
    {
        let _ = paths;
        Err(ClientError::StartFailed(format!(
            "the running wbl-agent (pid {pid}) is from another build; stop it and retry"
        )))
    }
}

/// Waits (bounded by [`STOP_WAIT`]) until no agent holds the pid-file lock: the agent has
/// exited, or at least closed its socket and is about to.
pub(crate) fn wait_released(paths: &RuntimePaths, pid: Option<u32>) -> Result<(), ClientError> {
    let pidfile = paths.pidfile();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        // A missing pid file means the agent already removed it on its way out.
        let res = OpenOptions::new()
            .read(true)
            .open(&pidfile)
            .and_then(|f| f.lock());
        let _ = tx.send(res);
    });
    match rx.recv_timeout(STOP_WAIT) {
        Ok(_) => Ok(()),
        Err(_) => Err(ClientError::StartFailed(format!(
            "the running wbl-agent{} did not stop within {} s",
            pid.map(|p| format!(" (pid {p})")).unwrap_or_default(),
            STOP_WAIT.as_secs()
        ))),
    }
}
