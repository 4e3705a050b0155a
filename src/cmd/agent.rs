//! `wbl agent`: run the agent with the login session (`install`/`uninstall`: systemd user
//! units on Linux, a LaunchAgent on macOS) and `start`, `stop` or inspect (`status`) it.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};
use serde::Serialize;
use wbl_proto::PROTOCOL_VERSION;

use crate::cli::{AgentArgs, AgentCommand};
use crate::client::{AgentClient, connect_or_start, stop_pid, wait_released};
use crate::rendezvous::RuntimePaths;
#[cfg(target_os = "macos")]
use crate::service::launchd;
use crate::service::{ServiceState, service_state, systemd};

/// Runs one `wbl agent` subcommand; `Ok(false)` means exit status 1.
pub fn run(args: AgentArgs) -> anyhow::Result<bool> {
    let paths = RuntimePaths::from_env();
    match args.command {
        AgentCommand::Install { now } => install(&paths, now).map(|()| true),
        AgentCommand::Uninstall => uninstall(&paths).map(|()| true),
        AgentCommand::Start => start(&paths).map(|()| true),
        AgentCommand::Stop => stop(&paths).map(|()| true),
        AgentCommand::Status { json } => status(&paths, json),
    }
}

fn start(paths: &RuntimePaths) -> anyhow::Result<()> {
    let agent = connect_or_start(paths)?;
    if agent.forwarded() {
        println!(
            "{} is a forwarded socket (`wbl ssh`): the agent runs on the other machine",
            paths.socket_display()
        );
        return Ok(());
    }
    println!(
        "wbl-agent is running (pid {}, version {}, socket {})",
        agent.agent_pid,
        agent.agent_version,
        paths.socket_display()
    );
    Ok(())
}

fn stop(paths: &RuntimePaths) -> anyhow::Result<()> {
    match stop_agent(paths)? {
        Some(pid) => {
            println!("stopped wbl-agent (pid {pid})");
            if service_state().enabled {
                println!("(it is socket-activated: the next client starts it again)");
            }
        }
        None => println!(
            "wbl-agent is not running (socket {})",
            paths.socket_display()
        ),
    }
    Ok(())
}

/// Stops a running agent gracefully and waits until it has let go of its pid file. Returns
/// its pid, or `None` when none was running.
fn stop_agent(paths: &RuntimePaths) -> anyhow::Result<Option<u32>> {
    let Some(mut agent) = AgentClient::connect_if_running(paths)? else {
        return Ok(None);
    };
    if agent.forwarded() {
        anyhow::bail!(
            "{} is a forwarded socket (`wbl ssh`): the agent behind it runs on the other machine \
             and cannot be stopped from here; end the ssh session instead",
            paths.socket_display()
        );
    }
    let pid = agent.agent_pid;
    if agent.agent_protocol == PROTOCOL_VERSION {
        agent
            .shutdown()
            .with_context(|| format!("while asking wbl-agent (pid {pid}) to stop"))?;
        drop(agent);
        wait_released(paths, Some(pid))
            .with_context(|| format!("while waiting for wbl-agent (pid {pid}) to stop"))?;
    } else {
        // An agent from another build may not know our shutdown request: signal it instead.
        drop(agent);
        stop_pid(pid, paths)
            .with_context(|| format!("while stopping wbl-agent (pid {pid}) from another build"))?;
    }
    Ok(Some(pid))
}

#[derive(Serialize)]
struct StatusJson {
    running: bool,
    socket: String,
    /// The socket is a forward (`wbl ssh`) of an agent on another machine.
    forwarded: bool,
    pid: Option<u32>,
    version: Option<String>,
    protocol: Option<u32>,
    uptime_secs: Option<u64>,
    backend: Option<String>,
    service: ServiceState,
}

fn status(paths: &RuntimePaths, json: bool) -> anyhow::Result<bool> {
    let mut out = StatusJson {
        running: false,
        socket: paths.socket_display(),
        forwarded: false,
        pid: None,
        version: None,
        protocol: None,
        uptime_secs: None,
        backend: None,
        service: service_state(),
    };
    if let Some(mut agent) = AgentClient::connect_if_running(paths)? {
        out.running = true;
        // A forward has no pid to show; its status is not asked (it would be refused).
        out.pid = (!agent.forwarded()).then_some(agent.agent_pid);
        out.version = Some(agent.agent_version.clone());
        out.protocol = Some(agent.agent_protocol);
        if agent.forwarded() {
            out.forwarded = true;
        } else if agent.agent_protocol == PROTOCOL_VERSION {
            let s = agent.status()?;
            out.uptime_secs = Some(s.uptime_secs);
            out.backend = Some(s.backend);
        }
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(out.running);
    }
    if out.forwarded {
        println!(
            "agent:    forwarded by `wbl ssh` from another machine (keys for granted hosts only)"
        );
        println!("socket:   {}", out.socket);
        return Ok(true);
    }
    if let (true, Some(pid), Some(version)) = (out.running, out.pid, &out.version) {
        println!("agent:    running (pid {pid}, version {version})");
        println!("socket:   {}", out.socket);
        if let Some(up) = out.uptime_secs {
            println!("uptime:   {}", crate::term::human_duration(up));
        }
        if let Some(backend) = &out.backend {
            println!("backend:  {backend}");
        }
        if out.protocol != Some(PROTOCOL_VERSION) {
            println!("          (from another build; the next `wbl` command restarts it)");
        }
    } else {
        println!("agent:    not running (socket {})", out.socket);
    }
    let s = &out.service;
    let where_ = s.path.as_deref().unwrap_or("?");
    match (s.manager, s.installed, s.enabled) {
        ("none", ..) => println!("service:  none (the agent starts on first use)"),
        (_, false, _) => println!(
            "service:  not installed (the agent starts on first use; `wbl agent install` starts it with your login session)"
        ),
        ("systemd", true, true) => {
            println!(
                "service:  systemd, {} enabled ({where_})",
                systemd::SOCKET_UNIT
            )
        }
        ("systemd", true, false) => println!(
            "service:  systemd units in {where_}, not enabled; run `systemctl --user enable --now {}`",
            systemd::SOCKET_UNIT
        ),
        (manager, true, _) => println!("service:  {manager} ({where_})"),
    }
    Ok(out.running)
}

/// Runs `program args…`; a failure becomes an error with the command and its stderr.
fn run_tool(program: &str, args: &[&str]) -> anyhow::Result<()> {
    let shown = format!("{program} {}", args.join(" "));
    let out = Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .with_context(|| format!("while running `{shown}`"))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let err = err.trim();
        bail!(
            "`{shown}` failed ({}){}{err}",
            out.status,
            if err.is_empty() { "" } else { ": " }
        );
    }
    Ok(())
}

/// Writes `text` to `path` (atomically) and says so.
fn write_file(path: &Path, text: &str) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("while creating {}", dir.display()))?;
    }
    crate::wandb::fsutil::write_atomic(path, text.as_bytes(), 0o644)
        .with_context(|| format!("while writing {}", path.display()))?;
    println!("wrote {}", path.display());
    Ok(())
}

#[cfg_attr(not(target_os = "macos"), allow(dead_code))]
fn home() -> anyhow::Result<PathBuf> {
    crate::dirs::home_dir().context("cannot find your home directory; set HOME")
}

/// The socket to write into service files: `WBL_SOCKET` when the user set it (so the service
/// and the clients agree), else `None` for the platform default.
#[cfg_attr(target_os = "macos", allow(dead_code))]
fn socket_override(paths: &RuntimePaths) -> Option<PathBuf> {
    std::env::var_os(crate::rendezvous::SOCKET_ENV)
        .filter(|s| !s.is_empty())
        .map(|_| paths.socket.clone())
}

#[cfg(not(any(target_os = "macos", windows)))]
fn install(paths: &RuntimePaths, now: bool) -> anyhow::Result<()> {
    let agent = crate::service::installed_agent()?;
    let dir = systemd::user_unit_dir().context("cannot find your home directory; set HOME")?;
    let socket = socket_override(paths);
    let units = systemd::render(&agent, socket.as_deref())?;
    write_file(&dir.join(systemd::SOCKET_UNIT), &units.socket)?;
    write_file(&dir.join(systemd::SERVICE_UNIT), &units.service)?;
    let enable = format!(
        "systemctl --user daemon-reload && systemctl --user enable --now {}",
        systemd::SOCKET_UNIT
    );
    if !now {
        let running = AgentClient::connect(paths).is_ok();
        println!("to start wbl-agent with your login session, run:");
        if running {
            println!("  wbl agent stop && {enable}");
        } else {
            println!("  {enable}");
        }
        println!("(or `wbl agent install --now`)");
        return Ok(());
    }
    if !crate::service::user_manager_running() {
        bail!(
            "no systemd user manager runs in this session, so --now cannot enable the agent: \
             the units are written (`systemctl --user enable --now {}` once a manager runs), \
             and until then wbl starts the agent on first use",
            systemd::SOCKET_UNIT
        );
    }
    // An agent started on demand holds the pid-file lock; the socket-activated one needs it.
    if let Some(pid) = stop_agent(paths)? {
        println!("stopped the running wbl-agent (pid {pid}) so that systemd can start its own");
    }
    run_tool("systemctl", &["--user", "daemon-reload"])?;
    run_tool(
        "systemctl",
        &["--user", "enable", "--now", systemd::SOCKET_UNIT],
    )?;
    let agent = AgentClient::connect(paths).with_context(|| {
        format!(
            "while connecting to {} after enabling {}; see `journalctl --user -u {}`",
            paths.socket_display(),
            systemd::SOCKET_UNIT,
            systemd::SERVICE_UNIT
        )
    })?;
    println!(
        "{} is enabled; systemd started wbl-agent (pid {})",
        systemd::SOCKET_UNIT,
        agent.agent_pid
    );
    Ok(())
}

#[cfg(not(any(target_os = "macos", windows)))]
fn uninstall(_paths: &RuntimePaths) -> anyhow::Result<()> {
    let dir = systemd::user_unit_dir().context("cannot find your home directory; set HOME")?;
    let manager = crate::service::user_manager_running();
    if manager {
        // Stops the socket and, through Requires=, the agent; removes the wants links.
        run_tool(
            "systemctl",
            &[
                "--user",
                "disable",
                "--now",
                systemd::SOCKET_UNIT,
                systemd::SERVICE_UNIT,
            ],
        )?;
    }
    let mut removed = 0;
    // The links `enable` made, in case no manager was there to run `disable`.
    if let Ok(entries) = std::fs::read_dir(&dir) {
        for entry in entries.flatten() {
            if entry.file_name().to_string_lossy().ends_with(".wants") {
                for unit in [systemd::SOCKET_UNIT, systemd::SERVICE_UNIT] {
                    removed += usize::from(remove(&entry.path().join(unit))?);
                }
            }
        }
    }
    for unit in [systemd::SOCKET_UNIT, systemd::SERVICE_UNIT] {
        removed += usize::from(remove(&dir.join(unit))?);
    }
    if manager {
        run_tool("systemctl", &["--user", "daemon-reload"])?;
    }
    if removed == 0 {
        println!("nothing to remove: no wbl-agent units in {}", dir.display());
    }
    Ok(())
}

/// Removes a file or symlink; `false` when there was none.
fn remove(path: &Path) -> anyhow::Result<bool> {
    match std::fs::remove_file(path) {
        Ok(()) => {
            println!("removed {}", path.display());
            Ok(true)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e).with_context(|| format!("while removing {}", path.display())),
    }
}

#[cfg(target_os = "macos")]
fn gui_domain() -> String {
    format!("gui/{}", crate::sys::uid())
}

#[cfg(target_os = "macos")]
fn install(paths: &RuntimePaths, _now: bool) -> anyhow::Result<()> {
    let agent = crate::service::installed_agent()?;
    let home = home()?;
    let plist = launchd::plist_path(&home);
    let text = launchd::render(&agent, &home, &paths.socket)?;
    let logs = launchd::log_dir(&home);
    std::fs::create_dir_all(&logs).with_context(|| format!("while creating {}", logs.display()))?;
    // The LaunchAgent's agent needs the pid-file lock an agent started on demand holds.
    if let Some(pid) = stop_agent(paths)? {
        println!("stopped the running wbl-agent (pid {pid}) so that launchd can start its own");
    }
    // Replacing an earlier install: unload it first (fails harmlessly when it is not loaded).
    let _ = run_tool(
        "launchctl",
        &["bootout", &format!("{}/{}", gui_domain(), launchd::LABEL)],
    );
    write_file(&plist, &text)?;
    let plist_str = plist.to_string_lossy();
    run_tool("launchctl", &["bootstrap", &gui_domain(), &plist_str])?;
    println!(
        "loaded {} (it starts at login; logs in {})",
        launchd::LABEL,
        logs.display()
    );
    Ok(())
}

#[cfg(target_os = "macos")]
fn uninstall(_paths: &RuntimePaths) -> anyhow::Result<()> {
    let home = home()?;
    let plist = launchd::plist_path(&home);
    let _ = run_tool(
        "launchctl",
        &["bootout", &format!("{}/{}", gui_domain(), launchd::LABEL)],
    );
    if !remove(&plist)? {
        println!("nothing to remove: {} does not exist", plist.display());
    }
    Ok(())
}

#[cfg(windows)]
fn install(_paths: &RuntimePaths, _now: bool) -> anyhow::Result<()> {
    let _ = (home, write_file, run_tool, socket_override);
    bail!(
        "`wbl agent install` supports systemd (Linux) and launchd (macOS); on Windows the agent starts on first use"
    )
}

#[cfg(windows)]
fn uninstall(_paths: &RuntimePaths) -> anyhow::Result<()> {
    let _ = remove;
    println!("nothing to remove: `wbl agent install` does not support Windows");
    Ok(())
}
