//! How a W&B host maps to wbl's keychain: the target and query of its key, the other address
//! of a Forge-served deployment that answers for it, and the one rule for asking (the host,
//! then — unless the host is routed to a store — its other address).
//!
//! Invariant: no I/O here; the caller hands in the one function that asks the agent.

use wbl_proto::{Account, Credential, Query, Target};

use crate::wandb::host::HostUrl;

/// The user name W&B keys are stored under (the SDK authenticates as `api:KEY`).
pub const WANDB_USER: &str = "api";

/// The keychain target of a W&B host: its scheme and `host[:port]`, as netrc names it.
pub fn keychain_target(host: &HostUrl) -> Target {
    Target::new(host.scheme(), host.netloc())
}

/// The keychain query for a host's W&B key of `account` (exactly this address).
pub fn keychain_query(host: &HostUrl, account: &Account) -> Query {
    Query {
        target: keychain_target(host),
        username: Some(WANDB_USER.to_owned()),
        account: account.clone(),
    }
}

/// The addresses whose keychain entry answers for `host`, in the order they are tried: the
/// host itself, then the other address of the same Forge-served deployment.
pub fn keychain_hosts(host: &HostUrl) -> Vec<HostUrl> {
    let mut out = vec![host.clone()];
    out.extend(host.forge_alias());
    out
}

/// [`keychain_hosts`]'s second address for a stored target (a git request's): the other
/// address of its Forge-served deployment, if any. Works on the target as it is, so the
/// helper programs need no URL parser.
pub fn keychain_alias(target: &Target) -> Option<Target> {
    let path = target.path.as_deref().unwrap_or("");
    crate::wandb::host::forge_alias_host(&target.protocol, &target.host, path)
        .map(|host| Target::new("https", host))
}

/// The answer of wbl's keychain (the agent: the OS keychain, or the store a host is routed to)
/// to one lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup<T = Credential> {
    Found(T),
    /// Nothing is stored for it: another address of the same deployment may answer.
    Missing,
    /// The host is routed to a store (OpenBao) that has no key for the query; the message
    /// names the route and the user name asked for. A routed host is answered by its store
    /// only: no other address is asked for it.
    RoutedMiss(String),
}

/// The W&B key for `host` in the keychain, asked through `get` (one agent lookup): stored for
/// the host itself or, when the host is not routed to a store, for its other address (see
/// [`keychain_hosts`]). Found: the credential and the address it is stored for.
pub fn keychain_key(
    host: &HostUrl,
    account: &Account,
    mut get: impl FnMut(Query) -> anyhow::Result<Lookup>,
) -> anyhow::Result<Lookup<(Credential, HostUrl)>> {
    for (i, h) in keychain_hosts(host).into_iter().enumerate() {
        let q = keychain_query(&h, account);
        let expected = match account {
            Account::Any => Some(WANDB_USER),
            Account::Named(name) => Some(wbl_proto::account_user(name)),
            Account::Only => None,
        };
        match get(q.clone())? {
            Lookup::Found(c)
                if c.target == q.target && expected.is_none_or(|u| c.username == u) =>
            {
                return Ok(Lookup::Found((c, h)));
            }
            // The host itself is routed: its store's miss is the answer.
            Lookup::RoutedMiss(why) if i == 0 => return Ok(Lookup::RoutedMiss(why)),
            Lookup::Found(_) | Lookup::Missing | Lookup::RoutedMiss(_) => {}
        }
    }
    Ok(Lookup::Missing)
}
