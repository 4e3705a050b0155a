//! `wbl`: the thin client. Parses arguments and hands each subcommand to `wbl::cmd`.

use std::process::ExitCode;

use clap::Parser;
use wbl::cli::{Cli, Command};
use wbl::cmd;
use wbl_proto::Secret;

fn main() -> ExitCode {
    wbl::agent::harden::quiet_panics("wbl");
    if std::env::var_os(wbl::logging::LOG_ENV).is_some() {
        wbl::logging::init("warn");
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
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("wbl: error: {e:#}");
            match e.downcast_ref::<cmd::ExitError>() {
                Some(x) => ExitCode::from(x.code),
                None => ExitCode::FAILURE,
            }
        }
    }
}
