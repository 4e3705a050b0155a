//! `wbl token`: print the stored key for a host on stdout, nothing else.

use std::io::Write;

use super::{resolve_host, wandb_key};
use crate::cli::TokenArgs;
use crate::client::connect_or_start;
use crate::rendezvous::RuntimePaths;

/// Exit status 1 when there is no key; `Ok(false)` signals that to `main`.
pub fn run(args: TokenArgs) -> anyhow::Result<bool> {
    let host = resolve_host(args.host.as_deref())?;
    let choice = crate::account::choose(&host, args.account.as_deref())?;
    let mut agent = connect_or_start(&RuntimePaths::from_env())?;
    match wandb_key(&mut agent, &host, &choice)? {
        Some(cred) => {
            let mut out = std::io::stdout().lock();
            out.write_all(cred.password.expose().as_bytes())?;
            out.write_all(b"\n")?;
            out.flush()?;
            Ok(true)
        }
        None => {
            eprintln!(
                "wbl: error: no API key stored for {}; run `wbl login{}`",
                host.as_str(),
                if host.is_cloud() {
                    String::new()
                } else {
                    format!(" --host {host}")
                }
            );
            Ok(false)
        }
    }
}
