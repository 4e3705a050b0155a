//! `docker-credential-wbl`: wbl as a Docker credential helper, found by docker, podman, skopeo
//! and buildah through `"credHelpers": {"<registry>": "wbl"}` (or `"credsStore": "wbl"`) in
//! their auth file. The protocol is in `wbl::cmd::docker_credential`.
//!
//! Kept small like `git-credential-wbl`: no clap, no logging set-up, no async runtime.

use std::process::ExitCode;

use wbl::cmd::docker_credential::{USAGE, run, version_line};

fn main() -> ExitCode {
    wbl::agent::harden::quiet_panics("docker-credential-wbl");
    // As the helpers' `credentials.Serve`: exactly one argument, messages on stdout.
    let args: Vec<String> = std::env::args_os()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let [action] = args.as_slice() else {
        println!("{USAGE}");
        return ExitCode::FAILURE;
    };
    match action.as_str() {
        "--version" | "-v" => {
            print!("{}", version_line());
            ExitCode::SUCCESS
        }
        "--help" | "-h" => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        action => match run(action) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                println!("{e:#}");
                ExitCode::FAILURE
            }
        },
    }
}
