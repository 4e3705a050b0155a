//! `wbl exec -- CMD [ARGS…]`: run a program with the host's key in its environment
//! (`WANDB_API_KEY`, plus `WANDB_BASE_URL` when the host is not the SDK's default), so the key
//! never sits in a file or on a command line and the shell that runs `wbl exec` never sees it.
//!
//! On Unix wbl replaces itself with the program (`execvp`), so the program's exit status and
//! signals are the command's own. Elsewhere it runs the program and exits with its status.

use std::process::Command;

use anyhow::{Context, bail};

use wbl_proto::Purpose;

use super::{ExitError, wandb_key};
use crate::cli::ExecArgs;
use crate::client::connect_or_start;
use crate::rendezvous::RuntimePaths;
use crate::wandb::host::HostUrl;
use crate::wandb::resolver::Resolver;

/// Exit status when the program cannot be found (as in shells).
pub const NOT_FOUND: u8 = 127;
/// Exit status when the program exists but cannot be run (as in shells).
pub const CANNOT_RUN: u8 = 126;

pub fn run(
    ExecArgs {
        host,
        account,
        proxy,
        command,
    }: ExecArgs,
) -> anyhow::Result<()> {
    // `wbl exec --proxy` is `super::proxy::run_exec`, which the binary calls instead.
    anyhow::ensure!(!proxy, "`wbl exec --proxy` is not run here");
    let Chosen {
        program,
        args,
        resolver,
        host,
        choice,
    } = Chosen::of(&command, host, account)?;
    let mut agent =
        connect_or_start(&RuntimePaths::from_env()).context("while connecting to wbl-agent")?;
    // The access log names the program that receives the key, not only `wbl`.
    agent.purpose(Purpose::Exec {
        program: resolved(program),
    });
    let Some(cred) = wandb_key(&mut agent, &host, &choice).context("while looking up the key")?
    else {
        let login = if host.is_cloud() {
            "wbl login".to_owned()
        } else {
            format!("wbl login --host {host}")
        };
        bail!("no API key stored for {host}; run `{login}` first");
    };
    drop(agent);

    let mut cmd = Command::new(program);
    cmd.args(args);
    cmd.env("WANDB_API_KEY", cred.password.expose());
    // The SDK would otherwise pick its own default (WANDB_BASE_URL, settings, the cloud):
    // name the host whenever that default is not this host.
    let sdk_default = resolver
        .default_host()
        .map(|(h, _)| h)
        .unwrap_or_else(|_| HostUrl::cloud());
    if !host.is_cloud() || sdk_default != host {
        cmd.env("WANDB_BASE_URL", host.as_str());
    }
    let name = program.to_string_lossy().into_owned();
    spawn(cmd, &name)
}

/// The program `execvp` will run for `program`, for the access log: an absolute path (symbolic
/// links resolved, as `/proc/<pid>/exe` shows it) when it names a file or is found on `PATH`,
/// else the name as given (the launch then fails).
/// What `wbl exec` (with or without `--proxy`) runs, and the host and account whose key it
/// gets.
pub(super) struct Chosen<'a> {
    pub(super) program: &'a std::ffi::OsStr,
    pub(super) args: &'a [std::ffi::OsString],
    pub(super) resolver: Resolver,
    pub(super) host: HostUrl,
    pub(super) choice: crate::account::Choice,
}

impl Chosen<'_> {
    pub(super) fn of(
        command: &[std::ffi::OsString],
        host: Option<String>,
        account: Option<String>,
    ) -> anyhow::Result<Chosen<'_>> {
        let Some((program, args)) = command.split_first() else {
            bail!("no command given; usage: wbl exec [--host URL] -- CMD [ARGS...]");
        };
        let resolver = Resolver::from_env()?;
        let host = resolver.pick_host(host.as_deref())?;
        let choice = crate::account::choose(&host, account.as_deref())?;
        Ok(Chosen {
            program,
            args,
            resolver,
            host,
            choice,
        })
    }
}

/// The program's path as the shell would find it (for the access log).
pub(super) fn resolved(program: &std::ffi::OsStr) -> String {
    use std::path::{Path, PathBuf};
    let path = Path::new(program);
    let found: Option<PathBuf> = if path.components().count() > 1 || path.is_absolute() {
        Some(path.to_owned())
    } else {
        std::env::var_os("PATH").and_then(|dirs| {
            std::env::split_paths(&dirs)
                .map(|d| d.join(path))
                .find(|p| is_executable(p))
        })
    };
    let found = found.map(|p| std::fs::canonicalize(&p).or_else(|_| std::path::absolute(&p)));
    match found {
        Some(Ok(p)) => p.to_string_lossy().into_owned(),
        _ => program.to_string_lossy().into_owned(),
    }
}

/// A regular file this process may execute.
fn is_executable(p: &std::path::Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    }
    #[cfg(not(unix))]
    {
        p.is_file()
    }
}

pub(super) fn launch_error(e: std::io::Error, name: &str) -> anyhow::Error {
    let (code, what) = match e.kind() {
        std::io::ErrorKind::NotFound => (NOT_FOUND, "command not found".to_owned()),
        std::io::ErrorKind::PermissionDenied => (CANNOT_RUN, "permission denied".to_owned()),
        _ => (CANNOT_RUN, e.to_string()),
    };
    ExitError {
        code,
        message: format!("{name}: {what}"),
    }
    .into()
}

#[cfg(unix)]
fn spawn(mut cmd: Command, name: &str) -> anyhow::Result<()> {
    use std::os::unix::process::CommandExt;
    crate::client::restore_core_limit();
    // Only returns on failure.
    let e = cmd.exec();
    Err(launch_error(e, name))
}

#[cfg(not(unix))]
fn spawn(mut cmd: Command, name: &str) -> anyhow::Result<()> {
    let status = cmd
        .spawn()
        .map_err(|e| launch_error(e, name))?
        .wait()
        .with_context(|| format!("while waiting for {name}"))?;
    std::process::exit(status.code().unwrap_or(1));
}
