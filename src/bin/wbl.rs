//! `wbl`: the thin client. Parses arguments and hands each subcommand to `wbl::cmd`.
//!
//! On Linux with glibc the client has its own C `main` instead of std's runtime start-up (see
//! [`entry`]): git runs `wbl credential get` at least twice per authenticated operation, and
//! std's start-up spent a fifth of the client's instructions finding the main thread's stack
//! in `/proc/self/maps` for a stack-overflow message.

#![cfg_attr(all(target_os = "linux", target_env = "gnu", not(test)), no_main)]

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
/// git runs at least twice per authenticated operation, and `wbl --version`. Any other command
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
        Command::Log {
            json,
            since,
            host,
            follow,
        } => cmd::log::run(cmd::log::LogArgs {
            json,
            since,
            host,
            follow,
        })
        .map(|()| true),
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

#[cfg(any(not(all(target_os = "linux", target_env = "gnu")), test))]
fn main() -> std::process::ExitCode {
    std::process::ExitCode::from(run())
}

#[cfg(all(target_os = "linux", target_env = "gnu", not(test)))]
mod entry {
    //! The C `main` of the Linux (glibc) client. It does what std's runtime start-up does that
    //! matters here, and skips the rest:
    //!
    //! - kept: fds 0, 1 and 2 are opened on `/dev/null` when closed, so the agent's socket can
    //!   never become "stdout" and receive what wbl prints (std's `sanitize_standard_fds`);
    //!   SIGPIPE is ignored, so writing to a closed pipe is an `EPIPE` error, not a silent
    //!   death; stdout is flushed before exit.
    //! - skipped: the SIGSEGV handler and alternate stack that turn a stack overflow into a
    //!   message. Finding the main thread's guard page reads and parses `/proc/self/maps`
    //!   (`pthread_getattr_np`), about a fifth of the client's instructions. Without it a
    //!   stack overflow is still caught by the kernel's guard page, as a plain SIGSEGV.
    //! - not needed: arguments and environment (glibc hands them to std through `.init_array`,
    //!   which runs before any `main`).

    use std::io::Write;

    /// Opens `/dev/null` on each of fds 0–2 that is closed (poll reports `POLLNVAL`).
    fn sanitize_standard_fds() {
        let mut fds = [0, 1, 2].map(|fd| libc::pollfd {
            fd,
            events: 0,
            revents: 0,
        });
        // SAFETY: poll on a valid array of three pollfd structs, zero timeout.
        let polled = loop {
            let r = unsafe { libc::poll(fds.as_mut_ptr(), 3, 0) };
            if r != -1 {
                break true;
            }
            if std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
                break false;
            }
        };
        for pfd in fds {
            let closed = if polled {
                pfd.revents & libc::POLLNVAL != 0
            } else {
                // poll failed (e.g. RLIMIT_NOFILE below 3): ask fcntl, as std does.
                // SAFETY: F_GETFD on an fd number has no memory effects.
                let r = unsafe { libc::fcntl(pfd.fd, libc::F_GETFD) };
                r == -1 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EBADF)
            };
            // SAFETY: open with a NUL-terminated path; the lowest free fd is the closed one.
            if closed && unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDWR, 0) } == -1 {
                std::process::abort();
            }
        }
    }

    #[unsafe(no_mangle)]
    extern "C" fn main(_argc: libc::c_int, _argv: *const *const libc::c_char) -> libc::c_int {
        sanitize_standard_fds();
        // SAFETY: setting a signal's disposition to SIG_IGN has no memory effects.
        unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
        let status = super::run();
        let _ = std::io::stdout().flush();
        libc::c_int::from(status)
    }
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
