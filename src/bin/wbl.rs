//! `wbl`: the thin client. Parses arguments and hands each subcommand to `wbl::cmd`.
//!
//! git no longer starts `wbl` (it runs `git-credential-wbl`), so `wbl` keeps std's runtime
//! start-up; the helper programs have the C `main` of `wbl::entry` (BENCHMARKS.md has the
//! measurements behind both choices).

#![deny(unsafe_code)]
#![deny(clippy::undocumented_unsafe_blocks)]

use clap::Parser;
use wbl::cli::{Cli, Command, CredentialArgs};
use wbl::cmd;
// Errors quote host names, user names and servers' messages: never raw on the terminal.
use wbl::text::printable;

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
            let args = CredentialArgs {
                operation: op.to_owned(),
            };
            Some(cmd::credential::run(&args).map(|()| true))
        }
        _ => None,
    }
}

/// The program: its exit status.
fn run() -> u8 {
    wbl::agent::harden::quiet_panics("wbl");
    // Before any key is read: login, token, credential, exec and migrate all hold one.
    wbl::client::protect_secrets();
    if std::env::var_os(wbl::logging::LOG_ENV).is_some() {
        wbl::logging::init("warn");
    }
    if let Some(result) = fast_path() {
        return exit_status(result);
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return clap_exit(&e),
    };
    wbl::term::set_color(cli.color);
    let result = match cli.command {
        Command::Login(args) => cmd::login::run(args).map(|()| true),
        Command::Token(args) => cmd::token::run(args),
        Command::Exec(args) if args.proxy => cmd::proxy::run_exec(args).map(|()| true),
        Command::Exec(args) => cmd::exec::run(args).map(|()| true),
        Command::Logout(args) => cmd::logout::run(args).map(|()| true),
        Command::Status(args) => cmd::status::run(args).map(|()| true),
        Command::Accounts(args) => cmd::accounts::run(args).map(|()| true),
        Command::Bind(args) => cmd::accounts::bind(args).map(|()| true),
        Command::Unbind(args) => cmd::accounts::unbind(args).map(|()| true),
        Command::Switch(args) => cmd::accounts::switch(args).map(|()| true),
        Command::Ssh(args) if args.proxy => cmd::proxy::run_ssh(args).map(|()| true),
        Command::Ssh(args) => cmd::ssh::run(args).map(|()| true),
        Command::Credential(args) => cmd::credential::run(&args).map(|()| true),
        Command::SetupGit(args) => cmd::setup_git::run(args).map(|()| true),
        Command::Migrate(args) => cmd::migrate::run(args).map(|()| true),
        Command::Scan(args) => cmd::scan::run(args),
        Command::Agent(args) => cmd::agent::run(args),
        Command::Keyring(args) => cmd::keyring::run(args).map(|()| true),
        Command::Doctor(args) => cmd::doctor::run(args),
        Command::Log(args) => cmd::log::run(args).map(|()| true),
        Command::Openbao(args) => cmd::openbao::run(args),
        Command::Completions(args) => cmd::completions::run(args).map(|()| true),
        Command::Man(args) => cmd::man::run(args).map(|()| true),
    };
    exit_status(result)
}

/// `--help` and `--version` as clap prints them; a usage error with the `wbl: ` prefix every
/// other error has (`wbl: error: unexpected argument …`), clap's usage and hint below it.
fn clap_exit(e: &clap::Error) -> u8 {
    if !e.use_stderr() {
        let _ = e.print();
        return 0;
    }
    let text = e.render().to_string();
    // Help shown for a missing subcommand is not an error message: as it is.
    let prefix = if text.starts_with("error:") {
        "wbl: "
    } else {
        ""
    };
    eprint!("{prefix}{text}");
    u8::try_from(e.exit_code()).unwrap_or(2)
}

/// `Ok(true)` is success, `Ok(false)` a plain failure; an error is printed as one line and
/// exits 1, or with the code of a [`cmd::ExitError`].
fn exit_status(result: anyhow::Result<bool>) -> u8 {
    match result {
        Ok(true) => 0,
        Ok(false) => 1,
        Err(e) => match e.downcast_ref::<cmd::ExitError>() {
            // A status passed on from another program, which said what it had to say.
            Some(x) if x.message.is_empty() => x.code,
            Some(x) => {
                eprintln!("wbl: error: {}", printable(&format!("{e:#}")));
                x.code
            }
            None => {
                eprintln!("wbl: error: {}", printable(&format!("{e:#}")));
                1
            }
        },
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
