//! `wbl-agent`: the per-user daemon that keeps API keys in the keychain and serves them over a
//! local socket. `main` parses arguments, sets up logging, claims the socket and calls
//! `wbl::agent::run_with`.

#![deny(unsafe_code)]
#![deny(clippy::undocumented_unsafe_blocks)]

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use wbl::accesslog::writer::{self, Writer};
use wbl::agent::cli::Args;
use wbl::agent::{self, State, activation, listen};
use wbl::keychain::{self, Keychain};
use wbl::rendezvous::RuntimePaths;

/// Exit status when another agent already serves the socket.
const EXIT_ALREADY_RUNNING: u8 = 3;
/// How long the agent waits at exit for the access log's last entries to be written.
const ACCESS_LOG_CLOSE: Duration = Duration::from_secs(2);

fn main() -> ExitCode {
    agent::harden::quiet_panics("wbl-agent");
    let args = Args::parse();
    if args.proxy_engine {
        // A proxy engine the agent started: it reads its grant on stdin.
        return agent::proxy_engine_main();
    }
    // First thing, while no other thread exists (the runtime starts below).
    let inherited = match activation::take_inherited_socket() {
        Ok(i) => i,
        Err(e) => {
            eprintln!("wbl-agent: {e}");
            return ExitCode::FAILURE;
        }
    };
    let paths = RuntimePaths::from_env();
    // A service manager that passes a socket supervises us: never detach from it.
    if !args.foreground && inherited.is_none() {
        return launch_detached(&paths, args.idle_exit());
    }
    agent::harden::harden_process();
    agent::harden::raise_fd_limit();
    wbl::logging::init("info");
    // One thread serves every connection (keychain calls run on the blocking pool): as many
    // requests per second as two workers on this 2-core machine, and without the multi-thread
    // scheduler the agent neither links libm (its statistics use `powf`) nor keeps a second
    // worker; together 0.3 MiB of idle RSS (BENCHMARKS.md).
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("wbl-agent: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(serve(paths, args.ready_fd, inherited, args.idle_exit()))
}

/// Claims the inherited socket (socket activation) or binds our own.
fn claim(
    paths: &RuntimePaths,
    inherited: Option<activation::Inherited>,
) -> Result<listen::Claimed, listen::BindError> {
    match inherited {
        #[cfg(unix)]
        Some(socket) => {
            tracing::info!(name = %socket.name, "using the socket passed by the service manager");
            listen::adopt(paths, socket.fd)
        }
        #[cfg(not(unix))]
        Some(_) => unreachable!("socket activation exists only on Unix"),
        None => listen::claim(paths),
    }
}

async fn serve(
    paths: RuntimePaths,
    ready_fd: Option<i32>,
    inherited: Option<activation::Inherited>,
    idle_exit: Option<Duration>,
) -> ExitCode {
    let activated = inherited.is_some();
    let shutdown = shutdown_signal();
    let mut claimed = match claim(&paths, inherited) {
        Ok(c) => c,
        Err(e @ listen::BindError::AlreadyRunning { .. }) => {
            eprintln!("wbl-agent: {e}");
            return ExitCode::from(EXIT_ALREADY_RUNNING);
        }
        Err(e) => {
            eprintln!("wbl-agent: {e}");
            return ExitCode::FAILURE;
        }
    };
    let opened = tokio::task::spawn_blocking(keychain::open_from_env).await;
    let (backend, warning) = match opened {
        Ok(Ok(b)) => b,
        Ok(Err(e)) => {
            eprintln!("wbl-agent: {e}");
            return ExitCode::FAILURE;
        }
        Err(_) => {
            eprintln!("wbl-agent: opening the keychain failed unexpectedly");
            return ExitCode::FAILURE;
        }
    };
    if let Some(w) = &warning {
        tracing::warn!("{w}");
    }
    let state = Arc::new(
        State::new(
            Keychain::new(backend),
            agent::Limits::from_env(),
            paths.socket_display(),
        )
        .with_access_log(Writer::start(writer::Options::from_env())),
    );
    state.preload().await;
    tracing::info!(
        socket = %paths.socket.display(),
        backend = state.backend_name(),
        pid = std::process::id(),
        activated,
        idle_exit_secs = idle_exit.map(|d| d.as_secs()),
        "wbl-agent listening"
    );
    if let Some(fd) = ready_fd {
        signal_ready(fd, warning.as_deref());
    }
    activation::notify_ready();
    let options = agent::RunOptions {
        idle_exit,
        connections: None,
    };
    agent::run_with(
        claimed.take_listener(),
        Arc::clone(&state),
        shutdown,
        options,
    )
    .await;
    state.access_log().close(ACCESS_LOG_CLOSE);
    activation::notify_stopping();
    tracing::info!("wbl-agent stopped");
    drop(claimed);
    ExitCode::SUCCESS
}

/// Registers for SIGTERM and SIGINT (Ctrl-C) right away, so that neither can kill the agent
/// once it serves, and returns a future that completes on either. A signal that arrives
/// before the future is polled is not lost.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let registered = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        );
        async move {
            match registered {
                (Ok(mut term), Ok(mut int)) => {
                    tokio::select! {
                        _ = term.recv() => {}
                        _ = int.recv() => {}
                    }
                }
                _ => std::future::pending::<()>().await,
            }
        }
    }
    #[cfg(not(unix))]
    {
        let registered = tokio::signal::windows::ctrl_c();
        async move {
            match registered {
                Ok(mut ctrl_c) => {
                    ctrl_c.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        }
    }
}

/// `--idle-exit N` for the detached child, so the flag survives the re-execution.
fn idle_exit_arg(idle_exit: Option<Duration>) -> Vec<String> {
    idle_exit
        .map(|d| vec!["--idle-exit".to_owned(), d.as_secs().to_string()])
        .unwrap_or_default()
}

/// Tells the launcher we listen: one byte on the inherited pipe, then the keychain's warning
/// if there is one (the launcher shows it to whoever started the agent), then close it.
fn signal_ready(fd: i32, warning: Option<&str>) {
    #[cfg(unix)]
    {
        use std::io::Write;
        // The launcher passed us this fd for exactly this purpose; taking ownership closes it
        // after the write.
        let Some(pipe) = wbl::sys::take_inherited_fd(fd) else {
            return;
        };
        let mut pipe = std::fs::File::from(pipe);
        let mut message = b"R".to_vec();
        message.extend_from_slice(warning.unwrap_or_default().as_bytes());
        let _ = pipe.write_all(&message);
    }
    #[cfg(not(unix))]
    let _ = (fd, warning);
}

/// Plain `wbl-agent`: start `wbl-agent --foreground` detached (new session, output to the log
/// file) and return once it listens. Exit 0 when ready, 3 when another agent runs.
fn launch_detached(paths: &RuntimePaths, idle_exit: Option<Duration>) -> ExitCode {
    if let Err(e) = listen::prepare_dir(paths.dir()) {
        eprintln!("wbl-agent: {e}");
        return ExitCode::FAILURE;
    }
    match detach::spawn_and_wait(paths, idle_exit) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("wbl-agent: cannot start in the background: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(unix)]
mod detach {
    //! The Unix launcher: re-executes itself with `--foreground --ready-fd 3` in a new session.

    use std::fs::OpenOptions;
    use std::io::Read;
    use std::os::fd::{AsFd, OwnedFd};
    use std::os::unix::fs::OpenOptionsExt;
    use std::process::{Command, ExitCode, Stdio};
    use std::time::Duration;

    use super::idle_exit_arg;
    use wbl::rendezvous::RuntimePaths;

    /// The fd number the child finds the ready pipe on.
    const READY_FD: i32 = 3;

    pub fn spawn_and_wait(
        paths: &RuntimePaths,
        idle_exit: Option<Duration>,
    ) -> std::io::Result<ExitCode> {
        let log_path = paths.logfile();
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&log_path)?;
        let (reader, writer) = std::io::pipe()?;
        let writer: OwnedFd = writer.into();
        let mut cmd = Command::new(std::env::current_exe()?);
        cmd.args(["--foreground", "--ready-fd", &READY_FD.to_string()])
            .args(idle_exit_arg(idle_exit))
            // The agent outlives the directory it was started from; it must not hold it.
            .current_dir("/")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        // A new session, the pipe's write end as fd 3 in the child.
        wbl::sys::detach_passing_fd(&mut cmd, writer.as_fd(), READY_FD);
        let mut child = cmd.spawn()?;
        drop(writer);
        // Blocks until the agent signals readiness (`R`, then its warning if any, then it
        // closes the pipe) or exits (EOF).
        let mut message = Vec::new();
        let _ = reader.take(64 * 1024).read_to_end(&mut message);
        if let Some(warning) = message.strip_prefix(b"R") {
            if !warning.is_empty() {
                eprintln!("wbl-agent: WARNING {}", String::from_utf8_lossy(warning));
            }
            return Ok(ExitCode::SUCCESS);
        }
        let status = child.wait()?;
        if status.code() == Some(3) {
            // Not the log's last line: another agent may be writing to the same log.
            let pid = std::fs::read_to_string(paths.pidfile())
                .ok()
                .and_then(|t| t.trim().parse().ok());
            let e = wbl::agent::listen::BindError::AlreadyRunning {
                socket: paths.socket_display(),
                pid,
            };
            eprintln!("wbl-agent: {e}");
            return Ok(ExitCode::from(3));
        }
        let tail = last_line(&log_path);
        eprintln!(
            "wbl-agent: the agent exited before it was ready ({status}): {tail} (log: {})",
            log_path.display()
        );
        Ok(ExitCode::FAILURE)
    }

    fn last_line(path: &std::path::Path) -> String {
        std::fs::read_to_string(path)
            .ok()
            .and_then(|t| {
                t.lines()
                    .rev()
                    .find(|l| !l.trim().is_empty())
                    .map(str::to_owned)
            })
            .map(|l| l.trim_start_matches("wbl-agent: ").to_owned())
            .unwrap_or_default()
    }
}

#[cfg(not(unix))]
mod detach {
    //! The Windows launcher: a detached process, then wait until the pipe answers.

    use std::os::windows::process::CommandExt;
    use std::process::{Command, ExitCode, Stdio};
    use std::time::{Duration, Instant};

    use super::idle_exit_arg;
    use wbl::rendezvous::RuntimePaths;

    const DETACHED_PROCESS: u32 = 0x0000_0008;
    const CREATE_NEW_PROCESS_GROUP: u32 = 0x0000_0200;

    pub fn spawn_and_wait(
        paths: &RuntimePaths,
        idle_exit: Option<Duration>,
    ) -> std::io::Result<ExitCode> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(paths.logfile())?;
        let mut child = Command::new(std::env::current_exe()?)
            .arg("--foreground")
            .args(idle_exit_arg(idle_exit))
            .creation_flags(DETACHED_PROCESS | CREATE_NEW_PROCESS_GROUP)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        // Windows has no inheritable ready pipe here; wait (bounded) until the pipe answers.
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if wbl::client::AgentClient::connect(paths).is_ok() {
                return Ok(ExitCode::SUCCESS);
            }
            if let Some(status) = child.try_wait()? {
                return Ok(ExitCode::from(
                    status.code().unwrap_or(1).clamp(0, 255) as u8
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(ExitCode::FAILURE)
    }
}
