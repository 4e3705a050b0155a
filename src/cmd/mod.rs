//! The client's subcommands, one module each. Each returns `anyhow::Result`; `main` prints
//! errors as one `wbl: error: …` line.

pub mod accounts;
pub mod agent;
pub mod completions;
pub mod credential;
pub mod docker_credential;
pub mod doctor;
pub mod exec;
pub mod keyring;
pub mod log;
pub mod login;
pub mod logout;
pub mod man;
pub mod migrate;
pub mod migrate_docker;
pub mod openbao;
pub mod proxy;
pub mod scan;
pub mod setup_git;
pub mod ssh;
pub mod status;
pub mod token;

use wbl_proto::{Credential, ErrorCode, Query, Target};

use crate::client::{AgentClient, ClientError};
use crate::wandb::host::HostUrl;
use crate::wandb::resolver::{self, Lookup, Resolver};

/// The user name W&B keys are stored under (the SDK authenticates as `api:KEY`).
pub use crate::wandb::resolver::WANDB_USER;

/// A fatal error with its own exit status (e.g. 127 for a command `wbl exec` cannot find).
/// `main` prints it like any other error and exits with `code`; an empty `message` prints
/// nothing (a status passed on from ssh).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ExitError {
    pub code: u8,
    pub message: String,
}

/// Reads `input` to its end into memory that is zeroed when dropped, at most `max` bytes:
/// `None` when there is more (the rest is not read). For a helper's request on stdin, which
/// may hold a secret.
pub fn read_at_most(
    input: impl std::io::Read,
    max: usize,
) -> std::io::Result<Option<zeroize::Zeroizing<Vec<u8>>>> {
    use std::io::Read;
    let mut buf = zeroize::Zeroizing::new(Vec::with_capacity(1024));
    input.take(max as u64 + 1).read_to_end(&mut buf)?;
    Ok((buf.len() <= max).then_some(buf))
}

/// The host a command acts on, as the SDK picks it: `--host`, else `WANDB_BASE_URL`, else
/// `base_url` in the settings files (workspace over global), else the W&B cloud.
pub fn resolve_host(flag: Option<&str>) -> anyhow::Result<HostUrl> {
    Resolver::from_env()?.pick_host(flag)
}

/// The keychain target of a W&B host: its scheme and `host[:port]`, as netrc names it.
pub fn target_of(host: &HostUrl) -> Target {
    resolver::keychain_target(host)
}

/// The query for a host's W&B key of the account `default` (exactly this address).
pub fn wandb_query(host: &HostUrl) -> Query {
    resolver::keychain_query(
        host,
        &wbl_proto::Account::Named(wbl_proto::DEFAULT_ACCOUNT.into()),
    )
}

/// The W&B key of `account` for `host` the agent holds: stored for the host or, when the
/// host is not routed to a store, for its other address (the resolver's rule,
/// [`resolver::keychain_key`]); found, with the address it is stored for.
pub fn stored_key(
    agent: &mut AgentClient,
    host: &HostUrl,
    account: &wbl_proto::Account,
) -> anyhow::Result<Lookup<(Credential, HostUrl)>> {
    resolver::keychain_key(host, account, |query| lookup(agent.get(query)))
}

/// An agent's answer to a `get` as the resolver sees it: "not found" comes only from the store
/// a host is routed to, and is that host's whole answer ([`Lookup::RoutedMiss`]).
pub fn lookup(answer: Result<Option<Credential>, ClientError>) -> anyhow::Result<Lookup> {
    match answer {
        Ok(Some(c)) => Ok(Lookup::Found(c)),
        Ok(None) => Ok(Lookup::Missing),
        Err(e) if e.code() == Some(ErrorCode::NotFound) => Ok(Lookup::RoutedMiss(e.to_string())),
        Err(e) => Err(e.into()),
    }
}

/// The W&B key of the chosen account for `host` through the agent: stored for it or, when the
/// host is not routed to a store, for its other address (Forge ⇄ the W&B host behind it). A
/// routed host whose store has no key is an error naming the route; a named account the host
/// does not have, or several accounts and none chosen, an error saying how to choose.
pub fn wandb_key(
    agent: &mut AgentClient,
    host: &HostUrl,
    choice: &crate::account::Choice,
) -> anyhow::Result<Option<Credential>> {
    match stored_key(agent, host, &choice.account()) {
        Ok(Lookup::Found((c, _))) => Ok(Some(c)),
        Ok(Lookup::Missing) if choice.name.is_some() => Err(choice.missing(host)),
        Ok(Lookup::Missing) => Ok(None),
        Ok(Lookup::RoutedMiss(why)) => Err(anyhow::anyhow!(why)),
        Err(e) => Err(account_error(e)),
    }
}

/// An agent's `Account` error (several accounts, none chosen) with the ways to choose.
pub fn account_error(e: anyhow::Error) -> anyhow::Error {
    match e.downcast_ref::<ClientError>() {
        Some(c) if c.code() == Some(ErrorCode::Account) => {
            anyhow::anyhow!("{c}: {}", crate::account::HOW_TO_CHOOSE)
        }
        _ => e,
    }
}
