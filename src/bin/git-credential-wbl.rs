//! `git-credential-wbl`: wbl's git credential helper under git's own naming convention, so
//! that `credential.helper = wbl` works as it does for `git-credential-libsecret`,
//! `-osxkeychain` and Git Credential Manager. `wbl credential <op>` is the same helper.
//!
//! git starts this program twice per authenticated fetch or push, so it is kept small: no
//! clap, no logging set-up and no async runtime; it links the protocol crate, the client's
//! connect and the credential format, and the linker drops the rest of the library. On Linux
//! with glibc its `main` is [`wbl::entry::c_main`] (why: that module and BENCHMARKS.md).

#![deny(unsafe_code)]
#![deny(clippy::undocumented_unsafe_blocks)]
#![cfg_attr(all(target_os = "linux", target_env = "gnu", not(test)), no_main)]

use std::io::Write;

const USAGE: &str = "usage: git-credential-wbl <get|store|erase|capability>\n\
    A git credential helper storing in the keychain through wbl-agent; git runs it when \
    `credential.helper = wbl` (set it up with `wbl setup-git`).";

/// The program: its exit status.
fn run() -> u8 {
    wbl::agent::harden::quiet_panics("git-credential-wbl");
    // It holds passwords for a moment: no core file, no ptrace by the user\'s other processes.
    wbl::client::protect_secrets();
    // git appends the operation to the helper's command line: it is the last argument.
    let Some(op) = std::env::args_os().skip(1).last() else {
        eprintln!("{USAGE}");
        return 1;
    };
    let op = op.to_string_lossy();
    let result = match op.as_ref() {
        "--help" | "-h" => writeln!(std::io::stdout(), "{USAGE}").map_err(Into::into),
        "--version" | "-V" => writeln!(
            std::io::stdout(),
            "git-credential-wbl {}",
            env!("CARGO_PKG_VERSION")
        )
        .map_err(Into::into),
        op => wbl::cmd::credential::run(&wbl::cli::CredentialArgs {
            operation: op.to_owned(),
        }),
    };
    match result {
        Ok(()) => 0,
        Err(e) => {
            // Errors quote host names from git and servers' messages: never raw.
            eprintln!(
                "git-credential-wbl: error: {}",
                wbl::text::printable(&format!("{e:#}"))
            );
            1
        }
    }
}

// `no_mangle` is `unsafe` (the symbol could clash): this is the one C `main` of the program,
// which `no_main` above leaves to us; nothing else in the binary is exempt.
#[cfg(all(target_os = "linux", target_env = "gnu", not(test)))]
#[allow(unsafe_code)]
#[unsafe(no_mangle)]
extern "C" fn main(_argc: libc::c_int, _argv: *const *const libc::c_char) -> libc::c_int {
    wbl::entry::c_main(run)
}

#[cfg(any(not(all(target_os = "linux", target_env = "gnu")), test))]
fn main() -> std::process::ExitCode {
    std::process::ExitCode::from(run())
}
