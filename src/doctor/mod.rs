//! `wbl doctor`'s checks: each looks at one thing that makes wbl work or not (the session
//! D-Bus, the Secret Service, the kernel keyring, the agent, its socket, the service files,
//! the access log, the OpenBao servers of the configuration file, plaintext copies of keys,
//! `WANDB_API_KEY`, git) and returns a verdict, a one-line detail and
//! a concrete fix.
//!
//! Invariants: a check only reads. It never starts the agent (a socket-activated socket is not
//! even connected to unless an agent process already runs), never starts a Secret Service
//! (a provider D-Bus could activate is reported, not activated), never stores, unlocks or
//! edits anything, and never shows a secret. Everything that can block (D-Bus, the agent's
//! socket, `systemctl`, `git`, an OpenBao server) runs on a thread with a deadline, so a hung
//! service turns into a verdict, not a hung `wbl doctor`.

mod accesslog;
mod accounts;
mod agent;
mod git;
mod keychain;
mod openbao;
mod plaintext;

use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::rendezvous::RuntimePaths;

/// How long one D-Bus probe may take (the same bound as the backend probe of `auto`).
pub const DBUS_TIMEOUT: Duration = crate::keychain::PROBE_TIMEOUT;
/// How long talking to the agent, or running `systemctl` or `git`, may take.
pub const TOOL_TIMEOUT: Duration = Duration::from_secs(5);

/// A check's outcome. Only `Problem` makes `wbl doctor` exit 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Ok,
    Warning,
    Problem,
    Skipped,
}

impl Verdict {
    pub fn label(self) -> &'static str {
        match self {
            Verdict::Ok => "ok",
            Verdict::Warning => "WARNING",
            Verdict::Problem => "PROBLEM",
            Verdict::Skipped => "skipped",
        }
    }
}

/// What a check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub verdict: Verdict,
    pub detail: String,
    pub fix: Option<String>,
}

impl Finding {
    pub fn ok(detail: impl Into<String>) -> Finding {
        Finding {
            verdict: Verdict::Ok,
            detail: detail.into(),
            fix: None,
        }
    }

    pub fn skipped(detail: impl Into<String>) -> Finding {
        Finding {
            verdict: Verdict::Skipped,
            detail: detail.into(),
            fix: None,
        }
    }

    pub fn warning(detail: impl Into<String>, fix: impl Into<String>) -> Finding {
        Finding {
            verdict: Verdict::Warning,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }

    pub fn problem(detail: impl Into<String>, fix: impl Into<String>) -> Finding {
        Finding {
            verdict: Verdict::Problem,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }
}

/// One check in the report (`--json` prints these fields as they are).
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// Stable identifier, e.g. `secret-service`.
    pub name: &'static str,
    /// What is checked, for people.
    pub title: &'static str,
    pub verdict: Verdict,
    /// Wall-clock time the check took, in milliseconds.
    pub ms: u64,
    /// One line: what was found.
    pub detail: String,
    /// One line: what to run to fix it (warnings and problems), else null.
    pub fix: Option<String>,
}

/// Every check, in order.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// No check is a problem (warnings allowed): `wbl doctor` exits 0.
    pub healthy: bool,
    pub problems: usize,
    pub warnings: usize,
    /// The version of this `wbl`.
    pub wbl_version: &'static str,
    pub checks: Vec<Check>,
}

/// Where wbl runs, as far as the fixes are concerned (Linux: SSH and WSL change the advice).
#[derive(Debug, Clone, Copy, Default)]
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
pub(crate) struct Hints {
    /// Windows Subsystem for Linux.
    pub wsl: bool,
    /// Logged in over SSH.
    pub ssh: bool,
}

impl Hints {
    fn detect() -> Hints {
        let set = |v: &str| std::env::var_os(v).is_some_and(|s| !s.is_empty());
        let wsl = set("WSL_DISTRO_NAME")
            || set("WSL_INTEROP")
            || (cfg!(target_os = "linux")
                && std::fs::read_to_string("/proc/sys/kernel/osrelease")
                    .is_ok_and(|r| r.to_ascii_lowercase().contains("microsoft")));
        let ssh = set("SSH_CONNECTION") || set("SSH_CLIENT") || set("SSH_TTY");
        Hints { wsl, ssh }
    }
}

/// What the checks learn and later checks use.
pub(crate) struct Ctx {
    pub paths: RuntimePaths,
    /// `WBL_BACKEND` as set (empty when unset).
    pub backend_choice: String,
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    pub hints: Hints,
    /// The session bus, once the `dbus` check connected to it.
    #[cfg(target_os = "linux")]
    pub bus: Option<zbus::blocking::Connection>,
    /// A Secret Service answered with an unlocked default collection (None: not checked).
    pub secret_service_ok: Option<bool>,
    /// A Secret Service exists (running, or D-Bus can start it), usable or not: an agent
    /// started with `auto` uses it rather than the kernel keyring.
    pub secret_service_exists: bool,
    /// The running agent, when one answered.
    pub agent: Option<agent::AgentInfo>,
    /// The login-session service, as its files say.
    #[cfg_attr(any(target_os = "macos", windows), allow(dead_code))]
    pub service: crate::service::ServiceState,
    /// The plaintext secrets found, searched once for the three checks that report them.
    pub plaintext: Option<plaintext::Inventory>,
}

impl Ctx {
    fn from_env() -> Ctx {
        Ctx {
            paths: RuntimePaths::from_env(),
            backend_choice: std::env::var(crate::keychain::BACKEND_ENV).unwrap_or_default(),
            hints: Hints::detect(),
            #[cfg(target_os = "linux")]
            bus: None,
            secret_service_ok: None,
            secret_service_exists: false,
            agent: None,
            service: crate::service::service_state(),
            plaintext: None,
        }
    }

    /// `WBL_BACKEND=keyutils`: the Secret Service is not wanted.
    pub fn keyutils_only(&self) -> bool {
        self.backend_choice == "keyutils"
    }
}

type CheckFn = fn(&mut Ctx) -> Finding;

/// The checks, in the order they run and are shown: `(name, title, check)`.
/// The checks about this machine's keychain, agent service and OpenBao servers, skipped
/// through a forward.
const LOCAL_KEYCHAIN_CHECKS: &[&str] = &[
    "dbus",
    "secret-service",
    "keyutils",
    "backend",
    "service",
    "openbao",
];

const CHECKS: &[(&str, &str, CheckFn)] = &[
    ("dbus", "session D-Bus", keychain::dbus),
    ("secret-service", "Secret Service", keychain::secret_service),
    ("keyutils", "kernel keyring", keychain::keyutils),
    ("agent", "wbl-agent", agent::agent),
    ("socket", "agent socket", agent::socket),
    ("backend", "keychain backend", keychain::backend),
    ("service", "login service", agent::service),
    ("openbao", "OpenBao routes", openbao::openbao),
    ("accounts", "accounts", accounts::accounts),
    ("access-log", "access log", accesslog::access_log),
    ("netrc", "netrc", plaintext::netrc),
    ("wandb-settings", "W&B settings", plaintext::settings),
    (
        "git-credentials",
        "git credentials",
        plaintext::git_credentials,
    ),
    (
        "docker-logins",
        "container logins",
        plaintext::docker_logins,
    ),
    ("wandb-api-key", "WANDB_API_KEY", plaintext::api_key_env),
    ("git-helper", "git helper", git::helper),
];

/// The names of every check, in order.
pub fn check_names() -> Vec<&'static str> {
    CHECKS.iter().map(|(name, _, _)| *name).collect()
}

/// Runs every check, timing each.
pub fn run() -> Report {
    let mut ctx = Ctx::from_env();
    let mut checks = Vec::with_capacity(CHECKS.len());
    // Through a forward (`wbl ssh`) keys stay on the other machine: this one's keychain and
    // login service do not matter.
    let forwarded = crate::rendezvous::is_forwarded(&ctx.paths.socket);
    for (name, title, check) in CHECKS {
        let start = Instant::now();
        let finding = if forwarded && LOCAL_KEYCHAIN_CHECKS.contains(name) {
            Finding::skipped(
                "WBL_SOCKET is a forward (`wbl ssh`): keys stay on the other machine, nothing is \
                 stored on this one",
            )
        } else {
            check(&mut ctx)
        };
        checks.push(Check {
            name,
            title,
            verdict: finding.verdict,
            ms: u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX),
            detail: finding.detail,
            fix: finding.fix,
        });
    }
    let count = |v| checks.iter().filter(|c| c.verdict == v).count();
    let problems = count(Verdict::Problem);
    Report {
        healthy: problems == 0,
        problems,
        warnings: count(Verdict::Warning),
        wbl_version: env!("CARGO_PKG_VERSION"),
        checks,
    }
}

/// Runs `f` on its own thread and waits at most `limit` for its result; `None` when it did not
/// finish in time (the thread is left behind and ends with the process).
pub(crate) fn bounded<T: Send + 'static>(
    limit: Duration,
    f: impl FnOnce() -> T + Send + 'static,
) -> Option<T> {
    probe(f).recv_timeout(limit).ok()
}

/// Starts `f` on its own thread; its result arrives on the receiver, which a caller waits on
/// with a deadline (several probes can share one). A thread that cannot start sends nothing.
pub(crate) fn probe<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> mpsc::Receiver<T> {
    let (tx, rx) = mpsc::channel();
    let _ = std::thread::Builder::new()
        .name("wbl-doctor-probe".into())
        .spawn(move || {
            let _ = tx.send(f());
        });
    rx
}

/// Runs a program (stdin closed, output captured) for at most `limit`; killed when it takes
/// longer. A program that is not installed is `ErrorKind::NotFound`.
pub(crate) fn run_bounded(mut cmd: Command, limit: Duration) -> std::io::Result<Output> {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let pid = child.id();
    match bounded(limit, move || child.wait_with_output()) {
        Some(out) => out,
        None => {
            #[cfg(unix)]
            // The child is ours and not yet reaped (its waiting thread is blocked), so the
            // pid cannot have been reused.
            let _ = crate::sys::signal(pid, crate::sys::Signal::Kill);
            #[cfg(not(unix))]
            let _ = pid;
            Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("no answer within {} s", limit.as_secs()),
            ))
        }
    }
}

#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
/// The command that starts gnome-keyring with its login keyring unlocked, reading the password
/// without echo and without putting it on a command line (`printf` is a shell builtin).
pub(crate) const UNLOCK_GNOME_KEYRING: &str = "read -rs pw && printf %s \"$pw\" | gnome-keyring-daemon --replace --unlock --components=secrets >/dev/null; unset pw";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_returns_in_time_or_gives_up() {
        assert_eq!(bounded(Duration::from_secs(5), || 7), Some(7));
        let (_keep, rx) = mpsc::channel::<()>();
        // Blocks until the receiver is dropped, which is after the deadline.
        let r = bounded(Duration::from_millis(10), move || {
            let _ = rx.recv();
        });
        assert_eq!(r, None);
    }

    #[test]
    fn check_names_are_unique() {
        let names = check_names();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), names.len());
    }
}
