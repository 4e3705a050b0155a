//! Checks of the agent side: is it running and of this build, is its socket private, and is
//! the login-session service (systemd units, LaunchAgent) installed and enabled.

use wbl_proto::{AgentStatus, PROTOCOL_VERSION};

#[cfg(not(windows))]
use super::run_bounded;
use super::{Ctx, Finding, TOOL_TIMEOUT, bounded};
use crate::client::{AUTOSTART_ENV, AgentClient, ClientError};
#[cfg(unix)]
use crate::rendezvous::{self, RuntimePaths};

/// What the running agent said about itself.
pub(crate) struct AgentInfo {
    pub pid: u32,
    pub version: String,
    pub protocol: u32,
    /// Its status, when it speaks our protocol.
    pub status: Option<AgentStatus>,
}

/// The pid in this socket's pid file, when that process is alive. Only then is the socket
/// connected to: with systemd socket activation, connecting would start the agent. (A pid
/// file outlives only an agent killed with SIGKILL, which systemd restarts anyway, so a reused
/// pid is no practical concern.)
#[cfg(unix)]
fn live_agent_pid(paths: &RuntimePaths) -> Option<u32> {
    let pid: u32 = std::fs::read_to_string(paths.pidfile())
        .ok()?
        .trim()
        .parse()
        .ok()?;
    crate::sys::can_signal(pid).then_some(pid)
}

fn autostart_disabled() -> bool {
    std::env::var(AUTOSTART_ENV).is_ok_and(|v| !v.is_empty() && v != "0")
}

/// Where the agent's log is.
fn log_hint(ctx: &Ctx) -> String {
    if socket_activated(ctx) {
        "`journalctl --user -u wbl-agent`".to_owned()
    } else {
        ctx.paths.logfile().display().to_string()
    }
}

/// systemd listens on the socket for the agent: units installed and enabled, and a user
/// manager runs.
fn socket_activated(ctx: &Ctx) -> bool {
    #[cfg(not(any(target_os = "macos", windows)))]
    {
        ctx.service.manager == "systemd"
            && ctx.service.installed
            && ctx.service.enabled
            && crate::service::user_manager_running()
    }
    #[cfg(any(target_os = "macos", windows))]
    {
        let _ = ctx;
        false
    }
}

fn not_running(ctx: &Ctx) -> Finding {
    let socket = ctx.paths.socket_display();
    if socket_activated(ctx) {
        return Finding::ok(format!(
            "not running; systemd starts it on the first connection to {socket}"
        ));
    }
    if autostart_disabled() {
        return Finding::problem(
            format!("not running, and {AUTOSTART_ENV} is set, so wbl will not start it ({socket})"),
            "`wbl agent start`, or `wbl agent install --now` to start it with your login session",
        );
    }
    Finding::ok(format!(
        "not running; wbl starts it on first use ({socket}); `wbl agent start` starts it now"
    ))
}

/// `WBL_SOCKET` names a forward (`wbl ssh`): it has no pid file and lives in a shared
/// directory; what matters is whether it answers as a forward.
fn forwarded(ctx: &Ctx) -> Finding {
    let paths = ctx.paths.clone();
    let socket = paths.socket_display();
    let answer = bounded(TOOL_TIMEOUT, move || {
        AgentClient::connect(&paths)
            .map(|c| c.forwarded())
            .map_err(|e| e.to_string())
    });
    match answer {
        Some(Ok(true)) => Finding::ok(format!(
            "{socket} is forwarded by `wbl ssh` from another machine: keys for the hosts it \
             grants only"
        )),
        Some(Ok(false)) => Finding::warning(
            format!("{socket} is named like a forward but an agent answers there directly"),
            "point WBL_SOCKET elsewhere; names starting with wbl-fwd- are for `wbl ssh`",
        ),
        _ => Finding::problem(
            format!(
                "{socket} is a forward (`wbl ssh`) that does not answer: its session has ended"
            ),
            "reconnect with `wbl ssh`, or unset WBL_SOCKET to use an agent on this machine",
        ),
    }
}

fn own_dir_fix() -> String {
    "set WBL_SOCKET to a path in a private directory of yours".to_owned()
}

pub(super) fn agent(ctx: &mut Ctx) -> Finding {
    if crate::rendezvous::is_forwarded(&ctx.paths.socket) {
        return forwarded(ctx);
    }
    // The client refuses an unsafe directory before looking for an agent in it; so does this.
    #[cfg(unix)]
    if let Err(u) = rendezvous::check_dir(ctx.paths.dir()) {
        return Finding::problem(
            format!(
                "{}: {}; wbl refuses to talk to an agent there",
                u.dir.display(),
                u.problem.why()
            ),
            u.fix(),
        );
    }
    #[cfg(unix)]
    let pid = match live_agent_pid(&ctx.paths) {
        Some(pid) => Some(pid),
        None => return not_running(ctx),
    };
    #[cfg(not(unix))]
    let pid: Option<u32> = None;
    let paths = ctx.paths.clone();
    let answer = bounded(TOOL_TIMEOUT, move || {
        let mut client = AgentClient::connect_within(&paths, TOOL_TIMEOUT)?;
        let status = if client.agent_protocol == PROTOCOL_VERSION {
            client.status().ok()
        } else {
            None
        };
        Ok::<_, ClientError>(AgentInfo {
            pid: client.agent_pid,
            version: client.agent_version.clone(),
            protocol: client.agent_protocol,
            status,
        })
    });
    let socket = ctx.paths.socket_display();
    let who = pid.map(|p| format!(" (pid {p})")).unwrap_or_default();
    let restart = match pid {
        Some(p) => format!("`kill {p}` (it stops gracefully), then `wbl agent start`"),
        None => "`wbl agent stop && wbl agent start`".to_owned(),
    };
    let info = match answer {
        None => {
            return Finding::problem(
                format!(
                    "wbl-agent{who} does not answer on {socket} within {} s",
                    TOOL_TIMEOUT.as_secs()
                ),
                format!("{restart}; its log: {}", log_hint(ctx)),
            );
        }
        Some(Err(ClientError::Untrusted(e))) => {
            let (what, fix) = e
                .refusal()
                .unwrap_or_else(|| (e.to_string(), own_dir_fix()));
            return Finding::problem(format!("{what}; wbl refuses to talk to it"), fix);
        }
        Some(Err(_)) if pid.is_none() => return not_running(ctx),
        Some(Err(e)) => {
            return Finding::problem(
                format!("wbl-agent{who} runs, but {socket} does not answer: {e}"),
                format!("{restart}; its log: {}", log_hint(ctx)),
            );
        }
        Some(Ok(info)) => info,
    };
    let ours = env!("CARGO_PKG_VERSION");
    let finding = if info.protocol != PROTOCOL_VERSION {
        Finding::warning(
            format!(
                "wbl-agent (pid {}) is version {} with protocol {}, this wbl is version {ours} with protocol {PROTOCOL_VERSION}; the next wbl command restarts it",
                info.pid, info.version, info.protocol
            ),
            "`wbl agent stop && wbl agent start`",
        )
    } else if info.version != ours {
        Finding::warning(
            format!(
                "wbl-agent (pid {}) is version {}, this wbl is version {ours} (same protocol {PROTOCOL_VERSION}, so they work together)",
                info.pid, info.version
            ),
            "`wbl agent stop && wbl agent start` to run this version's agent",
        )
    } else {
        let uptime = info
            .status
            .as_ref()
            .map(|s| format!(", up {}", crate::term::human_duration(s.uptime_secs)))
            .unwrap_or_default();
        Finding::ok(format!(
            "running (pid {}, version {}, protocol {}{uptime})",
            info.pid, info.version, info.protocol
        ))
    };
    ctx.agent = Some(info);
    finding
}

/// Longest socket path `sockaddr_un` holds (108 bytes with the terminating NUL on Linux, 104
/// on macOS).
#[cfg(unix)]
const MAX_SOCKET_PATH: usize = if cfg!(target_os = "linux") { 107 } else { 103 };

#[cfg(unix)]
pub(super) fn socket(ctx: &mut Ctx) -> Finding {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};

    let sock = &ctx.paths.socket;
    let dir = ctx.paths.dir();
    let (sock_s, dir_s) = (sock.display(), dir.display());
    if crate::rendezvous::is_forwarded(sock) {
        // The client's rule for a forward (`rendezvous::check_forward`): the file ours and
        // private, or in a directory only we can enter (where `wbl ssh` binds it).
        return match std::fs::symlink_metadata(sock) {
            Ok(m) if m.file_type().is_socket() && rendezvous::check_forward(sock).is_ok() => {
                let inside = if m.mode() & 0o077 == 0 {
                    ""
                } else {
                    " in a private directory"
                };
                Finding::ok(format!(
                    "{sock_s}: a forward, ours, mode {:o}{inside}",
                    m.mode() & 0o777
                ))
            }
            Ok(m) => Finding::problem(
                format!(
                    "{sock_s}: named like a forward but not a private socket of ours (owner uid \
                     {}, mode {:o})",
                    m.uid(),
                    m.mode() & 0o777
                ),
                "reconnect with `wbl ssh` (it picks a fresh path), or unset WBL_SOCKET",
            ),
            Err(_) => Finding::problem(
                format!("{sock_s}: the forwarded socket is gone (the `wbl ssh` session ended)"),
                "reconnect with `wbl ssh`, or unset WBL_SOCKET to use an agent on this machine",
            ),
        };
    }
    let len = sock.as_os_str().len();
    if len > MAX_SOCKET_PATH {
        return Finding::problem(
            format!(
                "{sock_s} is {len} bytes long; a Unix socket path holds at most {MAX_SOCKET_PATH}"
            ),
            "set WBL_SOCKET to a shorter path, or unset it to use $XDG_RUNTIME_DIR/wbl/agent.sock",
        );
    }
    let me = crate::sys::euid();
    // The rendezvous rule, word for word what the client and the agent say when they refuse.
    match rendezvous::check_dir(dir) {
        Ok(true) => {}
        Ok(false) => {
            return Finding::ok(format!(
                "{sock_s}: not created yet (the agent makes {dir_s} with mode 0700)"
            ));
        }
        Err(u) => {
            return Finding::problem(
                format!("{dir_s}: {}; wbl and the agent refuse it", u.problem.why()),
                u.fix(),
            );
        }
    }
    let own_dir = "set WBL_SOCKET to a path in a directory of your own, or unset it";
    let meta = match std::fs::symlink_metadata(dir) {
        Ok(m) => m,
        Err(e) => {
            return Finding::problem(format!("cannot inspect {dir_s}: {e}"), own_dir);
        }
    };
    let dir_mode = meta.mode() & 0o7777;
    let dir_note = if dir_mode & 0o077 != 0 {
        Some(format!(
            "{dir_s} is mode {dir_mode:04o}: other users can list it (0700 expected)"
        ))
    } else {
        None
    };
    let sock_meta = match std::fs::symlink_metadata(sock) {
        Ok(m) => Some(m),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => {
            return Finding::problem(
                format!("cannot inspect {sock_s}: {e}"),
                format!("`ls -l {dir_s}`; {own_dir}"),
            );
        }
    };
    let Some(sm) = sock_meta else {
        return match dir_note {
            Some(note) => Finding::warning(note, format!("`chmod 700 {dir_s}`")),
            None => Finding::ok(format!(
                "{dir_s} is yours with mode 0700; no socket yet (the agent creates {sock_s})"
            )),
        };
    };
    let restart = format!("remove it (`rm {sock_s}`), then `wbl agent start`");
    if !sm.file_type().is_socket() {
        return Finding::problem(format!("{sock_s} is not a socket"), restart);
    }
    if sm.uid() != me {
        return Finding::problem(
            format!(
                "{sock_s} belongs to uid {}, not to you (uid {me})",
                sm.uid()
            ),
            restart,
        );
    }
    let mode = sm.mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Finding::problem(
            format!(
                "{sock_s} has mode {mode:04o}: other users may connect (0600 expected; the agent still turns away other uids)"
            ),
            format!(
                "`chmod 600 {sock_s}` (under systemd, `wbl agent install` rewrites wbl-agent.socket with SocketMode=0600)"
            ),
        );
    }
    match dir_note {
        Some(note) => Finding::warning(note, format!("`chmod 700 {dir_s}`")),
        None => Finding::ok(format!(
            "{sock_s}: mode 0600 in {dir_s} (mode 0700), both yours"
        )),
    }
}

#[cfg(not(unix))]
pub(super) fn socket(ctx: &mut Ctx) -> Finding {
    Finding::skipped(format!(
        "a named pipe ({}), private to your user",
        ctx.paths.socket_display()
    ))
}

/// The program of a unit's `ExecStart=` line, unquoted and unescaped.
#[cfg_attr(any(target_os = "macos", windows), allow(dead_code))]
pub(crate) fn exec_program(unit: &str) -> Option<String> {
    let line = unit.lines().find_map(|l| l.strip_prefix("ExecStart="))?;
    let word = if let Some(rest) = line.strip_prefix('"') {
        let mut out = String::new();
        let mut chars = rest.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => out.push(chars.next()?),
                '"' => break,
                c => out.push(c),
            }
        }
        out
    } else {
        line.split_whitespace().next()?.to_owned()
    };
    Some(word.replace("%%", "%").replace("$$", "$"))
}

/// The path of a socket unit's `ListenStream=`, with `%t` resolved against `runtime`.
#[cfg_attr(any(target_os = "macos", windows), allow(dead_code))]
pub(crate) fn listen_path(unit: &str, runtime: Option<&str>) -> Option<std::path::PathBuf> {
    let raw = unit.lines().find_map(|l| l.strip_prefix("ListenStream="))?;
    let resolved = if raw.contains("%t") {
        raw.replace("%t", runtime?)
    } else {
        raw.to_owned()
    };
    Some(resolved.replace("%%", "%").into())
}

#[cfg(not(windows))]
const NOT_INSTALLED: &str = "not installed (optional): the agent starts on first use; `wbl agent install --now` starts it with your login session";

#[cfg(not(any(target_os = "macos", windows)))]
pub(super) fn service(ctx: &mut Ctx) -> Finding {
    use crate::service::systemd::{SERVICE_UNIT, SOCKET_UNIT, user_unit_dir};

    let Some(dir) = user_unit_dir() else {
        return Finding::skipped("no home directory, so no user units");
    };
    let dir_s = dir.display();
    let socket_text = std::fs::read_to_string(dir.join(SOCKET_UNIT)).ok();
    let service_text = std::fs::read_to_string(dir.join(SERVICE_UNIT)).ok();
    let (socket_text, service_text) = match (socket_text, service_text) {
        (None, None) => return Finding::ok(NOT_INSTALLED),
        (Some(s), Some(v)) => (s, v),
        _ => {
            return Finding::warning(
                format!("only one of {SOCKET_UNIT} and {SERVICE_UNIT} is in {dir_s}"),
                "`wbl agent install --now`",
            );
        }
    };
    if let Some(program) = exec_program(&service_text)
        && !std::path::Path::new(&program).is_file()
    {
        return Finding::problem(
            format!("{SERVICE_UNIT} runs {program}, which does not exist"),
            "`wbl agent install --now` (rewrites the units for this wbl-agent)",
        );
    }
    let runtime = std::env::var("XDG_RUNTIME_DIR").ok();
    if let Some(listen) = listen_path(&socket_text, runtime.as_deref())
        && listen != ctx.paths.socket
    {
        return Finding::warning(
            format!(
                "{SOCKET_UNIT} listens on {}, but wbl looks for {}: clients never reach the service's agent",
                listen.display(),
                ctx.paths.socket_display()
            ),
            "`wbl agent install --now` from a shell with the WBL_SOCKET you use (or unset WBL_SOCKET everywhere)",
        );
    }
    let enable = format!("`systemctl --user enable --now {SOCKET_UNIT}`");
    if crate::service::user_manager_running() {
        let mut cmd = std::process::Command::new("systemctl");
        cmd.args(["--user", "is-enabled", SOCKET_UNIT]);
        if let Ok(out) = run_bounded(cmd, TOOL_TIMEOUT) {
            let state = String::from_utf8_lossy(&out.stdout).trim().to_owned();
            return if state == "enabled" {
                Finding::ok(format!(
                    "{SOCKET_UNIT} is enabled ({dir_s}); systemd starts the agent on first use"
                ))
            } else {
                let state = if state.is_empty() { "unknown" } else { &state };
                Finding::warning(
                    format!("the units are in {dir_s}, but {SOCKET_UNIT} is {state}"),
                    enable,
                )
            };
        }
    }
    if ctx.service.enabled {
        Finding::ok(format!(
            "{SOCKET_UNIT} is enabled in {dir_s} (no systemd user manager runs in this session, so here the agent starts on first use)"
        ))
    } else {
        Finding::warning(
            format!("the units are in {dir_s}, but {SOCKET_UNIT} is not enabled"),
            enable,
        )
    }
}

#[cfg(target_os = "macos")]
pub(super) fn service(_ctx: &mut Ctx) -> Finding {
    use crate::service::launchd;

    let Some(home) = crate::dirs::home_dir() else {
        return Finding::skipped("no home directory, so no LaunchAgent");
    };
    let plist = launchd::plist_path(&home);
    if !plist.exists() {
        return Finding::ok(NOT_INSTALLED);
    }
    let domain = format!("gui/{}", crate::sys::uid());
    let mut cmd = std::process::Command::new("launchctl");
    cmd.args(["print", &format!("{domain}/{}", launchd::LABEL)]);
    match run_bounded(cmd, TOOL_TIMEOUT) {
        Ok(out) if out.status.success() => Finding::ok(format!(
            "{} is loaded ({}); launchd starts the agent at login",
            launchd::LABEL,
            plist.display()
        )),
        _ => Finding::warning(
            format!("{} is installed but not loaded", plist.display()),
            format!("`launchctl bootstrap {domain} {}`", plist.display()),
        ),
    }
}

#[cfg(windows)]
pub(super) fn service(_ctx: &mut Ctx) -> Finding {
    Finding::skipped("no login service on Windows: the agent starts on first use")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::systemd;
    use std::path::{Path, PathBuf};

    #[test]
    fn reads_back_what_install_writes() {
        for (agent, socket) in [
            ("/opt/wbl/bin/wbl-agent", None),
            (
                "/home/a b/100%/$x\\y\"/wbl-agent",
                Some("/run/a b/50%.sock"),
            ),
        ] {
            let units = systemd::render(Path::new(agent), socket.map(Path::new)).unwrap();
            assert_eq!(exec_program(&units.service).as_deref(), Some(agent));
            let expected = socket.map_or_else(
                || PathBuf::from("/run/user/7/wbl/agent.sock"),
                PathBuf::from,
            );
            assert_eq!(
                listen_path(&units.socket, Some("/run/user/7")),
                Some(expected)
            );
        }
        assert_eq!(listen_path(systemd::SOCKET_TEMPLATE, None), None);
    }
}
