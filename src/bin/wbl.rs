//! `wbl`: the thin client. Parses arguments and hands each subcommand to `wbl::cmd`.
//!
//! git no longer starts `wbl` (it runs `git-credential-wbl`), so `wbl` keeps std's runtime
//! start-up; the helper programs have the C `main` of `wbl::entry` (BENCHMARKS.md has the
//! measurements behind both choices).

use clap::Parser;
use wbl::cli::{Cli, Command};
use wbl::cmd;
use wbl_proto::Secret;

/// What `wbl --version` prints; the same line clap would print (checked by a test).
fn version_line() -> String {
    format!("wbl {}\n", env!("CARGO_PKG_VERSION"))
}

/// The two invocations that must start fast, handled before clap builds its command tree
/// (which was half of the client's start-up instructions): `wbl credential <operation>`, which
/// git ran before `git-credential-wbl` existed (older configs still do), and `wbl --version`. Any other command
/// line, including `--help` or an extra argument after them, goes through clap.
fn fast_path() -> Option<anyhow::Result<bool>> {
    let mut args = std::env::args_os().skip(1);
    let (first, second, rest) = (args.next(), args.next(), args.next());
    if rest.is_some() {
        return None;
    }
    match (first?.to_str()?, second) {
        ("--version" | "-V", None) => {
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            Some(
                out.write_all(version_line().as_bytes())
                    .and_then(|()| out.flush())
                    .map(|()| true)
                    .map_err(Into::into),
            )
        }
        ("credential", Some(op)) => {
            let op = op.to_str().filter(|op| !op.starts_with('-'))?;
            Some(cmd::credential::run(op).map(|()| true))
        }
        _ => None,
    }
}

/// The program: its exit status.
fn run() -> u8 {
    wbl::agent::harden::quiet_panics("wbl");
    if std::env::var_os(wbl::logging::LOG_ENV).is_some() {
        wbl::logging::init("warn");
    }
    if let Some(result) = fast_path() {
        return exit_status(result);
    }
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Login {
            key,
            cloud,
            host,
            relogin,
            verify,
            no_verify: _,
            anonymously,
        } => {
            let mut keys = key.into_iter();
            cmd::login::run(cmd::login::LoginArgs {
                key: keys.next().map(Secret::new),
                extra_keys: keys.count(),
                host,
                cloud,
                relogin,
                verify,
                anonymously,
            })
            .map(|()| true)
        }
        Command::Token { host } => cmd::token::run(host.as_deref()),
        Command::Exec { host, command } => cmd::exec::run(host.as_deref(), command).map(|()| true),
        Command::Logout { host, all } => cmd::logout::run(host.as_deref(), all).map(|()| true),
        Command::Status { json } => cmd::status::run(json, false).map(|()| true),
        Command::Credential { operation } => cmd::credential::run(&operation).map(|()| true),
        Command::SetupGit {
            host,
            global: _,
            local,
            remove,
        } => cmd::setup_git::run(cmd::setup_git::SetupGitArgs {
            host,
            scope: if local {
                cmd::setup_git::Scope::Local
            } else {
                cmd::setup_git::Scope::Global
            },
            remove,
        })
        .map(|()| true),
        Command::Migrate {
            hosts,
            keep,
            dry_run,
            git_credentials,
        } => cmd::migrate::run(cmd::migrate::MigrateArgs {
            hosts,
            keep,
            dry_run,
            git_credentials,
        })
        .map(|()| true),
        Command::Agent { command } => cmd::agent::run(command),
        Command::Doctor { json } => cmd::doctor::run(json),
        Command::Completions { shell } => cmd::completions::run(shell).map(|()| true),
        Command::Man { out } => cmd::man::run(&out).map(|()| true),
    };
    exit_status(result)
}

/// `Ok(true)` is success, `Ok(false)` a plain failure; an error is printed as one line and
/// exits 1, or with the code of a [`cmd::ExitError`].
fn exit_status(result: anyhow::Result<bool>) -> u8 {
    match result {
        Ok(true) => 0,
        Ok(false) => 1,
        Err(e) => {
            eprintln!("wbl: error: {e:#}");
            match e.downcast_ref::<cmd::ExitError>() {
                Some(x) => x.code,
                None => 1,
            }
        }
    }
}

fn main() -> std::process::ExitCode {
    std::process::ExitCode::from(run())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn fast_version_is_what_clap_prints() {
        assert_eq!(Cli::command().render_version(), version_line());
    }

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }
}
