//! `git-credential-wbl`: wbl's git credential helper under git's own naming convention, so
//! that `credential.helper = wbl` works as it does for `git-credential-libsecret`,
//! `-osxkeychain` and Git Credential Manager. `wbl credential <op>` is the same helper.
//!
//! git starts this program twice per authenticated fetch or push, so it is kept small: no
//! clap, no logging set-up and no async runtime; it links the protocol crate, the client's
//! connect and the credential format, and the linker drops the rest of the library.

use std::process::ExitCode;

const USAGE: &str = "usage: git-credential-wbl <get|store|erase|capability>\n\
    A git credential helper storing in the keychain through wbl-agent; git runs it when \
    `credential.helper = wbl` (set it up with `wbl setup-git`).";

fn main() -> ExitCode {
    wbl::agent::harden::quiet_panics("git-credential-wbl");
    // git appends the operation to the helper's command line: it is the last argument.
    let Some(op) = std::env::args_os().skip(1).last() else {
        eprintln!("{USAGE}");
        return ExitCode::FAILURE;
    };
    let op = op.to_string_lossy();
    match op.as_ref() {
        "--help" | "-h" => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        "--version" | "-V" => {
            println!("git-credential-wbl {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        _ => {}
    }
    match wbl::cmd::credential::run(&op) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("git-credential-wbl: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
