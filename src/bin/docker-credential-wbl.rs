//! `docker-credential-wbl`: wbl as a Docker credential helper, found by docker, podman, skopeo
//! and buildah through `"credHelpers": {"<registry>": "wbl"}` (or `"credsStore": "wbl"`) in
//! their auth file. The protocol is in `wbl::cmd::docker_credential`.
//!
//! Kept small like `git-credential-wbl`: no clap, no logging set-up, no async runtime, and the
//! same C `main` on Linux with glibc ([`wbl::entry::c_main`]).

#![deny(unsafe_code)]
#![deny(clippy::undocumented_unsafe_blocks)]
#![cfg_attr(all(target_os = "linux", target_env = "gnu", not(test)), no_main)]

use std::io::Write;

use wbl::cmd::docker_credential::{USAGE, run, version_line};

/// Prints one line on stdout, where the helpers put everything (errors included).
fn say(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.write_all(b"\n");
}

/// The program: its exit status.
fn helper() -> u8 {
    wbl::agent::harden::quiet_panics("docker-credential-wbl");
    // It holds passwords for a moment: no core file, no ptrace by the user\'s other processes.
    wbl::client::protect_secrets();
    // As the helpers' `credentials.Serve`: exactly one argument, messages on stdout.
    let args: Vec<String> = std::env::args_os()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let [action] = args.as_slice() else {
        say(USAGE);
        return 1;
    };
    match action.as_str() {
        "--version" | "-v" => {
            say(version_line().trim_end());
            0
        }
        "--help" | "-h" => {
            say(USAGE);
            0
        }
        action => match run(action) {
            Ok(()) => 0,
            Err(e) => {
                // Errors quote names and servers' messages: never raw.
                say(&wbl::text::printable(&format!("{e:#}")));
                1
            }
        },
    }
}

// `no_mangle` is `unsafe` (the symbol could clash): this is the one C `main` of the program,
// which `no_main` above leaves to us; nothing else in the binary is exempt.
#[cfg(all(target_os = "linux", target_env = "gnu", not(test)))]
#[allow(unsafe_code)]
#[unsafe(no_mangle)]
extern "C" fn main(_argc: libc::c_int, _argv: *const *const libc::c_char) -> libc::c_int {
    wbl::entry::c_main(helper)
}

#[cfg(any(not(all(target_os = "linux", target_env = "gnu")), test))]
fn main() -> std::process::ExitCode {
    std::process::ExitCode::from(helper())
}
