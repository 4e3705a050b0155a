//! `wbl`: the thin client. Parses arguments and hands each subcommand to `wbl::cmd`.
//!
//! On Linux with glibc the client has its own C `main` instead of std's runtime start-up (see
//! [`entry`]): git runs `wbl credential get` at least twice per authenticated operation, and
//! std's start-up spent a fifth of the client's instructions finding the main thread's stack
//! in `/proc/self/maps` for a stack-overflow message.

#![cfg_attr(all(target_os = "linux", target_env = "gnu", not(test)), no_main)]

use clap::Parser;
use wbl::cli::{Cli, Command, CredentialArgs};
use wbl::cmd;

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
    if std::env::var_os(wbl::logging::LOG_ENV).is_some() {
        wbl::logging::init("warn");
    }
    if let Some(result) = fast_path() {
        return exit_status(result);
    }
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Login(args) => cmd::login::run(args).map(|()| true),
        Command::Token(args) => cmd::token::run(args),
        Command::Exec(args) => cmd::exec::run(args).map(|()| true),
        Command::Logout(args) => cmd::logout::run(args).map(|()| true),
        Command::Status(args) => cmd::status::run(args).map(|()| true),
        Command::Credential(args) => cmd::credential::run(&args).map(|()| true),
        Command::SetupGit(args) => cmd::setup_git::run(args).map(|()| true),
        Command::Migrate(args) => cmd::migrate::run(args).map(|()| true),
        Command::Agent(args) => cmd::agent::run(args),
        Command::Doctor(args) => cmd::doctor::run(args),
        Command::Log(args) => cmd::log::run(args).map(|()| true),
        Command::Completions(args) => cmd::completions::run(args).map(|()| true),
        Command::Man(args) => cmd::man::run(args).map(|()| true),
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
