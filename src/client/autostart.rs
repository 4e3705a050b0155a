//! Auto-start: when no agent answers, start `wbl-agent` and wait until it listens.
//!
//! Two clients starting at once are serialised by a lock file beside the socket; the agent's
//! launcher exits only once the agent listens (it reports readiness through a pipe), so the
//! client never polls or sleeps. A client that meets an agent of another protocol version
//! stops it (SIGTERM), waits for its pid-file lock to be released, and starts a new one; the
//! keys are in the keychain, so nothing is lost.

use std::fs::OpenOptions;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use wbl_proto::PROTOCOL_VERSION;

use super::{AgentClient, ClientError};
use crate::dirs::RuntimePaths;

/// Set to `1` to never start an agent from the client.
pub const AUTOSTART_ENV: &str = "WBL_NO_AUTOSTART";
/// Bound on waiting for an old agent to exit after it was asked to.
pub(crate) const STOP_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

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

/// Connects to the agent, starting it when needed and allowed.
/// A forwarded socket (`wbl ssh`) is used as it is: never restarted for another version, and
/// never replaced by a local agent when it does not answer.
pub fn connect_or_start(paths: &RuntimePaths) -> Result<AgentClient, ClientError> {
    if let Ok(client) = AgentClient::connect(paths) {
        return check_version(client, paths);
    }
    if crate::dirs::is_forwarded(&paths.socket) {
        return Err(ClientError::ForwardGone {
            socket: paths.socket_display(),
        });
    }
    if autostart_disabled() {
        return Err(ClientError::NotRunning {
            socket: paths.socket_display(),
        });
    }
    crate::agent::listen::prepare_dir(paths.dir())
        .map_err(|e| ClientError::StartFailed(e.to_string()))?;
    let lock_path = paths.autostart_lock();
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| ClientError::Io(format!("cannot open {}: {e}", lock_path.display())))?;
    lock.lock()
        .map_err(|e| ClientError::Io(format!("cannot lock {}: {e}", lock_path.display())))?;
    // Another client may have started it while we waited for the lock.
    if let Ok(client) = AgentClient::connect(paths) {
        return check_version(client, paths);
    }
    start_and_connect(paths)
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
fn start_and_connect(paths: &RuntimePaths) -> Result<AgentClient, ClientError> {
    if start_agent()? == Started::AlreadyRunning {
        if let Ok(client) = AgentClient::connect(paths) {
            return Ok(client);
        }
        tracing::debug!("another agent holds the pid-file lock but does not answer; waiting");
        wait_released(paths, None)?;
        start_agent()?;
    }
    AgentClient::connect(paths).map_err(|e| {
        ClientError::StartFailed(format!(
            "it started but {} does not answer: {e}",
            paths.socket_display()
        ))
    })
}

/// Runs the agent's launcher, which returns once the agent is ready (exit 0) or another agent
/// already owns the socket (exit 3).
fn start_agent() -> Result<Started, ClientError> {
    let exe = agent_exe();
    tracing::debug!(exe = %exe.display(), "starting wbl-agent");
    let out = Command::new(&exe)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| ClientError::StartFailed(format!("cannot run {}: {e}", exe.display())))?;
    match out.status.code() {
        Some(0) => Ok(Started::Ready),
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

fn check_version(client: AgentClient, paths: &RuntimePaths) -> Result<AgentClient, ClientError> {
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
    start_and_connect(paths)
}

/// Asks an agent process to stop and waits (bounded) until it released its pid-file lock.
pub(crate) fn stop_pid(pid: u32, paths: &RuntimePaths) -> Result<(), ClientError> {
    #[cfg(unix)]
    {
        let Ok(pid_t) = libc::pid_t::try_from(pid) else {
            return Err(ClientError::Unexpected("hello (pid out of range)"));
        };
        // SAFETY: kill with a positive pid and SIGTERM has no memory effects.
        if unsafe { libc::kill(pid_t, libc::SIGTERM) } != 0 {
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
